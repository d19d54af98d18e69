"""Kind 174 «Протокол инструментального исследования» (Ред. 4), formed from an instrumental study (a Service).

The document, top to bottom:

- header (shared) + participant REF (the referring doctor) + inFulfillmentOf (the referral) +
  documentationOf/serviceEvent (the study: when, in which form and conditions, by whom);
- DOCINFO: case order (800), place (801), the main diagnosis (838) and the study itself as an act coded in
  НСИ 1471 (ФСИДИ) — the guide wants ФСИДИ there, a МИС knows its НСИ 1070 service, so the code goes through
  ``codes.FSIDI_BY_SERVICE`` and an unmapped service is refused;
- SERVICES: the НСИ 1070 service as rendered;
- RESINFO: method (8024), protocol / findings (1805), conclusion (1806), recommendations (807);
- LINKDOCS: the referral document, when the study had one.

What the guide offers but the МИС does not record is left out: the study object (OBJECTINFO, needs НСИ 1477 —
and must never carry 8034, whose rule in 174.sch is unsatisfiable), vital parameters, scores, the device used.
"""

from __future__ import annotations

import datetime as dt

from iemk_etl.semd import FormingError, codes, header
from iemk_etl.semd.header import STYLE_EXTENDED as STYLE
from iemk_etl.semd.header import Element, coded, el, null, section, ts
from iemk_etl.semd.model import Case, Diagnosis, DocumentContext, Service, Staff

KIND = 174
REFERRAL_KIND = header.REFERRAL_KIND


def build(case: Case) -> bytes:
    service = case.subject
    assert isinstance(service, Service)  # noqa: S101 - the dispatcher pairs kind 174 with services
    study = _fsidi(service)
    _check_texts(service)
    ctx = case.context
    doc = header.begin(KIND, ctx, STYLE)
    header.header(doc, ctx, STYLE)
    if service.referred_by is not None:
        _referrer(doc, ctx, service.referred_by)
    if service.referral_id:
        header.referral_order(doc, ctx.mo, service.referral_id)
    _documentation_of(doc, ctx, service)
    body = header.structured_body(doc)
    _docinfo_section(body, service, study)
    _services_section(body, service)
    _resinfo_section(body, service)
    if service.referral_id and service.referred_at:
        _linkdocs_section(body, ctx, service.referral_id, service.referred_at)
    return header.to_bytes(doc)


def _fsidi(service: Service) -> tuple[str, str]:
    """The study's ФСИДИ (НСИ 1471) code and name; an unmapped НСИ 1070 service cannot form the document."""
    try:
        return codes.FSIDI_BY_SERVICE[service.code]
    except KeyError:
        raise FormingError(
            f"исследование «{service.name}» (код услуги {service.code} по НСИ 1070) не сопоставлено "
            f"с Федеральным справочником инструментальных диагностических исследований (НСИ 1471): "
            f"добавьте код услуги {service.code} в таблицу соответствия") from None


def _check_texts(service: Service) -> None:
    """RESINFO must carry a non-empty protocol (1805) and conclusion (1806): no nullFlavor is allowed there."""
    missing = [label for label, text in (("протокол", service.findings), ("заключение", service.conclusion))
               if not (text and text.strip())]
    if missing:
        raise FormingError(f"в исследовании «{service.name}» не заполнено: {', '.join(missing)}")


def _main(service: Service) -> Diagnosis | None:
    return next((d for d in service.diagnoses if d.role == "main"), service.diagnoses[0] if service.diagnoses else None)


# --- header parts of this kind ---------------------------------------------------------------------------

def _referrer(doc: Element, ctx: DocumentContext, doctor: Staff) -> None:
    entity = header.referrer(doc, ctx, doctor, STYLE)
    # Not header.organization: this XSD refuses the classCode it puts on every other organisation.
    org = el(entity, "scopingOrganization")
    el(org, "id", root=ctx.mo.oid)
    el(org, "name", ctx.mo.name)
    header.telecom(org, ctx.mo.phone, STYLE)
    header.address(org, ctx.mo.address, STYLE)


def _documentation_of(doc: Element, ctx: DocumentContext, service: Service) -> None:
    event = el(el(doc, "documentationOf"), "serviceEvent")
    coded(event, "code", codes.EVENT_TYPES, "3", "Инструментальное исследование")
    el(el(event, "effectiveTime"), "low", value=ts(service.performed_at))
    coded(event, "medService:serviceForm", codes.CARE_FORMS, "1", "плановая")
    coded(event, "medService:serviceCond", codes.CARE_CONDITIONS, "2",
          "Амбулаторно, в том числе на дому при вызове медицинского работника")
    header.assigned_entity(el(event, "performer", typeCode="PPRF"), service.performer, ctx.mo, STYLE)


