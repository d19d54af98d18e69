"""Kind 186 «Протокол лабораторного исследования» (Ред. 5), formed from a lab study (a Service of type «Анализ»).

The document, top to bottom:

- header (shared) + participant REF (the referring doctor) + inFulfillmentOf (the referral) +
  documentationOf/serviceEvent (the study: when, form/kind/conditions of care, the doctor who did it and the one
  who validated it) + componentOf (the outpatient case, when the МИС links one);
- SPECIMENS: the material (НСИ 99.2.1019) with its barcode, container and volume, when and by whom it was taken,
  when the lab received it;
- ANALYSERS: the analyser, or «unknown» (nullFlavor) when the МИС does not say;
- RESLAB: one BATTERY for the ordered service — its НСИ 1437 profile or «Отдельные лабораторные тесты», the service
  itself (833), one observation per test (НСИ 1080 code, the value with its НСИ 1358 unit or a qualitative text,
  the N/H/L interpretation, the reference range, the lab's comment 10000) and the conclusion (900);
- SERVICES: the service rendered; LINKDOCS: the referral, when there was one.

What the rules force:

- a unit without an НСИ 1358 row cannot be sent (every PQ needs exactly one 1358 translation): refused, named;
- people inside sections carry their position and name every time: 186.sch Extra04-1 decides whether a person is
  «described in documentationOf» by ``matches()`` on the staff id, a regex substring test that misfires when one id
  contains another (S-2 / S-201); with the full person the rule holds whatever the ids look like;
- procedure/effectiveTime needs low and high (Core10-1): the moment of collection is low = high;
- no translation under specimenPlayingEntity/code: the XSD and Core11-1 contradict each other there.
"""

from __future__ import annotations

import datetime as dt

from iemk_etl import kinds
from iemk_etl.semd import FormingError, codes, header
from iemk_etl.semd.header import STYLE_EXTENDED as STYLE
from iemk_etl.semd.header import Element, coded, el, null, section, ts
from iemk_etl.semd.model import Case, DocumentContext, LabResult, Service, Specimen, Staff

KIND = 186
KIND_INFO = kinds.get(KIND)
REFERRAL_KIND = header.REFERRAL_KIND
SEPARATE_TESTS = "Отдельные лабораторные тесты"     # the BATTERY's name without a 1437 profile (text fixed by У3-4)
NO_DEVICE = "Сведения об оборудовании отсутствуют"

# НСИ 1358 rows by the unit's short name and by its UCUM code, case-insensitively ("10*9/L" = "10*9/l").
_UNITS = {key.casefold(): row for row in codes.LAB_UNIT_ROWS for key in (row[1], row[2])}


def build(case: Case) -> bytes:
    service = case.subject
    assert isinstance(service, Service)  # noqa: S101 - the dispatcher pairs kind 186 with lab services
    specimen, taken = _check(service)
    ctx = case.context
    doc = header.begin(KIND, ctx, STYLE, title=f"{KIND_INFO.doc_type_name}: {service.name}")
    header.header(doc, ctx, STYLE)
    if service.referred_by is not None:
        _referrer(doc, ctx, service.referred_by)
    if service.referral_id:
        header.referral_order(doc, ctx.mo, service.referral_id)
    _documentation_of(doc, ctx, service)
    if service.case_id:
        _component_of(doc, ctx, service)
    body = header.structured_body(doc)
    _specimens_section(body, ctx, specimen, taken)
    _analysers_section(body, ctx, service)
    _reslab_section(body, ctx, service, specimen)
    _services_section(body, service)
    if service.referral_id and service.referred_at:
        _linkdocs_section(body, ctx, service)
    return header.to_bytes(doc)


def _check(service: Service) -> tuple[Specimen, dt.datetime]:
    """What the guide cannot do without; every unit is looked up now so a bad one stops the whole document."""
    problems = []
    if not service.lab_results:
        problems.append("нет ни одного результата теста")
    if service.specimen is None:
        problems.append("не указан исследованный биоматериал (НСИ 1.2.643.5.1.13.13.99.2.1019)")
    if service.specimen_taken_at is None:
        problems.append("не указано время взятия биоматериала")
    if problems:
        raise FormingError(f"исследование «{service.name}»: {'; '.join(problems)}")
    for result in service.lab_results:
        if result.unit:
            _unit(result)
            _number(result, result.value)
        if result.interpretation and result.interpretation not in codes.LAB_INTERPRETATION_NAMES:
            raise FormingError(f"оценка «{result.interpretation}» теста «{result.test_name}» не из НСИ "
                               f"1.2.643.5.1.13.13.99.2.257 (ожидается N, H или L)")
    assert service.specimen is not None and service.specimen_taken_at is not None  # noqa: S101 - checked above
    return service.specimen, service.specimen_taken_at


