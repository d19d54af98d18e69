"""An independent client, written from the evidence, against the emulator (issue 12, items 2 and 4).

Every message here is built by hand with lxml from the reconstructed ITI-41 skeleton
(../shared/samples/reconstructed/iemk_iti41_request_skeleton.xml), iemk-protocol.md §2.2 and IHE ITI TF-3, as a
new integrator would — none of our protocol/xds builders or readers. Only the WS-Security signature is ours
(wssecurity.sign_envelope), as any integrator signs with the library they have. The asynchronous answers go to a
bare HTTP listener of this test, not to our callback receiver.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from lxml import etree

from iemk_etl import semd
from iemk_etl.emulator.server import REGISTRY_PATH, REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.protocol import snils
from iemk_etl.signing import keys, wssecurity

from semd_helpers import cases

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
EGIS = "http://egisz.rosminzdrav.ru"
XDS = "urn:ihe:iti:xds-b:2007"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
CDA = "urn:hl7-org:v3"
N = {"s": SOAP, "xds": XDS, "rim": RIM, "rs": RS, "query": QUERY, "h": CDA}
CLIENT = "17c74e63-dc38-438d-a27a-a1aa063ee7b8"
REPOSITORY_ID = "1.2.643.5.1.13.2.7.100.1"
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
NSI_1522 = "1.2.643.5.1.13.13.11.1522"
KINDS = (41, 42, 43, 119, 174, 186)


def shared_dir() -> Path:
    import os

    return Path(os.environ.get("IEMK_SHARED_DIR") or Path(__file__).resolve().parents[2].parent / "shared")


# -- a bare listener for the asynchronous RegistryResponse ----------------------------------------------------

class _Listener(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[bytes] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/ips/callback"

    def reply_to(self, message_id: str, timeout: float = 20) -> etree._Element:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body in list(self.bodies):
                env = etree.fromstring(body)
                if env.findtext(f"{{{SOAP}}}Header/{{{WSA}}}RelatesTo") == message_id:
                    return env.find(f"{{{SOAP}}}Body/{{{RS}}}RegistryResponse")
            time.sleep(0.05)
        raise AssertionError(f"no RegistryResponse relating to {message_id}")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.server.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))  # type: ignore[attr-defined]
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stand(fresh_dsn, flk_packs, dev_keys):
    listener = _Listener()
    thread = threading.Thread(target=listener.serve_forever, daemon=True)
    thread.start()
    config = EmulatorConfig(packs_dir=flk_packs, reply_delay=0.02, repository_id=REPOSITORY_ID)
    try:
        with EmulatorServer(config, fresh_dsn) as emulator:
            yield emulator.url, listener, keys.load_signer(*dev_keys)
    finally:
        listener.shutdown()
        listener.server_close()


# -- the client -----------------------------------------------------------------------------------------------

def _envelope(action: str, body: etree._Element, to: str, reply_to: str, message_id: str) -> etree._Element:
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"soap": SOAP, "a": WSA, "egis": EGIS})
    header = etree.SubElement(env, f"{{{SOAP}}}Header")
    auth = etree.SubElement(etree.SubElement(header, f"{{{EGIS}}}transportHeader"), f"{{{EGIS}}}authInfo")
    etree.SubElement(auth, f"{{{EGIS}}}clientEntityId").text = CLIENT
    etree.SubElement(header, f"{{{WSA}}}Action").text = action
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = message_id
    etree.SubElement(etree.SubElement(header, f"{{{WSA}}}ReplyTo"), f"{{{WSA}}}Address").text = reply_to
    etree.SubElement(header, f"{{{WSA}}}To").text = to
    etree.SubElement(env, f"{{{SOAP}}}Body").append(body)
    return env


def _post(url: str, action: str, body: etree._Element, signer, *, reply_to: str = f"{WSA}/anonymous",
          message_id: str | None = None) -> httpx.Response:
    env = _envelope(action, body, url, reply_to, message_id or f"urn:uuid:{uuid.uuid4()}")
    wssecurity.sign_envelope(env, signer)
    return httpx.post(url, content=etree.tostring(env, xml_declaration=True, encoding="UTF-8"), timeout=30,
                      headers={"Content-Type": "application/soap+xml;charset=UTF-8"})


def _el(parent: etree._Element, ns: str, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    node = etree.SubElement(parent, f"{{{ns}}}{tag}", **attrs)
    node.text = text
    return node


def _slot(parent: etree._Element, name: str, value: str) -> None:
    _el(_el(_el(parent, RIM, "Slot", name=name), RIM, "ValueList"), RIM, "Value", value)


def _classification(parent: etree._Element, scheme: str, obj: str, code: str, coding: str) -> etree._Element:
    cl = _el(parent, RIM, "Classification", id=f"urn:uuid:{uuid.uuid4()}", classificationScheme=scheme,
             classifiedObject=obj, nodeRepresentation=code)
    _slot(cl, "codingScheme", coding)
    return cl


def _external_id(parent: etree._Element, scheme: str, obj: str, value: str, name: str) -> None:
    ei = _el(parent, RIM, "ExternalIdentifier", id=f"urn:uuid:{uuid.uuid4()}", registryObject=obj,
             identificationScheme=scheme, value=value)
    _el(_el(ei, RIM, "Name"), RIM, "LocalizedString", value=name)


def _facts(data: bytes) -> dict[str, str]:
    """What an integrator reads out of its own СЭМД for the metadata."""
    root = etree.fromstring(data)

    def x(path: str) -> str:
        return root.xpath(f"string({path})", namespaces=N)

    mo = x("/h:ClinicalDocument/h:custodian/h:assignedCustodian/h:representedCustodianOrganization/h:id/@root")
    return {
        "unique_id": f"{x('/h:ClinicalDocument/h:id/@root')}^{x('/h:ClinicalDocument/h:id/@extension')}",
        "patient": f"{x('/h:ClinicalDocument/h:recordTarget/h:patientRole/h:id[1]/@extension')}^^^&{mo}&ISO",
        "author_snils": x("/h:ClinicalDocument/h:author/h:assignedAuthor/h:id[@root='1.2.643.100.3']/@extension"),
        "type": x("/h:ClinicalDocument/h:code/@code"), "type_name": x("/h:ClinicalDocument/h:code/@displayName"),
        "created": x("/h:ClinicalDocument/h:effectiveTime/@value")[:14], "mo": mo,
    }


def _iti41(data: bytes, *, class_code: str | None = None) -> tuple[etree._Element, str]:
    """ProvideAndRegisterDocumentSetRequest as the skeleton lays it out, with IHE's urn:uuid ids, hash and size."""
    f = _facts(data)
    entry, package = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    request = etree.Element(f"{{{XDS}}}ProvideAndRegisterDocumentSetRequest", nsmap={None: XDS, "lcm": LCM,
                                                                                   "rim": RIM})
    objects = _el(_el(request, LCM, "SubmitObjectsRequest"), RIM, "RegistryObjectList")
    eo = _el(objects, RIM, "ExtrinsicObject", id=entry, mimeType="text/xml",
             objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1")
    for name, value in (("creationTime", f["created"]), ("languageCode", "RU"), ("sourcePatientId", f["patient"]),
                        ("hash", hashlib.sha1(data).hexdigest()), ("size", str(len(data))),
                        ("repositoryUniqueId", REPOSITORY_ID)):
        _slot(eo, name, value)
    _el(_el(eo, RIM, "Name"), RIM, "LocalizedString", value=f["type_name"])
    author = _el(eo, RIM, "Classification", id=f"urn:uuid:{uuid.uuid4()}", classifiedObject=entry,
                 classificationScheme="urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d", nodeRepresentation="")
    _slot(author, "authorPerson", f"{f['author_snils']}^Автор^Документа^")
    _slot(author, "authorInstitution", f"МО^^^^^&1.2.643.5.1.13.2.1.1.178&ISO^^^^{f['mo']}")
    _classification(eo, "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a", entry, class_code or f["type"], NSI_1522)
    _classification(eo, "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f", entry, "N", "1.2.643.5.1.13.2.7.1.10")
    _classification(eo, "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d", entry, "application/hl7-cda-level-one+xml",
                    "1.2.643.5.1.13.2.7.1.40")
    _classification(eo, "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983", entry, "POCD_MT000040_RU01",
                    "2.16.840.1.113883.1.3")
    _external_id(eo, "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427", entry, f["patient"],
                 "XDSDocumentEntry.patientId")
    _external_id(eo, "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab", entry, f["unique_id"],
                 "XDSDocumentEntry.uniqueId")
    rp = _el(objects, RIM, "RegistryPackage", id=package)
    _slot(rp, "submissionTime", time.strftime("%Y%m%d%H%M%S", time.gmtime()))
    _external_id(rp, "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8", package, f"2.25.{uuid.uuid4().int}",
                 "XDSSubmissionSet.uniqueId")
    _external_id(rp, "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832", package, f["mo"], "XDSSubmissionSet.sourceId")
    _external_id(rp, "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446", package, f["patient"],
                 "XDSSubmissionSet.patientId")
    _el(objects, RIM, "Classification", id=f"urn:uuid:{uuid.uuid4()}", classifiedObject=package,
        classificationNode="urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd")
    association = _el(objects, RIM, "Association", id=f"urn:uuid:{uuid.uuid4()}", sourceObject=package,
                      associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember",
                      targetObject=entry)
    _slot(association, "SubmissionSetStatus", "Original")
    _el(request, XDS, "Document", base64.b64encode(data).decode(), id=entry)
    return request, entry


def _find_documents(patient: str, class_code: str | None = None) -> etree._Element:
    request = etree.Element(f"{{{QUERY}}}AdhocQueryRequest", nsmap={"query": QUERY, "rim": RIM})
    _el(request, QUERY, "ResponseOption", returnType="LeafClass", returnComposedObjects="true")
    query = _el(request, RIM, "AdhocQuery", id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d")
    _slot(query, "$XDSDocumentEntryPatientId", f"'{patient}'")
    _slot(query, "$XDSDocumentEntryStatus", "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')")
    if class_code:
        _slot(query, "$XDSDocumentEntryClassCode", f"('{class_code}^^{NSI_1522}')")
    return request


def _retrieve(unique_id: str, repository: str) -> etree._Element:
    request = etree.Element(f"{{{XDS}}}RetrieveDocumentSetRequest", nsmap={None: XDS})
    item = _el(request, XDS, "DocumentRequest")
    _el(item, XDS, "RepositoryUniqueId", repository)
    _el(item, XDS, "DocumentUniqueId", unique_id)
    return request


def _body(response: httpx.Response) -> etree._Element:
    assert response.status_code == 200, response.text
    return etree.fromstring(response.content).find(f"{{{SOAP}}}Body")[0]


def _document(kind: int) -> bytes:
    """A generated СЭМД of the kind whose patient has a valid СНИЛС (ИЭМК checks its check digit)."""
    for case in cases(kind):
        data = semd.build(case)
        number = etree.fromstring(data).xpath(
            "string(/h:ClinicalDocument/h:recordTarget/h:patientRole/h:id[@root='1.2.643.100.3']/@extension)",
            namespaces=N)
        if not number or snils.is_valid(number):
            return data
    raise AssertionError(f"no kind {kind} case with a valid СНИЛС")


def test_the_skeleton_is_the_evidence_this_client_follows():
    skeleton = shared_dir() / "samples" / "reconstructed" / "iemk_iti41_request_skeleton.xml"
    if not skeleton.is_file():
        pytest.skip(f"the reconstructed ITI-41 skeleton is not at {skeleton}")
    root = etree.parse(str(skeleton)).getroot()

    def code(scheme: str) -> tuple[str, str]:
        cl = root.xpath("//rim:ExtrinsicObject/rim:Classification[@classificationScheme=$s]", namespaces=N,
                        s=scheme)[0]
        return cl.get("nodeRepresentation"), cl.xpath("string(.//rim:Value)", namespaces=N)

    assert code("urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d") == ("application/hl7-cda-level-one+xml",
                                                                      "1.2.643.5.1.13.2.7.1.40")
    assert code("urn:uuid:f0306f51-975f-434e-a61c-c59651d33983") == ("POCD_MT000040_RU01", "2.16.840.1.113883.1.3")
    assert code("urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f") == ("N", "1.2.643.5.1.13.2.7.1.10")
    # the kind: a document type («1» Эпикриз стационара) in the 2013 OID of the dictionary 1522 replaced
    assert code("urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a") == ("1", "1.2.643.5.1.13.2.1.1.646")


def test_an_independent_client_submits_finds_and_retrieves_documents_of_all_six_kinds(stand):
    url, listener, signer = stand
    sent: dict[str, tuple[bytes, str, str]] = {}
    for kind in KINDS:
        data = _document(kind)
        request, entry = _iti41(data)
        mid = f"urn:uuid:{uuid.uuid4()}"
        answer = _post(url + REPOSITORY_PATH, "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b", request, signer,
                       reply_to=listener.url, message_id=mid)
        assert answer.status_code in (200, 202), answer.text
        reply = listener.reply_to(mid)
        errors = [e.get("codeContext") for e in reply.iter(f"{{{RS}}}RegistryError")]
        assert reply.get("status") == SUCCESS, (kind, errors)
        sent[_facts(data)["unique_id"]] = (data, entry, _facts(data)["patient"])

    for unique_id, (data, entry, patient) in sent.items():
        found = _body(_post(url + REGISTRY_PATH, "urn:ihe:iti:2007:RegistryStoredQuery", _find_documents(patient),
                            signer))
        assert found.get("status") == SUCCESS
        [eo] = [e for e in found.iter(f"{{{RIM}}}ExtrinsicObject")
                if e.xpath("string(rim:ExternalIdentifier[@identificationScheme="
                           "'urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab']/@value)", namespaces=N) == unique_id]

        def slot(name: str, eo: etree._Element = eo) -> str:
            return eo.xpath("string(rim:Slot[@name=$n]/rim:ValueList/rim:Value)", namespaces=N, n=name)

        assert eo.get("id") == entry and uuid.UUID(entry.removeprefix("urn:uuid:"))    # the entryUUID we sent
        assert slot("hash") == hashlib.sha1(data).hexdigest()
        assert slot("size") == str(len(data))
        assert slot("repositoryUniqueId") == REPOSITORY_ID
        doc_type = _facts(data)["type"]
        by_class = _body(_post(url + REGISTRY_PATH, "urn:ihe:iti:2007:RegistryStoredQuery",
                               _find_documents(patient, doc_type), signer))
        assert entry in by_class.xpath("//rim:ExtrinsicObject/@id", namespaces=N)
        other = "7" if doc_type != "7" else "5"
        by_other = _body(_post(url + REGISTRY_PATH, "urn:ihe:iti:2007:RegistryStoredQuery",
                               _find_documents(patient, other), signer))
        assert entry not in by_other.xpath("//rim:ExtrinsicObject/@id", namespaces=N)

        got = _body(_post(url + REPOSITORY_PATH, "urn:ihe:iti:2007:RetrieveDocumentSet",
                          _retrieve(unique_id, slot("repositoryUniqueId")), signer))
        assert got.xpath("string(rs:RegistryResponse/@status)", namespaces=N) == SUCCESS
        assert base64.b64decode(got.findtext(f"{{{XDS}}}DocumentResponse/{{{XDS}}}Document")) == data


@pytest.mark.parametrize(("class_code", "slot_change", "error_code"), [
    ("5", None, "XDSRegistryMetadataError"),                 # a consultation protocol's type on an epicrisis
    (None, ("hash", "0" * 40), "XDSRepositoryMetadataError"),
    (None, ("size", "1"), "XDSRepositoryMetadataError"),
])
def test_metadata_contradicting_the_document_are_refused_with_the_ihe_error(stand, class_code, slot_change,
                                                                            error_code):
    url, listener, signer = stand
    data = _document(42)
    request, _ = _iti41(data, class_code=class_code)
    if slot_change:
        name, value = slot_change
        request.xpath("//rim:ExtrinsicObject/rim:Slot[@name=$n]/rim:ValueList/rim:Value", namespaces=N,
                      n=name)[0].text = value
    mid = f"urn:uuid:{uuid.uuid4()}"
    assert _post(url + REPOSITORY_PATH, "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b", request, signer,
                 reply_to=listener.url, message_id=mid).status_code in (200, 202)
    reply = listener.reply_to(mid)
    assert reply.get("status") == FAILURE
    assert [e.get("errorCode") for e in reply.iter(f"{{{RS}}}RegistryError")] == [error_code]


def test_a_submission_without_a_class_code_misses_required_metadata(stand):
    url, listener, signer = stand
    request, _ = _iti41(_document(42))
    for cl in request.xpath("//rim:Classification[@classificationScheme="
                            "'urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a']", namespaces=N):
        cl.getparent().remove(cl)
    mid = f"urn:uuid:{uuid.uuid4()}"
    _post(url + REPOSITORY_PATH, "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b", request, signer,
          reply_to=listener.url, message_id=mid)
    [error] = listener.reply_to(mid).iter(f"{{{RS}}}RegistryError")
    assert error.get("errorCode") == "XDSMissingDocumentMetadata" and "classCode" in error.get("codeContext")
