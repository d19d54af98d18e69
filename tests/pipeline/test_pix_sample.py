"""The PIX add our feed sends equals the real ИЭМК sample (../shared/samples/pix), element for element.

The sample's patient and МО are put into the МИС, the feed runs with the default settings (only the installation's
identity — the clientEntityId and the name ЕГИСЗ registered the system under — is the sample's) against the emulator,
and the request that went over the wire is compared with the sample after canonicalisation. Only the message id's
extension and creationTime are left out; the sample is unsigned and has an empty soap:Header (its signer adds the
WS-Addressing headers), so the headers are checked against what that signer adds instead.
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from lxml import etree

from iemk_etl import settings
from iemk_etl.emulator.server import PIX_PATH, REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.pipeline import patients as patient_step
from iemk_etl.protocol import soap, xml
from iemk_etl.protocol.hl7v3 import pix
from iemk_etl.semd.model import IdentityDocument, Organization, Patient
from iemk_etl.signing import keys
from iemk_etl.store import audit, integration
from iemk_etl.store.mis import exchange
from iemk_etl.store.mis import seed as mis_seed
from iemk_etl.transport import client

from exchange_helpers import assert_same_message, canonical_lines, sample

REQUEST = "pix/pix_PRPA_IN201301RU02_request.xml"
V3 = {"h": "urn:hl7-org:v3"}
# Per message, never the same twice: the request id's extension (a GUID) and its creation time.
VOLATILE = frozenset({"PRPA_IN201301RU02/id[1]/@extension", "PRPA_IN201301RU02/creationTime[1]/@value"})

# The sample's data, as a МИС holds them (the МО of the legacy registry form, the passport's series and number
# apart, the МО's contact phone) and the installation's identity in ЕГИСЗ.
MO = Organization("1.2.643.5.1.13.3.25.1.1", 'ГБУЗ РА "Майкопская городская поликлиника №3"', phone="+7-987-456-123")
PATIENT = Patient("af6a43e3-4d3a-411d-b8a6-d40adffc2c0a", "Админов", "Админ", "Админович", dt.date(1980, 5, 3), 1,
                  "03480134121", identity=IdentityDocument(1, "9206", "662113", "УВД Советского района гор. Казани"))
SYSTEM_ID, SYSTEM_NAME = "e3be5f87-38bf-428d-885d-9879438c7f18", "ЕГИСЗ МЗ РФ"


class Wire:
    """The exchange observer: every envelope as it went out."""

    def __init__(self) -> None:
        self.sent: list[audit.Envelope] = []

    def on_exchange(self, envelope: audit.Envelope) -> None:
        if envelope.direction == audit.OUT:
            self.sent.append(envelope)


@pytest.fixture
def fed(fresh_dsn, dev_keys):
    """The sample's patient fed once through our pipeline to the emulator: (feed report, the envelope sent)."""
    sample_request = sample(REQUEST)        # skips first when ../shared is absent
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        mis_seed.upsert_mo(conn, MO, "mgp3", 1)
        integration.set_enabled(conn, MO.oid, True)     # the new patient goes to the outbox (procedure 2)
        mis_seed.insert_patient(conn, MO.oid, PATIENT)
        wire = Wire()
        cfg_env = {"IEMK_CLIENT_ENTITY_ID": SYSTEM_ID, "IEMK_SYSTEM_NAME": SYSTEM_NAME}
        with EmulatorServer(EmulatorConfig(reply_delay=0.02), fresh_dsn) as emulator, \
                client.IemkClient(emulator.url + REPOSITORY_PATH, client_entity_id=SYSTEM_ID,
                                  signer=keys.load_signer(*dev_keys), timeout=10, observer=wire) as iemk:
            cfg = settings.load(cfg_env).with_iemk_url(emulator.url)
            report = patient_step.feed(conn, MO.oid, [], cfg, iemk)
            yield report, wire.sent, xml.parse(sample_request), cfg, conn


def _payload(envelope: etree._Element) -> etree._Element:
    return envelope.find(f"{{{soap.SOAP}}}Body")[0]


def test_our_pix_add_equals_the_real_sample(fed):
    report, sent, sample_envelope, _, _ = fed
    assert report.accepted == 1 and report.rejected == 0, report.problems
    assert len(sent) == 1
    ours = xml.parse(sent[0].raw)
    assert etree.QName(ours).namespace == etree.QName(sample_envelope).namespace == soap.SOAP     # SOAP 1.2
    assert_same_message(_payload(ours), _payload(sample_envelope), VOLATILE)


