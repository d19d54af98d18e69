"""The closed set of errors of iemk-etl: what went wrong, who must act, and when to try again.

Every failure a document can meet — our own format and logical control, signing, configuration, the transport,
ИЭМК's synchronous faults and asynchronous answers (the XDS codes and the codes of НСИ 1.2.643.5.1.13.13.99.2.305) —
is one ``ErrorKind`` of this catalogue. A kind carries:

- ``code``: stable; it is what ``iemk.ledger.error_code`` holds (a code we did not know becomes ``IEMK_UNKNOWN``);
- ``title``: the Russian words a МИС user sees before the particular reason;
- ``actor``: who must act — the МИС's data (a clinician or registrar fixes a record), the administrator of this
  installation (keys, settings, clock), ИЭМК (its own trouble), or nobody;
- ``retry``: when the same document may go again — now (within the run, with backoff), at the next run, only after
  someone fixes the cause (the document is held, not ended), or never (this version is finished; a fixed record makes
  a new version).

The export decides on ``actor`` and ``retry``, never on lists of strings. ``IemkError`` is the root of every
exception the package raises on purpose; each carries its kind.

Style after zeep's ``exceptions.py`` (one root, data-carrying subclasses) and singer-sdk / dlt (retriable vs fatal
as data, not as ad-hoc checks); the responsibility zone follows the ЕГИСЗ practice of routing an error to the
clinic, the МИС / integrator or the registry.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Actor(enum.StrEnum):
    """Who must act for the document to go on."""

    MIS_DATA = "МИС"                  # the record in the МИС is wrong or incomplete: its users fix it
    ADMIN = "администратор"           # our installation: settings, keys and certificates, clock, software
    IEMK = "ИЭМК"                     # the federal service's own trouble
    NOBODY = "никто"                  # nothing to do: the outcome is fine or repairs itself


class Retry(enum.StrEnum):
    """When the same document may be sent again."""

    NOW = "now"                       # within this run, after a backoff
    NEXT_RUN = "next_run"             # at the next run (the service is busy or away)
    AFTER_FIX = "after_fix"           # held: it goes again by itself once the cause is fixed
    NEVER = "never"                   # this version is finished (a corrected record makes a new version)


@dataclass(frozen=True)
class ErrorKind:
    code: str
    title: str
    actor: Actor
    retry: Retry

    @property
    def final(self) -> bool:
        """The document's version is finished: nothing sends it again."""
        return self.retry is Retry.NEVER

    @property
    def holds(self) -> bool:
        """The document waits, visibly in error, until the cause is fixed; then it goes on."""
        return self.retry is Retry.AFTER_FIX

    @property
    def transient(self) -> bool:
        return self.retry in (Retry.NOW, Retry.NEXT_RUN)

    def status_text(self, detail: str | None = None) -> str:
        """The reason a user reads after «Ошибка: »: the title, and the particular detail when there is one."""
        if not detail:
            return self.title
        return detail if detail.startswith(self.title) else f"{self.title}: {detail}"


_CATALOGUE: dict[str, ErrorKind] = {}


def _kind(code: str, title: str, actor: Actor, retry: Retry) -> ErrorKind:
    if code in _CATALOGUE:
        raise ValueError(f"error code {code} defined twice")
    kind = ErrorKind(code, title, actor, retry)
    _CATALOGUE[code] = kind
    return kind


def _kinds(codes: str, title: str, actor: Actor, retry: Retry) -> None:
    for code in codes.split():
        _kind(code, title, actor, retry)


M, A, R, N = Actor.MIS_DATA, Actor.ADMIN, Actor.IEMK, Actor.NOBODY  # R: the registry (ИЭМК)

