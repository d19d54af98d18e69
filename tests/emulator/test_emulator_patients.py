"""The emulator's patient services against the real samples and both PDQ action spellings, over HTTP.

PIX: the real request (../shared/samples/pix) is sent as it is — its body, in an envelope our client signs — and the
answer must equal the real acknowledgement, ids and times aside; what the real service refuses stays refused.
PDQ: the client sends the action IEMK_PDQ_ACTION says (IHE ITI-47's by default, or the short one); the emulator
answers each with the matching response action and refuses any other action with a SOAP fault.
"""

from __future__ import annotations

import pytest
from lxml import etree

from iemk_etl import settings
from iemk_etl.emulator.server import PDQ_PATH, PIX_PATH, REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.pipeline import queries
from iemk_etl.protocol import soap, xml
from iemk_etl.protocol.hl7v3 import pdq, pix
from iemk_etl.signing import keys
from iemk_etl.store import audit
from iemk_etl.transport import client

from exchange_helpers import assert_same_message, sample

V3 = {"h": "urn:hl7-org:v3"}
MO_OID, LOCAL_ID = "1.2.643.5.1.13.3.25.1.1", "af6a43e3-4d3a-411d-b8a6-d40adffc2c0a"
SYSTEM_ID = "e3be5f87-38bf-428d-885d-9879438c7f18"      # the sample's sender device: its clientEntityId
ACK_VOLATILE = frozenset({"MCCI_IN000002UV01/id[1]/@extension", "MCCI_IN000002UV01/creationTime[1]/@value"})


class Wire:
    """The exchange observer: each envelope as it went out and came back."""

    def __init__(self) -> None:
        self.seen: list[audit.Envelope] = []

    def on_exchange(self, envelope: audit.Envelope) -> None:
        self.seen.append(envelope)


@pytest.fixture
def emulator(fresh_dsn, dev_keys):
    wire = Wire()
    with EmulatorServer(EmulatorConfig(reply_delay=0.02), fresh_dsn) as server, \
            client.IemkClient(server.url + REPOSITORY_PATH, client_entity_id=SYSTEM_ID,
                              signer=keys.load_signer(*dev_keys), timeout=10, observer=wire) as iemk:
        yield server, iemk, wire


def _payload(envelope: etree._Element) -> etree._Element:
    return envelope.find(f"{{{soap.SOAP}}}Body")[0]


def _sample_request() -> etree._Element:
    return _payload(xml.parse(sample("pix/pix_PRPA_IN201301RU02_request.xml")))


def _feed(server, iemk, body: etree._Element) -> soap.Message:
    return iemk.call(server.url + PIX_PATH, pix.ACTION[pix.ADD], body, service="pix")


def test_the_real_pix_request_gets_the_real_acknowledgement(emulator):
    server, iemk, _ = emulator
    expected = xml.parse(sample("pix/pix_MCCI_IN000002UV01_response.xml"))
    answer = _feed(server, iemk, _sample_request())
    assert answer.addressing.action == "urn:hl7-org:v3:MCCI_IN000002" == _text(expected, "Action")
    assert answer.addressing.to == soap.ANONYMOUS == _text(expected, "To")
    assert answer.addressing.relates_to and answer.addressing.message_id.startswith("urn:uuid:")
    assert_same_message(answer.body, _payload(expected), ACK_VOLATILE)
    assert pix.read_ack(answer.body).type_code == "CA"


def _text(envelope: etree._Element, header: str) -> str:
    return envelope.xpath("string(//wsa:" + header + ")", namespaces={"wsa": soap.WSA}).strip()


def test_a_snils_with_a_wrong_check_digit_is_refused_as_the_real_service_refuses_it(emulator):
    server, iemk, _ = emulator
    body = _sample_request()
    number = body.xpath(".//h:asOtherIDs[h:documentType/@code='3']/h:documentNumber", namespaces=V3)[0]
    number.set("number", "03480134122")
    ack = pix.read_ack(_feed(server, iemk, body).body)
    assert ack.type_code == "CE" and not ack.accepted
    assert ack.detail == ("[CRE-122]: PAT-001; Пациент не определен: [СНИЛС [03480134122] не валидно контрольное "
                          "число]")
    assert server.store.patient(MO_OID, LOCAL_ID) is None       # nothing registered


def test_a_patient_without_a_name_is_refused(emulator):
    server, iemk, _ = emulator
    body = _sample_request()
    family = body.find(".//h:patientPerson/h:name/h:family", V3)
    family.getparent().remove(family)
    assert pix.read_ack(_feed(server, iemk, body).body).type_code == "CE"
    assert server.store.patient(MO_OID, LOCAL_ID) is None


@pytest.mark.parametrize(("action", "answer_action"), [
    ("urn:hl7-org:v3:PRPA_IN201305UV02", "urn:hl7-org:v3:PRPA_IN201306UV02"),
    ("urn:hl7-org:v3:PRPA_IN201305", "urn:hl7-org:v3:PRPA_IN201306"),
])
def test_pdq_by_either_action_is_answered_with_the_matching_action(emulator, action, answer_action):
    server, iemk, wire = emulator
    _feed(server, iemk, _sample_request())
    env = {"IEMK_CLIENT_ENTITY_ID": SYSTEM_ID}
    if action != pdq.ITI47_ACTION:
        env["IEMK_PDQ_ACTION"] = action
    cfg = settings.load(env).with_iemk_url(server.url)
    assert cfg.pdq_action == action
    found = queries.search_patients(iemk, cfg, pdq.PatientQuery(local_id=(MO_OID, LOCAL_ID)))
    assert [(p.family, p.given, p.patronymic, p.birth_time) for p in found] == [
        ("Админов", "Админ", "Админович", "19800503")]
    request, answer = wire.seen[-2:]
    assert (request.direction, request.action) == (audit.OUT, action)
    assert (answer.direction, answer.http_status, answer.action) == (audit.IN, 200, answer_action)


def test_pdq_defaults_to_the_iti47_action():
    assert settings.load({}).pdq_action == "urn:hl7-org:v3:PRPA_IN201305UV02" == pdq.ACTION
    assert set(settings.PDQ_ACTIONS) == set(pdq.ACTIONS)
    with pytest.raises(settings.SettingsError, match="IEMK_PDQ_ACTION"):
        settings.load({"IEMK_PDQ_ACTION": "urn:hl7-org:v3:PRPA_IN201305UV03"})


def test_pdq_by_an_unknown_action_is_a_soap_fault(emulator):
    server, iemk, wire = emulator
    body = pdq.build_request(pdq.PatientQuery(local_id=(MO_OID, LOCAL_ID)), system_id=SYSTEM_ID)
    with pytest.raises(client.CallError) as refused:
        iemk.call(server.url + PDQ_PATH, "urn:hl7-org:v3:PRPA_IN201305UV03", body)   # past our own WSDL check
    assert refused.value.result.http_status == 400
    fault = soap.find_fault(soap.parse(wire.seen[-1].raw))
    assert fault is not None and fault.code == "Sender" and fault.subcode == "wsa:ActionNotSupported"
    assert "urn:hl7-org:v3:PRPA_IN201305UV03" in fault.reason
