"""The emulated patient index (ГИП behind ИЭМК): what a PIX add or revise does, and how it is answered."""

from __future__ import annotations

import re

from iemk_etl.emulator.store import Store
from iemk_etl.protocol import snils
from iemk_etl.protocol.hl7v3.common import PatientRecord
from iemk_etl.protocol.hl7v3.pix import ADD, Acknowledgement, FeedMessage

# ФРМО OIDs, and the legacy МО registry form still seen in the public sample.
_MO_OID = re.compile(r"^1\.2\.643\.5\.1\.13\.(13\.12\.2|3\.25)\.\d+\.\d+$")


def _error(record: PatientRecord, text: str) -> Acknowledgement:
    return Acknowledgement("CE", text, record.label)


def check(record: PatientRecord, known_mo: frozenset[str] | None) -> Acknowledgement | None:
    if not record.mo_oid or not record.local_id:
        return _error(record, "Не указан идентификатор пациента (patient/id @root = OID МО, @extension = локальный)")
    if (known_mo is not None and record.mo_oid not in known_mo) or not _MO_OID.match(record.mo_oid):
        return _error(record, f"Element providerOrganization. MO code: [{record.mo_oid}] is not actual.")
    if not record.family or not record.given:
        return _error(record, f"Пациент [{record.label}]: не указаны фамилия и имя (patientPerson/name)")
    if not record.birth_time:
        return _error(record, f"Пациент [{record.label}]: не указана дата рождения (patientPerson/birthTime)")
    if record.snils and not snils.is_valid(record.snils):
        return _error(record, f"[CRE-122]: PAT-001; Пациент не определен: [СНИЛС [{record.snils}] не валидно "
                              "контрольное число]")
    return None


def _same_person(a: PatientRecord, b: PatientRecord) -> bool:
    return (a.family, a.given, a.patronymic, a.birth_time) == (b.family, b.given, b.patronymic, b.birth_time)


def apply_feed(store: Store, feed: FeedMessage, known_mo: frozenset[str] | None) -> Acknowledgement:
    record = feed.patient
    problem = check(record, known_mo)
    if problem:
        return problem
    existing = store.patient(record.mo_oid, record.local_id)
    if feed.interaction == ADD and existing is not None and not _same_person(existing, record):
        # ГИП keys patients by МО + local id: an "add" that disagrees with what it holds is a mismatch, not an update.
        return _error(record, f"Указанное значение [{record.family}] [{record.given}] не соответствует данным ГИП "
                              f"[{existing.family}] [{existing.given}]. Пациент найден по локальному идентификатору")
    if feed.interaction != ADD and existing is None:
        return _error(record, f"Пациент [{record.label}] не найден: изменение невозможно")
    store.save_patient(record)
    return Acknowledgement("CA", f"Пациент [{record.label}] обработан успешно", record.label)
