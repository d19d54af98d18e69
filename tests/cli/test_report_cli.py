"""`iemk-etl report` and `status --from/--to --by`: a database seeded with documents of known statuses, kinds, days
and МО; the workbook, CSVs and plots read back and compared with what was seeded."""

import datetime as dt
import io
import json
import zipfile
from collections import Counter
from zoneinfo import ZoneInfo

import matplotlib.image
import openpyxl
import pandas as pd
import psycopg
import pytest

from iemk_etl import cli, statuses

MSK = ZoneInfo("Europe/Moscow")
ALPHA, BETA = "1.2.643.5.1.13.13.12.2.77.9001", "1.2.643.5.1.13.13.12.2.77.9002"
CODES = {ALPHA: "alpha", BETA: "beta"}
SNILS = "112-233-445 95"
E = statuses.ERROR_PREFIX

# (МО, kind, local creation time, МИС status, ledger state or None, ledger error code)
DOCS = [
    (ALPHA, 41, dt.datetime(2026, 3, 1, 9, 0), statuses.STORED, "stored", None),
    (ALPHA, 41, dt.datetime(2026, 3, 1, 10, 0), statuses.STORED, "stored", None),
    (ALPHA, 42, dt.datetime(2026, 3, 1, 23, 30), statuses.SENT, "sent", None),   # 20:30 UTC: still 1 March here
    (ALPHA, 42, dt.datetime(2026, 3, 2, 8, 0), E + "Ошибка форматного контроля (XSD): нет code", "invalid", "FLK_XSD"),
    (ALPHA, 186, dt.datetime(2026, 3, 2, 9, 0), E + "Ошибка форматного контроля (XSD): нет value", "invalid",
     "FLK_XSD"),
    (ALPHA, 186, dt.datetime(2026, 3, 3, 9, 0), statuses.NOT_SIGNED, None, None),
    (ALPHA, 41, dt.datetime(2026, 3, 3, 12, 0),
     E + "Сертификат ЭП для подписания запросов к ИЭМК не может быть использован", "valid", "SIGNING_KEY"),
    (BETA, 41, dt.datetime(2026, 3, 1, 11, 0), statuses.SIGNED, "queued", None),
    (BETA, 42, dt.datetime(2026, 3, 2, 11, 0), statuses.STORED, "stored", None),
    (BETA, 42, dt.datetime(2026, 3, 2, 12, 0), E + f"ИЭМК отклонила документ: пациент со СНИЛС {SNILS} не найден",
     "rejected", "PATIENT_NOT_FOUND"),
    (BETA, 186, dt.datetime(2026, 3, 3, 13, 0), E + "СЭМД не сформирован: нет результатов анализа", None, None),
    (BETA, 186, dt.datetime(2026, 3, 3, 14, 0), E + "ИЭМК временно не может обработать документ", "failed",
     "RATE_LIMIT"),
    # outside 1–3 March, local time: 28 Feb 23:59 and 4 March 00:30 (21:30 UTC on the 3rd)
    (ALPHA, 41, dt.datetime(2026, 2, 28, 23, 59), statuses.STORED, "stored", None),
    (BETA, 41, dt.datetime(2026, 3, 4, 0, 30), E + "ИЭМК отклонила документ", "rejected", "VALIDATION_ERROR"),
]
FIRST, LAST = dt.date(2026, 3, 1), dt.date(2026, 3, 3)
IN_PERIOD = [d for d in DOCS if FIRST <= d[2].date() <= LAST]


def _seed(conn):
    for oid, code in CODES.items():
        conn.execute("INSERT INTO mis.mo (oid, code, name, region) VALUES (%s, %s, %s, 77)", (oid, code, code.upper()))
        conn.execute("INSERT INTO mis.patient (mo_oid, local_id, family, given, birth_date, sex, snils)"
                     " VALUES (%s, 'P1', 'Орлова', 'Вера', '1990-05-05', 2, '11223344595')", (oid,))
        conn.execute("INSERT INTO mis.staff (mo_oid, local_id, snils, family, given, position_code, position_name)"
                     " VALUES (%s, 'S1', '11223344595', 'Иванов', 'Иван', '73', 'врач')", (oid,))
    for n, (oid, kind, created, status, state, code) in enumerate(DOCS):
        created = created.replace(tzinfo=MSK)
        signed = created if status != statuses.NOT_SIGNED else None
        doc = conn.execute(
            "INSERT INTO mis.semd_document (mo_oid, kind_code, patient_id, author_id, local_uid, created_at, signed_at,"
            " cda, status, status_at) SELECT %s, %s, p.id, s.id, %s, %s, %s, '\\x00', %s, %s"
            " FROM mis.patient p JOIN mis.staff s ON s.mo_oid = p.mo_oid WHERE p.mo_oid = %s RETURNING id",
            (oid, kind, f"D-{n}", created, signed, status, created + dt.timedelta(hours=1), oid)).fetchone()[0]
        if state:
            conn.execute("INSERT INTO iemk.ledger (mo_oid, unique_id, version, document_id, kind_code, signed_at,"
                         " state, content_hash, error_code, last_error) VALUES (%s, %s, 1, %s, %s, %s, %s, 'h', %s,"
                         " %s)",
                         (oid, f"{oid}.100.1.1.51^D-{n}", doc, kind, signed, state, code,
                          status.removeprefix(E) if code else None))


