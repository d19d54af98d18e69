"""HL7v3 patient messages of the federal ИЭМК (RU-localised IHE PIX feed and PDQ).

PRPA_IN201301RU02 (add) / PRPA_IN201302RU02 (revise) → MCCI_IN000002UV01 acknowledgement;
PRPA_IN201305UV02 (query) → PRPA_IN201306UV02. Shapes follow the public sample in ../shared/samples/pix.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from lxml import etree

V3 = "urn:hl7-org:v3"
_H = {"h": V3}

ADD, REVISE = "PRPA_IN201301RU02", "PRPA_IN201302RU02"
QUERY, QUERY_RESPONSE = "PRPA_IN201305UV02", "PRPA_IN201306UV02"
ACK = "MCCI_IN000002UV01"
ACTION = {ADD: "urn:hl7-org:v3:PRPA_IN201301", REVISE: "urn:hl7-org:v3:PRPA_IN201302",
          QUERY: "urn:hl7-org:v3:PRPA_IN201305", ACK: "urn:hl7-org:v3:MCCI_IN000002",
          QUERY_RESPONSE: "urn:hl7-org:v3:PRPA_IN201306"}
INTERACTION_ROOT = "1.2.643.5.1.13.2.7.3"
ID_TYPES = "1.2.643.5.1.13.2.7.1.62"     # «Тип внешнего идентификатора»: 1 ОМС, 3 СНИЛС, 5 ДУЛ, …
GENDER_SYSTEM = "1.2.643.5.1.13.2.1.1.156"
SNILS_TYPE, POLICY_TYPE, IDENTITY_DOC_TYPE = "3", "1", "5"
SNILS_ROOT = "1.2.643.100.3"
# Defaults of the installation settings IEMK_PROCESSING_CODE and IEMK_RECEIVER_DEVICE_ID (callers pass them in).
PRODUCTION = "P"
IEMK_DEVICE = "d5a0f9c0-5db4-11e3-949a-0800200c9a66"


@dataclass(frozen=True)
class OtherId:
    type_code: str
    number: str
    series: str | None = None


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

    @property
    def snils(self) -> str | None:
        return next((o.number for o in self.other_ids if o.type_code == SNILS_TYPE), None)

    @property
    def label(self) -> str:
        return f"Patient(moId: [{self.mo_oid}], patientId: [{self.local_id}])"


@dataclass(frozen=True)
class FeedMessage:
    interaction: str              # ADD or REVISE
    message_root: str
    message_extension: str
    sender_device: str | None
    patient: PatientRecord


def _q(tag: str) -> str:
    return f"{{{V3}}}{tag}"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, _q(tag), {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _ts(value: dt.datetime | None = None) -> str:
    return (value or dt.datetime.now(dt.UTC)).strftime("%Y%m%d%H%M%S")


# -- the PIX feed ----------------------------------------------------------------------------------------------

def build_feed(interaction: str, patient: PatientRecord, *, system_id: str, system_name: str,
               mo_name: str, processing_code: str = PRODUCTION, receiver_device: str = IEMK_DEVICE) -> etree._Element:
    """The request a МИС sends to add (or revise) a patient: the sample's structure."""
    root = etree.Element(_q(interaction), nsmap={None: V3}, ITSVersion="XML_1.0")
    _sub(root, "id", root=patient.mo_oid, extension=str(uuid.uuid4()))
    _sub(root, "creationTime", value=_ts())
    _sub(root, "interactionId", root=INTERACTION_ROOT, extension=interaction)
    _sub(root, "processingCode", code=processing_code)
    _sub(root, "processingModeCode", code="T")
    _sub(root, "acceptAckCode", code="AL")
    receiver = _sub(_sub(root, "receiver", typeCode="RCV"), "device", classCode="DEV", determinerCode="INSTANCE")
    _sub(receiver, "id", root=receiver_device)
    _sub(receiver, "name", "ИЭМК")
    org = _sub(_sub(receiver, "asAgent", classCode="ASSIGNED"), "representedOrganization", classCode="ORG",
               determinerCode="INSTANCE")
    _sub(org, "id", root="1.2.643.5.1.13")
    _sub(org, "name", "МЗ РФ")
    sender = _sub(_sub(root, "sender", typeCode="SND"), "device", classCode="DEV", determinerCode="INSTANCE")
    _sub(sender, "id", root=system_id)
    _sub(sender, "name", system_name)
    org = _sub(_sub(sender, "asAgent", classCode="ASSIGNED"), "representedOrganization", classCode="ORG",
               determinerCode="INSTANCE")
    _sub(org, "id", root=patient.mo_oid)
    _sub(org, "name", mo_name)
    event = _sub(_sub(_sub(root, "controlActProcess", classCode="CACT", moodCode="EVN"), "subject", typeCode="SUBJ"),
                 "registrationEvent", classCode="REG", moodCode="EVN")
    _sub(event, "id", nullFlavor="NA")
    _sub(event, "statusCode", code="active")
    pat = _sub(_sub(event, "subject1", typeCode="SBJ"), "patient", classCode="PAT")
    _sub(pat, "id", root=patient.mo_oid, extension=patient.local_id)
    _sub(pat, "statusCode", code="active")
    person = _person(pat, patient)
    for other in patient.other_ids:
        ident = _sub(person, "asOtherIDs", classCode="IDENT")
        _sub(ident, "documentType", code=other.type_code, codeSystem=ID_TYPES)
        number = {"number": other.number} | ({"series": other.series} if other.series else {})
        _sub(ident, "documentNumber", **number)
        scope = _sub(ident, "scopingOrganization", classCode="ORG", determinerCode="INSTANCE")
        _sub(scope, "id", nullFlavor="NI")
    provider = _sub(pat, "providerOrganization", classCode="ORG", determinerCode="INSTANCE")
    _sub(provider, "id", root=patient.mo_oid)
    _sub(provider, "name", mo_name)
    custodian = _sub(_sub(event, "custodian", typeCode="CST"), "assignedEntity", classCode="ASSIGNED")
    _sub(custodian, "id", root=patient.mo_oid)
    _sub(_sub(custodian, "assignedOrganization", classCode="ORG", determinerCode="INSTANCE"), "name", mo_name)
    return root