def _unit(result: LabResult) -> tuple[str, str, str]:
    """The result's НСИ 1358 code, short name and UCUM code."""
    row = _UNITS.get((result.unit or "").strip().casefold())
    if row is None:
        raise FormingError(
            f"единица измерения «{result.unit}» теста «{result.test_name}» ({result.test_code}) не сопоставлена "
            f"с НСИ 1.2.643.5.1.13.13.11.1358 «Единицы измерения»: добавьте её в таблицу соответствия")
    return row


def _number(result: LabResult, text: str) -> str:
    """A quantitative value as the XSD's real wants it: decimal point, no spaces."""
    value = text.strip().replace(",", ".")
    try:
        float(value)
    except ValueError:
        raise FormingError(f"результат теста «{result.test_name}» с единицей «{result.unit}» не является числом: "
                           f"«{text}»") from None
    return value


# --- people -------------------------------------------------------------------------------------------------

def _person(parent: Element, staff: Staff, ctx: DocumentContext, *, tag: str = "assignedEntity") -> Element:
    """A staff member as sections and documentationOf cite one: the МИС id, position, phone and name."""
    node = el(parent, tag)
    el(node, "id", root=header.local_root(ctx.mo.oid, 70, ctx.mo.mis_number), extension=staff.local_id)
    coded(node, "code", codes.POSITIONS, staff.position_code, staff.position_name)
    header.telecom(node, staff.phone, STYLE)
    header.name(el(node, "assignedPerson"), staff, STYLE)
    return node


def _initials(staff: Staff) -> str:
    return f"{staff.family} {staff.given[:1]}." + (f"{staff.patronymic[:1]}." if staff.patronymic else "")


# --- header parts of this kind ---------------------------------------------------------------------------

def _referrer(doc: Element, ctx: DocumentContext, doctor: Staff) -> None:
    entity = header.referrer(doc, ctx, doctor, STYLE)
    scoping = el(entity, "scopingOrganization")     # this XSD takes no classCode here, unlike header.organization
    el(scoping, "id", root=ctx.mo.oid)
    el(scoping, "name", ctx.mo.name)


def _documentation_of(doc: Element, ctx: DocumentContext, service: Service) -> None:
    event = el(el(doc, "documentationOf"), "serviceEvent")
    coded(event, "code", codes.EVENT_TYPES, "4", "Лабораторное исследование")
    el(event, "effectiveTime", value=ts(service.performed_at))
    coded(event, "medService:serviceForm", codes.CARE_FORMS, *codes.LAB_CARE_FORM)
    coded(event, "medService:serviceType", codes.CARE_KINDS, *codes.LAB_CARE_KIND)
    coded(event, "medService:serviceCond", codes.CARE_CONDITIONS, *codes.LAB_CARE_CONDITION)
    _person(el(event, "performer", typeCode="PPRF"), service.performer, ctx)
    if ctx.signer.local_id != service.performer.local_id:     # the doctor who validated the results
        _person(el(event, "performer", typeCode="SPRF"), ctx.signer, ctx)


def _component_of(doc: Element, ctx: DocumentContext, service: Service) -> None:
    encounter = el(el(doc, "componentOf"), "encompassingEncounter")
    el(encounter, "id", root=header.local_root(ctx.mo.oid, 15, ctx.mo.mis_number), extension=service.case_id)
    el(el(encounter, "effectiveTime"), "low", value=ts(service.case_started_at or service.performed_at))


# --- body ----------------------------------------------------------------------------------------------------

def _table(parent: Element, head: tuple[str, ...], rows: list[tuple[str, ...]], caption: str | None = None) -> None:
    table = el(parent, "table")
    if caption:
        el(table, "caption", caption)
    tr = el(el(table, "thead"), "tr")
    for label in head:
        el(tr, "th", label)
    tbody = el(table, "tbody")
    for row in rows:
        tr = el(tbody, "tr")
        for value in row:
            el(tr, "td", value)


def _specimen_id(parent: Element, ctx: DocumentContext, specimen: Specimen) -> None:
    el(el(el(parent, "specimen"), "specimenRole"), "id", root=header.local_root(ctx.mo.oid, 66, ctx.mo.mis_number),
       extension=specimen.barcode)


