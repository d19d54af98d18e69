"""The CDA header all six СЭМД kinds share, and the small XML vocabulary their bodies are written with.

Two generations of the Ministry's implementation guides are in use:

- ``LEGACY`` (kinds 41, 42, 43 — editions 2–3): plain HL7 CDA R2, no Russian extensions; a person's
  patronymic is a second ``given``; addresses are ``streetAddressLine`` + ``state``; the ОМС policy is the
  patient's third id and a policy-holder participant.
- ``EXTENDED`` (kinds 119, 174, 186 — editions 4–5): the ``urn:hl7-ru:*`` extensions: identity documents and
  the policy under ``identity:``, ``identity:Patronymic``, coded ``address:stateCode`` with ФИАС, the payment
  source as a guarantor participant, ``medService:`` codes in ``documentationOf``.

Identifiers follow the ЕГИСЗ OID rules: ``<МО OID>.100.<МИС>.<экземпляр МИС>.<NN>`` with NN = 51 document,
50 document set, 10 patient, 70 staff, 15/16/17 cases (see ``local_root``).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from lxml import etree

from iemk_etl import kinds
from iemk_etl.protocol.xml import sub
from iemk_etl.semd import codes
from iemk_etl.semd.codes import CodeTable
from iemk_etl.semd.model import Address, DocumentContext, Organization, Patient, Person, Staff
from iemk_etl.settings import DEFAULT_MIS_NUMBER

NS = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
RU_NS = {
    "identity": "urn:hl7-ru:identity",
    "address": "urn:hl7-ru:address",
    "medService": "urn:hl7-ru:medService",
    "fias": "urn:hl7-ru:fias",
}
SNILS_ROOT = "1.2.643.100.3"
MINZDRAV_OID = "1.2.643.5.1.13"

LEGACY = "legacy"
EXTENDED = "extended"

Element = etree._Element
_XSI_TYPE = f"{{{XSI}}}type"


@dataclass(frozen=True)
class Style:
    """How a kind's guide spells the header."""

    name: str                       # LEGACY | EXTENDED
    type_id: str                    # typeId/@extension the kind's rules demand
    # 119's rules demand xsi:type on every urn:hl7-ru element; the XSD modules of 174 and 186 forbid it.
    typed_extensions: bool = False

    @property
    def extended(self) -> bool:
        return self.name == EXTENDED

    def xsi(self, type_: str) -> str | None:
        """xsi:type for an urn:hl7-ru element, where this kind's rules want one."""
        return type_ if self.typed_extensions else None


STYLE_LEGACY = Style(LEGACY, "POCD_HD000040")
STYLE_EXTENDED = Style(EXTENDED, "POCD_MT000040")
STYLE_EXTENDED_TYPED = Style(EXTENDED, "POCD_MT000040", typed_extensions=True)


# --- identifiers ------------------------------------------------------------------------------------

def local_root(mo_oid: str, suffix: int, mis_number: str = DEFAULT_MIS_NUMBER) -> str:
    """``<МО OID>.100.<МИС>.<экземпляр>.<suffix>``; ``mis_number`` is the installation's (IEMK_MIS_NUMBER)."""
    return f"{mo_oid}.{mis_number}.{suffix}"


def document_root(mo_oid: str, mis_number: str = DEFAULT_MIS_NUMBER) -> str:
    return local_root(mo_oid, 51, mis_number)


def version_uid(local_uid: str, version: int) -> str:
    """ClinicalDocument/id/@extension of a version: every version is a document of its own (its own id, hence its
    own XDS uniqueId); the set's id (setId) stays the first version's, ``local_uid``."""
    return local_uid if version == 1 else f"{local_uid}.{version}"


def unique_id(mo_oid: str, local_uid: str, mis_number: str = DEFAULT_MIS_NUMBER) -> str:
    """The XDS DocumentEntry.uniqueId: the CDA ClinicalDocument/id as root^extension."""
    return f"{document_root(mo_oid, mis_number)}^{local_uid}"


