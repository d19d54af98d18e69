"""Chunks of a run's ledger ids: the units the export DAG maps validate, the patient feed and send over.

A chunk holds at most ``max_documents`` documents and at most ``max_bytes`` of СЭМД, so a worker's memory does not
grow with the batch nor with document sizes; only a single document larger than ``max_bytes`` makes a chunk of its
own that exceeds it. A patient's documents stay in one chunk where the bounds allow, so two chunks of one run do
not feed the same patient to ИЭМК at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import psycopg

from iemk_etl.store.mis import exchange

Sized = tuple[int, int, int]        # (ledger id, patient id, bytes)


def plan(conn: psycopg.Connection, ids: list[int], *, max_documents: int, max_bytes: int) -> list[list[int]]:
    """The run's ``ids`` split into chunks (ids the ledger does not hold are left out)."""
    if not ids:
        return []
    return split(exchange.ledger_document_sizes(conn, ids), max_documents=max_documents, max_bytes=max_bytes)


def split(sized: Iterable[Sized], *, max_documents: int, max_bytes: int) -> list[list[int]]:
    """Greedy packing of whole patients (in the given order) under both bounds; a patient too large for one chunk
    is split on its own."""
    if max_documents < 1 or max_bytes < 1:
        raise ValueError("chunk bounds must be positive")
    chunks: list[list[int]] = []
    current: list[int] = []
    size = 0
    for _patient, group in itertools.groupby(sized, key=lambda row: row[1]):
        rows = list(group)
        group_bytes = sum(r[2] for r in rows)
        if current and (len(current) + len(rows) > max_documents or size + group_bytes > max_bytes):
            chunks.append(current)
            current, size = [], 0
        for ledger_id, _, nbytes in rows:
            # Within a patient too large for one chunk (or the chunk's remainder): close it when the next would
            # overflow it.
            if current and (len(current) + 1 > max_documents or size + nbytes > max_bytes):
                chunks.append(current)
                current, size = [], 0
            current.append(ledger_id)
            size += nbytes
    if current:
        chunks.append(current)
    return chunks


def union(results: Iterable[list[int] | None]) -> list[int]:
    """The ids of all chunks' results (a chunk that produced nothing gives None or []), sorted, once each."""
    return sorted({i for chunk in results if chunk for i in chunk})