def _person(patient_el: etree._Element, record: PatientRecord) -> etree._Element:
    """patientPerson: name (family, given, patronymic as the second given), gender, birth time."""
    person = _sub(patient_el, "patientPerson")
    name = _sub(person, "name")
    for tag, value in (("family", record.family), ("given", record.given), ("given", record.patronymic)):
        if value:
            _sub(name, tag, value)
    if record.gender:
        _sub(person, "administrativeGenderCode", code=record.gender, codeSystem=GENDER_SYSTEM)
    if record.birth_time:
        _sub(person, "birthTime", value=record.birth_time)
    return person


def _text(el: etree._Element, xpath: str) -> str | None:
    value = el.xpath(f"string({xpath})", namespaces=_H)
    return value.strip() or None


def read_feed(message: etree._Element) -> FeedMessage:
    interaction = etree.QName(message).localname
    patient = message.find(".//h:subject1/h:patient", _H)
    if patient is None:
        raise ValueError("в сообщении нет controlActProcess/subject/registrationEvent/subject1/patient")
    person = patient.find("h:patientPerson", _H)
    givens = [g.text.strip() for g in person.findall("h:name/h:given", _H) if g.text] if person is not None else []
    others = tuple(
        OtherId(o.xpath("string(h:documentType/@code)", namespaces=_H),
                o.xpath("string(h:documentNumber/@number)", namespaces=_H),
                o.xpath("string(h:documentNumber/@series)", namespaces=_H) or None)
        for o in (person.findall("h:asOtherIDs", _H) if person is not None else [])
    )
    record = PatientRecord(
        mo_oid=_text(patient, "h:id/@root") or "", local_id=_text(patient, "h:id/@extension") or "",
        family=_text(patient, "h:patientPerson/h:name/h:family"),
        given=givens[0] if givens else None, patronymic=givens[1] if len(givens) > 1 else None,
        gender=_text(patient, "h:patientPerson/h:administrativeGenderCode/@code"),
        birth_time=_text(patient, "h:patientPerson/h:birthTime/@value"), other_ids=others,
    )
    return FeedMessage(interaction, _text(message, "h:id/@root") or "", _text(message, "h:id/@extension") or "",
                       _text(message, "h:sender/h:device/h:id/@root"), record)


