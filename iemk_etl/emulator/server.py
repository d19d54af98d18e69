"""The emulator over HTTP: one path per service, and the sender of asynchronous replies."""

from __future__ import annotations

import json
import logging
import threading

import httpx

from iemk_etl import soap
from iemk_etl.emulator.service import EmulatorConfig, IemkEmulator
from iemk_etl.emulator.store import Store, Submission
from iemk_etl.http_server import BackgroundServer, BodyTooLargeError, QuietHandler

log = logging.getLogger(__name__)

REPOSITORY_PATH = "/xds/repository"
REGISTRY_PATH = "/xds/registry"
PIX_PATH = "/pix"
PDQ_PATH = "/pdq"
STATS_PATH = "/_emulator/stats"


class ReplySender:
    """Delivers the due RegistryResponses to ReplyTo, retrying with backoff; the queue is in the store, so
    replies not yet delivered when the emulator stops go out after it starts again."""

    def __init__(self, emulator: IemkEmulator) -> None:
        self.emulator = emulator
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._http = httpx.Client(timeout=httpx.Timeout(emulator.config.callback_timeout))
        self._thread = threading.Thread(target=self._run, name="emulator-replies", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self._http.close()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                claimed = self.emulator.store.due_reply()
                if claimed is None:
                    wait = self.emulator.store.next_due_in()
                    self._wake.wait(timeout=0.5 if wait is None else min(wait, 0.5))
                    self._wake.clear()
                    continue
                self._deliver(*claimed)
            except Exception:  # a bad reply or a database hiccup must not stop the sender thread
                log.exception("reply sender")
                self._stopped.wait(1)

    def _deliver(self, reply_id: int, sub: Submission, body: bytes | None, attempts: int) -> None:
        store, cfg = self.emulator.store, self.emulator.config
        if body is None:
            body = self.emulator.reply_envelope(sub, self.emulator.process(sub))
            store.save_reply_body(reply_id, body)
        try:
            r = self._http.post(sub.reply_to, content=body, headers={"Content-Type": soap.CONTENT_TYPE})
            error = None if r.status_code < 300 else f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            store.reply_attempted(reply_id, delivered=True, error=None, retry_in=None)
            return
        log.warning("reply to %s not delivered: %s", sub.reply_to, error)
        last = attempts + 1 >= cfg.callback_attempts
        store.reply_attempted(reply_id, delivered=False, error=error,
                              retry_in=None if last else cfg.callback_backoff * 2**attempts)


def make_handler(emulator: IemkEmulator, replies: ReplySender) -> type[QuietHandler]:
    routes = {REPOSITORY_PATH: emulator.repository, REGISTRY_PATH: emulator.registry_query,
              PIX_PATH: emulator.patient_feed, PDQ_PATH: emulator.patient_query}

    class EmulatorHandler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            service = routes.get(self.path.split("?")[0])
            if service is None:
                self.respond(404, b"unknown service path")
                return
            try:
                body = self.read_body()
            except BodyTooLargeError as exc:
                self.respond(413, str(exc).encode())
                return
            answer = service(body)
            if answer.scheduled:
                replies.poke()
            self.respond(answer.status, answer.body, soap.CONTENT_TYPE)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == STATS_PATH:
                self.respond(200, json.dumps(emulator.stats()).encode(), "application/json")
            else:
                self.respond(404, b"not found")

    return EmulatorHandler


class EmulatorServer:
    """The emulator listening on HTTP, with its reply sender; start() / stop() or a ``with`` block."""

    def __init__(self, config: EmulatorConfig, dsn: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.store = Store(dsn)
        self.emulator = IemkEmulator(config, self.store)
        self.replies = ReplySender(self.emulator)
        self.server = BackgroundServer(make_handler(self.emulator, self.replies), host, port)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> EmulatorServer:
        self.replies.start()
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        self.replies.stop()
        self.store.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
