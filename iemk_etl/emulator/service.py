"""What the emulated ИЭМК does with a request, independent of HTTP.

Document upload (ITI-41): synchronous checks of the envelope (WS-Addressing, clientEntityId, the
WS-Security signature) answer at once; ФЛК and the registry rules run later and their verdict goes,
as an asynchronous RegistryResponse, to the request's ReplyTo. State lives in ``store`` (PostgreSQL).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from iemk_etl import kinds
from iemk_etl.emulator import patients
from iemk_etl.emulator.faults import FaultProfile
from iemk_etl.emulator.store import Registered, Store, Submission
from iemk_etl.flk import nsi_control, validation
from iemk_etl.protocol import snils, soap, xml
from iemk_etl.protocol.hl7v3 import pdq, pix
from iemk_etl.protocol.xds import query as xds_query
from iemk_etl.protocol.xds import retrieve, submit
from iemk_etl.protocol.xds.common import (
    CDA_FORMAT,
    FAILURE,
    FORMAT_CODES,
    SUCCESS,
    XDS,
    RegistryError,
    RegistryResponse,
    build_registry_response,
    is_urn_uuid,
    parse_hl7_ts,
    sha1_hex,
    split_coded,
)
from iemk_etl.semd.header import NS as CDA_NS
from iemk_etl.semd.header import SNILS_ROOT
from iemk_etl.signing import pinning, wssecurity
from iemk_etl.signing.keys import Signer

log = logging.getLogger(__name__)

ACCEPTED = 202
REPOSITORY, REGISTRY, PIX, PDQ = "repository", "registry", "pix", "pdq"


@dataclass(frozen=True)
class EmulatorConfig:
    packs_dir: Path | tuple[Path, ...] | None = None   # one folder or several in order (packs.Sources)
    require_packs: bool = False
    logical_control: bool = True    # Schematron after the XSD, as ИЭМК's ФЛК does
    # НСИ control after the Schematron, against this folder of ФНСИ dictionary files (the demo: devtools/nsi_demo);
    # None: no vocabulary check (the emulator has no dictionaries of its own).
    nsi_dir: Path | None = None
    reply_delay: float = 0.5
    require_signature: bool = True
    known_clients: frozenset[str] | None = None  # None: any clientEntityId is accepted
    callback_attempts: int = 6
    callback_backoff: float = 0.5
    callback_timeout: float = 10.0
    # Threads delivering the asynchronous replies at once (IEMK_EMULATOR_REPLY_THREADS), each with its own
    # keep-alive connection to the callback; 1 keeps the order in which faults meet replies reproducible.
    reply_threads: int = 4
    known_mo: frozenset[str] | None = None  # None: any OID of ФРМО form (or the legacy МО registry form)
    # ITI-41 refuses a document whose patient was never fed through PIX (XDSPatientRegistrationError).
    require_registered_patient: bool = False
    # The opaque id/@root of ИЭМК's HL7v3 answers, as in the public sample.
    repository_id: str = "1.2.643.5.1.13.2.7.100.1"
    response_root: str = "ti8q1f2x-jr7g-1sjx-cy6n-u3diwj030krxz2lg8sm4gd005p14i"
    faults: FaultProfile = field(default_factory=FaultProfile)
    # ЕГИСЗ binds a registered system to its certificate(s) (IEMK_EMULATOR_CLIENTS ID=CERT): a request of a bound
    # clientEntityId signed by another certificate is refused exactly as an unregistered system is. A bound ID is
    # registered even when known_clients does not list it.
    client_certificates: Mapping[str, pinning.Pins] = field(default_factory=dict)
    # Signs the asynchronous replies (Body, the reply profile) when set: `emulator serve --reply-cert/--reply-key`.
    reply_signer: Signer | None = None
    max_message_bytes: int = xml.MAX_MESSAGE_BYTES   # a bigger HTTP body gets 413 (IEMK_MAX_MESSAGE_BYTES)


@dataclass
class SyncAnswer:
    status: int
    body: bytes = b""
    scheduled: bool = False   # an asynchronous reply was scheduled


class IemkEmulator:
    def __init__(self, config: EmulatorConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.dictionaries = nsi_control.FolderSource(config.nsi_dir) if config.nsi_dir else None
        for client in sorted((config.known_clients or frozenset()) - set(config.client_certificates)):
            log.warning("IEMK_EMULATOR_CLIENTS: %s is not bound to a certificate: its requests are accepted signed "
                        "by any valid certificate (bind it as %s=<certificate file or SHA-256>)", client, client)

    # -- synchronous part -------------------------------------------------------------------------------

    def _open(self, body: bytes | soap.Message, service: str, actions: set[str], *, async_reply: bool
              ) -> soap.Message | SyncAnswer:
        """The checks every service makes before it reads the body: SOAP, WS-Addressing, client, signature."""
        try:
            message = body if isinstance(body, soap.Message) else soap.parse(body, limit=self.config.max_message_bytes)
        except soap.SoapFormatError as exc:
            return self._fault("Sender", "FormatError", str(exc), service=service)
        a = message.addressing
        if a.action not in actions:
            return self._fault("Sender", "wsa:ActionNotSupported",
                               f"wsa:Action [{a.action}] не поддерживается этим сервисом", message, service)
        if not a.message_id:
            return self._fault("Sender", "wsa:MessageAddressingHeaderRequired", "не указан wsa:MessageID",
                               service=service)
        if async_reply and (not a.reply_to or a.reply_to == soap.ANONYMOUS):
            return self._fault("Sender", "wsa:MessageAddressingHeaderRequired",
                               "для этой операции требуется адрес асинхронного ответа в wsa:ReplyTo", message, service)
        refusal = self._check_client(message, service) or self._check_signature(message, service)
        if refusal:
            return refusal
        if message.body is None:
            return self._fault("Sender", "FormatError", "пустое тело запроса", message, service)
        return message

    def receive_document_set(self, body: bytes | soap.Message) -> SyncAnswer:
        message = self._open(body, REPOSITORY, {submit.ACTION}, async_reply=True)
        if isinstance(message, SyncAnswer):
            return message
        a = message.addressing
        if message.body is None or message.body.tag != f"{{{XDS}}}ProvideAndRegisterDocumentSetRequest":
            return self._fault("Sender", "FormatError", "тело запроса не ProvideAndRegisterDocumentSetRequest",
                               message, REPOSITORY)
        doc = submit.read_request(message.body)
        held_back = self.config.faults.extra_delay("iti41", self.config.reply_delay)
        if held_back:
            self.store.record_injected("iti41", "out_of_order")
        delay = self.config.reply_delay + held_back
        sub = Submission(a.message_id, a.reply_to or "", doc.unique_id, doc.patient_id, doc.kind_code,
                         doc.author_person, doc.document, doc.replaces, doc.metadata())
        # A repeated MessageID (a client retry) is acknowledged and counted, never processed twice.
        scheduled = self.store.accept_submission(sub, message.client_entity_id, a.action, delay)
        return SyncAnswer(ACCEPTED, scheduled=scheduled)

    # -- patients: PIX feed and PDQ ----------------------------------------------------------------------------

    def patient_feed(self, body: bytes) -> SyncAnswer:
        message = self._open(body, PIX, {pix.ACTION[pix.ADD], pix.ACTION[pix.REVISE]}, async_reply=False)
        if isinstance(message, SyncAnswer):
            return message
        try:
            feed = pix.read_feed(message.body)  # type: ignore[arg-type]
        except ValueError as exc:
            return self._fault("Sender", "FormatError", str(exc), message, PIX)
        ack = patients.apply_feed(self.store, feed, self.config.known_mo)
        self.store.record_message(message.addressing.message_id, PIX, message.addressing.action,
                                  message.client_entity_id, "success" if ack.accepted else "failure", ack.detail)
        reply = pix.build_ack(feed, ack, token=self.config.response_root)
        return self._sync_reply(message, pix.ACTION[pix.ACK], reply)

    def patient_query(self, body: bytes) -> SyncAnswer:
        # Both spellings of the action (IHE ITI-47's and the short one); the answer's matches the query's.
        message = self._open(body, PDQ, set(pdq.ACTIONS), async_reply=False)
        if isinstance(message, SyncAnswer):
            return message
        try:
            query = pdq.read_request(message.body)  # type: ignore[arg-type]
        except ValueError as exc:
            return self._fault("Sender", "FormatError", str(exc), message, PDQ)
        found = self.store.find_patients(query)
        self.store.record_message(message.addressing.message_id, PDQ, message.addressing.action,
                                  message.client_entity_id, "success", f"найдено пациентов: {len(found)}")
        reply = pdq.build_response(message.body, found, token=self.config.response_root)  # type: ignore[arg-type]
        return self._sync_reply(message, pdq.ACTIONS[message.addressing.action], reply)

    def _sync_reply(self, request: soap.Message, action: str, body: etree._Element) -> SyncAnswer:
        addressing = soap.Addressing(soap.new_message_id(), action, to=soap.ANONYMOUS,
                                     relates_to=request.addressing.message_id)
        return SyncAnswer(200, soap.to_bytes(soap.build_envelope(body, addressing)))

    def _check_client(self, message: soap.Message, service: str) -> SyncAnswer | None:
        client = message.client_entity_id
        if not client:
            return self._fault("Sender", "egis:AuthorizationRequired",
                               "не указан transportHeader/authInfo/clientEntityId", message, service)
        known = self.config.known_clients
        if known is not None and client not in known and client not in self.config.client_certificates:
            return self._unknown_client(message, service)
        return None

    def _unknown_client(self, message: soap.Message, service: str) -> SyncAnswer:
        """The one answer for an unregistered system and for a registered one signing with a certificate not its
        own: the caller learns nothing about which it was."""
        return self._fault("Sender", "egis:UnknownClient",
                           f"информационная система [{message.client_entity_id}] не зарегистрирована в ЕГИСЗ",
                           message, service)

    def _check_signature(self, message: soap.Message, service: str) -> SyncAnswer | None:
        pins = self.config.client_certificates.get(message.client_entity_id or "")
        if not self.config.require_signature and pins is None:
            return None
        try:
            verified = wssecurity.verify_envelope(message.envelope)
        except wssecurity.SignatureError as exc:
            if not self.config.require_signature:       # a bound system unproven: as if it were not registered
                return self._unknown_client(message, service)
            return self._fault("Sender", f"wsse:{exc.code}", f"Ошибка проверки подписи запроса: {exc.message}",
                               message, service)
        if pins is not None and not pins.allows(verified.certificate_der):
            log.info("client %s signed with certificate sha256 %s, not bound to it", message.client_entity_id,
                     pinning.fingerprint(verified.certificate_der))
            return self._unknown_client(message, service)
        return None

    def _fault(self, code: str, subcode: str, reason: str, message: soap.Message | None = None,
               service: str = REPOSITORY) -> SyncAnswer:
        relates_to = message.addressing.message_id if message else None
        if message is not None and relates_to:
            self.store.record_message(relates_to, service, message.addressing.action, message.client_entity_id,
                                      "fault", f"{subcode}: {reason}")
        log.info("fault %s: %s", subcode, reason)
        status = 400 if code == "Sender" else 500
        return SyncAnswer(status, soap.build_fault(soap.Fault(code, subcode, reason), relates_to=relates_to))

    # -- asynchronous part: ФЛК and the registry ---------------------------------------------------------

    def process(self, sub: Submission, *, record_verdict: bool = True) -> RegistryResponse:
        """ФЛК and the registry rules on an accepted submission. ``record_verdict=False``: the caller records the
        verdict (``verdict``) itself, with the reply (the reply sender: one commit for both)."""
        if self.config.faults.async_fault("iti41", "registry_busy"):
            self.store.record_injected("iti41", "registry_busy")
            error: RegistryError | None = RegistryError(
                "XDSRegistryBusy", "Реестр временно перегружен, повторите передачу документа позже")
        else:
            error = self._registry_error(sub)
        response = RegistryResponse(FAILURE, [error]) if error else RegistryResponse(SUCCESS)
        if record_verdict:
            self.store.set_verdict(sub.message_id, *verdict(response))
        return response

    def _registry_error(self, sub: Submission) -> RegistryError | None:
        if sub.data is None:
            return RegistryError("XDS.CDA.ProcessingError", "документ отсутствует или не в base64")
        missing = self._missing_metadata(sub) or self._repository_metadata_error(sub)
        if missing:
            return missing
        try:
            root: etree._Element | None = xml.parse(sub.data, limit=self.config.max_message_bytes)
        except (etree.XMLSyntaxError, xml.UnsafeXmlError):
            root = None      # format control reports it
        # The kind is the document's own (its templateId); the metadata must not contradict it. ФЛК then applies
        # that kind's rules: a document of another kind is a metadata error, not a hundred Schematron findings.
        kind = self._document_kind(sub, root)
        if isinstance(kind, RegistryError):
            return kind
        sub = dataclasses.replace(sub, kind_code=kind)
        kind_error = self._kind_error(sub, root, kind) if root is not None else None
        if kind_error:
            return kind_error
        findings = validation.validate(kind, sub.data, packs_dir=self.config.packs_dir,
                                       require_packs=self.config.require_packs, logical=self.config.logical_control,
                                       nsi=self.dictionaries)
        if findings and all(f.stage == "nsi" for f in findings):
            # ИЭМК answers a patient's bad СНИЛС in its patient step (PAT-001, XDSPatientRegistrationError, below)
            vocabulary = [f for f in findings if not (f.rule == nsi_control.SNILS_CHECK
                                                      and "/recordTarget[" in f.location)]
            if vocabulary:
                return RegistryError("XDSDictionaryValidationError", _nsi_text(vocabulary[0], kind))
            findings = []
        if findings or root is None:
            return RegistryError("XDS.CDA.ValidationError", _flk_text(findings[0]))
        return self._metadata_error(sub, root) or self._patient_error(sub, root) or self._register(sub, root)

    @staticmethod
    def _missing_metadata(sub: Submission) -> RegistryError | None:
        """IHE: a DocumentEntry without uniqueId, patientId, classCode or formatCode is XDSMissingDocumentMetadata
        (a submission stored before the metadata were kept, ``metadata`` None, is judged on what it has)."""
        meta = sub.metadata
        required = [("uniqueId", sub.unique_id), ("patientId", sub.patient_id)]
        if meta is not None:
            required += [("classCode", meta.get("class_code")), ("formatCode", meta.get("format_code"))]
        absent = [name for name, value in required if not value]
        if absent:
            return RegistryError("XDSMissingDocumentMetadata",
                                 f"не указаны обязательные метаданные документа: {', '.join(absent)}")
        return None

    def _repository_metadata_error(self, sub: Submission) -> RegistryError | None:
        """hash (SHA-1, hex), size (bytes) and repositoryUniqueId, when the source gives them, must be the
        document's and this repository's: XDSRepositoryMetadataError (IHE ITI TF-2b 3.41.4.1.3)."""
        assert sub.data is not None
        meta = sub.metadata or {}
        digest, size, repository = meta.get("hash"), meta.get("size"), meta.get("repository_unique_id")
        actual = sha1_hex(sub.data)
        if digest and digest.lower() != actual:
            return RegistryError("XDSRepositoryMetadataError",
                                 f"hash документа [{actual}] (SHA-1) отличается от hash в запросе [{digest}]")
        if size and size != str(len(sub.data)):
            return RegistryError("XDSRepositoryMetadataError",
                                 f"size документа [{len(sub.data)}] отличается от size в запросе [{size}]")
        if repository and repository != self.config.repository_id:
            return RegistryError("XDSRepositoryMetadataError",
                                 f"repositoryUniqueId в запросе [{repository}] не идентификатор этого репозитория "
                                 f"[{self.config.repository_id}]")
        return None

    @staticmethod
    def _document_kind(sub: Submission, root: etree._Element | None) -> int | RegistryError:
        """The НСИ 1520 kind: the document's templateId says it; a document of a template we do not know goes by
        the kind its metadata declare (legacy formatCode, or a classCode in НСИ 1520)."""
        template = root.xpath("string(/h:ClinicalDocument/h:templateId/@root)", namespaces={"h": CDA_NS}) \
            if root is not None else ""
        known = kinds.by_template_id(template)
        if known is not None:
            return known.code
        declared = sub.kind_code
        code, scheme = split_coded((sub.metadata or {}).get("class_code") or "")
        if declared is None and scheme == kinds.NSI_1520 and code.isdigit():
            declared = int(code)
        if declared is None:
            return RegistryError("XDSDictionaryValidationError",
                                 f"вид СЭМД не определён: templateId [{template}] не относится к известному виду "
                                 f"по НСИ {kinds.NSI_1520}")
        return declared

    def _kind_error(self, sub: Submission, root: etree._Element, kind: int) -> RegistryError | None:
        """formatCode and classCode, in whichever layout, must say what the document is."""
        h = {"h": CDA_NS}
        meta = sub.metadata or {}
        fmt = _kind_declared(meta.get("format_code")) if sub.metadata is not None else None
        if fmt is not None and fmt != kind:
            return RegistryError("XDSRegistryMetadataError",
                                 f"Вид СЭМД в СЭМД [{kind}] отличается от вида СЭМД в запросе [{fmt}]")
        fmt_code, fmt_scheme = split_coded(meta.get("format_code") or "")
        if fmt_scheme == FORMAT_CODES and fmt_code != CDA_FORMAT:
            return RegistryError("XDSRegistryMetadataError",
                                 f"formatCode [{fmt_code}] не формат CDA [{CDA_FORMAT}], а документ — CDA")
        code, scheme = split_coded(meta.get("class_code") or "")
        if scheme == kinds.NSI_1520 and code != str(kind):
            return RegistryError("XDSRegistryMetadataError",
                                 f"Вид СЭМД в СЭМД [{kind}] отличается от classCode в запросе [{code}]")
        if scheme in (kinds.NSI_1522, kinds.NSI_646_OLD):
            doc_type = root.xpath("string(/h:ClinicalDocument/h:code/@code)", namespaces=h)
            if doc_type and code != doc_type:      # a document without its code is for format control to refuse
                return RegistryError("XDSRegistryMetadataError",
                                     f"Тип документа (НСИ {kinds.NSI_1522}) в СЭМД [{doc_type}] отличается от "
                                     f"classCode в запросе [{code}]")
        return None

    def _metadata_error(self, sub: Submission, root: etree._Element) -> RegistryError | None:
        """The request's metadata must say what the document says; a disagreement names both values."""
        h = {"h": CDA_NS}
        cda_id = root.xpath("/h:ClinicalDocument/h:id", namespaces=h)[0]
        cda_unique = f"{cda_id.get('root')}^{cda_id.get('extension')}"
        if sub.unique_id != cda_unique:
            return RegistryError(
                "XDSDocumentUniqueIdError",
                f"Уникальный идентификатор документа в СЭМД [{cda_unique}] отличается от уникального "
                f"идентификатора документа в запросе [{sub.unique_id}]")
        local = (sub.patient_id or "").split("^", 1)[0]
        cda_patient = root.xpath("string(/h:ClinicalDocument/h:recordTarget/h:patientRole/h:id[1]/@extension)",
                                 namespaces=h)
        if local != cda_patient:
            return RegistryError("XDSPatientIdDoesNotMatch",
                                     f"Идентификатор пациента в СЭМД [{cda_patient}] отличается от идентификатора "
                                     f"пациента в запросе [{local}]")
        author_snils = (sub.author or "").split("^", 1)[0]
        cda_author = root.xpath(f"string(/h:ClinicalDocument/h:author/h:assignedAuthor/h:id[@root='{SNILS_ROOT}']"
                                "/@extension)", namespaces=h)
        if author_snils and cda_author and author_snils != cda_author:
            return RegistryError("XDSRegistryMetadataError",
                                     f"СНИЛС автора в СЭМД [{cda_author}] отличается от СНИЛС автора в запросе "
                                     f"[{author_snils}]")
        return None

    def _patient_error(self, sub: Submission, root: etree._Element) -> RegistryError | None:
        h = {"h": CDA_NS}
        patient_snils = root.xpath(f"string(/h:ClinicalDocument/h:recordTarget/h:patientRole/"
                                   f"h:id[@root='{SNILS_ROOT}']/@extension)", namespaces=h)
        if patient_snils and not snils.is_valid(patient_snils):
            return RegistryError(
                "XDSPatientRegistrationError",
                f"[CRE-122]: PAT-001; Пациент не определен: [СНИЛС [{patient_snils}] не валидно контрольное число]")
        if self.config.require_registered_patient:
            local, _, rest = (sub.patient_id or "").partition("^^^&")
            mo_oid = rest.split("&", 1)[0]
            if self.store.patient(mo_oid, local) is None:
                return RegistryError(
                    "XDSPatientRegistrationError",
                    f"[CRE-122]: PAT-001; Пациент не определен: [Patient(moId: [{mo_oid}], patientId: [{local}])"
                    " не зарегистрирован в ИЭМК]")
        return None

    def _register(self, sub: Submission, root: etree._Element) -> RegistryError | None:
        assert sub.data is not None and sub.unique_id is not None
        h = {"h": CDA_NS}
        if sub.replaces and self.store.document(sub.replaces) is None:
            return RegistryError("XDSDocumentUniqueIdError",
                                     f"Association [RPLC] targetId with unique ID [{sub.replaces}] not found in "
                                     "repository")
        custodian = root.xpath("string(/h:ClinicalDocument/h:custodian/h:assignedCustodian/"
                               "h:representedCustodianOrganization/h:id/@root)", namespaces=h) or None
        created = _cda_time(root.xpath("string(/h:ClinicalDocument/h:effectiveTime/@value)", namespaces=h))
        digest = hashlib.sha256(sub.data).hexdigest()
        if self.store.store_document(sub, sub.unique_id, custodian, digest, created, _registered(sub, root)):
            return None
        existing = self.store.document(sub.unique_id)
        if existing is not None and existing[0] == digest:
            return RegistryError("XDSDuplicateUniqueIdInRegistry",
                                     f"Документ с уникальным идентификатором [{sub.unique_id}] уже зарегистрирован")
        return RegistryError("XDSNonIdenticalHash",
                                 f"Документ [{sub.unique_id}] уже зарегистрирован с другим содержимым")

    # -- the registry and the repository: queries ---------------------------------------------------------

    def registry_query(self, body: bytes) -> SyncAnswer:
        message = self._open(body, REGISTRY, {xds_query.ACTION}, async_reply=False)
        if isinstance(message, SyncAnswer):
            return message
        try:
            query = xds_query.read_request(message.body)  # type: ignore[arg-type]
        except ValueError as exc:
            reply = xds_query.build_response([], RegistryError("XDSRegistryError", str(exc)))
        else:
            entries = [dataclasses.replace(e, repository_unique_id=self.config.repository_id)
                       for e in self.store.find_documents(query)]
            reply = xds_query.build_response(entries)
        self.store.record_message(message.addressing.message_id, REGISTRY, message.addressing.action,
                                  message.client_entity_id, "success", None)
        return self._sync_reply(message, xds_query.RESPONSE_ACTION, reply)

    def retrieve(self, body: bytes | soap.Message) -> SyncAnswer:
        message = self._open(body, REPOSITORY, {retrieve.ACTION}, async_reply=False)
        if isinstance(message, SyncAnswer):
            return message
        wanted = retrieve.read_request(message.body)  # type: ignore[arg-type]
        found = self.store.documents_data(wanted)
        reply = retrieve.build_response([(u, found[u]) for u in wanted if u in found],
                                            [u for u in wanted if u not in found], self.config.repository_id)
        self.store.record_message(message.addressing.message_id, REPOSITORY, message.addressing.action,
                                  message.client_entity_id, "success", f"выдано документов: {len(found)}")
        return self._sync_reply(message, retrieve.RESPONSE_ACTION, reply)

    def repository(self, body: bytes) -> SyncAnswer:
        """One endpoint for the repository's two transactions, told apart by wsa:Action."""
        try:
            message = soap.parse(body, limit=self.config.max_message_bytes)
        except soap.SoapFormatError as exc:
            return self._fault("Sender", "FormatError", str(exc))
        if message.addressing.action == retrieve.ACTION:
            return self.retrieve(message)
        return self.receive_document_set(message)

    def reply_envelope(self, sub: Submission, response: RegistryResponse) -> bytes:
        addressing = soap.Addressing(soap.new_message_id(), submit.ASYNC_RESPONSE_ACTION, to=sub.reply_to,
                                     relates_to=sub.message_id)
        envelope = soap.build_envelope(build_registry_response(response), addressing)
        if self.config.reply_signer is not None:
            wssecurity.sign_envelope(envelope, self.config.reply_signer, parts=wssecurity.RESPONSE_PARTS)
        return soap.to_bytes(envelope)

    def stats(self) -> dict[str, int]:
        return self.store.stats()