def mo_of(unique_id: str, mis_number: str = DEFAULT_MIS_NUMBER) -> str:
    """The МО OID inside a document uniqueId of ours (``<МО OID>.<mis_number>.51^<local id>``); the root itself
    when it is not one of ours."""
    root = unique_id.split("^", 1)[0]
    tail = f".{mis_number}.51"
    return root[:-len(tail)] if root.endswith(tail) else root


# --- the XML vocabulary -----------------------------------------------------------------------------

@functools.cache     # a few hundred CDA names, asked for tens of thousands of times a period
def qname(tag: str) -> str:
    prefix, _, local = tag.rpartition(":")
    return f"{{{RU_NS[prefix] if prefix else NS}}}{local}"


def el(parent: Element, tag: str, text: str | None = None, **attrs: str | None) -> Element:
    """The shared element helper (``iemk_etl.protocol.xml.sub``) in the CDA vocabulary the builders write in.

    ``tag`` is a CDA name, ``prefix:name`` for the urn:hl7-ru extensions (see ``qname``); ``xsi_type`` sets
    xsi:type; as with ``sub``, None attributes are left out and ``class_`` loses its underscore.
    """
    return sub(parent, qname(tag), text, **{(_XSI_TYPE if key == "xsi_type" else key): v for key, v in attrs.items()})


def null(parent: Element, tag: str, flavor: str = "NI", **attrs: str | None) -> Element:
    return el(parent, tag, nullFlavor=flavor, **attrs)


def coded(parent: Element, tag: str, table: CodeTable, code: str, display: str, *,
          xsi_type: str | None = None) -> Element:
    return el(parent, tag, xsi_type=xsi_type, code=code, codeSystem=table.oid, codeSystemVersion=table.version,
              codeSystemName=table.name, displayName=display)


def ts(value: dt.datetime) -> str:
    """A point in time to the minute, with its UTC offset, as the guides ask."""
    return value.strftime("%Y%m%d%H%M%z")


def day(value: dt.date) -> str:
    return value.strftime("%Y%m%d")


