"""`iemk-etl demo`: the whole chain on the embedded defaults, with a readable result.

Embedded PostgreSQL (or IEMK_SOURCE_DSN) → schema → demo МИС data for 2 МО → integration on →
ИЭМК emulator + callback receiver on loopback → the export DAGs over the last 3 days → statuses.

The demo runs the trust checks a real installation would: the emulator knows the demo system only
(clientEntityId bound to the МО request certificates) and signs its replies with a test key of its own, which the
callback receiver requires and pins (IEMK_REPLY_SIGNATURE=require with IEMK_REPLY_CERTIFICATES).
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

from cryptography import x509

from iemk_etl import periods
from iemk_etl.devtools import certs, demo_data, fnsi_standin
from iemk_etl.emulator.server import EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.pipeline import nsi, report
from iemk_etl.pipeline.dag_runs import run_export
from iemk_etl.settings import Settings
from iemk_etl.signing import keys, pinning
from iemk_etl.signing.backend import get_backend
from iemk_etl.signing.keystore import KeyStore
from iemk_etl.store import db, integration
from iemk_etl.transport.callback import CallbackServer, ReplyTrust

DEMO_CLIENT_ENTITY_ID = "17c74e63-dc38-438d-a27a-a1aa063ee7b8"  # the public samples' test system, demo only


def _say(text: str) -> None:
    print(text, flush=True)


def run(settings: Settings, *, patients: int, days: int, seed: int) -> int:
    started = time.monotonic()
    dsn = db.resolve_dsn(settings)
    where = "IEMK_SOURCE_DSN" if settings.source_dsn else f"embedded PostgreSQL under {settings.home}"
    _say(f"1/5 database: {where}")
    db.migrate(dsn)
    end = dt.datetime.now(periods.zone(settings.timezone)).date()
    store = KeyStore(settings)
    codes = []
    with db.connect(dsn, autocommit=True) as conn:
        result = demo_data.seed(conn, patients=patients, days=days, seed=seed, end=end, store=store,
                                tz=settings.timezone)
        _say(f"2/5 demo data: {result.patients} patients of {result.mo} МО, {result.documents} new documents, "
             f"signed with GOST R 34.10-2012 test keys in {settings.keys_dir} "
             f"({get_backend(settings.gost_backend).name} backend)")
        # the demo dictionary set (transcribed from public ФНСИ copies, devtools/nsi_demo/SOURCES.md)
        dictionaries = nsi.load_path(conn, fnsi_standin.DEMO_DIR)
        _say(f"    НСИ: {len(dictionaries.loaded) + len(dictionaries.unchanged)} demo dictionaries held "
             f"({len(dictionaries.loaded)} loaded now)")
        for oid, *_ in demo_data.DEMO_MO:
            state = integration.set_enabled(conn, oid, True)
            codes.append(state.code)
            integration.remember_mo(settings.mo_config_path,
                                    integration.MoEntry(state.oid, state.code, state.name))
            _say(f"3/5 integration {state.code}: {state.shown}")
    packs = ", ".join(str(p) for p in settings.pack_sources if p.is_dir()) or "none configured: built-in checks only"
    client_id = settings.client_entity_id or DEMO_CLIENT_ENTITY_ID
    reply_cert, reply_key = _emulator_reply_pair(settings)
    system_certs = [c for c in (store.request_certificate(code) for code in codes) if c is not None]
    config = EmulatorConfig(packs_dir=settings.pack_sources, require_packs=settings.require_packs, reply_delay=0.3,
                            nsi_dir=fnsi_standin.DEMO_DIR,
                            logical_control=settings.logical_control, require_registered_patient=True,
                            reply_threads=settings.emulator_reply_threads,
                            known_clients=frozenset({client_id}),
                            client_certificates={client_id: pinning.Pins(frozenset(map(pinning.fingerprint,
                                                                                       system_certs)))},
                            reply_signer=keys.load_signer(reply_cert, reply_key,
                                                          backend=get_backend(settings.gost_backend)))
    trust = ReplyTrust(require=True, pins=pinning.Pins.load([str(reply_cert)]))
    with EmulatorServer(config, dsn) as emulator, CallbackServer(dsn, trust=trust) as callback:
        _say(f"4/5 ИЭМК emulator {emulator.url} (packs: {packs}; system {client_id} bound to its certificates; "
             f"replies signed), callback receiver {callback.url} (reply signature required, pinned)")
        env = {
            "IEMK_SOURCE_DSN": dsn, "IEMK_HOME": str(settings.home), "IEMK_URL": emulator.url,
            "IEMK_CALLBACK_URL": callback.url,
            # The emulator knows this system only, bound to the МО request certificates, as ЕГИСЗ registers one.
            "IEMK_CLIENT_ENTITY_ID": client_id,
            "IEMK_REPLY_SIGNATURE": "require", "IEMK_REPLY_CERTIFICATES": str(reply_cert),
            "IEMK_REPLY_POKE_SECONDS": "1", "IEMK_REPLY_TIMEOUT_SECONDS": "120",
        }
        first, last = end - dt.timedelta(days=days), end - dt.timedelta(days=1)
        _say(f"5/5 export {first} … {last} through the Airflow DAGs (dag.test, one run per day and МО)")
        code = run_export(["all"], first, last, env)
        _say(f"    emulator: {emulator.emulator.stats()}")
    with db.connect(dsn, autocommit=True) as conn:
        frame = report.documents(conn)
        quarantine = report.quarantined(conn)
    _say("")
    sys.stdout.write(report.render(frame, "table", quarantine))
    _say(f"\ndone in {time.monotonic() - started:.0f} s; `iemk-etl status` shows this again")
    return code


def _emulator_reply_pair(settings: Settings) -> tuple[Path, Path]:
    """The emulator's own test certificate for signing replies (as ИЭМК signs its own), made once under IEMK_HOME."""
    folder = settings.home / "emulator"
    cert, key = folder / "reply-cert.pem", folder / "reply-key.pem"
    if cert.is_file() and key.is_file() and \
            x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc > dt.datetime.now(dt.UTC):
        return cert, key
    return certs.create_dev_certificate(folder, common_name="ИЭМК emulator (replies)", prefix="reply",
                                        backend=get_backend(settings.gost_backend))
