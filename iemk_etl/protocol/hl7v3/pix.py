"""ITI-44 patient identity feed: PRPA_IN201301RU02 (add) / PRPA_IN201302RU02 (revise) → MCCI_IN000002UV01."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lxml import etree

from iemk_etl.protocol.hl7v3.common import (
    ID_DOC_KINDS,
    ID_TYPES,
    IDENTITY_DOC_TYPE,
    IEMK_DEVICE,
    NS,
    PROCESSING_CODE,
    V3,
    OtherId,
    PatientRecord,
    begin,
    device,
    read_patient,
    sub,
    text,
    transmission,
    write_person,
)

ADD, REVISE = "PRPA_IN201301RU02", "PRPA_IN201302RU02"
ACK = "MCCI_IN000002UV01"
ACTION = {ADD: "urn:hl7-org:v3:PRPA_IN201301", REVISE: "urn:hl7-org:v3:PRPA_IN201302",
          ACK: "urn:hl7-org:v3:MCCI_IN000002"}
INTERACTION_ROOT = "1.2.643.5.1.13.2.7.3"
DEFAULT_SYSTEM_NAME = "iemk-etl"   # sender/device/name unless IEMK_SYSTEM_NAME says how ЕГИСЗ registered us

# The words the sample writes beside the codes: the ДУЛ as an identifier type (НСИ 1.2.643.5.1.13.2.7.1.62) and its
# kind (НСИ 1.2.643.5.1.13.2.1.1.498). Only kinds whose names we hold are named; another code goes without
# displayName (optional in an HL7 CD), never with a guessed name.
IDENTITY_DOC_TYPE_NAME = "Документ, удостоверяющий личность"
ID_DOC_KINDS_NAME = "Классификатор документов, удостоверяющих личность гражданина Российской Федерации"
ID_DOC_KIND_NAMES = {"14": "Паспорт гражданина РФ"}


@dataclass(frozen=True)
class FeedMessage:
    interaction: str              # ADD or REVISE
    message_root: str
    message_extension: str
    sender_device: str | None
    patient: PatientRecord


def build_feed(interaction: str, patient: PatientRecord, *, system_id: str, system_name: str, mo_name: str,
               mo_phone: str | None = None, processing_code: str = PROCESSING_CODE,
               receiver_device: str = IEMK_DEVICE) -> etree._Element:
    """The request a МИС sends to add (or revise) a patient, element for element the public sample's
    (../shared/samples/pix/pix_PRPA_IN201301RU02_request.xml): the identifiers in ``patient.other_ids`` order,
    ``mo_phone`` (a URL, tel:…) as the МО's contactParty."""
    root = begin(interaction, {None: V3})
    transmission(root, {"root": patient.mo_oid, "extension": str(uuid.uuid4())},
                 {"root": INTERACTION_ROOT, "extension": interaction}, accept_ack="AL", processing_code=processing_code)
    receiver = device(root, "receiver", "RCV")
    sub(receiver, "id", root=receiver_device)
    sub(receiver, "name", "ИЭМК")
    _agent(receiver, "1.2.643.5.1.13", "МЗ РФ")
    sender = device(root, "sender", "SND")
    sub(sender, "id", root=system_id)
    sub(sender, "name", system_name)
    _agent(sender, patient.mo_oid, mo_name)
    event = sub(sub(sub(root, "controlActProcess", classCode="CACT", moodCode="EVN"), "subject", typeCode="SUBJ"),
                "registrationEvent", classCode="REG", moodCode="EVN")
    sub(event, "id", nullFlavor="NA")
    sub(event, "statusCode", code="active")
    pat = sub(sub(event, "subject1", typeCode="SBJ"), "patient", classCode="PAT")
    sub(pat, "id", root=patient.mo_oid, extension=patient.local_id)
    sub(pat, "statusCode", code="active")
    person = write_person(pat, patient)
    for other in patient.other_ids:
        _other_id(person, other)
    _provider(pat, patient.mo_oid, mo_name, mo_phone)
    custodian = sub(sub(event, "custodian", typeCode="CST"), "assignedEntity", classCode="ASSIGNED")
    sub(custodian, "id", root=patient.mo_oid)
    sub(sub(custodian, "assignedOrganization", classCode="ORG", determinerCode="INSTANCE"), "name", mo_name)
    return root


