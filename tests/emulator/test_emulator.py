"""The ИЭМК emulator over real HTTP, with the real callback receiver storing its answers."""

import time

import httpx
import psycopg
import pytest

from iemk_etl import errors
from iemk_etl.emulator.server import REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.protocol import soap
from iemk_etl.protocol.xds import submit
from iemk_etl.protocol.xds.common import SUCCESS, RegistryResponse, build_registry_response
from iemk_etl.signing import keys
from iemk_etl.transport import client
from iemk_etl.transport.callback import CallbackServer

from cda_factory import document
from exchange_helpers import _replies, _submission


@pytest.fixture
def servers(fresh_dsn, flk_packs):
    with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.05), fresh_dsn) as emulator, \
            CallbackServer(fresh_dsn) as callback:
        yield emulator, callback, fresh_dsn


@pytest.fixture
def iemk(servers, dev_keys):
    emulator = servers[0]
    with client.IemkClient(emulator.url + REPOSITORY_PATH, client_entity_id="17c74e63-dc38-438d-a27a-a1aa063ee7b8",
                           signer=keys.load_signer(*dev_keys), timeout=10) as c:
        yield c


def test_valid_document_is_accepted_then_stored(servers, iemk):
    _, callback, dsn = servers
    result = iemk.provide_and_register(_submission(document()), message_id="urn:uuid:m-1", reply_to=callback.url)
    assert result.verdict is client.Verdict.ACCEPTED
    [reply] = _replies(dsn, "urn:uuid:m-1")
    assert reply.success


def test_bad_snils_is_refused_asynchronously_with_the_patient_index_error(servers, iemk):
    _, callback, dsn = servers
    iemk.provide_and_register(_submission(document(snils="11223344596")), message_id="urn:uuid:m-2",
                              reply_to=callback.url)
    [reply] = _replies(dsn, "urn:uuid:m-2")
    assert not reply.success
    assert reply.errors[0].error_code == "XDSPatientRegistrationError"
    assert "СНИЛС [11223344596] не валидно контрольное число" in reply.errors[0].code_context


@pytest.mark.packs
def test_xsd_failure_is_a_cda_validation_error(servers, iemk):
    _, callback, dsn = servers
    iemk.provide_and_register(_submission(document(omit=("code",))), message_id="urn:uuid:m-3",
                              reply_to=callback.url)
    [reply] = _replies(dsn, "urn:uuid:m-3")
    assert reply.errors[0].error_code == "XDS.CDA.ValidationError"
    assert "{urn:hl7-org:v3}code" in reply.errors[0].code_context


def test_metadata_disagreeing_with_the_cda_names_both_values(servers, iemk):
    _, callback, dsn = servers
    iemk.provide_and_register(_submission(document(local_uid="D-X"), local_uid="D-Y"), message_id="urn:uuid:m-4",
                              reply_to=callback.url)
    [reply] = _replies(dsn, "urn:uuid:m-4")
    assert reply.errors[0].error_code == "XDSDocumentUniqueIdError"
    assert "D-X" in reply.errors[0].code_context and "D-Y" in reply.errors[0].code_context


def test_repeated_message_is_processed_once(servers, iemk):
    emulator, callback, dsn = servers
    for _ in range(3):
        r = iemk.provide_and_register(_submission(document()), message_id="urn:uuid:m-5", reply_to=callback.url)
        assert r.verdict is client.Verdict.ACCEPTED
    assert len(_replies(dsn, "urn:uuid:m-5")) == 1
    stats = emulator.emulator.stats()
    assert stats["received"] == 1 and stats["duplicate_deliveries"] == 2


def test_same_document_under_a_new_message_is_a_duplicate(servers, iemk):
    _, callback, dsn = servers
    iemk.provide_and_register(_submission(document()), message_id="urn:uuid:m-6", reply_to=callback.url)
    assert _replies(dsn, "urn:uuid:m-6")[0].success
    iemk.provide_and_register(_submission(document()), message_id="urn:uuid:m-7", reply_to=callback.url)
    assert _replies(dsn, "urn:uuid:m-7")[0].errors[0].error_code == "XDSDuplicateUniqueIdInRegistry"


def _raw_post(emulator, payload: bytes) -> httpx.Response:
    return httpx.post(emulator.url + REPOSITORY_PATH, content=payload,
                      headers={"Content-Type": soap.CONTENT_TYPE}, timeout=10)


def test_unsigned_request_gets_a_specific_fault(servers):
    emulator, callback, _ = servers
    env = soap.build_envelope(submit.build_request(_submission(document())),
                              soap.Addressing("urn:uuid:u-1", submit.ACTION, "x", callback.url), "client-id")
    response = _raw_post(emulator, soap.to_bytes(env))
    assert response.status_code == 400
    fault = soap.find_fault(soap.parse(response.content))
    assert fault.subcode == "wsse:NO_SIGNATURE"
    assert "запрос не подписан" in fault.reason


def test_missing_client_entity_id_gets_a_specific_fault(servers, dev_keys):
    from iemk_etl.signing import wssecurity

    emulator, callback, _ = servers
    env = soap.build_envelope(submit.build_request(_submission(document())),
                              soap.Addressing("urn:uuid:u-2", submit.ACTION, "x", callback.url), None)
    wssecurity.sign_envelope(env, keys.load_signer(*dev_keys))
    fault = soap.find_fault(soap.parse(_raw_post(emulator, soap.to_bytes(env)).content))
    assert fault.subcode == "egis:AuthorizationRequired"
    assert "clientEntityId" in fault.reason


