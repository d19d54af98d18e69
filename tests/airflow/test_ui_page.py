"""The ИЭМК page in the Airflow UI, in a real `airflow api-server` and a real headless Chromium.

The iemk database is seeded with documents of known statuses (two МО, errors of each kind of actor, a СНИЛС in one
error's text); the metadata database holds one run of an МО's export DAG around the instant two documents were sent.
An anonymous caller is refused; a user logged in through Airflow's own login sees the counts the database has, the
errors' Russian text and who must act, and the link to the run that sent a document.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from iemk_etl import errors, statuses
from iemk_etl.pipeline import period_report

MSK = ZoneInfo("Europe/Moscow")
ALPHA, BETA = "1.2.643.5.1.13.13.12.2.77.9101", "1.2.643.5.1.13.13.12.2.77.9102"
CODES = {ALPHA: "alpha", BETA: "beta"}
SNILS = "112-233-445 95"
E = statuses.ERROR_PREFIX
USER, PASSWORD = "admin", "uipage-secret"
RUN_ID = "manual__2026-03-02T06:00:00+00:00"
SENT_AT = dt.datetime(2026, 3, 2, 9, 30, tzinfo=MSK)         # inside the run: 06:00–07:00 UTC
BIN = Path(sys.executable).parent

# (МО, kind, local creation time, МИС status, ledger state or None, ledger error code, sent in the run)
DOCS = [
    (ALPHA, 41, dt.datetime(2026, 3, 1, 9, 0), statuses.STORED, "stored", None, True),
    (ALPHA, 41, dt.datetime(2026, 3, 1, 10, 0), statuses.STORED, "stored", None, False),
    (ALPHA, 42, dt.datetime(2026, 3, 1, 23, 30), statuses.SENT, "sent", None, False),
    (ALPHA, 42, dt.datetime(2026, 3, 2, 8, 0), E + "Ошибка форматного контроля (XSD): нет code", "invalid",
     "FLK_XSD", False),
    (ALPHA, 41, dt.datetime(2026, 3, 2, 12, 0),
     E + "Сертификат ЭП для подписания запросов к ИЭМК не может быть использован", "valid", "SIGNING_KEY", False),
    (BETA, 41, dt.datetime(2026, 3, 1, 11, 0), statuses.SIGNED, "queued", None, False),
    (BETA, 42, dt.datetime(2026, 3, 2, 12, 0), E + f"ИЭМК отклонила документ: пациент со СНИЛС {SNILS} не найден",
     "rejected", "PATIENT_NOT_FOUND", False),
    (BETA, 186, dt.datetime(2026, 3, 2, 14, 0), E + "ИЭМК временно не может обработать документ", "failed",
     "RATE_LIMIT", False),
    (BETA, 41, dt.datetime(2026, 3, 4, 0, 30), E + "ИЭМК отклонила документ", "rejected", "VALIDATION_ERROR",
     False),  # after the period (local time)
]
ALPHA_RUN_SENT = [n for n, d in enumerate(DOCS) if d[6]]


def _seed(conn) -> dict[int, int]:
    """The documents of DOCS; their ids by position."""
    for oid, code in CODES.items():
        conn.execute("INSERT INTO mis.mo (oid, code, name, region) VALUES (%s, %s, %s, 77)", (oid, code, code.upper()))
        conn.execute("INSERT INTO mis.patient (mo_oid, local_id, family, given, birth_date, sex, snils)"
                     " VALUES (%s, 'P1', 'Орлова', 'Вера', '1990-05-05', 2, '11223344595')", (oid,))
        conn.execute("INSERT INTO mis.staff (mo_oid, local_id, snils, family, given, position_code, position_name)"
                     " VALUES (%s, 'S1', '11223344595', 'Иванов', 'Иван', '73', 'врач')", (oid,))
    ids = {}
    for n, (oid, kind, created, status, state, code, in_run) in enumerate(DOCS):
        created = created.replace(tzinfo=MSK)
        ids[n] = conn.execute(
            "INSERT INTO mis.semd_document (mo_oid, kind_code, patient_id, author_id, local_uid, created_at, signed_at,"
            " cda, status, status_at) SELECT %s, %s, p.id, s.id, %s, %s, %s, '\\x00', %s, %s"
            " FROM mis.patient p JOIN mis.staff s ON s.mo_oid = p.mo_oid WHERE p.mo_oid = %s RETURNING id",
            (oid, kind, f"D-{n}", created, created, status, created + dt.timedelta(hours=1), oid)).fetchone()[0]
        if state:
            sent_at = SENT_AT if in_run else (created + dt.timedelta(hours=2)
                                              if state in ("sent", "stored", "rejected", "failed") else None)
            conn.execute("INSERT INTO iemk.ledger (mo_oid, unique_id, version, document_id, kind_code, signed_at,"
                         " state, content_hash, error_code, last_error, last_sent_at)"
                         " VALUES (%s, %s, 1, %s, %s, %s, %s, 'h', %s, %s, %s)",
                         (oid, f"{oid}.100.1.1.51^D-{n}", ids[n], kind, created, state, code,
                          status.removeprefix(E) if code else None, sent_at))
    return ids


def _fresh(pg_template: str, name: str, template: str | None) -> str:
    with psycopg.connect(pg_template, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name}")
        c.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    return make_conninfo(pg_template, dbname=name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# What `airflow db migrate` does, then the run, in one process: Airflow's import is most of either's time.
_MIGRATE_AND_ADD_RUN = """
import datetime as dt
from airflow.models.dagrun import DagRun
from airflow.utils import db
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState
from airflow.utils.types import DagRunType
db.upgradedb()
start = dt.datetime(2026, 3, 2, 6, 0, tzinfo=dt.timezone.utc)
with create_session() as session:
    run = DagRun(dag_id="iemk_export__alpha", run_id="{run_id}", run_type=DagRunType.MANUAL, start_date=start,
                 run_after=start, state=DagRunState.SUCCESS)
    run.end_date = start + dt.timedelta(hours=1)
    session.add(run)