def _other_id(person: etree._Element, other: OtherId) -> None:
    """asOtherIDs: the type (for a ДУЛ with its name and, as qualifier, its kind), the number, the issuer."""
    ident = sub(person, "asOtherIDs", classCode="IDENT")
    if other.type_code == IDENTITY_DOC_TYPE:
        doc_type = sub(ident, "documentType", code=other.type_code, codeSystem=ID_TYPES,
                       displayName=IDENTITY_DOC_TYPE_NAME)
        if other.doc_kind:
            sub(sub(doc_type, "qualifier"), "name", code=other.doc_kind, codeSystem=ID_DOC_KINDS,
                codeSystemName=ID_DOC_KINDS_NAME, displayName=ID_DOC_KIND_NAMES.get(other.doc_kind))
    else:
        sub(ident, "documentType", code=other.type_code, codeSystem=ID_TYPES)
    sub(ident, "documentNumber", number=other.number, series=other.series or None)
    scope = sub(ident, "scopingOrganization", classCode="ORG", determinerCode="INSTANCE")
    if other.issuer_root:
        sub(scope, "id", root=other.issuer_root, extension=other.issuer_code)
    else:
        sub(scope, "id", nullFlavor="NI")
    if other.issuer_name:
        sub(scope, "name", other.issuer_name)


def _provider(patient_el: etree._Element, mo_oid: str, mo_name: str, mo_phone: str | None) -> None:
    """providerOrganization: the МО, and — HL7 COCT_MT150003UV03.ContactParty — whom to call there."""
    provider = sub(patient_el, "providerOrganization", classCode="ORG", determinerCode="INSTANCE")
    sub(provider, "id", root=mo_oid)
    sub(provider, "name", mo_name)
    if mo_phone:
        sub(sub(provider, "contactParty", classCode="CON"), "telecom", value=mo_phone)


def _agent(device_el: etree._Element, org_id: str, org_name: str) -> None:
    org = sub(sub(device_el, "asAgent", classCode="ASSIGNED"), "representedOrganization", classCode="ORG",
              determinerCode="INSTANCE")
    sub(org, "id", root=org_id)
    sub(org, "name", org_name)


def read_feed(message: etree._Element) -> FeedMessage:
    interaction = etree.QName(message).localname
    patient = message.find(".//h:subject1/h:patient", NS)
    if patient is None:
        raise ValueError("в сообщении нет controlActProcess/subject/registrationEvent/subject1/patient")
    return FeedMessage(interaction, text(message, "h:id/@root") or "", text(message, "h:id/@extension") or "",
                       text(message, "h:sender/h:device/h:id/@root"), read_patient(patient))


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
    root = begin(ACK, {"ns3": V3})
    transmission(root, {"extension": str(uuid.uuid4()), "root": token},
                 {"extension": "MCCIIN000002UV01", "root": token}, accept_ack="NE")
    receiver = sub(root, "receiver", typeCode="RCV")
    sub(receiver, "telecom")
    sub(sub(receiver, "device", classCode="DEV", determinerCode="INSTANCE"), "id", root=request.sender_device or "")
    sub(device(root, "sender", "SND"), "id", root=token)
    acknowledgement = sub(root, "acknowledgement")
    sub(acknowledgement, "typeCode", code=ack.type_code)
    sub(sub(acknowledgement, "targetMessage"), "id", extension=request.message_extension, root=request.message_root)
    detail = sub(acknowledgement, "acknowledgementDetail", typeCode="I" if ack.accepted else "E")
    sub(detail, "code", codeSystemName=ack.detail, displayName=ack.detail)
    sub(detail, "location", ack.location)
    return root


def read_ack(message: etree._Element) -> Acknowledgement:
    return Acknowledgement(
        type_code=text(message, "h:acknowledgement/h:typeCode/@code") or "",
        detail=text(message, "h:acknowledgement/h:acknowledgementDetail/h:code/@displayName") or "",
        location=text(message, "h:acknowledgement/h:acknowledgementDetail/h:location") or "",
    )
