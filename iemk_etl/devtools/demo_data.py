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

from iemk_etl import periods, statuses
from iemk_etl import settings as settings_mod
from iemk_etl.devtools import certs, clinical
from iemk_etl.devtools.generate import MSK as MSK  # the demo's zone, for the tests
from iemk_etl.devtools.generate import Generator, insurer_code, make_patient, staff_pool
from iemk_etl.pipeline import forming
from iemk_etl.protocol import ogrn, xml
from iemk_etl.semd.model import (
    SERVICE_INSTRUMENTAL,
    SERVICE_LAB,
    SERVICE_VISIT,
    Address,
    DepartmentStay,
    Hospitalisation,
    Organization,
    Patient,
    Service,
    Staff,
    Visit,
)
from iemk_etl.signing import cades
from iemk_etl.signing.keystore import KeyStore
from iemk_etl.store.mis import documents
from iemk_etl.store.mis import seed as mis_seed
from iemk_etl.store.mis.seed import ServiceLinks

DEMO_MO = (
    ("1.2.643.5.1.13.13.12.2.77.7801", "gkb7801", "ГБУЗ «Городская клиническая больница № 1 ДЗМ»", 77),
    ("1.2.643.5.1.13.13.12.2.50.5012", "orb5012", "ГБУЗ МО «Одинцовская областная больница»", 50),
)
# Address, phone, ОГРН of the demo МО (fictional ОГРН with the right shape and control digit).
_CONTACTS = {
    "gkb7801": (Address("г. Москва, Ленинский проспект, д. 8", "77", "119049"), "+74952369000", "1027739000002"),
    "orb5012": (Address("Московская обл., г. Одинцово, ул. Маршала Бирюзова, д. 5", "50", "143003"),
                "+74955935005", "1035006000006"),
}


DemoMo = tuple[str, str, str, int]      # (oid, code, name, region code)


def region_mo(count: int) -> tuple[DemoMo, ...]:
    """``count`` МО for a region-sized seed: the two demo МО first, then generated ones (Moscow's OID branch,
    codes ``mo0003`` …, fictional ОГРН with the right control digit), for benchmarks with hundreds of МО."""
    extra = tuple((f"1.2.643.5.1.13.13.12.2.77.{9000 + n}", f"mo{n:04d}", f"ГБУЗ «Поликлиника № {n} ДЗМ»", 77)
                  for n in range(len(DEMO_MO) + 1, count + 1))
    return (DEMO_MO + extra)[:count]


