"""What ИЭМК holds, asked directly: patient search (PDQ), document list (ITI-18) and one document (ITI-43).

The same signed SOAP client as the export (``transport.client.client_for_mo``); the МО's request certificate
signs every call.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg
from lxml import etree

from iemk_etl import errors
from iemk_etl.errors import IemkError
from iemk_etl.protocol import soap, xml
from iemk_etl.protocol.hl7v3 import pdq
from iemk_etl.protocol.hl7v3.common import PatientRecord
from iemk_etl.protocol.xds import query as xds_query
from iemk_etl.protocol.xds import retrieve
from iemk_etl.protocol.xds.common import sha1_hex
from iemk_etl.settings import Settings
from iemk_etl.signing import cms
from iemk_etl.signing.backend import get_backend
from iemk_etl.store.mis import exchange
from iemk_etl.transport import client

log = logging.getLogger(__name__)


# Seconds to wait before the 2nd, 3rd and 4th try of a query that met a transient fault (a busy or failing
# service, a reset, an unreadable answer). A query changes nothing in ИЭМК, so repeating it is always safe.
QUERY_RETRY_DELAYS: tuple[float, ...] = (1.0, 4.0, 15.0)
_GET_DOCUMENTS_BATCH = 100        # uniqueIds per GetDocuments request


def call_retrying(iemk: client.IemkClient, url: str, action: str, body: etree._Element, *, service: str,
                  what: str, delays: Sequence[float] | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> soap.Message:
    """``iemk.call`` with backoff on transient faults. A fault that persists, or one that is not transient, is a
    ``CallError`` naming the query and the tries (one line for the user, no traceback)."""
    waits = QUERY_RETRY_DELAYS if delays is None else tuple(delays)
    for tried in range(1, len(waits) + 2):
        try:
            return iemk.call(url, action, body, service=service)
        except client.CallError as exc:
            if not exc.kind.transient or tried > len(waits):
                tries = f" (попыток: {tried})" if tried > 1 else ""
                raise client.CallError(dataclasses.replace(
                    exc.result, error=f"{what}: {exc.result.error}{tries}")) from None
            log.warning("%s: %s; try %d of %d in %.1f s", what, exc.result.error, tried + 1, len(waits) + 1,
                        waits[tried - 1])
            sleep(waits[tried - 1])
    raise AssertionError("unreachable")


def search_patients(iemk: client.IemkClient, settings: Settings,
                    query: pdq.PatientQuery) -> list[PatientRecord]:
    body = pdq.build_request(query, system_id=settings.require_client_entity_id(),
                             processing_code=settings.processing_code)
    answer = call_retrying(iemk, settings.pdq_url or "", settings.pdq_action, body, service="pdq",
                           what="поиск пациентов в ИЭМК (PDQ)")
    return pdq.read_response(answer.body) if answer.body is not None else []


def list_documents(iemk: client.IemkClient, settings: Settings,
                   query: xds_query.DocumentQuery) -> list[xds_query.DocumentEntry]:
    """ITI-18, retried on transient faults; a refusal of the registry is an IemkError with its words."""
    body = xds_query.build_request(query, settings.xds_metadata_layout)
    answer = call_retrying(iemk, settings.registry_url or "", xds_query.ACTION, body,
                           service="registry", what="запрос списка документов ИЭМК (ITI-18)")
    if answer.body is None:
        raise IemkError("запрос списка документов ИЭМК (ITI-18): пустой ответ реестра", kind=errors.UNREADABLE_ANSWER)
    try:
        return xds_query.read_response(answer.body)
    except xds_query.RegistryMetadataError as exc:
        raise IemkError(f"запрос списка документов ИЭМК (ITI-18): {exc}", kind=errors.REGISTRY_METADATA) from None
    except ValueError as exc:
        raise IemkError(f"запрос списка документов ИЭМК (ITI-18): реестр не выполнил запрос: {exc}",
                        kind=errors.SERVICE_ERROR) from None


def find_by_unique_ids(iemk: client.IemkClient, settings: Settings,
                       unique_ids: Sequence[str]) -> dict[str, xds_query.DocumentEntry]:
    """What ИЭМК holds of these documents (GetDocuments, every status), by uniqueId; absent ones are missing."""
    found: dict[str, xds_query.DocumentEntry] = {}
    for first in range(0, len(unique_ids), _GET_DOCUMENTS_BATCH):
        batch = tuple(unique_ids[first:first + _GET_DOCUMENTS_BATCH])
        for entry in list_documents(iemk, settings, xds_query.DocumentQuery(unique_ids=batch, statuses=())):
            found[entry.unique_id] = entry
    return found


def check_entry(entry: xds_query.DocumentEntry, sent: bytes) -> None:
    """The registry's hash (SHA-1) and size of a document must be those of the bytes we sent: REGISTRY_METADATA."""
    if (entry.content_hash, entry.size) != (sha1_hex(sent), len(sent)):
        raise IemkError(f"документ [{entry.unique_id}]: в реестре hash {entry.content_hash}, size {entry.size}; "
                        f"передан hash {sha1_hex(sent)}, size {len(sent)}", kind=errors.REGISTRY_METADATA)


def check_retrieved(entry: xds_query.DocumentEntry, data: bytes) -> None:
    """ITI-43 bytes must have the hash (SHA-1) and size ITI-18 gave for the entry: RETRIEVED_MISMATCH."""
    if (entry.content_hash, entry.size) != (sha1_hex(data), len(data)):
        raise IemkError(f"документ [{entry.unique_id}]: получено {len(data)} байт с hash {sha1_hex(data)}, реестр "
                        f"указывает hash {entry.content_hash}, size {entry.size}", kind=errors.RETRIEVED_MISMATCH)



@dataclass(frozen=True)
class ShownDocument:
    unique_id: str
    data: bytes
    same_as_sent: bool | None        # None: we have no record of sending it
    signature: str | None            # who signed it per the МИС's stored signature, if it verifies


def show_document(iemk: client.IemkClient, settings: Settings, conn: psycopg.Connection,
                  unique_id: str) -> ShownDocument:
    entry = find_by_unique_ids(iemk, settings, [unique_id]).get(unique_id)     # ITI-18: hash, size, repository
    request = retrieve.build_request([unique_id], (entry and entry.repository_unique_id) or
                                     settings.repository_unique_id)
    answer = call_retrying(iemk, settings.repository_url or "", retrieve.ACTION, request, service="repository",
                           what="получение документа из ИЭМК (ITI-43)")
    documents, problems = retrieve.read_response(answer.body) if answer.body is not None else ({}, ["пусто"])
    if unique_id not in documents:
        raise LookupError("; ".join(problems) or f"ИЭМК не вернула документ [{unique_id}]")
    data = documents[unique_id]
    if entry is not None:
        check_retrieved(entry, data)
    sent = exchange.ledger_sent_copy(conn, unique_id)
    same = None if sent is None else hashlib.sha256(data).hexdigest() == sent.content_hash
    signer = None
    if sent is not None and sent.signature is not None:
        try:
            signer = cms.verify_detached(data, sent.signature, get_backend()).subject
        except cms.CmsError as exc:
            signer = f"подпись НЕ верна: {exc.message}"
    xml.parse(data)      # what came back must at least be the XML it was
    return ShownDocument(unique_id, data, same, signer)
