"""Validate: format control (ФЛК) of the documents not checked yet, before anything is sent."""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from iemk_etl import errors, kinds
from iemk_etl.flk import nsi_control, parallel, validation
from iemk_etl.pipeline import guard, nsi
from iemk_etl.settings import Settings
from iemk_etl.signing import cades
from iemk_etl.signing.backend import get_backend
from iemk_etl.store import ledger
from iemk_etl.store.ledger import State
from iemk_etl.store.mis import exchange

log = logging.getLogger(__name__)

_CHUNK = 200
# A batch this large or larger is checked in worker processes (IEMK_FLK_PROCESSES > 1): below it, starting them
# (≈1 s each, plus a Schematron compile per kind and process, 1–2 s) costs more than it saves.
POOL_MIN_DOCUMENTS = 100

Problem = tuple[errors.ErrorKind, str]


def validate(conn: psycopg.Connection, ids: list[int], settings: Settings) -> list[int]:
    """Format control of the not-yet-checked documents; returns the ids that may go on.

    Each document's state is committed on its own as soon as it is checked, in this process or — for a large batch
    with IEMK_FLK_PROCESSES > 1 — in worker processes (``flk.parallel``), whose verdicts this process records."""
    guard.require_autocommit(conn, "validate")
    dictionaries = nsi.StoreSource(conn)    # НСИ control reads each dictionary version once per run
    if settings.flk_processes > 1 and len(ids) >= POOL_MIN_DOCUMENTS:
        checked = _validate_in_workers(conn, ids, settings, dictionaries)
    else:
        checked = _validate_here(conn, ids, settings, dictionaries)
    passed = ledger.ids_in_states(conn, ids, (State.VALID, State.SENT))
    log.info("format control: %d checked now, %d of %d may go on", checked, len(passed), len(ids))
    return passed


def _queued(conn: psycopg.Connection, ids: list[int]) -> Iterator[tuple[exchange.QueuedContent,
                                                                         exchange.QueuedSignatures | None]]:
    # In chunks, so a large backlog never holds every document's bytes in memory at once.
    for chunk in (ids[i:i + _CHUNK] for i in range(0, len(ids), _CHUNK)):
        queued = exchange.ledger_queued_content(conn, chunk)
        signatures = exchange.ledger_queued_signatures(conn, chunk)
        for doc in queued:
            yield doc, signatures.get(doc.ledger_id)


def _validate_here(conn: psycopg.Connection, ids: list[int], settings: Settings,
                   dictionaries: nsi_control.DictionarySource) -> int:
    checked = 0
    for doc, signed in _queued(conn, ids):
        # An exception on one document (unreadable bytes, a checker's bug) ends or holds that document only.
        with guard.each(conn, "validate", doc.ledger_id, functools.partial(_check_failed, conn, doc.ledger_id)):
            _check_one(conn, doc.ledger_id, _problem(doc.kind_code, doc.cda, doc.content_hash, settings, signed,
                                                     dictionaries))
        checked += 1
    return checked


@dataclass(frozen=True)
class _Job:
    """What a worker process needs to check one document: no connection, no secrets."""

    kind_code: int
    data: bytes
    content_hash: str
    signed: exchange.QueuedSignatures | None
    pack_sources: tuple[Path, ...]
    require_packs: bool
    logical_control: bool
    gost_backend: str


@dataclass(frozen=True)
class _Verdict:
    """A worker's answer: a problem found before НСИ control, or — format and logical control passed — the
    signature check's outcome, which stands only if НСИ control (here, with the database's dictionaries) passes."""

    problem: Problem | None = None
    nsi_due: bool = False
    signature: Problem | None = None
    failed: str = ""        # the exception's type and where, when the check itself raised (for the log)


def _validate_in_workers(conn: psycopg.Connection, ids: list[int], settings: Settings,
                         dictionaries: nsi_control.DictionarySource) -> int:
    jobs = ((doc.ledger_id, _Job(doc.kind_code, doc.cda, doc.content_hash, signed, settings.pack_sources,
                                 settings.require_packs, settings.logical_control, settings.gost_backend))
            for doc, signed in _queued(conn, ids))
    data: dict[int, bytes] = {}
    checked = 0
    for ledger_id, outcome in parallel.run(_worker_check, _remembering(jobs, data), settings.flk_processes):
        document = data.pop(ledger_id)
        with guard.each(conn, "validate", ledger_id, functools.partial(_check_failed, conn, ledger_id)):
            _check_one(conn, ledger_id, _recorded_problem(ledger_id, outcome, document, settings, dictionaries))
        checked += 1
    return checked


def _remembering(jobs: Iterator[tuple[int, _Job]], data: dict[int, bytes]) -> Iterator[tuple[int, _Job]]:
    # НСИ control runs here, on the bytes of the documents in flight (the window bounds how many).
    for ledger_id, job in jobs:
        data[ledger_id] = job.data
        yield ledger_id, job


