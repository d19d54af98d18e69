"""ITI-41 Provide and Register Document Set-b: one signed СЭМД with its metadata; answered by a RegistryResponse
(``common.build_registry_response`` / ``common.read_registry_response``)."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

from lxml import etree

from iemk_etl import kinds
from iemk_etl.protocol import xml
from iemk_etl.protocol.xds.common import (
    CDA_FORMAT,
    CONFIDENTIALITY,
    EI_PATIENT_ID,
    EI_UNIQUE_ID,
    EVIDENCE,
    FORMAT_CODES,
    HL7_INTERACTIONS,
    LCM,
    MO_REGISTRY,
    NS,
    RIM,
    SCHEME_AUTHOR,
    SCHEME_CLASS_CODE,
    SCHEME_CONFIDENTIALITY,
    SCHEME_FORMAT_CODE,
    SCHEME_TYPE_CODE,
    STABLE_DOCUMENT,
    TYPE_CODE,
    XDS,
    classification,
    external_id,
    localized,
    object_id,
    parse_hl7_ts,
    patient_cx,
    sha1_hex,
    slot,
    ts,
)
from iemk_etl.protocol.xml import sub

ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ASYNC_RESPONSE_ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bAsyncResponse"

SUBMISSION_SET = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
SCHEME_SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
EI_SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
EI_SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
EI_SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
_CDA = "urn:hl7-org:v3"


@dataclass(frozen=True)
class AuthorRef:
    snils: str
    family: str
    given: str
    patronymic: str | None


@dataclass(frozen=True)
class Submission:
    unique_id: str
    mo_oid: str
    mo_name: str
    patient_local_id: str
    kind_code: int
    created_at: dt.datetime
    author: AuthorRef
    document: bytes
    submission_set_id: str
    replaces: str | None = None          # uniqueId of the version this one replaces (RPLC)
    layout: str = EVIDENCE               # IEMK_XDS_METADATA_LAYOUT: evidence | legacy (common.LAYOUTS)
    repository_unique_id: str | None = None   # IEMK_REPOSITORY_UNIQUE_ID, sent as the DocumentEntry slot
    source_id: str | None = None         # SubmissionSet.sourceId (OID of our МИС instance); the МО's OID if None


@dataclass(frozen=True)
class _Ids:
    """The urn:uuid ids of one submission's registry objects, derived from the uniqueId and the content."""

    unique_id: str
    digest: str

    def __call__(self, name: str) -> str:
        return object_id(self.unique_id, self.digest, name)


def build_request(submission: Submission, *, document_text: str | None = None) -> etree._Element:
    """The ITI-41 request; ``document_text`` (a ``soap.Placeholder``'s token) stands in xds:Document for the
    document's base64, which the sender then splices into the serialised message (tens of MB never in the tree)."""
    request = etree.Element(f"{{{XDS}}}ProvideAndRegisterDocumentSetRequest",
                            nsmap={None: XDS, "lcm": LCM, "rim": RIM})
    objects = sub(sub(request, (LCM, "SubmitObjectsRequest")), (RIM, "RegistryObjectList"))
    patient = patient_cx(submission.patient_local_id, submission.mo_oid)
    digest = sha1_hex(submission.document)
    ids = _Ids(submission.unique_id, digest)
    _document_entry(objects, submission, patient, ids, digest)
    _submission_set(objects, submission, patient, ids)
    if submission.replaces:
        sub(objects, (RIM, "Association"), id=ids("RPLC"), associationType=RPLC, sourceObject=ids("DocumentEntry"),
            targetObject=submission.replaces)
    sub(request, (XDS, "Document"), id=ids("DocumentEntry")).text = (
        base64.b64encode(submission.document) if document_text is None else document_text)
    return request


