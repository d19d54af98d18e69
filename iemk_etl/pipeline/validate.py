"""Validate: format control (ФЛК) of the documents not checked yet, before anything is sent."""

from __future__ import annotations

import functools
import hashlib
import logging

import psycopg

from iemk_etl import errors, kinds
from iemk_etl.flk import nsi_control, validation
from iemk_etl.pipeline import guard, nsi, outcomes
from iemk_etl.settings import Settings
from iemk_etl.signing import cades
from iemk_etl.signing.backend import get_backend
from iemk_etl.store import ledger
from iemk_etl.store.ledger import State
from iemk_etl.store.mis import exchange

log = logging.getLogger(__name__)

_CHUNK = 200


def validate(conn: psycopg.Connection, ids: list[int], settings: Settings) -> list[int]:
    """Format control of the not-yet-checked documents; returns the ids that may go on."""
    guard.require_autocommit(conn, "validate")
    checked = 0
    dictionaries = nsi.StoreSource(conn)    # НСИ control reads each dictionary version once per run
    # In chunks, so a large backlog never holds every document's bytes in memory at once.
    for chunk in (ids[i:i + _CHUNK] for i in range(0, len(ids), _CHUNK)):
        queued = exchange.ledger_queued_content(conn, chunk)
        signatures = exchange.ledger_queued_signatures(conn, chunk)
        for doc in queued:
            # An exception on one document (unreadable bytes, a checker's bug) ends or holds that document only.
            with guard.each(conn, "validate", doc.ledger_id, functools.partial(_check_failed, conn, doc.ledger_id)):
                _check_one(conn, doc.ledger_id, _problem(doc.kind_code, doc.cda, doc.content_hash, settings,
                                                         signatures.get(doc.ledger_id), dictionaries))
        checked += len(queued)
    passed = ledger.ids_in_states(conn, ids, (State.VALID, State.SENT))
    log.info("format control: %d checked now, %d of %d may go on", checked, len(passed), len(ids))
    return passed


def _check_one(conn: psycopg.Connection, ledger_id: int, problem: tuple[errors.ErrorKind, str] | None) -> None:
    with conn.transaction():
        if problem is None:
            ledger.set_state(conn, ledger_id, State.VALID)
            return
        kind, text = problem
        # A finding in the document ends this version; one of our configuration (a required pack absent) holds
        # it, visibly, until the next check after the fix.
        ledger.set_state(conn, ledger_id, State.QUEUED if kind.holds else State.INVALID, error=text,
                         error_code=kind.code)
        outcomes.log_refusal(conn, ledger_id, kind.code, "validate")


def _check_failed(conn: psycopg.Connection, ledger_id: int, kind: errors.ErrorKind, text: str) -> None:
    _check_one(conn, ledger_id, (kind, text))


def _problem(kind_code: int, data: bytes, content_hash: str, settings: Settings,
             signed: exchange.QueuedSignatures | None,
             dictionaries: nsi_control.DictionarySource) -> tuple[errors.ErrorKind, str] | None:
    """What keeps the document from going on: its kind and the text users read; None when it may go."""
    if kind_code not in kinds.KINDS:
        # No template, no metadata, no builder: it can never be sent; the МИС must give it a kind ИЭМК knows.
        return errors.UNKNOWN_KIND, errors.UNKNOWN_KIND.status_text(f"код {kind_code} по НСИ 1520")
    if hashlib.sha256(data).hexdigest() != content_hash:
        # The МИС changed the bytes after they were queued under this version: a new version is needed.
        return errors.CONTENT_CHANGED, errors.CONTENT_CHANGED.title
    findings = validation.validate(kind_code, data, packs_dir=settings.pack_sources,
                                   require_packs=settings.require_packs, logical=settings.logical_control,
                                   nsi=dictionaries, require_nsi=settings.require_nsi)
    if findings:
        return findings[0].kind, "; ".join(f.text() for f in findings[:3])
    return _signature_problem(kind_code, data, signed, settings)


def _signature_problem(kind_code: int, data: bytes, signed: exchange.QueuedSignatures | None,
                       settings: Settings) -> tuple[errors.ErrorKind, str] | None:
    """The СЭМД's own signatures, over exactly these bytes, by the author (and the МО where the kind needs it).

    Checked after format control: a document both malformed and badly signed needs a new version anyway, and the
    format finding says what to fix. A signature problem holds the document (SEMD_SIGNATURE, AFTER_FIX): the МИС
    re-signs the same bytes and this very version goes on at the next check."""
    try:
        if signed is None:
            raise cades.DocumentSignatureError("NO_SIGNATURE", "подпись автора отсутствует")
        cades.verify_document(data, kind_code, signed.signature, signed.org_signature,
                              cades.Author(signed.author_snils, signed.author_family, signed.author_given),
                              get_backend(settings.gost_backend), mo_ogrn=signed.mo_ogrn)
    except cades.DocumentSignatureError as exc:
        return exc.kind, exc.status_text()
    return None