# -- the acknowledgement ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Acknowledgement:
    type_code: str          # CA (accepted) or CE (commit error)
    detail: str
    location: str

    @property
    def accepted(self) -> bool:
        return self.type_code in ("CA", "AA")


def build_ack(request: FeedMessage, ack: Acknowledgement, *, token: str) -> etree._Element:
    """MCCI_IN000002UV01, exactly the sample's shape; ``token`` plays the sample's opaque response root."""
    root = etree.Element(_q(ACK), nsmap={"ns3": V3}, ITSVersion="XML_1.0")
    _sub(root, "id", extension=str(uuid.uuid4()), root=token)
    _sub(root, "creationTime", value=_ts())
    _sub(root, "interactionId", extension="MCCIIN000002UV01", root=token)
    _sub(root, "processingCode", code="P")
    _sub(root, "processingModeCode", code="T")
    _sub(root, "acceptAckCode", code="NE")
    receiver = _sub(root, "receiver", typeCode="RCV")
    _sub(receiver, "telecom")
    _sub(_sub(receiver, "device", classCode="DEV", determinerCode="INSTANCE"), "id", root=request.sender_device or "")
    _sub(_sub(_sub(root, "sender", typeCode="SND"), "device", classCode="DEV", determinerCode="INSTANCE"), "id",
         root=token)
    acknowledgement = _sub(root, "acknowledgement")
    _sub(acknowledgement, "typeCode", code=ack.type_code)
    _sub(_sub(acknowledgement, "targetMessage"), "id", extension=request.message_extension, root=request.message_root)
    detail = _sub(acknowledgement, "acknowledgementDetail", typeCode="I" if ack.accepted else "E")
    _sub(detail, "code", codeSystemName=ack.detail, displayName=ack.detail)
    _sub(detail, "location", ack.location)
    return root


def read_ack(message: etree._Element) -> Acknowledgement:
    return Acknowledgement(
        type_code=_text(message, "h:acknowledgement/h:typeCode/@code") or "",
        detail=_text(message, "h:acknowledgement/h:acknowledgementDetail/h:code/@displayName") or "",
        location=_text(message, "h:acknowledgement/h:acknowledgementDetail/h:location") or "",
    )


# -- PDQ -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PatientQuery:
    local_id: tuple[str, str] | None = None        # (МО OID, local id)
    snils: str | None = None
    family: str | None = None
    given: str | None = None
    birth_date: str | None = None                  # yyyyMMdd


def build_query(query: PatientQuery, *, system_id: str, processing_code: str = PRODUCTION) -> etree._Element:
    root = etree.Element(_q(QUERY), nsmap={None: V3}, ITSVersion="XML_1.0")
    _sub(root, "id", root=system_id, extension=str(uuid.uuid4()))
    _sub(root, "creationTime", value=_ts())
    _sub(root, "interactionId", root="2.16.840.1.113883.1.6", extension=QUERY)
    _sub(root, "processingCode", code=processing_code)
    _sub(root, "processingModeCode", code="T")
    _sub(root, "acceptAckCode", code="AL")
    _sub(_sub(_sub(root, "sender", typeCode="SND"), "device", classCode="DEV", determinerCode="INSTANCE"), "id",
         root=system_id)
    params = _sub(_sub(_sub(root, "controlActProcess", classCode="CACT", moodCode="EVN"), "queryByParameter"),
                  "parameterList")
    if query.local_id:
        _sub(_sub(params, "livingSubjectId"), "value", root=query.local_id[0], extension=query.local_id[1])
    if query.snils:
        _sub(_sub(params, "livingSubjectId"), "value", root=SNILS_ROOT, extension=query.snils)
    if query.family or query.given:
        name = _sub(_sub(params, "livingSubjectName"), "value")
        if query.family:
            _sub(name, "family", query.family)
        if query.given:
            _sub(name, "given", query.given)
    if query.birth_date:
        _sub(_sub(params, "livingSubjectBirthTime"), "value", value=query.birth_date)
    return root