def to_bytes(root: Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# --- the header ---------------------------------------------------------------------------------------

def begin(kind_code: int, ctx: DocumentContext, style: Style, *, title: str | None = None) -> Element:
    """ClinicalDocument with everything up to versionNumber."""
    kind = kinds.get(kind_code)
    nsmap: dict[str | None, str] = {None: NS, "xsi": XSI}
    if style.extended:
        nsmap.update(RU_NS)
    doc = etree.Element(qname("ClinicalDocument"), nsmap=nsmap)  # type: ignore[arg-type]
    el(doc, "realmCode", code="RU")
    el(doc, "typeId", root="2.16.840.1.113883.1.3", extension=style.type_id)
    el(doc, "templateId", root=kind.template_id)
    el(doc, "id", root=document_root(ctx.mo.oid, ctx.mo.mis_number), extension=version_uid(ctx.local_uid, ctx.version))
    coded(doc, "code", codes.DOC_TYPES, str(kind.doc_type), kind.doc_type_name)
    el(doc, "title", title or kind.doc_type_name)
    el(doc, "effectiveTime", value=ts(ctx.created_at))
    coded(doc, "confidentialityCode", codes.CONFIDENTIALITY, "N", "Обычный")
    el(doc, "languageCode", code="ru-RU")
    el(doc, "setId", root=local_root(ctx.mo.oid, 50, ctx.mo.mis_number), extension=ctx.local_uid)
    el(doc, "versionNumber", value=str(ctx.version))
    return doc


def header(doc: Element, ctx: DocumentContext, style: Style) -> None:
    """recordTarget, author, custodian, informationRecipient, legalAuthenticator and the payer participant.

    documentationOf, inFulfillmentOf and componentOf differ by kind and are the kind builder's.
    """
    record_target(doc, ctx, style)
    author(doc, ctx, style)
    custodian(doc, ctx.mo, style)
    information_recipient(doc)
    legal_authenticator(doc, ctx, style)
    payer(doc, ctx.patient, style)


def record_target(doc: Element, ctx: DocumentContext, style: Style) -> None:
    patient = ctx.patient
    role = el(el(doc, "recordTarget"), "patientRole")
    el(role, "id", root=local_root(ctx.mo.oid, 10, ctx.mo.mis_number), extension=patient.local_id)
    if patient.snils:
        el(role, "id", root=SNILS_ROOT, extension=patient.snils)
    else:
        null(role, "id")
    if style.extended:
        _identity_documents(role, patient, style)
    elif patient.oms_policy:
        el(role, "id", root=codes.SMO_OID, extension=patient.oms_policy,
           assigningAuthorityName=patient.oms_insurer or "Страховая медицинская организация")
    else:
        null(role, "id")
    address(role, patient.address, style, patient=True)
    telecom(role, patient.phone, style, use="MC", required=not style.extended)
    person = el(role, "patient")
    name(person, patient, style)
    coded(person, "administrativeGenderCode", codes.SEX, str(patient.sex), codes.SEX_NAMES.get(patient.sex, ""))
    el(person, "birthTime", value=day(patient.birth_date))
    organization(role, "providerOrganization", ctx.mo, style)


def _identity_documents(role: Element, patient: Patient, style: Style) -> None:
    doc = patient.identity
    if doc is None:
        null(role, "identity:IdentityDoc")
    else:
        node = el(role, "identity:IdentityDoc")
        coded(node, "identity:IdentityCardType", codes.IDENTITY_DOCS, str(doc.type_code),
              codes.IDENTITY_DOC_NAMES.get(doc.type_code, "Иной документ"), xsi_type=style.xsi("CD"))
        el(node, "identity:Series", doc.series, xsi_type=style.xsi("ST"))
        el(node, "identity:Number", doc.number, xsi_type=style.xsi("ST"))
        if doc.issued_by:
            el(node, "identity:IssueOrgName", doc.issued_by, xsi_type=style.xsi("ST"))
        else:
            null(node, "identity:IssueOrgName", xsi_type=style.xsi("ST"))
        null(node, "identity:IssueOrgCode", xsi_type=style.xsi("ST"))
        if doc.issued_on:
            el(node, "identity:IssueDate", value=day(doc.issued_on), xsi_type=style.xsi("TS"))
        else:
            null(node, "identity:IssueDate", xsi_type=style.xsi("TS"))
    if patient.oms_policy is None:
        null(role, "identity:InsurancePolicy")
    else:
        policy = el(role, "identity:InsurancePolicy")
        coded(policy, "identity:InsurancePolicyType", codes.POLICY_TYPES, "3",
              "Полис ОМС единого образца, со сроком действия",
              xsi_type=style.xsi("CD"))
        el(policy, "identity:Number", patient.oms_policy, xsi_type=style.xsi("ST"))


def name(parent: Element, person: Person, style: Style, *, tag: str = "name") -> None:
    node = el(parent, tag)
    el(node, "family", person.family)
    el(node, "given", person.given)
    if style.extended:
        if person.patronymic:
            el(node, "identity:Patronymic", person.patronymic, xsi_type=style.xsi("ST"))
    elif person.patronymic:
        el(node, "given", person.patronymic)
    else:
        null(node, "given")     # the legacy rules count exactly two given names


def address(parent: Element, value: Address | None, style: Style, *, patient: bool = False) -> None:
    if not style.extended:
        node = el(parent, "addr", use="H" if patient else None)
        if value is None:     # the legacy rules want both parts in every addr; unknown, not guessed
            null(node, "streetAddressLine")
            null(node, "state")
            return
        el(node, "streetAddressLine", value.text)
        el(node, "state", value.region_code)
        return
    if value is None:
        node = null(parent, "addr")
        if patient and style.typed_extensions:     # 119 still wants the address type of an unknown address
            coded(node, "address:Type", codes.ADDRESS_TYPES, "3", "Адрес фактического проживания (пребывания)",
                  xsi_type=style.xsi("CD"))
        return
    node = el(parent, "addr")
    if patient:
        coded(node, "address:Type", codes.ADDRESS_TYPES, "3", "Адрес фактического проживания (пребывания)",
                  xsi_type=style.xsi("CD"))
    el(node, "streetAddressLine", value.text)
    coded(node, "address:stateCode", codes.REGIONS, value.region_code,
          codes.REGION_NAMES.get(value.region_code, value.region_code), xsi_type=style.xsi("CD"))
    if value.postal_code:
        el(node, "postalCode", value.postal_code)
    else:
        null(node, "postalCode")
    if value.fias_aoguid:
        fias = el(node, "fias:Address")
        el(fias, "fias:AOGUID", value.fias_aoguid)
        if value.fias_houseguid:
            el(fias, "fias:HOUSEGUID", value.fias_houseguid)
        else:
            null(fias, "fias:HOUSEGUID")
    else:
        null(node, "fias:Address")


def telecom(parent: Element, phone: str | None, style: Style, *, use: str = "WP", required: bool = False) -> None:
    if phone:
        el(parent, "telecom", value=f"tel:{phone}", use=use)
    elif required:
        null(parent, "telecom")


def organization(parent: Element, tag: str, mo: Organization, style: Style) -> Element:
    node = el(parent, tag, classCode="ORG" if style.extended and tag != "providerOrganization" else None)
    el(node, "id", root=mo.oid)
    if style.extended and tag == "providerOrganization":
        if mo.ogrn:
            el(el(node, "identity:Props"), "identity:Ogrn", mo.ogrn, xsi_type=style.xsi("ST"))
        else:
            null(node, "identity:Props")
    el(node, "name", mo.name)
    telecom(node, mo.phone, style, required=not style.extended)
    address(node, mo.address, style)
    return node


def assigned_entity(parent: Element, staff: Staff, mo: Organization, style: Style, *,
                    tag: str = "assignedEntity", with_org: bool = True) -> Element:
    node = el(parent, tag)
    el(node, "id", root=local_root(mo.oid, 70, mo.mis_number), extension=staff.local_id)
    el(node, "id", root=SNILS_ROOT, extension=staff.snils)
    coded(node, "code", codes.POSITIONS, staff.position_code, staff.position_name)
    telecom(node, staff.phone, style)
    name(el(node, "assignedPerson"), staff, style)
    if with_org:
        organization(node, "representedOrganization", mo, style)
    return node


def author(doc: Element, ctx: DocumentContext, style: Style) -> None:
    node = el(doc, "author")
    if style.extended:      # the extended guides' XSD takes the moment from the signature, not the header
        null(node, "time")
    else:
        el(node, "time", value=ts(ctx.created_at))
    assigned_entity(node, ctx.author, ctx.mo, style, tag="assignedAuthor")


def custodian(doc: Element, mo: Organization, style: Style) -> None:
    organization(el(el(doc, "custodian"), "assignedCustodian"), "representedCustodianOrganization", mo, style)


def information_recipient(doc: Element) -> None:
    org = el(el(el(doc, "informationRecipient"), "intendedRecipient"), "receivedOrganization")
    el(org, "id", root=MINZDRAV_OID)
    el(org, "name", "Министерство здравоохранения Российской Федерации")


def legal_authenticator(doc: Element, ctx: DocumentContext, style: Style) -> None:
    node = el(doc, "legalAuthenticator")
    if style.extended:
        null(node, "time")
        null(node, "signatureCode")
    else:
        el(node, "time", value=ts(ctx.created_at))
        el(node, "signatureCode", code="S")
    assigned_entity(node, ctx.signer, ctx.mo, style)


def payer(doc: Element, patient: Patient, style: Style) -> None:
    """Who pays: the ОМС policy holder (legacy) or the payment source with its basis document (extended)."""
    if not style.extended:
        if patient.oms_policy:
            entity = el(el(doc, "participant", typeCode="HLD"), "associatedEntity", classCode="POLHOLD")
            el(entity, "id", root=codes.SMO_OID, extension=patient.oms_policy)
            el(entity, "code", code="SELF", codeSystem="2.16.840.1.113883.5.111")
            scoping = el(entity, "scopingOrganization")
            el(scoping, "id", root=codes.SMO_OID)
            el(scoping, "name", patient.oms_insurer or "Страховая медицинская организация")
        return
    entity = el(el(doc, "participant", typeCode="IND"), "associatedEntity", classCode="GUAR")
    coded(entity, "code", codes.PAYMENT_SOURCES, "1", "Средства обязательного медицинского страхования")
    info = el(entity, "identity:DocInfo")
    coded(info, "identity:IdentityDocType", codes.BASIS_DOCS, "1", "Полис ОМС", xsi_type=style.xsi("CD"))
    if patient.oms_policy:
        coded(info, "identity:InsurancePolicyType", codes.POLICY_TYPES, "3",
              "Полис ОМС единого образца, со сроком действия",
              xsi_type=style.xsi("CD"))
        null(info, "identity:Series", "NA")
        el(info, "identity:Number", patient.oms_policy, xsi_type=style.xsi("ST"))
    else:
        for tag in ("identity:InsurancePolicyType", "identity:Series", "identity:Number"):
            null(info, tag, "NAV")
    null(info, "identity:INN", "NA")
    null(info, "identity:effectiveTime", "NAV")
    scoping = el(entity, "scopingOrganization")
    null(scoping, "id", "NA")
    el(scoping, "name", patient.oms_insurer or "Страховая медицинская организация")
    null(scoping, "telecom")
    null(scoping, "addr")


# --- the referral a document answers (119, 174, 186) -------------------------------------------------------

REFERRAL_KIND = kinds.get(43)   # НСИ 1522 «Направление на госпитализацию, …, обследование, консультацию»


def referrer(doc: Element, ctx: DocumentContext, doctor: Staff, style: Style) -> Element:
    """participant REF: the doctor who referred the patient. The guides differ on its scoping organisation (119: the
    department; 174/186: the МО, without the classCode ``organization`` writes), so the caller adds that."""
    entity = el(el(doc, "participant", typeCode="REF"), "associatedEntity", classCode="PROV")
    el(entity, "id", root=local_root(ctx.mo.oid, 70, ctx.mo.mis_number), extension=doctor.local_id)
    el(entity, "id", root=SNILS_ROOT, extension=doctor.snils)
    coded(entity, "code", codes.POSITIONS, doctor.position_code, doctor.position_name)
    telecom(entity, doctor.phone, style)
    name(el(entity, "associatedPerson"), doctor, style)
    return entity


def referral_ids(parent: Element, mo: Organization, referral_id: str) -> None:
    el(parent, "id", root=document_root(mo.oid, mo.mis_number), extension=referral_id)
    null(parent, "id")      # the referral's РЭМД registration number, which the МИС does not keep


def referral_order(doc: Element, mo: Organization, referral_id: str) -> None:
    """inFulfillmentOf/order: the referral this document fulfils."""
    order = el(el(doc, "inFulfillmentOf"), "order")
    referral_ids(order, mo, referral_id)
    coded(order, "code", codes.DOC_TYPES, str(REFERRAL_KIND.doc_type), REFERRAL_KIND.doc_type_name)


# --- the body's frame ---------------------------------------------------------------------------------

def structured_body(doc: Element) -> Element:
    return el(el(doc, "component"), "structuredBody")


def section(body: Element, code: str, display: str, title: str | None = None) -> Element:
    node = el(el(body, "component"), "section")
    coded(node, "code", codes.SECTIONS, code, display)
    el(node, "title", title or display)
    return node


def services_section(body: Element, rendered: list[tuple[str, str, dt.datetime]]) -> Element:
    """SERVICES «Оказанные услуги» of the legacy guides: (НСИ 1070 code, name, when) as a table and one act each."""
    node = section(body, "SERVICES", "Оказанные услуги")
    table = el(el(node, "text"), "table")
    head = el(el(table, "thead"), "tr")
    for label in ("Код", "Услуга", "Дата"):
        el(head, "th", label)
    tbody = el(table, "tbody")
    for code, service, when in rendered:
        tr = el(tbody, "tr")
        for value in (code, service, f"{when:%d.%m.%Y %H:%M}"):
            el(tr, "td", value)
    for code, service, when in rendered:
        act = el(el(node, "entry"), "act", classCode="ACT", moodCode="EVN")
        coded(act, "code", codes.SERVICES, code, service)
        el(act, "effectiveTime", value=ts(when))
    return node
