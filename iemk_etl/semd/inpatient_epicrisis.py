"""Kind 41 «Эпикриз в стационаре выписной» (Ред. 3): one document per department stay of a hospitalisation.

The seed forms an epicrisis for every department stay (``Case.stay_index``): at a transfer for the department the
patient leaves, at discharge for the last one. So the header's encounter is the department stay, not the whole
hospitalisation: 41.sch demands the encounter's end (У1-52), and a transfer document is formed before anyone knows
the discharge date. Both encounter ids are the hospitalisation's, which ties the department documents together.

Body: HOSP (the stay, its result and diagnoses, coded), STATEADM, STATEDIS, PROC (four result subsections), SUM,
SUR, REGIME (three recommendation subsections) and SERVICES. PROC, SUM and REGIME carry no text of their own
(У2-8, У2-14, У2-19); SUR and the subsections of PROC and REGIME are mandatory even when the МИС has nothing to
say, and then read «Нет данных» (a results subsection «Не проводились.» when the stay's services hold none of its
type).
"""

from __future__ import annotations

import datetime as dt

from iemk_etl.semd import FormingError, codes, header
from iemk_etl.semd.codes import CodeTable
from iemk_etl.semd.header import STYLE_LEGACY as STYLE
from iemk_etl.semd.header import Element, coded, el, section, ts
from iemk_etl.semd.model import (
    SERVICE_INSTRUMENTAL,
    SERVICE_LAB,
    SERVICE_VISIT,
    Case,
    DepartmentStay,
    Diagnosis,
    DocumentContext,
    Hospitalisation,
    Service,
    Staff,
)

KIND = 41
NO_DATA = "Нет данных"
NOT_DONE = "Не проводились."
CASE_ID = 15      # <МО OID>.100.<МИС>.<экземпляр>.15: the case (история болезни)
RECORD_ID = 17    # … .17: the medical record; 41.sch wants two encounter ids with different roots (У3-1)


def build(case: Case) -> bytes:
    hosp = case.subject
    assert isinstance(hosp, Hospitalisation)  # noqa: S101 - the dispatcher pairs kind 41 with hospitalisations
    ctx = case.context
    stay = _checked_stay(case, hosp)
    doc = header.begin(KIND, ctx, STYLE, title="Переводной эпикриз" if stay.transferred else "Выписной эпикриз")
    header.header(doc, ctx, STYLE)
    _component_of(doc, ctx, hosp, stay)
    body = header.structured_body(doc)
    _hospitalisation_section(body, ctx, hosp, case.stay_index)
    _state_sections(body, hosp, case.stay_index)
    _studies_section(body, stay)
    _treatment_section(body, stay)
    _text_section(body, "SUR", "Оперативное вмешательство", stay.surgery)
    _recommendations_section(body, stay)
    if stay.services:
        header.services_section(body, [(s.code, s.name, s.performed_at) for s in stay.services])
    return header.to_bytes(doc)


def _checked_stay(case: Case, hosp: Hospitalisation) -> DepartmentStay:
    """The stay the document is for, refusing the data 41.sch cannot do without."""
    if not 0 <= case.stay_index < len(hosp.stays):
        raise FormingError(f"в госпитализации {hosp.local_id} нет пребывания в отделении № {case.stay_index + 1}")
    stay = hosp.stays[case.stay_index]
    patient = case.context.patient
    if not patient.snils:
        raise FormingError("у пациента не указан СНИЛС: выписной эпикриз без него не принимается")
    if not patient.oms_policy:
        raise FormingError("у пациента не указан полис ОМС: выписной эпикриз без него не принимается")
    if stay.ended_at is None:
        raise FormingError(f"пребывание в отделении «{stay.department.name}» не завершено")
    if not stay.diagnoses:
        raise FormingError(f"в отделении «{stay.department.name}» не установлен диагноз")
    return stay


# --- small helpers ---------------------------------------------------------------------------------------------

