"""Alerts (issue 15, item 4): the notifier really sends — to a local SMTP server and a local HTTP server — the МО,
the run and the counts; a failing export DAG run calls its failure callback and the alert arrives; the deadline
alert is an Airflow 3 DeadlineAlert whose callback sends the same way. And no deprecation warning in what every task
process logs while it parses the DAGs (item 8)."""

import contextlib
import datetime as dt
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

from iemk_etl import notify, periods
from iemk_etl.devtools import demo_data
from iemk_etl.store import integration

ROOT = Path(__file__).resolve().parents[2]
END = dt.date(2026, 10, 8)
DAY = END - dt.timedelta(days=1)        # demo_data.seed(days=1, end=END) creates the documents of this day
GKB = demo_data.DEMO_MO[0][0]


# -- local sinks -----------------------------------------------------------------------------------------------

class SmtpSink:
    """A minimal SMTP server on loopback (aiosmtpd is not installed): one thread, every message kept as bytes.
    ``silent``: accept connections and never answer (a hung server)."""

    def __init__(self, silent: bool = False) -> None:
        self.silent = silent
        self.messages: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "SmtpSink":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                with conn:
                    if self.silent:
                        conn.recv(1)    # holds the client until it gives up (its timeout) or the test ends
                        continue
                    self._session(conn.makefile("rb"), conn)

    def _session(self, reader, conn) -> None:
        conn.sendall(b"220 sink ESMTP\r\n")
        for line in reader:
            verb = line[:4].upper()
            if verb == b"DATA":
                conn.sendall(b"354 go on\r\n")
                body = b""
                for data in reader:
                    if data == b".\r\n":
                        break
                    body += data[1:] if data.startswith(b"..") else data
                self.messages.append(body)
                conn.sendall(b"250 queued\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:                                       # EHLO, HELO, MAIL, RCPT, RSET, NOOP
                conn.sendall(b"250 ok\r\n")


class WebhookSink:
    """A local HTTP server keeping each POSTed JSON body."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> "WebhookSink":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _alert() -> notify.Alert:
    return notify.Alert(notify.RUN_FAILED, "gkb7801", GKB, "iemk_export__gkb7801", "scheduled__2026-10-07T21:00",
                        "задача send (попытка 3)", (dt.datetime(2026, 10, 7, tzinfo=dt.UTC), None),
                        {"Сохранен в ИЭМК": 7, "Ошибка": 2})


# -- the senders -------------------------------------------------------------------------------------------------

def test_an_email_alert_reaches_the_smtp_server_with_mo_run_and_counts():
    with SmtpSink() as sink:
        sender = notify.SmtpSender("127.0.0.1", sink.port, "iemk@clinic.test", ("duty@clinic.test",), timeout=5)
        assert notify.deliver(_alert(), sender)
    (raw,) = sink.messages
    mail = message_from_bytes(raw, policy=policy.default)
    assert mail["To"] == "duty@clinic.test"
    assert "gkb7801" in mail["Subject"] and "scheduled__2026-10-07T21:00" in mail["Subject"]
    body = mail.get_content()
    assert f"МО: gkb7801 ({GKB})" in body and "run: scheduled__2026-10-07T21:00" in body
    assert "  Сохранен в ИЭМК: 7" in body and "  Ошибка: 2" in body


def test_the_email_channel_reads_its_airflow_smtp_connection(monkeypatch):
    from iemk_airflow import alerts
    from iemk_etl import settings

    with SmtpSink() as sink:
        monkeypatch.setenv("AIRFLOW_CONN_IEMK_SMTP", json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": sink.port,
            "extra": {"from_email": "iemk@clinic.test", "disable_ssl": True, "disable_tls": True}}))
        cfg = settings.load({"IEMK_ALERT": "email", "IEMK_ALERT_SMTP_CONN_ID": "iemk_smtp",
                             "IEMK_ALERT_EMAIL_TO": "duty@clinic.test,chief@clinic.test"})
        sender = alerts.sender(cfg)
        assert (sender.port, sender.use_ssl, sender.starttls) == (sink.port, False, False)
        sender(_alert())
    (raw,) = sink.messages
    mail = message_from_bytes(raw, policy=policy.default)
    assert mail["From"] == "iemk@clinic.test" and mail["To"] == "chief@clinic.test, duty@clinic.test"


def test_a_hung_smtp_server_times_out_and_the_alert_still_reaches_the_log(caplog):
    with SmtpSink(silent=True) as sink, caplog.at_level(logging.INFO, logger="iemk_etl.notify"):
        sender = notify.SmtpSender("127.0.0.1", sink.port, "iemk@clinic.test", ("duty@clinic.test",), timeout=0.5)
        assert notify.deliver(_alert(), sender) is False
    lines = [r.getMessage() for r in caplog.records]
    assert any("alert channel failed (TimeoutError" in line or "alert channel failed (SMTPServerDisconnected" in line
               for line in lines), lines
    assert any(line.startswith("ALERT run_failed МО gkb7801 run scheduled__2026-10-07T21:00") for line in lines)


def test_a_webhook_alert_is_a_json_post_with_mo_run_and_counts():
    with WebhookSink() as sink:
        assert notify.deliver(_alert(), notify.WebhookSender(sink.url, timeout=5))
    (post,) = sink.posts
    assert (post["event"], post["mo"], post["mo_oid"], post["run_id"]) == (
        "run_failed", "gkb7801", GKB, "scheduled__2026-10-07T21:00")
    assert post["counts"] == {"Сохранен в ИЭМК": 7, "Ошибка": 2}


# -- a failing DAG run, the deadline -------------------------------------------------------------------------------

@pytest.fixture
def export_env(fresh_dsn, dev_keys, tmp_root, monkeypatch):
    """A seeded МИС with the МО's integration on, and an export DAG whose ИЭМК is not running."""
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=3, days=1, seed=7, end=END, fail_share=0.0, unsigned_share=0.0)
        integration.set_enabled(conn, GKB, True)
        mo_config = tmp_root / f"alerts-mo-{conn.info.dbname}.json"
        integration.remember_mo(mo_config, integration.resolve_mo(conn, GKB))
    closed = socket.create_server(("127.0.0.1", 0))
    dead_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()                                      # nothing listens there: ИЭМК is down
    for env, value in {"IEMK_SOURCE_DSN": fresh_dsn, "IEMK_URL": dead_url, "IEMK_SIGN_CERT": str(dev_keys[0]),
                       "IEMK_SIGN_KEY": str(dev_keys[1]), "IEMK_MO_CONFIG": str(mo_config),
                       "IEMK_TASK_RETRY_SECONDS": "0.2", "IEMK_ALERT": "webhook"}.items():
        monkeypatch.setenv(env, value)
    # The fault: no callback URL, so send refuses to send anything (a ConfigurationError, on every try).
    monkeypatch.delenv("IEMK_CALLBACK_URL", raising=False)
    from iemk_airflow import runner

    runner.init_metadata_db()
    return fresh_dsn


