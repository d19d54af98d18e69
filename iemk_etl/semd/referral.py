"""Kind 43 «Направление на госпитализацию, восстановительное лечение, обследование, консультацию» (Ред. 2).

The paper original is form 057/у-04. Pack 43 holds only the XSD, so no Schematron checks the rules. The body
below was put together from public evidence, and ФНСИ 1.2.643.5.1.13.13.99.2.197 v4.2 confirms its sections:
that table lists the kind-43 guide package (1.2.643.5.1.13.13.15.31.2) under exactly SCOPORG, DGN, ELU, WORK
and BENEFITS. The header is the same generation as 41/42 Ред. 3 and passes kind 42's header rules.

    structuredBody
      SCOPORG  purpose and target МО: act RQO, code = НСИ 1009 referral type, performer = the target МО,
               [COMP act RQO = the requested service, НСИ 1070]
      DGN      the referring doctor's diagnosis: act 1076 → COMP observation 1077 «Основное» → value МКБ-10
      ELU      why the patient is referred (text only)

WORK (place of work) and BENEFITS (льготы) are left out: the МИС has no data for them.
"""

from __future__ import annotations

from iemk_etl.semd import codes, header
from iemk_etl.semd.header import STYLE_LEGACY as STYLE
from iemk_etl.semd.header import Element, coded, day, el, null, section
from iemk_etl.semd.model import REFERRAL_HOSPITALISATION, Case, Organization, Referral

KIND = 43


def build(case: Case) -> bytes:
    referral = case.subject
    assert isinstance(referral, Referral)  # noqa: S101 - the dispatcher pairs kind 43 with referrals
    ctx = case.context
    doc = header.begin(KIND, ctx, STYLE)
    header.header(doc, ctx, STYLE)
    # No componentOf: a referral in the model does not name the visit that issued it, and the element is optional.
    body = header.structured_body(doc)
    _purpose_section(body, referral)
    _diagnosis_section(body, referral)
    _reason_section(body, referral)
    return header.to_bytes(doc)


def referral_type(referral: Referral) -> tuple[str, str]:
    """The НСИ 1009 code and name. For a hospitalisation, urgency picks «плановая» or «по экстренным показаниям»."""
    if referral.kind == REFERRAL_HOSPITALISATION:
        return codes.REFERRAL_HOSPITALISATION_TYPES[referral.urgent]
    return codes.REFERRAL_TYPE_CODES[referral.kind]


def _row(tbody: Element, label: str, value: str) -> None:
    tr = el(tbody, "tr")
    el(tr, "th", label)
    el(tr, "td", value)


def _purpose_section(body: Element, referral: Referral) -> None:
    node = section(body, "SCOPORG", "Цель направления и медицинская организация, куда направлен", "Направление")
    type_code, type_name = referral_type(referral)
    target = referral.target
    tbody = el(el(el(node, "text"), "table"), "tbody")
    _row(tbody, "Вид направления", type_name)
    where = f"{target.name}, {target.address.text}" if target.address else target.name
    _row(tbody, "Медицинская организация, куда направлен пациент", where)
    service = f"{referral.service_code} {referral.target_service}" if referral.service_code else referral.target_service
    _row(tbody, "Куда направлен (профиль, услуга)", service)
    _row(tbody, "Дата выдачи направления", f"{referral.issued_at:%d.%m.%Y}")

    act = el(el(node, "entry"), "act", classCode="ACT", moodCode="RQO")
    coded(act, "code", codes.REFERRAL_TYPES, type_code, type_name)
    el(act, "statusCode", code="active")
    el(act, "effectiveTime", value=day(referral.issued_at))
    entity = el(el(act, "performer"), "assignedEntity")
    null(entity, "id")      # who will see the patient there is not known when the referral is issued
    _target_organization(entity, target)
    if referral.service_code:
        service_act = el(el(act, "entryRelationship", typeCode="COMP"), "act", classCode="ACT", moodCode="RQO")
        coded(service_act, "code", codes.SERVICES, referral.service_code, referral.target_service)


def _target_organization(parent: Element, target: Organization) -> None:
    """The МО the patient is sent to. Only its id and name are certain; the МИС may not know its phone or address."""
    org = el(parent, "representedOrganization")
    el(org, "id", root=target.oid)
    el(org, "name", target.name)
    header.telecom(org, target.phone, STYLE)
    if target.address is not None:
        header.address(org, target.address, STYLE)


def _diagnosis_section(body: Element, referral: Referral) -> None:
    node = section(body, "DGN", "Диагнозы", "Диагноз")
    d = referral.diagnosis
    role_code, role_name = codes.NOSOLOGY["main"]
    table = el(el(node, "text"), "table")
    head = el(el(table, "thead"), "tr")
    for label in ("Вид", "Код по МКБ-10", "Диагноз"):
        el(head, "th", label)
    row = el(el(table, "tbody"), "tr")
    for value in (role_name, d.icd10, f"{d.name}. {d.note}" if d.note else d.name):
        el(row, "td", value)

    act = el(el(node, "entry"), "act", classCode="ACT", moodCode="EVN")
    coded(act, "code", codes.DIAGNOSIS_KINDS, *codes.REFERRAL_DIAGNOSIS_KIND)
    obs = el(el(act, "entryRelationship", typeCode="COMP"), "observation", classCode="OBS", moodCode="EVN")
    coded(obs, "code", codes.NOSOLOGY_ROLES, role_code, role_name)
    if d.note:
        el(obs, "text", d.note)
    el(obs, "effectiveTime", value=day(referral.issued_at))
    coded(obs, "value", codes.ICD10, d.icd10, d.name, xsi_type="CD")


def _reason_section(body: Element, referral: Referral) -> None:
    node = section(body, "ELU", "Описание и обоснование направления", "Обоснование направления")
    el(el(node, "text"), "paragraph", referral.reason)
