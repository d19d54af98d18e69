"""The receiver of ИЭМК's asynchronous replies (the seed's «сервис приема асинхронных ответов»).

It stores every reply in iemk.inbox, once per MessageID, and answers only after the row is committed:
a reply it acknowledged is never lost, and one it could not store gets a 503 so the sender retries.
Interpreting the replies is the exporter's job, not this receiver's, so it stays fast.
"""

from __future__ import annotations

import logging

import psycopg

from iemk_etl.protocol import soap
from iemk_etl.store import audit, db, inbox
from iemk_etl.transport.http_server import BackgroundServer, BodyTooLargeError, QuietHandler

log = logging.getLogger(__name__)

CALLBACK_PATH = "/ips/callback"


def store_reply(conn: psycopg.Connection, body: bytes) -> tuple[bool, str]:
    """Insert one reply; (True, id) when new, (False, id) when that MessageID was already stored."""
    message = soap.parse(body)
    a = message.addressing
    if not a.message_id:
        raise soap.SoapFormatError("в ответе нет wsa:MessageID")
    return inbox.insert(conn, a.message_id, a.relates_to, a.action, body), a.message_id


def archive_reply(recorder: audit.Recorder, body: bytes) -> None:
    """Archive a received body as it came (iemk.audit_exchange), whatever it is: forged, unreadable or a duplicate
    included. Never raises: the reply's handling does not depend on it."""
    try:
        a: soap.Addressing | None = soap.parse(body).addressing
    except Exception:  # noqa: BLE001 - an unreadable body is archived too, without its addressing
        a = None
    recorder.on_exchange(audit.Envelope(audit.IN, audit.REPLY, body, "callback", a.action if a else None,
                                        a.message_id if a else None, a.relates_to if a else None))


def make_handler(dsn: str) -> type[QuietHandler]:
    recorder = audit.Recorder(dsn, persistent=False)

    class CallbackHandler(QuietHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.split("?")[0] != CALLBACK_PATH:
                self.respond(404, b"unknown path")
                return
            try:
                body = self.read_body()
                archive_reply(recorder, body)
                with db.connect(dsn) as conn:
                    new, message_id = store_reply(conn, body)
            except BodyTooLargeError as exc:
                self.respond(413, str(exc).encode())
                return
            except soap.SoapFormatError as exc:
                fault = soap.Fault("Sender", "FormatError", str(exc))
                self.respond(400, soap.build_fault(fault), soap.CONTENT_TYPE)
                return
            except psycopg.Error as exc:
                log.error("cannot store a reply: %s", type(exc).__name__)
                self.respond(503, b"storage unavailable", headers={"Retry-After": "5"})
                return
            log.info("reply %s %s", message_id, "stored" if new else "already stored")
            self.respond(202)

    return CallbackHandler


class CallbackServer:
    def __init__(self, dsn: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = BackgroundServer(make_handler(dsn), host, port)

    @property
    def url(self) -> str:
        return self.server.url + CALLBACK_PATH

    def start(self) -> CallbackServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> CallbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
