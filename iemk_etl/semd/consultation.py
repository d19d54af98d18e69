"""Kind 119 «Протокол консультации» (Ред. 4), formed from a specialist's consultation («Посещение»).

The consultation is usually asked for by a hospital department: the referring doctor is the REF participant
(with the department as its scopingOrganization), the referral is ``inFulfillmentOf/order`` and, when its date
is known, a LINKDOCS entry. Without referral data those three parts are simply left out.

Body: DOCINFO (diagnoses МКБ-10, first/repeat, place), ANAM and LANAM (each a text entry, nullFlavor when the
МИС has none), RESCONS (state, protocol, conclusion, with the DGN and REGIME sub-sections inside it), LINKDOCS,
SERVICES. 119.sch wants codeSystemName on every code and xsi:type on every urn:hl7-ru element.
"""

from __future__ import annotations

from iemk_etl.semd import FormingError, codes, header
from iemk_etl.semd.header import STYLE_EXTENDED_TYPED as STYLE
from iemk_etl.semd.header import Element, coded, el, null, section, ts
from iemk_etl.semd.model import SERVICE_VISIT, Case, Diagnosis, DocumentContext, Service, Staff

KIND = 119
NOT_RECORDED = "Нет данных"
REFERRAL_DOC = (str(header.REFERRAL_KIND.doc_type), header.REFERRAL_KIND.doc_type_name)   # НСИ 1522


def build(case: Case) -> bytes:
    service = case.subject
    assert isinstance(service, Service) and service.type == SERVICE_VISIT  # noqa: S101 - paired by the dispatcher
    ctx = case.context
    _check(ctx, service)
    doc = header.begin(KIND, ctx, STYLE, title=f"Протокол консультации ({service.performer.position_name})")
    header.header(doc, ctx, STYLE)
    _referrer(doc, ctx, service)
    _referral(doc, ctx, service)
    _documentation_of(doc, ctx, service)
    _component_of(doc, ctx, service)
    body = header.structured_body(doc)
    _document_info(body, service)
    _text_section(body, "ANAM", "Анамнез заболевания", service.anamnesis)
    _text_section(body, "LANAM", "Анамнез жизни", service.life_anamnesis)
    _consultation(body, service)
    _linked_referral(body, ctx, service)
    _services(body, service)
    return header.to_bytes(doc)


def _check(ctx: DocumentContext, service: Service) -> None:
    """What 119.sch demands and no nullFlavor can stand in for."""
    if not ctx.patient.snils:
        raise FormingError("Протокол консультации: у пациента не указан СНИЛС (обязателен для СЭМД вида 119)")
    if ctx.mo.address is None:
        raise FormingError("Протокол консультации: не указан адрес медицинской организации")
    if not service.diagnoses:
        raise FormingError("Протокол консультации: не указан диагноз по МКБ-10")
    if not (service.complaints or service.findings):
        raise FormingError("Протокол консультации: не заполнены жалобы и объективные данные")
    if not service.conclusion:
        raise FormingError("Протокол консультации: не заполнено заключение консультации")
    if service.condition is None:     # 804 may not be nullFlavor, and a state nobody recorded is not ours to invent
        raise FormingError("Протокол консультации: не указано состояние пациента — степень тяжести "
                           "(НСИ 1.2.643.5.1.13.13.11.1006)")
    if service.condition not in codes.CONDITION_NAMES:
        raise FormingError(f"Протокол консультации: неизвестная степень тяжести состояния пациента "
                           f"«{service.condition}» (НСИ 1.2.643.5.1.13.13.11.1006)")


def _short_name(staff: Staff) -> str:
    initials = "".join(f" {part[0]}." for part in (staff.given, staff.patronymic) if part)
    return f"{staff.family}{initials}"


def _ordered(diagnoses: tuple[Diagnosis, ...]) -> list[Diagnosis]:
    main = next((d for d in diagnoses if d.role == "main"), diagnoses[0])
    return [main, *(d for d in diagnoses if d is not main)]