def _coded(parent: Element, tag: str, table: CodeTable, code: str, display: str, *,
           xsi_type: str | None = None) -> Element:
    """``header.coded`` that leaves out the version of a table whose version we do not know."""
    node = coded(parent, tag, table, code, display, xsi_type=xsi_type)
    if not table.version:
        del node.attrib["codeSystemVersion"]
    return node


def _when(value: dt.datetime) -> str:
    return f"{value:%d.%m.%Y %H:%M}"


def _initials(staff: Staff) -> str:
    patronymic = f"{staff.patronymic[0]}." if staff.patronymic else ""
    return f"{staff.family} {staff.given[0]}.{patronymic}"


def _text_section(parent: Element, code: str, display: str, text: str | None) -> Element:
    node = section(parent, code, display)
    el(el(node, "text"), "paragraph", text or NO_DATA)
    return node


def _row(tbody: Element, label: str, value: str) -> None:
    tr = el(tbody, "tr")
    el(tr, "th", label)
    el(tr, "td", value)


def _main_first(diagnoses: tuple[Diagnosis, ...]) -> list[Diagnosis]:
    main = next((d for d in diagnoses if d.role == "main"), diagnoses[0])
    return [main, *(d for d in diagnoses if d is not main)]


def _role(d: Diagnosis, main: Diagnosis) -> tuple[str, str]:
    return codes.NOSOLOGY["main"] if d is main else codes.NOSOLOGY.get(d.role, codes.NOSOLOGY["concomitant"])


# --- what the stay ended with ---------------------------------------------------------------------------------

def _disposition(stay: DepartmentStay) -> tuple[str, str]:
    return codes.TRANSFERRED if stay.transferred else codes.DISCHARGED


def _result(hosp: Hospitalisation, stay: DepartmentStay) -> tuple[str, str]:
    """НСИ 1046, mandatory (У3-2): as the МИС recorded it for the stay; at discharge, else the hospitalisation's
    outcome when its text starts with a result's name. A result nobody recorded is refused, not invented."""
    code = stay.result
    if code is None and not stay.transferred and hosp.outcome:
        outcome = hosp.outcome.lower()
        code = next((c for c, name in codes.HOSPITAL_RESULT_NAMES.items() if outcome.startswith(name.lower())), None)
    if code is None:
        raise FormingError(f"Эпикриз стационара: не указан результат пребывания в отделении «{stay.department.name}» "
                           "(НСИ 1.2.643.5.1.13.13.11.1046)")
    return str(code), _name(codes.HOSPITAL_RESULT_NAMES, code, "результата госпитализации (НСИ 1046)")


def _name(names: dict[int, str], code: int, what: str) -> str:
    """A code's name from our table; a МИС code we cannot name is refused rather than sent unnamed."""
    if code not in names:
        raise FormingError(f"код {code} {what} неизвестен iemk-etl")
    return names[code]


# --- header: the department stay as the encounter ---------------------------------------------------------------

def _case_ids(parent: Element, ctx: DocumentContext, hosp: Hospitalisation) -> None:
    el(parent, "id", root=header.local_root(ctx.mo.oid, CASE_ID, ctx.mo.mis_number), extension=hosp.local_id)
    el(parent, "id", root=header.local_root(ctx.mo.oid, RECORD_ID, ctx.mo.mis_number), extension=hosp.local_id)


def _period(parent: Element, stay: DepartmentStay) -> None:
    period = el(parent, "effectiveTime")
    el(period, "low", value=ts(stay.started_at))
    el(period, "high", value=ts(stay.ended_at))


def _component_of(doc: Element, ctx: DocumentContext, hosp: Hospitalisation, stay: DepartmentStay) -> None:
    encounter = el(el(doc, "componentOf"), "encompassingEncounter")
    _case_ids(encounter, ctx, hosp)
    _period(encounter, stay)
    _coded(encounter, "dischargeDispositionCode", codes.DISCHARGE_DISPOSITIONS, *_disposition(stay))
    el(el(el(encounter, "location"), "healthCareFacility"), "id", root=stay.department.oid)