# -- ours: ФЛК, forming, signing, configuration ----------------------------------------------------------------
FLK_XSD = _kind("FLK_XSD", "Ошибка форматного контроля (XSD)", M, Retry.NEVER)
FLK_SCHEMATRON = _kind("FLK_SCHEMATRON", "Ошибка логического контроля (Schematron)", M, Retry.NEVER)
FLK_BUILTIN = _kind("FLK_BUILTIN", "Ошибка встроенной проверки", M, Retry.NEVER)
FLK_NOT_XML = _kind("FLK_NOT_XML", "Документ не является корректным XML", M, Retry.NEVER)
FLK_PACK_MISSING = _kind("FLK_PACK_MISSING", "Ошибка настройки ФЛК", A, Retry.AFTER_FIX)
FLK_NSI = _kind("FLK_NSI", "Ошибка контроля НСИ", M, Retry.NEVER)
# НСИ dictionaries: a file or a ФНСИ answer that cannot be read (the administrator fixes the source), ФНСИ out of
# reach (the weekly sync tries again next run).
NSI_SOURCE = _kind("NSI_SOURCE", "Справочник НСИ не читается", A, Retry.AFTER_FIX)
NSI_UNREACHABLE = _kind("NSI_UNREACHABLE", "ФНСИ недоступна", A, Retry.NEXT_RUN)
CONTENT_CHANGED = _kind("CONTENT_CHANGED",
                        "Содержимое документа изменилось после постановки в очередь без новой версии", M, Retry.NEVER)
SEMD_NOT_FORMED = _kind("SEMD_NOT_FORMED", "СЭМД не сформирован", M, Retry.AFTER_FIX)
SIGNING_FAILED = _kind("SIGNING_FAILED", "Не удалось подписать СЭМД", A, Retry.AFTER_FIX)
SIGNING_KEY = _kind("SIGNING_KEY", "Сертификат ЭП для подписания запросов к ИЭМК не может быть использован", A,
                    Retry.AFTER_FIX)
KEY_MATERIAL = _kind("KEY_MATERIAL", "Ключ или сертификат ЭП не читается", A, Retry.AFTER_FIX)
CONFIGURATION = _kind("CONFIGURATION", "Ошибка настройки iemk-etl", A, Retry.AFTER_FIX)
SCHEMA_BEHIND = _kind("SCHEMA_BEHIND", "Схема базы данных не обновлена (iemk-etl db migrate)", A, Retry.AFTER_FIX)
NO_DATABASE = _kind("NO_DATABASE", "База данных недоступна", A, Retry.NEXT_RUN)
UNKNOWN_MO = _kind("UNKNOWN_MO", "МО не найдена", A, Retry.AFTER_FIX)
UNKNOWN_KIND = _kind("UNKNOWN_KIND", "Вид СЭМД не поддерживается", M, Retry.NEVER)
BAD_XML = _kind("BAD_XML", "XML не принят", M, Retry.NEVER)
# Over IEMK_MAX_MESSAGE_BYTES (64 MiB by default, the size ИЭМК documents): refused before it goes, or by HTTP 413.
# The same bytes will never fit; the МИС makes the document smaller (e.g. a scan at a lower resolution), a new version.
MESSAGE_TOO_LARGE = _kind("MESSAGE_TOO_LARGE", "Размер сообщения превышает допустимый", M, Retry.NEVER)
BAD_SIGNATURE = _kind("BAD_SIGNATURE", "Подпись не верна", M, Retry.NEVER)
BAD_FAULT_PROFILE = _kind("BAD_FAULT_PROFILE", "Неверный профиль сбоев эмулятора", A, Retry.AFTER_FIX)
PATIENT_REJECTED = _kind("PATIENT_REJECTED", "ИЭМК не приняла сведения о пациенте", M, Retry.NEVER)
RECONCILE = _kind("RECONCILE", "По сверке документа нет в ИЭМК: отправляется снова", N, Retry.NEXT_RUN)
REQUEUED = _kind("REQUEUED", "Передаётся повторно по запросу администратора", N, Retry.NEXT_RUN)
# An exception nobody foresaw, met on one document (a bug, an unforeseen input): that document waits, visibly, and
# goes again by itself once the software or its input is fixed; the rest of the batch goes on (pipeline.guard).
INTERNAL = _kind("INTERNAL", "Внутренняя ошибка iemk-etl (сообщите администратору)", A, Retry.AFTER_FIX)
# A СЭМД's own signature (author's, МО's) missing, broken, over other bytes or by someone else: checked before it
# leaves. Held, not ended: the МИС re-signs the same bytes (the same version) and the document goes on by itself.
SEMD_SIGNATURE = _kind("SEMD_SIGNATURE", "Подпись СЭМД не прошла проверку", M, Retry.AFTER_FIX)

