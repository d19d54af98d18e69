"""Demo data for the reference МИС schema: МО, departments, staff, patients and signed СЭМД.

Deterministic for a given ``seed`` and ``end`` date. A configurable share of the documents must fail
control: half of that share breaks format control here (no ClinicalDocument/code), the other half
belongs to patients whose СНИЛС has a wrong check digit, which only ИЭМК's patient index refuses.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import psycopg

from iemk_etl import cda, semd_signing, snils
from iemk_etl import settings as settings_mod
from iemk_etl.keystore import KeyStore

MSK = ZoneInfo("Europe/Moscow")

DEMO_MO = (
    ("1.2.643.5.1.13.13.12.2.77.7801", "gkb7801", "ГБУЗ «Городская клиническая больница № 1 ДЗМ»", 77),
    ("1.2.643.5.1.13.13.12.2.50.5012", "orb5012", "ГБУЗ МО «Одинцовская областная больница»", 50),
)
_DEPARTMENTS = ("Терапевтическое отделение", "Консультативно-диагностическая поликлиника")
_POSITIONS = (("109", "врач-терапевт"), ("122", "врач-кардиолог"), ("110", "врач-терапевт участковый"))
_MALE = (("Иванов", "Алексей", "Сергеевич"), ("Смирнов", "Дмитрий", "Андреевич"), ("Кузнецов", "Павел", "Игоревич"),
         ("Попов", "Михаил", "Олегович"), ("Соколов", "Артём", "Викторович"), ("Лебедев", "Николай", "Петрович"),
         ("Козлов", "Егор", "Владимирович"), ("Новиков", "Илья", "Александрович"))
_FEMALE = (("Иванова", "Мария", "Сергеевна"), ("Смирнова", "Анна", "Дмитриевна"), ("Кузнецова", "Елена", "Павловна"),
           ("Попова", "Ольга", "Николаевна"), ("Соколова", "Татьяна", "Игоревна"), ("Морозова", "Наталья", "Юрьевна"),
           ("Волкова", "Ксения", "Андреевна"), ("Фёдорова", "Дарья", "Олеговна"))
_COMPLAINTS = ("Жалобы на головную боль, повышение АД до 160/95 мм рт. ст.",
               "Жалобы на кашель, субфебрильную температуру в течение 3 дней.",
               "Плановый осмотр, жалоб не предъявляет.",
               "Жалобы на боли в поясничной области при нагрузке.")


@dataclass(frozen=True)
class SeedResult:
    mo: int
    patients: int
    documents: int
    signed: int
    bad_format: int
    bad_snils: int


def _snils(rng: random.Random, *, valid: bool = True) -> str:
    first = f"{rng.randint(2_000_000, 999_999_999):09d}"
    good = snils.complete(first)
    if valid:
        return good
    wrong = (int(good[9:]) + 1 + rng.randint(0, 50)) % 100
    return first + f"{wrong:02d}"


def _person(rng: random.Random) -> tuple[int, tuple[str, str, str]]:
    sex = rng.choice((1, 2))
    return sex, rng.choice(_MALE if sex == 1 else _FEMALE)


def seed(conn: psycopg.Connection, *, patients: int = 40, days: int = 3, seed: int = 42,
         end: dt.date | None = None, fail_share: float = 0.2, unsigned_share: float = 0.1,
         store: KeyStore | None = None) -> SeedResult:
    """Fill the МИС tables; re-running with the same arguments adds nothing new.

    Signed documents carry real GOST signatures (author and МО) made with test certificates that are
    created in the key store for the demo МО and their staff.
    """
    store = store or KeyStore(settings_mod.load())
    rng = random.Random(seed)  # noqa: S311 - demo data, not secrets
    end = end or dt.datetime.now(MSK).date()
    first_day = end - dt.timedelta(days=days)
    totals = {"documents": 0, "signed": 0, "bad_format": 0, "bad_snils": 0, "patients": 0}
    with conn.transaction():
        for mo_index, (oid, code, name, region) in enumerate(DEMO_MO):
            conn.execute("INSERT INTO mis.mo (oid, code, name, region) VALUES (%s, %s, %s, %s)"
                         " ON CONFLICT (oid) DO NOTHING", (oid, code, name, region))
            staff_ids = _seed_staff(conn, rng, oid)
            store.ensure_test_material(code, [(a.local_id, f"{a.family} {a.given}") for _, a in staff_ids])
            per_mo = patients // len(DEMO_MO) + (1 if mo_index < patients % len(DEMO_MO) else 0)
            for n in range(per_mo):
                bad_snils = rng.random() < fail_share / 2
                patient_id, patient = _seed_patient(conn, rng, oid, f"{code}-P{n + 1:05d}", bad_snils)
                totals["patients"] += 1
                for day_offset in sorted(rng.sample(range(days), k=min(days, rng.randint(1, 2)))):
                    day = first_day + dt.timedelta(days=day_offset)
                    bad_format = rng.random() < fail_share / 2
                    signed = rng.random() >= unsigned_share
                    made = _seed_document(conn, rng, oid, name, code, n, day, patient_id, patient,
                                          rng.choice(staff_ids), bad_format=bad_format, signed=signed,
                                          store=store)
                    if made:
                        totals["documents"] += 1
                        totals["signed"] += signed
                        totals["bad_format"] += bad_format and signed
                        totals["bad_snils"] += bad_snils and signed and not bad_format
    return SeedResult(len(DEMO_MO), totals["patients"], totals["documents"], totals["signed"],
                      totals["bad_format"], totals["bad_snils"])


def _seed_staff(conn: psycopg.Connection, rng: random.Random, oid: str) -> list[tuple[int, cda.Author]]:
    staff = []
    for d, dep_name in enumerate(_DEPARTMENTS, start=1):
        dep_id = conn.execute(
            "INSERT INTO mis.department (mo_oid, oid, name) VALUES (%s, %s, %s)"
            " ON CONFLICT (oid) DO UPDATE SET name = EXCLUDED.name RETURNING id",
            (oid, f"{oid}.0.{d}", dep_name)).fetchone()[0]
        for k in range(2):
            sex, (family, given, patronymic) = _person(rng)
            position = rng.choice(_POSITIONS)
            author = cda.Author(f"S{d}{k + 1:03d}", family, given, patronymic, _snils(rng), *position)
            staff_id = conn.execute(
                "INSERT INTO mis.staff (mo_oid, department_id, local_id, snils, family, given, patronymic,"
                " position_code, position_name) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (mo_oid, local_id) DO UPDATE SET local_id = EXCLUDED.local_id RETURNING id",
                (oid, dep_id, author.local_id, author.snils, family, given, patronymic, *position)).fetchone()[0]
            row = conn.execute("SELECT local_id, family, given, patronymic, snils, position_code, position_name"
                               " FROM mis.staff WHERE id = %s", (staff_id,)).fetchone()
            staff.append((staff_id, cda.Author(*row)))
    return staff


def _seed_patient(conn: psycopg.Connection, rng: random.Random, oid: str, local_id: str,
                  bad_snils: bool) -> tuple[int, cda.Patient]:
    sex, (family, given, patronymic) = _person(rng)
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randint(0, 365 * 80))
    number = _snils(rng, valid=not bad_snils)
    policy = f"{rng.randint(10**15, 10**16 - 1)}"
    passport = (f"{rng.randint(10, 99)}{rng.randint(0, 24):02d}", f"{rng.randint(0, 999999):06d}")
    conn.execute(
        "INSERT INTO mis.patient (mo_oid, local_id, family, given, patronymic, birth_date, sex, snils,"
        " oms_policy, id_doc_type, id_doc_series, id_doc_number)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 1, %s, %s) ON CONFLICT (mo_oid, local_id) DO NOTHING",
        (oid, local_id, family, given, patronymic, birth, sex, number, policy, *passport))
    row = conn.execute("SELECT id, local_id, family, given, patronymic, snils, birth_date, sex FROM mis.patient"
                       " WHERE mo_oid = %s AND local_id = %s", (oid, local_id)).fetchone()
    return row[0], cda.Patient(*row[1:])


def _seed_document(conn: psycopg.Connection, rng: random.Random, oid: str, mo_name: str, code: str, n: int,
                   day: dt.date, patient_id: int, patient: cda.Patient, author: tuple[int, cda.Author], *,
                   bad_format: bool, signed: bool, store: KeyStore) -> bool:
    created = dt.datetime.combine(day, dt.time(8, 0), MSK) + dt.timedelta(minutes=rng.randint(0, 11 * 60))
    signed_at = created + dt.timedelta(minutes=rng.randint(5, 90)) if signed else None
    local_uid = f"{code}-{day:%Y%m%d}-{n + 1:05d}"
    header = cda.DocumentHeader(42, local_uid, 1, created, cda.Organization(oid, mo_name), patient, author[1])
    data = cda.build(header, sections=[("Жалобы и анамнез", rng.choice(_COMPLAINTS)),
                                       ("Заключение", "Рекомендовано наблюдение у участкового терапевта.")],
                     omit=("code",) if bad_format else ())
    exists = conn.execute("SELECT 1 FROM mis.semd_document WHERE mo_oid = %s AND local_uid = %s AND version = 1",
                          (oid, local_uid)).fetchone()
    if exists:
        return False
    signature = org_signature = None
    if signed:
        signature, org_signature = semd_signing.sign_document(
            data, 42, store.staff_signer(code, author[1].local_id), store.org_signer(code))
    row = conn.execute(
        "INSERT INTO mis.semd_document (mo_oid, kind_code, patient_id, author_id, local_uid, version, created_at,"
        " signed_at, cda, signature, org_signature, status) VALUES (%s, 42, %s, %s, %s, 1, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (mo_oid, local_uid, version) DO NOTHING RETURNING id",
        (oid, patient_id, author[0], local_uid, created, signed_at, data, signature, org_signature,
         "Подписан" if signed else "Не подписан"),
    ).fetchone()
    return row is not None
