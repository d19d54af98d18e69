"""One document's failure stays that document's: the per-item guard of every step that walks a batch.

Each step commits every document's state change on its own (an autocommit connection, one ``conn.transaction()``
per document), so nothing recorded for one document waits for, or is rolled back with, another. ``each`` wraps the
work on one item: an exception there — a data error we raise on purpose (``errors.IemkError``, with its kind) or
one nobody foresaw (``errors.INTERNAL``) — is recorded on that item by the step's own ``record`` in a transaction
of its own, and the batch goes on. Only a lost database connection stops the batch: nothing could be recorded.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import Callable, Iterator

import psycopg

from iemk_etl import errors

log = logging.getLogger(__name__)

Record = Callable[[errors.ErrorKind, str], None]


def require_autocommit(conn: psycopg.Connection, step: str) -> None:
    """A step that commits per document needs an autocommit connection: on any other, its per-document
    transactions would be savepoints of one outer transaction, visible to nobody until the batch ends."""
    if not conn.autocommit:
        raise ValueError(f"{step}: needs an autocommit connection (db.connect(dsn, autocommit=True)), so that each "
                         "document's state is committed on its own")


def reason(exc: BaseException) -> tuple[errors.ErrorKind, str]:
    """The taxonomy's kind of an exception met on one document, and the text a МИС user reads after «Ошибка: »."""
    if isinstance(exc, errors.IemkError):
        return exc.kind, exc.status_text()
    return errors.INTERNAL, errors.INTERNAL.status_text(f"{type(exc).__name__}: {exc}")


@contextlib.contextmanager
def each(conn: psycopg.Connection, step: str, item_id: int, record: Record) -> Iterator[None]:
    """Run one item's work; an exception ends (or holds) that item through ``record`` and the batch goes on."""
    try:
        yield
    except Exception as exc:
        if conn.closed or conn.broken:
            raise      # the database is gone: nothing can be recorded, and nothing committed before is lost
        kind, text = reason(exc)
        # Ids, the exception's type and where it was raised; never its text: it may quote the document.
        log.error("%s: item %s ended with %s (%s at %s)", step, item_id, kind.code, type(exc).__name__, where(exc))
        with conn.transaction():
            record(kind, text)


def where(exc: BaseException) -> str:
    """Where an exception was raised (file:line): what a log may say of it, never its text."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
