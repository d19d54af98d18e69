"""Generated МИС cases: realistic, deterministic for a seed, no database.

Feeds ``iemk-etl documents sample``, the demo seed and the tests. Every case kind has a "rich" and a "sparse"
variant (optional data absent), a hospitalisation may span one to three departments, and a visit may carry a
signed TO_IEMK report, so the builders meet the shapes a real МИС produces.
"""

from __future__ import annotations

import datetime as dt
import random
from zoneinfo import ZoneInfo

from iemk_etl import snils
from iemk_etl.semd import codes, pdf
from iemk_etl.semd.model import (
    REFERRAL_KINDS,
    SERVICE_INSTRUMENTAL,
    SERVICE_LAB,
    SERVICE_VISIT,
    Address,
    Case,
    Department,
    DepartmentStay,
    Diagnosis,
    DocumentContext,
    Hospitalisation,
    IdentityDocument,
    LabResult,
    Organization,
    Patient,
    Referral,
    Service,
    SignedReport,
    Staff,
    Visit,
)

MSK = ZoneInfo("Europe/Moscow")

MO = Organization(
    "1.2.643.5.1.13.13.12.2.77.7801", "ГБУЗ «Городская клиническая больница № 1 ДЗМ»",
    Address("г. Москва, Ленинский проспект, д. 8", "77", "119049"), "+74952369000")
REFERRAL_TARGET = Organization(
    "1.2.643.5.1.13.13.12.2.77.7803", "ГБУЗ «Городская клиническая больница № 15 им. О.М. Филатова ДЗМ»",
    Address("г. Москва, ул. Вешняковская, д. 23", "77", "111539"), "+74953756400")

MALE = (("Иванов", "Алексей", "Сергеевич"), ("Смирнов", "Дмитрий", "Андреевич"), ("Кузнецов", "Павел", "Игоревич"),
        ("Попов", "Михаил", "Олегович"), ("Соколов", "Артём", "Викторович"), ("Лебедев", "Николай", "Петрович"),
        ("Козлов", "Егор", "Владимирович"), ("Новиков", "Илья", "Александрович"))
FEMALE = (("Иванова", "Мария", "Сергеевна"), ("Смирнова", "Анна", "Дмитриевна"), ("Кузнецова", "Елена", "Павловна"),
          ("Попова", "Ольга", "Николаевна"), ("Соколова", "Татьяна", "Игоревна"), ("Морозова", "Наталья", "Юрьевна"),
          ("Волкова", "Ксения", "Андреевна"), ("Фёдорова", "Дарья", "Олеговна"))
STREETS = ("ул. Профсоюзная", "ул. Вавилова", "Ленинский проспект", "ул. Гарибальди", "ул. Дмитрия Ульянова")
# Departments of a generated МО and the doctors' positions (НСИ 1002) each one staffs.
DEPARTMENTS = (
    ("Терапевтическое отделение", (("109", "врач-терапевт"), ("109", "врач-терапевт"))),
    ("Кардиологическое отделение", (("30", "врач-кардиолог"), ("30", "врач-кардиолог"))),
    ("Неврологическое отделение", (("43", "врач-невролог"),)),
    ("Консультативно-диагностическая поликлиника", (("110", "врач-терапевт участковый"),
                                                    ("38", "врач клинической лабораторной диагностики"),
                                                    ("25", "врач функциональной диагностики"))),
)


def make_snils(rng: random.Random) -> str:
    return snils.complete(f"{rng.randint(2_000_000, 999_999_999):09d}")


def make_patient(rng: random.Random, local_id: str, *, sparse: bool = False, snils_ok: bool = True) -> Patient:
    sex = rng.choice((1, 2))
    family, given, patronymic = rng.choice(MALE if sex == 1 else FEMALE)
    number = make_snils(rng)
    if not snils_ok:
        number = number[:9] + f"{(int(number[9:]) + 1 + rng.randint(0, 50)) % 100:02d}"
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randint(0, 365 * 80))
    if sparse:
        return Patient(local_id, family, given, None, birth, sex, number)
    address = Address(f"г. Москва, {rng.choice(STREETS)}, д. {rng.randint(1, 90)}, кв. {rng.randint(1, 300)}", "77",
                      f"11{rng.randint(7000, 9999)}")
    identity = IdentityDocument(1, f"{rng.randint(45, 46)}{rng.randint(0, 24):02d}", f"{rng.randint(0, 999999):06d}",
                                "ГУ МВД России по г. Москве", birth + dt.timedelta(days=365 * 20 + rng.randint(0, 900)))
    return Patient(local_id, family, given, patronymic, birth, sex, number, address,
                   f"+7916{rng.randint(1_000_000, 9_999_999)}", f"{rng.randint(10**15, 10**16 - 1)}", identity)