def _recorded_problem(ledger_id: int, outcome: _Verdict | BaseException, data: bytes, settings: Settings,
                      dictionaries: nsi_control.DictionarySource) -> Problem | None:
    if isinstance(outcome, BaseException):
        raise outcome          # the worker died on it (or its answer was lost): guard.each records it
    if outcome.failed:
        log.error("validate: item %s ended with %s (%s)", ledger_id, outcome.problem[0].code if outcome.problem
                  else "?", outcome.failed)
    if outcome.problem is not None or not outcome.nsi_due:
        return outcome.problem
    findings = validation.validate_nsi(data, dictionaries, require=settings.require_nsi)
    if findings:
        return _findings_problem(findings)
    return outcome.signature


def _worker_check(job: _Job) -> _Verdict:
    """In a worker process: everything up to НСИ control, and the signatures (only used if НСИ control passes)."""
    try:
        early = _before_findings(job.kind_code, job.data, job.content_hash)
        if early is not None:
            return _Verdict(early)
        findings = validation.validate(job.kind_code, job.data, packs_dir=job.pack_sources,
                                       require_packs=job.require_packs, logical=job.logical_control)
        if findings:
            return _Verdict(_findings_problem(findings))
        return _Verdict(nsi_due=True,
                        signature=_signature_problem(job.kind_code, job.data, job.signed, job.gost_backend))
    except Exception as exc:  # noqa: BLE001 - the document's own failure, as guard.each would record it here
        return _Verdict(guard.reason(exc), failed=f"{type(exc).__name__} at {guard.where(exc)}")


def _check_one(conn: psycopg.Connection, ledger_id: int, problem: Problem | None) -> None:
    with conn.transaction():
        if problem is None:
            ledger.set_state(conn, ledger_id, State.VALID)
            return
        kind, text = problem
        # A finding in the document ends this version; one of our configuration (a required pack absent) holds
        # it, visibly, until the next check after the fix.
        ledger.set_state(conn, ledger_id, State.QUEUED if kind.holds else State.INVALID, error=text,
                         error_code=kind.code)
        log.info("ledger %s failed format control: %s", ledger_id, kind.code)


def _check_failed(conn: psycopg.Connection, ledger_id: int, kind: errors.ErrorKind, text: str) -> None:
    _check_one(conn, ledger_id, (kind, text))


def _problem(kind_code: int, data: bytes, content_hash: str, settings: Settings,
             signed: exchange.QueuedSignatures | None,
             dictionaries: nsi_control.DictionarySource) -> Problem | None:
    """What keeps the document from going on: its kind and the text users read; None when it may go."""
    early = _before_findings(kind_code, data, content_hash)
    if early is not None:
        return early
    findings = validation.validate(kind_code, data, packs_dir=settings.pack_sources,
                                   require_packs=settings.require_packs, logical=settings.logical_control,
                                   nsi=dictionaries, require_nsi=settings.require_nsi)
    if findings:
        return _findings_problem(findings)
    return _signature_problem(kind_code, data, signed, settings.gost_backend)


def _before_findings(kind_code: int, data: bytes, content_hash: str) -> Problem | None:
    if kind_code not in kinds.KINDS:
        # No template, no metadata, no builder: it can never be sent; the МИС must give it a kind ИЭМК knows.
        return errors.UNKNOWN_KIND, errors.UNKNOWN_KIND.status_text(f"код {kind_code} по НСИ 1520")
    if hashlib.sha256(data).hexdigest() != content_hash:
        # The МИС changed the bytes after they were queued under this version: a new version is needed.
        return errors.CONTENT_CHANGED, errors.CONTENT_CHANGED.title
    return None


def _findings_problem(findings: list[validation.Finding]) -> Problem:
    return findings[0].kind, "; ".join(f.text() for f in findings[:3])


def _signature_problem(kind_code: int, data: bytes, signed: exchange.QueuedSignatures | None,
                       gost_backend: str) -> Problem | None:
    """The СЭМД's own signatures, over exactly these bytes, by the author (and the МО where the kind needs it).

    Checked after format control: a document both malformed and badly signed needs a new version anyway, and the
    format finding says what to fix. A signature problem holds the document (SEMD_SIGNATURE, AFTER_FIX): the МИС
    re-signs the same bytes and this very version goes on at the next check."""
    try:
        if signed is None:
            raise cades.DocumentSignatureError("NO_SIGNATURE", "подпись автора отсутствует")
        cades.verify_document(data, kind_code, signed.signature, signed.org_signature,
                              cades.Author(signed.author_snils, signed.author_family, signed.author_given),
                              get_backend(gost_backend), mo_ogrn=signed.mo_ogrn)
    except cades.DocumentSignatureError as exc:
        return exc.kind, exc.status_text()
    return None
