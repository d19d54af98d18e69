"""Kind-42 documents for the transport, signing and emulator tests.

``document()`` is formed by the product's own builder (``iemk_etl.semd``) and passes the official XSD and
Schematron; ``minimal_document()`` is a small hand-made CDA that passes format control only and is far from the
kinds' logical rules (for the logical-control tests). Both let a test vary the СНИЛС and the document id, and drop
header elements to make documents that must fail.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from datetime import date, datetime

from lxml import etree

from iemk_etl import kinds, semd
from iemk_etl.protocol.xml import sub
from iemk_etl.semd import model
from iemk_etl.semd.header import NS, SNILS_ROOT, XSI, document_root, local_root, unique_id
from iemk_etl.settings import DEFAULT_MIS_NUMBER as MIS_NUMBER

__all__ = ["MO", "build", "document", "header", "minimal_document", "unique_id"]


@dataclass(frozen=True)
class Person:
    local_id: str
    family: str
    given: str
    patronymic: str | None
    snils: str | None


@dataclass(frozen=True)
class Patient(Person):
    birth_date: date
    sex: int  # НСИ 1.2.643.5.1.13.13.11.1040: 1 мужской, 2 женский


@dataclass(frozen=True)
class Author(Person):
    position_code: str
    position_name: str


@dataclass(frozen=True)
class Organization:
    oid: str
    name: str


@dataclass(frozen=True)
class DocumentHeader:
    kind_code: int
    local_uid: str
    version: int
    created_at: datetime
    mo: Organization
    patient: Patient
    author: Author




def _ts(value: datetime) -> str:
    return value.strftime("%Y%m%d%H%M%S%z")


def _el(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    return sub(parent, (NS, tag), **attrs)


def _text(parent: etree._Element, tag: str, text: str) -> etree._Element:
    return sub(parent, (NS, tag), text)


def _name(parent: etree._Element, person: Person) -> None:
    name = _el(parent, "name")
    _text(name, "family", person.family)
    _text(name, "given", person.given)
    if person.patronymic:
        _text(name, "given", person.patronymic)


def build(header: DocumentHeader, *, sections: list[tuple[str, str]], omit: tuple[str, ...] = ()) -> bytes:
    """The document bytes. ``omit`` drops header elements by tag (used to form documents that must fail)."""
    kind = kinds.get(header.kind_code)
    mo = header.mo
    doc = etree.Element(f"{{{NS}}}ClinicalDocument", nsmap={None: NS, "xsi": XSI})
    _el(doc, "realmCode", code="RU")
    _el(doc, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_MT000040")
    _el(doc, "templateId", root=kind.template_id)
    _el(doc, "id", root=document_root(mo.oid), extension=header.local_uid)
    _el(doc, "code", code=str(kind.doc_type), codeSystem=kinds.NSI_1522, codeSystemVersion="1.12",
        codeSystemName="Виды медицинской документации", displayName=kind.doc_type_name)
    _text(doc, "title", kind.doc_type_name)
    _el(doc, "effectiveTime", value=_ts(header.created_at))
    _el(doc, "confidentialityCode", code="N", codeSystem="1.2.643.5.1.13.13.99.2.285", codeSystemVersion="1.2",
        codeSystemName="Уровень конфиденциальности медицинского документа", displayName="Обычный")
    _el(doc, "languageCode", code="ru-RU")
    _el(doc, "setId", root=local_root(mo.oid, 50), extension=header.local_uid)
    _el(doc, "versionNumber", value=str(header.version))

    patient = header.patient
    role = _el(_el(doc, "recordTarget"), "patientRole")
    _el(role, "id", root=f"{mo.oid}.{MIS_NUMBER}.10", extension=patient.local_id)
    if patient.snils:
        _el(role, "id", root=SNILS_ROOT, extension=patient.snils)
    person = _el(role, "patient")
    _name(person, patient)
    _el(person, "administrativeGenderCode", code=str(patient.sex), codeSystem="1.2.643.5.1.13.13.11.1040",
        codeSystemVersion="2.1", codeSystemName="Пол пациента", displayName={1: "Мужской", 2: "Женский"}.get(
            patient.sex, "Неопределенный"))
    _el(person, "birthTime", value=patient.birth_date.strftime("%Y%m%d"))
    role.append(_organization(mo))

    _assigned_author(doc, header)
    custodian = _el(_el(_el(doc, "custodian"), "assignedCustodian"), "representedCustodianOrganization")
    _el(custodian, "id", root=mo.oid)
    _text(custodian, "name", mo.name)
    legal = _el(doc, "legalAuthenticator")
    _el(legal, "time", value=_ts(header.created_at))
    _el(legal, "signatureCode", code="S")
    _person_entity(_el(legal, "assignedEntity"), header.author, mo)

    body = _el(_el(doc, "component"), "structuredBody")
    for title, text in sections:
        section = _el(_el(body, "component"), "section")
        _text(section, "title", title)
        _text(section, "text", text)

    for tag in omit:
        for el in doc.findall(f"{{{NS}}}{tag}"):
            doc.remove(el)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _organization(mo: Organization) -> etree._Element:
    org = etree.Element(f"{{{NS}}}providerOrganization")
    _el(org, "id", root=mo.oid)
    _text(org, "name", mo.name)
    return org


def _person_entity(entity: etree._Element, author: Author, mo: Organization) -> None:
    _el(entity, "id", root=f"{mo.oid}.{MIS_NUMBER}.70", extension=author.local_id)
    if author.snils:
        _el(entity, "id", root=SNILS_ROOT, extension=author.snils)
    _el(entity, "code", code=author.position_code, codeSystem="1.2.643.5.1.13.13.11.1002",
        codeSystemVersion="8.1", codeSystemName="Должности работников организаций медицинского и "
        "фармацевтического профиля", displayName=author.position_name)
    _name(_el(entity, "assignedPerson"), author)
    org = _el(entity, "representedOrganization")
    _el(org, "id", root=mo.oid)
    _text(org, "name", mo.name)


def _assigned_author(doc: etree._Element, header: DocumentHeader) -> None:
    author = _el(doc, "author")
    _el(author, "time", value=_ts(header.created_at))
    assigned = _el(author, "assignedAuthor")
    _person_entity(assigned, header.author, header.mo)


MO = model.Organization("1.2.643.5.1.13.13.12.2.77.7801", "ГБУЗ «ГКБ № 1»",
                        model.Address("г. Москва, Ленинский проспект, д. 8", "77", "119049"), "+74952369000",
                        "1027739000002")
AUTHOR = model.Staff("S-1", "Петрова", "Анна", "Сергеевна", "11223344595", "109", "врач-терапевт", "+74952369001")


def header(*, snils: str = "11223344595", local_uid: str = "D-1") -> DocumentHeader:
    patient = Patient("P-1", "Иванов", "Иван", "Иванович", snils, dt.date(1980, 1, 2), 1)
    author = Author("S-1", "Петрова", "Анна", "Сергеевна", "11223344595", "109", "врач-терапевт")
    return DocumentHeader(42, local_uid, 1, dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC), MO, patient, author)


def minimal_document(*, omit: tuple[str, ...] = (), **kw: str) -> bytes:
    return build(header(**kw), sections=[("Заключение", "Здоров")], omit=omit)


def document(*, snils: str = "11223344595", local_uid: str = "D-1", omit: tuple[str, ...] = ()) -> bytes:
    """An outpatient epicrisis of patient P-1 by author S-1, formed by the product's builder."""
    patient = model.Patient("P-1", "Иванов", "Иван", "Иванович", dt.date(1980, 1, 2), 1, snils,
                            model.Address("г. Москва, ул. Вавилова, д. 5, кв. 10", "77", "119334"), "+79161234567")
    start = dt.datetime(2026, 11, 1, 10, tzinfo=dt.timezone(dt.timedelta(hours=3)))
    visit = model.Visit("V-1", start, start + dt.timedelta(minutes=20), AUTHOR,
                        (model.Diagnosis("I10", "Эссенциальная [первичная] гипертензия"),), conclusion="Здоров")
    context = model.DocumentContext(local_uid, 1, start + dt.timedelta(minutes=20), MO, patient, AUTHOR)
    data = semd.build(model.Case(42, context, visit))
    if not omit:
        return data
    root = etree.fromstring(data)
    for tag in omit:
        for el in root.findall(f"{{{NS}}}{tag}"):
            root.remove(el)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
