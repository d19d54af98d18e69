"""The emulator over HTTP: one path per service, and the sender of asynchronous replies."""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import time

import httpx

from iemk_etl.emulator import inspector
from iemk_etl.emulator.faults import RATE_LIMIT_TEXT, SyncFault
from iemk_etl.emulator.service import EmulatorConfig, IemkEmulator, verdict
from iemk_etl.emulator.store import Store, Submission
from iemk_etl.protocol import soap, wsdl
from iemk_etl.protocol.xds import retrieve
from iemk_etl.transport.http_server import BackgroundServer, QuietHandler

log = logging.getLogger(__name__)

REPOSITORY_PATH = "/xds/repository"
REGISTRY_PATH = "/xds/registry"
PIX_PATH = "/pix"
PDQ_PATH = "/pdq"
STATS_PATH = "/_emulator/stats"
INSPECTOR_PATH = "/_emulator/messages"


class ReplySender:
    """Delivers the due RegistryResponses to ReplyTo, retrying with backoff; the queue is in the store, so
    replies not yet delivered when the emulator stops go out after it starts again.

    ``config.reply_threads`` senders run at once (IEMK_EMULATOR_REPLY_THREADS): each claims its next reply from the
    store (``Store.due_reply``: never one another sender holds) and posts over its own keep-alive connection to the
    callback host, so a night's tail of replies is not held to one request at a time. Order is not kept: ИЭМК's
    answers come in any order anyway (see the ``out_of_order`` fault)."""

    def __init__(self, emulator: IemkEmulator) -> None:
        self.emulator = emulator
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._clients_lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, name=f"emulator-replies-{n}", daemon=True)
                         for n in range(max(1, emulator.config.reply_threads))]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=10)
        with self._clients_lock:
            for http in self._clients:
                http.close()
            self._clients.clear()

    def _http(self) -> httpx.Client:
        """This thread's client: its connections to the callback host stay open between replies (keep-alive)."""
        http: httpx.Client | None = getattr(self._local, "http", None)
        if http is None:
            http = httpx.Client(timeout=httpx.Timeout(self.emulator.config.callback_timeout))
            self._local.http = http
            with self._clients_lock:
                self._clients.append(http)
        return http

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                claimed = self.emulator.store.due_reply()
                if claimed is None:
                    self._idle()
                    continue
                self._deliver(*claimed)
            except Exception:  # a bad reply or a database hiccup must not stop the sender thread
                log.exception("reply sender")
                self._stopped.wait(1)

    def _idle(self) -> None:
        """Nothing due: sleep until the next reply is due (at most half a second) or a new one is scheduled."""
        wait = self.emulator.store.next_due_in()
        self._wake.wait(timeout=0.5 if wait is None else min(wait, 0.5))
        self._wake.clear()

    def _deliver(self, reply_id: int, sub: Submission, body: bytes | None, attempts: int) -> None:
        store, cfg = self.emulator.store, self.emulator.config
        if body is None:
            response = self.emulator.process(sub, record_verdict=False)
            body = self.emulator.reply_envelope(sub, response)
            store.save_reply_body(reply_id, body, (sub.message_id, *verdict(response)))
            if cfg.faults.async_fault("iti41", "lost_reply"):
                store.record_injected("iti41", "lost_reply")
                store.reply_lost(reply_id)
                return
        copies = 2 if attempts == 0 and cfg.faults.async_fault("iti41", "duplicate_reply") else 1
        if copies == 2:
            store.record_injected("iti41", "duplicate_reply")
        error = None
        for _ in range(copies):
            error = self._post(sub.reply_to, body) or error
        if error is None:
            store.reply_attempted(reply_id, delivered=True, error=None, retry_in=None)
            return
        log.warning("reply to %s not delivered: %s", sub.reply_to, error)
        last = attempts + 1 >= cfg.callback_attempts
        store.reply_attempted(reply_id, delivered=False, error=error,
                              retry_in=None if last else cfg.callback_backoff * 2**attempts)

    def _post(self, url: str, body: bytes) -> str | None:
        try:
            r = self._http().post(url, content=body, headers={"Content-Type": soap.CONTENT_TYPE})
            return None if r.status_code < 300 else f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"


