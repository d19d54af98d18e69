"""Generated МИС cases: realistic, deterministic for a seed, no database.

Feeds ``iemk-etl documents sample``, the demo seed and the tests. Every case kind has a "rich" and a "sparse"
variant (optional data absent), a hospitalisation may span one to three departments, and a visit may carry a
signed TO_IEMK report, so the builders meet the shapes a real МИС produces.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import replace

from iemk_etl import periods
from iemk_etl.devtools import clinical
from iemk_etl.devtools.clinical import Profile
from iemk_etl.protocol import oms_policy, snils
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
    Specimen,
    Staff,
    Visit,
)
from iemk_etl.settings import DEFAULT_TIMEZONE

# The demo's zone: the default of IEMK_TIMEZONE (a Generator may be given another).
MSK = periods.zone(DEFAULT_TIMEZONE)

MO = Organization(
    "1.2.643.5.1.13.13.12.2.77.7801", "ГБУЗ «Городская клиническая больница № 1 ДЗМ»",
    Address("г. Москва, Ленинский проспект, д. 8", "77", "119049"), "+74952369000", "1027739000002")
INSURERS = ("АО «Страховая компания «СОГАЗ-Мед»", "ООО «Капитал МС»", "АО «МАКС-М»")
# Their codes in the СМО registry (1.2.643.5.1.13.2.1.1.635) that the PIX feed sends: demo values of the registry's
# shape (region, then the СМО's number), not looked up.
INSURER_CODES = dict(zip(INSURERS, ("77013", "77011", "77008"), strict=True))
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
    ("Терапевтическое отделение", (("109", "Врач-терапевт"), ("109", "Врач-терапевт"))),
    ("Кардиологическое отделение", (("34", "Врач-кардиолог"), ("34", "Врач-кардиолог"))),
    ("Неврологическое отделение", (("45", "Врач-невролог"),)),
    ("Консультативно-диагностическая поликлиника", (("110", "Врач-терапевт участковый"),
                                                    ("35", "Врач клинической лабораторной диагностики"),
                                                    ("121", "Врач функциональной диагностики"))),
)


def scanned_pdf(size: int) -> bytes:
    """A PDF of about ``size`` bytes: one page whose content is an incompressible image stream, like a scan (the
    large-document tests and benchmarks)."""
    scan = random.Random(42).randbytes(size)  # noqa: S311 - filler bytes
    return pdf.assemble([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /XObject << /Im1 5 0 R >> >> >>",
        b"<< /Length 33 >>\nstream\nq 595 0 0 842 0 0 cm /Im1 Do Q\nendstream",
        b"<< /Type /XObject /Subtype /Image /Width 4096 /Height 4096 /ColorSpace /DeviceGray /BitsPerComponent 8"
        b" /Filter /DCTDecode /Length " + str(len(scan)).encode() + b" >>\nstream\n" + scan + b"\nendstream"])


def make_snils(rng: random.Random) -> str:
    return snils.complete(f"{rng.randint(2_000_000, 999_999_999):09d}")


def make_patient(rng: random.Random, local_id: str, *, sparse: bool = False, snils_ok: bool = True,
                 child: bool = False) -> Patient:
    """An adult (born 1940-2004) or, when ``child``, a school-age child (born 2010-2021)."""
    sex = rng.choice((1, 2))
    family, given, patronymic = rng.choice(MALE if sex == 1 else FEMALE)
    number = make_snils(rng)
    if not snils_ok:
        number = number[:9] + f"{(int(number[9:]) + 1 + rng.randint(0, 50)) % 100:02d}"
    if child:
        birth = dt.date(2010, 1, 1) + dt.timedelta(days=rng.randint(0, 365 * 12))
    else:
        birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randint(0, 365 * 65))
    if sparse:
        return Patient(local_id, family, given, None, birth, sex, number)
    address = Address(f"г. Москва, {rng.choice(STREETS)}, д. {rng.randint(1, 90)}, кв. {rng.randint(1, 300)}", "77",
                      f"11{rng.randint(7000, 9999)}")
    policy = oms_policy.complete(f"{rng.randint(10**14, 10**15 - 1)}")   # a ЕНП with its control digit
    if child:       # a child has a birth certificate, not a passport, and the МИС keeps a parent's phone elsewhere
        return Patient(local_id, family, given, patronymic, birth, sex, number, address, None, policy, None,
                       rng.choice(INSURERS))
    identity = IdentityDocument(1, f"{rng.randint(45, 46)}{rng.randint(0, 24):02d}", f"{rng.randint(0, 999999):06d}",
                                "ГУ МВД России по г. Москве", birth + dt.timedelta(days=365 * 20 + rng.randint(0, 900)))
    return Patient(local_id, family, given, patronymic, birth, sex, number, address,
                   f"+7916{rng.randint(1_000_000, 9_999_999)}", policy, identity, rng.choice(INSURERS))


def insurer_code(patient: Patient) -> str | None:
    """The СМО code of the patient's policy issuer, for the МИС's oms_insurer_code."""
    return INSURER_CODES.get(patient.oms_insurer or "")


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


# Kind 41: what each generated department treats (by DEPARTMENTS index): the main disease (МКБ-10) with its wording
# at admission and at leaving, the treatment, and the advice at discharge.
STAY_PROFILES = (
    (("I11.9", "Гипертензивная [гипертоническая] болезнь с преимущественным поражением сердца без (застойной) "
               "сердечной недостаточности"),
     "Гипертоническая болезнь II стадии, неконтролируемая артериальная гипертензия",
     "Гипертоническая болезнь II стадии, риск 4",
     "Лозартан 100 мг/сут, амлодипин 5 мг/сут, метформин 1000 мг 2 раза в день.",
     "Стол № 10, ограничение соли до 5 г/сут.",
     "Лозартан 100 мг/сут, амлодипин 5 мг/сут длительно; контроль АД ежедневно; наблюдение участкового терапевта."),
    (("I48.0", "Пароксизмальная форма фибрилляции предсердий"),
     "Пароксизм фибрилляции предсердий",
     "Пароксизмальная форма фибрилляции предсердий, синусовый ритм восстановлен медикаментозно",
     "Амиодарон 1200 мг в/в капельно, далее 200 мг/сут внутрь; апиксабан 5 мг 2 раза в день.",
     "Стол № 10, ограничение соли до 5 г/сут, отказ от алкоголя.",
     "Апиксабан 5 мг 2 раза в день и амиодарон 200 мг/сут длительно; наблюдение кардиолога через 7 дней."),
    (("G45.9", "Транзиторная церебральная ишемическая атака неуточненная"),
     "Транзиторная ишемическая атака в вертебрально-базилярном бассейне",
     "Транзиторная ишемическая атака в вертебрально-базилярном бассейне от начала госпитализации, регресс "
     "симптоматики",
     "Ацетилсалициловая кислота 100 мг/сут, аторвастатин 40 мг/сут.",
     "Ограничение соли и животных жиров, дозированная ходьба.",
     "Ацетилсалициловая кислота 100 мг/сут и аторвастатин 40 мг/сут длительно; наблюдение невролога."),
)


LAB_NAMES = {p.service_code: p.service_name for p in codes.LAB_PANELS}
# Diseases that come along as a concomitant diagnosis: chronic ones, not an acute cold or a TIA.
CHRONIC_GROUPS = ("hypertension", "ischaemia", "diabetes", "stomach", "gallbladder", "back")


class Generator:
    def __init__(self, seed: int = 1, mo: Organization = MO, rng: random.Random | None = None,
                 staff: list[Staff] | None = None, id_prefix: str = "", tz: dt.tzinfo = MSK) -> None:
        self.rng = rng or random.Random(seed)  # noqa: S311 - synthetic data, not secrets
        self.tz = tz
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
        return dt.datetime.combine(day, dt.time(hour, 0), self.tz) + dt.timedelta(minutes=self.rng.randint(0, 240))

    def _profile(self, patient: Patient | None, day: dt.date, wanted: Callable[[Profile], bool] = lambda p: True,
                 ) -> Profile:
        """A disease that fits the patient's age and what the case needs of it (a study, a referral target)."""
        pool = [p for p in clinical.PROFILES.values() if clinical.fits(p, patient, day) and wanted(p)]
        return self.rng.choice(pool or [p for p in clinical.PROFILES.values() if clinical.fits(p, patient, day)])

    def _diagnoses(self, profile: Profile, patient: Patient | None, day: dt.date, *,
                   sparse: bool) -> tuple[Diagnosis, ...]:
        main = Diagnosis(profile.icd10, profile.name)
        others = [p for p in clinical.PROFILES.values() if p.group in CHRONIC_GROUPS and p.group != profile.group
                  and clinical.fits(p, patient, day)]
        if sparse or not others:
            return (main,)
        other = self.rng.choice(others)
        return (main, Diagnosis(other.icd10, other.name, role="concomitant"))

    def _life_anamnesis(self, patient: Patient | None, day: dt.date) -> str:
        """Habits and history that fit the patient: no smoking for a child, no pregnancy for a man."""
        if patient is not None and clinical.age(patient, day) < clinical.ADULT_AGE:
            return "Рос и развивался соответственно возрасту. Прививки по календарю. Аллергологический анамнез не " \
                   "отягощён."
        years = clinical.age(patient, day) - 17 if patient is not None else 20
        smoking = f"Курит {self.rng.randint(1, max(1, min(years, 40)))} лет." if self.rng.random() < 0.3 \
            else "Не курит."
        pregnancy = " Беременность отрицает." if patient is not None and patient.sex == 2 \
            and clinical.age(patient, day) <= 45 else ""
        return f"{smoking} Аллергологический анамнез не отягощён.{pregnancy}"

    def _context(self, kind: int, author: Staff, created: dt.datetime, patient: Patient) -> DocumentContext:
        return DocumentContext(f"{kind}-{self._next('D')}", 1, created, self.mo, patient, author)

    def patient(self, *, sparse: bool = False, child: bool = False) -> Patient:
        return make_patient(self.rng, self._next("P"), sparse=sparse, child=child)

    # --- kind 41: one document per department stay -------------------------------------------------
    def hospitalisation(self, day: dt.date, *, departments: int = 2, sparse: bool = False,
                        patient: Patient | None = None) -> Hospitalisation:
        """A stay of one to three departments, handed over at each transfer, discharged the day before ``day``.

        An adult's: the departments are adult ones.
        """
        start = self._moment(day - dt.timedelta(days=3 * departments + 1), 10)
        deps = [department(self.mo, 1 + n % 3) for n in range(departments)]
        stays = []
        for n, dep in enumerate(deps):
            begin = start + dt.timedelta(days=3 * n)
            last = n == departments - 1
            end = begin + dt.timedelta(days=3, hours=-2 if last else 0)
            doctor = self.rng.choice([s for s in self.staff if s.department == dep] or self.staff)
            following = None if last else deps[n + 1]
            stays.append(self._stay(dep, begin, end, doctor, following, sparse=sparse, patient=patient))
        first = clinical.PROFILES[stays[0].diagnoses[0].icd10]
        return Hospitalisation(self._next("H"), start, stays[-1].ended_at, self.rng.random() < 0.5, tuple(stays),
                               None if sparse else first.complaints, None if sparse else first.anamnesis,
                               None if sparse else "Улучшение")

    def _work(self, patient: Patient | None, end: dt.datetime, *, transferred: bool) -> str:
        """Work advice: a sick-leave for a working-age adult, none for a pensioner."""
        if patient is not None and clinical.age(patient, end.date()) >= clinical.RETIREMENT_AGE:
            return "Пенсионер по возрасту, не работает: листок нетрудоспособности не оформлялся."
        if transferred:
            return "Временно нетрудоспособна." if patient is not None and patient.sex == 2 \
                else "Временно нетрудоспособен."
        return (f"Листок нетрудоспособности закрыт {end:%d.%m.%Y}, "
                f"приступить к работе {end + dt.timedelta(days=1):%d.%m.%Y}.")

    def _stay(self, dep: Department, begin: dt.datetime, end: dt.datetime, doctor: Staff,
              following: Department | None, *, sparse: bool, patient: Patient | None) -> DepartmentStay:
        """One department's part; ``following`` is the department the patient is transferred to."""
        (icd10, name), at_admission, final, treatment, diet, advice = _stay_profile(dep)
        if sparse:     # the result is no option: the МИС records it at every discharge and transfer
            return DepartmentStay(dep, begin, end, doctor, (Diagnosis(icd10, name),), transferred=bool(following),
                                  result=3 if following else 2)
        profile = clinical.PROFILES[icd10]
        concomitant = Diagnosis("E11.9", "Инсулиннезависимый сахарный диабет без осложнений", "concomitant",
                                "Сахарный диабет 2 типа")
        day = begin.date() + dt.timedelta(days=1)
        services = [self.service(day, SERVICE_INSTRUMENTAL, patient=patient, profile=profile),
                    self.service(day, SERVICE_LAB, patient=patient, profile=profile)]
        if following:   # a specialist of the next department advised the transfer, for that department's disease
            nxt = clinical.PROFILES[_stay_profile(following)[0][0]]
            consultation = self.service(end.date() - dt.timedelta(days=1), SERVICE_VISIT, from_hospital=True,
                                        patient=patient, profile=nxt)
            services.append(replace(consultation, referred_from=dep, referred_by=doctor))
            condition = f"Состояние стабильное, переводится для дальнейшего лечения в {following.name.lower()}."
            advice = f"Продолжить лечение: {following.name.lower()}."
        else:
            condition = "Жалоб нет. АД 130/80 мм рт. ст., ЧСС 68 в минуту, ритм синусовый."
        return DepartmentStay(
            dep, begin, end, doctor, (Diagnosis(icd10, name, note=final), concomitant), condition, treatment, advice,
            transferred=bool(following), admission_diagnoses=(Diagnosis(icd10, name, note=at_admission),),
            admission_state=2, discharge_state=2 if following else 1, result=3 if following else 2,
            surgery="Не проводились.", diet=diet, work=self._work(patient, end, transferred=bool(following)),
            services=tuple(services))

    # --- kinds 42, 186, 119, 174, 43: from a visit ---------------------------------------------------
    def service(self, day: dt.date, type_: str, *, sparse: bool = False, from_hospital: bool = False,
                patient: Patient | None = None, profile: Profile | None = None) -> Service:
        """A service for ``profile``'s disease (else one that fits the patient and the service)."""
        performed = self._moment(day, 10)
        if type_ == SERVICE_LAB:
            profile = profile or self._profile(patient, day)
            panel = next(p for p in codes.LAB_PANELS if p.service_code == profile.labs[0])
            return self.lab_study(performed, panel, sparse=sparse, patient=patient, profile=profile)
        if type_ == SERVICE_INSTRUMENTAL:
            if profile is None or profile.study is None:
                profile = self._profile(patient, day, lambda p: p.study is not None)
            study = next(s for s in codes.INSTRUMENTAL_STUDIES if s[0] == profile.study)
            return self.instrumental_study(performed, study, sparse=sparse, patient=patient, profile=profile)
        return self.consultation(performed, sparse=sparse, from_hospital=from_hospital, patient=patient,
                                 profile=profile)

    def consultation(self, performed: dt.datetime, *, sparse: bool = False, from_hospital: bool = False,
                     patient: Patient | None = None, profile: Profile | None = None) -> Service:
        """A specialist's consultation, asked for by a hospital department when ``from_hospital``."""
        day = performed.date()
        if profile is None or profile.consultant is None:
            profile = self._profile(patient, day, lambda p: p.consultant is not None)
        assert profile.consultant is not None  # noqa: S101 - every age has a disease a specialist sees
        code, name = clinical.CONSULTANTS[profile.consultant]
        stay_dep = department(self.mo, 1) if from_hospital else None
        in_stay = from_hospital and not sparse      # the МИС links the consultation to the patient's stay
        return Service(self._next("U"), code, name, SERVICE_VISIT, performed, self._doctor(profile.consultant),
                       referred_from=stay_dep, referral_id=self._next("N") if from_hospital else None,
                       referred_at=performed - dt.timedelta(days=1) if from_hospital else None,
                       referred_by=self._doctor("109") if from_hospital else None,
                       diagnoses=self._diagnoses(profile, patient, day, sparse=sparse),
                       complaints=None if sparse else profile.complaints,
                       findings=profile.objective, conclusion=profile.conclusion,
                       recommendations=None if sparse else profile.recommendations,
                       anamnesis=None if sparse else profile.anamnesis,
                       life_anamnesis=None if sparse else self._life_anamnesis(patient, day),
                       condition=self.rng.choice((1, 2)),     # the protocol always records the state
                       case_id=self._next("H") if in_stay else None,
                       case_started_at=performed - dt.timedelta(days=2, hours=3) if in_stay else None)

    def instrumental_study(self, performed: dt.datetime, study: tuple[str, str, str, str, str, tuple[str, str]], *,
                           sparse: bool = False, diagnosed: bool = True, patient: Patient | None = None,
                           profile: Profile | None = None) -> Service:
        """A study by the functional diagnostics doctor; rich: ordered by a therapist's referral the day before.

        The reason is ``profile``'s disease, else one the study is done for; the protocol is the disease's own
        when it has one (atrial fibrillation on an ECG), else the study's usual one.
        """
        code, name, findings, conclusion, recommendations, _ = study
        day = performed.date()
        if profile is None or profile.study != code:
            profile = self._profile(patient, day, lambda p: p.study == code)
        if profile.study_findings:
            (findings, conclusion), recommendations = profile.study_findings, profile.recommendations
        referred = not sparse
        diagnoses = self._diagnoses(profile, patient, day, sparse=sparse) if diagnosed else ()
        return Service(self._next("U"), code, name, SERVICE_INSTRUMENTAL, performed, self._doctor("121"),
                       referral_id=self._next("N") if referred else None,
                       referred_at=performed - dt.timedelta(days=1, hours=2) if referred else None,
                       referred_by=self._doctor("109") if referred else None,
                       diagnoses=diagnoses, findings=findings, conclusion=conclusion,
                       recommendations=None if sparse else recommendations)

    def lab_study(self, performed: dt.datetime, panel: codes.LabPanel, *, sparse: bool = False,
                  patient: Patient | None = None, profile: Profile | None = None) -> Service:
        """A lab study by the КДЛ doctor on blood taken two hours earlier, for ``profile``'s disease.

        Rich: every test of the panel with the patient's reference range (by sex and age), values low, normal or
        high and flagged so, the lab's comment on those out of range, the specimen's container, volume and nurse,
        the analyser, a therapist's referral (an adult's) and the outpatient case.
        Sparse: the panel's first test with neither range nor interpretation, nothing optional.
        """
        day = performed.date()
        if profile is None or panel.service_code not in profile.labs:
            profile = self._profile(patient, day, lambda p: panel.service_code in p.labs)
        taken = performed - dt.timedelta(hours=2)
        tests = panel.tests[:1] if sparse else panel.tests
        states = self._lab_states(tests, profile, sparse=sparse)
        results = tuple(self._lab_result(t, state, patient, day, sparse=sparse) for t, state in zip(tests, states,
                                                                                                     strict=True))
        barcode = f"{performed:%y%m%d}{self.rng.randint(0, 9999):04d}"
        specimen = Specimen(barcode, *panel.material) if sparse else Specimen(
            barcode, *panel.material, received_at=taken + dt.timedelta(minutes=45), volume_ml=panel.volume_ml,
            container=f"{panel.container}, штрихкод {barcode}",
            collected_by=make_staff(self.rng, "S4901", department(self.mo, 4), codes.NURSE))
        # The МО's therapists see adults only: a child's study has no referral of theirs.
        referred = not sparse and (patient is None or clinical.age(patient, day) >= clinical.ADULT_AGE)
        return Service(self._next("U"), panel.service_code, panel.service_name, SERVICE_LAB, performed,
                       self._doctor("35"), referral_id=self._next("N") if referred else None,
                       referred_at=taken - dt.timedelta(days=1) if referred else None,
                       referred_by=self._doctor("109") if referred else None,
                       diagnoses=(Diagnosis(profile.icd10, profile.name),),
                       conclusion=None if sparse else _lab_conclusion(results), lab_results=results,
                       specimen_taken_at=taken, specimen=specimen,
                       case_id=None if sparse else self._next("V"),
                       case_started_at=None if sparse else taken - dt.timedelta(days=1, hours=1),
                       analyser_id=None if sparse else f"AN-{panel.service_code[-3:]}",
                       analyser_name=None if sparse else panel.analyser)

    def _lab_states(self, tests: tuple[tuple[str, str, str | None, float, float], ...], profile: Profile, *,
                    sparse: bool) -> list[str]:
        """N, L or H per test: mostly one result out of range either way, sometimes none; the disease's own."""
        states = ["N"] * len(tests)
        if not sparse and self.rng.random() < 0.8:
            states[self.rng.randrange(len(tests))] = self.rng.choice(("L", "H"))
        for n, test in enumerate(tests):
            states[n] = clinical.LAB_EFFECTS.get((profile.icd10, test[0]), states[n])
        return states

    def _lab_result(self, test: tuple[str, str, str | None, float, float], state: str, patient: Patient | None,
                    day: dt.date, *, sparse: bool = False) -> LabResult:
        code, name, unit, low, high = test
        low, high = clinical.reference_range(code, patient, day) or (low, high)
        if state == "H":
            raw = high * self.rng.uniform(1.05, 1.8)
        elif state == "L":
            raw = low * self.rng.uniform(0.55, 0.95)
        else:
            raw = self.rng.uniform(low, high)
        value = round(raw, 1)
        if sparse:
            return LabResult(code, name, f"{value:g}", unit)
        flag = "L" if value < low else "H" if value > high else "N"
        comment = "Результат вне референсного интервала, рекомендовано повторное исследование." \
            if flag != "N" else None
        return LabResult(code, name, f"{value:g}", unit, f"{low:g}", f"{high:g}", flag, comment=comment)

    def referral(self, day: dt.date, kind: str, doctor: Staff, *, sparse: bool = False,
                 urgent: bool | None = None, patient: Patient | None = None,
                 profile: Profile | None = None) -> Referral:
        """A referral of ``kind`` for ``profile``'s disease (else one it suits); ``urgent`` (hospitalisations only)
        defaults to "unless sparse". The target (bed profile, specialist, panel, study) follows the disease.

        Sparse: no НСИ 1070 service code, and the target МО known by its id and name only, as the МИС stores it.
        """
        if profile is None or not clinical.has_target(profile, kind):
            profile = self._profile(patient, day, lambda p: clinical.has_target(p, kind))
        code, service = clinical.referral_target(profile, kind, LAB_NAMES)
        target = Organization(REFERRAL_TARGET.oid, REFERRAL_TARGET.name) if sparse else REFERRAL_TARGET
        urgent = not sparse if urgent is None else urgent
        return Referral(self._next("R"), kind, self._moment(day, 11), doctor, target, service,
                        Diagnosis(profile.icd10, profile.name),
                        f"{clinical.REFERRAL_REASONS[kind]}: {profile.disease}.",
                        urgent=urgent and kind == "hospitalisation", service_code=None if sparse else code)

    def visit(self, day: dt.date, *, sparse: bool = False, report: bool = False,
              referrals: tuple[str, ...] = (), services: tuple[str, ...] = (),
              patient: Patient | None = None) -> Visit:
        """A therapist's visit (an adult's): the disease fits the patient and every referral and service asked."""
        doctor = self._doctor("109")
        start = self._moment(day)

        def wanted(p: Profile) -> bool:
            return all(clinical.has_target(p, k) for k in referrals) and (
                SERVICE_INSTRUMENTAL not in services or p.study is not None) and (
                SERVICE_VISIT not in services or p.consultant is not None)
        profile = self._profile(patient, day, wanted)
        signed = None
        if report:
            signed = SignedReport("Протокол осмотра терапевта", "protocol.pdf",
                                  pdf.simple_pdf("Протокол осмотра", [f"Визит {start:%d.%m.%Y}"]),
                                  start + dt.timedelta(minutes=30))
        return Visit(self._next("V"), start, start + dt.timedelta(minutes=25), doctor,
                     self._diagnoses(profile, patient, day, sparse=sparse),
                     None if sparse else profile.complaints, None if sparse else profile.anamnesis,
                     None if sparse else profile.objective, profile.conclusion,
                     None if sparse else profile.recommendations,
                     services=tuple(self.service(day, t, sparse=sparse, patient=patient, profile=profile)
                                    for t in services),
                     referrals=tuple(self.referral(day, k, doctor, sparse=sparse, patient=patient, profile=profile)
                                     for k in referrals),
                     report=signed)

    # --- whole cases -----------------------------------------------------------------------------------
    def case(self, kind: int, day: dt.date, variant: int = 0) -> Case:
        """A case of ``kind``; ``variant`` cycles through the shapes that matter for that kind.

        Patients are adults, but in kind 186 variants 4, 10, 16, … (a child's blood count, children's ranges).
        """
        sparse = variant % 3 == 2
        patient = self.patient(sparse=sparse, child=kind == 186 and variant % 6 == 4)
        if kind == 41:
            # (departments, which stay): discharges from 2, 3 and 1 departments, then transfers out of a middle and
            # a first department (variant 5: sparse).
            departments, index = ((2, -1), (3, -1), (1, -1), (1, -1), (3, 1), (2, 0))[variant % 6]
            hosp = self.hospitalisation(day, departments=departments, sparse=sparse, patient=patient)
            index %= departments
            stay = hosp.stays[index]
            if patient.oms_policy is None:      # 41.sch demands the policy (У1-48): even a sparse record has it
                patient = replace(patient, oms_policy=oms_policy.complete(f"{self.rng.randint(10**14, 10**15 - 1)}"),
                                  oms_insurer=self.rng.choice(INSURERS))
            ctx = self._context(41, stay.doctor, stay.ended_at + dt.timedelta(hours=1), patient)
            heads = [s for s in self.staff if s.department == stay.department and s != stay.doctor]
            if heads and not sparse:            # the head of the department signs
                ctx = replace(ctx, legal_authenticator=heads[0])
            return Case(41, ctx, hosp, index)
        if kind == 42:
            visit = self.visit(day, sparse=sparse, report=variant % 3 == 1, patient=patient)
            return Case(42, self._context(42, visit.doctor, visit.ended_at, patient), visit)
        if kind == 43:
            kind_of = REFERRAL_KINDS[variant % len(REFERRAL_KINDS)]
            doctor = self._doctor("109")
            # 0 urgent hospitalisation, 1 consultation, 2 lab (sparse), 3 diagnostic, 4 planned hospitalisation
            ref = self.referral(day, kind_of, doctor, sparse=sparse, urgent=variant % 8 == 0, patient=patient)
            return Case(43, self._context(43, doctor, ref.issued_at, patient), ref)
        if kind == 119:     # even variants: referred from a hospital department; odd: no referral data
            svc = self.service(day, SERVICE_VISIT, sparse=sparse, from_hospital=variant % 2 == 0, patient=patient)
            return Case(119, self._context(119, svc.performer, svc.performed_at + dt.timedelta(minutes=40),
                                           patient), svc)
        if kind == 174:     # even variants ECG, odd ultrasound; variant 5 (sparse) has no diagnosis at all
            svc = self.instrumental_study(self._moment(day, 10), codes.INSTRUMENTAL_STUDIES[variant % 2],
                                          sparse=sparse, diagnosed=variant != 5, patient=patient)
            return Case(174, self._context(174, svc.performer, svc.performed_at + dt.timedelta(minutes=40),
                                           patient), svc)
        if kind == 186:     # variants: a blood count and a biochemistry panel in turn, every third one sparse
            svc = self.lab_study(self._moment(day, 10), codes.LAB_PANELS[variant % len(codes.LAB_PANELS)],
                                 sparse=sparse, patient=patient)
            return Case(186, self._context(186, svc.performer, svc.performed_at + dt.timedelta(minutes=40),
                                           patient), svc)
        raise ValueError(f"no generated cases for СЭМД kind {kind}")


def _stay_profile(dep: Department) -> tuple[tuple[str, str], str, str, str, str, str]:
    return STAY_PROFILES[[d[0] for d in DEPARTMENTS].index(dep.name) % len(STAY_PROFILES)]


def _lab_conclusion(results: tuple[LabResult, ...]) -> str:
    flagged = [f"{'Повышение' if r.interpretation == 'H' else 'Снижение'}: {r.test_name.split(',')[0]} {r.value} "
               f"{r.unit}" for r in results if r.interpretation in ("H", "L")]
    if not flagged:
        return "Все показатели в пределах референсных интервалов."
    return "; ".join(flagged) + ". Остальные показатели в пределах референсных интервалов."