# --- HOSP: the stay, its result and its diagnoses -----------------------------------------------------------------

def _hospitalisation_section(body: Element, ctx: DocumentContext, hosp: Hospitalisation, index: int) -> None:
    stay = hosp.stays[index]
    node = section(body, "HOSP", "Пребывание в стационаре")
    urgency = codes.URGENCY_CODES[hosp.urgent]
    result = _result(hosp, stay)
    text = el(node, "text")
    tbody = el(el(text, "table"), "tbody")
    _row(tbody, "Номер истории болезни", hosp.local_id)
    _row(tbody, "Поступление в стационар", f"{_when(hosp.admitted_at)}, {urgency[1].lower()} госпитализация")
    _row(tbody, "Отделение", stay.department.name)
    _row(tbody, "Пребывание в отделении", f"{_when(stay.started_at)} — {_when(stay.ended_at)}")
    _row(tbody, "Лечащий врач", f"{_initials(stay.doctor)}, {stay.doctor.position_name}")
    _row(tbody, "Исход пребывания в отделении", _outcome_text(hosp, index))
    _row(tbody, "Результат", result[1])
    if stay.admission_diagnoses:
        _diagnosis_table(text, "Диагноз при поступлении в отделение", stay.admission_diagnoses)
    _diagnosis_table(text, "Заключительный клинический диагноз", stay.diagnoses)

    encounter = el(el(node, "entry"), "encounter", classCode="ENC", moodCode="EVN")
    _case_ids(encounter, ctx, hosp)
    _period(encounter, stay)
    order = el(el(encounter, "entryRelationship", typeCode="SUBJ", inversionInd="true"), "observation",
               classCode="OBS", moodCode="EVN")
    coded(order, "code", codes.URGENCY, *urgency)
    outcome = el(el(node, "entry"), "observation", classCode="OBS", moodCode="EVN")
    coded(outcome, "code", codes.HOSPITAL_RESULTS, *result)
    if stay.admission_diagnoses:
        _diagnosis_act(node, codes.ADMISSION_DIAGNOSIS, stay.admission_diagnoses)
    _diagnosis_act(node, codes.FINAL_DIAGNOSIS, stay.diagnoses)


def _outcome_text(hosp: Hospitalisation, index: int) -> str:
    stay = hosp.stays[index]
    if not stay.transferred:
        return f"{codes.DISCHARGED[1]} {_when(stay.ended_at)}"
    following = hosp.stays[index + 1].department.name if index + 1 < len(hosp.stays) else None
    return f"Перевод в другое отделение: {following}" if following else codes.TRANSFERRED[1]


def _diagnosis_table(text: Element, title: str, diagnoses: tuple[Diagnosis, ...]) -> None:
    el(text, "paragraph", f"{title}:")
    table = el(text, "table")
    head = el(el(table, "thead"), "tr")
    for label in ("Вид", "Код МКБ-10", "Диагноз"):
        el(head, "th", label)
    tbody = el(table, "tbody")
    ordered = _main_first(diagnoses)
    for d in ordered:
        tr = el(tbody, "tr")
        for value in (_role(d, ordered[0])[1], d.icd10, d.note or d.name):
            el(tr, "td", value)


def _diagnosis_act(node: Element, kind: tuple[str, str], diagnoses: tuple[Diagnosis, ...]) -> None:
    """One act per diagnosis kind; its first observation is the main disease, which every act needs (У3-3)."""
    act = el(el(node, "entry"), "act", classCode="ACT", moodCode="EVN")
    coded(act, "code", codes.DIAGNOSIS_KINDS, *kind)
    ordered = _main_first(diagnoses)
    for d in ordered:
        obs = el(el(act, "entryRelationship", typeCode="COMP"), "observation", classCode="OBS", moodCode="EVN")
        coded(obs, "code", codes.NOSOLOGY_ROLES, *_role(d, ordered[0]))
        if d.note:
            el(obs, "text", d.note)
        coded(obs, "value", codes.ICD10, d.icd10, d.name, xsi_type="CD")


