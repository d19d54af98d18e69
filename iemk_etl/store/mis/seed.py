"""Writing clinical records into the reference МИС schema: the demo data's (and the tests') way in.

Production never writes these tables (the МИС does); the dev tools decide what to write, this module how.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg

from iemk_etl.semd.model import (
    Department,
    DepartmentStay,
    Diagnosis,
    Hospitalisation,
    LabResult,
    Organization,
    Patient,
    Referral,
    Service,
    SignedReport,
    Specimen,
    Staff,
    Visit,
)


def _id(row: tuple | None) -> int:
    assert row is not None  # noqa: S101 - INSERT … RETURNING without ON CONFLICT DO NOTHING returns the row
    return int(row[0])


def upsert_mo(conn: psycopg.Connection, mo: Organization, code: str, region: int) -> None:
    """The МО; contacts an operator filled in already are kept."""
    address = mo.address
    conn.execute("INSERT INTO mis.mo (oid, code, name, region, address, postal_code, phone, ogrn)"
                 " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (oid) DO UPDATE SET"
                 " address = coalesce(mis.mo.address, EXCLUDED.address),"
                 " postal_code = coalesce(mis.mo.postal_code, EXCLUDED.postal_code),"
                 " phone = coalesce(mis.mo.phone, EXCLUDED.phone), ogrn = coalesce(mis.mo.ogrn, EXCLUDED.ogrn)",
                 (mo.oid, code, mo.name, region, address and address.text, address and address.postal_code,
                  mo.phone, mo.ogrn))


def upsert_department(conn: psycopg.Connection, mo_oid: str, dep: Department) -> int:
    return _id(conn.execute(
        "INSERT INTO mis.department (mo_oid, oid, name) VALUES (%s, %s, %s)"
        " ON CONFLICT (oid) DO UPDATE SET name = EXCLUDED.name RETURNING id",
        (mo_oid, dep.oid, dep.name)).fetchone())


def upsert_staff(conn: psycopg.Connection, mo_oid: str, department_id: int, person: Staff) -> int:
    return _id(conn.execute(
        "INSERT INTO mis.staff (mo_oid, department_id, local_id, snils, family, given, patronymic,"
        " position_code, position_name, phone) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (mo_oid, local_id) DO UPDATE SET local_id = EXCLUDED.local_id RETURNING id",
        (mo_oid, department_id, person.local_id, person.snils, person.family, person.given, person.patronymic,
         person.position_code, person.position_name, person.phone)).fetchone())


# The ДУЛ's type by НСИ 1.2.643.5.1.13.13.99.2.48 (the СЭМД's) → by НСИ 1.2.643.5.1.13.2.1.1.498 (the PIX feed's):
# паспорт гражданина РФ is 1 in the one and 14 in the other (as migration 013 backfills).
IEMK_ID_DOC_KINDS = {1: 14}


def insert_patient(conn: psycopg.Connection, mo_oid: str, p: Patient, *, oms_insurer_code: str | None = None,
                   id_doc_type_iemk: int | None = None) -> int:
    """The patient (kept as it is when the local id is known already); returns its id. ``id_doc_type_iemk``
    defaults to the НСИ 498 code of the ДУЛ's type where the two classifiers agree."""
    doc = p.identity
    addr = p.address
    if id_doc_type_iemk is None and doc is not None:
        id_doc_type_iemk = IEMK_ID_DOC_KINDS.get(doc.type_code)
    conn.execute(
        "INSERT INTO mis.patient (mo_oid, local_id, family, given, patronymic, birth_date, sex, snils, oms_policy,"
        " id_doc_type, id_doc_series, id_doc_number, id_doc_issued_by, id_doc_issued_on, address, postal_code,"
        " region, phone, oms_insurer, oms_insurer_code, id_doc_type_iemk)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (mo_oid, local_id) DO NOTHING",
        (mo_oid, p.local_id, p.family, p.given, p.patronymic, p.birth_date, p.sex, p.snils, p.oms_policy,
         doc and doc.type_code, doc and doc.series, doc and doc.number, doc and doc.issued_by, doc and doc.issued_on,
         addr and addr.text, addr and addr.postal_code, addr and int(addr.region_code), p.phone, p.oms_insurer,
         oms_insurer_code, id_doc_type_iemk))
    return _id(conn.execute("SELECT id FROM mis.patient WHERE mo_oid = %s AND local_id = %s",
                            (mo_oid, p.local_id)).fetchone())


