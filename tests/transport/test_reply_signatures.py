"""IEMK_REPLY_SIGNATURE: with `require` the callback receiver applies only replies signed under the reply profile
(the Body) by a certificate of IEMK_REPLY_CERTIFICATES; any other is held in quarantine as `untrusted_signer`, shown
by `iemk-etl status`. With `off` (the default) an unsigned reply is applied. The emulator signs its replies when
given a key, so these run the real chain: our client → emulator → signed reply → our receiver → write-back."""

import dataclasses
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from iemk_etl import settings
from iemk_etl.devtools import certs, demo_data
from iemk_etl.emulator.server import REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.pipeline import extract, replies, report, send, validate
from iemk_etl.protocol import soap
from iemk_etl.protocol.xds import submit
from iemk_etl.protocol.xds.common import SUCCESS, RegistryResponse, build_registry_response
from iemk_etl.signing import keys, pinning, wssecurity
from iemk_etl.store import integration
from iemk_etl.transport import client
from iemk_etl.transport.callback import CallbackServer, ReplyTrust

END = dt.date(2026, 9, 10)
GKB = demo_data.DEMO_MO[0][0]
PERIOD = (dt.datetime(2026, 9, 1, tzinfo=demo_data.MSK), dt.datetime(2026, 9, 10, tzinfo=demo_data.MSK))
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def iemk_keys(tmp_path_factory):
    """The certificate «ИЭМК» signs its replies with, and another one nobody pinned."""
    folder = tmp_path_factory.mktemp("reply-keys")
    return (certs.create_dev_certificate(folder, common_name="ИЭМК (replies)", prefix="iemk"),
            certs.create_dev_certificate(folder, common_name="not ИЭМК", prefix="forger"))


def _exchange(dsn: str, dev_keys, flk_packs, *, reply_signer: keys.Signer | None, trust: ReplyTrust):
    """Documents sent to the emulator, its replies received by a receiver with ``trust``, then written back:
    (connection, ledger ids, sent ids)."""
    conn = psycopg.connect(dsn, autocommit=True)
    demo_data.seed(conn, patients=3, days=2, seed=1, end=END, fail_share=0.0, unsigned_share=0.0)
    integration.set_enabled(conn, GKB, True)
    emulator_cfg = EmulatorConfig(packs_dir=flk_packs, reply_delay=0.05, reply_signer=reply_signer)
    with CallbackServer(dsn, trust=trust) as callback, EmulatorServer(emulator_cfg, dsn) as emulator:
        cfg = dataclasses.replace(settings.load(), callback_url=callback.url)
        ids = validate.validate(conn, extract.extract(conn, GKB, *PERIOD), cfg)
        with client.IemkClient(emulator.url + REPOSITORY_PATH, client_entity_id=cfg.require_client_entity_id(),
                               signer=keys.load_signer(*dev_keys), timeout=10) as iemk:
            sent = send.send(dsn, ids, cfg, iemk, patients_first=False).sent
        assert sent
        _wait_received(conn, len(sent))
    replies.write_back(conn, GKB, ids)
    return conn, ids, sent


def _wait_received(conn: psycopg.Connection, n: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = conn.execute("SELECT (SELECT count(*) FROM iemk.inbox) + (SELECT count(*) FROM iemk.reply_quarantine)"
                           ).fetchone()[0]
        if got >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"the receiver got fewer than {n} replies")


def _states(conn, sent) -> set[str]:
    return {s for (s,) in conn.execute("SELECT state FROM iemk.ledger WHERE id = ANY(%s)", (sent,))}


def _required(cert_path: Path) -> ReplyTrust:
    return ReplyTrust.from_settings(settings.load({"IEMK_REPLY_SIGNATURE": "require",
                                                   "IEMK_REPLY_CERTIFICATES": str(cert_path)}))


