"""Faults on demand, each kind over real HTTP, and their reproducibility."""

import dataclasses
import json
import time

import httpx
import psycopg
import pytest

from iemk_etl.emulator.faults import RATE_LIMIT_TEXT, FaultProfile, FaultProfileError
from iemk_etl.emulator.server import INSPECTOR_PATH, PIX_PATH, REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.protocol import soap
from iemk_etl.protocol.hl7v3 import pix
from iemk_etl.protocol.hl7v3.common import PatientRecord
from iemk_etl.protocol.xds.common import read_registry_response
from iemk_etl.signing import keys
from iemk_etl.transport import client
from iemk_etl.transport.callback import CallbackServer

from cda_factory import document
from exchange_helpers import REPLIES_TO, _submission


def _profile(operation: str, **rates) -> FaultProfile:
    return FaultProfile.load(json.dumps({"seed": 1, "operations": {operation: rates}}))


@pytest.fixture
def make(fresh_dsn, flk_packs, dev_keys):
    opened = []

    def start(profile: FaultProfile):
        emulator = EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.02, faults=profile),
                                  fresh_dsn).start()
        callback = CallbackServer(fresh_dsn).start()
        iemk = client.IemkClient(emulator.url + REPOSITORY_PATH, client_entity_id="c",
                                 signer=keys.load_signer(*dev_keys), timeout=5)
        opened.extend([iemk, callback, emulator])
        return emulator, callback, iemk

    yield start
    for thing in opened:
        (thing.close if isinstance(thing, client.IemkClient) else thing.stop)()


def _send(iemk, callback, mid="urn:uuid:f-1"):
    return iemk.provide_and_register(_submission(document()), message_id=mid, reply_to=callback.url)


@pytest.mark.parametrize(("kind", "status"), [("http_500", 500), ("http_503", 503), ("rate_limit", 429)])
def test_http_faults_are_transient_for_the_client(make, kind, status):
    emulator, callback, iemk = make(_profile("iti41", **{kind: 1.0}, retry_after=7))
    result = _send(iemk, callback)
    assert result.verdict is client.Verdict.TRANSIENT and result.http_status == status
    if kind == "rate_limit":
        assert RATE_LIMIT_TEXT in result.error
    raw = httpx.post(emulator.url + REPOSITORY_PATH, content=b"<x/>")
    if kind == "http_503":
        assert raw.headers["Retry-After"] == "7"
    assert emulator.emulator.stats()["injected_faults"] == 2
    assert emulator.emulator.stats()["received"] == 0          # nothing reached the service


def test_connection_reset(make):
    _, callback, iemk = make(_profile("iti41", reset=1.0))
    result = _send(iemk, callback)
    assert result.verdict is client.Verdict.TRANSIENT and "недоступна" in result.error


def test_slow_responses_follow_the_latency_range(make):
    _, callback, iemk = make(_profile("iti41", slow=1.0, latency_ms=[300, 400]))
    started = time.monotonic()
    assert _send(iemk, callback).verdict is client.Verdict.ACCEPTED
    assert time.monotonic() - started >= 0.3


def test_malformed_response_after_processing_is_resent_safely(make, fresh_dsn):
    emulator, callback, iemk = make(_profile("iti41", malformed=1.0))
    first = _send(iemk, callback)
    assert first.verdict is client.Verdict.TRANSIENT and "не читается" in first.error
    assert emulator.emulator.stats()["received"] == 1          # it was processed all the same
    _send(iemk, callback)                                      # the client's resend: same MessageID
    assert emulator.emulator.stats()["received"] == 1 and emulator.emulator.stats()["duplicate_deliveries"] == 1


