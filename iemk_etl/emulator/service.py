"""What the emulated ИЭМК does with a request, independent of HTTP.

Document upload (ITI-41): synchronous checks of the envelope (WS-Addressing, clientEntityId, the
WS-Security signature) answer at once; ФЛК and the registry rules run later and their verdict goes,
as an asynchronous RegistryResponse, to the request's ReplyTo.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from iemk_etl import snils, soap, validation, wssecurity, xds, xmlsafe
from iemk_etl.cda import NS as CDA_NS
from iemk_etl.cda import SNILS_ROOT

log = logging.getLogger(__name__)

ACCEPTED = 202


@dataclass(frozen=True)
class EmulatorConfig:
    packs_dir: Path | None = None
    require_packs: bool = False
    reply_delay: float = 0.5
    require_signature: bool = True
    known_clients: frozenset[str] | None = None  # None: any clientEntityId is accepted
    callback_attempts: int = 6
    callback_backoff: float = 0.5
    callback_timeout: float = 10.0


@dataclass(frozen=True)
class PendingReply:
    reply_to: str
    relates_to: str
    document: xds.ReceivedDocument


@dataclass
class StoredDocument:
    unique_id: str
    content_hash: str
    kind_code: int
    patient_id: str
    data: bytes


@dataclass
class SyncAnswer:
    status: int
    body: bytes = b""
    pending: PendingReply | None = None


@dataclass
class EmulatorState:
    received: dict[str, str] = field(default_factory=dict)          # MessageID -> uniqueId
    documents: dict[str, StoredDocument] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)


class IemkEmulator:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.state = EmulatorState()
        self._lock = threading.Lock()

    # -- synchronous part -------------------------------------------------------------------------------

    def receive_document_set(self, body: bytes) -> SyncAnswer:
        try:
            message = soap.parse(body)
        except soap.SoapFormatError as exc:
            return self._fault("Sender", "FormatError", str(exc))
        a = message.addressing
        if a.action != xds.ACTION:
            return self._fault("Sender", "wsa:ActionNotSupported",
                               f"wsa:Action [{a.action}] не поддерживается сервисом репозитория", a.message_id)
        if not a.message_id:
            return self._fault("Sender", "wsa:MessageAddressingHeaderRequired", "не указан wsa:MessageID")
        if not a.reply_to or a.reply_to == soap.ANONYMOUS:
            return self._fault("Sender", "wsa:MessageAddressingHeaderRequired",
                               "для ITI-41 требуется адрес асинхронного ответа в wsa:ReplyTo", a.message_id)
        refusal = self._check_client(message) or self._check_signature(message)
        if refusal:
            return refusal
        if message.body is None or message.body.tag != f"{{{xds.XDS}}}ProvideAndRegisterDocumentSetRequest":
            return self._fault("Sender", "FormatError", "тело запроса не ProvideAndRegisterDocumentSetRequest",
                               a.message_id)
        with self._lock:
            if a.message_id in self.state.received:
                # The same message delivered again (a client retry): acknowledged, never processed twice.
                self.state.counters["duplicate_deliveries"] += 1
                return SyncAnswer(ACCEPTED)
            document = xds.read_request(message.body)
            self.state.received[a.message_id] = document.unique_id or ""
            self.state.counters["received"] += 1
        return SyncAnswer(ACCEPTED, pending=PendingReply(a.reply_to, a.message_id, document))

    def _check_client(self, message: soap.Message) -> SyncAnswer | None:
        client = message.client_entity_id
        if not client:
            return self._fault("Sender", "egis:AuthorizationRequired",
                               "не указан transportHeader/authInfo/clientEntityId", message.addressing.message_id)
        known = self.config.known_clients
        if known is not None and client not in known:
            return self._fault("Sender", "egis:UnknownClient",
                               f"информационная система [{client}] не зарегистрирована в ЕГИСЗ",
                               message.addressing.message_id)
        return None

    def _check_signature(self, message: soap.Message) -> SyncAnswer | None:
        if not self.config.require_signature:
            return None
        try:
            wssecurity.verify_envelope(message.envelope)
        except wssecurity.SignatureError as exc:
            return self._fault("Sender", f"wsse:{exc.code}", f"Ошибка проверки подписи запроса: {exc.message}",
                               message.addressing.message_id)
        return None

    def _fault(self, code: str, subcode: str, reason: str, relates_to: str | None = None) -> SyncAnswer:
        with self._lock:
            self.state.counters["faults"] += 1
        log.info("fault %s: %s", subcode, reason)
        status = 400 if code == "Sender" else 500
        return SyncAnswer(status, soap.build_fault(soap.Fault(code, subcode, reason), relates_to=relates_to))

    # -- asynchronous part: ФЛК and the registry ---------------------------------------------------------

    def process(self, doc: xds.ReceivedDocument) -> xds.RegistryResponse:
        error = self._registry_error(doc)
        with self._lock:
            self.state.counters["failure" if error else "success"] += 1
        if error:
            return xds.RegistryResponse(xds.FAILURE, [error])
        return xds.RegistryResponse(xds.SUCCESS)

    def _registry_error(self, doc: xds.ReceivedDocument) -> xds.RegistryError | None:
        if doc.document is None:
            return xds.RegistryError("XDS.CDA.ProcessingError", "документ отсутствует или не в base64")
        if doc.kind_code is None:
            return xds.RegistryError("XDSDictionaryValidationError",
                                     "не указан вид СЭМД (formatCode по НСИ 1.2.643.5.1.13.13.11.1520)")
        findings = validation.validate_format(doc.kind_code, doc.document, packs_dir=self.config.packs_dir,
                                              require_packs=self.config.require_packs)
        if findings:
            f = findings[0]
            where = f" ({f.location})" if f.location else ""
            return xds.RegistryError("XDS.CDA.ValidationError", f"Ошибка валидации СЭМД: {f.message}{where}")
        root = xmlsafe.parse(doc.document)
        h = {"h": CDA_NS}
        cda_id = root.xpath("/h:ClinicalDocument/h:id", namespaces=h)[0]
        cda_unique = f"{cda_id.get('root')}^{cda_id.get('extension')}"
        if doc.unique_id != cda_unique:
            return xds.RegistryError(
                "XDSDocumentUniqueIdError",
                f"Уникальный идентификатор документа в СЭМД [{cda_unique}] отличается от уникального "
                f"идентификатора документа в запросе [{doc.unique_id}]")
        patient_snils = root.xpath(f"string(/h:ClinicalDocument/h:recordTarget/h:patientRole/"
                                   f"h:id[@root='{SNILS_ROOT}']/@extension)", namespaces=h)
        if patient_snils and not snils.is_valid(patient_snils):
            return xds.RegistryError(
                "XDSPatientRegistrationError",
                f"[CRE-122]: PAT-001; Пациент не определен: [СНИЛС [{patient_snils}] не валидно контрольное число]")
        return self._register(doc, cda_unique)

    def _register(self, doc: xds.ReceivedDocument, unique: str) -> xds.RegistryError | None:
        assert doc.document is not None and doc.kind_code is not None
        digest = hashlib.sha256(doc.document).hexdigest()
        with self._lock:
            existing = self.state.documents.get(unique)
            if existing is not None:
                if existing.content_hash == digest:
                    return xds.RegistryError("XDSDuplicateUniqueIdInRegistry",
                                             f"Документ с уникальным идентификатором [{unique}] уже зарегистрирован")
                return xds.RegistryError("XDSNonIdenticalHash",
                                         f"Документ [{unique}] уже зарегистрирован с другим содержимым")
            self.state.documents[unique] = StoredDocument(unique, digest, doc.kind_code, doc.patient_id or "",
                                                          doc.document)
        return None

    def reply_envelope(self, pending: PendingReply, response: xds.RegistryResponse) -> bytes:
        addressing = soap.Addressing(soap.new_message_id(), xds.ASYNC_RESPONSE_ACTION, to=pending.reply_to,
                                     relates_to=pending.relates_to)
        return soap.to_bytes(soap.build_envelope(xds.build_response(response), addressing))

    def count(self, name: str) -> None:
        with self._lock:
            self.state.counters[name] += 1

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**self.state.counters, "stored": len(self.state.documents)}

