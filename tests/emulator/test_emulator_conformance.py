"""Conformance of the ИЭМК emulator, every operation over real HTTP: PIX feed, PDQ, ITI-41 registry rules,
ITI-18 and ITI-43, with positive and negative cases, and the public PIX sample."""

import dataclasses
import datetime as dt
import time
from pathlib import Path

import pytest
from lxml import etree

from iemk_etl.emulator.server import PDQ_PATH, PIX_PATH, REGISTRY_PATH, REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.protocol import soap, xml
from iemk_etl.protocol.hl7v3 import pdq, pix
from iemk_etl.protocol.hl7v3.common import SNILS_TYPE, V3, OtherId, PatientRecord
from iemk_etl.protocol.xds import query as xds_query
from iemk_etl.protocol.xds import retrieve, submit
from iemk_etl.protocol.xds.common import RegistryResponse, patient_cx
from iemk_etl.semd.header import unique_id
from iemk_etl.signing import keys
from iemk_etl.transport import client
from iemk_etl.transport.callback import CallbackServer

from cda_factory import MO, document
from exchange_helpers import _replies, _submission, shared_dir

SAMPLES = (shared_dir() or Path(__file__).resolve().parents[3] / "shared") / "samples" / "pix"
H = {"h": V3}


@pytest.fixture
def contour(fresh_dsn, flk_packs, dev_keys):
    config = EmulatorConfig(packs_dir=flk_packs, reply_delay=0.02, require_registered_patient=True)
    with EmulatorServer(config, fresh_dsn) as emulator, CallbackServer(fresh_dsn) as callback, \
            client.IemkClient(emulator.url + REPOSITORY_PATH, client_entity_id="17c74e63-dc38-438d-a27a-a1aa063ee7b8",
                              signer=keys.load_signer(*dev_keys), timeout=10) as iemk:
        yield dataclasses.make_dataclass("Contour", ["url", "callback", "iemk", "dsn", "emulator"])(
            emulator.url, callback.url, iemk, fresh_dsn, emulator)


def _patient(local_id="P-1", *, family="Иванов", snils="11223344595", mo=MO.oid) -> PatientRecord:
    return PatientRecord(mo, local_id, family, "Иван", "Иванович", "1", "19800102",
                               (OtherId(SNILS_TYPE, snils),))


def _feed(c, record, interaction=pix.ADD) -> pix.Acknowledgement:
    body = pix.build_feed(interaction, record, system_id="17c74e63-dc38-438d-a27a-a1aa063ee7b8",
                            system_name="iemk-etl", mo_name=MO.name)
    answer = c.iemk.call(c.url + PIX_PATH, pix.ACTION[interaction], body, service="pix")
    assert answer.addressing.action == pix.ACTION[pix.ACK]
    return pix.read_ack(answer.body)


# -- PIX ------------------------------------------------------------------------------------------------------

def _shape(el: etree._Element, path: str = "") -> list[tuple[str, tuple[str, ...]]]:
    here = f"{path}/{etree.QName(el).localname}"
    rows = [(here, tuple(sorted(el.attrib)))]
    for child in el:
        if isinstance(child.tag, str):
            rows += _shape(child, here)
    return rows