_DIAGNOSIS_OWNERS = frozenset({"visit_id", "service_id", "stay_id"})


def insert_diagnoses(conn: psycopg.Connection, owner: str, owner_id: int, diagnoses: tuple[Diagnosis, ...], *,
                     at_admission: bool = False) -> None:
    """Diagnoses of a visit, service or stay (``owner`` names the column: visit_id, service_id, stay_id)."""
    if owner not in _DIAGNOSIS_OWNERS:
        raise ValueError(f"unknown diagnosis owner {owner!r}")
    for n, d in enumerate(diagnoses, start=1):
        conn.execute(f"INSERT INTO mis.diagnosis ({owner}, role, icd10, name, note, ordinal, at_admission)"  # noqa: S608
                     " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                     (owner_id, d.role, d.icd10, d.name, d.note, n, at_admission))


def insert_visit(conn: psycopg.Connection, mo_oid: str, patient_id: int, doctor_id: int, visit: Visit) -> int | None:
    """The visit's row; None when it was seeded before."""
    row = conn.execute(
        "INSERT INTO mis.visit (mo_oid, patient_id, doctor_id, local_id, started_at, ended_at, complaints, anamnesis,"
        " objective, conclusion, recommendations) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (mo_oid, local_id) DO NOTHING RETURNING id",
        (mo_oid, patient_id, doctor_id, visit.local_id, visit.started_at, visit.ended_at, visit.complaints,
         visit.anamnesis, visit.objective, visit.conclusion, visit.recommendations)).fetchone()
    return None if row is None else int(row[0])


def insert_referral(conn: psycopg.Connection, visit_id: int, ref: Referral) -> None:
    conn.execute(
        "INSERT INTO mis.referral (visit_id, local_id, kind, issued_at, target_mo_oid, target_mo_name,"
        " target_service, icd10, icd10_name, reason, urgent, service_code)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (visit_id, ref.local_id, ref.kind, ref.issued_at, ref.target.oid, ref.target.name, ref.target_service,
         ref.diagnosis.icd10, ref.diagnosis.name, ref.reason, ref.urgent, ref.service_code))


def insert_report(conn: psycopg.Connection, visit_id: int, r: SignedReport) -> None:
    """A signed report template of the visit, marked for ИЭМК."""
    conn.execute("INSERT INTO mis.report_template (visit_id, name, file_name, content, to_iemk, signed_at)"
                 " VALUES (%s, %s, %s, %s, true, %s)", (visit_id, r.name, r.file_name, r.content, r.signed_at))


@dataclass(frozen=True)
class ServiceLinks:
    """The rows a service points at (resolved by the caller, who may have to add staff first)."""
    performer_id: int
    referred_by_id: int | None = None
    visit_id: int | None = None
    stay_id: int | None = None


def insert_service(conn: psycopg.Connection, mo_oid: str, patient_id: int, svc: Service, links: ServiceLinks) -> int:
    return _id(conn.execute(
        "INSERT INTO mis.service (mo_oid, patient_id, visit_id, local_id, code, name, type, performed_at, performer_id,"
        " referred_from_stay_id, referred_by_id, referral_number, referred_at, specimen_taken_at, complaints,"
        " findings, conclusion, recommendations, anamnesis, life_anamnesis, condition, repeat, case_id,"
        " case_started_at, analyser_id, analyser_name) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (mo_oid, patient_id, links.visit_id, svc.local_id, svc.code, svc.name, svc.type, svc.performed_at,
         links.performer_id, links.stay_id, links.referred_by_id, svc.referral_id, svc.referred_at,
         svc.specimen_taken_at, svc.complaints, svc.findings, svc.conclusion, svc.recommendations, svc.anamnesis,
         svc.life_anamnesis, svc.condition, svc.repeat, svc.case_id, svc.case_started_at, svc.analyser_id,
         svc.analyser_name)).fetchone())


