"""ITI-18 Registry Stored Query: FindDocuments and GetDocuments, answered with DocumentEntry metadata."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from lxml import etree

from iemk_etl import kinds
from iemk_etl.protocol.xds.common import (
    EI_PATIENT_ID,
    EI_UNIQUE_ID,
    FAILURE,
    NS,
    RIM,
    RS,
    SCHEME_FORMAT_CODE,
    STABLE_DOCUMENT,
    SUCCESS,
    RegistryError,
    classification,
    error_list,
    error_texts,
    external_id,
    parse_ts,
    slot,
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


@dataclass(frozen=True)
class DocumentQuery:
    patient_id: str | None = None            # CX, as common.patient_cx()
    mo_oid: str | None = None
    kind_code: int | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    statuses: tuple[str, ...] = (APPROVED,)
    unique_ids: tuple[str, ...] = ()         # GetDocuments


@dataclass(frozen=True)
class DocumentEntry:
    unique_id: str
    patient_id: str
    kind_code: int
    creation_time: dt.datetime | None
    status: str
    content_hash: str
    size: int


def _quoted(values: list[str]) -> str:
    return "(" + ",".join(f"'{v}'" for v in values) + ")"


def build_request(q: DocumentQuery) -> etree._Element:
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
    if q.kind_code is not None:
        slot(query, "$XDSDocumentEntryFormatCode", f"('{q.kind_code}^^{kinds.NSI_1520}')")
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
    kind = _slot_values(query, "$XDSDocumentEntryFormatCode")
    start, end = (_slot_values(query, f"$XDSDocumentEntryCreationTime{w}") for w in ("From", "To"))
    return DocumentQuery(patient_id=patient[0] if patient else None, mo_oid=mo[0] if mo else None,
                         kind_code=int(kind[0].split("^")[0]) if kind else None,
                         created_from=parse_ts(start[0]) if start else None,
                         created_to=parse_ts(end[0]) if end else None,
                         statuses=tuple(_slot_values(query, "$XDSDocumentEntryStatus")) or (APPROVED,))


def build_response(entries: list[DocumentEntry], error: RegistryError | None = None) -> etree._Element:
    response = etree.Element(f"{{{QUERY}}}AdhocQueryResponse", nsmap={"query": QUERY, "rim": RIM, "rs": RS},
                             status=FAILURE if error else SUCCESS)
    if error:
        error_list(response, [error], with_location=False)
        return response
    objects = sub(response, (RIM, "RegistryObjectList"))
    for n, e in enumerate(entries, start=1):
        eo = sub(objects, (RIM, "ExtrinsicObject"), id=f"Document{n:02d}", mimeType="text/xml",
                 objectType=STABLE_DOCUMENT, status=e.status)
        if e.creation_time:
            slot(eo, "creationTime", ts(e.creation_time))
        slot(eo, "hash", e.content_hash)
        slot(eo, "size", str(e.size))
        classification(eo, f"cl{n:02d}", SCHEME_FORMAT_CODE, eo.get("id"), str(e.kind_code), kinds.NSI_1520)
        external_id(eo, f"pi{n:02d}", EI_PATIENT_ID, eo.get("id"), e.patient_id, "XDSDocumentEntry.patientId")
        external_id(eo, f"ui{n:02d}", EI_UNIQUE_ID, eo.get("id"), e.unique_id, "XDSDocumentEntry.uniqueId")
    return response


def read_response(response: etree._Element) -> list[DocumentEntry]:
    if response.get("status") != SUCCESS:
        raise ValueError("; ".join(error_texts(response)) or "запрос к реестру не выполнен")
    return [_entry(eo) for eo in response.iter(f"{{{RIM}}}ExtrinsicObject")]


def _entry(eo: etree._Element) -> DocumentEntry:
    def slot_value(name: str) -> str | None:
        found = eo.xpath("rim:Slot[@name=$n]/rim:ValueList/rim:Value/text()", namespaces=NS, n=name)
        return found[0] if found else None

    def ext(scheme: str) -> str:
        return eo.xpath("string(rim:ExternalIdentifier[@identificationScheme=$s]/@value)", namespaces=NS, s=scheme)

    created = slot_value("creationTime")
    kind = eo.xpath("string(rim:Classification[@classificationScheme=$s]/@nodeRepresentation)", namespaces=NS,
                    s=SCHEME_FORMAT_CODE)
    return DocumentEntry(ext(EI_UNIQUE_ID), ext(EI_PATIENT_ID), int(kind) if kind else 0,
                         parse_ts(created) if created else None, eo.get("status", ""),
                         slot_value("hash") or "", int(slot_value("size") or 0))
