"""docs/federal-contract.md holds the code: every row's Value is read back out of the real messages.

The messages are the pipeline's own, with default settings, signed, sent to the running emulator and captured as they
leave the HTTP client (tests/federal_contract_wire.py): an ITI-41 of a generated СЭМД, a PIX add, a PDQ query, an
ITI-18 query and an ITI-43 request.
A row's check returns the values it finds, in the order the page lists them; a decision changed on one
side only fails, and so does a row without a check or a check without a row.
"""

from __future__ import annotations

import base64
import copy
import email.message
import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from lxml import etree

from iemk_etl import settings
from iemk_etl.protocol import soap, xml
from iemk_etl.protocol.hl7v3 import pdq, pix
from iemk_etl.protocol.xds import query as xds_query
from iemk_etl.protocol.xds import retrieve, submit
from iemk_etl.protocol.xds.common import (
    EI_PATIENT_ID,
    EI_UNIQUE_ID,
    FAILURE,
    LCM,
    PARTIAL_SUCCESS,
    RIM,
    SCHEME_AUTHOR,
    SCHEME_CLASS_CODE,
    SCHEME_CONFIDENTIALITY,
    SCHEME_FORMAT_CODE,
    SCHEME_TYPE_CODE,
    SUCCESS,
    XDS,
    is_urn_uuid,
)
from iemk_etl.signing import wssecurity
from iemk_etl.transport import http_server

from federal_contract_wire import CLIENT, MO, Sent, capture_wire, new_database

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "federal-contract.md"

_ROW = re.compile(r"^\|\s*`(?P<id>[A-Z0-9][A-Z0-9-]*)`\s*\|(?P<rest>.*)\|\s*$")