def _quantity(parent: Element, tag: str, value: str, unit: tuple[str, str, str], **attrs: str) -> Element:
    """A PQ with the НСИ 1358 translation every quantity here must carry (У3-1, У3-4, Core11-1)."""
    code, name, ucum = unit
    node = el(parent, tag, value=value, unit=ucum, **attrs)
    el(node, "translation", value=value, code=code, codeSystem=codes.LAB_UNITS.oid,
       codeSystemVersion=codes.LAB_UNITS.version, codeSystemName=codes.LAB_UNITS.name, displayName=name)
    return node


def _specimens_section(body: Element, ctx: DocumentContext, specimen: Specimen, taken: dt.datetime) -> None:
    node = section(body, "SPECIMENS", "Информация об исследованных материалах")
    volume = f"{specimen.volume_ml} мл" if specimen.volume_ml else "—"
    collector = _initials(specimen.collected_by) if specimen.collected_by else "—"
    _table(el(node, "text"), ("Материал", "Контейнер / штрихкод", "Объём", "Взятие", "Взял"),
           [(specimen.material_name, specimen.container or specimen.barcode, volume, f"{taken:%d.%m.%Y %H:%M}",
             collector)])

    organizer = el(el(node, "entry"), "organizer", classCode="CLUSTER", moodCode="EVN")
    el(organizer, "statusCode", code="completed")
    # When the lab received the material; a МИС that does not record it has only the moment it was taken.
    el(organizer, "effectiveTime", value=ts(specimen.received_at or taken))
    procedure = el(el(organizer, "component"), "procedure", classCode="PROC", moodCode="EVN")
    null(procedure, "code")
    el(procedure, "statusCode", code="completed")
    period = el(procedure, "effectiveTime")
    el(period, "low", value=ts(taken))
    el(period, "high", value=ts(taken))
    role = el(el(procedure, "specimen"), "specimenRole")
    el(role, "id", root=header.local_root(ctx.mo.oid, 66, ctx.mo.mis_number), extension=specimen.barcode)
    entity = el(role, "specimenPlayingEntity", classCode="ENT", determinerCode="INSTANCE")
    coded(entity, "code", codes.LAB_MATERIALS, specimen.material_code, specimen.material_name)
    if specimen.volume_ml:
        _quantity(entity, "quantity", specimen.volume_ml.replace(",", "."), codes.LAB_UNIT_ML)
    else:
        null(entity, "quantity")
    if specimen.container:
        el(entity, "desc", specimen.container)
    if specimen.collected_by is not None:
        _person(el(procedure, "performer"), specimen.collected_by, ctx)


def _device(parent: Element, ctx: DocumentContext, service: Service, *, named: bool) -> None:
    role = el(el(parent, "participant", typeCode="DEV"), "participantRole",
              classCode="ROL" if service.analyser_id else None, nullFlavor=None if service.analyser_id else "NI")
    if service.analyser_id:
        el(role, "id", root=header.local_root(ctx.mo.oid, 67, ctx.mo.mis_number), extension=service.analyser_id)
        if named and service.analyser_name:
            el(el(role, "playingDevice"), "manufacturerModelName", service.analyser_name)


def _analysers_section(body: Element, ctx: DocumentContext, service: Service) -> None:
    node = section(body, "ANALYSERS", "Информация об использованном оборудовании и расходных материалах")
    el(el(node, "text"), "paragraph", service.analyser_name or NO_DEVICE)
    organizer = el(el(node, "entry"), "organizer", classCode="CLUSTER", moodCode="EVN")
    el(organizer, "statusCode", code="completed")
    _device(organizer, ctx, service, named=True)


def _range_text(result: LabResult) -> str:
    if result.low and result.high:
        return f"{result.low} – {result.high}"
    if result.low:
        return f"не менее {result.low}"
    return f"не более {result.high}" if result.high else "—"


def _reslab_text(node: Element, service: Service) -> None:
    text = el(node, "text")
    rows = [(r.test_name, r.value, r.unit or "—", _range_text(r),
             codes.LAB_INTERPRETATION_NAMES.get(r.interpretation or "", "—")) for r in service.lab_results]
    _table(text, ("Показатель", "Результат", "Единицы измерения", "Референсный интервал", "Оценка"), rows,
           caption=f"{service.name}, {service.performed_at:%d.%m.%Y %H:%M}")
    for result in service.lab_results:
        if result.comment:
            el(text, "paragraph", f"{result.test_name}: {result.comment}")
    if service.conclusion:
        el(text, "paragraph", f"Заключение: {service.conclusion}")