def _wait_replies(dsn, relates_to, count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(dsn) as conn:
            rows = conn.execute(REPLIES_TO, {"r": relates_to}).fetchall()
        if len(rows) >= count:
            return [read_registry_response(soap.parse(bytes(r[0])).body) for r in rows]
        time.sleep(0.05)
    return []


def test_registry_busy_reply(make, fresh_dsn):
    _, callback, iemk = make(_profile("iti41", registry_busy=1.0))
    _send(iemk, callback)
    [reply] = _wait_replies(fresh_dsn, "urn:uuid:f-1", 1)
    assert reply.errors[0].error_code == "XDSRegistryBusy"


def test_lost_reply(make, fresh_dsn):
    emulator, callback, iemk = make(_profile("iti41", lost_reply=1.0))
    _send(iemk, callback)
    deadline = time.monotonic() + 5
    while emulator.emulator.stats()["replies_lost"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emulator.emulator.stats()["replies_lost"] == 1
    assert _wait_replies(fresh_dsn, "urn:uuid:f-1", 1, timeout=0.5) == []


def test_duplicated_reply_is_stored_once_by_the_receiver(make, fresh_dsn):
    emulator, callback, iemk = make(_profile("iti41", duplicate_reply=1.0))
    _send(iemk, callback)
    assert len(_wait_replies(fresh_dsn, "urn:uuid:f-1", 1)) == 1
    deadline = time.monotonic() + 5
    while emulator.emulator.stats()["replies_delivered"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    assert len(_wait_replies(fresh_dsn, "urn:uuid:f-1", 1)) == 1     # the same reply MessageID: one inbox row


def test_out_of_order_replies(make, fresh_dsn):
    profile = FaultProfile.load(json.dumps({"seed": 3, "operations": {"iti41": {"out_of_order": 0.5}}}))
    _, callback, iemk = make(profile)
    for n in range(8):
        sub = dataclasses.replace(_submission(document(local_uid=f"O-{n}")), unique_id=f"1.2.643.5.1.13.13.12.2.77."
                                  f"7801.100.1.1.51^O-{n}")
        iemk.provide_and_register(sub, message_id=f"urn:uuid:o-{n}", reply_to=callback.url)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with psycopg.connect(fresh_dsn) as conn:
            order = [r[0] for r in conn.execute("SELECT relates_to FROM iemk.reply_quarantine ORDER BY received_at")]
        if len(order) == 8:
            break
        time.sleep(0.1)
    assert sorted(order) == [f"urn:uuid:o-{n}" for n in range(8)]
    assert order != sorted(order, key=lambda m: int(m.rsplit("-", 1)[1]))


def test_pix_faults_apply_to_pix_only(make):
    emulator, _, iemk = make(_profile("pix", http_503=1.0))
    patient = PatientRecord("1.2.643.5.1.13.13.12.2.77.7801", "P-1", "А", "Б", None, "1", "19800101")
    body = pix.build_feed(pix.ADD, patient, system_id="s", system_name="n", mo_name="m")
    with pytest.raises(client.CallError) as err:
        iemk.call(emulator.url + PIX_PATH, pix.ACTION[pix.ADD], body)
    assert err.value.result.verdict is client.Verdict.TRANSIENT


def test_the_same_seed_gives_the_same_faults():
    def outcomes(seed):
        profile = FaultProfile.load(json.dumps({"seed": seed, "operations": {"*": {"http_500": 0.3, "reset": 0.3}}}))
        return [(f.kind if (f := profile.sync_fault("iti41")) else None) for _ in range(40)]

    assert outcomes(5) == outcomes(5)
    assert outcomes(5) != outcomes(6)
    assert {o for o in outcomes(5)} == {None, "http_500", "reset"}


def test_a_bad_profile_is_refused_plainly():
    with pytest.raises(FaultProfileError, match="unknown fault settings"):
        FaultProfile.load('{"operations": {"iti41": {"explode": 1}}}')
    with pytest.raises(FaultProfileError, match="between 0 and 1"):
        FaultProfile.load('{"operations": {"iti41": {"http_500": 2}}}')


def test_inspector_page_and_json(make):
    emulator, callback, iemk = make(_profile("iti41", http_503=1.0))
    _send(iemk, callback)
    page = httpx.get(emulator.url + INSPECTOR_PATH)
    assert page.status_code == 200 and "injected" in page.text and "http_503" in page.text
    rows = httpx.get(emulator.url + INSPECTOR_PATH + ".json").json()
    assert rows[0]["verdict"] == "injected" and rows[0]["detail"] == "http_503"


@pytest.mark.parametrize("kind", ["slow", "registry_busy", "lost_reply", "duplicate_reply", "out_of_order"])
def test_every_injected_kind_is_counted(make, kind):
    """The chaos run reports faults injected by kind: the asynchronous ones and slow answers count too."""
    rates = {kind: 1.0, "latency_ms": [10, 20]} if kind == "slow" else {kind: 1.0}
    emulator, callback, iemk = make(_profile("iti41", **rates))
    assert _send(iemk, callback).verdict is client.Verdict.ACCEPTED
    deadline = time.monotonic() + 10
    while emulator.store.injected_by_kind().get(("iti41", kind), 0) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emulator.store.injected_by_kind() == {("iti41", kind): 1}