def _role(d: Diagnosis, first: bool) -> str:
    return codes.NOSOLOGY["main" if first else d.role][1]


# --- the header's kind-specific parts --------------------------------------------------------------

def _referrer(doc: Element, ctx: DocumentContext, service: Service) -> None:
    """participant REF: the doctor who asked for the consultation and the department he works in."""
    doctor = service.referred_by
    if doctor is None:
        return
    entity = header.referrer(doc, ctx, doctor, STYLE)
    department = service.referred_from
    if department is not None:
        org = el(entity, "scopingOrganization")
        el(org, "id", root=department.oid)
        el(org, "name", f"{department.name}, {ctx.mo.name}")
        header.address(org, ctx.mo.address, STYLE)


def _referral(doc: Element, ctx: DocumentContext, service: Service) -> None:
    if not service.referral_id:
        return
    order = el(el(doc, "inFulfillmentOf"), "order")
    el(order, "id", root=header.document_root(ctx.mo.oid, ctx.mo.mis_number), extension=service.referral_id)
    coded(order, "code", codes.DOC_TYPES, *REFERRAL_DOC)


def _documentation_of(doc: Element, ctx: DocumentContext, service: Service) -> None:
    event = el(el(doc, "documentationOf"), "serviceEvent")
    coded(event, "code", codes.EVENT_TYPES, "1", "Консультация")
    period = el(event, "effectiveTime")
    el(period, "low", value=ts(service.performed_at))
    null(period, "high")        # the МИС records when the consultation began, not when it ended
    header.assigned_entity(el(event, "performer", typeCode="PPRF"), service.performer, ctx.mo, STYLE)


def _component_of(doc: Element, ctx: DocumentContext, service: Service) -> None:
    """The case the consultation belongs to: the patient's stay, or the consultation itself if none is known."""
    encounter = el(el(doc, "componentOf"), "encompassingEncounter")
    el(encounter, "id", root=header.local_root(ctx.mo.oid, 15, ctx.mo.mis_number),
       extension=service.case_id or service.local_id)
    if service.case_id:
        inpatient = service.referred_from is not None
        el(encounter, "id", root=header.local_root(ctx.mo.oid, 16 if inpatient else 17, ctx.mo.mis_number),
           extension=service.case_id)
    else:
        null(encounter, "id")
    null(encounter, "code")
    null(encounter, "medService:DocType")
    el(el(encounter, "effectiveTime"), "low", value=ts(service.case_started_at or service.performed_at))


# --- the body ------------------------------------------------------------------------------------------

def _observation(node: Element, code: str, display: str) -> Element:
    obs = el(el(node, "entry"), "observation", classCode="OBS", moodCode="EVN")
    coded(obs, "code", codes.CODED_FIELDS, code, display)
    return obs


def _text_value(node: Element, code: str, display: str, text: str | None) -> None:
    obs = _observation(node, code, display)
    if text:
        el(obs, "value", text, xsi_type="ST")
    else:
        null(obs, "value", xsi_type="ST")


def _table(node: Element, rows: list[tuple[str, str | None]]) -> None:
    tbody = el(el(el(node, "text"), "table"), "tbody")
    for label, value in rows:
        if value:
            tr = el(tbody, "tr")
            el(tr, "td", label)
            el(tr, "td", value)


def _document_info(body: Element, service: Service) -> None:
    node = section(body, "DOCINFO", "Сведения о документе")
    place = codes.CARE_PLACE_HOSPITAL if service.referred_from else codes.CARE_PLACE_OUTPATIENT
    order = ("2", "Повторный") if service.repeat else ("1", "Первичный")
    diagnoses = _ordered(service.diagnoses)
    rows = [(f"Шифр по МКБ-10 ({_role(d, i == 0).lower()})", f"{d.icd10} {d.name}") for i, d in enumerate(diagnoses)]
    rows += [("Обращение", order[1]), ("Место проведения", place[1]), ("Направлен", _referral_text(service))]
    _table(node, rows)
    for d in diagnoses:
        coded(_observation(node, "809", "Шифр по МКБ-10"), "value", codes.ICD10, d.icd10, d.name, xsi_type="CD")
    coded(_observation(node, "800", "Обращение"), "value", codes.CASE_ORDER, *order, xsi_type="CD")
    coded(_observation(node, "801", "Место проведения"), "value", codes.CARE_PLACES, *place, xsi_type="CD")


