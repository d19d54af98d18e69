"""What the generator writes about a disease: one small table per МКБ-10 code it codes, and lab reference ranges.

The texts of a generated case follow its coded main diagnosis (complaints, anamnesis, findings, conclusion,
advice), who is consulted, which lab panel and study are ordered and where a referral goes all come from the
diagnosis' row here, and the row says whether the disease fits a child. Every code and name below exists in the
demo dictionary set (``devtools/nsi_demo``): МКБ-10 in 1005 v2.24, services in 1070 v2.10, positions in 1002 v9.6.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from iemk_etl.semd.model import (
    REFERRAL_CONSULTATION,
    REFERRAL_DIAGNOSTIC,
    REFERRAL_HOSPITALISATION,
    REFERRAL_LAB,
    Patient,
)

ADULT_AGE = 18
RETIREMENT_AGE = 65       # past it, no sick-leave or work advice: the generated pensioners do not work

CBC = "B03.016.002"       # Общий (клинический) анализ крови
BIOCHEMISTRY = "B03.016.004"
ECG = "A05.10.006"
ECHO = "A04.10.002"
ABDOMINAL_US = "A04.16.001"
STUDY_NAMES = {ECG: "Регистрация электрокардиограммы", ECHO: "Эхокардиография",
               ABDOMINAL_US: "Ультразвуковое исследование органов брюшной полости (комплексное)"}
# A consultant's position (НСИ 1002) → the consultation service (НСИ 1070).
CONSULTANTS = {
    "34": ("B01.015.001", "Прием (осмотр, консультация) врача-кардиолога первичный"),
    "45": ("B01.023.001", "Прием (осмотр, консультация) врача-невролога первичный"),
}


@dataclass(frozen=True)
class Profile:
    """One disease as a generated case tells it."""

    icd10: str
    name: str                        # НСИ 1005 MKB_NAME
    disease: str                     # how a doctor writes it in a sentence (lower case)
    group: str                       # diseases of one group are never main and concomitant together
    child: bool                      # fits a patient under ADULT_AGE
    complaints: str
    anamnesis: str
    objective: str
    conclusion: str                  # names the disease
    recommendations: str
    labs: tuple[str, ...]            # НСИ 1070 lab panels ordered for it
    consultant: str | None = None    # НСИ 1002 position of the specialist consulted (CONSULTANTS)
    study: str | None = None         # the instrumental study done for it (kind 174)
    referral_study: str | None = None   # the study a diagnostic referral asks for
    hospital_profile: str | None = None  # the bed profile a hospitalisation referral names
    study_findings: tuple[str, str] | None = None   # its own (findings, conclusion) of ``study``, if not the default


PROFILES: dict[str, Profile] = {p.icd10: p for p in (
    Profile("I10", "Эссенциальная [первичная] гипертензия", "гипертоническая болезнь", "hypertension", False,
            "Головная боль в затылочной области, повышение АД до 165/100 мм рт. ст.",
            "Повышение АД отмечает в течение 5 лет, регулярно лечение не получал.",
            "Состояние удовлетворительное. Тоны сердца ритмичные, акцент II тона над аортой. АД 160/95 мм рт. ст., "
            "ЧСС 76 в минуту.",
            "Гипертоническая болезнь I стадии, артериальная гипертензия 2 степени, риск 2.",
            "Ограничение соли до 5 г/сут; периндоприл 5 мг/сут; дневник АД; повторный прием через 2 недели.",
            (BIOCHEMISTRY, CBC), consultant="34", study=ECG, referral_study=ECHO, hospital_profile="Кардиология"),
    Profile("I11.9", "Гипертензивная [гипертоническая] болезнь с преимущественным поражением сердца без "
                     "(застойной) сердечной недостаточности", "гипертоническая болезнь с поражением сердца",
            "hypertension", False,
            "Головная боль, одышка при быстрой ходьбе, повышение АД до 180/100 мм рт. ст.",
            "Артериальная гипертензия в течение 10 лет, принимает эналаприл 10 мг 2 раза в день нерегулярно.",
            "Состояние удовлетворительное. Границы сердца расширены влево, акцент II тона над аортой. "
            "АД 170/100 мм рт. ст., ЧСС 78 в минуту. Отёков нет.",
            "Гипертоническая болезнь II стадии с гипертрофией левого желудочка, без сердечной недостаточности, "
            "риск 3.",
            "Лозартан 100 мг/сут, амлодипин 5 мг/сут; контроль АД ежедневно; ЭхоКГ планово.",
            (BIOCHEMISTRY, CBC), consultant="34", study=ECG, referral_study=ECHO, hospital_profile="Кардиология"),
    Profile("I25.1", "Атеросклеротическая болезнь сердца", "ишемическая болезнь сердца", "ischaemia", False,
            "Давящие боли за грудиной при подъёме на 2 этаж, проходящие в покое за 3-5 минут.",
            "Боли при нагрузке отмечает в течение года, нитроглицерин купирует приступ.",
            "Состояние удовлетворительное. Тоны сердца приглушены, ритмичные. АД 135/85 мм рт. ст., "
            "ЧСС 68 в минуту.",
            "Ишемическая болезнь сердца: атеросклеротическая болезнь сердца, стенокардия напряжения II ФК.",
            "Ацетилсалициловая кислота 100 мг/сут, аторвастатин 40 мг/сут, бисопролол 5 мг/сут; нагрузочная проба.",
            (BIOCHEMISTRY, CBC), consultant="34", study=ECG, referral_study=ECHO, hospital_profile="Кардиология"),
    Profile("I48.0", "Пароксизмальная форма фибрилляции предсердий", "фибрилляция предсердий", "arrhythmia", False,
            "Приступы учащённого неритмичного сердцебиения до 2 часов, слабость.",
            "Пароксизмы фибрилляции предсердий в течение 2 лет, последний 3 дня назад.",
            "Состояние удовлетворительное. Тоны сердца ритмичные. АД 130/80 мм рт. ст., ЧСС 72 в минуту.",
            "Пароксизмальная форма фибрилляции предсердий, вне пароксизма; риск по CHA2DS2-VASc 2 балла.",
            "Апиксабан 5 мг 2 раза в день, бисопролол 5 мг/сут; холтеровское мониторирование ЭКГ.",
            (BIOCHEMISTRY, CBC), consultant="34", study=ECG, referral_study=ECHO, hospital_profile="Кардиология",
            study_findings=(
                "Ритм неправильный, волны f, ЧСС 96-118 в минуту. Электрическая ось сердца не отклонена. QRS 0,09 с. "
                "Сегмент ST на изолинии.",
                "Фибрилляция предсердий, тахисистолическая форма, ЧСС 96-118 в минуту.")),
    Profile("E11.9", "Инсулиннезависимый сахарный диабет без осложнений", "сахарный диабет 2 типа", "diabetes", False,
            "Сухость во рту, жажда, учащённое мочеиспускание.",
            "Сахарный диабет 2 типа выявлен 3 года назад, принимает метформин 1000 мг 2 раза в день.",
            "Состояние удовлетворительное. ИМТ 31 кг/м². Пульсация на артериях стоп сохранена.",
            "Сахарный диабет 2 типа без осложнений, целевой уровень HbA1c менее 7,0 %.",
            "Метформин 1000 мг 2 раза в день; диета с ограничением углеводов; самоконтроль глюкозы.",
            (BIOCHEMISTRY,), hospital_profile="Эндокринология"),
    Profile("G45.9", "Транзиторная церебральная ишемическая атака неуточненная", "транзиторная ишемическая атака",
            "cerebral", False,
            "Эпизод онемения правой руки и нарушения речи около 30 минут, полностью прошёл.",
            "Эпизод произошёл 2 дня назад впервые; страдает артериальной гипертензией.",
            "Сознание ясное, ориентация в месте и времени сохранена. Парезов нет, сухожильные рефлексы D=S, "
            "менингеальных знаков нет.",
            "Транзиторная ишемическая атака в бассейне левой средней мозговой артерии, регресс симптоматики.",
            "Ацетилсалициловая кислота 100 мг/сут, аторвастатин 40 мг/сут; дуплексное сканирование брахиоцефальных "
            "артерий.",
            (BIOCHEMISTRY, CBC), consultant="45", study=ECG, referral_study=ECG, hospital_profile="Неврология"),
    Profile("M54.5", "Боль внизу спины", "боль в нижней части спины", "back", False,
            "Ноющая боль в поясничной области, усиливающаяся при наклонах.",
            "Боль возникла неделю назад после подъёма тяжести.",
            "Ограничение движений в поясничном отделе, напряжение паравертебральных мышц. Симптомов натяжения нет, "
            "чувствительность сохранена.",
            "Боль внизу спины (люмбалгия), мышечно-тонический синдром.",
            "Мелоксикам 7,5 мг/сут 7 дней; лечебная физкультура; избегать подъёма тяжестей.",
            (CBC,), consultant="45", hospital_profile="Неврология"),
    Profile("J06.9", "Острая инфекция верхних дыхательных путей неуточненная",
            "острая инфекция верхних дыхательных путей", "infection", True,
            "Насморк, першение в горле, температура до 37,8 °C в течение 2 дней.",
            "Заболевание началось остро 2 дня назад после контакта с больным ОРВИ.",
            "Состояние удовлетворительное. Зев гиперемирован, миндалины не увеличены. Дыхание везикулярное, хрипов "
            "нет. Температура 37,4 °C.",
            "Острая инфекция верхних дыхательных путей (ОРВИ), лёгкое течение.",
            "Обильное тёплое питьё, парацетамол при температуре выше 38,5 °C; повторный осмотр через 3 дня.",
            (CBC,)),
    Profile("K29.7", "Гастрит неуточненный", "гастрит", "stomach", True,
            "Ноющая боль в эпигастрии после еды, тошнота.",
            "Боли беспокоят около месяца, связывает с нерегулярным питанием.",
            "Состояние удовлетворительное. Живот мягкий, умеренно болезненный в эпигастрии. Печень по краю рёберной "
            "дуги.",
            "Гастрит, обострение.",
            "Дробное щадящее питание; омепразол 20 мг 2 раза в день 14 дней.",
            (CBC, BIOCHEMISTRY), study=ABDOMINAL_US, referral_study=ABDOMINAL_US,
            hospital_profile="Гастроэнтерология",
            study_findings=(
                "Печень не увеличена, контуры ровные, эхоструктура однородная. Желчный пузырь 68×28 мм, стенка 2 мм, "
                "просвет однородный. Холедох 4 мм. Поджелудочная железа не увеличена. Селезёнка не увеличена. "
                "Свободной жидкости в брюшной полости нет.",
                "Эхографических признаков очаговой патологии органов брюшной полости не выявлено; гастрит "
                "ультразвуком не оценивается, показана ФГДС.")),
    Profile("K80.2", "Камни желчного пузыря без холецистита", "желчнокаменная болезнь", "gallbladder", False,
            "Тяжесть в правом подреберье после жирной пищи.",
            "Тяжесть в правом подреберье беспокоит полгода.",
            "Живот мягкий, безболезненный, симптомы Ортнера и Мерфи отрицательные.",
            "Желчнокаменная болезнь: камни желчного пузыря без холецистита.",
            "Диета с ограничением жирного; консультация хирурга о плановой холецистэктомии.",
            (BIOCHEMISTRY, CBC), study=ABDOMINAL_US, referral_study=ABDOMINAL_US, hospital_profile="Хирургия"),
)}


def age(patient: Patient, on: dt.date) -> int:
    born = patient.birth_date
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def fits(profile: Profile, patient: Patient | None, on: dt.date) -> bool:
    return patient is None or profile.child or age(patient, on) >= ADULT_AGE


def has_target(profile: Profile, kind: str) -> bool:
    """Whether a referral of ``kind`` makes sense for the disease (a cold is not sent to hospital)."""
    return {REFERRAL_HOSPITALISATION: profile.hospital_profile is not None,
            REFERRAL_CONSULTATION: profile.consultant is not None,
            REFERRAL_LAB: True,
            REFERRAL_DIAGNOSTIC: profile.referral_study is not None}[kind]


# The reason a referral gives, by its kind; the disease follows the colon.
REFERRAL_REASONS = {
    REFERRAL_HOSPITALISATION: "Стационарное обследование и лечение",
    REFERRAL_CONSULTATION: "Консультация специалиста для уточнения диагноза и коррекции лечения",
    REFERRAL_LAB: "Лабораторное обследование",
    REFERRAL_DIAGNOSTIC: "Инструментальное обследование для уточнения диагноза",
}


def referral_target(profile: Profile, kind: str, lab_names: dict[str, str]) -> tuple[str | None, str]:
    """The НСИ 1070 service (None for a hospitalisation, which names a bed profile) and its name."""
    if kind == REFERRAL_HOSPITALISATION:
        assert profile.hospital_profile  # noqa: S101 - callers pick a profile with has_target
        return None, profile.hospital_profile
    if kind == REFERRAL_CONSULTATION:
        assert profile.consultant  # noqa: S101
        return CONSULTANTS[profile.consultant]
    if kind == REFERRAL_DIAGNOSTIC:
        assert profile.referral_study  # noqa: S101
        return profile.referral_study, STUDY_NAMES[profile.referral_study]
    return profile.labs[0], lab_names[profile.labs[0]]


# --- lab reference ranges by sex and age -------------------------------------------------------------------------
# НСИ 1080 test → (men, women, children under ADULT_AGE): (low, high) in the panel's unit. Adult ranges of the usual
# Russian lab handbooks; children's for school age.
LAB_RANGES: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "1017128": ((130.0, 160.0), (120.0, 140.0), (115.0, 145.0)),   # гемоглобин, г/л
    "1017375": ((4.0, 5.0), (3.5, 4.7), (3.9, 5.0)),               # эритроциты, 10^12/л
    "1017359": ((40.0, 48.0), (36.0, 42.0), (35.0, 45.0)),         # гематокрит, %
    "1017441": ((80.0, 99.0), (80.0, 99.0), (77.0, 95.0)),         # MCV, фл
    "1017425": ((27.0, 34.0), (27.0, 34.0), (25.0, 33.0)),         # MCH, пг
    "1017979": ((4.0, 9.0), (4.0, 9.0), (4.5, 13.5)),              # лейкоциты, 10^9/л
    "1017862": ((180.0, 320.0), (180.0, 320.0), (160.0, 390.0)),   # тромбоциты, 10^9/л
    "1003870": ((3.9, 6.1), (3.9, 6.1), (3.3, 5.6)),               # глюкоза, ммоль/л
    "1006477": ((62.0, 115.0), (53.0, 97.0), (27.0, 62.0)),        # креатинин, мкмоль/л
}


def reference_range(test_code: str, patient: Patient | None, on: dt.date) -> tuple[float, float] | None:
    """The range for this patient; None when the test has none here (the panel's own range is then used)."""
    ranges = LAB_RANGES.get(test_code)
    if ranges is None:
        return None
    if patient is not None and age(patient, on) < ADULT_AGE:
        return ranges[2]
    return ranges[1] if patient is not None and patient.sex == 2 else ranges[0]


# A disease that moves a test one way: (МКБ-10, НСИ 1080) → "H" or "L".
LAB_EFFECTS = {("E11.9", "1003870"): "H"}
