"""Requests per second the ИЭМК emulator sustains: PIX add, ITI-41 accepted (synchronous part), and ITI-41
processed end to end (ФЛК and the asynchronous reply) with and without ФЛК.

Run: .venv/bin/python benchmarks/bench_emulator.py [--requests 400] [--clients 8]
Requests are built and signed (GOST) before the clock starts, so only the emulator is measured; it runs as its
own process (`iemk-etl emulator serve`) on an embedded PostgreSQL in a temporary folder, the replies go to a
trivial local sink. "Without ФЛК" means no pack configured (only the built-in header checks).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from iemk_etl import settings  # noqa: E402
from iemk_etl.devtools import certs  # noqa: E402
from iemk_etl.emulator.server import PIX_PATH, REPOSITORY_PATH, STATS_PATH  # noqa: E402
from iemk_etl.protocol import soap  # noqa: E402
from iemk_etl.protocol.hl7v3 import pix  # noqa: E402
from iemk_etl.protocol.hl7v3.common import PatientRecord  # noqa: E402
from iemk_etl.protocol.xds import submit  # noqa: E402
from iemk_etl.signing import keys, wssecurity  # noqa: E402
from iemk_etl.store import embedded_pg  # noqa: E402

from cda_factory import MO, document, unique_id  # noqa: E402
from emulator_process import emulator_process  # noqa: E402


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _signed(signer: keys.AnySigner, body, action: str, to: str, reply_to: str) -> bytes:
    env = soap.build_envelope(body, soap.Addressing(soap.new_message_id(), action, to, reply_to), "client")
    wssecurity.sign_envelope(env, signer, ttl_seconds=3600)
    return soap.to_bytes(env)


def _fire(url: str, payloads: list[bytes], clients: int) -> float:
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=clients)) as http:
        def post(p: bytes) -> int:
            return http.post(url, content=p, headers={"Content-Type": soap.CONTENT_TYPE}).status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            codes = list(pool.map(post, payloads))
        elapsed = time.perf_counter() - started
    bad = [c for c in codes if c not in (200, 202)]
    if bad:
        raise SystemExit(f"{len(bad)} requests failed: {sorted(set(bad))}")
    return len(payloads) / elapsed


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--workers", type=int, default=2, help="emulator processes sharing the port")
    args = p.parse_args()
    home = Path(tempfile.mkdtemp(prefix="iemk-bench-"))
    dsn = embedded_pg.start(home)
    signer = keys.load_signer(*certs.create_dev_certificate(home / "certs"))
    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    reply_to = f"http://127.0.0.1:{sink.server_address[1]}/cb"
    packs = settings.load().packs_dir
    print(f"{args.requests} requests, {args.clients} clients, {args.workers} emulator processes, GOST-signed")
    empty = home / "no-packs"
    empty.mkdir()
    try:
        # The first configuration meets a cold database and cold processes: it runs once unreported.
        for label, pack_dir, logical in (("warm-up", empty, False), ("without ФЛК", empty, False),
                                         ("with ФЛК: XSD", packs, False),
                                         ("with ФЛК: XSD + Schematron", packs, True)):
            with emulator_process(dsn, home, packs=pack_dir, logical=logical, workers=args.workers) as url:
                docs = [_signed(signer, submit.build_request(dataclasses.replace(
                    _submission(), unique_id=unique_id(MO.oid, f"{label[:6]}-{n}"),
                    document=document(local_uid=f"{label[:6]}-{n}"))), submit.ACTION, url, reply_to)
                    for n in range(args.requests)]
                warm, docs = docs[: args.requests // 5], docs[args.requests // 5:]
                _fire(url + REPOSITORY_PATH, warm, args.clients)        # warm-up: connections, caches, pages
                while httpx.get(url + STATS_PATH).json().get("replies_delivered", 0) < len(warm):
                    time.sleep(0.05)
                delivered = len(warm)
                started = time.perf_counter()
                accepted = _fire(url + REPOSITORY_PATH, docs, args.clients)
                while httpx.get(url + STATS_PATH).json().get("replies_delivered", 0) < delivered + len(docs):
                    time.sleep(0.05)
                processed = len(docs) / (time.perf_counter() - started)
                if label == "warm-up":
                    continue
                print(f"ITI-41 {label:<28} accepted {accepted:7.0f}/s   processed end to end {processed:7.0f}/s")
                if label == "without ФЛК":
                    feeds = [_signed(signer, pix.build_feed(pix.ADD, PatientRecord(
                        MO.oid, f"P-{n}", "Иванов", "Иван", None, "1", "19800101"), system_id="s", system_name="n",
                        mo_name="m"), pix.ACTION[pix.ADD], url, soap.ANONYMOUS)
                        for n in range(args.requests)]
                    print(f"PIX add {'':<28} answered {_fire(url + PIX_PATH, feeds, args.clients):7.0f}/s")
    finally:
        sink.shutdown()
        embedded_pg.stop(home)


def _submission() -> submit.Submission:
    return submit.Submission(unique_id(MO.oid, "B"), MO.oid, MO.name, "P-1", 42, dt.datetime.now(dt.UTC),
                          submit.AuthorRef("11223344595", "Петрова", "Анна", None), b"", "1.2.3")


if __name__ == "__main__":
    main()
