"""HTTP framing at both our servers (the emulator and the callback receiver), over raw sockets: every malformed or
oversized request gets an answer saying why (400, 413, 417, 501) and a log line, and the connection is then closed;
never a silent close. Chunked bodies are read, with the size limit enforced while reading."""

import logging
import socket
from urllib.parse import urlsplit

import psycopg
import pytest

from iemk_etl.emulator.server import PDQ_PATH, EmulatorServer
from iemk_etl.emulator.service import EmulatorConfig
from iemk_etl.protocol import soap
from iemk_etl.protocol.xds import submit
from iemk_etl.protocol.xds.common import SUCCESS, RegistryResponse, build_registry_response
from iemk_etl.transport.callback import CALLBACK_PATH, CallbackServer

LIMIT = 1024 * 1024       # the smallest limit the setting allows, so the tests stay small
LOGGER = "iemk_etl.transport.http_server"


@pytest.fixture(params=["emulator", "callback"])
def server(request, fresh_dsn, caplog):
    """(host, port, path, name) of a running server with a 1 MiB limit."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    if request.param == "emulator":
        running = EmulatorServer(EmulatorConfig(max_message_bytes=LIMIT), fresh_dsn)
        path = PDQ_PATH
    else:
        running = CallbackServer(fresh_dsn, max_message_bytes=LIMIT)
        path = CALLBACK_PATH
    with running:
        parts = urlsplit(running.url)
        yield parts.hostname, parts.port, path, request.param


def _exchange(server, head: str, body: bytes = b"", *, half_close: bool = False) -> tuple[int, dict, bytes, bytes]:
    """Send raw bytes, read until the server closes: (status, headers, body, everything read)."""
    host, port, _, _ = server
    with socket.create_connection((host, port), timeout=15) as s:
        s.sendall(head.replace("\n", "\r\n").encode() + body)
        if half_close:
            s.shutdown(socket.SHUT_WR)      # the client is done: the body it promised will never come
        received = b""
        while chunk := s.recv(65536):
            received += chunk
    return (*_response(received), received)


def _response(raw: bytes) -> tuple[int, dict, bytes]:
    while raw.startswith(b"HTTP/1.1 100"):            # an interim 100 Continue before the final answer
        raw = raw.split(b"\r\n\r\n", 1)[1]
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), raw[:200]
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _request(server, extra: str) -> str:
    _, port, path, _ = server
    return f"POST {path} HTTP/1.1\nHost: 127.0.0.1:{port}\nContent-Type: {soap.CONTENT_TYPE}\n{extra}\n"


def _refused(caplog, status: int, words: str) -> None:
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]
    assert any(f"refused with HTTP {status}: " in line and words in line for line in lines), lines


def _chunked(body: bytes, size: int = 7) -> bytes:
    parts = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def _envelope(action: str) -> bytes:
    """A well-formed, unsigned message: for the emulator a refusal that quotes the action, for the receiver a reply."""
    return soap.to_bytes(soap.build_envelope(build_registry_response(RegistryResponse(SUCCESS)),
                                             soap.Addressing("urn:uuid:framing-1", action)))


@pytest.mark.parametrize(("length", "words"), [
    ("abc", "invalid Content-Length 'abc'"),
    ("-5", "invalid Content-Length '-5'"),
    ("+5", "invalid Content-Length '+5'"),
    ("5, 7", "conflicting Content-Length values 5, 7"),
])
def test_an_invalid_content_length_gets_400_with_a_reason(server, caplog, length, words):
    status, headers, body, _ = _exchange(server, _request(server, f"Content-Length: {length}\n"), b"hello")
    assert status == 400
    assert words.encode() in body
    assert headers["connection"] == "close"
    _refused(caplog, 400, words)


def test_two_differing_content_length_headers_get_400(server, caplog):
    status, _, body, _ = _exchange(server, _request(server, "Content-Length: 5\nContent-Length: 6\n"), b"hello!")
    assert status == 400 and b"conflicting Content-Length" in body
    _refused(caplog, 400, "conflicting Content-Length values 5, 6")


def test_a_body_shorter_than_its_content_length_gets_400(server, caplog):
    status, _, body, _ = _exchange(server, _request(server, "Content-Length: 100\n"), b"x" * 10, half_close=True)
    assert status == 400 and b"ended after 10 of 100 bytes" in body
    _refused(caplog, 400, "ended after 10 of 100 bytes")


def test_over_the_limit_gets_413_before_the_body_is_read(server, caplog):
    # Nothing of the body is sent: the answer cannot have waited for it.
    status, headers, body, _ = _exchange(server, _request(server, f"Content-Length: {LIMIT + 1}\n"))
    assert status == 413 and headers["connection"] == "close"
    assert f"exceeds the limit of {LIMIT} bytes".encode() in body
    _refused(caplog, 413, f"request body of {LIMIT + 1} bytes")


def test_a_client_that_sends_the_oversized_body_anyway_still_reads_413(server):
    # The server drains what comes after its answer, so the client reads 413, not a connection reset.
    status, _, _, _ = _exchange(server, _request(server, f"Content-Length: {3 * LIMIT}\n"), b"x" * (3 * LIMIT))
    assert status == 413


def test_expect_100_continue(server, caplog):
    _, _, _, raw = _exchange(server, _request(server, f"Content-Length: {LIMIT + 1}\nExpect: 100-continue\n"))
    assert raw.startswith(b"HTTP/1.1 413 ")                # refused at once: no 100, no body waited for
    _refused(caplog, 413, "exceeds the limit")
    reply = _envelope(submit.ASYNC_RESPONSE_ACTION)
    _, _, _, raw = _exchange(server, _request(
        server, f"Content-Length: {len(reply)}\nExpect: 100-continue\nConnection: close\n"), reply)
    assert raw.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 ")
    status, _, _, _ = _exchange(server, _request(server, "Content-Length: 1\nExpect: x-magic\n"), b"x")
    assert status == 417
    _refused(caplog, 417, "unsupported expectation Expect: x-magic")


def test_a_chunked_body_is_read_whole(server, fresh_dsn):
    action = "urn:example:chunked-" + "a" * 40       # spread over several 7-byte chunks
    envelope = _envelope(action if server[3] == "emulator" else submit.ASYNC_RESPONSE_ACTION)
    status, _, body, _ = _exchange(
        server, _request(server, "Transfer-Encoding: chunked\nConnection: close\n"), _chunked(envelope))
    if server[3] == "emulator":
        # read whole, parsed, and refused for what it says (the emulator quotes the action it does not serve)
        assert status == 400 and f"wsa:Action [{action}]".encode() in body
    else:
        assert status == 202
        with psycopg.connect(fresh_dsn) as conn:
            stored = conn.execute("SELECT body FROM iemk.reply_quarantine WHERE message_id = 'urn:uuid:framing-1'"
                                  ).fetchone()
        assert bytes(stored[0]) == envelope


@pytest.mark.parametrize(("chunks", "words"), [
    (b"10\r\nonly five", "chunked body truncated: a chunk ended after 9 of 16 bytes"),
    (b"5\r\nhello\r\n", "the connection ended before the last chunk"),
    (b"5\r\nhello\r\n0\r\n", "chunked body truncated or malformed in its trailer"),
    (b"zz\r\nhello\r\n0\r\n\r\n", "bad chunk-size line"),
    (b"5\r\nhelloXX0\r\n\r\n", "no CRLF after a chunk's data"),
], ids=["mid-chunk", "no-last-chunk", "no-final-crlf", "bad-size", "no-crlf"])
def test_a_truncated_or_malformed_chunked_body_gets_400(server, caplog, chunks, words):
    status, headers, body, _ = _exchange(server, _request(server, "Transfer-Encoding: chunked\n"), chunks,
                                         half_close=True)
    assert status == 400 and words.encode() in body and headers["connection"] == "close"
    _refused(caplog, 400, words)


def test_a_chunked_body_over_the_limit_gets_413(server, caplog):
    chunk = b"%x\r\n%s\r\n" % (LIMIT // 2, b"x" * (LIMIT // 2))
    status, _, body, _ = _exchange(server, _request(server, "Transfer-Encoding: chunked\n"),
                                   chunk * 3 + b"0\r\n\r\n")
    assert status == 413 and b"chunked request body exceeds the limit" in body
    _refused(caplog, 413, "chunked request body exceeds the limit")


def test_transfer_encoding_with_content_length_gets_400(server, caplog):
    status, _, body, _ = _exchange(
        server, _request(server, "Transfer-Encoding: chunked\nContent-Length: 5\n"), b"5\r\nhello\r\n0\r\n\r\n")
    assert status == 400 and b"both Transfer-Encoding and Content-Length" in body
    _refused(caplog, 400, "both Transfer-Encoding and Content-Length")


@pytest.mark.parametrize("coding", ["gzip", "gzip, chunked", "x-custom"])
def test_another_transfer_encoding_gets_501(server, caplog, coding):
    status, _, body, _ = _exchange(server, _request(server, f"Transfer-Encoding: {coding}\n"), b"0\r\n\r\n")
    assert status == 501 and b"is not supported (only chunked)" in body
    _refused(caplog, 501, "is not supported")


def test_chunked_twice_gets_400(server, caplog):
    status, _, _, _ = _exchange(server, _request(server, "Transfer-Encoding: chunked, chunked\n"), b"0\r\n\r\n")
    assert status == 400
    _refused(caplog, 400, "chunked must appear once")