def test_a_failed_export_run_sends_one_alert_with_its_run_and_counts(export_env, monkeypatch, caplog):
    from iemk_airflow.export_dag import build_all
    from iemk_etl import settings

    with WebhookSink() as sink:
        monkeypatch.setenv("IEMK_ALERT_WEBHOOK_URL", sink.url)
        dag = build_all()["iemk_export__gkb7801"]
        logical = periods.day_start(DAY + dt.timedelta(days=1), demo_data.MSK)
        run = dag.test(logical_date=logical)
    assert str(run.state) == "failed"
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["send"] == "failed" and states["validate"] == "success", states   # the fault struck where meant
    (post,) = sink.posts                                # one alert per run, not one per task
    assert (post["event"], post["mo"], post["dag_id"], post["run_id"]) == (
        "run_failed", "gkb7801", "iemk_export__gkb7801", run.run_id)
    assert "send" in post["detail"]
    # the task's own callback: one line after its last try (retries: 2)
    logged = [r.getMessage() for r in caplog.records if r.name == "iemk_airflow.alerts"]
    assert f"task send of run {run.run_id} (МО gkb7801) failed on try 3: ConfigurationError" in logged
    with psycopg.connect(export_env) as conn:
        expected = notify.run_counts(conn, GKB, run.data_interval_start, run.data_interval_end,
                                     settings.load().timezone)
    assert post["counts"] == expected and sum(expected.values()) > 0