def _referral_text(service: Service) -> str | None:
    parts = []
    if service.referred_from:
        parts.append(service.referred_from.name)
    if service.referred_by:
        parts.append(f"{service.referred_by.position_name} {_short_name(service.referred_by)}")
    if service.referral_id:
        dated = f" от {service.referred_at:%d.%m.%Y}" if service.referred_at else ""
        parts.append(f"направление № {service.referral_id}{dated}")
    return "; ".join(parts) or None


def _text_section(body: Element, code: str, display: str, text: str | None) -> None:
    node = section(body, code, display)
    el(el(node, "text"), "paragraph", text or NOT_RECORDED)
    _text_value(node, "7006", "Текстовое описание", text)


def _consultation(body: Element, service: Service) -> None:
    """RESCONS: the consultant's findings and conclusion, with the diagnoses and recommendations inside."""
    node = section(body, "RESCONS", "Результаты консультации/осмотра врача", f"Консультация: {service.name}")
    condition = service.condition or 0
    condition_name = codes.CONDITION_NAMES[condition]
    protocol = " ".join(p for p in (service.complaints, service.findings and f"Объективно: {service.findings}") if p)
    _table(node, [("Жалобы", service.complaints), ("Состояние пациента", condition_name),
                  ("Объективно", service.findings), ("Заключение", service.conclusion)])
    coded(_observation(node, "804", "Состояние пациента"), "value", codes.CONDITIONS, str(condition), condition_name,
          xsi_type="CD")
    _text_value(node, "805", "Протокол консультации", protocol)
    _text_value(node, "806", "Заключение консультации", service.conclusion)

    diagnoses = "; ".join(f"{_role(d, i == 0)}: {d.icd10} {d.name}" for i, d in enumerate(_ordered(service.diagnoses)))
    dgn = section(node, "DGN", "Диагнозы")
    el(el(dgn, "text"), "paragraph", diagnoses)
    _text_value(dgn, "806", "Заключение консультации", diagnoses)
    if service.recommendations:
        regime = section(node, "REGIME", "Режим и рекомендации", "Рекомендации")
        el(el(regime, "text"), "paragraph", service.recommendations)
        _text_value(regime, "807", "Рекомендации", service.recommendations)


def _linked_referral(body: Element, ctx: DocumentContext, service: Service) -> None:
    """LINKDOCS: the referral as a document, when its number and date are known."""
    if not (service.referral_id and service.referred_at):
        return
    node = section(body, "LINKDOCS", "Связанные документы")
    text = f"Направление на консультацию № {service.referral_id} от {service.referred_at:%d.%m.%Y}"
    if service.referred_from:
        text += f", {service.referred_from.name}"
    el(el(node, "text"), "paragraph", text)
    act = el(el(node, "entry"), "act", classCode="ACT", moodCode="EVN")
    coded(act, "code", codes.DOC_TYPES, *REFERRAL_DOC)
    el(act, "text", text)
    el(act, "effectiveTime", value=ts(service.referred_at))
    external = el(el(act, "reference", typeCode="REFR"), "externalDocument", classCode="DOCCLIN", moodCode="EVN")
    el(external, "id", root=header.document_root(ctx.mo.oid, ctx.mo.mis_number), extension=service.referral_id)


def _services(body: Element, service: Service) -> None:
    node = section(body, "SERVICES", "Оказанные услуги")
    el(el(node, "text"), "paragraph", f"{service.code} {service.name}, {service.performed_at:%d.%m.%Y %H:%M}")
    act = el(el(node, "entry"), "act", classCode="ACT", moodCode="EVN")
    coded(act, "code", codes.SERVICES, service.code, service.name)
    el(act, "effectiveTime", value=ts(service.performed_at))
