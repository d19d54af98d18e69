"""Small builders of test documents (not fixtures, so tests can vary them)."""

from __future__ import annotations

import datetime as dt

from iemk_etl import cda

MO = cda.Organization("1.2.643.5.1.13.13.12.2.77.7801", "ГБУЗ «ГКБ № 1»")


def header(*, snils: str = "11223344595", local_uid: str = "D-1") -> cda.DocumentHeader:
    patient = cda.Patient("P-1", "Иванов", "Иван", "Иванович", snils, dt.date(1980, 1, 2), 1)
    author = cda.Author("S-1", "Петрова", "Анна", "Сергеевна", "11223344595", "109", "врач-терапевт")
    return cda.DocumentHeader(42, local_uid, 1, dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC), MO, patient, author)


def document(*, omit: tuple[str, ...] = (), **kw: str) -> bytes:
    return cda.build(header(**kw), sections=[("Заключение", "Здоров")], omit=omit)