def _reslab_section(body: Element, ctx: DocumentContext, service: Service, specimen: Specimen) -> None:
    node = section(body, "RESLAB", "Результаты лабораторного исследования")
    _reslab_text(node, service)
    top = el(el(node, "entry"), "organizer", classCode="CLUSTER", moodCode="EVN")
    el(top, "statusCode", code="completed")
    battery = el(el(top, "component"), "organizer", classCode="BATTERY", moodCode="EVN")
    profile = codes.LAB_PROFILE_BY_SERVICE.get(service.code)
    if profile is None:
        el(null(battery, "code", "OTH"), "originalText", SEPARATE_TESTS)
    else:
        coded(battery, "code", codes.LAB_PROFILES, *profile)
    el(battery, "statusCode", code="completed")
    ordered = el(el(battery, "component"), "observation", classCode="OBS", moodCode="EVN")
    coded(ordered, "code", codes.CODED_FIELDS, "833", "Медицинская услуга")
    coded(ordered, "value", codes.SERVICES, service.code, service.name, xsi_type="CD")
    for result in service.lab_results:
        _observation(battery, ctx, service, specimen, result)
    if service.conclusion:
        act = el(el(battery, "component"), "act", classCode="ACT", moodCode="EVN")
        coded(act, "code", codes.CODED_FIELDS, "900", "Текстовое примечание к лабораторному исследованию")
        el(act, "text", service.conclusion)


def _observation(battery: Element, ctx: DocumentContext, service: Service, specimen: Specimen,
                 result: LabResult) -> None:
    obs = el(el(battery, "component"), "observation", classCode="OBS", moodCode="EVN")
    coded(obs, "code", codes.LAB_TESTS, result.test_code, result.test_name)
    el(obs, "statusCode", code="completed")
    el(obs, "effectiveTime", value=ts(service.performed_at))
    unit = _unit(result) if result.unit else None
    if unit is None:        # a qualitative result: the lab's wording, as ST
        el(obs, "value", result.value, xsi_type="ST")
    else:
        _quantity(obs, "value", _number(result, result.value), unit, xsi_type="PQ")
    if result.interpretation:
        coded(obs, "interpretationCode", codes.LAB_INTERPRETATIONS, result.interpretation,
              codes.LAB_INTERPRETATION_NAMES[result.interpretation])
    else:
        null(obs, "interpretationCode")
    _specimen_id(obs, ctx, specimen)
    _person(el(obs, "performer"), service.performer, ctx)
    _device(obs, ctx, service, named=False)
    if result.comment:
        act = el(el(obs, "entryRelationship", typeCode="COMP"), "act", classCode="ACT", moodCode="EVN")
        coded(act, "code", codes.CODED_FIELDS, "10000", "Комментарий")
        el(act, "text", result.comment)
    if unit is not None and (result.low or result.high):
        _reference_range(obs, result, unit)


def _reference_range(obs: Element, result: LabResult, unit: tuple[str, str, str]) -> None:
    observation_range = el(el(obs, "referenceRange"), "observationRange")
    el(observation_range, "text", f"{_range_text(result)} {unit[1]}")
    value = el(observation_range, "value", xsi_type="IVL_PQ")
    for tag, bound in (("low", result.low), ("high", result.high)):
        if bound:
            _quantity(value, tag, _number(result, bound), unit, inclusive="true")
        else:       # a one-sided range; У3-4 still wants both bounds
            null(value, tag)


def _services_section(body: Element, service: Service) -> None:
    node = section(body, "SERVICES", "Оказанные услуги")
    _table(el(node, "text"), ("Код услуги", "Наименование", "Дата и время"),
           [(service.code, service.name, f"{service.performed_at:%d.%m.%Y %H:%M}")])
    act = el(el(node, "entry"), "act", classCode="ACT", moodCode="EVN")
    coded(act, "code", codes.SERVICES, service.code, service.name)
    el(act, "effectiveTime", value=ts(service.performed_at))


def _linkdocs_section(body: Element, ctx: DocumentContext, service: Service) -> None:
    assert service.referral_id and service.referred_at  # noqa: S101 - checked by the caller
    node = section(body, "LINKDOCS", "Связанные документы")
    referrer = f", {_initials(service.referred_by)}" if service.referred_by else ""
    el(el(node, "text"), "paragraph", f"{REFERRAL_KIND.doc_type_name} № {service.referral_id} "
                                      f"от {service.referred_at:%d.%m.%Y}{referrer}")
    act = el(el(node, "entry"), "act", classCode="ACT", moodCode="EVN")
    coded(act, "code", codes.DOC_TYPES, str(REFERRAL_KIND.doc_type), REFERRAL_KIND.doc_type_name)
    el(act, "effectiveTime", value=ts(service.referred_at))
    document = el(el(act, "reference", typeCode="REFR"), "externalDocument", classCode="DOCCLIN", moodCode="EVN")
    header.referral_ids(document, ctx.mo, service.referral_id)