def test_the_public_pix_sample_is_answered_like_the_sample_response(contour):
    if not SAMPLES.is_dir():
        pytest.skip(f"the public PIX sample is not at {SAMPLES} (CI has ../shared/samples)")
    request = xml.parse((SAMPLES / "pix_PRPA_IN201301RU02_request.xml").read_bytes())
    expected = xml.parse((SAMPLES / "pix_MCCI_IN000002UV01_response.xml").read_bytes())
    body = request.find(f"{{{soap.SOAP}}}Body")[0]
    answer = contour.iemk.call(contour.url + PIX_PATH, pix.ACTION[pix.ADD], body, message_id="uuid:528f0f29")
    ours, theirs = answer.body, expected.find(f"{{{soap.SOAP}}}Body")[0]
    assert _shape(ours) == _shape(theirs)
    same = ["h:acknowledgement/h:typeCode/@code", "h:acknowledgement/h:targetMessage/h:id/@extension",
            "h:acknowledgement/h:targetMessage/h:id/@root", "h:acknowledgement/h:acknowledgementDetail/@typeCode",
            "h:acknowledgement/h:acknowledgementDetail/h:code/@displayName",
            "h:acknowledgement/h:acknowledgementDetail/h:code/@codeSystemName",
            "h:acknowledgement/h:acknowledgementDetail/h:location", "h:receiver/h:device/h:id/@root",
            "h:sender/h:device/h:id/@root", "h:interactionId/@extension", "h:acceptAckCode/@code",
            "h:processingModeCode/@code"]
    for xpath in same:
        assert ours.xpath(f"string({xpath})", namespaces=H).strip() == theirs.xpath(f"string({xpath})",
                                                                                     namespaces=H).strip(), xpath
    assert answer.addressing.relates_to == "uuid:528f0f29"
    assert answer.addressing.to == soap.ANONYMOUS


def test_pix_add_then_revise_and_the_checks(contour):
    assert _feed(contour, _patient()).type_code == "CA"
    assert _feed(contour, _patient()).type_code == "CA"                    # the same data again: fine
    mismatch = _feed(contour, _patient(family="Петров"))
    assert mismatch.type_code == "CE" and "не соответствует данным ГИП [Иванов]" in mismatch.detail
    revised = _feed(contour, _patient(family="Петров"), pix.REVISE)
    assert revised.type_code == "CA" and revised.detail.endswith("обработан успешно")
    unknown = _feed(contour, _patient("P-404"), pix.REVISE)
    assert unknown.type_code == "CE" and "не найден" in unknown.detail
    bad = _feed(contour, _patient("P-2", snils="11223344596"))
    assert bad.type_code == "CE" and "СНИЛС [11223344596] не валидно контрольное число" in bad.detail
    nameless = _feed(contour, dataclasses.replace(_patient("P-3"), family=None))
    assert nameless.type_code == "CE" and "фамилия и имя" in nameless.detail
    no_birth = _feed(contour, dataclasses.replace(_patient("P-4"), birth_time=None))
    assert no_birth.type_code == "CE" and "дата рождения" in no_birth.detail
    foreign = _feed(contour, _patient("P-5", mo="1.2.3.4"))
    assert foreign.type_code == "CE" and "MO code: [1.2.3.4] is not actual" in foreign.detail


# -- PDQ ------------------------------------------------------------------------------------------------------

def _search(c, query: pdq.PatientQuery) -> list[PatientRecord]:
    answer = c.iemk.call(c.url + PDQ_PATH, pdq.ACTION, pdq.build_request(query, system_id="x"),
                         service="pdq")
    assert answer.addressing.action == pdq.RESPONSE_ACTION
    return pdq.read_response(answer.body)


def test_pdq_finds_a_patient_by_each_key(contour):
    _feed(contour, _patient("P-1"))
    _feed(contour, _patient("P-2", family="Смирнова", snils="12345678964"))
    assert [p.local_id for p in _search(contour, pdq.PatientQuery(local_id=(MO.oid, "P-2")))] == ["P-2"]
    assert [p.local_id for p in _search(contour, pdq.PatientQuery(snils="11223344595"))] == ["P-1"]
    found = _search(contour, pdq.PatientQuery(family="иванов", given="Иван", birth_date="19800102"))
    assert [(p.local_id, p.family, p.snils) for p in found] == [("P-1", "Иванов", "11223344595")]
    assert _search(contour, pdq.PatientQuery(snils="00000000000")) == []


# -- ITI-41 registry rules -------------------------------------------------------------------------------------

def _send(c, data: bytes, mid: str, **changes) -> RegistryResponse:
    sub = dataclasses.replace(_submission(data), **changes)
    assert c.iemk.provide_and_register(sub, message_id=mid, reply_to=c.callback).verdict is client.Verdict.ACCEPTED
    return _replies(c.dsn, mid)[0]