def _document_entry(objects: etree._Element, s: Submission, patient: str, ids: _Ids, digest: str) -> None:
    kind = kinds.get(s.kind_code)
    entry, evidence = ids("DocumentEntry"), s.layout == EVIDENCE
    doc = sub(objects, (RIM, "ExtrinsicObject"), id=entry, mimeType="text/xml", objectType=STABLE_DOCUMENT)
    slot(doc, "creationTime", ts(s.created_at))
    slot(doc, "languageCode", "RU")
    if evidence:
        for name, value in zip(("serviceStartTime", "serviceStopTime"), service_times(s.document), strict=True):
            if value is not None:
                slot(doc, name, ts(value))
    slot(doc, "sourcePatientId", patient)
    slot(doc, "hash", digest)
    slot(doc, "size", str(len(s.document)))
    if s.repository_unique_id:
        slot(doc, "repositoryUniqueId", s.repository_unique_id)
    localized(doc, "Name", kind.doc_type_name)
    _author(doc, SCHEME_AUTHOR, entry, ids("DocumentEntry.author"), s)
    classification(doc, ids("classCode"), SCHEME_CLASS_CODE, entry, str(kind.doc_type), kinds.NSI_1522,
                   kind.doc_type_name)
    confidentiality, confidentiality_scheme = CONFIDENTIALITY[s.layout]
    classification(doc, ids("confidentialityCode"), SCHEME_CONFIDENTIALITY, entry, confidentiality,
                   confidentiality_scheme)
    if evidence:
        classification(doc, ids("formatCode"), SCHEME_FORMAT_CODE, entry, CDA_FORMAT, FORMAT_CODES)
    else:
        classification(doc, ids("formatCode"), SCHEME_FORMAT_CODE, entry, str(kind.code), kinds.NSI_1520, kind.name)
    classification(doc, ids("typeCode"), SCHEME_TYPE_CODE, entry, TYPE_CODE[s.layout], HL7_INTERACTIONS, "CDA R2")
    external_id(doc, ids("patientId"), EI_PATIENT_ID, entry, patient, "XDSDocumentEntry.patientId")
    external_id(doc, ids("uniqueId"), EI_UNIQUE_ID, entry, s.unique_id, "XDSDocumentEntry.uniqueId")


def _author(parent: etree._Element, scheme: str, obj: str, cid: str, s: Submission) -> None:
    author = sub(parent, (RIM, "Classification"), id=cid, classificationScheme=scheme, classifiedObject=obj,
                 nodeRepresentation="")
    a = s.author
    slot(author, "authorPerson", f"{a.snils}^{a.family}^{a.given}^{a.patronymic or ''}")
    slot(author, "authorInstitution", f"{s.mo_name}^^^^^&{MO_REGISTRY[s.layout]}&ISO^^^^{s.mo_oid}")


def _submission_set(objects: etree._Element, s: Submission, patient: str, ids: _Ids) -> None:
    package_id = ids("SubmissionSet")
    package = sub(objects, (RIM, "RegistryPackage"), id=package_id)
    slot(package, "submissionTime", ts(dt.datetime.now(dt.UTC)))
    if s.layout == EVIDENCE:
        _author(package, SCHEME_SS_AUTHOR, package_id, ids("SubmissionSet.author"), s)
    external_id(package, ids("SubmissionSet.uniqueId"), EI_SS_UNIQUE_ID, package_id, s.submission_set_id,
                "XDSSubmissionSet.uniqueId")
    if s.layout == EVIDENCE:
        external_id(package, ids("SubmissionSet.sourceId"), EI_SS_SOURCE_ID, package_id, s.source_id or s.mo_oid,
                    "XDSSubmissionSet.sourceId")
    external_id(package, ids("SubmissionSet.patientId"), EI_SS_PATIENT_ID, package_id, patient,
                "XDSSubmissionSet.patientId")
    sub(objects, (RIM, "Classification"), id=ids("SubmissionSet.node"), classifiedObject=package_id,
        classificationNode=SUBMISSION_SET)
    association = sub(objects, (RIM, "Association"), id=ids("HasMember"), associationType=HAS_MEMBER,
                      sourceObject=package_id, targetObject=ids("DocumentEntry"))
    slot(association, "SubmissionSetStatus", "Original")


def service_times(document: bytes) -> tuple[dt.datetime | None, dt.datetime | None]:
    """serviceStartTime/serviceStopTime: the period of the service the document records — the CDA's
    documentationOf/serviceEvent/effectiveTime, else its componentOf/encompassingEncounter/effectiveTime."""
    try:
        root = _header(document)
    except (etree.XMLSyntaxError, xml.UnsafeXmlError):
        return None, None        # ФЛК has passed it; a document we cannot read here simply goes without them
    h = {"h": _CDA}
    for period in ("h:documentationOf/h:serviceEvent/h:effectiveTime",
                   "h:componentOf/h:encompassingEncounter/h:effectiveTime"):
        low, high = (root.xpath(f"string(/h:ClinicalDocument/{period}/h:{edge}/@value)", namespaces=h)
                     for edge in ("low", "high"))
        if low or high:
            return parse_hl7_ts(low) if low else None, parse_hl7_ts(high) if high else None
    return None, None


