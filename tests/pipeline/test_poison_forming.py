"""A builder's or a signer's unforeseen exception on one record stays that record's: forming and signing go on
with the others, and the failed one shows «Ошибка: …» instead of stopping the period."""

import datetime as dt

import psycopg

from iemk_etl import settings
from iemk_etl.devtools import demo_data
from iemk_etl.pipeline import forming, sign
from iemk_etl.signing.keystore import KeyStore

from semd_helpers import new_visit

END = dt.date(2026, 10, 11)
GKB = demo_data.DEMO_MO[0][0]
DAY = END + dt.timedelta(days=3)
BOUNDS = (dt.datetime.combine(DAY, dt.time(), demo_data.MSK),
          dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(), demo_data.MSK))


def _statuses(conn) -> dict[str, str]:
    return dict(conn.execute("SELECT local_uid, status FROM mis.semd_document WHERE local_uid IN"
                             " ('42-BAD-1', '42-OK-1', '42-OK-2')").fetchall())


def test_a_builder_exception_is_that_documents_error_and_the_period_goes_on(fresh_dsn, monkeypatch):
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=3, days=1, seed=5, end=END, fail_share=0.0, unsigned_share=0.0)
        for name in ("OK-1", "BAD-1", "OK-2"):
            new_visit(conn, GKB, DAY, name)
        real = forming.build

        def build(case):
            if case.context.local_uid == "42-BAD-1":
                raise ZeroDivisionError("division by zero")
            return real(case)

        monkeypatch.setattr(forming, "build", build)
        report = forming.form_period(conn, GKB, *BOUNDS)
        assert report.formed == {42: 2}
        formed = _statuses(conn)
        assert formed["42-OK-1"] == formed["42-OK-2"] == "Не подписан"
        assert formed["42-BAD-1"] == ("Ошибка: СЭМД не сформирован: Внутренняя ошибка iemk-etl (сообщите "
                                      "администратору): ZeroDivisionError: division by zero")
        monkeypatch.setattr(forming, "build", real)           # fixed: forming again repairs it
        assert forming.form_period(conn, GKB, *BOUNDS).total == 1
        assert _statuses(conn)["42-BAD-1"] == "Не подписан"

        real_sign = sign.cades.sign_document
        bad_id = conn.execute("SELECT id FROM mis.semd_document WHERE local_uid = '42-BAD-1'").fetchone()[0]

        def sign_document(data, kind_code, author, org):
            if b"42-BAD-1" in data:
                raise ValueError("unforeseen")
            return real_sign(data, kind_code, author, org)

        monkeypatch.setattr(sign.cades, "sign_document", sign_document)
        signing = sign.sign_period(conn, KeyStore(settings.load()), GKB, *BOUNDS, [42])
        assert len(signing.signed) == 2 and signing.errors == {bad_id: "INTERNAL"}
        after = _statuses(conn)
        assert after["42-OK-1"] == after["42-OK-2"] == "Подписан"
        assert after["42-BAD-1"].startswith("Ошибка: не удалось подписать СЭМД: Внутренняя ошибка iemk-etl")