# --- body ----------------------------------------------------------------------------------------------------

def _rows(parent: Element, rows: list[tuple[str, str]]) -> None:
    tbody = el(el(parent, "table"), "tbody")
    for label, value in rows:
        tr = el(tbody, "tr")
        el(tr, "th", label)
        el(tr, "td", value)


def _field(node: Element, code: str, label: str) -> Element:
    """An entry/observation coded in НСИ 99.2.166 «Кодируемые поля»; the caller adds its value."""
    obs = el(el(node, "entry"), "observation", classCode="OBS", moodCode="EVN")
    coded(obs, "code", codes.CODED_FIELDS, code, label)
    return obs


def _docinfo_section(body: Element, service: Service, study: tuple[str, str]) -> None:
    node = section(body, "DOCINFO", "Сведения о документе")
    main = _main(service)
    fsidi_code, fsidi_name = study
    rows = [("Обращение", "Первичное"), ("Место проведения", "Амбулаторно-поликлиническое учреждение"),
            ("Исследование", f"{fsidi_name} ({service.performed_at:%d.%m.%Y %H:%M})")]
    if main is not None:
        rows.append(("Диагноз", f"{main.icd10} {main.name}"))
    others = [d for d in service.diagnoses if d is not main]
    if others:
        rows.append(("Сопутствующие заболевания", "; ".join(f"{d.icd10} {d.name}" for d in others)))
    _rows(el(node, "text"), rows)

    coded(_field(node, "800", "Обращение"), "value", codes.CASE_ORDER, "1", "Первичный", xsi_type="CD")
    coded(_field(node, "801", "Место проведения"), "value", codes.CARE_PLACES, "1",
          "Амбулаторно-поликлиническое учреждение", xsi_type="CD")
    diagnosis = _field(node, "838", "Диагноз")
    if main is None:
        null(diagnosis, "value", xsi_type="CD")
    else:
        coded(diagnosis, "value", codes.ICD10, main.icd10, main.name, xsi_type="CD")
    act = el(el(node, "entry"), "act", classCode="ACT", moodCode="EVN")
    coded(act, "code", codes.FSIDI, fsidi_code, fsidi_name)
    el(el(act, "effectiveTime"), "low", value=ts(service.performed_at))


def _services_section(body: Element, service: Service) -> None:
    node = section(body, "SERVICES", "Оказанные услуги")
    _rows(el(node, "text"), [(f"{service.code} {service.name}", f"{service.performed_at:%d.%m.%Y %H:%M}")])
    act = el(el(node, "entry"), "act", classCode="ACT", moodCode="EVN")
    coded(act, "code", codes.SERVICES, service.code, service.name)
    el(el(act, "effectiveTime"), "low", value=ts(service.performed_at))


def _resinfo_section(body: Element, service: Service) -> None:
    node = section(body, "RESINFO", "Заключение", "Результаты исследования")
    texts = [("1805", "Протокол инструментального исследования", service.findings),
             ("1806", "Заключение инструментального исследования", service.conclusion),
             ("807", "Рекомендации", service.recommendations)]
    _rows(el(node, "text"), [(label, text) for _, label, text in texts if text])
    # 8024 is «Номер протокола инструментального исследования» (99.2.166 v2.1), mandatory: the МИС numbers the
    # study's protocol by its record of the service.
    el(_field(node, "8024", "Номер протокола инструментального исследования"), "value", service.local_id, xsi_type="ST")
    for code, label, text in texts:
        if text:
            el(_field(node, code, label), "value", text, xsi_type="ST")


def _linkdocs_section(body: Element, ctx: DocumentContext, referral_id: str, referred_at: dt.datetime) -> None:
    node = section(body, "LINKDOCS", "Связанные документы")
    _rows(el(node, "text"), [(REFERRAL_KIND.doc_type_name, f"№ {referral_id} от {referred_at:%d.%m.%Y}")])
    act = el(el(node, "entry"), "act", classCode="ACT", moodCode="EVN")
    coded(act, "code", codes.DOC_TYPES, str(REFERRAL_KIND.doc_type), REFERRAL_KIND.doc_type_name)
    el(act, "effectiveTime", value=ts(referred_at))
    document = el(el(act, "reference", typeCode="REFR"), "externalDocument", classCode="DOCCLIN", moodCode="EVN")
    header.referral_ids(document, ctx.mo, referral_id)