@pytest.fixture
def db(fresh_dsn, monkeypatch, tmp_path):
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        _seed(conn)
    monkeypatch.setenv("IEMK_SOURCE_DSN", fresh_dsn)
    monkeypatch.setenv("IEMK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IEMK_TIMEZONE", "Europe/Moscow")
    return fresh_dsn


def _expected(key) -> Counter:
    return Counter((key(d), statuses.family(d[3])) for d in IN_PERIOD)


def _wide(table: pd.DataFrame, key: str) -> Counter:
    """(key, status) → documents from a wide table, the zero cells left out."""
    return Counter({(row[key], s): int(row[s]) for _, row in table.iterrows() for s in statuses.ORDER if row[s]})


def test_report_writes_a_workbook_csvs_and_plots_with_the_databases_counts(db, tmp_path, capsys):
    out = tmp_path / "report"
    assert cli.main(["report", "--from", "2026-03-01", "--to", "2026-03-03", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"документов: {len(IN_PERIOD)}, в ошибке: 6" in printed

    with psycopg.connect(db) as conn:     # the database agrees with the seed: 12 documents created in the period
        assert conn.execute("SELECT count(*) FROM mis.semd_document WHERE created_at >= %s AND created_at < %s",
                            (dt.datetime(2026, 3, 1, tzinfo=MSK), dt.datetime(2026, 3, 4, tzinfo=MSK))
                            ).fetchone()[0] == len(IN_PERIOD)

    book = openpyxl.load_workbook(out / "report.xlsx")
    assert book.sheetnames[:5] == ["МО × статус", "Вид × статус", "День × статус", "Ошибки по ответственным",
                                   "Последние ошибки"]
    sheets = {name: pd.read_excel(out / "report.xlsx", sheet_name=name) for name in book.sheetnames[:5]}
    by_mo = sheets["МО × статус"]
    assert list(by_mo.columns) == ["МО", "OID МО", *statuses.ORDER, "Всего", "Сохранено, %"]
    assert _wide(by_mo, "МО") == _expected(lambda d: CODES[d[0]])
    assert by_mo.set_index("МО").loc["alpha", "Сохранено, %"] == pytest.approx(round(100 * 2 / 7, 1))
    assert _wide(sheets["Вид × статус"], "Вид СЭМД") == _expected(lambda d: d[1])
    by_day = sheets["День × статус"]
    assert _wide(by_day.assign(День=by_day["День"].dt.date), "День") == _expected(lambda d: d[2].date())
    assert by_day["Всего"].tolist() == [4, 4, 4]

    classes = sheets["Ошибки по ответственным"]
    got = {(r["Кто должен действовать"], r["Код ошибки"]): r["Документов"] for _, r in classes.iterrows()}
    assert got == {("МИС", "FLK_XSD"): 2, ("МИС", "PATIENT_NOT_FOUND"): 1, ("МИС", "SEMD_NOT_FORMED"): 1,
                   ("администратор", "SIGNING_KEY"): 1, ("ИЭМК", "RATE_LIMIT"): 1}
    assert classes["Кто должен действовать"].iloc[0] == "МИС"           # МИС first, the largest class first
    assert classes["Код ошибки"].iloc[0] == "FLK_XSD"

    latest = sheets["Последние ошибки"]
    assert len(latest) == 6 and latest["ID документа"].notna().all()
    assert latest["Идентификатор СЭМД"].iloc[0] == "D-11"               # the most recently changed first
    texts = " ".join(latest["Ошибка"])
    assert SNILS not in texts and "***-***-*** **" in texts            # no full СНИЛС in a report
    assert "Орлова" not in texts and "Иванов" not in texts

    for name, freeze in [("МО × статус", "B2"), ("День × статус", "B2"), ("Последние ошибки", "A2")]:
        assert book[name].freeze_panes == freeze
    assert book["Последние ошибки"].column_dimensions["I"].width > 20    # sized to the error texts
    with zipfile.ZipFile(out / "report.xlsx") as z:
        charts = [n for n in z.namelist() if n.startswith("xl/charts/chart")]
    assert len(charts) == 2

    for name, sheet in [("mo_status", "МО × статус"), ("kind_status", "Вид × статус"),
                        ("error_classes", "Ошибки по ответственным"), ("latest_errors", "Последние ошибки")]:
        csv = pd.read_csv(out / f"{name}.csv", encoding="utf-8-sig")
        xlsx = sheets[sheet]
        assert list(csv.columns) == list(xlsx.columns)
        pd.testing.assert_frame_equal(csv.drop(columns=["Время статуса"], errors="ignore"),
                                      xlsx.drop(columns=["Время статуса"], errors="ignore"), check_dtype=False)
    days = pd.read_csv(out / "day_status.csv", encoding="utf-8-sig")
    assert days["День"].tolist() == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert _wide(days, "День") == _expected(lambda d: d[2].date().isoformat())

    for plot in ("days.png", "mo_saved.png", "error_classes.png"):
        path = out / plot
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(path)
        assert image.shape[0] > 150 and image.shape[1] > 300, plot
        assert image.std() > 0.01, plot                                   # something drawn, not a blank canvas


def test_report_of_one_mo_and_an_empty_period(db, tmp_path):
    out = tmp_path / "beta"
    assert cli.main(["report", "--from", "2026-03-01", "--to", "2026-03-03", "--mo", "beta", "--out", str(out)]) == 0
    by_mo = pd.read_csv(out / "mo_status.csv", encoding="utf-8-sig")
    assert by_mo["OID МО"].tolist() == [BETA] and by_mo["Всего"].tolist() == [5]

    empty = tmp_path / "empty"
    assert cli.main(["report", "--from", "2025-01-01", "--to", "2025-01-02", "--out", str(empty)]) == 0
    assert pd.read_csv(empty / "day_status.csv", encoding="utf-8-sig")["Всего"].tolist() == [0, 0]
    assert openpyxl.load_workbook(empty / "report.xlsx")["МО × статус"].max_row == 1   # the header only
    assert matplotlib.image.imread(empty / "days.png").shape[1] > 300


def test_report_refuses_an_unknown_mo_and_a_reversed_period(db, tmp_path, capsys):
    assert cli.main(["report", "--from", "2026-03-01", "--to", "2026-03-03", "--mo", "nowhere",
                     "--out", str(tmp_path / "x")]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    with pytest.raises(SystemExit, match="--to must not be before --from"):
        cli.main(["report", "--from", "2026-03-03", "--to", "2026-03-01", "--out", str(tmp_path / "y")])


def test_status_by_kind_and_day_over_a_period(db, capsys):
    assert cli.main(["status", "--by", "kind", "--from", "2026-03-01", "--to", "2026-03-03", "--format", "csv"]) == 0
    rows = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(rows.columns) == ["kind", "status", "documents"]
    assert Counter({(r.kind, r.status): r.documents for r in rows.itertuples()}) == _expected(lambda d: d[1])

    assert cli.main(["status", "--by", "day", "--from", "2026-03-01", "--to", "2026-03-03", "--mo", "alpha",
                     "--format", "json"]) == 0
    got = Counter({(r["day"], r["status"]): r["documents"] for r in json.loads(capsys.readouterr().out)})
    assert got == Counter((d[2].date().isoformat(), statuses.family(d[3])) for d in IN_PERIOD if d[0] == ALPHA)

    assert cli.main(["status", "--by", "day", "--from", "2026-03-02", "--to", "2026-03-02"]) == 0
    table = capsys.readouterr().out
    assert "2026-03-02" in table and "2026-03-01" not in table and "Всего" in table


def test_status_by_mo_keeps_its_formats_and_takes_a_period(db, capsys):
    assert cli.main(["status", "--format", "csv"]) == 0                # every document, as before
    rows = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert rows["documents"].sum() == len(DOCS)
    assert [c for c in rows.columns if not c.startswith("quarantined_")] == ["mo", "status", "documents"]

    assert cli.main(["status", "--format", "csv", "--from", "2026-03-01", "--to", "2026-03-03"]) == 0
    rows = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert Counter({(r.mo, r.status): r.documents for r in rows.itertuples()}) == _expected(lambda d: CODES[d[0]])

    assert cli.main(["status", "--from", "2026-03-04"]) == 0            # an open end: only the 4 March one
    assert "beta" in capsys.readouterr().out