def verdict(response: RegistryResponse) -> tuple[str, str | None]:
    """What the message table records of a processed submission: (success | failure, the first error's text)."""
    if response.errors:
        return "failure", response.errors[0].text()
    return "success", None


def _flk_text(f: validation.Finding) -> str:
    """Worded as the real service words them."""
    if f.stage == "logic":
        return f"Ошибка валидации Schematron: {f.message} Путь: {f.location}"
    where = f" ({f.location})" if f.location else ""
    return f"Ошибка валидации СЭМД: {f.message}{where}"


def _nsi_text(f: validation.Finding, kind: int) -> str:
    """Worded as ИЭМК's XDSDictionaryValidationError answers are (docs/emulator.md: the real texts and which of
    these are ours): «Element … code [...] is not actual.», «Справочник OID [...]. Версия [...] недопустима …»."""
    element = f.location.rsplit("/", 1)[-1].split("[", 1)[0] or "?"
    detail = f" {f.message} Путь: {f.location}"
    if f.rule == nsi_control.NSI_VERSION:
        oid, version = _bracketed(f.message, "OID ["), _bracketed(f.message, "версия [")
        return f"Справочник OID [{oid}]. Версия [{version}] недопустима для документа вида [{kind}].{detail}"
    if f.rule == nsi_control.SNILS_CHECK:
        return f"Element {element}. СНИЛС [{_bracketed(f.message, 'СНИЛС [')}] не валидно контрольное число.{detail}"
    if f.rule == nsi_control.OGRN_CHECK:
        return f"Element {element}. ОГРН [{_bracketed(f.message, ' [')}] не валидно контрольное число.{detail}"
    if f.rule == nsi_control.OMS_CHECK:
        return (f"Element {element}. Полис ОМС [{_bracketed(f.message, 'единого образца [')}] не валидно контрольное "
                f"число.{detail}")
    code = _bracketed(f.message, "код [")
    if f.rule == nsi_control.NSI_NAME:
        return f"Element {element}. code [{code}] displayName is not actual.{detail}"
    return f"Element {element}. code [{code}] is not actual.{detail}"


def _bracketed(text: str, after: str) -> str:
    start = text.find(after)
    if start < 0:
        return ""
    start += len(after)
    return text[start:text.find("]", start)]


def _cda_time(value: str) -> dt.datetime | None:
    """An HL7 TS such as 20261101100000+0300."""
    return parse_hl7_ts(value)


def _kind_declared(format_code: str | None) -> int | None:
    """The НСИ 1520 kind a legacy formatCode declares (a bare number was read as one before issue 12)."""
    code, scheme = split_coded(format_code or "")
    return int(code) if code.isdigit() and scheme in (kinds.NSI_1520, "") else None


def _registered(sub: Submission, root: etree._Element) -> Registered:
    """The entry's XDS metadata: the submitted entryUUID (IHE: a symbolic id gets one from the registry)."""
    meta = sub.metadata or {}
    entry = meta.get("entry_id")
    doc_type = root.xpath("string(/h:ClinicalDocument/h:code/@code)", namespaces={"h": CDA_NS})
    return Registered(entry if is_urn_uuid(entry) else f"urn:uuid:{uuid.uuid4()}",
                      int(doc_type) if doc_type.isdigit() else None, meta.get("class_code"), meta.get("format_code"))
