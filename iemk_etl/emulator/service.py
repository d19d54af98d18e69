"""What the emulated ИЭМК does with a request, independent of HTTP.

Document upload (ITI-41): synchronous checks of the envelope (WS-Addressing, clientEntityId, the
WS-Security signature) answer at once; ФЛК and the registry rules run later and their verdict goes,
as an asynchronous RegistryResponse, to the request's ReplyTo. State lives in ``store`` (PostgreSQL).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from iemk_etl import snils, soap, validation, wssecurity, xds, xmlsafe
from iemk_etl.cda import NS as CDA_NS
from iemk_etl.cda import SNILS_ROOT
from iemk_etl.emulator.store import Store, Submission

log = logging.getLogger(__name__)

ACCEPTED = 202
REPOSITORY = "repository"


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


@dataclass
class SyncAnswer:
    status: int
    body: bytes = b""
    scheduled: bool = False   # an asynchronous reply was scheduled


class IemkEmulator:
    def __init__(self, config: EmulatorConfig, store: Store) -> None:
        self.config = config
        self.store = store

    # -- synchronous part -------------------------------------------------------------------------------

    def receive_document_set(self, body: bytes) -> SyncAnswer:
        try:
            message = soap.parse(body)
        except soap.SoapFormatError as exc:
            return self._fault("Sender", "FormatError", str(exc))
        a = message.addressing
        if a.action != xds.ACTION:
            return self._fault("Sender", "wsa:ActionNotSupported",
                               f"wsa:Action [{a.action}] не поддерживается сервисом репозитория", message)
        if not a.message_id:
            return self._fault("Sender", "wsa:MessageAddressingHeaderRequired", "не указан wsa:MessageID")
        if not a.reply_to or a.reply_to == soap.ANONYMOUS:
            return self._fault("Sender", "wsa:MessageAddressingHeaderRequired",
                               "для ITI-41 требуется адрес асинхронного ответа в wsa:ReplyTo", message)
        refusal = self._check_client(message) or self._check_signature(message)
        if refusal:
            return refusal
        if message.body is None or message.body.tag != f"{{{xds.XDS}}}ProvideAndRegisterDocumentSetRequest":
            return self._fault("Sender", "FormatError", "тело запроса не ProvideAndRegisterDocumentSetRequest",
                               message)
        if not self.store.record_message(a.message_id, REPOSITORY, a.action, message.client_entity_id, "accepted"):
            # The same message delivered again (a client retry): acknowledged, never processed twice.
            return SyncAnswer(ACCEPTED)
        doc = xds.read_request(message.body)
        self.store.accept_submission(Submission(a.message_id, a.reply_to, doc.unique_id, doc.patient_id,
                                                doc.kind_code, doc.author_person, doc.document),
                                     self.config.reply_delay)
        return SyncAnswer(ACCEPTED, scheduled=True)

    def _check_client(self, message: soap.Message) -> SyncAnswer | None:
        client = message.client_entity_id
        if not client:
            return self._fault("Sender", "egis:AuthorizationRequired",
                               "не указан transportHeader/authInfo/clientEntityId", message)
        known = self.config.known_clients
        if known is not None and client not in known:
            return self._fault("Sender", "egis:UnknownClient",
                               f"информационная система [{client}] не зарегистрирована в ЕГИСЗ", message)
        return None

    def _check_signature(self, message: soap.Message) -> SyncAnswer | None:
        if not self.config.require_signature:
            return None
        try:
            wssecurity.verify_envelope(message.envelope)
        except wssecurity.SignatureError as exc:
            return self._fault("Sender", f"wsse:{exc.code}", f"Ошибка проверки подписи запроса: {exc.message}",
                               message)
        return None

    def _fault(self, code: str, subcode: str, reason: str, message: soap.Message | None = None) -> SyncAnswer:
        relates_to = message.addressing.message_id if message else None
        if message is not None and relates_to:
            self.store.record_message(relates_to, REPOSITORY, message.addressing.action, message.client_entity_id,
                                      "fault", f"{subcode}: {reason}")
        log.info("fault %s: %s", subcode, reason)
        status = 400 if code == "Sender" else 500
        return SyncAnswer(status, soap.build_fault(soap.Fault(code, subcode, reason), relates_to=relates_to))

    # -- asynchronous part: ФЛК and the registry ---------------------------------------------------------

    def process(self, sub: Submission) -> xds.RegistryResponse:
        error = self._registry_error(sub)
        self.store.set_verdict(sub.message_id, "failure" if error else "success", error.text() if error else None)
        if error:
            return xds.RegistryResponse(xds.FAILURE, [error])
        return xds.RegistryResponse(xds.SUCCESS)

    def _registry_error(self, sub: Submission) -> xds.RegistryError | None:
        if sub.data is None:
            return xds.RegistryError("XDS.CDA.ProcessingError", "документ отсутствует или не в base64")
        if sub.kind_code is None:
            return xds.RegistryError("XDSDictionaryValidationError",
                                     "не указан вид СЭМД (formatCode по НСИ 1.2.643.5.1.13.13.11.1520)")
        findings = validation.validate_format(sub.kind_code, sub.data, packs_dir=self.config.packs_dir,
                                              require_packs=self.config.require_packs)
        if findings:
            f = findings[0]
            where = f" ({f.location})" if f.location else ""
            return xds.RegistryError("XDS.CDA.ValidationError", f"Ошибка валидации СЭМД: {f.message}{where}")
        root = xmlsafe.parse(sub.data)
        h = {"h": CDA_NS}
        cda_id = root.xpath("/h:ClinicalDocument/h:id", namespaces=h)[0]
        cda_unique = f"{cda_id.get('root')}^{cda_id.get('extension')}"
        if sub.unique_id != cda_unique:
            return xds.RegistryError(
                "XDSDocumentUniqueIdError",
                f"Уникальный идентификатор документа в СЭМД [{cda_unique}] отличается от уникального "
                f"идентификатора документа в запросе [{sub.unique_id}]")
        patient_snils = root.xpath(f"string(/h:ClinicalDocument/h:recordTarget/h:patientRole/"
                                   f"h:id[@root='{SNILS_ROOT}']/@extension)", namespaces=h)
        if patient_snils and not snils.is_valid(patient_snils):
            return xds.RegistryError(
                "XDSPatientRegistrationError",
                f"[CRE-122]: PAT-001; Пациент не определен: [СНИЛС [{patient_snils}] не валидно контрольное число]")
        custodian = root.xpath("string(/h:ClinicalDocument/h:custodian/h:assignedCustodian/"
                               "h:representedCustodianOrganization/h:id/@root)", namespaces=h)
        return self._register(sub, cda_unique, custodian or None)

    def _register(self, sub: Submission, unique: str, mo_oid: str | None) -> xds.RegistryError | None:
        assert sub.data is not None and sub.kind_code is not None
        digest = hashlib.sha256(sub.data).hexdigest()
        if self.store.store_document(unique, sub.patient_id or "", mo_oid, sub.kind_code, digest, sub.data,
                                     sub.message_id):
            return None
        existing = self.store.document(unique)
        if existing is not None and existing[0] == digest:
            return xds.RegistryError("XDSDuplicateUniqueIdInRegistry",
                                     f"Документ с уникальным идентификатором [{unique}] уже зарегистрирован")
        return xds.RegistryError("XDSNonIdenticalHash", f"Документ [{unique}] уже зарегистрирован с другим содержимым")

    def reply_envelope(self, sub: Submission, response: xds.RegistryResponse) -> bytes:
        addressing = soap.Addressing(soap.new_message_id(), xds.ASYNC_RESPONSE_ACTION, to=sub.reply_to,
                                     relates_to=sub.message_id)
        return soap.to_bytes(soap.build_envelope(xds.build_response(response), addressing))

    def stats(self) -> dict[str, int]:
        return self.store.stats()
