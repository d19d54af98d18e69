"""`iemk-etl emulator serve|reset` (the ИЭМК emulator, a dev tool) and `callback serve` (the reply receiver).

The emulator is imported inside the commands only: nothing in the production import graph may load it.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from iemk_etl.cli.common import Subparsers, connect
from iemk_etl.settings import Settings
from iemk_etl.signing import keys, pinning
from iemk_etl.signing.backend import get_backend
from iemk_etl.store import db

if TYPE_CHECKING:
    from iemk_etl.emulator.service import EmulatorConfig


def _serve_until_signal(stop: Callable[[], None], url: str, what: str) -> int:
    print(f"{what} listening on {url} (Ctrl+C to stop)", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    stop()
    return 0


def emulator_config(settings: Settings, reply_delay: float = 0.5, faults: str | None = None,
                    require_registered_patient: bool = False, reply_cert: str | None = None,
                    reply_key: str | None = None, nsi_dir: str | None = None,
                    reply_threads: int | None = None) -> EmulatorConfig:
    from iemk_etl.emulator.faults import FaultProfile
    from iemk_etl.emulator.service import EmulatorConfig

    profile = FaultProfile.load(faults or settings.emulator_faults)
    bound = {client: pinning.Pins.load(entries) for client, entries in settings.emulator_client_certificates.items()}
    signer = keys.load_signer(Path(reply_cert), Path(reply_key), backend=get_backend(settings.gost_backend)) \
        if reply_cert and reply_key else None

    return EmulatorConfig(packs_dir=settings.pack_sources, require_packs=settings.require_packs,
                          reply_delay=reply_delay,
                          faults=profile, require_registered_patient=require_registered_patient,
                          logical_control=settings.logical_control, known_clients=settings.emulator_clients,
                          known_mo=settings.emulator_mo, client_certificates=bound, reply_signer=signer,
                          max_message_bytes=settings.max_message_bytes, nsi_dir=Path(nsi_dir) if nsi_dir else None,
                          reply_threads=reply_threads or settings.emulator_reply_threads)


def cmd_emulator_serve(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.emulator.server import EmulatorServer

    if (args.reply_cert is None) != (args.reply_key is None):
        raise SystemExit("--reply-cert и --reply-key задаются вместе")
    config = emulator_config(settings, args.reply_delay, args.faults, args.require_registered_patient,
                             args.reply_cert, args.reply_key, args.nsi, args.reply_threads)
    shared = args.workers > 1 or args.reuse_port
    server = EmulatorServer(config, _emulator_dsn(settings), args.host, args.port, reuse_port=shared).start()
    # More processes on the same port: one Python process is held to about one core by the GIL.
    helpers = [subprocess.Popen([*sys.argv[:1], *_worker_args(args)]) for _ in range(args.workers - 1)]

    def stop() -> None:
        for helper in helpers:
            helper.terminate()
        for helper in helpers:
            helper.wait(timeout=20)
        server.stop()

    # Resolved here, on the main thread before the first request: which backend verifies the requests' signatures.
    gost = get_backend().name
    return _serve_until_signal(stop, server.url, f"ИЭМК emulator ({args.workers} process(es), GOST backend {gost})")


def _worker_args(args: argparse.Namespace) -> list[str]:
    argv = ["emulator", "serve", "--host", args.host, "--port", str(args.port), "--reply-delay", str(args.reply_delay),
            "--workers", "1", "--reuse-port"]
    if args.faults:
        argv += ["--faults", args.faults]
    if args.require_registered_patient:
        argv.append("--require-registered-patient")
    if args.reply_cert and args.reply_key:
        argv += ["--reply-cert", args.reply_cert, "--reply-key", args.reply_key]
    if args.nsi:
        argv += ["--nsi", args.nsi]
    if args.reply_threads:
        argv += ["--reply-threads", str(args.reply_threads)]
    return argv


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("ожидается целое число ≥ 1")
    return value


def _emulator_dsn(settings: Settings) -> str:
    """IEMK_EMULATOR_DSN, else the project database (the emulator keeps to its own schema there)."""
    return settings.emulator_dsn or db.resolve_dsn(settings)


def cmd_emulator_reset(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.emulator.store import Store

    store = Store(_emulator_dsn(settings))
    store.reset()
    store.close()
    print("emulator state cleared (patients, documents, messages, replies)")
    return 0


def cmd_callback_serve(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.transport.callback import CallbackServer, ReplyTrust

    dsn, conn = connect(settings)  # checks the schema before listening: replies must land in a current ledger
    conn.close()
    server = CallbackServer(dsn, args.host, args.port, trust=ReplyTrust.from_settings(settings),
                            max_message_bytes=settings.max_message_bytes).start()
    return _serve_until_signal(server.stop, server.url, "callback receiver")


def register(sub: Subparsers) -> None:
    ep = sub.add_parser("emulator", help="the ИЭМК emulator").add_subparsers(dest="emulator_command", required=True)
    es = ep.add_parser("serve", help="serve the emulator over HTTP")
    es.add_argument("--host", default="127.0.0.1")
    es.add_argument("--port", type=int, default=8510)
    es.add_argument("--reply-delay", type=float, default=0.5, help="seconds before the asynchronous reply")
    es.add_argument("--faults", help="fault profile: JSON or a JSON file (default: IEMK_EMULATOR_FAULTS)")
    es.add_argument("--require-registered-patient", action="store_true",
                    help="refuse ITI-41 documents whose patient was not fed through PIX first")
    es.add_argument("--reply-cert", help="certificate (PEM) the emulator signs its asynchronous replies with")
    es.add_argument("--reply-key", help="its private key (PEM, PKCS#8); with --reply-cert")
    es.add_argument("--nsi", metavar="DIR", help="НСИ control of received documents against this folder of ФНСИ "
                    "dictionary files, answered as XDSDictionaryValidationError (default: none)")
    es.add_argument("--reply-threads", type=_positive, metavar="N",
                    help="threads delivering the asynchronous replies at once "
                    "(default: IEMK_EMULATOR_REPLY_THREADS, else 4)")
    es.add_argument("--workers", type=int, default=1, help="server processes sharing the port (needs --port)")
    es.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    es.set_defaults(func=cmd_emulator_serve)
    ep.add_parser("reset", help="clear the emulator's stored state").set_defaults(func=cmd_emulator_reset)

    cp = sub.add_parser("callback", help="the receiver of asynchronous replies").add_subparsers(
        dest="callback_command", required=True)
    cs = cp.add_parser("serve", help="serve the callback receiver over HTTP")
    cs.add_argument("--host", default="127.0.0.1")
    cs.add_argument("--port", type=int, default=8520)
    cs.set_defaults(func=cmd_callback_serve)