# -- transport: the call did not get a verdict --------------------------------------------------------------------
TRANSPORT = _kind("TRANSPORT", "Не удалось передать документ в ИЭМК", R, Retry.NEXT_RUN)
TIMEOUT = _kind("TIMEOUT", "Таймаут обращения к ИЭМК", R, Retry.NOW)
UNREACHABLE = _kind("UNREACHABLE", "ИЭМК недоступна", R, Retry.NOW)
HTTP_TRANSIENT = _kind("HTTP_TRANSIENT", "ИЭМК временно не принимает запросы", R, Retry.NOW)
HTTP_REFUSED = _kind("HTTP_REFUSED", "ИЭМК отказала в приёме запроса", A, Retry.AFTER_FIX)
UNREADABLE_ANSWER = _kind("UNREADABLE_ANSWER", "Ответ ИЭМК не читается", R, Retry.NOW)
FOREIGN_ANSWER = _kind("FOREIGN_ANSWER", "Ответ ИЭМК относится к другому запросу", R, Retry.NOW)
NO_ANSWER = _kind("NO_ANSWER", "ИЭМК не ответила на документ", R, Retry.NEXT_RUN)
UNKNOWN_OPERATION = _kind("UNKNOWN_OPERATION", "Операция не описана в WSDL сервиса ИЭМК", A, Retry.AFTER_FIX)
# ITI-18 / ITI-43 answers checked against IHE XDS metadata and what we sent (entryUUID, SHA-1 hash, size).
REGISTRY_METADATA = _kind("REGISTRY_METADATA", "Метаданные документа в реестре ИЭМК не совпадают с переданными", R,
                          Retry.NEXT_RUN)
RETRIEVED_MISMATCH = _kind("RETRIEVED_MISMATCH", "Документ, полученный из ИЭМК, не совпадает с метаданными реестра",
                           R, Retry.NEXT_RUN)

# -- ИЭМК's synchronous SOAP faults (subcodes); a Receiver fault without a known subcode is the service's trouble --
SERVICE_ERROR = _kind("ServiceError", "Внутренняя ошибка ИЭМК", R, Retry.NEXT_RUN)
SYNC_REJECTED = _kind("SYNC_REJECTED", "ИЭМК отклонила запрос", M, Retry.NEVER)
_kinds("wsa:ActionNotSupported wsa:MessageAddressingHeaderRequired wsa:InvalidAddressingHeader FormatError",
       "ИЭМК не приняла запрос: ошибка формирования запроса", A, Retry.AFTER_FIX)
_kinds("egis:AuthorizationRequired egis:UnknownClient egis:UnknownOrganization",
       "ИЭМК не узнала отправителя: проверьте clientEntityId и OID МО", A, Retry.AFTER_FIX)
_kinds("wsse:NO_SIGNATURE wsse:WRONG_SIGNATURE_FORMAT wsse:SIGNATURE_VERIFICATION_ERROR wsse:UNKNOWN_ALGORITHM "
       "wsse:NO_END_ENTITY_CERTIFICATE wsse:SIGNATURE_DECODING_ERROR wsse:DIGEST_MISMATCH wsse:UNSIGNED_PART "
       "wsse:CERTIFICATE_EXPIRED wsse:CERTIFICATE_NOT_YET_VALID wsse:UNTRUSTED_CERTIFICATE wsse:FailedAuthentication",
       "ИЭМК не приняла подпись запроса: проверьте сертификат и ключ", A, Retry.AFTER_FIX)
MESSAGE_EXPIRED = _kind("wsse:MESSAGE_EXPIRED", "ИЭМК не приняла запрос: время запроса вне срока (проверьте часы)", A,
                        Retry.AFTER_FIX)

