"""The receiver of ИЭМК's asynchronous replies (the seed's «сервис приема асинхронных ответов»).

It stores every reply once per MessageID and answers only after the row is committed: a reply it acknowledged is
never lost, and one it could not store gets a 503 so the sender retries. Only a reply to a MessageID we sent goes
to iemk.inbox, whose replies move document states; one without RelatesTo, or relating to nothing we sent (or, with
IEMK_REQUIRE_SIGNED_REPLIES, without a valid WS-Security signature) goes to the bounded quarantine
(``store.inbox.quarantine``) and changes nothing. Interpreting the replies is the exporter's job, not this
receiver's, so it stays fast.
"""

from __future__ import annotations

import logging

import psycopg

from iemk_etl.protocol import soap
from iemk_etl.protocol.xml import MAX_MESSAGE_BYTES
from iemk_etl.signing import wssecurity
from iemk_etl.store import audit, db, inbox
from iemk_etl.transport.http_server import BackgroundServer, QuietHandler

log = logging.getLogger(__name__)

CALLBACK_PATH = "/ips/callback"


def store_reply(conn: psycopg.Connection, body: bytes, *, require_signed: bool = False,
                limit: int = MAX_MESSAGE_BYTES) -> tuple[str, str]:
    """Store one reply: (what became of it — stored, already stored, quarantined —, its MessageID)."""
    message = soap.parse(body, limit=limit)
    a = message.addressing
    if not a.message_id:
        raise soap.SoapFormatError("в ответе нет wsa:MessageID")
    doubt = _doubt(conn, message, require_signed)
    if doubt is not None:
        hits = inbox.quarantine(conn, a.message_id, a.relates_to, a.action, body, doubt)
        log.warning("reply %s quarantined (%s, posted %d time(s))", a.message_id, doubt.value, hits)
        return "quarantined", a.message_id
    new = inbox.insert(conn, a.message_id, a.relates_to, a.action, body)
    return "stored" if new else "already stored", a.message_id


def archive_reply(recorder: audit.Recorder, body: bytes) -> None:
    """Archive a received body as it came (iemk.audit_exchange), whatever it is: forged, unreadable or a duplicate
    included. Never raises: the reply's handling does not depend on it."""
    try:
        a: soap.Addressing | None = soap.parse(body).addressing
    except Exception:  # noqa: BLE001 - an unreadable body is archived too, without its addressing
        a = None
    recorder.on_exchange(audit.Envelope(audit.IN, audit.REPLY, body, "callback", a.action if a else None,
                                        a.message_id if a else None, a.relates_to if a else None))



def _doubt(conn: psycopg.Connection, message: soap.Message, require_signed: bool) -> inbox.Doubt | None:
    """Why this reply must not move anything; None when it answers a MessageID we sent."""
    relates_to = message.addressing.relates_to
    if not relates_to:
        return inbox.Doubt.NO_RELATES_TO
    if message.envelope.find(f"{{{soap.SOAP}}}Header/{{{wssecurity.WSSE}}}Security") is not None:
        # Signed: it must verify, whatever the setting; a forged signature is worse than none.
        try:
            wssecurity.verify_envelope(message.envelope)
        except wssecurity.SignatureError as exc:
            log.warning("reply %s: WS-Security signature refused: %s", message.addressing.message_id, exc.code)
            return inbox.Doubt.BAD_SIGNATURE
    elif require_signed:
        return inbox.Doubt.UNSIGNED
    if not inbox.was_sent(conn, relates_to):
        return inbox.Doubt.UNKNOWN_RELATES_TO
    return None


def make_handler(dsn: str, *, require_signed: bool = False,
                 max_message_bytes: int = MAX_MESSAGE_BYTES) -> type[QuietHandler]:
    recorder = audit.Recorder(dsn, persistent=False)

    class CallbackHandler(QuietHandler):
        max_body = max_message_bytes

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.split("?")[0] != CALLBACK_PATH:
                self.reject(404, "unknown path")
                return
            body = self.read_request_body()
            if body is None:     # refused (413, 400, 501, 417), answered and logged
                return
            try:
                archive_reply(recorder, body)
                with db.connect(dsn) as conn:
                    outcome, message_id = store_reply(conn, body, require_signed=require_signed,
                                                      limit=max_message_bytes)
            except soap.SoapFormatError as exc:
                fault = soap.Fault("Sender", "FormatError", str(exc))
                self.respond(400, soap.build_fault(fault), soap.CONTENT_TYPE)
                return
            except psycopg.Error as exc:
                log.error("cannot store a reply: %s", type(exc).__name__)
                self.respond(503, b"storage unavailable", headers={"Retry-After": "5"})
                return
            log.info("reply %s %s", message_id, outcome)
            # A quarantined reply is acknowledged too: the sender has nothing to retry, and a forger learns nothing.
            self.respond(202)

    return CallbackHandler


class CallbackServer:
    def __init__(self, dsn: str, host: str = "127.0.0.1", port: int = 0, *, require_signed: bool = False,
                 max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        handler = make_handler(dsn, require_signed=require_signed, max_message_bytes=max_message_bytes)
        self.server = BackgroundServer(handler, host, port)

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
