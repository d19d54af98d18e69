"""What the PIX feed and PDQ share: the HL7v3 namespace, the patient record, and the message wrapper."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from lxml import etree

from iemk_etl.protocol import xml

V3 = "urn:hl7-org:v3"
NS = {"h": V3}
ID_TYPES = "1.2.643.5.1.13.2.7.1.62"     # «Тип внешнего идентификатора»: 1 ОМС, 3 СНИЛС, 5 ДУЛ, …
GENDER_SYSTEM = "1.2.643.5.1.13.2.1.1.156"
SNILS_TYPE, POLICY_TYPE, IDENTITY_DOC_TYPE = "3", "1", "5"
SNILS_ROOT = "1.2.643.100.3"
# The ДУЛ's own type, as documentType/qualifier/name in the sample: «Классификатор документов, удостоверяющих
# личность гражданина Российской Федерации» (14 = паспорт гражданина РФ).
ID_DOC_KINDS = "1.2.643.5.1.13.2.1.1.498"
SMO_REGISTRY = "1.2.643.5.1.13.2.1.1.635"   # ОМС: scopingOrganization/id/@root, the СМО code as extension [S4]
# Defaults of the installation settings IEMK_PROCESSING_CODE and IEMK_RECEIVER_DEVICE_ID (callers pass them in).
PROCESSING_CODE = "P"                    # transmission processingCode: P production (T training, D debugging)
IEMK_DEVICE = "d5a0f9c0-5db4-11e3-949a-0800200c9a66"   # receiver/device/id of ИЭМК [S1][S4]

sub = xml.in_namespace(V3)
"""The element helper with tags in the HL7v3 namespace."""


@dataclass(frozen=True)
class OtherId:
    """One asOtherIDs: the identifier's type (НСИ 1.2.643.5.1.13.2.7.1.62), its number, and who issued it."""
    type_code: str
    number: str
    series: str | None = None
    doc_kind: str | None = None        # ДУЛ only: its type by НСИ 1.2.643.5.1.13.2.1.1.498 (qualifier/name/@code)
    issuer_root: str | None = None     # scopingOrganization/id/@root; None: id nullFlavor="NI"
    issuer_code: str | None = None     # scopingOrganization/id/@extension (ОМС: the СМО code)
    issuer_name: str | None = None     # scopingOrganization/name (ДУЛ: the issuing authority)


@dataclass(frozen=True)
class PatientRecord:
    mo_oid: str
    local_id: str
    family: str | None
    given: str | None
    patronymic: str | None
    gender: str | None
    birth_time: str | None
    other_ids: tuple[OtherId, ...] = field(default_factory=tuple)
    telecom: str | None = None         # the patient's own phone or e-mail, as a URL (tel:…, mailto:…)

    @property
    def snils(self) -> str | None:
        return next((o.number for o in self.other_ids if o.type_code == SNILS_TYPE), None)

    @property
    def label(self) -> str:
        return f"Patient(moId: [{self.mo_oid}], patientId: [{self.local_id}])"


def ts(value: dt.datetime | None = None) -> str:
    return (value or dt.datetime.now(dt.UTC)).strftime("%Y%m%d%H%M%S")


def text(el: etree._Element, xpath: str) -> str | None:
    """The stripped string value of ``xpath`` (prefix ``h:``), or None when empty."""
    value = el.xpath(f"string({xpath})", namespaces=NS)
    return value.strip() or None


# -- the message wrapper ---------------------------------------------------------------------------------------

def begin(interaction: str, nsmap: dict[str | None, str]) -> etree._Element:
    """The root element of an HL7v3 message."""
    return etree.Element(xml.qname((V3, interaction)), nsmap=nsmap, ITSVersion="XML_1.0")


def transmission(root: etree._Element, message_id: dict[str, str], interaction_id: dict[str, str], *,
                 accept_ack: str | None, processing_code: str = PROCESSING_CODE) -> None:
    """The transmission wrapper: id, creationTime, interactionId, and — unless ``accept_ack`` is None — the
    processing codes and acceptAckCode. Attribute order is the caller's (each sample spells it its own way)."""
    sub(root, "id", **message_id)
    sub(root, "creationTime", value=ts())
    sub(root, "interactionId", **interaction_id)
    if accept_ack is not None:
        sub(root, "processingCode", code=processing_code)
        sub(root, "processingModeCode", code="T")
        sub(root, "acceptAckCode", code=accept_ack)


def device(parent: etree._Element, tag: str, type_code: str) -> etree._Element:
    """``tag`` (receiver or sender) → device."""
    return sub(sub(parent, tag, typeCode=type_code), "device", classCode="DEV", determinerCode="INSTANCE")


# -- the patient -----------------------------------------------------------------------------------------------

def write_person(patient_el: etree._Element, record: PatientRecord) -> etree._Element:
    """patientPerson: name (family, given, patronymic as the second given), telecom, gender, birth time — the
    order of HL7v3 PRPA_MT201301UV02.Person (and of the 2013 federal exporter [S4])."""
    person = sub(patient_el, "patientPerson")
    name = sub(person, "name")
    for tag, value in (("family", record.family), ("given", record.given), ("given", record.patronymic)):
        if value:
            sub(name, tag, value)
    if record.telecom:
        sub(person, "telecom", value=record.telecom)
    if record.gender:
        sub(person, "administrativeGenderCode", code=record.gender, codeSystem=GENDER_SYSTEM)
    if record.birth_time:
        sub(person, "birthTime", value=record.birth_time)
    return person


def read_patient(patient: etree._Element) -> PatientRecord:
    """A patient element (subject1/patient) of a feed or of a query response, as a record."""
    person = patient.find("h:patientPerson", NS)
    givens = [g.text.strip() for g in person.findall("h:name/h:given", NS) if g.text] if person is not None else []
    others = tuple(_read_other_id(o) for o in (person.findall("h:asOtherIDs", NS) if person is not None else []))
    return PatientRecord(
        mo_oid=text(patient, "h:id/@root") or "", local_id=text(patient, "h:id/@extension") or "",
        family=text(patient, "h:patientPerson/h:name/h:family"),
        given=givens[0] if givens else None, patronymic=givens[1] if len(givens) > 1 else None,
        gender=text(patient, "h:patientPerson/h:administrativeGenderCode/@code"),
        birth_time=text(patient, "h:patientPerson/h:birthTime/@value"), other_ids=others,
        telecom=text(patient, "h:patientPerson/h:telecom/@value"),
    )


def _read_other_id(other: etree._Element) -> OtherId:
    return OtherId(text(other, "h:documentType/@code") or "", text(other, "h:documentNumber/@number") or "",
                   text(other, "h:documentNumber/@series"),
                   doc_kind=text(other, "h:documentType/h:qualifier/h:name/@code"),
                   issuer_root=text(other, "h:scopingOrganization/h:id/@root"),
                   issuer_code=text(other, "h:scopingOrganization/h:id/@extension"),
                   issuer_name=text(other, "h:scopingOrganization/h:name"))
