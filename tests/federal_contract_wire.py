"""The real messages of tests/test_federal_contract.py: our pipeline, default settings, against the running emulator.

Demo data of one МО go through the pipeline's own steps (patients fed by PIX, documents validated and sent as
ITI-41), then the query steps run (PDQ, ITI-18, ITI-43). Every request is captured as it leaves the HTTP client,
so what the checks read is exactly what went on the wire; the emulator answering each one proves it was usable.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import httpx
import psycopg
from psycopg.conninfo import make_conninfo

from iemk_etl import settings
from iemk_etl.devtools import demo_data
from iemk_etl.emulator.server import PDQ_PATH, PIX_PATH, REGISTRY_PATH, REPOSITORY_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.pipeline import extract, patients, queries, replies, send, validate
from iemk_etl.protocol import soap, xml
from iemk_etl.protocol.hl7v3 import pdq
from iemk_etl.protocol.xds import query as xds_query
from iemk_etl.signing import keys, wssecurity
from iemk_etl.store import integration
from iemk_etl.transport import client
from iemk_etl.transport.callback import CallbackServer

from exchange_helpers import wait_answers

CLIENT = "17c74e63-dc38-438d-a27a-a1aa063ee7b8"
UNKNOWN_CLIENT = "00000000-0000-4000-8000-000000000000"
END = dt.date(2026, 9, 10)
MO = demo_data.DEMO_MO[0][0]
PERIOD = (dt.datetime(2026, 9, 1, tzinfo=demo_data.MSK), dt.datetime(2026, 9, 10, tzinfo=demo_data.MSK))


@dataclasses.dataclass
class Sent:
    """One request as it went on the wire."""

    content_type: str
    raw: bytes
    framing: str = ""       # how the body was delimited: "Content-Length" (its exact length) or what else

    @property
    def envelope(self):  # noqa: ANN201 - an lxml element
        return xml.parse(self.raw)

    @property
    def action(self) -> str:
        return soap.parse(self.raw).addressing.action


class Capture:
    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.unknown_client: soap.Fault | None = None

    def __call__(self, request: httpx.Request) -> None:
        raw = request.read()
        framing = ("Content-Length" if request.headers.get("content-length") == str(len(raw))
                   and "transfer-encoding" not in request.headers
                   else request.headers.get("transfer-encoding", "no length"))
        self.sent.append(Sent(request.headers["content-type"], raw, framing))

    def first(self, action: str) -> Sent:
        found = [s for s in self.sent if s.action == action]
        assert found, f"no request with Action {action} went out (sent: {sorted({s.action for s in self.sent})})"
        return found[0]


def new_database(template_dsn: str, name: str) -> str:
    with psycopg.connect(template_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE iemk_template")
    return make_conninfo(template_dsn, dbname=name)


def capture_wire(dsn: str, dev_keys: tuple[Path, Path], packs: Path | None) -> Capture:
    """Run the pipeline with default settings over demo data, keeping every request it sends."""
    capture = Capture()
    http = httpx.Client(timeout=httpx.Timeout(30), event_hooks={"request": [capture]})
    emulator_config = EmulatorConfig(packs_dir=packs, reply_delay=0.05, known_clients=frozenset({CLIENT}))
    with psycopg.connect(dsn, autocommit=True) as conn, EmulatorServer(emulator_config, dsn) as emulator, \
            CallbackServer(dsn) as callback, \
            client.IemkClient(emulator.url + REPOSITORY_PATH, client_entity_id=CLIENT,
                              signer=keys.load_signer(*dev_keys), timeout=30, http=http) as iemk:
        demo_data.seed(conn, patients=8, days=2, seed=7, end=END, fail_share=0.0, unsigned_share=0.0)
        integration.set_enabled(conn, MO, True)
        cfg = dataclasses.replace(settings.load({"IEMK_CLIENT_ENTITY_ID": CLIENT}), callback_url=callback.url,
                                  repository_url=emulator.url + REPOSITORY_PATH,
                                  registry_url=emulator.url + REGISTRY_PATH, pix_url=emulator.url + PIX_PATH,
                                  pdq_url=emulator.url + PDQ_PATH)
        ids = validate.validate(conn, extract.extract(conn, MO, *PERIOD), cfg)
        assert patients.feed(conn, MO, ids, cfg, iemk).accepted > 0
        report = send.send(dsn, ids, cfg, iemk)
        assert report.accepted_now > 0
        wait_answers(conn, report.sent)
        replies.write_back(conn, MO, ids)
        found = queries.search_patients(iemk, cfg, pdq.PatientQuery(local_id=(MO, _a_local_id(conn))))
        assert found, "PDQ found the fed patient"
        listed = queries.list_documents(iemk, cfg, xds_query.DocumentQuery(mo_oid=MO))
        assert listed, "ITI-18 lists the sent documents"
        shown = queries.show_document(iemk, cfg, conn, listed[0].unique_id)
        assert shown.same_as_sent
        capture.unknown_client = _unknown_client_fault(emulator.url + PDQ_PATH, cfg, dev_keys)
    return capture


def _a_local_id(conn: psycopg.Connection) -> str:
    row = conn.execute("SELECT p.local_id FROM mis.patient p JOIN iemk.patient_registration r"
                       " ON r.patient_id = p.id LIMIT 1").fetchone()
    assert row is not None
    return row[0]


def _unknown_client_fault(url: str, cfg: settings.Settings, dev_keys: tuple[Path, Path]) -> soap.Fault:
    """What a system ИЭМК does not know gets: a signed PDQ from an unregistered clientEntityId."""
    body = pdq.build_request(pdq.PatientQuery(snils="11223344595"), system_id=UNKNOWN_CLIENT)
    addressing = soap.Addressing(soap.new_message_id(), cfg.pdq_action, to=url, reply_to=soap.ANONYMOUS)
    envelope = soap.build_envelope(body, addressing, UNKNOWN_CLIENT)
    wssecurity.sign_envelope(envelope, keys.load_signer(*dev_keys))
    answer = httpx.post(url, content=soap.to_bytes(envelope), headers={"Content-Type": soap.CONTENT_TYPE}, timeout=30)
    fault = soap.find_fault(soap.parse(answer.content))
    assert fault is not None, f"HTTP {answer.status_code} without a fault"
    return fault