# -- XDS.b (IHE ITI TF-3 Table 4.2.4.1-2) and the codes ИЭМК adds to RegistryResponse -------------------------------
REGISTRY_BUSY = _kind("XDSRegistryBusy", "ИЭМК занята", R, Retry.NEXT_RUN)
_kinds("XDSRepositoryBusy XDSRegistryOutOfResources XDSRepositoryOutOfResources XDSRegistryNotAvailable",
       "ИЭМК занята", R, Retry.NEXT_RUN)
_kinds("XDSRepositoryError XDSRegistryError XDS.CDA.ProcessingError", "Внутренняя ошибка ИЭМК", R, Retry.NEXT_RUN)
DUPLICATE = _kind("XDSDuplicateUniqueIdInRegistry", "Документ уже зарегистрирован в ИЭМК", N, Retry.NEVER)
_kinds("XDSRegistryDuplicateUniqueIdInMessage XDSRepositoryDuplicateUniqueIdInMessage",
       "Повтор идентификатора в запросе", A, Retry.AFTER_FIX)
_kinds("XDSPatientRegistrationError XDSUnknownPatientId XDSPatientIdDoesNotMatch",
       "ИЭМК не определила пациента", M, Retry.NEVER)
_kinds("XDS.CDA.ValidationError XDSDictionaryValidationError XDSRegistryMetadataError XDSRepositoryMetadataError "
       "XDSMissingDocument XDSMissingDocumentMetadata XDSNonIdenticalHash XDSNonIdenticalSize XDSDocumentUniqueIdError "
       "XDSReplacedDocumentOrganizationError XDSUnknownRepositoryId XDSExtraMetadataNotSaved",
       "ИЭМК отклонила документ", M, Retry.NEVER)
IEMK_UNKNOWN = _kind("IEMK_UNKNOWN", "ИЭМК отклонила документ (код ошибки не известен iemk-etl)", M, Retry.NEVER)

# -- НСИ 1.2.643.5.1.13.13.99.2.305 «РЭМД. Классификатор кодов сообщений» (v3.18), every mnemonic -----------------
# The registry's own trouble or load: the same document goes again later.
_kinds("ASYNC_RESPONSE_TIMEOUT CA_INACCESSIBILITY INTERNAL_ERROR MIS_NOT_AVAILABLE RATE_LIMIT RUNTIME_ERROR "
       "VALSYS_INTERNAL_ERROR VALSYS_REJECT XML_VALIDATOR_ERROR SCHEMA_PROCESSING_ERROR GET_DOCUMENT_FILE_ERROR "
       "FILE_WAS_NOT_SENT RMIS_ERROR MIS_ERROR FRLLO_TRANSPORT_ERROR", "ИЭМК временно не может обработать документ",
       R, Retry.NEXT_RUN)
# Our installation: registration of the system, certificates, keys, addressing.
_kinds("NO_RMIS DISABLED_RMIS ACCESS_DENIED WRONG_MESSAGE_ID RMIS_REGION_MISMATCH "
       "SERIES_REQUIRED_WRONG_SERVICE_VERSION NO_END_ENTITY_CERTIFICATE "
       "CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT INVALID_CERT_KEY_USAGE UNKNOWN_ALGORITHM SIGNATURE_DECODING_ERROR "
       "WRONG_SIGNATURE_FORMAT SIGNATURE_VERIFICATION_ERROR INCONSISTENT_DIGESTS DIGEST_MISMATCH "
       "PERSONAL_SIG_CERT_NOT_ACTUAL_ON_CHECK_DT NO_SIGNATURE SIGNATURE_DUPLICATION MULTIPLE_SIGNERS "
       "INVALID_PLUGGABLE_ATTRS FRLLO_UNKNOWN_SYSTEM",
       "ИЭМК не приняла подпись или отправителя: проверьте регистрацию системы и сертификаты", A, Retry.AFTER_FIX)