def test_client_holds_a_request_refused_for_our_own_configuration(servers, dev_keys):
    """No clientEntityId: ИЭМК's Sender fault is our administrator's to fix, not the document's end."""
    emulator, callback, _ = servers
    with client.IemkClient(emulator.url + REPOSITORY_PATH, client_entity_id="", signer=keys.load_signer(*dev_keys),
                           timeout=5) as c:
        result = c.provide_and_register(_submission(document()), message_id="urn:uuid:u-3", reply_to=callback.url)
    assert result.verdict is client.Verdict.HELD
    assert result.code == "egis:AuthorizationRequired" and result.kind.actor is errors.Actor.ADMIN
    assert "clientEntityId" in result.error


def test_unreachable_service_is_transient(dev_keys):
    with client.IemkClient("http://127.0.0.1:9/xds/repository", client_entity_id="c",
                           signer=keys.load_signer(*dev_keys), timeout=2) as c:
        result = c.provide_and_register(_submission(document()), message_id="urn:uuid:u-4", reply_to="http://x")
    assert result.verdict is client.Verdict.TRANSIENT


def test_callback_stores_a_reply_once(servers):
    """Posted twice, kept once: here in quarantine, counted, since nothing in the ledger sent urn:uuid:q-1."""
    _, callback, dsn = servers
    reply = soap.to_bytes(soap.build_envelope(
        build_registry_response(RegistryResponse(SUCCESS)),
        soap.Addressing("urn:uuid:r-1", submit.ASYNC_RESPONSE_ACTION, relates_to="urn:uuid:q-1")))
    for _ in range(2):
        assert httpx.post(callback.url, content=reply, headers={"Content-Type": soap.CONTENT_TYPE}).status_code == 202
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM iemk.inbox").fetchone()[0] == 0
        assert conn.execute("SELECT hits FROM iemk.reply_quarantine WHERE relates_to = 'urn:uuid:q-1'"
                            ).fetchall() == [(2,)]


def test_callback_refuses_a_reply_without_message_id(servers):
    _, callback, _ = servers
    assert httpx.post(callback.url, content=b"<not-soap/>").status_code == 400


# -- state that survives a restart ------------------------------------------------------------------------------

def test_state_and_pending_replies_survive_a_restart(fresh_dsn, flk_packs, dev_keys):
    slow = EmulatorConfig(packs_dir=flk_packs, reply_delay=1.5)
    with CallbackServer(fresh_dsn) as callback:
        with EmulatorServer(slow, fresh_dsn) as emulator, _client_for(emulator, dev_keys) as c:
            assert c.provide_and_register(_submission(document()), message_id="urn:uuid:p-1",
                                          reply_to=callback.url).verdict is client.Verdict.ACCEPTED
        # stopped before the reply was due: a new emulator on the same database delivers it
        with EmulatorServer(EmulatorConfig(packs_dir=flk_packs, reply_delay=0.05), fresh_dsn) as again, \
                _client_for(again, dev_keys) as c:
            assert _replies(fresh_dsn, "urn:uuid:p-1")[0].success
            c.provide_and_register(_submission(document()), message_id="urn:uuid:p-2", reply_to=callback.url)
            # it still knows the document stored before the restart
            assert _replies(fresh_dsn, "urn:uuid:p-2")[0].errors[0].error_code == "XDSDuplicateUniqueIdInRegistry"


def test_unreachable_callback_is_retried_then_recorded_undelivered(fresh_dsn, flk_packs, dev_keys):
    config = EmulatorConfig(packs_dir=flk_packs, reply_delay=0.01, callback_attempts=3, callback_backoff=0.05,
                            callback_timeout=1)
    with EmulatorServer(config, fresh_dsn) as emulator, _client_for(emulator, dev_keys) as c:
        c.provide_and_register(_submission(document()), message_id="urn:uuid:u-9", reply_to="http://127.0.0.1:9/cb")
        deadline = time.monotonic() + 10
        while emulator.emulator.stats()["replies_undelivered"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        with psycopg.connect(fresh_dsn) as conn:
            state, attempts = conn.execute("SELECT state, attempts FROM emulator.reply").fetchone()
    assert (state, attempts) == ("undelivered", 3)


def test_reset_clears_the_state(fresh_dsn, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from iemk_etl.emulator.store import Store

    store = Store(fresh_dsn)
    store.record_message("urn:uuid:r-0", "repository", "a", "c", "accepted")
    store.close()
    result = subprocess.run([str(Path(sys.executable).parent / "iemk-etl"), "emulator", "reset"], capture_output=True,
                            text=True, env={**os.environ, "IEMK_EMULATOR_DSN": fresh_dsn, "IEMK_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    with psycopg.connect(fresh_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM emulator.message").fetchone()[0] == 0


def _client_for(emulator, dev_keys):
    return client.IemkClient(emulator.url + REPOSITORY_PATH, client_entity_id="17c74e63-dc38-438d-a27a-a1aa063ee7b8",
                             signer=keys.load_signer(*dev_keys), timeout=10)
