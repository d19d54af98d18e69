"""Demo data for the reference МИС schema: МО, departments, staff, patients, their clinical records, and the
СЭМД of all six kinds formed from them and signed.

Deterministic for a given ``seed`` and ``end`` date. The records are generated (``semd.generate``), written
to the МИС tables, and the period's documents are formed by the same code as ``iemk-etl documents build``.
A configurable share of the documents must fail control: half of that share is damaged after forming (no
ClinicalDocument/code, as a faulty МИС form would leave it) so format control refuses it; the other half
belongs to patients whose СНИЛС has a wrong check digit, which only ИЭМК's patient index refuses.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field, replace

import psycopg
from lxml import etree

from iemk_etl import periods
from iemk_etl import settings as settings_mod
from iemk_etl.devtools import certs
from iemk_etl.devtools.generate import MSK as MSK  # the demo's zone, for the tests
from iemk_etl.devtools.generate import Generator, make_patient, staff_pool
from iemk_etl.pipeline import forming
from iemk_etl.protocol import xml
from iemk_etl.semd.model import (
    SERVICE_INSTRUMENTAL,
    SERVICE_LAB,
    SERVICE_VISIT,
    Address,
    DepartmentStay,
    Diagnosis,
    Hospitalisation,
    Organization,
    Patient,
    Service,
    Staff,
    Visit,
)
from iemk_etl.signing import semd_signing
from iemk_etl.signing.keystore import KeyStore

DEMO_MO = (
    ("1.2.643.5.1.13.13.12.2.77.7801", "gkb7801", "ГБУЗ «Городская клиническая больница № 1 ДЗМ»", 77),
    ("1.2.643.5.1.13.13.12.2.50.5012", "orb5012", "ГБУЗ МО «Одинцовская областная больница»", 50),
)
# Address, phone, ОГРН of the demo МО (fictional ОГРН with the right shape).
_CONTACTS = {
    "gkb7801": (Address("г. Москва, Ленинский проспект, д. 8", "77", "119049"), "+74952369000", "1027739000001"),
    "orb5012": (Address("Московская обл., г. Одинцово, ул. Маршала Бирюзова, д. 5", "50", "143003"),
                "+74955935005", "1035006000002"),
}


@dataclass(frozen=True)
class SeedResult:
    mo: int
    patients: int
    documents: int
    signed: int
    bad_format: int
    bad_snils: int
    by_kind: dict[int, int] = field(default_factory=dict)


def seed(conn: psycopg.Connection, *, patients: int = 40, days: int = 3, seed: int = 42,
         end: dt.date | None = None, fail_share: float = 0.2, unsigned_share: float = 0.1,
         store: KeyStore | None = None, tz: dt.tzinfo | str | None = None) -> SeedResult:
    """Fill the МИС tables; re-running with the same arguments adds nothing new.

    Signed documents carry real GOST signatures (author and МО) made with test certificates that are
    created in the key store for the demo МО and their staff. Days are local days of ``tz`` (default: the
    IEMK_TIMEZONE setting).
    """
    if store is None or tz is None:
        loaded = settings_mod.load()
        store, tz = store or KeyStore(loaded), tz or loaded.timezone
    zone = periods.zone(tz) if isinstance(tz, str) else tz
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    end = end or dt.datetime.now(zone).date()
    first_day = end - dt.timedelta(days=days)
    totals = {"documents": 0, "signed": 0, "bad_format": 0, "bad_snils": 0, "patients": 0}
    by_kind: dict[int, int] = {}
    with conn.transaction():
        for mo_index, (oid, code, name, region) in enumerate(DEMO_MO):
            address, phone, ogrn = _CONTACTS[code]
            mo = Organization(oid, name, address, phone, ogrn)
            conn.execute("INSERT INTO mis.mo (oid, code, name, region, address, postal_code, phone, ogrn)"
                         " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (oid) DO UPDATE SET"
                         " address = coalesce(mis.mo.address, EXCLUDED.address),"
                         " postal_code = coalesce(mis.mo.postal_code, EXCLUDED.postal_code),"
                         " phone = coalesce(mis.mo.phone, EXCLUDED.phone), ogrn = coalesce(mis.mo.ogrn, EXCLUDED.ogrn)",
                         (oid, code, name, region, address.text, address.postal_code, phone, ogrn))
            staff = staff_pool(rng, mo)
            staff_ids = _seed_staff(conn, oid, staff)
            certs.ensure_test_material(store, code, [(s.local_id, f"{s.family} {s.given}") for s in staff])
            gen = Generator(mo=mo, rng=rng, staff=staff, id_prefix=f"{code}-{end:%y%m%d}-", tz=zone)
            per_mo = patients // len(DEMO_MO) + (1 if mo_index < patients % len(DEMO_MO) else 0)
            bad_snils_patients: set[int] = set()
            added = False       # forming runs only when this run added records: damaged demo documents stay so
            for n in range(per_mo):
                bad_snils = rng.random() < fail_share / 2
                patient_id = _seed_patient(conn, oid, make_patient(rng, f"{code}-P{n + 1:05d}",
                                                                   snils_ok=not bad_snils))
                if bad_snils:
                    bad_snils_patients.add(patient_id)
                totals["patients"] += 1
                chosen = sorted(rng.sample(range(days), k=min(days, rng.randint(1, 2))))
                for day_offset in chosen:
                    added |= _seed_visit(conn, rng, gen, oid, patient_id, first_day + dt.timedelta(days=day_offset),
                                         staff_ids)
                if rng.random() < 0.35:
                    added |= _seed_hospitalisation(conn, rng, gen, oid, patient_id,
                                                   first_day + dt.timedelta(days=chosen[-1]), staff_ids)
            if not added:
                continue
            start_at = periods.day_start(first_day, zone)
            formed = forming.form_period(conn, oid, start_at, periods.day_start(end, zone))
            for kind, count in formed.formed.items():
                by_kind[kind] = by_kind.get(kind, 0) + count
            for document_id, kind, patient_id, staff_local_id, data, local_uid in conn.execute(
                    "SELECT d.id, d.kind_code, d.patient_id, s.local_id, d.cda, d.local_uid FROM mis.semd_document d"
                    " JOIN mis.staff s ON s.id = d.author_id WHERE d.id = ANY(%s) ORDER BY d.id",
                    (formed.document_ids,)).fetchall():
                # One generator per document: what happens to it must not depend on what a re-run skips.
                fate = random.Random(f"{seed}:{oid}:{local_uid}")  # noqa: S311 - demo data
                bad_format = fate.random() < fail_share / 2
                signed = fate.random() >= unsigned_share
                _finish_document(conn, store, code, document_id, kind, bytes(data), staff_local_id,
                                 bad_format=bad_format, signed=signed)
                totals["documents"] += 1
                totals["signed"] += signed
                totals["bad_format"] += bad_format and signed
                totals["bad_snils"] += patient_id in bad_snils_patients and signed and not bad_format
    return SeedResult(len(DEMO_MO), totals["patients"], totals["documents"], totals["signed"],
                      totals["bad_format"], totals["bad_snils"], by_kind)


def _seed_staff(conn: psycopg.Connection, oid: str, staff: list[Staff]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for person in staff:
        dep = person.department
        assert dep is not None  # noqa: S101 - the generated pool always places doctors in a department
        dep_id = conn.execute(
            "INSERT INTO mis.department (mo_oid, oid, name) VALUES (%s, %s, %s)"
            " ON CONFLICT (oid) DO UPDATE SET name = EXCLUDED.name RETURNING id",
            (oid, dep.oid, dep.name)).fetchone()[0]
        ids[person.local_id] = conn.execute(
            "INSERT INTO mis.staff (mo_oid, department_id, local_id, snils, family, given, patronymic,"
            " position_code, position_name, phone) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (mo_oid, local_id) DO UPDATE SET local_id = EXCLUDED.local_id RETURNING id",
            (oid, dep_id, person.local_id, person.snils, person.family, person.given, person.patronymic,
             person.position_code, person.position_name, person.phone)).fetchone()[0]
    return ids


def _seed_patient(conn: psycopg.Connection, oid: str, p: Patient) -> int:
    doc = p.identity
    addr = p.address
    conn.execute(
        "INSERT INTO mis.patient (mo_oid, local_id, family, given, patronymic, birth_date, sex, snils, oms_policy,"
        " id_doc_type, id_doc_series, id_doc_number, id_doc_issued_by, id_doc_issued_on, address, postal_code,"
        " region, phone, oms_insurer) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s)"
        " ON CONFLICT (mo_oid, local_id) DO NOTHING",
        (oid, p.local_id, p.family, p.given, p.patronymic, p.birth_date, p.sex, p.snils, p.oms_policy,
         doc and doc.type_code, doc and doc.series, doc and doc.number, doc and doc.issued_by, doc and doc.issued_on,
         addr and addr.text, addr and addr.postal_code, addr and int(addr.region_code), p.phone, p.oms_insurer))
    return conn.execute("SELECT id FROM mis.patient WHERE mo_oid = %s AND local_id = %s",
                        (oid, p.local_id)).fetchone()[0]


def _diagnoses(conn: psycopg.Connection, column: str, owner_id: int, diagnoses: tuple[Diagnosis, ...], *,
               at_admission: bool = False) -> None:
    for n, d in enumerate(diagnoses, start=1):
        conn.execute(f"INSERT INTO mis.diagnosis ({column}, role, icd10, name, note, ordinal, at_admission)"  # noqa: S608
                     " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                     (owner_id, d.role, d.icd10, d.name, d.note, n, at_admission))


def _staff_id(conn: psycopg.Connection, oid: str, person: Staff, staff_ids: dict[str, int]) -> int:
    """The staff row of someone the generator brought in (a nurse, a lab technician), added on first sight."""
    if person.local_id not in staff_ids:
        staff_ids.update(_seed_staff(conn, oid, [person]))
    return staff_ids[person.local_id]


def _seed_visit(conn: psycopg.Connection, rng: random.Random, gen: Generator, oid: str, patient_id: int,
                day: dt.date, staff_ids: dict[str, int]) -> bool:
    services = tuple(t for t, share in ((SERVICE_LAB, 0.35), (SERVICE_INSTRUMENTAL, 0.3)) if rng.random() < share)
    referrals = (rng.choice(("hospitalisation", "consultation", "lab", "diagnostic")),) if rng.random() < 0.3 else ()
    visit: Visit = gen.visit(day, sparse=rng.random() < 0.15, report=rng.random() < 0.15, referrals=referrals,
                             services=services)
    visit_id = conn.execute(
        "INSERT INTO mis.visit (mo_oid, patient_id, doctor_id, local_id, started_at, ended_at, complaints, anamnesis,"
        " objective, conclusion, recommendations) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (mo_oid, local_id) DO NOTHING RETURNING id",
        (oid, patient_id, staff_ids[visit.doctor.local_id], visit.local_id, visit.started_at, visit.ended_at,
         visit.complaints, visit.anamnesis, visit.objective, visit.conclusion, visit.recommendations)).fetchone()
    if visit_id is None:     # seeded before
        return False
    _diagnoses(conn, "visit_id", visit_id[0], visit.diagnoses)
    for svc in visit.services:
        _insert_service(conn, oid, patient_id, svc, staff_ids, visit_id=visit_id[0])
    for ref in visit.referrals:
        conn.execute(
            "INSERT INTO mis.referral (visit_id, local_id, kind, issued_at, target_mo_oid, target_mo_name,"
            " target_service, icd10, icd10_name, reason, urgent, service_code)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (visit_id[0], ref.local_id, ref.kind, ref.issued_at, ref.target.oid, ref.target.name, ref.target_service,
             ref.diagnosis.icd10, ref.diagnosis.name, ref.reason, ref.urgent, ref.service_code))
    if visit.report is not None:
        r = visit.report
        conn.execute("INSERT INTO mis.report_template (visit_id, name, file_name, content, to_iemk, signed_at)"
                     " VALUES (%s, %s, %s, %s, true, %s)", (visit_id[0], r.name, r.file_name, r.content, r.signed_at))
    return True


def _insert_service(conn: psycopg.Connection, oid: str, patient_id: int, svc: Service, staff_ids: dict[str, int], *,
                    visit_id: int | None = None, stay_id: int | None = None) -> None:
    service_id = conn.execute(
        "INSERT INTO mis.service (mo_oid, patient_id, visit_id, local_id, code, name, type, performed_at, performer_id,"
        " referred_from_stay_id, referred_by_id, referral_number, referred_at, specimen_taken_at, complaints,"
        " findings, conclusion, recommendations, anamnesis, life_anamnesis, condition, repeat, case_id,"
        " case_started_at, analyser_id, analyser_name) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
        " %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (oid, patient_id, visit_id, svc.local_id, svc.code, svc.name, svc.type, svc.performed_at,
         _staff_id(conn, oid, svc.performer, staff_ids), stay_id,
         svc.referred_by and _staff_id(conn, oid, svc.referred_by, staff_ids), svc.referral_id, svc.referred_at,
         svc.specimen_taken_at, svc.complaints, svc.findings, svc.conclusion, svc.recommendations, svc.anamnesis,
         svc.life_anamnesis, svc.condition, svc.repeat, svc.case_id, svc.case_started_at, svc.analyser_id,
         svc.analyser_name)).fetchone()[0]
    _diagnoses(conn, "service_id", service_id, svc.diagnoses)
    for n, r in enumerate(svc.lab_results, start=1):
        conn.execute(
            "INSERT INTO mis.lab_result (service_id, ordinal, test_code, test_name, value, unit, ref_low, ref_high,"
            " interpretation, specimen, comment) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (service_id, n, r.test_code, r.test_name, r.value, r.unit, r.low, r.high, r.interpretation, r.specimen,
             r.comment))
    if (sp := svc.specimen) is not None:
        conn.execute(
            "INSERT INTO mis.specimen (service_id, barcode, material_code, material_name, received_at, volume_ml,"
            " container, collected_by_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (service_id, sp.barcode, sp.material_code, sp.material_name, sp.received_at, sp.volume_ml, sp.container,
             sp.collected_by and _staff_id(conn, oid, sp.collected_by, staff_ids)))


def _seed_hospitalisation(conn: psycopg.Connection, rng: random.Random, gen: Generator, oid: str, patient_id: int,
                          day: dt.date, staff_ids: dict[str, int]) -> bool:
    hosp: Hospitalisation = gen.hospitalisation(day, departments=rng.randint(1, 3), sparse=rng.random() < 0.15)
    consult = None
    if rng.random() < 0.8:   # a specialist consulted the patient in the last department, before discharge
        last = hosp.stays[-1]
        consult = _in_department(gen.service(last.ended_at.date(), SERVICE_VISIT, from_hospital=True), last)
    row = conn.execute(
        "INSERT INTO mis.hospitalisation (mo_oid, patient_id, case_number, admitted_at, discharged_at, urgent,"
        " complaints, anamnesis, outcome) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (mo_oid, case_number) DO NOTHING RETURNING id",
        (oid, patient_id, hosp.local_id, hosp.admitted_at, hosp.discharged_at, hosp.urgent, hosp.complaints,
         hosp.anamnesis, hosp.outcome)).fetchone()
    if row is None:
        return False
    stay_ids = []
    for stay in hosp.stays:
        stay_id = conn.execute(
            "INSERT INTO mis.department_stay (hospitalisation_id, department_id, doctor_id, started_at, ended_at,"
            " condition, treatment, recommendations, transferred, admission_state, discharge_state, result, surgery,"
            " diet, work) SELECT %s, d.id, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM mis.department d"
            " WHERE d.oid = %s RETURNING id",
            (row[0], _staff_id(conn, oid, stay.doctor, staff_ids), stay.started_at, stay.ended_at, stay.condition,
             stay.treatment, stay.recommendations, stay.transferred, stay.admission_state, stay.discharge_state,
             stay.result, stay.surgery, stay.diet, stay.work, stay.department.oid)).fetchone()[0]
        _diagnoses(conn, "stay_id", stay_id, stay.diagnoses)
        _diagnoses(conn, "stay_id", stay_id, stay.admission_diagnoses, at_admission=True)
        stay_ids.append(stay_id)
    if consult is not None:
        _insert_service(conn, oid, patient_id, consult, staff_ids, stay_id=stay_ids[-1])
    return True


def _in_department(svc: Service, stay: DepartmentStay) -> Service:
    """The consultation happens during the stay, asked for by the department's doctor."""
    when = stay.ended_at - dt.timedelta(hours=20)
    return replace(svc, referred_from=stay.department, referred_by=stay.doctor, performed_at=when,
                   referred_at=when - dt.timedelta(hours=18))


def _finish_document(conn: psycopg.Connection, store: KeyStore, code: str, document_id: int, kind: int, data: bytes,
                     staff_local_id: str, *, bad_format: bool, signed: bool) -> None:
    if bad_format:
        data = _without_document_code(data)
        conn.execute("UPDATE mis.semd_document SET cda = %s WHERE id = %s", (data, document_id))
    if not signed:
        return
    created = conn.execute("SELECT created_at FROM mis.semd_document WHERE id = %s", (document_id,)).fetchone()[0]
    signature, org_signature = semd_signing.sign_document(
        data, kind, store.staff_signer(code, staff_local_id), store.org_signer(code))
    conn.execute("UPDATE mis.semd_document SET signature = %s, org_signature = %s, signed_at = %s, status = %s"
                 " WHERE id = %s", (signature, org_signature, created + dt.timedelta(minutes=20), "Подписан",
                                    document_id))


def _without_document_code(data: bytes) -> bytes:
    root = xml.parse(data)
    for el in root.findall("{urn:hl7-org:v3}code"):
        root.remove(el)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
