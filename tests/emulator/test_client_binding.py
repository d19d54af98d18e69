"""ЕГИСЗ binds a registered information system (clientEntityId) to its certificate(s); so does the emulator
(IEMK_EMULATOR_CLIENTS = ID=CERT,...): a request of a bound system signed with another certificate is refused exactly
as a request of an unregistered system is, and a bare ID stays unbound, with a warning at start."""

import logging

import httpx
import pytest

from iemk_etl import settings as settings_module
from iemk_etl.cli.servers import emulator_config
from iemk_etl.devtools import certs
from iemk_etl.emulator.server import REGISTRY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.protocol import soap
from iemk_etl.protocol.xds import query as xds_query
from iemk_etl.signing import keys, pinning, wssecurity

SYSTEM = "17c74e63-dc38-438d-a27a-a1aa063ee7b8"
STRANGER = "0b6c3d7e-0000-4000-8000-00000000beef"
MO_OID = "1.2.643.5.1.13.13.12.2.78.7801"


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory):
    return certs.create_dev_certificate(tmp_path_factory.mktemp("other"), common_name="another system", prefix="other")


def _ask(url: str, client_id: str, signer: keys.Signer) -> tuple[int, soap.Fault | None]:
    """An ITI-18 query, as any system would send it: (HTTP status, the fault if refused)."""
    addressing = soap.Addressing(soap.new_message_id(), xds_query.ACTION, to=url + REGISTRY_PATH,
                                 reply_to=soap.ANONYMOUS)
    envelope = soap.build_envelope(xds_query.build_request(xds_query.DocumentQuery(mo_oid=MO_OID)), addressing,
                                   client_id)
    wssecurity.sign_envelope(envelope, signer)
    r = httpx.post(url + REGISTRY_PATH, content=soap.to_bytes(envelope), headers={"Content-Type": soap.CONTENT_TYPE},
                   timeout=10)
    return r.status_code, soap.find_fault(soap.parse(r.content))


def _bound(*cert_paths) -> pinning.Pins:
    return pinning.Pins.load([str(p) for p in cert_paths])


def test_a_registered_system_signing_with_its_own_certificate_is_served(fresh_dsn, dev_keys):
    config = EmulatorConfig(known_clients=frozenset(), client_certificates={SYSTEM: _bound(dev_keys[0])})
    with EmulatorServer(config, fresh_dsn) as emulator:
        status, fault = _ask(emulator.url, SYSTEM, keys.load_signer(*dev_keys))
    assert (status, fault) == (200, None)


def test_another_certificate_is_refused_exactly_as_an_unregistered_system(fresh_dsn, dev_keys, other_keys):
    bound = EmulatorConfig(known_clients=frozenset(), client_certificates={SYSTEM: _bound(dev_keys[0])})
    with EmulatorServer(bound, fresh_dsn) as emulator:
        wrong_cert = _ask(emulator.url, SYSTEM, keys.load_signer(*other_keys))
    unregistered = EmulatorConfig(known_clients=frozenset({STRANGER}))
    with EmulatorServer(unregistered, fresh_dsn) as emulator:
        unknown = _ask(emulator.url, SYSTEM, keys.load_signer(*dev_keys))
    assert wrong_cert == unknown
    status, fault = wrong_cert
    assert status == 400
    assert (fault.code, fault.subcode) == ("Sender", "egis:UnknownClient")
    assert fault.reason == f"информационная система [{SYSTEM}] не зарегистрирована в ЕГИСЗ"


def test_the_setting_binds_by_path_or_fingerprint_and_a_bare_id_stays_unbound_with_a_warning(
        fresh_dsn, dev_keys, other_keys, caplog):
    other_fingerprint = pinning.fingerprint(keys.read_certificate(other_keys[0].read_bytes()))
    clients = f"{SYSTEM}={dev_keys[0]}, {STRANGER}=sha256:{other_fingerprint}, bare-system"
    cfg = settings_module.load({"IEMK_EMULATOR_CLIENTS": clients})
    assert cfg.emulator_clients == {SYSTEM, STRANGER, "bare-system"}
    config = emulator_config(cfg)
    with caplog.at_level(logging.WARNING, logger="iemk_etl.emulator.service"), \
            EmulatorServer(config, fresh_dsn) as emulator:
        assert _ask(emulator.url, SYSTEM, keys.load_signer(*dev_keys)) == (200, None)
        assert _ask(emulator.url, STRANGER, keys.load_signer(*other_keys)) == (200, None)
        assert _ask(emulator.url, STRANGER, keys.load_signer(*dev_keys))[1].subcode == "egis:UnknownClient"
        # unbound: any valid certificate still goes
        assert _ask(emulator.url, "bare-system", keys.load_signer(*other_keys)) == (200, None)
        assert _ask(emulator.url, "nobody", keys.load_signer(*dev_keys))[1].subcode == "egis:UnknownClient"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("bare-system is not bound to a certificate" in w for w in warnings), warnings
    assert not any(SYSTEM in w or STRANGER in w for w in warnings)


def test_a_malformed_binding_is_refused_at_load_naming_the_variable(tmp_path):
    with pytest.raises(settings_module.SettingsError, match="IEMK_EMULATOR_CLIENTS"):
        settings_module.load({"IEMK_EMULATOR_CLIENTS": f"{SYSTEM}={tmp_path / 'absent.pem'}"})