def test_a_document_needs_its_patient_registered_first(contour):
    refused = _send(contour, document(), "urn:uuid:r-1")
    assert refused.errors[0].error_code == "XDSPatientRegistrationError"
    assert "patientId: [P-1]" in refused.errors[0].code_context
    _feed(contour, _patient("P-1"))
    assert _send(contour, document(), "urn:uuid:r-2").success


def test_metadata_must_agree_with_the_document(contour):
    _feed(contour, _patient("P-1"))
    kind = _send(contour, document(), "urn:uuid:m-1", kind_code=119, layout="legacy")
    assert kind.errors[0].error_code == "XDSRegistryMetadataError"
    assert kind.errors[0].code_context == "Вид СЭМД в СЭМД [42] отличается от вида СЭМД в запросе [119]"
    doc_type = _send(contour, document(), "urn:uuid:m-4", kind_code=119)      # evidence layout: classCode 5
    assert doc_type.errors[0].error_code == "XDSRegistryMetadataError"
    assert doc_type.errors[0].code_context == ("Тип документа (НСИ 1.2.643.5.1.13.13.11.1522) в СЭМД [2] отличается "
                                               "от classCode в запросе [5]")
    patient = _send(contour, document(), "urn:uuid:m-2", patient_local_id="P-9")
    assert "[P-1]" in patient.errors[0].code_context and "[P-9]" in patient.errors[0].code_context
    author = _send(contour, document(), "urn:uuid:m-3", author=submit.AuthorRef("12345678964", "Сидоров", "Олег", None))
    assert "[11223344595]" in author.errors[0].code_context and "[12345678964]" in author.errors[0].code_context


def test_a_new_version_replaces_the_previous_one(contour):
    _feed(contour, _patient("P-1"))
    assert _send(contour, document(local_uid="V-1"), "urn:uuid:v-1",
                 unique_id=unique_id(MO.oid, "V-1")).success
    orphan = _send(contour, document(local_uid="V-3"), "urn:uuid:v-3", unique_id=unique_id(MO.oid, "V-3"),
                   replaces="1.2.3^NOPE")
    assert orphan.errors[0].error_code == "XDSDocumentUniqueIdError"
    assert orphan.errors[0].code_context == "Association [RPLC] targetId with unique ID [1.2.3^NOPE] not found in " \
                                            "repository"
    assert _send(contour, document(local_uid="V-2"), "urn:uuid:v-2", unique_id=unique_id(MO.oid, "V-2"),
                 replaces=unique_id(MO.oid, "V-1")).success
    entries = _find(contour, xds_query.DocumentQuery(patient_id=patient_cx("P-1", MO.oid),
                                               statuses=(xds_query.APPROVED, xds_query.DEPRECATED)))
    assert {(e.unique_id.split("^")[1], e.status.rsplit(":", 1)[1]) for e in entries} == {
        ("V-1", "Deprecated"), ("V-2", "Approved")}


# -- ITI-18 and ITI-43 -----------------------------------------------------------------------------------------

def _find(c, query: xds_query.DocumentQuery) -> list[xds_query.DocumentEntry]:
    answer = c.iemk.call(c.url + REGISTRY_PATH, xds_query.ACTION, xds_query.build_request(query), service="registry")
    assert answer.addressing.action == xds_query.RESPONSE_ACTION
    return xds_query.read_response(answer.body)


