"""ITI-47 patient demographics query: PRPA_IN201305UV02 → PRPA_IN201306UV02."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lxml import etree

from iemk_etl.protocol.hl7v3.common import (
    ID_TYPES,
    NS,
    PROCESSING_CODE,
    SNILS_ROOT,
    SNILS_TYPE,
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

QUERY, QUERY_RESPONSE = "PRPA_IN201305UV02", "PRPA_IN201306UV02"
# wsa:Action of the query and of its answer. IHE ITI-47 (ITI TF-2b 3.47.4.1.2 / 3.47.4.2.2) spells them with the
# interaction ids; iemk-etl first used the short form. No public evidence says which ИЭМК takes: the client
# sends IEMK_PDQ_ACTION (ITI-47 by default), and an answer carries the action matching the query's.
ITI47_ACTION, ITI47_RESPONSE_ACTION = "urn:hl7-org:v3:PRPA_IN201305UV02", "urn:hl7-org:v3:PRPA_IN201306UV02"
SHORT_ACTION, SHORT_RESPONSE_ACTION = "urn:hl7-org:v3:PRPA_IN201305", "urn:hl7-org:v3:PRPA_IN201306"
ACTIONS = {ITI47_ACTION: ITI47_RESPONSE_ACTION, SHORT_ACTION: SHORT_RESPONSE_ACTION}
ACTION, RESPONSE_ACTION = ITI47_ACTION, ITI47_RESPONSE_ACTION      # the defaults
_INTERACTION_ROOT = "2.16.840.1.113883.1.6"


@dataclass(frozen=True)
class PatientQuery:
    local_id: tuple[str, str] | None = None        # (МО OID, local id)
    snils: str | None = None
    family: str | None = None
    given: str | None = None
    birth_date: str | None = None                  # yyyyMMdd


def build_request(query: PatientQuery, *, system_id: str, processing_code: str = PROCESSING_CODE) -> etree._Element:
    root = begin(QUERY, {None: V3})
    transmission(root, {"root": system_id, "extension": str(uuid.uuid4())},
                 {"root": _INTERACTION_ROOT, "extension": QUERY}, accept_ack="AL", processing_code=processing_code)
    sub(device(root, "sender", "SND"), "id", root=system_id)
    params = sub(sub(sub(root, "controlActProcess", classCode="CACT", moodCode="EVN"), "queryByParameter"),
                 "parameterList")
    if query.local_id:
        sub(sub(params, "livingSubjectId"), "value", root=query.local_id[0], extension=query.local_id[1])
    if query.snils:
        sub(sub(params, "livingSubjectId"), "value", root=SNILS_ROOT, extension=query.snils)
    if query.family or query.given:
        name = sub(sub(params, "livingSubjectName"), "value")
        if query.family:
            sub(name, "family", query.family)
        if query.given:
            sub(name, "given", query.given)
    if query.birth_date:
        sub(sub(params, "livingSubjectBirthTime"), "value", value=query.birth_date)
    return root


def read_request(message: etree._Element) -> PatientQuery:
    params = message.find(".//h:queryByParameter/h:parameterList", NS)
    if params is None:
        raise ValueError("в запросе нет queryByParameter/parameterList")
    local = snils = None
    for value in params.findall("h:livingSubjectId/h:value", NS):
        if value.get("root") == SNILS_ROOT:
            snils = value.get("extension")
        else:
            local = (value.get("root") or "", value.get("extension") or "")
    return PatientQuery(local_id=local, snils=snils, family=text(params, "h:livingSubjectName/h:value/h:family"),
                        given=text(params, "h:livingSubjectName/h:value/h:given"),
                        birth_date=text(params, "h:livingSubjectBirthTime/h:value/@value"))


def build_response(request: etree._Element, matches: list[PatientRecord], *, token: str) -> etree._Element:
    root = begin(QUERY_RESPONSE, {None: V3})
    transmission(root, {"root": token, "extension": str(uuid.uuid4())},
                 {"root": _INTERACTION_ROOT, "extension": QUERY_RESPONSE}, accept_ack=None)
    acknowledgement = sub(root, "acknowledgement")
    sub(acknowledgement, "typeCode", code="AA")
    sub(sub(acknowledgement, "targetMessage"), "id", root=text(request, "h:id/@root") or "",
        extension=text(request, "h:id/@extension") or "")
    control = sub(root, "controlActProcess", classCode="CACT", moodCode="EVN")
    for match in matches:
        event = sub(sub(control, "subject", typeCode="SUBJ"), "registrationEvent", classCode="REG", moodCode="EVN")
        pat = sub(sub(event, "subject1", typeCode="SBJ"), "patient", classCode="PAT")
        sub(pat, "id", root=match.mo_oid, extension=match.local_id)
        person = write_person(pat, match)
        if match.snils:
            ident = sub(person, "asOtherIDs", classCode="IDENT")
            sub(ident, "documentType", code=SNILS_TYPE, codeSystem=ID_TYPES)
            sub(ident, "documentNumber", number=match.snils)
    query_ack = sub(control, "queryAck")
    sub(query_ack, "queryResponseCode", code="OK" if matches else "NF")
    sub(query_ack, "resultTotalQuantity", value=str(len(matches)))
    return root


def read_response(message: etree._Element) -> list[PatientRecord]:
    return [read_patient(pat) for pat in message.findall(".//h:subject1/h:patient", NS)]
