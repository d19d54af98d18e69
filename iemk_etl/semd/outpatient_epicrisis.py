"""Kind 42 «Эпикриз по законченному случаю амбулаторный» (Ред. 3), formed from a visit's fields.

When the visit has a signed report template flagged TO_IEMK, the report travels inside the document as PDF:
an ``observationMedia`` entry of the AMBS section, referenced from its narrative. (42.sch refuses a
``nonXMLBody`` — rule У1-47 demands a structuredBody — and never looks at observationMedia, so the visit's
structured data stays and the PDF rides along.) Anything but a PDF is refused before forming.
"""

from __future__ import annotations

import base64

from iemk_etl.semd import codes, header, pdf
from iemk_etl.semd.header import STYLE_LEGACY as STYLE
from iemk_etl.semd.header import Element, coded, el, null, section, ts
from iemk_etl.semd.model import Case, Diagnosis, DocumentContext, Visit

KIND = 42
TITLE = "Эпикриз по законченному случаю амбулаторный"
PDF_ID = "report-pdf"


def build(case: Case) -> bytes:
    visit = case.subject
    assert isinstance(visit, Visit)  # noqa: S101 - the dispatcher pairs kind 42 with visits
    if visit.report is not None:
        pdf.check(visit.report.content, visit.report.file_name)
    ctx = case.context
    doc = header.begin(KIND, ctx, STYLE, title=TITLE)
    header.header(doc, ctx, STYLE)
    _component_of(doc, ctx, visit)
    body = header.structured_body(doc)
    _case_section(body, ctx, visit)
    _visit_section(body, ctx, visit)
    header.services_section(body, [(visit.service_code, visit.service_name, visit.started_at),
                                    *((s.code, s.name, s.performed_at) for s in visit.services)])
    if visit.recommendations:
        text = el(section(body, "REGIME", "Режим и рекомендации", "Рекомендации"), "text")
        el(text, "paragraph", visit.recommendations)
    return header.to_bytes(doc)


def _main(visit: Visit) -> Diagnosis:
    return next((d for d in visit.diagnoses if d.role == "main"), visit.diagnoses[0])


def _component_of(doc: Element, ctx: DocumentContext, visit: Visit) -> None:
    encounter = el(el(doc, "componentOf"), "encompassingEncounter")
    el(encounter, "id", root=header.local_root(ctx.mo.oid, 15, ctx.mo.mis_number), extension=visit.local_id)
    period = el(encounter, "effectiveTime")
    el(period, "low", value=header.day(visit.started_at))
    el(period, "high", value=header.day(visit.ended_at))
    null(encounter, "dischargeDispositionCode")
    facility = el(el(encounter, "location"), "healthCareFacility")   # У1-50: exactly one, even when unknown
    if visit.doctor.department is not None:
        el(facility, "id", root=visit.doctor.department.oid)
    else:
        null(facility, "id", "UNK")


def _row(tbody: Element, label: str, value: str | None) -> None:
    if value:
        tr = el(tbody, "tr")
        el(tr, "th", label)
        el(tr, "td", value)


def _case_section(body: Element, ctx: DocumentContext, visit: Visit) -> None:
    node = section(body, "AMBS", "Сведения амбулаторно-поликлинического обращения")
    main = _main(visit)
    text = el(node, "text")
    tbody = el(el(text, "table"), "tbody")
    _row(tbody, "Период обращения", f"{visit.started_at:%d.%m.%Y} – {visit.ended_at:%d.%m.%Y}")
    _row(tbody, "Вид случая", "Повторный" if visit.repeat else "Первичный")
    _row(tbody, "Основной диагноз", f"{main.icd10} {main.name}")
    others = [d for d in visit.diagnoses if d is not main]
    _row(tbody, "Сопутствующие заболевания", "; ".join(f"{d.icd10} {d.name}" for d in others))
    _row(tbody, "Анамнез заболевания", visit.anamnesis)
    _row(tbody, "Заключение", visit.conclusion)
    if visit.report is not None:
        para = el(text, "paragraph", f"Протокол «{visit.report.name}» (подписан "
                                     f"{visit.report.signed_at:%d.%m.%Y %H:%M}) приложен в формате PDF: ")
        el(para, "renderMultiMedia", referencedObject=PDF_ID)

    encounter = el(el(node, "entry"), "encounter", classCode="ENC", moodCode="EVN")
    el(encounter, "id", root=header.local_root(ctx.mo.oid, 15, ctx.mo.mis_number), extension=visit.local_id)
    period = el(encounter, "effectiveTime")
    el(period, "low", value=header.day(visit.started_at))
    el(period, "high", value=header.day(visit.ended_at))
    order = el(el(encounter, "entryRelationship", typeCode="SUBJ", inversionInd="true"), "observation",
               classCode="OBS", moodCode="EVN")
    coded(order, "code", codes.CASE_ORDER, "2" if visit.repeat else "1", "Повторный" if visit.repeat else "Первичный")
    act = el(el(encounter, "entryRelationship", typeCode="REFR", inversionInd="false"), "act", classCode="ACT",
             moodCode="EVN")
    coded(act, "code", codes.ICD10, main.icd10, main.name)

    care = el(el(node, "entry"), "observation", classCode="OBS", moodCode="EVN")
    coded(care, "code", codes.CARE_KINDS, "2", "Первичная врачебная медико-санитарная помощь")
    _diagnoses(node, visit.diagnoses, main)
    if visit.report is not None:
        media = el(el(node, "entry"), "observationMedia", classCode="OBS", moodCode="EVN", ID=PDF_ID)
        el(media, "value", base64.b64encode(visit.report.content).decode("ascii"), mediaType="application/pdf",
           representation="B64")