def test_find_get_and_retrieve_documents(contour):
    _feed(contour, _patient("P-1"))
    sent = {}
    for n in range(3):
        data = document(local_uid=f"D-{n}")
        assert _send(contour, data, f"urn:uuid:d-{n}", unique_id=unique_id(MO.oid, f"D-{n}")).success
        sent[unique_id(MO.oid, f"D-{n}")] = data
    everything = _find(contour, xds_query.DocumentQuery(patient_id=patient_cx("P-1", MO.oid)))
    assert {e.unique_id for e in everything} == set(sent)
    by_mo = _find(contour, xds_query.DocumentQuery(mo_oid=MO.oid, kind_code=42,
                                             created_from=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
                                             created_to=dt.datetime(2026, 11, 2, tzinfo=dt.UTC)))
    assert {e.unique_id for e in by_mo} == set(sent)
    later = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    assert _find(contour, xds_query.DocumentQuery(mo_oid=MO.oid, created_from=later)) == []
    assert _find(contour, xds_query.DocumentQuery(mo_oid=MO.oid, kind_code=119)) == []
    one = next(iter(sent))
    assert [e.unique_id for e in _find(contour, xds_query.DocumentQuery(unique_ids=(one,)))] == [one]
    answer = contour.iemk.call(contour.url + REPOSITORY_PATH, retrieve.ACTION,
                               retrieve.build_request([one, "1.2.3^missing"], "1.2.643.5.1.13.2.7.100.1"),
                               service="repository")
    documents, errors = retrieve.read_response(answer.body)
    assert documents == {one: sent[one]}                       # byte-identical
    assert errors == ["XDSDocumentUniqueIdError: Документ с уникальным идентификатором [1.2.3^missing] не найден"]


def test_find_documents_needs_a_patient_or_an_mo(contour):
    body = xds_query.build_request(xds_query.DocumentQuery())
    answer = contour.iemk.call(contour.url + REGISTRY_PATH, xds_query.ACTION, body)
    with pytest.raises(ValueError, match="PatientId"):
        xds_query.read_response(answer.body)


@pytest.mark.parametrize("path", [PIX_PATH, PDQ_PATH, REGISTRY_PATH, REPOSITORY_PATH])
def test_every_service_refuses_an_unsigned_request(contour, path):
    import httpx

    env = soap.build_envelope(etree.Element("{urn:test}X"), soap.Addressing("urn:uuid:z", "urn:any", "x"), "client")
    response = httpx.post(contour.url + path, content=soap.to_bytes(env), headers={"Content-Type": soap.CONTENT_TYPE})
    fault = soap.find_fault(soap.parse(response.content))
    assert response.status_code == 400 and fault.subcode in ("wsa:ActionNotSupported", "wsse:NO_SIGNATURE")


def test_the_inspector_lists_messages_newest_first(contour):
    _feed(contour, _patient("P-1"))
    time.sleep(0.01)
    _feed(contour, _patient("P-1", snils="11223344596"))
    rows = contour.emulator.store.recent_messages()
    assert [r["verdict"] for r in rows[:2]] == ["failure", "success"]
    assert "не валидно контрольное число" in rows[0]["detail"]


@pytest.mark.parametrize(("path", "service"), [(PIX_PATH, "pix"), (PDQ_PATH, "pdq"), (REGISTRY_PATH, "registry"),
                                               (REPOSITORY_PATH, "repository")])
def test_each_service_publishes_its_wsdl(contour, path, service):
    import zeep

    from iemk_etl.protocol import wsdl

    remote = zeep.Client(contour.url + path + "?wsdl", transport=zeep.Transport(timeout=5, operation_timeout=5))
    port = next(iter(next(iter(remote.wsdl.services.values())).ports.values()))
    assert {op.soapaction for op in port.binding._operations.values()} == wsdl.actions(service)
    assert port.binding_options["address"] == contour.url + path


def test_the_client_refuses_an_operation_its_wsdl_lacks(contour):
    from iemk_etl.protocol import wsdl

    with pytest.raises(wsdl.UnknownOperationError):
        contour.iemk.call(contour.url + PIX_PATH, xds_query.ACTION, etree.Element("{urn:x}Q"), service="pix")


def test_an_oversized_body_is_refused_before_it_is_read(contour):
    import socket
    from urllib.parse import urlsplit

    host, port = urlsplit(contour.url).hostname, urlsplit(contour.url).port
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(f"POST {REPOSITORY_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: {soap.CONTENT_TYPE}\r\n"
                  f"Content-Length: {200 * 1024 * 1024}\r\n\r\n".encode())
        head = s.recv(200).decode()
    assert head.startswith("HTTP/1.1 413")