def _rows(text: str) -> dict[str, list[str]]:
    """Id → the backticked items of the Value column (the third), in order."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = _ROW.match(line)
        if not m:
            continue
        cells = [c.strip() for c in m["rest"].split("|")]
        assert m["id"] not in rows, f"row {m['id']} twice in {PAGE.name}"
        rows[m["id"]] = re.findall(r"`([^`]*)`", cells[1])
    return rows


ROWS = _rows(PAGE.read_text(encoding="utf-8"))


NS = {"s": soap.SOAP, "wsa": soap.WSA, "egis": soap.EGIS, "wsse": wssecurity.WSSE, "wsu": wssecurity.WSU,
      "ds": wssecurity.DS, "hl7": "urn:hl7-org:v3", "xds": XDS, "rim": RIM, "lcm": LCM,
      "query": xds_query.QUERY}


class Msg:
    """One captured request, parsed once."""

    def __init__(self, sent: Sent) -> None:
        self.content_type = sent.content_type
        self.framing = sent.framing
        self.envelope = sent.envelope

    def xpath(self, path: str) -> list:
        return self.envelope.xpath(path, namespaces=NS)

    def text(self, path: str) -> str:
        return self.envelope.xpath(f"string({path})", namespaces=NS)

    @property
    def header_names(self) -> list[str]:
        return [etree.QName(el).localname for el in self.xpath("/s:Envelope/s:Header/*")]


Check = Callable[["Wire"], list[str]]
CHECKS: dict[str, Check] = {}


def check(row_id: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS[row_id] = fn
        return fn
    return register


# --- the messages -----------------------------------------------------------------------------------------------

@dataclass
class Wire:
    iti41: Msg
    pix_adds: list[Msg]
    pdq: Msg
    iti18: Msg
    iti43: Msg

    unknown_client: soap.Fault

    @property
    def pix_add(self) -> Msg:
        return self.pix_adds[0]

    @property
    def sync(self) -> list[Msg]:
        return [self.pix_add, self.pdq, self.iti18, self.iti43]

    @property
    def all(self) -> list[Msg]:
        return [self.iti41, *self.sync]


@pytest.fixture(scope="module")
def wire(pg_template: str, dev_keys, flk_packs) -> Wire:
    dsn = new_database(pg_template, "iemk_federal_contract")
    capture = capture_wire(dsn, dev_keys, flk_packs)
    return Wire(iti41=Msg(capture.first(submit.ACTION)),
                pix_adds=[Msg(s) for s in capture.sent if s.action == pix.ACTION[pix.ADD]],
                pdq=Msg(capture.first(settings.load({}).pdq_action)), iti18=Msg(capture.first(xds_query.ACTION)),
                iti43=Msg(capture.first(retrieve.ACTION)), unknown_client=capture.unknown_client)


# --- 1. SOAP transport ------------------------------------------------------------------------------------------

def _one(values: list[str], what: str) -> list[str]:
    distinct = sorted(set(values))
    assert len(distinct) == 1, f"{what} differs between messages: {distinct}"
    return distinct


@check("SOAP-VERSION")
def _soap_version(w: Wire) -> list[str]:
    return _one([etree.QName(s.envelope).namespace for s in w.all], "envelope namespace")


@check("SOAP-CONTENT-TYPE")
def _content_type(w: Wire) -> list[str]:
    return _one([s.content_type for s in w.all], "Content-Type")


@check("WSA-NS")
def _wsa_ns(w: Wire) -> list[str]:
    return _one([etree.QName(s.xpath("/s:Envelope/s:Header/*[local-name()='MessageID']")[0]).namespace
                 for s in w.all], "WS-Addressing namespace")


@check("WSA-MESSAGE-ID")
def _message_id(w: Wire) -> list[str]:
    return _one([s.text("/s:Envelope/s:Header/wsa:MessageID")[:len("urn:uuid:")] for s in w.all], "MessageID form")


@check("WSA-HEADERS")
def _wsa_headers(w: Wire) -> list[str]:
    orders = {tuple(n for n in s.header_names if n in ("Action", "MessageID", "ReplyTo", "To", "RelatesTo"))
              for s in w.all}
    assert len(orders) == 1, f"header order differs: {orders}"
    return list(orders.pop())


@check("WSA-REPLY-TO-SYNC")
def _reply_to_sync(w: Wire) -> list[str]:
    return _one([s.text("/s:Envelope/s:Header/wsa:ReplyTo/wsa:Address") for s in w.sync], "ReplyTo")


@check("EGIS-HEADER")
def _egis_header(w: Wire) -> list[str]:
    def where(s: Msg) -> str:
        found = s.xpath("/s:Envelope/s:Header//*[local-name()='clientEntityId']")
        assert len(found) == 1, "one clientEntityId in the header"
        path = [el for el in reversed(list(found[0].iterancestors())) if etree.QName(el).localname
                not in ("Envelope", "Header")]
        names = [etree.QName(el).localname for el in [*path, found[0]]]
        return f"{etree.QName(found[0]).namespace} {'/'.join(names)}"
    return _one([where(s) for s in w.all], "clientEntityId place")[0].split(" ")


# --- 2. WS-Security ---------------------------------------------------------------------------------------------

def _signed_part_names(s: Msg) -> list[str]:
    by_id = {el.get(f"{{{wssecurity.WSU}}}Id"): etree.QName(el).localname
             for el in s.xpath("//*[@wsu:Id]")}
    return [by_id[uri[1:]] for uri in s.xpath("//ds:SignedInfo/ds:Reference/@URI")]


@check("WSSE-SIGNED-PARTS")
def _signed_parts(w: Wire) -> list[str]:
    orders = {tuple(_signed_part_names(s)) for s in w.all}
    assert len(orders) == 1, f"signed parts differ: {orders}"
    return list(orders.pop())


@check("WSSE-C14N")
def _c14n(w: Wire) -> list[str]:
    found = [a for s in w.all for a in s.xpath("//ds:CanonicalizationMethod/@Algorithm | //ds:Transform/@Algorithm")]
    return _one(found, "canonicalization")


@check("WSSE-SIGNATURE-METHOD")
def _signature_method(w: Wire) -> list[str]:
    return _one([a for s in w.all for a in s.xpath("//ds:SignatureMethod/@Algorithm")], "SignatureMethod")


@check("WSSE-DIGEST-METHOD")
def _digest_method(w: Wire) -> list[str]:
    return _one([a for s in w.all for a in s.xpath("//ds:DigestMethod/@Algorithm")], "DigestMethod")


@check("WSSE-TOKEN")
def _token(w: Wire) -> list[str]:
    return _one([a for s in w.all for a in s.xpath("//wsse:BinarySecurityToken/@ValueType")], "token ValueType")


@check("WSSE-TIMESTAMP-TTL")
def _ttl(w: Wire) -> list[str]:
    import datetime as dt

    def seconds(s: Msg) -> str:
        created = dt.datetime.fromisoformat(s.text("//wsu:Timestamp/wsu:Created").replace("Z", "+00:00"))
        expires = dt.datetime.fromisoformat(s.text("//wsu:Timestamp/wsu:Expires").replace("Z", "+00:00"))
        return str(int((expires - created).total_seconds()))
    return _one([seconds(s) for s in w.all], "Timestamp lifetime")


# --- 3. PIX ------------------------------------------------------------------------------------------------------

def _v3(m: Msg, path: str) -> str:
    return m.text(f"/s:Envelope/s:Body/*/{path}")


def _pix_all(w: Wire) -> list[Msg]:
    return w.pix_adds


def _patient_person(m: Msg) -> str:
    return "hl7:controlActProcess/hl7:subject/hl7:registrationEvent/hl7:subject1/hl7:patient/hl7:patientPerson"


@check("PIX-ACTION")
def _pix_action(w: Wire) -> list[str]:
    return [w.pix_add.text("/s:Envelope/s:Header/wsa:Action"), pix.ACTION[pix.REVISE]]


@check("PIX-INTERACTION")
def _pix_interaction(w: Wire) -> list[str]:
    root = _v3(w.pix_add, "hl7:interactionId/@root")
    return [_v3(w.pix_add, "hl7:interactionId/@extension"), pix.REVISE, root]


@check("PIX-MESSAGE-ID")
def _pix_message_id(w: Wire) -> list[str]:
    assert _v3(w.pix_add, "hl7:id/@root") == MO
    uuid.UUID(_v3(w.pix_add, "hl7:id/@extension"))
    return ["<МО OID>", "<GUID>"]


@check("PIX-CONTROL-CODES")
def _pix_codes(w: Wire) -> list[str]:
    return [_v3(w.pix_add, f"hl7:{e}/@code") for e in ("processingCode", "processingModeCode", "acceptAckCode")]


@check("PIX-RECEIVER")
def _pix_receiver(w: Wire) -> list[str]:
    d = "hl7:receiver/hl7:device"
    return [_v3(w.pix_add, f"{d}/hl7:id/@root"), _v3(w.pix_add, f"{d}/hl7:name"),
            _v3(w.pix_add, f"{d}/hl7:asAgent/hl7:representedOrganization/hl7:id/@root"),
            _v3(w.pix_add, f"{d}/hl7:asAgent/hl7:representedOrganization/hl7:name")]


@check("PIX-SENDER")
def _pix_sender(w: Wire) -> list[str]:
    d = "hl7:sender/hl7:device"
    assert _v3(w.pix_add, f"{d}/hl7:id/@root") == CLIENT
    assert _v3(w.pix_add, f"{d}/hl7:asAgent/hl7:representedOrganization/hl7:id/@root") == MO
    return ["<clientEntityId>", _v3(w.pix_add, f"{d}/hl7:name"), "<МО OID>"]


@check("PIX-PATIENT-ID")
def _pix_patient_id(w: Wire) -> list[str]:
    base = "hl7:controlActProcess/hl7:subject/hl7:registrationEvent/hl7:subject1/hl7:patient/hl7:id"
    assert _v3(w.pix_add, f"{base}/@root") == MO and _v3(w.pix_add, f"{base}/@extension")
    return ["<МО OID>", "<local id>"]


@check("PIX-GENDER")
def _pix_gender(w: Wire) -> list[str]:
    return _one([_v3(m, f"{_patient_person(m)}/hl7:administrativeGenderCode/@codeSystem") for m in w.pix_adds],
                "gender code system")


def _other_ids(m: Msg) -> list:
    return m.xpath(f"/s:Envelope/s:Body/*/{_patient_person(m)}/hl7:asOtherIDs")


def _id_type(other) -> str:  # noqa: ANN001 - an lxml element
    return other.xpath("string(hl7:documentType/@code)", namespaces=NS)


@check("PIX-ID-TYPES")
def _pix_id_types(w: Wire) -> list[str]:
    systems = {s for m in w.pix_adds for o in _other_ids(m) for s in o.xpath("hl7:documentType/@codeSystem",
                                                                                namespaces=NS)}
    assert len(systems) == 1, systems
    orders = [[_id_type(o) for o in _other_ids(m)] for m in w.pix_adds]
    longest = max(orders, key=len)
    assert len(longest) == 3, f"no generated patient has all three identifiers: {orders}"
    for order in orders:       # every patient's identifiers in the one order, whichever it has
        assert [t for t in longest if t in order] == order, orders
    return [systems.pop(), *longest]


def _of_type(w: Wire, code: str) -> list:
    found = [o for m in w.pix_adds for o in _other_ids(m) if _id_type(o) == code]
    assert found, f"no identifier of type {code} was sent"
    return found


def _x(el, path: str) -> str:  # noqa: ANN001 - an lxml element
    return el.xpath(f"string({path})", namespaces=NS)


@check("PIX-DUL")
def _pix_dul(w: Wire) -> list[str]:
    dul = _of_type(w, "5")[0]
    return [_x(dul, "hl7:documentType/@displayName"), _x(dul, "hl7:documentType/hl7:qualifier/hl7:name/@code"),
            _x(dul, "hl7:documentType/hl7:qualifier/hl7:name/@codeSystem")]


@check("PIX-DUL-ISSUER")
def _pix_dul_issuer(w: Wire) -> list[str]:
    dul = _of_type(w, "5")[0]
    assert _x(dul, "hl7:scopingOrganization/hl7:name").strip(), "the issuing authority's name"
    return [_x(dul, "hl7:scopingOrganization/hl7:id/@nullFlavor"), "name"]


@check("PIX-SNILS")
def _pix_snils(w: Wire) -> list[str]:
    snils = _of_type(w, "3")[0]
    number = _x(snils, "hl7:documentNumber/@number")
    assert number.isdigit(), number
    return [str(len(number)), _x(snils, "hl7:scopingOrganization/hl7:id/@nullFlavor")]


@check("PIX-OMS")
def _pix_oms(w: Wire) -> list[str]:
    oms = _of_type(w, "1")[0]
    assert _x(oms, "hl7:scopingOrganization/hl7:id/@extension"), "the СМО code"
    return [_x(oms, "hl7:scopingOrganization/hl7:id/@root"), "<СМО code>"]


@check("PIX-MO-PHONE")
def _pix_mo_phone(w: Wire) -> list[str]:
    path = ("/s:Envelope/s:Body/*/hl7:controlActProcess/hl7:subject/hl7:registrationEvent/hl7:subject1/hl7:patient/"
            "hl7:providerOrganization/hl7:contactParty/hl7:telecom/@value")
    return _one([m.text(path)[:4] for m in w.pix_adds], "МО phone")


@check("PIX-PATIENT-PHONE")
def _pix_patient_phone(w: Wire) -> list[str]:
    phones = [t for m in w.pix_adds for t in m.xpath(f"/s:Envelope/s:Body/*/{_patient_person(m)}/hl7:telecom")]
    assert phones, "no patient phone was sent"
    assert etree.QName(phones[0].getprevious()).localname == "name"
    return [etree.QName(phones[0]).localname, phones[0].get("value")[:4]]


@check("PIX-ACK")
def _pix_ack(w: Wire) -> list[str]:
    return [code for code in ("CA", "AA", "CE", "AE", "CR", "AR")
            if pix.Acknowledgement(code, "", "").accepted]


# --- 4. PDQ ------------------------------------------------------------------------------------------------------

@check("PDQ-ACTION")
def _pdq_action(w: Wire) -> list[str]:
    return [w.pdq.text("/s:Envelope/s:Header/wsa:Action")]


@check("PDQ-RESPONSE-ACTION")
def _pdq_response(w: Wire) -> list[str]:
    return list(pdq.ACTIONS.values())


@check("PDQ-INTERACTION")
def _pdq_interaction(w: Wire) -> list[str]:
    return [_v3(w.pdq, "hl7:interactionId/@extension"), _v3(w.pdq, "hl7:interactionId/@root")]


# --- 5. ITI-41 ---------------------------------------------------------------------------------------------------

_REQUEST = "/s:Envelope/s:Body/xds:ProvideAndRegisterDocumentSetRequest"
_OBJECTS = f"{_REQUEST}/lcm:SubmitObjectsRequest/rim:RegistryObjectList"
_ENTRY = f"{_OBJECTS}/rim:ExtrinsicObject"


def _classification(m: Msg, scheme: str) -> tuple[str, str]:
    c = m.xpath(f"{_ENTRY}/rim:Classification[@classificationScheme='{scheme}']")
    assert len(c) == 1, f"one classification {scheme}"
    return c[0].get("nodeRepresentation"), _x(c[0], "rim:Slot[@name='codingScheme']/rim:ValueList/rim:Value")


def _slot(m: Msg, name: str, where: str = _ENTRY) -> str:
    return m.text(f"{where}/rim:Slot[@name='{name}']/rim:ValueList/rim:Value")


def _document(m: Msg) -> bytes:
    return base64.b64decode(m.text(f"{_REQUEST}/xds:Document"))


@check("XDS-ACTION")
def _xds_action(w: Wire) -> list[str]:
    return [w.iti41.text("/s:Envelope/s:Header/wsa:Action")]


@check("XDS-REPLY-TO")
def _xds_reply_to(w: Wire) -> list[str]:
    address = w.iti41.text("/s:Envelope/s:Header/wsa:ReplyTo/wsa:Address")
    assert address.startswith("http") and address != soap.ANONYMOUS
    return [urlsplit(address).path]


@check("XDS-BODY")
def _xds_body(w: Wire) -> list[str]:
    body = w.iti41.xpath("/s:Envelope/s:Body/*")[0]
    documents = w.iti41.xpath(f"{_REQUEST}/xds:Document")
    assert len(documents) == 1 and xml.parse(_document(w.iti41)).tag == "{urn:hl7-org:v3}ClinicalDocument"
    return [etree.QName(body).namespace, etree.QName(body).localname, etree.QName(documents[0]).localname]


@check("XDS-OBJECT-TYPE")
def _xds_object_type(w: Wire) -> list[str]:
    entry = w.iti41.xpath(_ENTRY)[0]
    return [entry.get("objectType"), entry.get("mimeType")]


@check("XDS-FORMAT-CODE")
def _xds_format(w: Wire) -> list[str]:
    return list(_classification(w.iti41, SCHEME_FORMAT_CODE))


@check("XDS-CLASS-CODE")
def _xds_class(w: Wire) -> list[str]:
    code, scheme = _classification(w.iti41, SCHEME_CLASS_CODE)
    cda = xml.parse(_document(w.iti41))
    # The type is the document's own: ClinicalDocument/code, the same НСИ 1522 code.
    assert code == cda.xpath("string(/hl7:ClinicalDocument/hl7:code/@code)", namespaces=NS), code
    return [scheme]


@check("XDS-TYPE-CODE")
def _xds_type(w: Wire) -> list[str]:
    return list(_classification(w.iti41, SCHEME_TYPE_CODE))


@check("XDS-CONFIDENTIALITY")
def _xds_confidentiality(w: Wire) -> list[str]:
    return list(_classification(w.iti41, SCHEME_CONFIDENTIALITY))


@check("XDS-AUTHOR")
def _xds_author(w: Wire) -> list[str]:
    author = w.iti41.xpath(f"{_ENTRY}/rim:Classification[@classificationScheme='{SCHEME_AUTHOR}']")[0]
    names = [slot.get("name") for slot in author.xpath("rim:Slot", namespaces=NS)]
    person = _x(author, "rim:Slot[@name='authorPerson']/rim:ValueList/rim:Value").split("^")
    assert len(person) == 4 and person[0].isdigit() and len(person[0]) == 11, person
    institution = _x(author, "rim:Slot[@name='authorInstitution']/rim:ValueList/rim:Value")
    m = re.fullmatch(r"[^^]+\^\^\^\^\^&([0-9.]+)&ISO\^\^\^\^(?P<mo>[0-9.]+)", institution)
    assert m and m["mo"] == MO, institution
    return [*names, m.group(1)]


@check("XDS-PATIENT-ID")
def _xds_patient(w: Wire) -> list[str]:
    patient = w.iti41.xpath(f"{_ENTRY}/rim:ExternalIdentifier[@identificationScheme='{EI_PATIENT_ID}']/@value")[0]
    assert _slot(w.iti41, "sourcePatientId") == patient
    local, _, rest = patient.partition("^^^&")
    assert local and rest == f"{MO}&ISO", patient
    return ["<local id>^^^&<МО OID>&ISO"]


@check("XDS-UNIQUE-ID")
def _xds_unique(w: Wire) -> list[str]:
    unique = w.iti41.xpath(f"{_ENTRY}/rim:ExternalIdentifier[@identificationScheme='{EI_UNIQUE_ID}']/@value")[0]
    cda = xml.parse(_document(w.iti41))
    root = cda.xpath("string(/hl7:ClinicalDocument/hl7:id/@root)", namespaces=NS)
    extension = cda.xpath("string(/hl7:ClinicalDocument/hl7:id/@extension)", namespaces=NS)
    assert unique == f"{root}^{extension}", unique
    return ["<root>^<extension>"]


@check("XDS-SLOTS")
def _xds_slots(w: Wire) -> list[str]:
    return [slot.get("name") for slot in w.iti41.xpath(f"{_ENTRY}/rim:Slot")]


@check("XDS-LANGUAGE")
def _xds_language(w: Wire) -> list[str]:
    return [_slot(w.iti41, "languageCode")]


@check("XDS-ENTRY-UUID")
def _xds_entry_uuid(w: Wire) -> list[str]:
    ids = w.iti41.xpath(f"{_OBJECTS}/*/@id | {_ENTRY}/*/@id")
    assert ids and all(is_urn_uuid(i) for i in ids), ids
    assert w.iti41.xpath(f"{_REQUEST}/xds:Document/@id")[0] == w.iti41.xpath(f"{_ENTRY}/@id")[0]
    return ["urn:uuid:"]


@check("XDS-HASH-SIZE")
def _xds_hash(w: Wire) -> list[str]:
    data = _document(w.iti41)
    assert _slot(w.iti41, "hash") == hashlib.sha1(data).hexdigest()  # noqa: S324 - IHE's hash is SHA-1
    assert _slot(w.iti41, "size") == str(len(data))
    return ["sha1", "bytes"]


@check("XDS-REPOSITORY-ID")
def _xds_repository(w: Wire) -> list[str]:
    return [_slot(w.iti41, "repositoryUniqueId")]


@check("XDS-SUBMISSION-SET")
def _xds_submission_set(w: Wire) -> list[str]:
    package = w.iti41.xpath(f"{_OBJECTS}/rim:RegistryPackage")[0]
    node = w.iti41.xpath(f"{_OBJECTS}/rim:Classification[@classifiedObject='{package.get('id')}']"
                         "/@classificationNode")
    source = _x(package, f"rim:ExternalIdentifier[@identificationScheme='{submit.EI_SS_SOURCE_ID}']/@value")
    assert source.startswith(f"{MO}.") and source.removeprefix(f"{MO}.") == settings.load({}).mis_number, source
    return [*node, "<МО OID>.<IEMK_MIS_NUMBER>"]


@check("XDS-ASSOCIATION")
def _xds_association(w: Wire) -> list[str]:
    association = w.iti41.xpath(f"{_OBJECTS}/rim:Association")[0]
    status = _x(association, "rim:Slot[@name='SubmissionSetStatus']/rim:ValueList/rim:Value")
    return [association.get("associationType"), status, submit.RPLC]


# --- 6. ITI-18 and ITI-43 ----------------------------------------------------------------------------------------

_QUERY = "/s:Envelope/s:Body/query:AdhocQueryRequest"


@check("ITI18-ACTION")
def _iti18_action(w: Wire) -> list[str]:
    return [w.iti18.text("/s:Envelope/s:Header/wsa:Action")]


@check("ITI18-QUERY")
def _iti18_query(w: Wire) -> list[str]:
    slots = [s for s in w.iti18.xpath(f"{_QUERY}/rim:AdhocQuery/rim:Slot/@name") if s.startswith("$XDSDocumentEntry")
             and s not in ("$XDSDocumentEntryStatus",) and "Time" not in s]
    return [w.iti18.text(f"{_QUERY}/rim:AdhocQuery/@id"), *slots,
            w.iti18.text(f"{_QUERY}/query:ResponseOption/@returnType")]


@check("ITI18-KIND")
def _iti18_kind(w: Wire) -> list[str]:
    request = xds_query.build_request(xds_query.DocumentQuery(mo_oid=MO, kind_code=42),
                                      settings.load({}).xds_metadata_layout)
    names = request.xpath("rim:AdhocQuery/rim:Slot/@name", namespaces=NS)
    return [n for n in names if n.endswith("Code")]


@check("ITI18-ANSWER")
def _iti18_answer(w: Wire) -> list[str]:
    entry = xds_query.DocumentEntry("1.2^3", "P", 42, None, xds_query.APPROVED, "0" * 40, 1,
                                    "urn:uuid:9b1c7f0e-3c59-4d2a-9a61-0b7e0c1f5e21", "1.2.3")
    answer = xds_query.build_response([entry])
    required = []
    for name, break_it in (("urn:uuid:", lambda eo: eo.set("id", "Document01")),
                           ("hash", lambda eo: _drop_slot(eo, "hash")), ("size", lambda eo: _drop_slot(eo, "size")),
                           ("repositoryUniqueId", lambda eo: _drop_slot(eo, "repositoryUniqueId"))):
        broken = copy.deepcopy(answer)
        break_it(broken.xpath("//rim:ExtrinsicObject", namespaces=NS)[0])
        try:
            xds_query.read_response(broken)
        except xds_query.RegistryMetadataError:
            required.append(name)
    return required


def _drop_slot(eo, name: str) -> None:  # noqa: ANN001 - an lxml element
    for slot in eo.xpath(f"rim:Slot[@name='{name}']", namespaces=NS):
        eo.remove(slot)


@check("ITI43-REQUEST")
def _iti43(w: Wire) -> list[str]:
    item = w.iti43.xpath("/s:Envelope/s:Body/xds:RetrieveDocumentSetRequest/xds:DocumentRequest")[0]
    return [w.iti43.text("/s:Envelope/s:Header/wsa:Action"), *[etree.QName(c).localname for c in item]]


# --- 7. Answers, errors, sizes -----------------------------------------------------------------------------------

@check("ANSWER-STATUS")
def _answer_status(w: Wire) -> list[str]:
    return [SUCCESS, FAILURE, PARTIAL_SUCCESS]


@check("ANSWER-ACTION")
def _answer_action(w: Wire) -> list[str]:
    return [submit.ASYNC_RESPONSE_ACTION]


@check("REPLY-SIGNATURE")
def _reply_signature(w: Wire) -> list[str]:
    return [*wssecurity.RESPONSE_PARTS, settings.load({}).reply_signature]


@check("UNKNOWN-CLIENT")
def _unknown_client(w: Wire) -> list[str]:
    return [w.unknown_client.code, w.unknown_client.subcode or ""]


@check("MAX-MESSAGE")
def _max_message(w: Wire) -> list[str]:
    return _one([str(settings.load({}).max_message_bytes), str(xml.MAX_MESSAGE_BYTES),
                 str(http_server.MAX_BODY_BYTES)], "message limit")


@check("HTTP-REQUEST-FRAMING")
def _request_framing(w: Wire) -> list[str]:
    return _one([s.framing for s in w.all], "request body framing")


@check("HTTP-REFUSALS")
def _http_refusals(w: Wire) -> list[str]:
    def status(headers: dict[str, str]) -> str:
        message = email.message.Message()
        for k, v in headers.items():
            message[k] = v
        try:
            http_server.framing(message, xml.MAX_MESSAGE_BYTES)
        except http_server.BodyError as exc:
            return str(exc.status)
        return "200"
    return [status({"Content-Length": str(xml.MAX_MESSAGE_BYTES + 1)}), status({"Content-Length": "-5"}),
            status({"Transfer-Encoding": "gzip"})]


@check("XML-PARSING")
def _xml_parsing(w: Wire) -> list[str]:
    found = []
    big = b"<a>" + b"x" * (11 * 2**20) + b"</a>"
    if len(xml.parse(big).text) == 11 * 2**20:
        found.append("huge_tree")
    try:
        xml.parse(b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>')
    except xml.UnsafeXmlError:
        found.append("DOCTYPE")
    return found


# --- the page and the checks agree ------------------------------------------------------------------------------

def test_every_row_has_a_check_and_every_check_a_row() -> None:
    assert sorted(set(ROWS) - set(CHECKS)) == [], "rows of docs/federal-contract.md without a check"
    assert sorted(set(CHECKS) - set(ROWS)) == [], "checks without a row in docs/federal-contract.md"


def test_every_row_gives_a_value() -> None:
    assert [r for r, values in ROWS.items() if not values] == []


@pytest.mark.parametrize("row_id", sorted(ROWS))
def test_the_code_does_what_the_page_says(row_id: str, wire: Wire) -> None:
    if row_id not in CHECKS:
        pytest.fail(f"{row_id}: no check")
    assert CHECKS[row_id](wire) == ROWS[row_id], f"{row_id}: the code and docs/federal-contract.md disagree"
