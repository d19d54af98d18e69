"""Smoke of an installed wheel: a signed ITI-41 send of one valid СЭМД to the emulator, from outside the checkout.

Run by .ci/run in a fresh venv where the wheel (not an editable install) is installed, with the working directory
outside the checkout, so only what the wheel ships can be imported or read. It fails when the package data is
missing: the ИЭМК WSDLs (every send checks its action against them) and the SQL migrations.

    python wheel_smoke.py [WORK_DIR]

Uses an embedded PostgreSQL under WORK_DIR (default: a temporary folder) unless IEMK_SOURCE_DSN is set, and the
official packs when IEMK_SEMD_PACKS is set (otherwise the emulator runs the built-in checks).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import psycopg

import iemk_etl
from iemk_etl import semd, settings
from iemk_etl.devtools.generate import Generator
from iemk_etl.emulator.server import REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.protocol import soap, wsdl
from iemk_etl.protocol.xds import submit
from iemk_etl.protocol.xds.common import RegistryResponse, read_registry_response
from iemk_etl.semd.header import unique_id
from iemk_etl.signing import keys
from iemk_etl.store import db, embedded_pg
from iemk_etl.transport import client
from iemk_etl.transport.callback import CallbackServer

SERVICES = ("pix", "pdq", "registry", "repository")
CLIENT_ENTITY_ID = "17c74e63-dc38-438d-a27a-a1aa063ee7b8"   # a test id the emulator accepts by default
KIND = 42


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"wheel smoke FAILED: {message}")


def check_installed_not_the_checkout() -> None:
    where = Path(iemk_etl.__file__).resolve()
    check("site-packages" in where.parts, f"iemk_etl comes from {where}, not from an installed wheel")
    check(not (Path.cwd() / "iemk_etl").exists(), f"the working directory {Path.cwd()} holds a checkout")
    print(f"iemk_etl from {where.parent}")


def check_package_data() -> None:
    # IEMK_SCHEMAS_DIR would hide a wheel without its WSDLs.
    os.environ.pop("IEMK_SCHEMAS_DIR", None)
    folder = resources.files("iemk_etl.protocol") / "schemas"
    shipped = {f.name for f in folder.iterdir()} if folder.is_dir() else set()
    missing = {f"{s}.wsdl" for s in SERVICES} - shipped
    check(not missing, f"WSDLs not in the wheel: {sorted(missing)}")
    for service in SERVICES:
        check(bool(wsdl.actions(service)), f"{service}.wsdl declares no action")
    check(bool(db.migrations()), "no SQL migrations in the wheel (iemk_etl/store/migrations/*.sql)")
    print(f"package data: {len(shipped)} schema files, {len(db.migrations())} migrations")


def console_script(work: Path) -> tuple[Path, Path]:
    """The `iemk-etl` entry point of the wheel creates the GOST dev certificate."""
    exe = shutil.which("iemk-etl", path=str(Path(sys.executable).parent))
    check(exe is not None, "the iemk-etl console script is not installed")
    out = work / "certs"
    subprocess.run([exe, "dev-cert", "--out", str(out)], check=True, timeout=120)
    return out / "client-cert.pem", out / "client-key.pem"


def submission(day: dt.date) -> submit.Submission:
    case = Generator(seed=1).case(KIND, day, 0)
    context = case.context
    author = context.author
    return submit.Submission(
        unique_id=unique_id(context.mo.oid, context.local_uid), mo_oid=context.mo.oid, mo_name=context.mo.name,
        patient_local_id=context.patient.local_id, kind_code=KIND, created_at=context.created_at,
        author=submit.AuthorRef(author.snils, author.family, author.given, author.patronymic),
        document=semd.build(case), submission_set_id=f"{context.mo.oid}.100.1.1.50.1.1")


def wait_reply(dsn: str, message_id: str, timeout: float = 60) -> RegistryResponse:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(dsn) as conn:
            # not sent through the ledger: the receiver keeps the reply in quarantine, not in the inbox
            row = conn.execute("SELECT body FROM iemk.reply_quarantine WHERE relates_to = %s",
                               (message_id,)).fetchone()
        if row:
            return read_registry_response(soap.parse(bytes(row[0])).body)
        time.sleep(0.1)
    raise SystemExit(f"wheel smoke FAILED: no asynchronous reply to {message_id} in {timeout:.0f} s")


def send(dsn: str, cert: Path, key: Path) -> None:
    packs = settings.load().packs_dir
    print(f"ФЛК in the emulator: {packs or 'built-in checks (IEMK_SEMD_PACKS not set)'}")
    config = EmulatorConfig(packs_dir=packs, reply_delay=0.05)
    message_id = "urn:uuid:00000000-0000-4000-8000-000000000001"
    with EmulatorServer(config, dsn) as emulator, CallbackServer(dsn) as callback, \
            client.IemkClient(emulator.url + REPOSITORY_PATH, client_entity_id=CLIENT_ENTITY_ID,
                              signer=keys.load_signer(cert, key), timeout=30) as iemk:
        result = iemk.provide_and_register(submission(dt.date.today()), message_id=message_id,
                                           reply_to=callback.url)
        check(result.verdict is client.Verdict.ACCEPTED, f"the emulator did not accept the request: {result}")
        reply = wait_reply(dsn, message_id)
    check(reply.success, f"the emulator refused the document: {reply.errors}")
    print(f"signed ITI-41 of one СЭМД kind {KIND}: accepted, registered")


def main() -> int:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="iemk-wheel-smoke-"))
    check_installed_not_the_checkout()
    check_package_data()
    cert, key = console_script(work)
    dsn = os.environ.get("IEMK_SOURCE_DSN")
    home = work / "pg"
    if not dsn:
        dsn = embedded_pg.start(home)
    try:
        db.migrate(dsn)
        send(dsn, cert, key)
    finally:
        if not os.environ.get("IEMK_SOURCE_DSN"):
            embedded_pg.stop(home)
    print("wheel smoke passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