def test_the_deadline_is_an_airflow_deadline_alert_whose_callback_sends(export_env, monkeypatch):
    from airflow.sdk import DeadlineReference

    from iemk_airflow import alerts
    from iemk_airflow.export_dag import build_all

    monkeypatch.setenv("IEMK_EXPORT_DEADLINE", "07:30")
    (deadline,) = build_all()["iemk_export__gkb7801"].deadline
    # the nightly run of day D (logical date D 00:00) must be done by D+1 07:30
    assert deadline.reference == DeadlineReference.DAGRUN_LOGICAL_DATE
    assert deadline.interval == dt.timedelta(days=1, hours=7, minutes=30)
    assert deadline.callback.path == "iemk_airflow.alerts.deadline_missed"
    monkeypatch.setenv("IEMK_EXPORT_DEADLINE", "8h")
    (deadline,) = build_all()["iemk_export__gkb7801"].deadline
    assert (deadline.reference, deadline.interval) == (DeadlineReference.DAGRUN_QUEUED_AT, dt.timedelta(hours=8))

    start = periods.day_start(DAY, demo_data.MSK)
    context = {"dag_run": {"dag_id": "iemk_export__gkb7801", "dag_run_id": "scheduled__x", "state": "running",
                           "data_interval_start": start.isoformat(),
                           "data_interval_end": (start + dt.timedelta(days=1)).isoformat()},
               "deadline": {"id": "d1", "deadline_time": "2026-10-08T07:30:00+03:00"}}
    with WebhookSink() as sink:
        monkeypatch.setenv("IEMK_ALERT_WEBHOOK_URL", sink.url)
        alerts.deadline_missed(**deadline.callback.kwargs, context=context)
    (post,) = sink.posts
    assert (post["event"], post["mo"], post["run_id"]) == ("deadline_missed", "gkb7801", "scheduled__x")
    assert "2026-10-08T07:30:00+03:00" in post["detail"] and sum(post["counts"].values()) > 0


def test_a_time_of_day_deadline_needs_a_daily_schedule():
    from iemk_airflow import alerts
    from iemk_etl.settings import SettingsError

    assert alerts.clock_interval("0 21 * * *", dt.time(6, 0)) == dt.timedelta(days=1, hours=9)
    with pytest.raises(SettingsError, match="IEMK_EXPORT_DEADLINE"):
        alerts.clock_interval("0 */6 * * *", dt.time(6, 0))


# -- no deprecation warnings in task logs --------------------------------------------------------------------------

def _parse_in_a_task_like_process(tmp_path, code: str) -> str:
    """What a task process logs while it imports the DAG files, every warning shown."""
    config = tmp_path / "mo.json"
    config.write_text(json.dumps({"mo": [{"oid": GKB, "code": "gkb7801", "name": "ГКБ № 1"}]}, ensure_ascii=False))
    env = {**os.environ, "IEMK_MO_CONFIG": str(config), "PYTHONWARNINGS": "always"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout + done.stderr


def test_parsing_the_dags_logs_no_deprecation_warning(tmp_path):
    # The detector works: the provider's @task.sensor, which the export DAG used, logs one.
    before = _parse_in_a_task_like_process(tmp_path, "import airflow.providers.standard.decorators.sensor")
    assert "DeprecatedImportWarning" in before
    out = _parse_in_a_task_like_process(tmp_path, (
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(ROOT / 'dags')!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "assert 'iemk_export__gkb7801' in bag.dags\n"))
    assert "Deprecat" not in out, out[-3000:]