def insert_lab_results(conn: psycopg.Connection, service_id: int, results: tuple[LabResult, ...]) -> None:
    for n, r in enumerate(results, start=1):
        conn.execute(
            "INSERT INTO mis.lab_result (service_id, ordinal, test_code, test_name, value, unit, ref_low, ref_high,"
            " interpretation, specimen, comment) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (service_id, n, r.test_code, r.test_name, r.value, r.unit, r.low, r.high, r.interpretation, r.specimen,
             r.comment))


def insert_specimen(conn: psycopg.Connection, service_id: int, sp: Specimen, collected_by_id: int | None) -> None:
    conn.execute(
        "INSERT INTO mis.specimen (service_id, barcode, material_code, material_name, received_at, volume_ml,"
        " container, collected_by_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (service_id, sp.barcode, sp.material_code, sp.material_name, sp.received_at, sp.volume_ml, sp.container,
         collected_by_id))


def insert_hospitalisation(conn: psycopg.Connection, mo_oid: str, patient_id: int,
                           hosp: Hospitalisation) -> int | None:
    """The hospitalisation's row; None when it was seeded before."""
    row = conn.execute(
        "INSERT INTO mis.hospitalisation (mo_oid, patient_id, case_number, admitted_at, discharged_at, urgent,"
        " complaints, anamnesis, outcome) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (mo_oid, case_number) DO NOTHING RETURNING id",
        (mo_oid, patient_id, hosp.local_id, hosp.admitted_at, hosp.discharged_at, hosp.urgent, hosp.complaints,
         hosp.anamnesis, hosp.outcome)).fetchone()
    return None if row is None else int(row[0])


def insert_stay(conn: psycopg.Connection, hospitalisation_id: int, doctor_id: int, stay: DepartmentStay) -> int:
    """A department stay (its department found by OID)."""
    return _id(conn.execute(
        "INSERT INTO mis.department_stay (hospitalisation_id, department_id, doctor_id, started_at, ended_at,"
        " condition, treatment, recommendations, transferred, admission_state, discharge_state, result, surgery,"
        " diet, work) SELECT %s, d.id, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM mis.department d"
        " WHERE d.oid = %s RETURNING id",
        (hospitalisation_id, doctor_id, stay.started_at, stay.ended_at, stay.condition, stay.treatment,
         stay.recommendations, stay.transferred, stay.admission_state, stay.discharge_state, stay.result,
         stay.surgery, stay.diet, stay.work, stay.department.oid)).fetchone())


# --- the demo's documents after forming --------------------------------------------------------------

@dataclass(frozen=True)
class FormedForDemo:
    document_id: int
    kind_code: int
    patient_id: int
    author_local_id: str
    cda: bytes
    local_uid: str
    created_at: dt.datetime


def formed_documents(conn: psycopg.Connection, document_ids: list[int]) -> list[FormedForDemo]:
    rows = conn.execute(
        "SELECT d.id, d.kind_code, d.patient_id, s.local_id, d.cda, d.local_uid, d.created_at"
        " FROM mis.semd_document d JOIN mis.staff s ON s.id = d.author_id WHERE d.id = ANY(%s) ORDER BY d.id",
        (document_ids,)).fetchall()
    return [FormedForDemo(r[0], r[1], r[2], r[3], bytes(r[4]), r[5], r[6]) for r in rows]


def replace_content(conn: psycopg.Connection, document_id: int, cda: bytes) -> None:
    """Overwrite a document's bytes (the demo's damaged documents)."""
    conn.execute("UPDATE mis.semd_document SET cda = %s WHERE id = %s", (cda, document_id))
