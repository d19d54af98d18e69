"""ITI-44 patient identity feed: PRPA_IN201301RU02 (add) / PRPA_IN201302RU02 (revise) → MCCI_IN000002UV01."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lxml import etree

from iemk_etl.protocol.hl7v3.common import (
    ID_TYPES,
    IEMK_DEVICE,
    NS,
    PROCESSING_CODE,
    V3,
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


@dataclass(frozen=True)
class FeedMessage:
    interaction: str              # ADD or REVISE
    message_root: str
    message_extension: str
    sender_device: str | None
    patient: PatientRecord


def build_feed(interaction: str, patient: PatientRecord, *, system_id: str, system_name: str, mo_name: str,
               processing_code: str = PROCESSING_CODE, receiver_device: str = IEMK_DEVICE) -> etree._Element:
    """The request a МИС sends to add (or revise) a patient: the sample's structure."""
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
        ident = sub(person, "asOtherIDs", classCode="IDENT")
        sub(ident, "documentType", code=other.type_code, codeSystem=ID_TYPES)
        sub(ident, "documentNumber", number=other.number, series=other.series or None)
        scope = sub(ident, "scopingOrganization", classCode="ORG", determinerCode="INSTANCE")
        sub(scope, "id", nullFlavor="NI")
    provider = sub(pat, "providerOrganization", classCode="ORG", determinerCode="INSTANCE")
    sub(provider, "id", root=patient.mo_oid)
    sub(provider, "name", mo_name)
    custodian = sub(sub(event, "custodian", typeCode="CST"), "assignedEntity", classCode="ASSIGNED")
    sub(custodian, "id", root=patient.mo_oid)
    sub(sub(custodian, "assignedOrganization", classCode="ORG", determinerCode="INSTANCE"), "name", mo_name)
    return root


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