def read_query(message: etree._Element) -> PatientQuery:
    params = message.find(".//h:queryByParameter/h:parameterList", _H)
    if params is None:
        raise ValueError("в запросе нет queryByParameter/parameterList")
    local = snils = None
    for value in params.findall("h:livingSubjectId/h:value", _H):
        if value.get("root") == SNILS_ROOT:
            snils = value.get("extension")
        else:
            local = (value.get("root") or "", value.get("extension") or "")
    return PatientQuery(local_id=local, snils=snils, family=_text(params, "h:livingSubjectName/h:value/h:family"),
                        given=_text(params, "h:livingSubjectName/h:value/h:given"),
                        birth_date=_text(params, "h:livingSubjectBirthTime/h:value/@value"))


def build_query_response(request: etree._Element, matches: list[PatientRecord], *, token: str) -> etree._Element:
    root = etree.Element(_q(QUERY_RESPONSE), nsmap={None: V3}, ITSVersion="XML_1.0")
    _sub(root, "id", root=token, extension=str(uuid.uuid4()))
    _sub(root, "creationTime", value=_ts())
    _sub(root, "interactionId", root="2.16.840.1.113883.1.6", extension=QUERY_RESPONSE)
    acknowledgement = _sub(root, "acknowledgement")
    _sub(acknowledgement, "typeCode", code="AA")
    _sub(_sub(acknowledgement, "targetMessage"), "id", root=_text(request, "h:id/@root") or "",
         extension=_text(request, "h:id/@extension") or "")
    control = _sub(root, "controlActProcess", classCode="CACT", moodCode="EVN")
    for match in matches:
        pat = _sub(_sub(_sub(control, "subject", typeCode="SUBJ"), "registrationEvent", classCode="REG",
                        moodCode="EVN"), "subject1", typeCode="SBJ")
        pat = _sub(pat, "patient", classCode="PAT")
        _sub(pat, "id", root=match.mo_oid, extension=match.local_id)
        person = _person(pat, match)
        if match.snils:
            ident = _sub(person, "asOtherIDs", classCode="IDENT")
            _sub(ident, "documentType", code=SNILS_TYPE, codeSystem=ID_TYPES)
            _sub(ident, "documentNumber", number=match.snils)
    query_ack = _sub(control, "queryAck")
    _sub(query_ack, "queryResponseCode", code="OK" if matches else "NF")
    _sub(query_ack, "resultTotalQuantity", value=str(len(matches)))
    return root


def read_query_response(message: etree._Element) -> list[PatientRecord]:
    found = []
    for pat in message.findall(".//h:subject1/h:patient", _H):
        givens = [g.text for g in pat.findall("h:patientPerson/h:name/h:given", _H) if g.text]
        snils = _text(pat, f"h:patientPerson/h:asOtherIDs[h:documentType/@code='{SNILS_TYPE}']"
                           "/h:documentNumber/@number")
        found.append(PatientRecord(
            mo_oid=_text(pat, "h:id/@root") or "", local_id=_text(pat, "h:id/@extension") or "",
            family=_text(pat, "h:patientPerson/h:name/h:family"), given=givens[0] if givens else None,
            patronymic=givens[1] if len(givens) > 1 else None,
            gender=_text(pat, "h:patientPerson/h:administrativeGenderCode/@code"),
            birth_time=_text(pat, "h:patientPerson/h:birthTime/@value"),
            other_ids=(OtherId(SNILS_TYPE, snils),) if snils else ()))
    return found
