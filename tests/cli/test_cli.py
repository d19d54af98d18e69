"""The command line as a user runs it: separate processes, real databases."""

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg

BIN = Path(sys.executable).parent


def _run(*args, env=None, timeout=300):
    return subprocess.run([str(BIN / "iemk-etl"), *args], env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout)


def test_demo_on_the_embedded_defaults(tmp_path):
    from iemk_etl.store import embedded_pg

    env = {"IEMK_HOME": str(tmp_path / "home")}
    try:
        result = _run("demo", "--patients", "16", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "embedded PostgreSQL" in result.stdout
        assert "Сохранен в ИЭМК" in result.stdout
        assert "Ошибка:" in result.stdout
        for mo in ("МО gkb7801", "МО orb5012"):
            assert mo in result.stdout
        # stored / formed per СЭМД kind, for each МО: the demo МИС forms all six kinds
        kinds_lines = re.findall(r"сохранено по видам СЭМД: (.*)", result.stdout)
        assert len(kinds_lines) == 2
        assert {int(k) for line in kinds_lines for k in re.findall(r"(\d+): \d+/\d+", line)} == \
            {41, 42, 43, 119, 174, 186}
        # the data stays for the next command, and `status` shows it again
        again = _run("status", "--format", "csv", env=env)
        assert again.returncode == 0 and "Не подписан" in again.stdout
        _sign_and_send_the_rest(tmp_path / "home", env)
    finally:
        embedded_pg.stop(tmp_path / "home")


def _sign_and_send_the_rest(home, env):
    """`iemk-etl sign-and-send` over the demo's days: the unsigned documents are signed and exported."""
    import datetime as dt

    from iemk_etl.emulator.server import EmulatorServer
    from iemk_etl.emulator.service import EmulatorConfig
    from iemk_etl.store import embedded_pg
    from iemk_etl.transport.callback import CallbackServer

    dsn = embedded_pg.start(home)
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=3))).date()
    with EmulatorServer(EmulatorConfig(reply_delay=0.05), dsn) as emulator, CallbackServer(dsn) as callback:
        result = _run("sign-and-send", "--mo", "gkb7801", "--from", str(today - dt.timedelta(days=3)),
                      "--to", str(today - dt.timedelta(days=1)),
                      env={**env, "IEMK_URL": emulator.url, "IEMK_CALLBACK_URL": callback.url,
                           "IEMK_REPLY_POKE_SECONDS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    with psycopg.connect(dsn) as conn:
        left = conn.execute("SELECT count(*) FROM mis.semd_document d JOIN mis.mo m ON m.oid = d.mo_oid"
                            " WHERE m.code = 'gkb7801' AND d.status = 'Не подписан'").fetchone()[0]
    assert left == 0


def test_commands_use_IEMK_SOURCE_DSN_when_set(fresh_dsn, tmp_path):
    env = {"IEMK_SOURCE_DSN": fresh_dsn, "IEMK_HOME": str(tmp_path)}
    assert _run("db", "init", env=env).returncode == 0
    seeded = _run("db", "seed", "--patients", "4", "--days", "2", env=env)
    assert seeded.returncode == 0, seeded.stderr
    enabled = _run("integration", "enable", "--mo", "gkb7801", env=env)
    assert "2/2" in enabled.stdout
    status = _run("integration", "status", env=env)
    assert "gkb7801" in status.stdout and "2/2" in status.stdout and "0/2" in status.stdout
    assert "сертификат ЭП запросов: ГОСТ Р 34.10-2012 (256)" in status.stdout and "действителен до" in status.stdout
    assert not (tmp_path / "pgdata").exists()          # no embedded server was started
    with psycopg.connect(fresh_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM mis.patient").fetchone()[0] == 4
    assert "gkb7801" in (tmp_path / "mo.json").read_text(encoding="utf-8")


def test_unknown_mo_is_a_clear_error(fresh_dsn, tmp_path):
    result = _run("integration", "enable", "--mo", "nope", env={"IEMK_SOURCE_DSN": fresh_dsn,
                                                                  "IEMK_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "МО [nope] не найдена" in result.stderr