_FEED = 64 * 1024


def _header(document: bytes) -> etree._Element:
    """The CDA's root with its header only: parsed up to the start of ClinicalDocument/component, the body (the
    last child in the CDA schema's order), so a scanned PDF of tens of MB inside is never in a tree here."""
    xml.refuse_doctype(document)
    parser = etree.XMLPullParser(events=("start",), resolve_entities=False, no_network=True, load_dtd=False,
                                 huge_tree=True)
    body = f"{{{_CDA}}}component"
    for start in range(0, len(document), _FEED):
        parser.feed(document[start:start + _FEED])
        for _, el in parser.read_events():
            parent = el.getparent()
            if el.tag == body and parent is not None and parent.getparent() is None:
                return parent
    return parser.close()


@dataclass(frozen=True)
class ReceivedDocument:
    """What the receiving side reads out of an ITI-41 request; coded values are ``code^^scheme`` (or None)."""

    unique_id: str | None
    patient_id: str | None
    kind_code: int | None               # formatCode in НСИ 1520 (legacy layout), else None
    author_person: str | None
    document: bytes | None
    replaces: str | None = None
    entry_id: str | None = None         # the ExtrinsicObject's id: a urn:uuid entryUUID or a symbolic id
    class_code: str | None = None
    format_code: str | None = None
    hash: str | None = None
    size: str | None = None
    repository_unique_id: str | None = None

    def metadata(self) -> dict[str, str | None]:
        """What the registry keeps besides the document (the emulator stores it as JSON)."""
        return {"entry_id": self.entry_id, "class_code": self.class_code, "format_code": self.format_code,
                "hash": self.hash, "size": self.size, "repository_unique_id": self.repository_unique_id}


def read_request(request: etree._Element) -> ReceivedDocument:
    def first(xpath: str, **variables: str) -> str | None:
        found = request.xpath(xpath, namespaces=NS, **variables)
        return str(found[0]) if found else None

    objects = "lcm:SubmitObjectsRequest/rim:RegistryObjectList"
    eo = f"{objects}/rim:ExtrinsicObject"

    def code(scheme: str) -> str | None:
        cl = f"{eo}/rim:Classification[@classificationScheme=$s]"
        value = first(f"{cl}/@nodeRepresentation", s=scheme)
        coding = first(f"{cl}/rim:Slot[@name='codingScheme']/rim:ValueList/rim:Value/text()", s=scheme)
        return None if value is None else f"{value}^^{(coding or '').strip()}"

    def eo_slot(name: str) -> str | None:
        value = first(f"{eo}/rim:Slot[@name=$n]/rim:ValueList/rim:Value/text()", n=name)
        return value.strip() if value is not None else None

    entry_id = first(f"{eo}/@id")
    data = first("xds:Document[@id=$e]/text()", e=entry_id or "") or first("xds:Document/text()")
    try:
        document = base64.b64decode(data, validate=True) if data else None
    except ValueError:
        document = None
    format_code = code(SCHEME_FORMAT_CODE)
    kind, _, scheme = (format_code or "").partition("^^")
    return ReceivedDocument(
        unique_id=first(f"{eo}/rim:ExternalIdentifier[@identificationScheme='{EI_UNIQUE_ID}']/@value"),
        patient_id=first(f"{eo}/rim:ExternalIdentifier[@identificationScheme='{EI_PATIENT_ID}']/@value"),
        kind_code=int(kind) if kind.isdigit() and scheme in (kinds.NSI_1520, "") else None,
        author_person=first(f"{eo}/rim:Classification[@classificationScheme='{SCHEME_AUTHOR}']"
                            "/rim:Slot[@name='authorPerson']/rim:ValueList/rim:Value/text()"),
        document=document,
        replaces=first(f"{objects}/rim:Association[@associationType='{RPLC}']/@targetObject"),
        entry_id=entry_id,
        class_code=code(SCHEME_CLASS_CODE),
        format_code=format_code,
        hash=eo_slot("hash"),
        size=eo_slot("size"),
        repository_unique_id=eo_slot("repositoryUniqueId"),
    )