# --- the patient's state at admission to and at leaving the department --------------------------------------------

def _state_sections(body: Element, hosp: Hospitalisation, index: int) -> None:
    stay = hosp.stays[index]
    arrival: list[str] = []
    if index == 0:
        arrival += [f"Жалобы: {hosp.complaints}"] if hosp.complaints else []
        arrival += [f"Анамнез заболевания: {hosp.anamnesis}"] if hosp.anamnesis else []
    else:
        arrival.append(f"Поступление переводом из другого отделения ({hosp.stays[index - 1].department.name}) "
                       f"{_when(stay.started_at)}.")
    _state_section(body, "STATEADM", "Состояние при поступлении", stay.admission_state, arrival)
    leaving = [stay.condition] if stay.condition else []
    _state_section(body, "STATEDIS", "Состояние при выписке", stay.discharge_state, leaving)


def _state_section(body: Element, code: str, display: str, severity: int | None, facts: list[str]) -> None:
    severity_name = None if severity is None else _name(codes.SEVERITY_NAMES, severity, "тяжести состояния (НСИ 1006)")
    if severity_name:
        facts = [f"Состояние: {severity_name.lower()}.", *facts]
    node = _text_section(body, code, display, " ".join(facts))
    if severity_name:
        obs = el(el(node, "entry"), "observation", classCode="OBS", moodCode="EVN")
        coded(obs, "code", codes.CODED_FIELDS, "804", "Состояние пациента")
        coded(obs, "value", codes.SEVERITY, str(severity), severity_name, xsi_type="CD")


# --- PROC: what was found; SUM: how the patient was treated -----------------------------------------------------

def _service_line(s: Service) -> str:
    if s.type == SERVICE_LAB and s.lab_results:
        found = "; ".join(f"{r.test_name} {r.value}{f' {r.unit}' if r.unit else ''}" for r in s.lab_results)
    else:
        found = s.conclusion or s.findings or "выполнено"
    return f"{s.name}, {_when(s.performed_at)}: {found}"


def _studies_section(body: Element, stay: DepartmentStay) -> None:
    node = section(body, "PROC", "Исследования и процедуры")
    for code, display, type_ in (("RESINSTR", "Результаты инструментального исследования", SERVICE_INSTRUMENTAL),
                                 ("RESLAB", "Результаты лабораторного исследования", SERVICE_LAB),
                                 ("RESMOR", "Результаты морфологических исследований", None),
                                 ("RESCONS", "Результаты консультации/осмотра врача", SERVICE_VISIT)):
        lines = [_service_line(s) for s in stay.services if s.type == type_]
        sub = section(node, code, display)
        text = el(sub, "text")
        # The stay's services are the МИС's record: none of this type means none was done; no services at all
        # means the МИС recorded none for the stay, and only then is it «Нет данных».
        for line in lines or [NOT_DONE if stay.services else NO_DATA]:
            el(text, "paragraph", line)


def _treatment_section(body: Element, stay: DepartmentStay) -> None:
    node = section(body, "SUM", "Информация о лечении")
    if stay.treatment:
        _text_section(node, "DRUG", "Медикаментозное лечение", stay.treatment)


def _recommendations_section(body: Element, stay: DepartmentStay) -> None:
    node = section(body, "REGIME", "Режим и рекомендации", "Рекомендации")
    _text_section(node, "RECDIET", "Режим и диета", stay.diet)
    _text_section(node, "RECTREAT", "Рекомендованное лечение", stay.recommendations)
    _text_section(node, "RECWORK", "Трудовые рекомендации", stay.work)