def _status_json(dsn: str) -> list[dict]:
    out = subprocess.run([str(BIN / "iemk-etl"), "status", "--format", "json"], capture_output=True, text=True,
                         env={**os.environ, "IEMK_SOURCE_DSN": dsn}, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def test_require_mode_applies_a_reply_signed_by_the_pinned_certificate(fresh_dsn, dev_keys, flk_packs, iemk_keys):
    (iemk_cert, iemk_key), _ = iemk_keys
    conn, _, sent = _exchange(fresh_dsn, dev_keys, flk_packs, reply_signer=keys.load_signer(iemk_cert, iemk_key),
                              trust=_required(iemk_cert))
    assert conn.execute("SELECT count(*) FROM iemk.reply_quarantine").fetchone()[0] == 0
    assert _states(conn, sent) == {"stored"}


def test_require_mode_quarantines_an_unsigned_reply_and_status_shows_it(fresh_dsn, dev_keys, flk_packs, iemk_keys,
                                                                        caplog):
    (iemk_cert, _), _ = iemk_keys
    with caplog.at_level(logging.WARNING, logger="iemk_etl.transport.callback"):
        conn, _, sent = _exchange(fresh_dsn, dev_keys, flk_packs, reply_signer=None, trust=_required(iemk_cert))
    assert conn.execute("SELECT count(*) FROM iemk.inbox").fetchone()[0] == 0
    assert {r for (r,) in conn.execute("SELECT reason FROM iemk.reply_quarantine")} == {"untrusted_signer"}
    assert _states(conn, sent) == {"sent"}                          # not applied: still waiting for a real answer
    assert "signer not trusted: unsigned" in caplog.text and "quarantined: untrusted_signer" in caplog.text
    rows = _status_json(fresh_dsn)
    assert {r["quarantined_untrusted_signer"] for r in rows} == {len(sent)}
    assert {r["quarantined_unknown_relates_to"] for r in rows} == {0}
    table = report.render(report.documents(conn), "table", report.quarantined(conn))
    assert f"[untrusted_signer]: {len(sent)}" in table


def test_require_mode_quarantines_a_reply_signed_by_another_certificate(fresh_dsn, dev_keys, flk_packs, iemk_keys,
                                                                       caplog):
    (iemk_cert, _), (forger_cert, forger_key) = iemk_keys
    with caplog.at_level(logging.WARNING, logger="iemk_etl.transport.callback"):
        conn, _, sent = _exchange(fresh_dsn, dev_keys, flk_packs,
                                  reply_signer=keys.load_signer(forger_cert, forger_key), trust=_required(iemk_cert))
    # the signature itself verifies: it is the certificate that is not ИЭМК's
    forger = pinning.fingerprint(keys.read_certificate(forger_cert.read_bytes()))
    assert f"certificate sha256 {forger} not pinned" in caplog.text
    assert conn.execute("SELECT count(*), min(reason), max(reason) FROM iemk.reply_quarantine").fetchone() == \
        (len(sent), "untrusted_signer", "untrusted_signer")
    assert _states(conn, sent) == {"sent"}


def test_off_mode_applies_an_unsigned_reply(fresh_dsn, dev_keys, flk_packs):
    trust = ReplyTrust.from_settings(settings.load({}))          # IEMK_REPLY_SIGNATURE unset: off
    assert not trust.require
    conn, _, sent = _exchange(fresh_dsn, dev_keys, flk_packs, reply_signer=None, trust=trust)
    assert conn.execute("SELECT count(*) FROM iemk.reply_quarantine").fetchone()[0] == 0
    assert _states(conn, sent) == {"stored"}


def test_a_reply_to_an_unknown_message_id_is_counted_in_status_and_logged_without_its_body(fresh_dsn, caplog):
    reply = soap.to_bytes(soap.build_envelope(
        build_registry_response(RegistryResponse(SUCCESS)),
        soap.Addressing("urn:uuid:stray-1", submit.ASYNC_RESPONSE_ACTION, relates_to="urn:uuid:never-sent")))
    with caplog.at_level(logging.WARNING, logger="iemk_etl.transport.callback"), CallbackServer(fresh_dsn) as callback:
        for _ in range(2):
            assert httpx.post(callback.url, content=reply, headers={"Content-Type": soap.CONTENT_TYPE},
                              timeout=10).status_code == 202
    [warning, *_] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "urn:uuid:stray-1" in warning and "urn:uuid:never-sent" in warning and "unknown_relates_to" in warning
    assert "RegistryResponse" not in caplog.text and "Success" not in caplog.text
    [row] = _status_json(fresh_dsn)                                   # no documents: one row with the counts
    assert (row["documents"], row["quarantined_unknown_relates_to"], row["quarantined_untrusted_signer"]) == (0, 1, 0)


def test_replies_are_verified_under_the_reply_profile_not_the_request_one(iemk_keys):
    """A reply has no ReplyTo: the request profile (Body, Timestamp, MessageID, ReplyTo, To, Action) can never hold
    for it; the receiver asks for the Body only (wssecurity.RESPONSE_PARTS)."""
    (iemk_cert, iemk_key), _ = iemk_keys
    envelope = soap.build_envelope(build_registry_response(RegistryResponse(SUCCESS)), soap.Addressing(
        "urn:uuid:r-1", submit.ASYNC_RESPONSE_ACTION, to="http://127.0.0.1/ips/callback", relates_to="urn:uuid:m-1"))
    signer = keys.load_signer(iemk_cert, iemk_key)
    wssecurity.sign_envelope(envelope, signer, parts=wssecurity.RESPONSE_PARTS)
    received = soap.parse(soap.to_bytes(envelope)).envelope
    verified = wssecurity.verify_envelope(received, required_parts=wssecurity.RESPONSE_PARTS)
    assert pinning.Pins.load([str(iemk_cert)]).allows(verified.certificate_der)
    with pytest.raises(wssecurity.SignatureError) as refused:
        wssecurity.verify_envelope(received)
    assert refused.value.code == "UNSIGNED_PART"
    # a Body changed after signing is refused under the reply profile too
    tampered = soap.to_bytes(envelope).replace(b"ResponseStatusType:Success", b"ResponseStatusType:Failure")
    with pytest.raises(wssecurity.SignatureError) as broken:
        wssecurity.verify_envelope(soap.parse(tampered).envelope, required_parts=wssecurity.RESPONSE_PARTS)
    assert broken.value.code == "DIGEST_MISMATCH"


def test_migration_014_is_rerunnable_and_folds_the_older_signature_reasons(fresh_dsn):
    from iemk_etl.store import db

    [text] = [sql for name, sql in db.migrations() if name.startswith("014_")]
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO iemk.reply_quarantine (message_id, reason, body_bytes, body)"
                     " VALUES ('urn:uuid:old-1', 'unsigned', 1, 'x'), ('urn:uuid:old-2', 'bad_signature', 1, 'x')")
        conn.execute(text)
        conn.execute(text)
        assert report.quarantined(conn) == {"untrusted_signer": 2, "unknown_relates_to": 0, "no_relates_to": 0}
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO iemk.reply_quarantine (message_id, reason, body_bytes, body)"
                         " VALUES ('urn:uuid:x', 'made_up', 1, 'x')")