"""


@pytest.fixture(scope="module")
def server(pg_template, tmp_root):
    dsn = _fresh(pg_template, "iemk_ui_page", "iemk_template")
    with psycopg.connect(dsn, autocommit=True) as conn:
        ids = _seed(conn)
    _fresh(pg_template, "airflow_ui_page", None)
    socket_dir = conninfo_to_dict(pg_template)["host"]
    home = tmp_root / "airflow-ui-page"
    home.mkdir(exist_ok=True)
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    port = _free_port()
    env = {**os.environ,
           "AIRFLOW_HOME": str(home),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg://postgres@/airflow_ui_page?host={socket_dir}",
           "AIRFLOW__CORE__AUTH_MANAGER":
               "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
           "AIRFLOW__API__WORKERS": "1",
           "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
           "IEMK_SOURCE_DSN": dsn, "IEMK_TIMEZONE": "Europe/Moscow"}
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    subprocess.run([sys.executable, "-c", _MIGRATE_AND_ADD_RUN.format(run_id=RUN_ID)], env=env, check=True,
                   capture_output=True, timeout=180)
    log = tmp_root / "airflow-ui-page.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(BIN / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/api/v2/monitor/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("api-server did not start:\n" + log.read_text(errors="replace")[-4000:])
            time.sleep(1)
        yield url, dsn, ids
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _token(url: str) -> str:
    answer = httpx.post(url + "/auth/token", json={"username": USER, "password": PASSWORD}, timeout=10)
    assert answer.status_code == 201, answer.text
    return answer.json()["access_token"]


def test_anonymous_callers_are_refused(server):
    url, _, _ = server
    page = url + "/iemk/?from=2026-03-01&to=2026-03-03"
    assert httpx.get(page, timeout=10).status_code == 401
    assert httpx.get(page, headers={"Authorization": "Bearer not-a-token"}, timeout=10).status_code == 403
    assert httpx.get(page, cookies={"_token": "forged"}, timeout=10).status_code == 403
    browser_like = httpx.get(page, headers={"Accept": "text/html"}, timeout=10)    # a browser: to the login page
    assert browser_like.status_code == 303
    assert urlsplit(browser_like.headers["location"]).path.startswith("/auth/login")
    assert "ИЭМК" not in browser_like.text


def test_the_plugin_adds_a_view_to_the_ui_navigation(server):
    url, _, _ = server
    answer = httpx.get(url + "/api/v2/plugins", headers={"Authorization": f"Bearer {_token(url)}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    plugin = next(p for p in answer.json()["plugins"] if p["name"] == "iemk_etl_ui")
    assert [v["href"] for v in plugin["external_views"]] == ["iemk/"]
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == ["/iemk"]


def test_a_period_that_ends_before_it_starts_is_refused_with_a_reason(server):
    url, _, _ = server
    answer = httpx.get(url + "/iemk/?from=2026-03-05&to=2026-03-01",
                       headers={"Authorization": f"Bearer {_token(url)}"}, timeout=10)
    assert answer.status_code == 400
    assert "Период не понят" in answer.text and "before it starts" in answer.text


def _chromium() -> str:
    import shutil

    found = os.environ.get("IEMK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("no Chromium here (Debian package chromium; .ci/run installs it): the browser test cannot run")
    return found


def _database_counts(dsn: str) -> Counter:
    """(МО code, status family) → documents created 1–3 March (Moscow), counted by the test's own query."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT m.code, CASE WHEN d.status LIKE 'Ошибка: %%' THEN 'Ошибка' ELSE d.status END, count(*)"
            " FROM mis.semd_document d JOIN mis.mo m ON m.oid = d.mo_oid"
            " WHERE d.created_at >= %s AND d.created_at < %s GROUP BY 1, 2",
            (dt.datetime(2026, 3, 1, tzinfo=MSK), dt.datetime(2026, 3, 4, tzinfo=MSK))).fetchall()
    return Counter({(code, status): n for code, status, n in rows})