def _diagnoses(node: Element, diagnoses: tuple[Diagnosis, ...], main: Diagnosis) -> None:
    act = el(el(node, "entry"), "act", classCode="ACT", moodCode="EVN")
    coded(act, "code", codes.DIAGNOSIS_KINDS, "3", "Заключительный клинический диагноз")
    for d in (main, *(x for x in diagnoses if x is not main)):
        obs = el(el(act, "entryRelationship", typeCode="COMP"), "observation", classCode="OBS", moodCode="EVN")
        role_code, role_name = codes.NOSOLOGY["main" if d is main else d.role]
        coded(obs, "code", codes.NOSOLOGY_ROLES, role_code, role_name)
        if d.note:
            el(obs, "text", d.note)
        coded(obs, "value", codes.ICD10, d.icd10, d.name, xsi_type="CD")


_VISIT_FIELDS = (("835", "Жалобы пациента", "complaints"), ("836", "Объективные данные", "objective"),
                 ("837", "Заключение", "conclusion"), ("839", "Рекомендовано", "recommendations"))


def _visit_section(body: Element, ctx: DocumentContext, visit: Visit) -> None:
    node = section(body, "AMBSV", "Сведения амбулаторно-поликлинического посещения", "Посещения")
    doctor = visit.doctor
    text = el(node, "text")
    table = el(text, "table")
    head = el(el(table, "thead"), "tr")
    for label in ("Дата", "Услуга", "Врач", "Сведения"):
        el(head, "th", label)
    row = el(el(table, "tbody"), "tr")
    el(row, "td", f"{visit.started_at:%d.%m.%Y}")
    el(row, "td", visit.service_name)
    el(row, "td", f"{doctor.family} {doctor.given[:1]}.{(doctor.patronymic or ' ')[:1]}.".replace(" .", ""))
    facts = [f"{label}: {getattr(visit, attr)}" for _, label, attr in _VISIT_FIELDS if getattr(visit, attr)]
    el(row, "td", " ".join(facts) or "—")

    encounter = el(el(node, "entry"), "encounter", classCode="ENC", moodCode="EVN")
    period = el(encounter, "effectiveTime")
    el(period, "low", value=ts(visit.started_at))
    el(period, "high", value=ts(visit.ended_at))
    header.assigned_entity(el(encounter, "performer"), doctor, ctx.mo, STYLE)
    place = el(el(encounter, "participant", typeCode="LOC"), "participantRole", classCode="SDLOC")
    coded(place, "code", codes.CARE_PLACES, "1", "Амбулаторно-поликлиническое учреждение")
    service = el(el(encounter, "entryRelationship", typeCode="REFR", inversionInd="false"), "act", classCode="ACT",
                 moodCode="EVN")
    coded(service, "code", codes.SERVICES, visit.service_code, visit.service_name)
    el(service, "effectiveTime", value=ts(visit.started_at))
    for code, label, attr in _VISIT_FIELDS:
        value = getattr(visit, attr)
        if value:
            obs = el(el(encounter, "entryRelationship", typeCode="REFR", inversionInd="false"), "observation",
                     classCode="OBS", moodCode="EVN")
            coded(obs, "code", codes.CODED_FIELDS, code, label)
            el(obs, "value", value, xsi_type="ST")
