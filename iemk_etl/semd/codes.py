"""The small НСИ code tables the builders need, each with its OID and the version the documents cite.

Only the codes iemk-etl itself uses or generates live here; a МИС's own codes pass through as given
(name and code from the МИС record, table OID and version from here).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CodeTable:
    oid: str
    version: str
    name: str


ICD10 = CodeTable("1.2.643.5.1.13.13.11.1005", "2.24",
                  "Международная классификация болезней и состояний, связанных со здоровьем 10 пересмотра. Версия 4")
SERVICES = CodeTable("1.2.643.5.1.13.13.11.1070", "2.10", "Номенклатура медицинских услуг")
CASE_ORDER = CodeTable("1.2.643.5.1.13.13.11.1007", "2.1",
                       "Вид случая госпитализации или обращения (первичный, повторный)")
CARE_KINDS = CodeTable("1.2.643.5.1.13.13.11.1034", "4.2", "Виды медицинской помощи")
DIAGNOSIS_KINDS = CodeTable("1.2.643.5.1.13.13.11.1076", "3.1", "Виды медицинских диагнозов")
NOSOLOGY_ROLES = CodeTable("1.2.643.5.1.13.13.11.1077", "2.1", "Виды нозологических единиц диагноза")
CARE_PLACES = CodeTable("1.2.643.5.1.13.13.11.1008", "5.1", "Место оказания медицинской помощи")
POSITIONS = CodeTable("1.2.643.5.1.13.13.11.1002", "9.6",
                      "Должности работников организаций медицинского и фармацевтического профиля")
SEX = CodeTable("1.2.643.5.1.13.13.11.1040", "2.1", "Пол пациента")
CONFIDENTIALITY = CodeTable("1.2.643.5.1.13.13.99.2.285", "1.2", "Уровень конфиденциальности медицинского документа")
DOC_TYPES = CodeTable("1.2.643.5.1.13.13.11.1522", "7.24", "Виды медицинской документации")
REGIONS = CodeTable("1.2.643.5.1.13.13.99.2.206", "6.3", "Субъекты Российской Федерации")

SECTIONS = CodeTable("1.2.643.5.1.13.13.99.2.197", "4.2", "Секции CDA документов")
CODED_FIELDS = CodeTable("1.2.643.5.1.13.13.99.2.166", "2.1", "Кодируемые поля CDA документов")
IDENTITY_DOCS = CodeTable("1.2.643.5.1.13.13.99.2.48", "5.1", "Документы, удостоверяющие личность")
POLICY_TYPES = CodeTable("1.2.643.5.1.13.13.11.1035", "1.3", "Виды полиса обязательного медицинского страхования")
ADDRESS_TYPES = CodeTable("1.2.643.5.1.13.13.11.1504", "1.3", "Тип адреса пациента")
PAYMENT_SOURCES = CodeTable("1.2.643.5.1.13.13.11.1039", "4.3", "Источники оплаты медицинской помощи")
BASIS_DOCS = CodeTable("1.2.643.5.1.13.13.99.2.724", "1.1", "Типы документов оснований")
# The legacy guides' ОМС policy id root: the registry of insurers (СМО) cited by ИЭМК's protocol notes.
SMO_OID = "1.2.643.5.1.13.2.1.1.635"

# Diagnosis roles of the model → НСИ 1077 «Виды нозологических единиц диагноза».
NOSOLOGY = {"main": ("1", "Основное заболевание"), "complication": ("2", "Осложнение основного заболевания"),
            "concomitant": ("3", "Сопутствующее заболевание")}

SEX_NAMES = {1: "Мужской", 2: "Женский", 3: "Неопределенный"}
IDENTITY_DOC_NAMES = {1: "Паспорт гражданина Российской Федерации", 3: "Свидетельство о рождении"}
REGION_NAMES = {"77": "г. Москва", "50": "Московская область", "78": "г. Санкт-Петербург"}

# (МКБ-10 code, name) pairs the generator draws from.
ICD10_COMMON = (
    ("I10", "Эссенциальная [первичная] гипертензия"),
    ("I11.9", "Гипертензивная [гипертоническая] болезнь с преимущественным поражением сердца без (застойной) "
              "сердечной недостаточности"),
    ("I25.1", "Атеросклеротическая болезнь сердца"),
    ("E11.9", "Инсулиннезависимый сахарный диабет без осложнений"),
    ("J06.9", "Острая инфекция верхних дыхательных путей неуточненная"),
    ("M54.5", "Боль внизу спины"),
    ("K29.7", "Гастрит неуточненный"),
)

# Lab services (НСИ 1070) the generator draws from: see ``LabPanel`` in the kind 186 block below.
# Instrumental studies (НСИ 1070): code, name, findings (the protocol), conclusion, recommendations and the diagnosis
# (МКБ-10) the study is usually ordered for. Each code needs its ФСИДИ row in FSIDI_BY_SERVICE (kind 174 below).
INSTRUMENTAL_STUDIES = (
    ("A05.10.006", "Регистрация электрокардиограммы",
     "Ритм синусовый, правильный, ЧСС 78 в минуту. Электрическая ось сердца отклонена влево (угол альфа -15°). "
     "PQ 0,16 с; QRS 0,09 с; QT 0,38 с; QTc 0,43 с. Признаки гипертрофии левого желудочка (индекс "
     "Соколова-Лайона 38 мм). Сегмент ST на изолинии, зубец T положительный в I, II, aVF, V3-V6.",
     "Синусовый ритм, ЧСС 78 в минуту. Отклонение электрической оси сердца влево. Признаки гипертрофии левого "
     "желудочка.",
     "Эхокардиография в плановом порядке, консультация кардиолога.",
     ICD10_COMMON[1]),
    ("A04.16.001", "Ультразвуковое исследование органов брюшной полости (комплексное)",
     "Печень: правая доля 148 мм, левая доля 62 мм, контуры ровные, эхоструктура однородная. Желчный пузырь "
     "78×32 мм, стенка 2 мм, в просвете подвижные гиперэхогенные конкременты до 12 мм с акустической тенью. "
     "Холедох 4 мм. Поджелудочная железа не увеличена, структура однородная. Селезёнка 104×42 мм. Свободной "
     "жидкости в брюшной полости нет.",
     "Эхографические признаки желчнокаменной болезни (конкременты желчного пузыря). Признаков холецистита не "
     "выявлено.",
     "Консультация хирурга.",
     ("K80.2", "Камни желчного пузыря без холецистита")),
)

# Specialist consultations («Посещение»): НСИ 1070 code and name, the consultant's position (НСИ 1002),
# objective findings, conclusion.
CONSULTATIONS = (
    ("B01.015.001", "Прием (осмотр, консультация) врача-кардиолога первичный", "34",
     "Тоны сердца ритмичные, приглушены, акцент II тона над аортой. ЧСС 78 в минуту, АД 150/90 мм рт. ст.",
     "Гипертоническая болезнь II стадии, риск 3."),
    ("B01.023.001", "Прием (осмотр, консультация) врача-невролога первичный", "45",
     "В сознании, ориентирован. Менингеальных знаков нет. Черепные нервы без особенностей. Парезов нет, "
     "сухожильные рефлексы D=S, в позе Ромберга устойчив.",
     "Дисциркуляторная энцефалопатия I стадии."),
)

# --- kind 119 ---
CONDITIONS = CodeTable("1.2.643.5.1.13.13.11.1006", "2.4", "Степень тяжести состояния пациента")
CONDITION_NAMES = {1: "Удовлетворительное", 2: "Средней тяжести", 3: "Тяжелое", 4: "Крайне тяжелое",
                   5: "Клиническая смерть", 6: "Терминальное"}
# The serviceEvent code of a consultation: checked against 99.2.726 v3.10 in the ФНСИ mirror (the newest public copy;
# the 3.38 cited before has none).
EVENT_TYPES = CodeTable("1.2.643.5.1.13.13.99.2.726", "3.10", "Типы документированных событий")
# НСИ 1008 (v5.1): where the consultation took place.
CARE_PLACE_OUTPATIENT = ("1", "Амбулаторно-поликлиническое учреждение")
CARE_PLACE_HOSPITAL = ("7", "Стационар")

# --- kind 43 ---
# Verified against ФНСИ 1009 v2.5 (12 rows; the 057/у-04 rows are 1, 2, 3, 4, 6 and 10).
REFERRAL_TYPES = CodeTable("1.2.643.5.1.13.13.11.1009", "2.5", "Виды медицинских направлений")
REFERRAL_HOSPITALISATION_TYPES = {False: ("1", "На плановую госпитализацию"),
                                  True: ("2", "На госпитализацию по экстренным показаниям")}
# The model's referral kinds other than hospitalisation. 1009 has one «обследование» row, so a lab referral and an
# instrumental one share it; their requested service (НСИ 1070) tells them apart.
REFERRAL_TYPE_CODES = {"consultation": ("6", "На консультацию"), "lab": ("4", "На обследование"),
                       "diagnostic": ("4", "На обследование")}
# НСИ 1076 v3.1 has no «диагноз направившего учреждения» row; the referring doctor's diagnosis is a preliminary one
# (the code is verified, the guide's choice of it is not).
REFERRAL_DIAGNOSIS_KIND = ("1", "Предварительный клинический диагноз")
# The services (НСИ 1070) generated referrals ask for, by referral kind; a hospitalisation asks for a profile only.
REFERRAL_SERVICES = {
    "consultation": ("B01.015.001", "Прием (осмотр, консультация) врача-кардиолога первичный"),
    "lab": ("B03.016.002", "Общий (клинический) анализ крови"),
    "diagnostic": ("A04.10.002", "Эхокардиография"),
}

# --- kind 174 ---
# Checked against the ФНСИ mirror (1CMedicine/semd_validator data/fnsi): 1551 v1.1 (1 плановая, 2 экстренная,
# 3 неотложная) and 99.2.322 v3.1; 99.2.726 v3.9 has code 3 «Инструментальное исследование» (EVENT_TYPES above).
CARE_FORMS = CodeTable("1.2.643.5.1.13.13.11.1551", "1.1", "Формы оказания медицинской помощи")
CARE_CONDITIONS = CodeTable("1.2.643.5.1.13.13.99.2.322", "3.1", "Условия оказания медицинской помощи")
# НСИ 1471 «Федеральный справочник инструментальных диагностических исследований» (ФСИДИ): kind 174 codes the study
# in it (rule У3-5). A МИС records the НСИ 1070 service, so each study it renders needs a row here: the 1070 code
# (1471's «Код НМУ» column) → the ФСИДИ code and name. A service missing here is refused, not guessed.
# Checked against 1471 v2.38 in the ФНСИ mirror (devtools/nsi_demo): 7014145 and 7005408, whose «Код НМУ» (NMU)
# columns list A05.10.006 and A04.16.001.
FSIDI = CodeTable("1.2.643.5.1.13.13.11.1471", "2.38", "Федеральный справочник инструментальных диагностических "
                                                     "исследований")
FSIDI_BY_SERVICE: dict[str, tuple[str, str]] = {
    "A05.10.006": ("7014145", "Электрокардиография"),
    "A04.16.001": ("7005408", "Ультразвуковое исследование органов брюшной полости"),
}

# --- kind 41 ---
# 1006 v2.4 is checked against the ФНСИ mirror (1CMedicine/semd_validator data/fnsi). 41.sch checks only the OIDs of
# the rest: UNVERIFIED codes and names of 99.2.256, 1046 and 1373 (the mirror has no copy; the names are the ones
# public МИС send to РЭМД) — check them on the НСИ portal before production use. 1373's version is unknown, so
# documents cite none (the attribute is optional).
SEVERITY = CodeTable("1.2.643.5.1.13.13.11.1006", "2.4", "Степень тяжести состояния пациента")
SEVERITY_NAMES = {1: "Удовлетворительное", 2: "Средней тяжести", 3: "Тяжелое", 4: "Крайне тяжелое",
                  5: "Клиническая смерть", 6: "Терминальное"}
URGENCY = CodeTable("1.2.643.5.1.13.13.99.2.256", "1.1", "Срочность госпитализации")
URGENCY_CODES = {False: ("1", "Плановая"), True: ("2", "Экстренная")}
HOSPITAL_RESULTS = CodeTable("1.2.643.5.1.13.13.11.1046", "4.1", "Результаты обращения (госпитализации)")
HOSPITAL_RESULT_NAMES = {1: "Выздоровление", 2: "Улучшение", 3: "Без изменения", 4: "Ухудшение"}
DISCHARGE_DISPOSITIONS = CodeTable("1.2.643.5.1.13.13.11.1373", "", "Исходы госпитализации")
DISCHARGED = ("1", "Выписан")
TRANSFERRED = ("4", "Переведен на другой профиль коек")
# НСИ 1076 v3.1 (verified): the diagnosis at admission to a department is a preliminary one, the department's own
# at discharge or transfer the final one.
ADMISSION_DIAGNOSIS = ("1", "Предварительный клинический диагноз")
FINAL_DIAGNOSIS = ("3", "Заключительный клинический диагноз")

# --- kind 186 ---
# Checked against the ФНСИ mirror (1CMedicine/semd_validator data/fnsi): 1080 v3.42 (tests), 1358 v2.3 (units),
# 1034 v4.2, 99.2.166 v2.1 (fields 833/900/10000). UNVERIFIED (no copy in the mirror: the demo set carries our own
# constants for them, devtools/nsi_demo/SOURCES.md): 1437 v3.32 (profiles), 99.2.257 v1.1 (interpretations) and
# 99.2.1019 (materials; the code comes from the public ПЛИ Ред. 5 example).
LAB_TESTS = CodeTable("1.2.643.5.1.13.13.11.1080", "3.42",
                      "Федеральный справочник лабораторных исследований. Справочник лабораторных тестов")
LAB_UNITS = CodeTable("1.2.643.5.1.13.13.11.1358", "2.3", "Единицы измерения")
LAB_PROFILES = CodeTable("1.2.643.5.1.13.13.11.1437", "3.32", "ФСЛИ. Профили лабораторных исследований")
LAB_MATERIALS = CodeTable("1.2.643.5.1.13.13.99.2.1019", "1.5", "Справочник лабораторных материалов")
LAB_INTERPRETATIONS = CodeTable("1.2.643.5.1.13.13.99.2.257", "1.1",
                                "Интерпретация результатов лабораторных исследований")
LAB_INTERPRETATION_NAMES = {"N": "Нормальный (в пределах референсного диапазона)", "H": "Повышенный",
                            "L": "Пониженный"}
# НСИ 1358 units a МИС writes in lab results: (code, short name, UCUM). A result is matched by the short name or the
# UCUM code; a unit missing here is refused when forming, never guessed.
LAB_UNIT_ROWS = (
    ("13", "пг", "pg"), ("16", "мл", "ml"), ("20", "фл", "fl"), ("53", "%", "%"), ("60", "г/л", "g/l"),
    ("134", "Ед/л", "U/l"), ("195", "ммоль/л", "mmol/l"), ("198", "мкмоль/л", "umol/l"),
    ("322", "10^9/л", "10*9/l"), ("328", "10^12/л", "10*12/l"),
)
LAB_UNIT_ML = ("16", "мл", "ml")            # the volume of a specimen
# The НСИ 1437 profile a НСИ 1070 service is done as; a service missing here goes as «Отдельные лабораторные тесты».
LAB_PROFILE_BY_SERVICE = {"B03.016.002": ("10022", "Общий анализ крови (базовый)")}
MATERIAL_VENOUS_BLOOD = ("2", "Кровь венозная")
# НСИ 1551 / 99.2.322 / 1034 codes of a lab study done for an outpatient.
LAB_CARE_FORM = ("1", "плановая")
LAB_CARE_CONDITION = ("2", "Амбулаторно, в том числе на дому при вызове медицинского работника")
LAB_CARE_KIND = ("3", "Первичная специализированная медико-санитарная помощь")
NURSE = ("159", "Медицинская сестра")       # НСИ 1002 v9.6: who takes the material


@dataclass(frozen=True)
class LabPanel:
    """A lab service (НСИ 1070) as the generator renders it: its material and its tests."""

    service_code: str
    service_name: str
    material: tuple[str, str]       # НСИ 99.2.1019
    container: str
    volume_ml: str
    analyser: str
    tests: tuple[tuple[str, str, str | None, float, float], ...]   # НСИ 1080 code, name, НСИ 1358 unit, low, high


LAB_PANELS = (
    LabPanel("B03.016.002", "Общий (клинический) анализ крови", MATERIAL_VENOUS_BLOOD,
             "Вакуумная пробирка с K3-ЭДТА", "3", "Гематологический анализатор Sysmex XN-1000", (
                 ("1017128", "Гемоглобин общий, массовая концентрация в крови", "г/л", 130.0, 160.0),
                 ("1017375", "Эритроциты, количество в крови методом автоматизированного подсчёта", "10^12/л",
                  4.0, 5.0),
                 ("1017359", "Гематокрит крови методом автоматизированного подсчёта", "%", 40.0, 48.0),
                 ("1017441", "Средний объем эритроцита в крови методом автоматизированного подсчёта", "фл",
                  80.0, 99.0),
                 ("1017425", "Среднее содержание гемоглобина в эритроците в крови методом автоматизированного "
                             "подсчёта", "пг", 27.0, 34.0),
                 ("1017979", "Лейкоциты, количество в крови методом автоматизированного подсчёта", "10^9/л",
                  4.0, 9.0),
                 ("1017862", "Тромбоциты в крови методом автоматизированного подсчёта", "10^9/л", 180.0, 320.0),
             )),
    LabPanel("B03.016.004", "Анализ крови биохимический общетерапевтический", MATERIAL_VENOUS_BLOOD,
             "Вакуумная пробирка с активатором свёртывания и гелем", "5",
             "Биохимический анализатор Beckman Coulter AU480", (
                 ("1003870", "Глюкоза, молярная концентрация в сыворотке или плазме крови", "ммоль/л", 3.9, 6.1),
                 ("1006477", "Креатинин, молярная концентрация в сыворотке или плазме крови", "мкмоль/л",
                  62.0, 115.0),
             )),
)
