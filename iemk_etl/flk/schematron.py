"""Logical control of a СЭМД: the kind's official Schematron, compiled once to XSLT 3.0 and run by Saxon.

Compiled once per process, Schematron content (sha256) and engine. Two engines, same findings in the same order:
"select" (the default: each pattern fires on the nodes its rule contexts select) and "walk" (the first one, kept
for comparison: each pattern walks the whole document); see ``ENGINES``.

The packs declare ``queryBinding="xslt2"`` but use XPath 3.1 (``count(given)=[1,2]``), and their rule contexts
are written without the CDA namespace, so — like the reference validator — the document's default namespace
``urn:hl7-org:v3`` is removed before the check. Schematron semantics kept: within a pattern only the first rule
whose context matches a node fires for it; a test that raises a dynamic error is reported as a finding of that
test and the others go on. The packs use only pattern/rule/assert/report/ns, which is what is compiled here.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lxml import etree

from iemk_etl import errors
from iemk_etl.errors import IemkError
from iemk_etl.protocol import xml
from iemk_etl.protocol.xml import sub

log = logging.getLogger(__name__)

SCH = "http://purl.oclc.org/dsdl/schematron"
XSL = "http://www.w3.org/1999/XSL/Transform"
ERR = "http://www.w3.org/2005/xqt-errors"
CDA = "urn:hl7-org:v3"


class SchematronError(IemkError, RuntimeError):
    """A Schematron that cannot be compiled or run: the pack or the installation is broken."""

    default_kind = errors.FLK_PACK_MISSING


@dataclass(frozen=True)
class Failure:
    rule: str          # the message's own id, e.g. "У1-8" or "Core11-1"
    message: str
    location: str
    kind: str          # "assert", "report" or "error" (the test itself could not be evaluated)


def _x(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    return sub(parent, (XSL, tag), **attrs)


def _failure(parent: etree._Element, kind: str, message: str) -> None:
    out = sub(parent, "failed", kind=kind)
    out.set("location", "{path()}")
    out.text = message


# The engines: "walk" is the first one (each pattern walks every node and attribute of the document and lets
# template matching pick its rule: 464 walks a document for kind 174); "select" (the default) asks each pattern for
# only the nodes one of its rule contexts matches, then fires the same templates on them. Findings are the same, in
# the same order (tests/flk/test_schematron_engines.py compares the two over generated and mutated documents).
ENGINES = ("select", "walk")
DEFAULT_ENGINE = "select"


def compile_schematron(sch_path: Path, engine: str = DEFAULT_ENGINE, *, guarded: bool = True) -> str:
    """The XSLT 3.0 text that runs this Schematron and lists <failed> elements.

    ``guarded`` wraps every check (and each pattern's selection) in xsl:try, so a test that raises a dynamic error
    becomes a finding of kind "error" and the other checks go on. Unguarded, the same stylesheet without them: its
    output is the same for every document on which nothing raises, and the whole transformation fails on one where
    something does. Saxon compiles it ≈ 40 % faster (the try/catch pairs are most of a pack's instructions), and a
    task process compiles the packs it meets anew, so ``validate`` runs the unguarded one and falls back to the
    guarded one for the rare document that raises (``_Saxon.run``)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown Schematron engine {engine!r}: one of {', '.join(ENGINES)}")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)
    schema = etree.parse(str(sch_path), parser).getroot()
    nsmap = {"xsl": XSL, "err": ERR}
    for ns in schema.iterfind(f"{{{SCH}}}ns"):
        nsmap[ns.get("prefix")] = ns.get("uri")
    sheet = etree.Element(f"{{{XSL}}}stylesheet", nsmap=nsmap, version="3.0",
                          **{"exclude-result-prefixes": " ".join(p for p in nsmap if p != "xsl")})
    _x(sheet, "output", method="xml", indent="no")
    root_template = _x(sheet, "template", match="/")
    results = sub(root_template, "findings")
    for index, pattern in enumerate(schema.iterfind(f"{{{SCH}}}pattern")):
        mode = f"p{index}"
        rules = list(pattern.iterfind(f"{{{SCH}}}rule"))
        if engine == "walk":
            _x(sheet, "mode", name=mode, **{"on-no-match": "shallow-skip"})
            _x(results, "apply-templates", select="/", mode=mode)
        else:
            # Only the nodes selected get a template: one no rule matches is skipped, not descended into.
            _x(sheet, "mode", name=mode, **{"on-no-match": "deep-skip"})
            _select_pattern(results, mode, [rule.get("context", "") for rule in rules], guarded)
        for position, rule in enumerate(rules):
            # Earlier rules win: the first rule in a pattern whose context matches a node is the one that fires.
            template = _x(sheet, "template", match=rule.get("context", ""), mode=mode,
                          priority=str(len(rules) - position))
            _rule_checks(template, rule, guarded)
            if engine == "walk":
                _x(template, "apply-templates", select="@*|node()", mode=mode)
    return etree.tostring(sheet, encoding="unicode")


def _select_pattern(results: etree._Element, mode: str, contexts: list[str], guarded: bool) -> None:
    """Fire the pattern's templates on the nodes its contexts select, in document order. Should selecting raise a
    dynamic error (a pattern treats that node as not matching, an expression fails as a whole), every node of the
    document is offered to the templates instead, in document order: what the walk visits, in its order."""
    selection = " | ".join(_selection(c) for c in contexts)
    if not guarded:
        _x(results, "apply-templates", select=selection, mode=mode)
        return
    attempt = _x(results, "try")
    _x(attempt, "apply-templates", select=selection, mode=mode)
    _x(_x(attempt, "catch"), "apply-templates", select="/ | //node() | //@*", mode=mode)


def _selection(context: str) -> str:
    """The expression selecting every node a match pattern matches: each branch of a top-level union rooted at the
    document (``a/b`` matches a ``b`` child of an ``a`` anywhere: ``//a/b``; ``/a`` and ``//a`` stay as they are)."""
    return " | ".join(branch if branch.startswith("/") else f"//{branch}"
                      for branch in (b.strip() for b in _top_level_union(context)))


def _top_level_union(pattern: str) -> list[str]:
    """A pattern's branches: split at ``|`` outside brackets, parentheses and string literals."""
    branches, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(pattern):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "|" and depth == 0:
            branches.append(pattern[start:i])
            start = i + 1
    branches.append(pattern[start:])
    return branches


def _rule_checks(template: etree._Element, rule: etree._Element, guarded: bool) -> None:
    for check in rule:
        if not isinstance(check.tag, str):
            continue
        kind = etree.QName(check).localname
        if kind not in ("assert", "report"):
            continue
        message = " ".join("".join(check.itertext()).split())
        test = check.get("test", "")
        attempt = _x(template, "try") if guarded else template
        condition = _x(attempt, "if", test=f"not({test})" if kind == "assert" else test)
        _failure(condition, kind, message)
        if not guarded:
            continue
        catch = _x(attempt, "catch")
        _failure(catch, "error", message)
        detail = _x(catch, "value-of", select="' [ошибка вычисления проверки: ' || $err:description || ']'")
        catch.find("failed").append(detail)


# An embedded file (HL7 ED, ``representation="B64"``: a scanned PDF) longer than this reaches Saxon as its first
# STAND_IN_CHARS characters only. The copies on the way to Saxon and Saxon's own tree made most of the validate
# step's growth (a 20 MB СЭМД: 506 MiB, 114 MiB with the Schematron off; benchmarks/README.md). The packs'
# Schematrons never read an embedded file's content (their tests are count(), matches() on attributes and short
# elements, normalize-space(), not(); none names observationMedia, value/@representation or string-length), and a
# shortened text keeps every such test's outcome: still there, still non-empty, the same leading characters.
# Format control (XSD) and НСИ control still read the whole document.
LONG_EMBEDDED_TEXT = 64 * 1024
STAND_IN_CHARS = 76


def strip_cda_namespace(data: bytes | etree._Element) -> str:
    """The document with elements of urn:hl7-org:v3 moved to no namespace, the others untouched, and long embedded
    files shortened (LONG_EMBEDDED_TEXT); a parsed root given is copied, not changed: the caller's later stages read
    it as it came."""
    # The safe parser: no DTD, no entities, and a СЭМД with a large PDF inside parses.
    root = xml.parse(data) if isinstance(data, bytes) else _copy_shortened(data)
    _shorten_embedded_files(root)
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith(f"{{{CDA}}}"):
            el.tag = el.tag[len(CDA) + 2:]
    etree.cleanup_namespaces(root)
    return etree.tostring(root, encoding="unicode")


def _long_embedded_files(root: etree._Element) -> list[etree._Element]:
    # string-length() in libxml2 measures without a Python copy of the text.
    return [el for el in root.iter() if isinstance(el.tag, str) and el.get("representation") == "B64"
            and el.xpath("string-length(text())") > LONG_EMBEDDED_TEXT]


def _shortened(el: etree._Element) -> etree._Element:
    """A childless copy of an embedded file's element, its text cut to STAND_IN_CHARS."""
    stand_in = etree.Element(el.tag, dict(el.attrib), nsmap=el.nsmap)
    stand_in.text = el.xpath(f"substring(text(), 1, {STAND_IN_CHARS})")
    stand_in.tail = el.tail
    return stand_in


def _shorten_embedded_files(root: etree._Element) -> None:
    for el in _long_embedded_files(root):
        el.text = el.xpath(f"substring(text(), 1, {STAND_IN_CHARS})")


def _copy_shortened(root: etree._Element) -> etree._Element:
    """A deep copy of the caller's tree with its long embedded files already shortened: each is swapped for a short
    stand-in while the tree is copied and put back after (moved, not copied: tens of MB of text stay where they
    are), so the caller's tree ends as it came."""
    swapped = [(el, _shortened(el)) for el in _long_embedded_files(root) if el.getparent() is not None]
    for el, stand_in in swapped:
        el.getparent().replace(el, stand_in)
    try:
        return copy.deepcopy(root)
    finally:
        for el, stand_in in swapped:
            stand_in.getparent().replace(stand_in, el)


class _Saxon:
    """One Saxon processor per process; compiled stylesheets are kept per Schematron content (sha256) and engine,
    so a worker process compiles each kind's pack once, and a pack replaced under the same path is recompiled."""

    def __init__(self) -> None:
        from saxonche import PySaxonProcessor

        self.processor = PySaxonProcessor(license=False)
        self.lock = threading.Lock()
        self.compiled: dict[tuple[str, str, bool], object] = {}
        self.hashes: dict[tuple[Path, int, int], str] = {}

    def executable(self, sch_path: Path, engine: str, *, guarded: bool = True) -> object:
        with self.lock:
            key = (self._content_hash(sch_path), engine, guarded)
            if key not in self.compiled:
                self.compiled[key] = self._compile(sch_path, engine, guarded=guarded)
                log.info("compiled Schematron %s (%s, engine %s%s)", sch_path, key[0][:12], engine,
                         "" if guarded else ", unguarded")
            return self.compiled[key]

    def _content_hash(self, sch_path: Path) -> str:
        # A stat a document; the file is read and hashed only when it is new or changed.
        stat = sch_path.stat()
        key = (sch_path, stat.st_mtime_ns, stat.st_size)
        if key not in self.hashes:
            self.hashes[key] = hashlib.sha256(sch_path.read_bytes()).hexdigest()
        return self.hashes[key]

    def check(self, sch_path: Path) -> None:
        """Compile without keeping the result: a pack being installed is checked from a temporary folder."""
        with self.lock:
            self._compile(sch_path, DEFAULT_ENGINE)

    def _compile(self, sch_path: Path, engine: str, *, guarded: bool = True) -> object:
        try:
            xslt = compile_schematron(sch_path, engine, guarded=guarded)
        except etree.XMLSyntaxError as exc:
            raise SchematronError(f"Schematron {sch_path} is not well-formed XML: {exc}") from None
        try:
            return self.processor.new_xslt30_processor().compile_stylesheet(stylesheet_text=xslt)
        except Exception as exc:  # noqa: BLE001 - Saxon raises its own PySaxonApiError
            raise SchematronError(f"Schematron {sch_path} does not compile: {exc}") from None

    def run(self, sch_path: Path, document: str, engine: str, *, fast: bool = True) -> str:
        """The findings: from the unguarded stylesheet, or, when a check raised there (or ``fast`` is off), from the
        guarded one (the same findings plus the "error" ones; compiled only when a document needs it)."""
        with self.lock:
            node = self.processor.parse_xml(xml_text=document)
        if fast:
            unguarded = self.executable(sch_path, engine, guarded=False)
            try:
                with self.lock:
                    return unguarded.transform_to_string(xdm_node=node)  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001 - Saxon's PySaxonApiError: a dynamic error in some check
                # Saxon's message may quote the document's values: only its type is logged.
                log.debug("Schematron %s: a check raised (%s): the guarded stylesheet runs", sch_path.name,
                          type(exc).__name__)
        guarded = self.executable(sch_path, engine)
        with self.lock:
            return guarded.transform_to_string(xdm_node=node)  # type: ignore[attr-defined]


@lru_cache(maxsize=1)
def _saxon() -> _Saxon:
    return _Saxon()


def schematron_for(pack: Path, kind_code: int) -> Path | None:
    candidate = pack / f"{kind_code}.sch"
    return candidate if candidate.is_file() else None


def check_compiles(sch_path: Path) -> None:
    """Raise SchematronError (naming the file and Saxon's reason) when this Schematron cannot be compiled."""
    _saxon().check(sch_path)


def validate(sch_path: Path, data: bytes | etree._Element, engine: str = DEFAULT_ENGINE, *,
             fast: bool = True) -> list[Failure]:
    """The Schematron's failures on a document (its bytes, or its parsed root, which is left untouched); ``fast``
    off runs only the guarded stylesheet (tests compare the two)."""
    output = _saxon().run(sch_path, strip_cda_namespace(data), engine, fast=fast)
    failures = []
    for failed in etree.fromstring(output.encode()).iterfind("failed"):
        message = failed.text or ""
        rule = message.split(maxsplit=1)[0].rstrip(".") if message else "?"
        failures.append(Failure(rule, message, failed.get("location", ""), failed.get("kind", "")))
    return failures
