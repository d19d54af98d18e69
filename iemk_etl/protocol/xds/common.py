"""What every XDS.b transaction shares: ebXML namespaces, metadata building blocks, the RegistryResponse.

The metadata follows the one public reconstruction of what ИЭМК expects (see
../shared/samples/reconstructed): IHE classification scheme UUIDs with Russian code systems.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from dataclasses import dataclass, field

from lxml import etree

from iemk_etl.protocol.xml import sub

XDS = "urn:ihe:iti:xds-b:2007"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
NS = {"xds": XDS, "lcm": LCM, "rim": RIM, "rs": RS}

SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
SEVERITY_ERROR = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"

STABLE_DOCUMENT = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
SCHEME_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
SCHEME_CLASS_CODE = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
SCHEME_CONFIDENTIALITY = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
SCHEME_FORMAT_CODE = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
SCHEME_TYPE_CODE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
EI_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
EI_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"

# -- the two metadata layouts (IEMK_XDS_METADATA_LAYOUT) ---------------------------------------------------------
# evidence: what iemk-protocol.md §2.2 and the reconstructed ITI-41 skeleton show (source [S3]): the MIME format in
#   formatCode, the document type (НСИ 1522) in classCode. legacy: our layout before issue 12, the НСИ 1520 kind in
#   formatCode. docs/federal-contract.md lists every value with its evidence.
EVIDENCE, LEGACY = "evidence", "legacy"
LAYOUTS = (EVIDENCE, LEGACY)
CDA_FORMAT = "application/hl7-cda-level-one+xml"     # formatCode of a CDA document, evidence layout
FORMAT_CODES = "1.2.643.5.1.13.2.7.1.40"             # its codingScheme
HL7_INTERACTIONS = "2.16.840.1.113883.1.3"           # typeCode codingScheme (HL7 interaction ids)
TYPE_CODE = {EVIDENCE: "POCD_MT000040_RU01", LEGACY: "POCD_MT000040"}
CONFIDENTIALITY = {EVIDENCE: ("N", "1.2.643.5.1.13.2.7.1.10"), LEGACY: ("N", "1.2.643.5.1.13.13.99.2.285")}
# authorInstitution's assigning authority: the skeleton's 1.2.643.5.1.13.2.1.1.178 (the old МО registry, MDR308);
# legacy: ФРМО's НСИ 1461.
MO_REGISTRY = {EVIDENCE: "1.2.643.5.1.13.2.1.1.178", LEGACY: "1.2.643.5.1.13.13.11.1461"}

# entryUUIDs and the other object ids of a submission are name-based (UUID v5) on the document's uniqueId and the
# SHA-1 of its bytes: a resend of the same document is the same request, as its content-derived MessageID is.
_ID_NAMESPACE = uuid.UUID("6f1d7b0e-3c59-5d2a-9a61-0b7e0c1f5e21")
_URN_UUID = re.compile(r"^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_SHA1_HEX = re.compile(r"^[0-9a-fA-F]{40}$")


def sha1_hex(data: bytes) -> str:
    """XDS ``hash``: the SHA-1 of the document's bytes in hex (IHE ITI TF-3 4.2.3.2.11)."""
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def object_id(unique_id: str, digest: str, name: str) -> str:
    """The ``urn:uuid:`` id of one registry object (``name``: DocumentEntry, SubmissionSet, …) of a submission."""
    return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, f'{name}|{unique_id}|{digest}')}"


def is_urn_uuid(value: str | None) -> bool:
    return bool(value and _URN_UUID.match(value))


def is_sha1_hex(value: str | None) -> bool:
    return bool(value and _SHA1_HEX.match(value))


def coded(code: str, scheme: str) -> str:
    """A coded value as XDS stored queries spell it: ``code^^scheme``."""
    return f"{code}^^{scheme}"


def split_coded(value: str) -> tuple[str, str]:
    code, _, scheme = value.partition("^^")
    return code, scheme


