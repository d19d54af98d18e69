"""ITI-18 Registry Stored Query: FindDocuments and GetDocuments, answered with DocumentEntry metadata."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from lxml import etree

from iemk_etl import errors, kinds
from iemk_etl.errors import IemkError
from iemk_etl.protocol.xds.common import (
    EI_PATIENT_ID,
    EI_UNIQUE_ID,
    EVIDENCE,
    FAILURE,
    FORMAT_CODES,
    NS,
    RIM,
    RS,
    SCHEME_CLASS_CODE,
    SCHEME_FORMAT_CODE,
    STABLE_DOCUMENT,
    SUCCESS,
    RegistryError,
    classification,
    coded,
    error_list,
    error_texts,
    external_id,
    is_sha1_hex,
    is_urn_uuid,
    object_id,
    parse_ts,
    slot,
    split_coded,
    ts,
)
from iemk_etl.protocol.xml import sub

QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
ACTION = "urn:ihe:iti:2007:RegistryStoredQuery"
RESPONSE_ACTION = "urn:ihe:iti:2007:RegistryStoredQueryResponse"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
# Our decision: FindDocuments by МО without a patient (not in IHE's parameter list) uses this slot.
SLOT_MO = "$XDSDocumentEntryAuthorInstitution"
SLOT_CLASS_CODE = "$XDSDocumentEntryClassCode"      # the kind, evidence layout: its НСИ 1522 type
SLOT_FORMAT_CODE = "$XDSDocumentEntryFormatCode"    # the kind, legacy layout: its НСИ 1520 code
_DOC_TYPE_SCHEMES = (kinds.NSI_1522, kinds.NSI_646_OLD)


class RegistryMetadataError(IemkError, ValueError):
    """An ITI-18 answer whose entry lacks, or garbles, metadata IHE requires of a registry (entryUUID, hash, size,
    repositoryUniqueId)."""

    default_kind = errors.REGISTRY_METADATA


@dataclass(frozen=True)
class DocumentQuery:
    patient_id: str | None = None            # CX, as common.patient_cx()
    mo_oid: str | None = None
    kind_code: int | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    statuses: tuple[str, ...] = (APPROVED,)
    unique_ids: tuple[str, ...] = ()         # GetDocuments
    doc_type: int | None = None              # НСИ 1522 type, by $XDSDocumentEntryClassCode


@dataclass(frozen=True)
class DocumentEntry:
    unique_id: str
    patient_id: str
    kind_code: int
    creation_time: dt.datetime | None
    status: str
    content_hash: str                       # XDS hash: SHA-1 of the document, hex
    size: int                               # bytes
    entry_uuid: str = ""                    # urn:uuid:…
    repository_unique_id: str = ""
    class_code: str = ""                    # code^^scheme
    format_code: str = ""                   # code^^scheme


def _quoted(values: list[str]) -> str:
    return "(" + ",".join(f"'{v}'" for v in values) + ")"


def build_request(q: DocumentQuery, layout: str = EVIDENCE) -> etree._Element:
    """FindDocuments or GetDocuments; a kind is asked by its classCode (evidence layout) or formatCode (legacy)."""
    request = etree.Element(f"{{{QUERY}}}AdhocQueryRequest", nsmap={"query": QUERY, "rim": RIM})
    sub(request, (QUERY, "ResponseOption"), returnType="LeafClass", returnComposedObjects="true")
    query = sub(request, (RIM, "AdhocQuery"), id=GET_DOCUMENTS if q.unique_ids else FIND_DOCUMENTS)
    if q.unique_ids:
        slot(query, "$XDSDocumentEntryUniqueId", _quoted(list(q.unique_ids)))
        return request
    if q.patient_id:
        slot(query, "$XDSDocumentEntryPatientId", f"'{q.patient_id}'")
    if q.mo_oid:
        slot(query, SLOT_MO, f"'{q.mo_oid}'")
    doc_type = q.doc_type
    if q.kind_code is not None and layout != EVIDENCE:
        slot(query, SLOT_FORMAT_CODE, _quoted([coded(str(q.kind_code), kinds.NSI_1520)]))
    elif q.kind_code is not None:
        doc_type = kinds.get(q.kind_code).doc_type
    if doc_type is not None:
        slot(query, SLOT_CLASS_CODE, _quoted([coded(str(doc_type), kinds.NSI_1522)]))
    if q.created_from:
        slot(query, "$XDSDocumentEntryCreationTimeFrom", ts(q.created_from))
    if q.created_to:
        slot(query, "$XDSDocumentEntryCreationTimeTo", ts(q.created_to))
    slot(query, "$XDSDocumentEntryStatus", _quoted(list(q.statuses)))
    return request


def _slot_values(query: etree._Element, name: str) -> list[str]:
    raw = query.xpath("rim:Slot[@name=$n]/rim:ValueList/rim:Value/text()", namespaces=NS, n=name)
    values: list[str] = []
    for item in raw:
        values += [v.strip().strip("'") for v in item.strip().strip("()").split(",") if v.strip()]
    return values


def read_request(request: etree._Element) -> DocumentQuery:
    query = request.find(f"{{{RIM}}}AdhocQuery")
    if query is None or query.get("id") not in (FIND_DOCUMENTS, GET_DOCUMENTS):
        raise ValueError("поддерживаются только хранимые запросы FindDocuments и GetDocuments")
    if query.get("id") == GET_DOCUMENTS:
        ids = tuple(_slot_values(query, "$XDSDocumentEntryUniqueId"))
        if not ids:
            raise ValueError("GetDocuments: не указан $XDSDocumentEntryUniqueId")
        return DocumentQuery(unique_ids=ids, statuses=())
    patient, mo = _slot_values(query, "$XDSDocumentEntryPatientId"), _slot_values(query, SLOT_MO)
    if not patient and not mo:
        raise ValueError(f"FindDocuments: нужен $XDSDocumentEntryPatientId или {SLOT_MO}")
    kind, doc_type = _kind_filters(query)
    start, end = (_slot_values(query, f"$XDSDocumentEntryCreationTime{w}") for w in ("From", "To"))
    return DocumentQuery(patient_id=patient[0] if patient else None, mo_oid=mo[0] if mo else None,
                         kind_code=kind, doc_type=doc_type,
                         created_from=parse_ts(start[0]) if start else None,
                         created_to=parse_ts(end[0]) if end else None,
                         statuses=tuple(_slot_values(query, "$XDSDocumentEntryStatus")) or (APPROVED,))


def _kind_filters(query: etree._Element) -> tuple[int | None, int | None]:
    """(НСИ 1520 kind, НСИ 1522 type) the query asks for, from classCode and formatCode in either layout.

    A formatCode of the CDA MIME format (1.2.643.5.1.13.2.7.1.40) filters nothing: every СЭМД is CDA."""
    kind = doc_type = None
    for value in _slot_values(query, SLOT_CLASS_CODE) + _slot_values(query, SLOT_FORMAT_CODE):
        code, scheme = split_coded(value)
        if scheme == FORMAT_CODES or not code.isdigit():
            continue
        if scheme in _DOC_TYPE_SCHEMES:
            doc_type = int(code)
        else:                  # НСИ 1520, or a bare number as our legacy formatCode was read
            kind = int(code)
    return kind, doc_type


def build_response(entries: list[DocumentEntry], error: RegistryError | None = None) -> etree._Element:
    response = etree.Element(f"{{{QUERY}}}AdhocQueryResponse", nsmap={"query": QUERY, "rim": RIM, "rs": RS},
                             status=FAILURE if error else SUCCESS)
    if error:
        error_list(response, [error], with_location=False)
        return response
    objects = sub(response, (RIM, "RegistryObjectList"))
    for n, e in enumerate(entries, start=1):
        entry = e.entry_uuid or f"Document{n:02d}"
        eo = sub(objects, (RIM, "ExtrinsicObject"), id=entry, lid=entry, mimeType="text/xml",
                 objectType=STABLE_DOCUMENT, status=e.status)
        if e.creation_time:
            slot(eo, "creationTime", ts(e.creation_time))
        slot(eo, "hash", e.content_hash)
        slot(eo, "size", str(e.size))
        if e.repository_unique_id:
            slot(eo, "repositoryUniqueId", e.repository_unique_id)
        for scheme, value, name in ((SCHEME_CLASS_CODE, e.class_code, "classCode"),
                                    (SCHEME_FORMAT_CODE, e.format_code or coded(str(e.kind_code), kinds.NSI_1520),
                                     "formatCode")):
            if value:
                code, coding = split_coded(value)
                classification(eo, object_id(entry, e.content_hash, name), scheme, entry, code, coding)
        external_id(eo, object_id(entry, e.content_hash, "patientId"), EI_PATIENT_ID, entry, e.patient_id,
                    "XDSDocumentEntry.patientId")
        external_id(eo, object_id(entry, e.content_hash, "uniqueId"), EI_UNIQUE_ID, entry, e.unique_id,
                    "XDSDocumentEntry.uniqueId")
    return response


def read_response(response: etree._Element) -> list[DocumentEntry]:
    """The entries of a successful answer; RegistryMetadataError when one lacks what IHE requires of a registry."""
    if response.get("status") != SUCCESS:
        raise ValueError("; ".join(error_texts(response)) or "запрос к реестру не выполнен")
    return [_entry(eo) for eo in response.iter(f"{{{RIM}}}ExtrinsicObject")]


def _entry(eo: etree._Element) -> DocumentEntry:
    def slot_value(name: str) -> str | None:
        found = eo.xpath("rim:Slot[@name=$n]/rim:ValueList/rim:Value/text()", namespaces=NS, n=name)
        return found[0].strip() if found else None

    def ext(scheme: str) -> str:
        return eo.xpath("string(rim:ExternalIdentifier[@identificationScheme=$s]/@value)", namespaces=NS, s=scheme)

    def code(scheme: str) -> str:
        cl = "rim:Classification[@classificationScheme=$s]"
        value = eo.xpath(f"string({cl}/@nodeRepresentation)", namespaces=NS, s=scheme)
        coding = eo.xpath(f"string({cl}/rim:Slot[@name='codingScheme']/rim:ValueList/rim:Value)", namespaces=NS,
                          s=scheme)
        return coded(value, coding.strip()) if value else ""

    unique, entry = ext(EI_UNIQUE_ID), eo.get("id", "")
    digest, size, repository = slot_value("hash"), slot_value("size"), slot_value("repositoryUniqueId")
    problems = [what for what, bad in (
        (f"entryUUID [{entry}] не urn:uuid", not is_urn_uuid(entry)),
        (f"hash [{digest}] не SHA-1 в шестнадцатеричной записи", not is_sha1_hex(digest)),
        (f"size [{size}] не число байтов", not (size or "").isdigit()),
        ("нет repositoryUniqueId", not repository)) if bad]
    if problems:
        raise RegistryMetadataError(f"метаданные документа [{unique}] в ответе реестра: {'; '.join(problems)}")
    created = slot_value("creationTime")
    class_code, format_code = code(SCHEME_CLASS_CODE), code(SCHEME_FORMAT_CODE)
    return DocumentEntry(unique, ext(EI_PATIENT_ID), _kind_of(class_code, format_code),
                         parse_ts(created) if created else None, eo.get("status", ""), (digest or "").lower(),
                         int(size or 0), entry, repository or "", class_code, format_code)


def _kind_of(class_code: str, format_code: str) -> int:
    """Our НСИ 1520 kind of an entry: its legacy formatCode, else its classCode's type (0: not one of ours)."""
    for value in (format_code, class_code):
        code, scheme = split_coded(value)
        if code.isdigit() and scheme == kinds.NSI_1520:
            return int(code)
    code, scheme = split_coded(class_code)
    kind = kinds.by_doc_type(int(code)) if code.isdigit() and scheme in _DOC_TYPE_SCHEMES else None
    return kind.code if kind else 0