def _operation(path: str, body: bytes) -> str:
    if path == REPOSITORY_PATH:
        return "iti43" if retrieve.ACTION.encode() + b"<" in body else "iti41"
    return {REGISTRY_PATH: "iti18", PIX_PATH: "pix", PDQ_PATH: "pdq"}.get(path, "other")


def make_handler(emulator: IemkEmulator, replies: ReplySender) -> type[QuietHandler]:
    routes = {REPOSITORY_PATH: emulator.repository, REGISTRY_PATH: emulator.registry_query,
              PIX_PATH: emulator.patient_feed, PDQ_PATH: emulator.patient_query}

    class EmulatorHandler(QuietHandler):
        max_body = emulator.config.max_message_bytes

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            service = routes.get(self.path.split("?")[0])
            if service is None:
                self.reject(404, "unknown service path")
                return
            body = self.read_request_body()
            if body is None:     # refused (413, 400, 501, 417), answered and logged
                return
            operation = _operation(self.path.split("?")[0], body)
            faults = emulator.config.faults
            stall = faults.latency(operation)
            if stall:
                emulator.store.record_injected(operation, "slow")
                time.sleep(stall)
            injected = faults.sync_fault(operation)
            if injected is not None and injected.kind != "malformed":
                self._inject(injected, operation)
                return
            answer = service(body)
            if answer.scheduled:
                replies.poke()
            if injected is not None:     # processed, but the answer arrives broken: the client cannot know
                emulator.store.record_injected(operation, "malformed")
                self.respond(answer.status, answer.body[: len(answer.body) // 2] or b"<soap:Env", soap.CONTENT_TYPE)
                return
            self.respond(answer.status, answer.body, soap.CONTENT_TYPE)

        def _inject(self, fault: SyncFault, operation: str) -> None:
            emulator.store.record_injected(operation, fault.kind)
            if fault.kind == "reset":
                # RST instead of FIN: the client sees "connection reset by peer".
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            if fault.kind == "rate_limit":
                body = soap.build_fault(soap.Fault("Sender", "RATE_LIMIT", RATE_LIMIT_TEXT))
                self.respond(429, body, soap.CONTENT_TYPE, {"Retry-After": "1"})
                return
            status, text = (503, "Сервис временно недоступен") if fault.kind == "http_503" \
                else (500, "Внутренняя ошибка сервиса")
            headers = {"Retry-After": str(fault.retry_after)} if fault.kind == "http_503" else None
            self.respond(status, soap.build_fault(soap.Fault("Receiver", "ServiceError", text)), soap.CONTENT_TYPE,
                         headers)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == STATS_PATH:
                self.respond(200, json.dumps(emulator.stats()).encode(), "application/json")
            elif self.path.split("?")[0] in (INSPECTOR_PATH, INSPECTOR_PATH + ".json"):
                self._inspector()
            elif (service := wsdl.service_for_path(self.path.split("?")[0])) and "?" in self.path:
                host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
                found = wsdl.document_for(service, self.path.split("?", 1)[1], f"http://{host}")
                self.respond(*((200, *found) if found else (404, b"not found")))
            else:
                self.respond(404, b"not found")

        def _inspector(self) -> None:
            rows = emulator.store.recent_messages()
            if self.path.split("?")[0].endswith(".json"):
                self.respond(200, json.dumps(rows, default=str, ensure_ascii=False).encode(), "application/json")
            else:
                self.respond(200, inspector.render(rows, emulator.stats()).encode(), "text/html; charset=utf-8")

    return EmulatorHandler


class EmulatorServer:
    """The emulator listening on HTTP, with its reply sender; start() / stop() or a ``with`` block."""

    def __init__(self, config: EmulatorConfig, dsn: str, host: str = "127.0.0.1", port: int = 0, *,
                 reuse_port: bool = False) -> None:
        # Connections for the request threads and one per reply sender.
        self.store = Store(dsn, size=8 + max(1, config.reply_threads))
        self.emulator = IemkEmulator(config, self.store)
        self.replies = ReplySender(self.emulator)
        self.server = BackgroundServer(make_handler(self.emulator, self.replies), host, port, reuse_port=reuse_port)

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