def patient_cx(local_id: str, mo_oid: str) -> str:
    """XDS patient id (HL7 CX) of a patient known by the МО's local id."""
    return f"{local_id}^^^&{mo_oid}&ISO"


def ts(value: dt.datetime) -> str:
    """An XDS DTM in UTC, to the second."""
    return value.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")


def parse_ts(value: str) -> dt.datetime:
    return dt.datetime.strptime(value[:14].ljust(14, "0"), "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)


def parse_hl7_ts(value: str) -> dt.datetime | None:
    """An HL7 TS of a CDA document, such as 20261101100000+0300; naive values are taken as UTC."""
    for fmt in ("%Y%m%d%H%M%S%z", "%Y%m%d%H%M%S", "%Y%m%d%H%M%z", "%Y%m%d%H%M", "%Y%m%d"):
        try:
            parsed = dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


# -- metadata building blocks ----------------------------------------------------------------------------------

def slot(parent: etree._Element, name: str, *values: str) -> None:
    value_list = sub(sub(parent, (RIM, "Slot"), name=name), (RIM, "ValueList"))
    for value in values:
        sub(value_list, (RIM, "Value"), value)


def localized(parent: etree._Element, tag: str, value: str) -> None:
    sub(sub(parent, (RIM, tag)), (RIM, "LocalizedString"), value=value)


def classification(parent: etree._Element, cid: str, scheme: str, obj: str, code: str, coding: str,
                   name: str | None = None) -> etree._Element:
    cl = sub(parent, (RIM, "Classification"), id=cid, classificationScheme=scheme, classifiedObject=obj,
             nodeRepresentation=code)
    slot(cl, "codingScheme", coding)
    if name:
        localized(cl, "Name", name)
    return cl


def external_id(parent: etree._Element, eid: str, scheme: str, obj: str, value: str, name: str) -> None:
    ei = sub(parent, (RIM, "ExternalIdentifier"), id=eid, registryObject=obj, identificationScheme=scheme,
             value=value)
    localized(ei, "Name", name)


# -- RegistryResponse ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RegistryError:
    error_code: str
    code_context: str
    severity: str = SEVERITY_ERROR
    location: str = ""

    def text(self) -> str:
        return f"{self.error_code}: {self.code_context}"


@dataclass(frozen=True)
class RegistryResponse:
    status: str
    errors: list[RegistryError] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.status == SUCCESS

    def error_text(self) -> str:
        return "; ".join(e.text() for e in self.errors) or "ИЭМК вернула отказ без описания ошибки"


def error_list(parent: etree._Element, errors: list[RegistryError], *, with_location: bool = True) -> None:
    """rs:RegistryErrorList; a stored-query response writes its errors without @location."""
    container = sub(parent, (RS, "RegistryErrorList"))
    for e in errors:
        sub(container, (RS, "RegistryError"), errorCode=e.error_code, codeContext=e.code_context,
            severity=e.severity, location=e.location if with_location else None)


def error_texts(element: etree._Element) -> list[str]:
    """Every rs:RegistryError under ``element`` as "code: context"."""
    return [f"{e.get('errorCode')}: {e.get('codeContext')}" for e in element.iter(f"{{{RS}}}RegistryError")]


def build_registry_response(response: RegistryResponse) -> etree._Element:
    root = etree.Element(f"{{{RS}}}RegistryResponse", nsmap={"rs": RS}, status=response.status)
    if response.errors:
        error_list(root, response.errors)
    return root


def read_registry_response(element: etree._Element) -> RegistryResponse:
    if element.tag != f"{{{RS}}}RegistryResponse":
        raise ValueError(f"ожидался rs:RegistryResponse, получен {element.tag}")
    errors = [
        RegistryError(e.get("errorCode", ""), e.get("codeContext", ""), e.get("severity", SEVERITY_ERROR),
                      e.get("location", ""))
        for e in element.iterfind(f"{{{RS}}}RegistryErrorList/{{{RS}}}RegistryError")
    ]
    return RegistryResponse(element.get("status", ""), errors)