def _contacts(code: str, region: int) -> tuple[Address, str, str]:
    if code in _CONTACTS:
        return _CONTACTS[code]
    number = int(code.removeprefix("mo"))
    return (Address(f"г. Москва, ул. Примерная, д. {number}", str(region), "119049"), f"+7495{number:07d}",
            ogrn.complete(f"1027739{number:05d}"))


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
         store: KeyStore | None = None, tz: dt.tzinfo | str | None = None,
         mo: tuple[DemoMo, ...] = DEMO_MO) -> SeedResult:
    """Fill the МИС tables; re-running with the same arguments adds nothing new.

    The patients are shared out over ``mo`` (default: the two demo МО; ``region_mo(n)`` for more).

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
        for mo_index, (oid, code, name, region) in enumerate(mo):
            address, phone, mo_ogrn = _contacts(code, region)
            org = Organization(oid, name, address, phone, mo_ogrn)
            mis_seed.upsert_mo(conn, org, code, region)
            staff = staff_pool(rng, org)
            staff_ids = _seed_staff(conn, oid, staff)
            certs.ensure_test_material(store, code, [(s.local_id, f"{s.family} {s.given}") for s in staff])
            gen = Generator(mo=org, rng=rng, staff=staff, id_prefix=f"{code}-{end:%y%m%d}-", tz=zone)
            per_mo = patients // len(mo) + (1 if mo_index < patients % len(mo) else 0)
            bad_snils_patients: set[int] = set()
            added = False       # forming runs only when this run added records: damaged demo documents stay so
            for n in range(per_mo):
                bad_snils = rng.random() < fail_share / 2
                patient = make_patient(rng, f"{code}-P{n + 1:05d}", snils_ok=not bad_snils)
                patient_id = mis_seed.insert_patient(conn, oid, patient, oms_insurer_code=insurer_code(patient))
                if bad_snils:
                    bad_snils_patients.add(patient_id)
                totals["patients"] += 1
                chosen = sorted(rng.sample(range(days), k=min(days, rng.randint(1, 2))))
                for day_offset in chosen:
                    added |= _seed_visit(conn, rng, gen, oid, (patient_id, patient),
                                         first_day + dt.timedelta(days=day_offset), staff_ids)
                if rng.random() < 0.35:
                    added |= _seed_hospitalisation(conn, rng, gen, oid, (patient_id, patient),
                                                   first_day + dt.timedelta(days=chosen[-1]), staff_ids)
            if not added:
                continue
            start_at = periods.day_start(first_day, zone)
            formed = forming.form_period(conn, oid, start_at, periods.day_start(end, zone),
                                          mis_number=store.settings.mis_number)
            for kind, count in formed.formed.items():
                by_kind[kind] = by_kind.get(kind, 0) + count
            for doc in mis_seed.formed_documents(conn, formed.document_ids):
                # One generator per document: what happens to it must not depend on what a re-run skips.
                fate = random.Random(f"{seed}:{oid}:{doc.local_uid}")  # noqa: S311 - demo data
                bad_format = fate.random() < fail_share / 2
                signed = fate.random() >= unsigned_share
                _finish_document(conn, store, code, doc, bad_format=bad_format, signed=signed)
                totals["documents"] += 1
                totals["signed"] += signed
                totals["bad_format"] += bad_format and signed
                totals["bad_snils"] += doc.patient_id in bad_snils_patients and signed and not bad_format
    return SeedResult(len(mo), totals["patients"], totals["documents"], totals["signed"],
                      totals["bad_format"], totals["bad_snils"], by_kind)


def _seed_staff(conn: psycopg.Connection, oid: str, staff: list[Staff]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for person in staff:
        dep = person.department
        assert dep is not None  # noqa: S101 - the generated pool always places doctors in a department
        ids[person.local_id] = mis_seed.upsert_staff(conn, oid, mis_seed.upsert_department(conn, oid, dep), person)
    return ids


def _staff_id(conn: psycopg.Connection, oid: str, person: Staff, staff_ids: dict[str, int]) -> int:
    """The staff row of someone the generator brought in (a nurse, a lab technician), added on first sight."""
    if person.local_id not in staff_ids:
        staff_ids.update(_seed_staff(conn, oid, [person]))
    return staff_ids[person.local_id]


def _seed_visit(conn: psycopg.Connection, rng: random.Random, gen: Generator, oid: str,
                patient_row: tuple[int, Patient], day: dt.date, staff_ids: dict[str, int]) -> bool:
    patient_id, patient = patient_row
    services = tuple(t for t, share in ((SERVICE_LAB, 0.35), (SERVICE_INSTRUMENTAL, 0.3)) if rng.random() < share)
    referrals = (rng.choice(("hospitalisation", "consultation", "lab", "diagnostic")),) if rng.random() < 0.3 else ()
    visit: Visit = gen.visit(day, sparse=rng.random() < 0.15, report=rng.random() < 0.15, referrals=referrals,
                             services=services, patient=patient)
    visit_id = mis_seed.insert_visit(conn, oid, patient_id, staff_ids[visit.doctor.local_id], visit)
    if visit_id is None:     # seeded before
        return False
    mis_seed.insert_diagnoses(conn, "visit_id", visit_id, visit.diagnoses)
    for svc in visit.services:
        _insert_service(conn, oid, patient_id, svc, staff_ids, visit_id=visit_id)
    for ref in visit.referrals:
        mis_seed.insert_referral(conn, visit_id, ref)
    if visit.report is not None:
        mis_seed.insert_report(conn, visit_id, visit.report)
    return True


def _insert_service(conn: psycopg.Connection, oid: str, patient_id: int, svc: Service, staff_ids: dict[str, int], *,
                    visit_id: int | None = None, stay_id: int | None = None) -> None:
    links = ServiceLinks(performer_id=_staff_id(conn, oid, svc.performer, staff_ids),
                         referred_by_id=svc.referred_by and _staff_id(conn, oid, svc.referred_by, staff_ids),
                         visit_id=visit_id, stay_id=stay_id)
    service_id = mis_seed.insert_service(conn, oid, patient_id, svc, links)
    mis_seed.insert_diagnoses(conn, "service_id", service_id, svc.diagnoses)
    mis_seed.insert_lab_results(conn, service_id, svc.lab_results)
    if (sp := svc.specimen) is not None:
        mis_seed.insert_specimen(conn, service_id, sp,
                                 sp.collected_by and _staff_id(conn, oid, sp.collected_by, staff_ids))


def _seed_hospitalisation(conn: psycopg.Connection, rng: random.Random, gen: Generator, oid: str,
                          patient_row: tuple[int, Patient], day: dt.date, staff_ids: dict[str, int]) -> bool:
    patient_id, patient = patient_row
    hosp: Hospitalisation = gen.hospitalisation(day, departments=rng.randint(1, 3), sparse=rng.random() < 0.15,
                                                patient=patient)
    consult = None
    if rng.random() < 0.8:   # a specialist consulted the patient in the last department about its disease
        last = hosp.stays[-1]
        profile = clinical.PROFILES[last.diagnoses[0].icd10]
        consult = _in_department(gen.service(last.ended_at.date(), SERVICE_VISIT, from_hospital=True,
                                             patient=patient, profile=profile), last)
    hosp_id = mis_seed.insert_hospitalisation(conn, oid, patient_id, hosp)
    if hosp_id is None:
        return False
    stay_ids = []
    for stay in hosp.stays:
        stay_id = mis_seed.insert_stay(conn, hosp_id, _staff_id(conn, oid, stay.doctor, staff_ids), stay)
        mis_seed.insert_diagnoses(conn, "stay_id", stay_id, stay.diagnoses)
        mis_seed.insert_diagnoses(conn, "stay_id", stay_id, stay.admission_diagnoses, at_admission=True)
        stay_ids.append(stay_id)
    if consult is not None:
        _insert_service(conn, oid, patient_id, consult, staff_ids, stay_id=stay_ids[-1])
    return True


def _in_department(svc: Service, stay: DepartmentStay) -> Service:
    """The consultation happens during the stay, asked for by the department's doctor."""
    when = stay.ended_at - dt.timedelta(hours=20)
    return replace(svc, referred_from=stay.department, referred_by=stay.doctor, performed_at=when,
                   referred_at=when - dt.timedelta(hours=18))


def _finish_document(conn: psycopg.Connection, store: KeyStore, code: str, doc: mis_seed.FormedForDemo, *,
                     bad_format: bool, signed: bool) -> None:
    data = doc.cda
    if bad_format:
        data = _without_document_code(data)
        mis_seed.replace_content(conn, doc.document_id, data)
    if not signed:
        return
    signature, org_signature = cades.sign_document(
        data, doc.kind_code, store.staff_signer(code, doc.author_local_id), store.org_signer(code))
    documents.mark_signed(conn, doc.document_id, signature, org_signature, statuses.SIGNED,
                          signed_at=doc.created_at + dt.timedelta(minutes=20))


def _without_document_code(data: bytes) -> bytes:
    root = xml.parse(data)
    for el in root.findall("{urn:hl7-org:v3}code"):
        root.remove(el)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