def make_staff(rng: random.Random, local_id: str, department: Department, position: tuple[str, str]) -> Staff:
    sex = rng.choice((1, 2))
    family, given, patronymic = rng.choice(MALE if sex == 1 else FEMALE)
    return Staff(local_id, family, given, patronymic, make_snils(rng), position[0], position[1],
                 f"+7495{rng.randint(1_000_000, 9_999_999)}", department)


def department(mo: Organization, n: int) -> Department:
    return Department(f"{mo.oid}.0.{n}", DEPARTMENTS[(n - 1) % len(DEPARTMENTS)][0])


def staff_pool(rng: random.Random, mo: Organization) -> list[Staff]:
    """The МО's doctors, department by department, with local ids S<department><n>."""
    staff = []
    for d, (_, positions) in enumerate(DEPARTMENTS, start=1):
        for k, position in enumerate(positions, start=1):
            staff.append(make_staff(rng, f"S{d}{k:03d}", department(mo, d), position))
    return staff


class Generator:
    def __init__(self, seed: int = 1, mo: Organization = MO, rng: random.Random | None = None,
                 staff: list[Staff] | None = None, id_prefix: str = "") -> None:
        self.rng = rng or random.Random(seed)  # noqa: S311 - synthetic data, not secrets
        self.mo = mo
        self.staff = staff or staff_pool(self.rng, mo)
        self.id_prefix = id_prefix
        self.counter = 0

    def _next(self, prefix: str) -> str:
        self.counter += 1
        return f"{self.id_prefix}{prefix}{self.counter:05d}"

    def _doctor(self, position: str | None = None) -> Staff:
        pool = [s for s in self.staff if position is None or s.position_code == position] or self.staff
        return self.rng.choice(pool)

    def _moment(self, day: dt.date, hour: int = 9) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(hour, 0), MSK) + dt.timedelta(minutes=self.rng.randint(0, 240))

    def _diagnoses(self, *, sparse: bool) -> tuple[Diagnosis, ...]:
        main = Diagnosis(*self.rng.choice(codes.ICD10_COMMON))
        if sparse:
            return (main,)
        other = Diagnosis(*self.rng.choice([d for d in codes.ICD10_COMMON if d[0] != main.icd10]), role="concomitant")
        return (main, other)

    def _context(self, kind: int, author: Staff, created: dt.datetime, patient: Patient) -> DocumentContext:
        return DocumentContext(f"{kind}-{self._next('D')}", 1, created, self.mo, patient, author)

    def patient(self, *, sparse: bool = False) -> Patient:
        return make_patient(self.rng, self._next("P"), sparse=sparse)

    # --- kind 41: one document per department stay -------------------------------------------------
    def hospitalisation(self, day: dt.date, *, departments: int = 2, sparse: bool = False) -> Hospitalisation:
        start = self._moment(day - dt.timedelta(days=3 * departments + 1), 10)
        stays = []
        for n in range(departments):
            begin = start + dt.timedelta(days=3 * n)
            end = begin + dt.timedelta(days=3, hours=-2)
            dep = department(self.mo, 1 + n % 3)
            doctor = self.rng.choice([s for s in self.staff if s.department == dep] or self.staff)
            stays.append(DepartmentStay(
                dep, begin, end, doctor, self._diagnoses(sparse=sparse),
                None if sparse else "Состояние при поступлении средней тяжести, на фоне лечения с положительной "
                                    "динамикой.",
                None if sparse else "Эналаприл 10 мг 2 раза в день, аторвастатин 20 мг на ночь.",
                None if sparse else "Наблюдение участкового терапевта, контроль АД ежедневно.",
                transferred=n < departments - 1))
        return Hospitalisation(self._next("H"), start, stays[-1].ended_at, self.rng.random() < 0.5, tuple(stays),
                               None if sparse else "Давящие боли за грудиной, одышка при нагрузке.",
                               None if sparse else "Артериальная гипертензия в течение 10 лет.",
                               None if sparse else "Выздоровление с частичным восстановлением")

    # --- kinds 42, 186, 119, 174, 43: from a visit ---------------------------------------------------
    def service(self, day: dt.date, type_: str, *, sparse: bool = False, from_hospital: bool = False) -> Service:
        performed = self._moment(day, 10)
        if type_ == SERVICE_LAB:
            code, name, panel = self.rng.choice(codes.LAB_PANELS)
            results = tuple(self._lab_result(t) for t in (panel[:1] if sparse else panel))
            return Service(self._next("U"), code, name, type_, performed, self._doctor("38"),
                           lab_results=results, specimen_taken_at=performed - dt.timedelta(hours=2),
                           diagnoses=self._diagnoses(sparse=True))
        if type_ == SERVICE_INSTRUMENTAL:
            code, name, findings, conclusion = self.rng.choice(codes.INSTRUMENTAL_STUDIES)
            return Service(self._next("U"), code, name, type_, performed, self._doctor("25"), findings=findings,
                           conclusion=conclusion, diagnoses=self._diagnoses(sparse=True),
                           referred_by=None if sparse else self._doctor("109"))
        code, name = self.rng.choice(codes.CONSULTATIONS)
        stay_dep = department(self.mo, 1) if from_hospital else None
        return Service(self._next("U"), code, name, SERVICE_VISIT, performed, self._doctor("30"),
                       referred_from=stay_dep, referral_id=self._next("N") if from_hospital else None,
                       referred_at=performed - dt.timedelta(days=1) if from_hospital else None,
                       referred_by=self._doctor("109") if from_hospital else None,
                       diagnoses=self._diagnoses(sparse=sparse),
                       complaints=None if sparse else "Жалобы на перебои в работе сердца.",
                       findings="Тоны сердца ритмичные, ЧСС 78 в минуту, АД 150/90 мм рт. ст.",
                       conclusion="Гипертоническая болезнь II стадии, риск 3.",
                       recommendations=None if sparse else "Коррекция гипотензивной терапии, ЭхоКГ планово.")

    def _lab_result(self, test: tuple[str, str, str | None, float, float]) -> LabResult:
        code, name, unit, low, high = test
        value = round(self.rng.uniform(low * 0.85, high * 1.1), 1)
        flag = "L" if value < low else "H" if value > high else "N"
        return LabResult(code, name, f"{value:g}", unit, f"{low:g}", f"{high:g}", flag)

    def referral(self, day: dt.date, kind: str, doctor: Staff, *, sparse: bool = False) -> Referral:
        service = {"hospitalisation": "Кардиология", "consultation": "Приём врача-кардиолога",
                   "lab": "Общий (клинический) анализ крови", "diagnostic": "Эхокардиография"}[kind]
        return Referral(self._next("R"), kind, self._moment(day, 11), doctor, REFERRAL_TARGET, service,
                        Diagnosis(*self.rng.choice(codes.ICD10_COMMON)),
                        "Уточнение диагноза и коррекция лечения.", urgent=not sparse and kind == "hospitalisation")

    def visit(self, day: dt.date, *, sparse: bool = False, report: bool = False,
              referrals: tuple[str, ...] = (), services: tuple[str, ...] = ()) -> Visit:
        doctor = self._doctor("109")
        start = self._moment(day)
        signed = None
        if report:
            signed = SignedReport("Протокол осмотра терапевта", "protocol.pdf",
                                  pdf.simple_pdf("Протокол осмотра", [f"Визит {start:%d.%m.%Y}"]),
                                  start + dt.timedelta(minutes=30))
        return Visit(self._next("V"), start, start + dt.timedelta(minutes=25), doctor, self._diagnoses(sparse=sparse),
                     None if sparse else "Жалобы на головную боль, повышение АД до 160/95 мм рт. ст.",
                     None if sparse else "Страдает артериальной гипертензией 5 лет.",
                     None if sparse else "Состояние удовлетворительное. АД 150/90 мм рт. ст., ЧСС 76 в минуту.",
                     "Гипертоническая болезнь II стадии.",
                     None if sparse else "Эналаприл 10 мг 2 раза в день, контроль АД.",
                     services=tuple(self.service(day, t, sparse=sparse) for t in services),
                     referrals=tuple(self.referral(day, k, doctor, sparse=sparse) for k in referrals),
                     report=signed)

    # --- whole cases -----------------------------------------------------------------------------------
    def case(self, kind: int, day: dt.date, variant: int = 0) -> Case:
        """A case of ``kind``; ``variant`` cycles through the shapes that matter for that kind."""
        sparse = variant % 3 == 2
        patient = self.patient(sparse=sparse)
        if kind == 41:
            hosp = self.hospitalisation(day, departments=1 + variant % 3, sparse=sparse)
            index = len(hosp.stays) - 1
            stay = hosp.stays[index]
            return Case(41, self._context(41, stay.doctor, stay.ended_at + dt.timedelta(hours=1), patient), hosp,
                        index)
        if kind == 42:
            visit = self.visit(day, sparse=sparse, report=variant % 3 == 1)
            return Case(42, self._context(42, visit.doctor, visit.ended_at, patient), visit)
        if kind == 43:
            kind_of = REFERRAL_KINDS[variant % len(REFERRAL_KINDS)]
            doctor = self._doctor("109")
            ref = self.referral(day, kind_of, doctor, sparse=sparse)
            return Case(43, self._context(43, doctor, ref.issued_at, patient), ref)
        type_ = {186: SERVICE_LAB, 174: SERVICE_INSTRUMENTAL, 119: SERVICE_VISIT}.get(kind)
        if type_ is None:
            raise ValueError(f"no generated cases for СЭМД kind {kind}")
        svc = self.service(day, type_, sparse=sparse, from_hospital=True)
        return Case(kind, self._context(kind, svc.performer, svc.performed_at + dt.timedelta(minutes=40), patient),
                    svc)