# Nothing to do: the document is there already.
_kinds("PATIENT_ALREADY_REGISTERED ORDER_ALREADY_PROCESSED", "Уже зарегистрировано в ИЭМК", N, Retry.NEVER)
# A warning only.
_kinds("IPS_VALIDATION_WARNING", "Предупреждение ИЭМК", N, Retry.NEVER)
# Everything else in НСИ 305 is about the document, its signers or its patient: the МИС's data.
_kinds("ADDITIONAL_INFO_REQUIRED AOGUID_DIFFERENT AOGUID_NOT_FOUND ATTRIBUTE_MISMATCH CANT_REG_VERSION "
       "CAN_NOT_ASSOCIATE "
       "DOC_DATE_MISMATCH_CERT_NOT_AFTER DOC_DATE_MISMATCH_CERT_NOT_BEFORE DUPLICATE_PATIENT_FOUND "
       "FRLLO_BENEFIT_SOURCE_ERROR FRLLO_CITIZEN_BENEFIT_ERROR FRLLO_CITIZEN_IDENTIFY_ERROR FRLLO_CITIZEN_REGION_ERROR "
       "FRLLO_CITIZEN_SEARCH_ERROR FRLLO_COMISSION_INFO_ERROR FRLLO_DIC_ERROR FRLLO_EXPIRE_DATE_ERROR "
       "FRLLO_NOT_CORRECT_TYPE FRLLO_ORGANIZATION_ERROR FRLLO_RECIPE_DATE_ERROR FRLLO_RECIPE_IDENTIFY_ERROR "
       "FRLLO_RECIPE_POSITION_ERROR FRLLO_RELEASE_ORGANIZATION_ERROR FRLLO_RELISE_DATE_ERROR "
       "FRLLO_RELISE_POSITION_ERROR FRLLO_RELISE_QTY_ERROR FRLLO_REQUIRED_CITIZEN_ERROR FRLLO_REQUIRED_IDENTIFY_ERROR "
       "FRLLO_SEMD_FLK_ERROR FRLLO_VALIDATION_ERROR HOUSEGUID_NOT_FOUND INVALID_CONTENT INVALID_DICTIONARY "
       "INVALID_DICTIONARY_MAPPING INVALID_DICTIONARY_OID INVALID_DICTIONARY_VERSION INVALID_DOCTOR_FAMILY "
       "INVALID_DOCTOR_ID INVALID_DOCTOR_INFO INVALID_DOCTOR_NAME INVALID_DOCTOR_PATRONYMIC INVALID_DOCTOR_SNILS "
       "INVALID_DOC_CONTENT_TYPE INVALID_ELEMENT_VALUE_CODE INVALID_ELEMENT_VALUE_NAME LEGAL_AUTHENTICATOR_NOT_FOUND "
       "NOT_UNIQUE_ASSOCIATION NOT_UNIQUE_ITEM NOT_UNIQUE_PROVIDED_ID NO_DEPARTMENT NO_DOCUMENT_KIND_ON_DATE "
       "NO_ORG_ON_DATE NO_ROLE_POLICY_ON_DATE NO_SNILS NO_SPECIALITY OBJECT_NOT_FOUND ORDER_NOT_FOUND "
       "ORG_NOT_FOUND_IN_FRMO ORG_SIGNATURE_OCCURRENCE_MISMATCH PATIENT_CREATION_ERROR PATIENT_MPI_MISMATCH "
       "PATIENT_NAME_NOT_FOUND PATIENT_NOT_FOUND PATIENT_OCCURRENCE_MISMATCH PATIENT_SURNAME_NOT_FOUND "
       "PERSONAL_SIG_CERT_NOT_ACTUAL_ON_DOC_CREATION_DT PERSON_CARD_NOT_FOUND PERSON_NOT_FOUND "
       "PERSON_POST_IN_FRMR_MISMATCH POSITION_TO_ROLE_MISMATCH "
       "RECEPIENT_FAMILY_MISMATCH RECEPIENT_INFO_MISMATCH RECEPIENT_NAME_MISMATCH RECEPIENT_PATRONYMIC_MISMATCH "
       "RECEPIENT_SNILS_MISMATCH RECIPIENT_FAMILY_MISMATCH RECIPIENT_INFO_MISMATCH RECIPIENT_NAME_MISMATCH "
       "RECIPIENT_PATRONYMIC_MISMATCH RECIPIENT_SNILS_MISMATCH PLUGGABLE_ATTRS_OCCURRENCE_MISMATCH "
       "REGISTRY_ITEM_NOT_FOUND SERIES_REQUIRED TIME_EXPIRED_ERROR "
       "REGION_CODE_DIFFERENT RESTRICT_NEW_VERSION ROLE_OCCURRENCE_MISMATCH SIGNER_ORG_MISMATCH "
       "VALUE_MISMATCH_METADATA_AND_CERTIFICATE VALUE_MISMATCH_METADATA_AND_FRMR VALIDATION_ERROR "
       "WRONG_CREATION_DATE XML_VALIDATION_ERROR",
       "ИЭМК отклонила документ", M, Retry.NEVER)

