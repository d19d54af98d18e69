"""The ИЭМК client: one signed SOAP transport with timeouts, and a plain verdict on every call."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import httpx
from lxml import etree

from iemk_etl import errors
from iemk_etl.errors import ConfigurationError, IemkError
from iemk_etl.protocol import soap, wsdl, xml
from iemk_etl.protocol.xds import submit
from iemk_etl.settings import Settings
from iemk_etl.signing import wssecurity
from iemk_etl.signing.keys import AnySigner, Signer
from iemk_etl.signing.keystore import KeyStore
from iemk_etl.store import audit

log = logging.getLogger(__name__)

# 429 and the 5xx that mean "not now": the same request may be repeated later, with the same MessageID.
_TRANSIENT_HTTP = {408, 429, 500, 502, 503, 504}


class Verdict(enum.Enum):
    ACCEPTED = "accepted"      # the service took the request; the answer comes asynchronously
    REJECTED = "rejected"      # the service refused it for good: resending the same request won't help
    HELD = "held"              # refused for a cause on our side (settings, certificate, clock): goes once fixed
    TRANSIENT = "transient"    # transport trouble or a busy service: try again later


def verdict_of(kind: errors.ErrorKind) -> Verdict:
    """The taxonomy decides: when the request may go again says what to do with it."""
    if kind.transient:
        return Verdict.TRANSIENT
    return Verdict.HELD if kind.holds else Verdict.REJECTED


@dataclass(frozen=True)
class CallResult:
    verdict: Verdict
    error: str = ""
    http_status: int | None = None
    kind: errors.ErrorKind | None = None     # what went wrong (None when accepted)

    @classmethod
    def failure(cls, kind: errors.ErrorKind, error: str, http_status: int | None = None) -> CallResult:
        return cls(verdict_of(kind), error, http_status, kind)

    @property
    def code(self) -> str | None:
        """The error code the ledger keeps (errors.py)."""
        return self.kind.code if self.kind else None


class CallError(IemkError, RuntimeError):
    """A synchronous call without a usable answer; ``result`` says why and ``kind`` what kind of failure it is."""

    def __init__(self, result: CallResult) -> None:
        super().__init__(result.error, kind=result.kind or errors.TRANSPORT)
        self.result = result


class ExchangeObserver(Protocol):
    """Sees every envelope the client sends and every answer it gets (the audit archive's ``Recorder``), like a
    zeep plugin. Called synchronously: it must be cheap; whatever it raises is logged and ignored. An ITI-41
    request's ``raw`` is a ``soap.SplicedMessage`` (its bytes in chunks; ``bytes(raw)`` joins them)."""

    def on_exchange(self, envelope: audit.Envelope) -> None: ...


class IemkClient:
    def __init__(self, repository_url: str, *, client_entity_id: str, signer: Signer, timeout: float,
                 http: httpx.Client | None = None, observer: ExchangeObserver | None = None,
                 max_message_bytes: int = xml.MAX_MESSAGE_BYTES) -> None:
        self.repository_url = repository_url
        self.max_message_bytes = max_message_bytes      # an envelope over it is never sent (MESSAGE_TOO_LARGE)
        self.client_entity_id = client_entity_id
        self.signer = signer
        self.observer = observer
        self._http = http or httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False)

    def close(self) -> None:
        self._http.close()
        close_observer = getattr(self.observer, "close", None)
        if callable(close_observer):
            close_observer()

    def __enter__(self) -> IemkClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def provide_and_register(self, submission: submit.Submission, *, message_id: str, reply_to: str,
                             ledger_id: int | None = None) -> CallResult:
        """ITI-41; ``ledger_id`` links the archived envelopes to the document's ledger row."""
        wsdl.check_action("repository", submit.ACTION)
        encoded = 4 * -(-len(submission.document) // 3)      # its base64 alone: refused before hashing tens of MB
        if encoded > self.max_message_bytes:
            return CallResult.failure(errors.MESSAGE_TOO_LARGE, _too_large(encoded, self.max_message_bytes))
        addressing = soap.Addressing(message_id=message_id, action=submit.ACTION, to=self.repository_url,
                                     reply_to=reply_to)
        # The document's base64 (4/3 of it) is never in the tree nor joined into the envelope's bytes: a token
        # stands for it while the envelope is built and signed (the Body's digest is taken over the base64 spliced
        # in), and the HTTP body and the archive read the serialised envelope with the base64 a chunk at a time.
        placeholder = soap.Placeholder.of(submission.document)
        envelope = soap.build_envelope(submit.build_request(submission, document_text=placeholder.text), addressing,
                                       self.client_entity_id)
        wssecurity.sign_envelope(envelope, self.signer, placeholder=placeholder)
        try:
            response, answer = self._exchange(self.repository_url, envelope, addressing, "repository", ledger_id,
                                              placeholder)
        except CallError as exc:
            return exc.result
        log.info("ITI-41 %s -> HTTP %s", message_id, response.status_code)
        if response.status_code in (200, 202) and not _is_fault(answer):
            if response.content and answer is None:
                # Whether the service took it is unknown: resend; the same MessageID makes that safe.
                return CallResult.failure(errors.UNREADABLE_ANSWER, "ответ ИЭМК не читается", response.status_code)
            return CallResult(Verdict.ACCEPTED, http_status=response.status_code)
        return _refusal(response, answer)

    def call(self, url: str, action: str, body: etree._Element, *, message_id: str | None = None,
             service: str | None = None, ledger_id: int | None = None) -> soap.Message:
        """A synchronous operation (PIX, PDQ, ITI-18, ITI-43): the answer's envelope, or CallError.

        With ``service`` the action is checked against that service's WSDL in schemas/iemk first."""
        if service is not None:
            wsdl.check_action(service, action)
        mid = message_id or soap.new_message_id()
        addressing = soap.Addressing(mid, action, to=url, reply_to=soap.ANONYMOUS)
        envelope = soap.build_envelope(body, addressing, self.client_entity_id)
        wssecurity.sign_envelope(envelope, self.signer)
        response, answer = self._exchange(url, envelope, addressing, service, ledger_id)
        if response.status_code != 200 or _is_fault(answer):
            raise CallError(_refusal(response, answer))
        if answer is None:
            raise CallError(CallResult.failure(errors.UNREADABLE_ANSWER, "ответ ИЭМК не читается",
                                               response.status_code))
        if answer.addressing.relates_to and answer.addressing.relates_to != mid:
            # An answer to some other request: never take it for ours.
            raise CallError(CallResult.failure(errors.FOREIGN_ANSWER, f"ответ ИЭМК относится к другому запросу "
                                                          f"[{answer.addressing.relates_to}], ожидался [{mid}]"))
        return answer

    def _exchange(self, url: str, envelope: etree._Element, addressing: soap.Addressing, service: str | None,
                  ledger_id: int | None, placeholder: soap.Placeholder | None = None,
                  ) -> tuple[httpx.Response, soap.Message | None]:
        """POST the envelope; the response and its parsed envelope (None when empty or unreadable).
        Transport trouble is a CallError with a TRANSIENT verdict. The observer sees the request before it goes
        (so a reply arriving before the answer finds it archived) and the answer, whatever it is.
        With ``placeholder`` the body is the serialised envelope with the document's base64 spliced in, sent a
        chunk at a time under its exact Content-Length (not chunked: the same bytes and headers as a whole body)."""
        raw: bytes | soap.SplicedMessage = soap.to_bytes(envelope)
        if placeholder is not None:
            spliced = placeholder.splice(raw)
            if spliced is None:     # never send the request with the token in place of the document
                raise ValueError("ITI-41: the serialised envelope does not hold the document's placeholder")
            raw = spliced
        if len(raw) > self.max_message_bytes:
            raise CallError(CallResult.failure(errors.MESSAGE_TOO_LARGE, _too_large(len(raw), self.max_message_bytes)))
        self._observe(audit.Envelope(audit.OUT, audit.REQUEST, raw, service, addressing.action,
                                     addressing.message_id, None, ledger_id))
        headers = {"Content-Type": soap.CONTENT_TYPE, "Content-Length": str(len(raw))}
        try:
            response = self._http.post(url, content=raw, headers=headers)
        except httpx.TimeoutException as exc:
            raise CallError(CallResult.failure(errors.TIMEOUT,
                                               f"Таймаут обращения к ИЭМК: {type(exc).__name__}")) from None
        except httpx.HTTPError as exc:
            raise CallError(CallResult.failure(errors.UNREACHABLE,
                                               f"ИЭМК недоступна: {type(exc).__name__}: {exc}")) from None
        try:
            answer = soap.parse(response.content, limit=self.max_message_bytes) if response.content else None
        except soap.SoapFormatError:
            answer = None
        a = answer.addressing if answer is not None else None
        self._observe(audit.Envelope(audit.IN, audit.ANSWER, response.content, service,
                                     a.action if a else None, a.message_id if a else None,
                                     (a.relates_to if a else None) or addressing.message_id, ledger_id,
                                     http_status=response.status_code))
        return response, answer

    def _observe(self, envelope: audit.Envelope) -> None:
        if self.observer is None:
            return
        try:
            self.observer.on_exchange(envelope)
        except Exception as exc:  # noqa: BLE001 - an observer (the audit archive) must never stop a send
            log.warning("exchange observer failed (%s); the call goes on", type(exc).__name__)


def client_for_mo(settings: Settings, mo_code: str, *,
                  request_signer: Callable[[str], AnySigner] | None = None,
                  observer: ExchangeObserver | None = None) -> IemkClient:
    """The ИЭМК client of one МО: every request signed with the МО's request certificate.

    ``request_signer`` finds that certificate for an МО code (the Airflow glue looks in its connections
    first); by default the key store's."""
    if not settings.repository_url:
        raise ConfigurationError("не задан адрес ИЭМК (IEMK_URL или IEMK_REPOSITORY_URL): запросы некуда отправлять")
    entity = settings.require_client_entity_id()      # before the key store: the plainer problem first
    signer = (request_signer or KeyStore(settings).request_signer)(mo_code)
    return IemkClient(settings.repository_url, client_entity_id=entity, signer=signer, timeout=settings.http_timeout,
                      observer=observer, max_message_bytes=settings.max_message_bytes)


def _is_fault(answer: soap.Message | None) -> bool:
    return answer is not None and soap.find_fault(answer) is not None


def _refusal(response: httpx.Response, answer: soap.Message | None) -> CallResult:
    """The verdict on an answer that is not a success: the fault's words, or the HTTP status, classified by the
    error taxonomy (a busy or failing service: again later; our settings, certificate or clock: held until fixed;
    the document itself: refused)."""
    fault = soap.find_fault(answer) if answer is not None else None
    if response.status_code == 413:     # Content Too Large: the same bytes will never go
        return CallResult.failure(errors.MESSAGE_TOO_LARGE, f"{errors.MESSAGE_TOO_LARGE.title}: ИЭМК ответила "
                                  "HTTP 413 (Content Too Large)", 413)
    if response.status_code in _TRANSIENT_HTTP:
        kind = errors.of_fault(fault.code, fault.subcode) if fault is not None else errors.HTTP_TRANSIENT
        if not kind.transient:   # a 5xx/429 is "not now" whatever its fault says
            kind = errors.HTTP_TRANSIENT
    elif fault is not None:
        kind = errors.of_fault(fault.code, fault.subcode)
    else:
        kind = errors.HTTP_REFUSED
    if fault is None:
        return CallResult.failure(kind, f"ИЭМК ответила HTTP {response.status_code}", response.status_code)
    code = f"{fault.subcode}: " if fault.subcode else ""
    return CallResult.failure(kind, f"{code}{fault.reason}", response.status_code)


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f}".replace(".", ",")


def _too_large(size: int, limit: int) -> str:
    return f"{errors.MESSAGE_TOO_LARGE.title} ({_mb(limit)} МБ): запрос {_mb(size)} МБ не отправлен"
