"""A small threaded HTTP server that the emulator and the callback receiver share.

Both run on loopback by default, either inside another process (tests, demo) or on their own
(``iemk-etl emulator serve`` / ``iemk-etl callback serve``).
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from iemk_etl import errors
from iemk_etl.errors import DataError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024 * 1024


class BodyTooLargeError(DataError, ValueError):
    default_kind = errors.BAD_XML


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A stuck client must not hold a thread forever.
    timeout = 60

    def log_message(self, fmt: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), fmt % args)

    def read_body(self, limit: int = MAX_BODY_BYTES) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            raise BodyTooLargeError(f"request body of {length} bytes exceeds {limit}")
        return self.rfile.read(length) if length else b""

    def respond(self, status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8",
                headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        # A client that hangs up early (after a 413, a reset) is routine here, not a traceback on stderr.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _SharedPortServer(_QuietServer):
    # Several processes may listen on one port; the kernel spreads connections between them.
    allow_reuse_port = True


class BackgroundServer:
    """A ThreadingHTTPServer on its own thread; ``url`` is where it listens."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", port: int = 0, *,
                 reuse_port: bool = False) -> None:
        server_class = _SharedPortServer if reuse_port else _QuietServer
        self.httpd = server_class((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name=handler.__name__, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