del M, A, R, N


def kind(code: str) -> ErrorKind:
    """The kind of a code; a code nobody catalogued is ``IEMK_UNKNOWN`` (the registry's words still reach the user)."""
    return _CATALOGUE.get(code, IEMK_UNKNOWN)


def known(code: str) -> bool:
    return code in _CATALOGUE


def catalogue() -> dict[str, ErrorKind]:
    return dict(_CATALOGUE)


def of_fault(code: str, subcode: str | None) -> ErrorKind:
    """A synchronous SOAP fault: its subcode's kind; else a Receiver fault is the service's trouble, a Sender fault
    a refusal of what we sent."""
    if subcode and subcode in _CATALOGUE:
        return _CATALOGUE[subcode]
    if subcode and subcode.split(":")[-1] in _CATALOGUE:
        return _CATALOGUE[subcode.split(":")[-1]]
    return SERVICE_ERROR if code == "Receiver" else SYNC_REJECTED


def of_registry_errors(codes: list[str]) -> ErrorKind:
    """One verdict from the error codes of an XDS RegistryResponse: the most hopeful kind decides only when all agree
    (a busy registry that also refused the document has refused it)."""
    kinds = [kind(c) for c in codes] or [IEMK_UNKNOWN]
    for candidate in kinds:
        if candidate.final and candidate is not DUPLICATE:
            return candidate
    for candidate in kinds:
        if candidate.holds:
            return candidate
    return kinds[0]


# -- exceptions ------------------------------------------------------------------------------------------------

class IemkError(Exception):
    """The root of every error iemk-etl raises on purpose. ``kind`` says who must act and when to try again;
    ``message`` is the particular reason (Russian where a user reads it)."""

    default_kind: ErrorKind = CONFIGURATION

    def __init__(self, message: str = "", *, kind: ErrorKind | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind or self.default_kind

    @property
    def code(self) -> str:
        return self.kind.code

    def status_text(self) -> str:
        return self.kind.status_text(self.message)


class CodedError(IemkError):
    """An error that carries a code of its own domain (НСИ 305 / WS-Security mnemonics) beside its message."""

    def __init__(self, code: str, message: str, *, kind: ErrorKind | None = None) -> None:
        super().__init__(message, kind=kind or self.default_kind)
        self.args = (f"{code}: {message}",)
        self.code_detail = code

    @property
    def code(self) -> str:  # the domain code: what a fault subcode or a signature verdict names
        return self.code_detail

    def __str__(self) -> str:
        return f"{self.code_detail}: {self.message}"


class ConfigurationError(IemkError):
    """Our installation is wrong: a setting, a key, a path. The administrator fixes it; nothing is ended."""

    default_kind = CONFIGURATION


class DataError(IemkError):
    """The МИС's data cannot make what is asked: its users fix the record."""

    default_kind = BAD_XML


class TransientError(IemkError):
    """Not now: the same thing may succeed later."""

    default_kind = TRANSPORT
