"""The МИС data a СЭМД is built from: who (МО, patient, staff) and what (visit, stay, service, referral).

Builders take these plain values and nothing else, so the same builder serves documents formed from the
МИС database (``source``), from generated cases (``generate``) and in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from iemk_etl.settings import DEFAULT_MIS_NUMBER


@dataclass(frozen=True)
class Address:
    text: str                    # the full postal address as one line
    region_code: str             # НСИ 1.2.643.5.1.13.13.99.2.206 «Субъекты Российской Федерации», e.g. "77"
    postal_code: str | None = None
    fias_aoguid: str | None = None      # ФИАС: the street (адресообразующий объект)
    fias_houseguid: str | None = None   # ФИАС: the house


@dataclass(frozen=True)
class Organization:
    oid: str                     # ФРМО OID, НСИ 1.2.643.5.1.13.13.11.1461
    name: str
    address: Address | None = None
    phone: str | None = None     # "+74951234567"
    ogrn: str | None = None      # ОГРН, 13 digits
    mis_number: str = DEFAULT_MIS_NUMBER   # the arcs of our identifiers under ``oid`` (IEMK_MIS_NUMBER)


@dataclass(frozen=True)
class Department:
    oid: str                     # <МО OID>.0.<n>, ФРМО structural unit
    name: str


@dataclass(frozen=True)
class IdentityDocument:
    type_code: int               # НСИ 1.2.643.5.1.13.13.99.2.48, 1 = паспорт гражданина РФ
    series: str
    number: str
    issued_by: str | None = None
    issued_on: date | None = None


@dataclass(frozen=True)
class Patient:
    local_id: str
    family: str
    given: str
    patronymic: str | None
    birth_date: date
    sex: int                     # НСИ 1.2.643.5.1.13.13.11.1040: 1 мужской, 2 женский
    snils: str | None
    address: Address | None = None
    phone: str | None = None
    oms_policy: str | None = None      # ЕНП, the 16-digit single policy number
    identity: IdentityDocument | None = None
    oms_insurer: str | None = None     # the СМО that issued the policy


@dataclass(frozen=True)
class Staff:
    local_id: str
    family: str
    given: str
    patronymic: str | None
    snils: str
    position_code: str           # НСИ 1.2.643.5.1.13.13.11.1002 «Должности работников»
    position_name: str
    phone: str | None = None
    department: Department | None = None


Person = Patient | Staff


@dataclass(frozen=True)
class Diagnosis:
    icd10: str                   # МКБ-10, НСИ 1.2.643.5.1.13.13.11.1005
    name: str
    role: str = "main"           # main | complication | concomitant
    note: str | None = None


@dataclass(frozen=True)
class LabResult:
    test_code: str               # НСИ 1.2.643.5.1.13.13.11.1080 «Федеральный справочник лабораторных исследований»
    test_name: str
    value: str
    unit: str | None = None      # UCUM / НСИ 1358 unit, None for a qualitative result
    low: str | None = None
    high: str | None = None
    interpretation: str | None = None  # N | H | L
    specimen: str | None = None
    comment: str | None = None         # the lab's comment on this result (kind 186)


@dataclass(frozen=True)
class Specimen:
    """The biomaterial a lab study was done on (kind 186), as the lab registered it."""

    barcode: str                 # the container's barcode, the МИС id of the specimen
    material_code: str           # НСИ 1.2.643.5.1.13.13.99.2.1019 «Справочник лабораторных материалов»
    material_name: str
    received_at: datetime | None = None   # when the material reached the lab
    volume_ml: str | None = None
    container: str | None = None          # e.g. «Вакуумная пробирка с K3-ЭДТА»
    collected_by: Staff | None = None     # the nurse who took the material


@dataclass(frozen=True)
class Service:
    """A medical service rendered at a visit: «Анализ», «Посещение» or an instrumental study."""

    local_id: str
    code: str                    # НСИ 1.2.643.5.1.13.13.11.1070 «Номенклатура медицинских услуг»
    name: str
    type: str                    # see SERVICE_TYPES
    performed_at: datetime
    performer: Staff
    referred_from: Department | None = None   # a hospital department that referred the patient (consultation)
    referral_id: str | None = None
    referred_at: datetime | None = None
    referred_by: Staff | None = None
    diagnoses: tuple[Diagnosis, ...] = ()
    findings: str | None = None        # protocol text of an instrumental study or a consultation
    conclusion: str | None = None
    recommendations: str | None = None
    complaints: str | None = None
    lab_results: tuple[LabResult, ...] = ()
    specimen_taken_at: datetime | None = None
    # A consultation's protocol (kind 119) also records these.
    anamnesis: str | None = None         # анамнез заболевания
    life_anamnesis: str | None = None    # анамнез жизни
    condition: int | None = None         # НСИ 1.2.643.5.1.13.13.11.1006 «Степень тяжести состояния пациента»
    repeat: bool = False                 # НСИ 1007: a repeat consultation in the same case
    case_id: str | None = None           # the case the service belongs to (история болезни, талон)
    case_started_at: datetime | None = None
    # A lab study's protocol (kind 186) also records these.
    specimen: Specimen | None = None
    analyser_id: str | None = None       # the lab analyser in the МИС's equipment register
    analyser_name: str | None = None     # its make and model


SERVICE_LAB = "Анализ"
SERVICE_VISIT = "Посещение"
SERVICE_INSTRUMENTAL = "Инструментальное исследование"
SERVICE_TYPES = (SERVICE_LAB, SERVICE_VISIT, SERVICE_INSTRUMENTAL)


@dataclass(frozen=True)
class Referral:
    """An outgoing referral (form 057/у-04) issued at a visit."""

    local_id: str
    kind: str                    # see REFERRAL_KINDS
    issued_at: datetime
    doctor: Staff
    target: Organization
    target_service: str          # the specialty, study or profile the patient is referred to
    diagnosis: Diagnosis
    reason: str
    urgent: bool = False
    # НСИ 1.2.643.5.1.13.13.11.1070 code of target_service when the referral asks for one service (a specialist's
    # consultation, a lab test, a study); a hospitalisation names a profile and has none.
    service_code: str | None = None


REFERRAL_HOSPITALISATION = "hospitalisation"
REFERRAL_CONSULTATION = "consultation"
REFERRAL_LAB = "lab"
REFERRAL_DIAGNOSTIC = "diagnostic"
REFERRAL_KINDS = (REFERRAL_HOSPITALISATION, REFERRAL_CONSULTATION, REFERRAL_LAB, REFERRAL_DIAGNOSTIC)


@dataclass(frozen=True)
class SignedReport:
    """A report template filled at a visit and signed, flagged TO_IEMK: sent as PDF inside the СЭМД."""

    name: str
    file_name: str
    content: bytes
    signed_at: datetime


@dataclass(frozen=True)
class Visit:
    local_id: str
    started_at: datetime
    ended_at: datetime
    doctor: Staff
    diagnoses: tuple[Diagnosis, ...]
    complaints: str | None = None
    anamnesis: str | None = None
    objective: str | None = None
    conclusion: str | None = None
    recommendations: str | None = None
    services: tuple[Service, ...] = ()
    referrals: tuple[Referral, ...] = ()
    report: SignedReport | None = None
    service_code: str = "B01.047.001"     # the visit itself as a service (НСИ 1070)
    service_name: str = "Прием (осмотр, консультация) врача-терапевта первичный"
    repeat: bool = False                  # НСИ 1007: a repeat visit in the same case


@dataclass(frozen=True)
class DepartmentStay:
    department: Department
    started_at: datetime
    ended_at: datetime
    doctor: Staff
    diagnoses: tuple[Diagnosis, ...]
    condition: str | None = None        # the patient's state and course in the department
    treatment: str | None = None
    recommendations: str | None = None
    transferred: bool = False           # left for another department rather than discharged
    # What the department's discharge epicrisis (kind 41) also records.
    admission_diagnoses: tuple[Diagnosis, ...] = ()   # диагноз при поступлении в отделение
    admission_state: int | None = None   # НСИ 1.2.643.5.1.13.13.11.1006 «Степень тяжести состояния пациента»
    discharge_state: int | None = None   # the same table, at discharge or transfer
    result: int | None = None            # НСИ 1.2.643.5.1.13.13.11.1046 «Результаты обращения (госпитализации)»
    surgery: str | None = None           # хирургические вмешательства, as text
    diet: str | None = None              # рекомендации по режиму и диете
    work: str | None = None              # трудовые рекомендации
    services: tuple[Service, ...] = ()   # studies, lab tests and consultations done in the department


@dataclass(frozen=True)
class Hospitalisation:
    local_id: str                       # the case (история болезни) number
    admitted_at: datetime
    discharged_at: datetime
    urgent: bool
    stays: tuple[DepartmentStay, ...]
    complaints: str | None = None
    anamnesis: str | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class DocumentContext:
    """What every document's header says: which document, whose, by whom, where."""

    local_uid: str
    version: int
    created_at: datetime
    mo: Organization
    patient: Patient
    author: Staff
    legal_authenticator: Staff | None = None   # who signs off; the author when None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def signer(self) -> Staff:
        return self.legal_authenticator or self.author


@dataclass(frozen=True)
class Case:
    """One document to form: its kind, its header context and the МИС record it is formed from."""

    kind: int
    context: DocumentContext
    subject: Visit | Service | Referral | Hospitalisation
    stay_index: int = 0          # kind 41: which department stay of the hospitalisation
