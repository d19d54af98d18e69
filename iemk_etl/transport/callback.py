"""The receiver of ИЭМК's asynchronous replies (the seed's «сервис приема асинхронных ответов»).

It stores every reply once per MessageID and answers only after the row is committed: a reply it acknowledged is
never lost, and one it could not store gets a 503 so the sender retries. Only a reply to a MessageID we sent goes
to iemk.inbox, whose replies move document states; one without RelatesTo, or relating to nothing we sent (or, with
IEMK_REPLY_SIGNATURE=require, without a valid WS-Security signature by a pinned certificate) goes to the bounded
quarantine (``store.inbox.quarantine``) and changes nothing. Interpreting the replies is the exporter's job, not this
receiver's, so it stays fast.

Replies are verified under the reply profile (``wssecurity.RESPONSE_PARTS``: the Body), never the request profile:
a reply has no ReplyTo. With IEMK_REPLY_SIGNATURE=off (the default until ИЭМК's reply profile is confirmed) a
signature is checked for the log only: a profile we guessed wrong must not hold back ИЭМК's real answers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import psycopg
from lxml import etree

from iemk_etl.protocol import soap
from iemk_etl.protocol.xml import MAX_MESSAGE_BYTES
from iemk_etl.settings import Settings
from iemk_etl.signing import pinning, wssecurity
from iemk_etl.store import audit, db, inbox
from iemk_etl.transport.http_server import BackgroundServer, QuietHandler

log = logging.getLogger(__name__)

CALLBACK_PATH = "/ips/callback"


@dataclass(frozen=True)
class ReplyTrust:
    """Whose replies are believed: IEMK_REPLY_SIGNATURE and IEMK_REPLY_CERTIFICATES."""

    require: bool = False                                     # require: a valid signature, else quarantine
    pins: pinning.Pins = field(default_factory=pinning.Pins)  # empty: any certificate whose signature verifies

    @classmethod
    def from_settings(cls, settings: Settings) -> ReplyTrust:
        pins = pinning.Pins.load(settings.reply_certificates)
        if settings.require_signed_replies and not pins:
            log.warning("IEMK_REPLY_SIGNATURE=require without IEMK_REPLY_CERTIFICATES: a reply signed by any "
                        "certificate within its validity is accepted")
        return cls(settings.require_signed_replies, pins)

    def distrust(self, envelope: etree._Element) -> str | None:
        """Why this reply's signer is not trusted (for the log), or None: verified under the reply profile, pinned."""
        try:
            verified = wssecurity.verify_envelope(envelope, required_parts=wssecurity.RESPONSE_PARTS)
        except wssecurity.SignatureError as exc:
            return exc.code
        if self.pins and not self.pins.allows(verified.certificate_der):
            return f"certificate sha256 {pinning.fingerprint(verified.certificate_der)} not pinned"
        return None


def store_reply(conn: psycopg.Connection, body: bytes, *, trust: ReplyTrust | None = None,
                limit: int = MAX_MESSAGE_BYTES) -> tuple[str, str]:
    """Store one reply: (what became of it — stored, already stored, quarantined —, its MessageID)."""
    return store_message(conn, soap.parse(body, limit=limit), body, trust=trust)


def store_message(conn: psycopg.Connection, message: soap.Message, body: bytes, *,
                  trust: ReplyTrust | None = None) -> tuple[str, str]:
    """``store_reply`` for a reply already parsed (``body`` its bytes as received)."""
    a = message.addressing
    if not a.message_id:
        raise soap.SoapFormatError("в ответе нет wsa:MessageID")
    doubt = _doubt(conn, message, trust or ReplyTrust())
    if doubt is not None:
        hits = inbox.quarantine(conn, a.message_id, a.relates_to, a.action, body, doubt)
        # Addressing only: the body may carry patient data and stays in the table.
        log.warning("reply %s (RelatesTo %s) quarantined: %s, posted %d time(s)", a.message_id,
                    a.relates_to or "—", doubt.value, hits)
        return "quarantined", a.message_id
    new = inbox.insert(conn, a.message_id, a.relates_to, a.action, body)
    return "stored" if new else "already stored", a.message_id


def _envelope(body: bytes, a: soap.Addressing | None) -> audit.Envelope:
    return audit.Envelope(audit.IN, audit.REPLY, body, "callback", a.action if a else None,
                          a.message_id if a else None, a.relates_to if a else None)


def archive_reply(conn: psycopg.Connection, body: bytes, a: soap.Addressing | None) -> None:
    """Archive a received body as it came (iemk.audit_exchange), whatever it is: forged, unreadable (``a`` None) or
    a duplicate included, on an autocommit connection: kept whatever becomes of the reply. Never raises: the
    reply's handling does not depend on it (a failure is logged, the error's type only)."""
    try:
        audit.insert(conn, _envelope(body, a))
    except Exception as exc:  # noqa: BLE001 - the archive must never stop a reply
        log.warning("audit: reply not archived (%s)", type(exc).__name__)


def _doubt(conn: psycopg.Connection, message: soap.Message, trust: ReplyTrust) -> inbox.Doubt | None:
    """Why this reply must not move anything; None when it answers a MessageID we sent."""
    a = message.addressing
    signed = message.envelope.find(f"{{{soap.SOAP}}}Header/{{{wssecurity.WSSE}}}Security") is not None
    if trust.require or signed:
        why = trust.distrust(message.envelope) if signed else "unsigned"
        if why is not None:
            log.warning("reply %s (RelatesTo %s): signer not trusted: %s%s", a.message_id, a.relates_to or "—", why,
                        "" if trust.require else " (IEMK_REPLY_SIGNATURE=off: not held back)")
            if trust.require:
                return inbox.Doubt.UNTRUSTED_SIGNER
    if not a.relates_to:
        return inbox.Doubt.NO_RELATES_TO
    if not inbox.was_sent(conn, a.relates_to):
        return inbox.Doubt.UNKNOWN_RELATES_TO
    return None


def make_handler(dsn: str, *, trust: ReplyTrust | None = None, max_message_bytes: int = MAX_MESSAGE_BYTES,
                 pool: db.ConnectionPool | None = None) -> type[QuietHandler]:
    """The receiver's handler. Requests run on threads of their own (one per connection: a sender keeping its
    connection alive keeps its thread), each borrowing a database connection from ``pool``, shared by them all."""
    connections = pool or db.ConnectionPool(dsn)

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
                with connections.connection() as conn:
                    outcome, message_id = self._store(conn, body)
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

        @staticmethod
        def _store(conn: psycopg.Connection, body: bytes) -> tuple[str, str]:
            """Archive the body as it came, then store the reply in one transaction, committed before the answer."""
            try:
                message = soap.parse(body, limit=max_message_bytes)
            except soap.SoapFormatError:
                archive_reply(conn, body, None)
                raise
            archive_reply(conn, body, message.addressing)
            with conn.transaction():
                return store_message(conn, message, body, trust=trust)

    return CallbackHandler


class CallbackServer:
    def __init__(self, dsn: str, host: str = "127.0.0.1", port: int = 0, *, trust: ReplyTrust | None = None,
                 max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.pool = db.ConnectionPool(dsn)
        self.server = BackgroundServer(make_handler(dsn, trust=trust, max_message_bytes=max_message_bytes,
                                                    pool=self.pool), host, port)

    @property
    def url(self) -> str:
        return self.server.url + CALLBACK_PATH

    def start(self) -> CallbackServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        self.pool.close()

    def __enter__(self) -> CallbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