def test_a_logged_in_user_sees_the_databases_counts_errors_and_runs(server):
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e '.[test]')")
    url, dsn, ids = server
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page()
            wanted = url + "/iemk/?from=2026-03-01&to=2026-03-03"
            page.goto(wanted, wait_until="load", timeout=30_000)      # not logged in: Airflow's login page
            assert urlsplit(page.url).path.startswith("/auth/login")
            page.locator("input:not([type=password])").first.fill(USER)
            page.locator("input[type=password]").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(wanted, timeout=30_000)                 # and back to the page asked for
            page.wait_for_selector("#by-mo", timeout=30_000)
            cells = page.eval_on_selector_all(
                "#by-mo td[data-status]", "tds => tds.map(t => [t.dataset.mo, t.dataset.status, t.innerText])")
            errors_text = page.inner_text("#errors")
            error_rows = page.eval_on_selector_all(
                "#errors tbody tr", "trs => trs.map(r => [r.dataset.document, r.innerText])")
            run_links = page.eval_on_selector_all(
                "#sent tr[data-document] td.run a", "as => as.map(a => [a.closest('tr').dataset.document,"
                                                    " a.innerText, a.getAttribute('href')])")
            page.click("#sent td.run a")
            page.wait_for_load_state("load")
            run_page_url = page.url
            # The same page inside the UI: the navigation entry's view embeds it.
            page.goto(url + "/plugin/iemk-documents", wait_until="load", timeout=30_000)
            embedded = page.frame_locator("iframe")
            embedded.locator("#by-mo").wait_for(timeout=30_000)
            embedded_title = embedded.locator("h1").inner_text()
        finally:
            browser.close()

    shown = Counter({(mo, status): int(n) for mo, status, n in cells if status != period_report.TOTAL and int(n)})
    assert shown == _database_counts(dsn)
    assert shown[("alpha", statuses.STORED)] == 2 and shown[("beta", statuses.ERROR)] == 2
    totals = {mo: int(n) for mo, status, n in cells if status == period_report.TOTAL}
    assert totals == {"alpha": 5, "beta": 3}
    assert embedded_title == "Документы в ИЭМК"

    # The errors of the period, with their Russian text and who must act; the one after the period is not there.
    assert len(error_rows) == 4
    assert "Ошибка форматного контроля (XSD): нет code" in errors_text
    assert "Сертификат ЭП для подписания запросов к ИЭМК не может быть использован" in errors_text
    row = dict(error_rows)
    assert errors.Actor.MIS_DATA.value in row[str(ids[3])] and "FLK_XSD" in row[str(ids[3])]
    assert errors.Actor.ADMIN.value in row[str(ids[4])] and "не отправлялся" in row[str(ids[4])]
    assert errors.Actor.IEMK.value in row[str(ids[7])]
    assert SNILS not in errors_text and "***-***-*** **" in errors_text        # no patient data beyond ids

    # The document sent at 09:30 on 2 March links to the run of alpha's export DAG that was running then; the others
    # were sent when no run of this Airflow was (by the command line) and say so.
    assert [(doc, text) for doc, text, _ in run_links] == [(str(ids[n]), RUN_ID) for n in ALPHA_RUN_SENT]
    run_path = "dags/iemk_export__alpha/runs/" + quote(RUN_ID, safe="")
    assert run_links[0][2] == "../" + run_path
    assert urlsplit(run_page_url).path == "/" + run_path          # the UI's run page, in the whole window
