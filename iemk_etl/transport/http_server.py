"""A small threaded HTTP server that the emulator and the callback receiver share.

Both run on loopback by default, either inside another process (tests, demo) or on their own
(``iemk-etl emulator serve`` / ``iemk-etl callback serve``).

Request bodies are read in one place (``QuietHandler.read_request_body``), by the framing rules of RFC 9112 §6:
a ``Content-Length`` (digits only; repeated copies must agree) or ``Transfer-Encoding: chunked``, never both; a body
over the size limit gets 413 before it is read (or as soon as a chunked body passes the limit); a body whose framing
is wrong or that ends early gets 400, an unsupported transfer coding 501, an unknown expectation 417. Every refusal
is answered (never a silent close), written to the log, marked ``Connection: close``, and the connection is closed
after a bounded drain of what the client is still sending, so that it reads the answer instead of a reset.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from iemk_etl import errors
from iemk_etl.errors import DataError
from iemk_etl.protocol.xml import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)

MAX_BODY_BYTES = MAX_MESSAGE_BYTES
# After a refusal, at most this much of what the client still sends is read and dropped, for at most DRAIN_SECONDS:
# closing with unread data makes the kernel send a reset, and the client would lose the answer. More than the
# largest body over the limit a real client sends (a 70 MB document), bounded so a flood cannot hold a thread.
DRAIN_BYTES = 2 * MAX_MESSAGE_BYTES
DRAIN_SECONDS = 5.0
DRAIN_IDLE_SECONDS = 0.5    # a client that sends nothing more (it waits for the answer it has) is not waited for
_CHUNK_LINE = 4096          # a chunk-size line (with extensions) or a trailer line longer than this is refused
_TRAILER_LINES = 64
_DIGITS = re.compile(r"[0-9]+")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(;[^\r\n]*)?\r?\n")


class BodyError(DataError, ValueError):
    """A request body refused for its framing or size; ``status`` is the HTTP answer."""

    status = 400


class BodyTooLargeError(BodyError):
    status = 413
    default_kind = errors.MESSAGE_TOO_LARGE


class BadFramingError(BodyError):
    status = 400


class UnsupportedEncodingError(BodyError):
    status = 501


class ExpectationFailedError(BodyError):
    status = 417


@dataclass(frozen=True)
class Framing:
    chunked: bool
    length: int          # Content-Length; 0 for chunked or a request without a body


def framing(headers: object, limit: int) -> Framing:
    """How the body of a request with these headers is delimited; BodyError when it cannot be read."""
    get_all = headers.get_all  # type: ignore[attr-defined]
    encodings = [c.strip().lower() for v in get_all("Transfer-Encoding", []) for c in v.split(",") if c.strip()]
    lengths = [c.strip() for v in get_all("Content-Length", []) for c in v.split(",")]
    if encodings:
        if lengths:
            # Two delimiters: the way to request smuggling (RFC 9112 §6.3); refused, not guessed.
            raise BadFramingError("both Transfer-Encoding and Content-Length")
        unknown = [c for c in encodings if c != "chunked"]
        if unknown:
            raise UnsupportedEncodingError(f"Transfer-Encoding {', '.join(unknown)} is not supported (only chunked)")
        if encodings != ["chunked"]:
            raise BadFramingError(f"Transfer-Encoding {', '.join(encodings)}: chunked must appear once")
        return Framing(chunked=True, length=0)
    if not lengths:
        return Framing(chunked=False, length=0)
    if any(not _DIGITS.fullmatch(v) for v in lengths):
        raise BadFramingError(f"invalid Content-Length {', '.join(repr(v) for v in lengths)}")
    if len({int(v) for v in lengths}) > 1:
        raise BadFramingError(f"conflicting Content-Length values {', '.join(lengths)}")
    length = int(lengths[0])
    if length > limit:
        raise BodyTooLargeError(f"request body of {length} bytes exceeds the limit of {limit} bytes "
                                f"({limit / 2**20:.1f} MiB)")
    return Framing(chunked=False, length=length)


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A stuck client must not hold a thread forever.
    timeout = 60
    # The largest request body taken; a server built with another limit sets it on its handler class.
    max_body = MAX_BODY_BYTES

    def log_message(self, fmt: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), fmt % args)

    # -- reading the body --------------------------------------------------------------------------------------

    def read_body(self) -> bytes:
        """The request body, delimited by its framing; BodyError when it cannot be taken."""
        expect = self.headers.get("Expect")
        if expect is not None and expect.strip().lower() != "100-continue":
            raise ExpectationFailedError(f"unsupported expectation Expect: {expect}")
        how = framing(self.headers, self.max_body)
        return self._read_chunked() if how.chunked else self._read_exactly(how.length)

    def read_request_body(self) -> bytes | None:
        """The body, or None after the refusal was answered (the handler then just returns)."""
        try:
            return self.read_body()
        except BodyError as exc:
            self.reject(exc.status, str(exc))
            return None

    def handle_expect_100(self) -> bool:
        # Answer the client waiting to send its body: 100 only when the headers promise a body we would take.
        try:
            framing(self.headers, self.max_body)
        except BodyError as exc:
            self.reject(exc.status, str(exc))
            return False
        return super().handle_expect_100()

    def _read_exactly(self, length: int) -> bytes:
        if not length:
            return b""
        try:
            data = self.rfile.read(length)
        except (TimeoutError, OSError) as exc:
            raise BadFramingError(f"request body not received in full ({type(exc).__name__} while reading "
                                  f"{length} bytes)") from None
        if len(data) < length:
            raise BadFramingError(f"request body ended after {len(data)} of {length} bytes (Content-Length)")
        return data

    def _read_chunked(self) -> bytes:
        body = bytearray()
        try:
            while True:
                size = self._chunk_size()
                if size == 0:
                    self._trailers()
                    return bytes(body)
                if len(body) + size > self.max_body:
                    raise BodyTooLargeError(f"chunked request body exceeds the limit of {self.max_body} bytes "
                                            f"({self.max_body / 2**20:.1f} MiB)")
                chunk = self.rfile.read(size)
                if len(chunk) < size:
                    raise BadFramingError(f"chunked body truncated: a chunk ended after {len(chunk)} of {size} bytes")
                body += chunk
                if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                    raise BadFramingError("chunked body malformed: no CRLF after a chunk's data")
        except (TimeoutError, OSError) as exc:
            raise BadFramingError(f"chunked body not received in full ({type(exc).__name__})") from None

    def _chunk_size(self) -> int:
        line = self.rfile.readline(_CHUNK_LINE + 1)
        if not line:
            raise BadFramingError("chunked body truncated: the connection ended before the last chunk")
        match = _CHUNK_SIZE.fullmatch(line)
        if match is None:
            raise BadFramingError(f"chunked body malformed: bad chunk-size line {line[:40]!r}")
        return int(match.group(1), 16)

    def _trailers(self) -> None:
        for _ in range(_TRAILER_LINES):
            line = self.rfile.readline(_CHUNK_LINE + 1)
            if line in (b"\r\n", b"\n"):
                return
            if not line or not line.endswith(b"\n"):
                raise BadFramingError("chunked body truncated or malformed in its trailer")
        raise BadFramingError("chunked body: too many trailer lines")

    # -- answering --------------------------------------------------------------------------------------------

    def reject(self, status: int, reason: str) -> None:
        """Refuse the request: a log line, an answer saying why, ``Connection: close``, then a bounded drain of what
        the client still sends, and the connection is closed."""
        log.warning("%s %s %s refused with HTTP %d: %s", self.address_string(), self.command, self.path, status,
                    reason)
        self.close_connection = True
        try:
            self.respond(status, f"HTTP {status}: {reason}\n".encode(), headers={"Connection": "close"})
            self.wfile.flush()
        except OSError:   # the client is gone already; the log line above says what it was told
            return
        self._drain()

    def _drain(self) -> None:
        deadline = time.monotonic() + DRAIN_SECONDS
        left = DRAIN_BYTES
        try:
            self.connection.settimeout(DRAIN_IDLE_SECONDS)
            while left > 0 and time.monotonic() < deadline:
                data = self.rfile.read1(min(left, 1 << 16))
                if not data:
                    return
                left -= len(data)
        except OSError:
            return

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
