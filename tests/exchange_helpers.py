"""Shared by the exchange tests: one ITI-41 submission of a test document, and the replies stored for it."""

from __future__ import annotations

import datetime as dt
import difflib
import os
import time
from pathlib import Path

import psycopg
import pytest
from lxml import etree

from iemk_etl.pipeline import replies
from iemk_etl.protocol import soap
from iemk_etl.protocol.xds import submit
from iemk_etl.protocol.xds.common import RegistryResponse, read_registry_response
from iemk_etl.semd.header import unique_id

from cda_factory import MO


def _submission(data: bytes, local_uid: str = "D-1") -> submit.Submission:
    return submit.Submission(
        unique_id=unique_id(MO.oid, local_uid), mo_oid=MO.oid, mo_name=MO.name, patient_local_id="P-1",
        kind_code=42, created_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        author=submit.AuthorRef("11223344595", "Петрова", "Анна", "Сергеевна"), document=data,
        submission_set_id="1.2.3.4")


# Every reply the receiver took; one to a MessageID the ledger never sent waits in quarantine, not in the inbox.
REPLIES_TO = ("SELECT body FROM iemk.inbox WHERE relates_to = %(r)s"
              " UNION ALL SELECT body FROM iemk.reply_quarantine WHERE relates_to = %(r)s")


def _replies(dsn: str, relates_to: str, timeout: float = 10) -> list[RegistryResponse]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(dsn) as conn:
            rows = conn.execute(REPLIES_TO, {"r": relates_to}).fetchall()
        if rows:
            return [read_registry_response(soap.parse(bytes(r[0])).body) for r in rows]
        time.sleep(0.05)
    raise AssertionError(f"no reply for {relates_to}")


def wait_answers(conn: psycopg.Connection, ids: list[int], timeout: float = 15) -> None:
    """Until every document of ``ids`` that waits for ИЭМК's answer has one (the pipeline's own count)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answered, awaited = replies.replies_pending(conn, ids)
        if answered == awaited:
            return
        time.sleep(0.05)
    raise AssertionError("answers did not arrive")


# --- comparing our HL7v3 messages with the real samples in ../shared/samples -------------------------------------

def shared_dir() -> Path | None:
    """../shared: $IEMK_SHARED_DIR, else beside the repository root (worktrees set the variable)."""
    configured = os.environ.get("IEMK_SHARED_DIR")
    candidate = Path(configured) if configured else Path(__file__).resolve().parents[2] / "shared"
    return candidate if candidate.is_dir() else None


def sample(relative: str) -> bytes:
    """A file of ../shared/samples, or the test is skipped saying where it was looked for."""
    root = shared_dir()
    path = root / "samples" / relative if root else None
    if path is None or not path.is_file():
        pytest.skip(f"the real sample samples/{relative} is not in ../shared (set IEMK_SHARED_DIR to the folder "
                    f"that holds samples/; looked in {root or Path(__file__).resolve().parents[2] / 'shared'})")
    return path.read_bytes()


def canonical_lines(element: etree._Element, ignore: frozenset[str] = frozenset()) -> list[str]:
    """The element as one line per element, in document order: its path (local names with sibling positions), its
    namespace, every attribute (sorted: attribute order carries no meaning in XML), and its stripped text. Prefixes
    and whitespace between elements drop out; anything else — a tag, an attribute, a value, the order of
    children — shows. ``ignore`` holds '<path>/@<attribute>' entries whose values are left out (ids, times)."""
    lines: list[str] = []

    def walk(el: etree._Element, path: str) -> None:
        qn = etree.QName(el)
        attrs = []
        for name, value in sorted(el.attrib.items()):
            key = f"{path}/@{etree.QName(name).localname}"
            attrs.append(f"{name}=<ignored>" if key in ignore else f"{name}={value!r}")
        text, tail = (el.text or "").strip(), (el.tail or "").strip()
        lines.append(f"{path} {{{qn.namespace}}} [{', '.join(attrs)}] {text!r}" + (f" tail {tail!r}" if tail else ""))
        counts: dict[str, int] = {}
        for child in el:
            if not isinstance(child.tag, str):
                continue        # comments and processing instructions are no part of the message
            name = etree.QName(child).localname
            counts[name] = counts.get(name, 0) + 1
            walk(child, f"{path}/{name}[{counts[name]}]")

    walk(element, etree.QName(element).localname)
    return lines


def assert_same_message(ours: etree._Element, theirs: etree._Element, ignore: frozenset[str] = frozenset()) -> None:
    """Equal after canonicalisation, or an assertion that shows the difference as a diff (sample → ours)."""
    a, b = canonical_lines(theirs, ignore), canonical_lines(ours, ignore)
    if a != b:
        diff = "\n".join(difflib.unified_diff(a, b, "sample", "ours", lineterm="", n=2))
        raise AssertionError(f"our message differs from the real sample:\n{diff}")
