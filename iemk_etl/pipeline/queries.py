"""What ИЭМК holds, asked directly: patient search (PDQ), document list (ITI-18) and one document (ITI-43).

The same signed SOAP client as the export (``transport.client.client_for_mo``); the МО's request certificate
signs every call.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import psycopg

from iemk_etl.protocol import xml
from iemk_etl.protocol.hl7v3 import pdq
from iemk_etl.protocol.hl7v3.common import PatientRecord
from iemk_etl.protocol.xds import query as xds_query
from iemk_etl.protocol.xds import retrieve
from iemk_etl.settings import Settings
from iemk_etl.signing import cms
from iemk_etl.signing.backend import get_backend
from iemk_etl.store.mis import exchange
from iemk_etl.transport import client


def search_patients(iemk: client.IemkClient, settings: Settings,
                    query: pdq.PatientQuery) -> list[PatientRecord]:
    body = pdq.build_request(query, system_id=settings.require_client_entity_id(),
                             processing_code=settings.processing_code)
    answer = iemk.call(settings.pdq_url or "", pdq.ACTION, body, service="pdq")
    return pdq.read_response(answer.body) if answer.body is not None else []


def list_documents(iemk: client.IemkClient, settings: Settings,
                   query: xds_query.DocumentQuery) -> list[xds_query.DocumentEntry]:
    answer = iemk.call(settings.registry_url or "", xds_query.ACTION, xds_query.build_request(query),
                       service="registry")
    if answer.body is None:
        raise ValueError("пустой ответ реестра ИЭМК")
    return xds_query.read_response(answer.body)


@dataclass(frozen=True)
class ShownDocument:
    unique_id: str
    data: bytes
    same_as_sent: bool | None        # None: we have no record of sending it
    signature: str | None            # who signed it per the МИС's stored signature, if it verifies


def show_document(iemk: client.IemkClient, settings: Settings, conn: psycopg.Connection,
                  unique_id: str) -> ShownDocument:
    request = retrieve.build_request([unique_id], settings.repository_unique_id)
    answer = iemk.call(settings.repository_url or "", retrieve.ACTION, request, service="repository")
    documents, errors = retrieve.read_response(answer.body) if answer.body is not None else ({}, ["пусто"])
    if unique_id not in documents:
        raise LookupError("; ".join(errors) or f"ИЭМК не вернула документ [{unique_id}]")
    data = documents[unique_id]
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
