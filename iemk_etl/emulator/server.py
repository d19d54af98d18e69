"""The emulator over HTTP: one path per service, and the sender of asynchronous replies."""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time

import httpx

from iemk_etl import soap
from iemk_etl.emulator.service import EmulatorConfig, IemkEmulator, PendingReply
from iemk_etl.http_server import BackgroundServer, BodyTooLargeError, QuietHandler

log = logging.getLogger(__name__)

REPOSITORY_PATH = "/xds/repository"
STATS_PATH = "/_emulator/stats"


class ReplySender:
    """Delivers RegistryResponses to ReplyTo after the configured delay, retrying with backoff."""

    def __init__(self, emulator: IemkEmulator) -> None:
        self.emulator = emulator
        self._queue: list[tuple[float, int, PendingReply]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._http = httpx.Client(timeout=httpx.Timeout(emulator.config.callback_timeout))
        self._thread = threading.Thread(target=self._run, name="emulator-replies", daemon=True)
        self.undelivered: list[tuple[str, str]] = []

    def start(self) -> None:
        self._thread.start()

    def submit(self, pending: PendingReply) -> None:
        with self._cond:
            due = time.monotonic() + self.emulator.config.reply_delay
            heapq.heappush(self._queue, (due, next(self._seq), pending))
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=5)
        self._http.close()

    def _next(self) -> PendingReply | None:
        with self._cond:
            while not self._stopped:
                if self._queue and self._queue[0][0] <= time.monotonic():
                    return heapq.heappop(self._queue)[2]
                wait = self._queue[0][0] - time.monotonic() if self._queue else None
                self._cond.wait(timeout=wait)
            return None

    def _run(self) -> None:
        while (pending := self._next()) is not None:
            try:
                self._deliver(pending)
            except Exception:  # a bad reply must not stop the sender thread
                log.exception("reply to %s failed", pending.relates_to)

    def _deliver(self, pending: PendingReply) -> None:
        response = self.emulator.process(pending.document)
        payload = self.emulator.reply_envelope(pending, response)
        cfg = self.emulator.config
        for attempt in range(cfg.callback_attempts):
            try:
                r = self._http.post(pending.reply_to, content=payload, headers={"Content-Type": soap.CONTENT_TYPE})
                if r.status_code < 300:
                    self.emulator.count("replies_delivered")
                    return
                log.warning("callback %s answered HTTP %s", pending.reply_to, r.status_code)
            except httpx.HTTPError as exc:
                log.warning("callback %s unreachable: %s", pending.reply_to, exc)
            time.sleep(cfg.callback_backoff * 2**attempt)
        self.emulator.count("replies_undelivered")
        self.undelivered.append((pending.reply_to, pending.relates_to))


def make_handler(emulator: IemkEmulator, replies: ReplySender) -> type[QuietHandler]:
    class EmulatorHandler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.split("?")[0] != REPOSITORY_PATH:
                self.respond(404, b"unknown service path")
                return
            try:
                body = self.read_body()
            except BodyTooLargeError as exc:
                self.respond(413, str(exc).encode())
                return
            answer = emulator.receive_document_set(body)
            if answer.pending is not None:
                replies.submit(answer.pending)
            self.respond(answer.status, answer.body, soap.CONTENT_TYPE)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == STATS_PATH:
                self.respond(200, json.dumps(emulator.stats()).encode(), "application/json")
            else:
                self.respond(404, b"not found")

    return EmulatorHandler


class EmulatorServer:
    """The emulator listening on HTTP, with its reply sender; start() / stop() or a ``with`` block."""

    def __init__(self, config: EmulatorConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = IemkEmulator(config)
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

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
