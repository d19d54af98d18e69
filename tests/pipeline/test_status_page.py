"""The Airflow UI page's content without Airflow: the form's period, and every value escaped (document ids, error
texts and run ids come from the МИС, ИЭМК and Airflow, none of them markup we trust)."""

import datetime as dt

import psycopg
import pytest

from iemk_etl import statuses
from iemk_etl.pipeline import status_page

MO = "1.2.643.5.1.13.13.12.2.77.9201"
UID = "<script>window.__x=1</script>"
REASON = 'ИЭМК отклонила документ: <img src=x onerror="alert(1)"> СНИЛС 112-233-445 95'


def test_the_form_period_defaults_to_the_last_week_and_refuses_nonsense():
    today = dt.date(2026, 3, 10)
    period = status_page.parse_period(None, None, "  ", "Europe/Moscow", today=today)
    assert (period.first, period.last, period.mo) == (dt.date(2026, 3, 4), today, None)
    assert status_page.parse_period("2026-03-01", "2026-03-03", "gkb", "Europe/Moscow").mo == "gkb"
    with pytest.raises(ValueError):
        status_page.parse_period("1 марта", None, None, "Europe/Moscow", today=today)
    with pytest.raises(ValueError, match="before it starts"):
        status_page.parse_period("2026-03-05", "2026-03-01", None, "Europe/Moscow")


def test_every_value_is_escaped_and_no_snils_is_shown(fresh_dsn):
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO mis.mo (oid, code, name, region) VALUES (%s, 'm1', 'M1', 77)", (MO,))
        conn.execute("INSERT INTO mis.patient (mo_oid, local_id, family, given, birth_date, sex, snils)"
                     " VALUES (%s, 'P1', 'Орлова', 'Вера', '1990-05-05', 2, '11223344595')", (MO,))
        conn.execute("INSERT INTO mis.staff (mo_oid, local_id, snils, family, given, position_code, position_name)"
                     " VALUES (%s, 'S1', '11223344595', 'Иванов', 'Иван', '73', 'врач')", (MO,))
        created = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
        doc = conn.execute(
            "INSERT INTO mis.semd_document (mo_oid, kind_code, patient_id, author_id, local_uid, created_at, signed_at,"
            " cda, status, status_at) SELECT %s, 41, p.id, s.id, %s, %s, %s, '\\x00', %s, %s"
            " FROM mis.patient p JOIN mis.staff s ON s.mo_oid = p.mo_oid RETURNING id",
            (MO, UID, created, created, statuses.error(REASON), created)).fetchone()[0]
        conn.execute("INSERT INTO iemk.ledger (mo_oid, unique_id, version, document_id, kind_code, signed_at, state,"
                     " content_hash, error_code, last_sent_at) VALUES (%s, 'u', 1, %s, 41, %s, 'rejected', 'h',"
                     " 'VALIDATION_ERROR', %s)", (MO, doc, created, created))
        period = status_page.parse_period("2026-03-01", "2026-03-03", None, "Europe/Moscow")
        page = status_page.load(conn, period)
    assert [s.document_id for s in page.sendings()] == [doc]
    html = status_page.render(page, {doc: status_page.RunLink("iemk_export__m1", 'manual__"><b>x')})
    for tag in ("<script", "<img", "<b>"):
        assert tag not in html
    assert "&lt;script&gt;window.__x=1&lt;/script&gt;" in html
    assert "112-233-445 95" not in html and "***-***-*** **" in html
    assert 'href="../dags/iemk_export__m1/runs/manual__%22%3E%3Cb%3Ex"' in html
    assert "manual__&quot;&gt;&lt;b&gt;x" in html