def test_the_headers_are_those_the_samples_signer_adds(fed):
    """The sample's soap:Header is empty: its signer (i-novus IpsRequestSigner, [S1]) adds transportHeader,
    MessageID, ReplyTo anonymous, To the service and Action urn:hl7-org:v3:PRPA_IN201301; ours carry the same."""
    _, sent, _, cfg, _ = fed
    message = soap.parse(sent[0].raw)
    assert message.addressing.action == "urn:hl7-org:v3:PRPA_IN201301" == pix.ACTION[pix.ADD]
    assert message.addressing.reply_to == soap.ANONYMOUS
    assert message.addressing.to == cfg.pix_url and cfg.pix_url.endswith(PIX_PATH)
    assert message.addressing.message_id.startswith("urn:uuid:")
    assert message.client_entity_id == SYSTEM_ID


def test_the_comparison_sees_any_difference(fed):
    """The comparison is not blind: a swapped pair of identifiers, a changed code, one attribute more or less,
    a changed text, each fails it."""
    _, sent, sample_envelope, _, _ = fed
    theirs = _payload(sample_envelope)
    mutations = []
    for change in (_swap_identifiers, _change_qualifier, _drop_display_name, _add_attribute, _change_text):
        ours = _payload(xml.parse(sent[0].raw))
        change(ours)
        mutations.append(ours)
    for ours in mutations:
        with pytest.raises(AssertionError, match="differs from the real sample"):
            assert_same_message(ours, theirs, VOLATILE)
    assert canonical_lines(_payload(xml.parse(sent[0].raw)), VOLATILE) == canonical_lines(theirs, VOLATILE)


def _swap_identifiers(message: etree._Element) -> None:
    first, second = message.findall(".//h:patientPerson/h:asOtherIDs", V3)
    first.addprevious(second)


def _change_qualifier(message: etree._Element) -> None:
    message.find(".//h:qualifier/h:name", V3).set("code", "3")


def _drop_display_name(message: etree._Element) -> None:
    del message.find(".//h:asOtherIDs/h:documentType", V3).attrib["displayName"]


def _add_attribute(message: etree._Element) -> None:
    message.find(".//h:providerOrganization/h:contactParty", V3).set("determinerCode", "INSTANCE")


def _change_text(message: etree._Element) -> None:
    message.find(".//h:sender/h:device/h:name", V3).text = "iemk-etl"


def test_what_the_sample_lacks_goes_in_its_place(fed):
    """A patient with a phone and an ОМС policy: the phone is patientPerson/telecom (HL7 Person.telecom, the 2013
    federal exporter [S4]), the policy the third identifier, its СМО by code in 1.2.643.5.1.13.2.1.1.635."""
    _, _, _, cfg, conn = fed
    conn.execute("UPDATE mis.patient SET phone = '+7-900-000-00-01', oms_policy = '3456789012345678',"
                 " oms_insurer_code = '01002', oms_insurer = 'АО «СМО»' WHERE local_id = %s", (PATIENT.local_id,))
    patient = exchange.patients_to_feed(conn, MO.oid, [])[0]
    assert patient.known          # ИЭМК holds the earlier state: this one is a revise
    message = patient_step.feed_message(patient, MO.oid, cfg)
    assert etree.QName(message).localname == pix.REVISE
    person = message.find(".//h:patientPerson", V3)
    assert [etree.QName(c).localname for c in person] == [
        "name", "telecom", "administrativeGenderCode", "birthTime", "asOtherIDs", "asOtherIDs", "asOtherIDs"]
    assert person.find("h:telecom", V3).get("value") == "tel:+7-900-000-00-01"
    assert [o.get("code") for o in person.findall("h:asOtherIDs/h:documentType", V3)] == ["5", "3", "1"]
    policy = person.findall("h:asOtherIDs", V3)[2]
    assert policy.find("h:documentNumber", V3).get("number") == "3456789012345678"
    scope = policy.find("h:scopingOrganization", V3)
    assert dict(scope.find("h:id", V3).attrib) == {"root": "1.2.643.5.1.13.2.1.1.635", "extension": "01002"}
    assert scope.find("h:name", V3).text == "АО «СМО»"
    assert message.find(".//h:providerOrganization/h:contactParty/h:telecom", V3).get("value") == \
        "tel:+7-987-456-123"       # the МО's contact stays the МО's
