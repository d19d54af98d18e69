"""The МИС adapter: the only place that reads or writes the ``mis.*`` tables."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

# -- reads for the command line


@dataclass(frozen=True)
class DocumentStatus:
    """Where a МИС document stands, as the МИС shows it."""

    status: str | None
    local_uid: str
    version: int


def mo_of_document(conn: psycopg.Connection, document_id: int) -> tuple[str, str] | None:
    """The (OID, code) of the МО a document belongs to; None when there is no such document."""
    row = conn.execute("SELECT m.oid, m.code FROM mis.semd_document d JOIN mis.mo m ON m.oid = d.mo_oid"
                       " WHERE d.id = %s", (document_id,)).fetchone()
    return (row[0], row[1]) if row else None


def document_status(conn: psycopg.Connection, document_id: int) -> DocumentStatus | None:
    row = conn.execute("SELECT status, local_uid, version FROM mis.semd_document WHERE id = %s",
                       (document_id,)).fetchone()
    return DocumentStatus(*row) if row else None
