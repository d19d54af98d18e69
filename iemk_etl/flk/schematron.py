"""Logical control of a СЭМД: the kind's official Schematron, compiled once to XSLT 3.0 and run by Saxon.

The packs declare ``queryBinding="xslt2"`` but use XPath 3.1 (``count(given)=[1,2]``), and their rule contexts
are written without the CDA namespace, so — like the reference validator — the document's default namespace
``urn:hl7-org:v3`` is removed before the check. Schematron semantics kept: within a pattern only the first rule
whose context matches a node fires for it; a test that raises a dynamic error is reported as a finding of that
test and the others go on. The packs use only pattern/rule/assert/report/ns, which is what is compiled here.
"""

from __future__ import annotations

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


def compile_schematron(sch_path: Path) -> str:
    """The XSLT 3.0 text that runs this Schematron and lists <failed> elements."""
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
        _x(sheet, "mode", name=mode, **{"on-no-match": "shallow-skip"})
        _x(results, "apply-templates", select="/", mode=mode)
        rules = list(pattern.iterfind(f"{{{SCH}}}rule"))
        for position, rule in enumerate(rules):
            # Earlier rules win: the first rule in a pattern whose context matches a node is the one that fires.
            template = _x(sheet, "template", match=rule.get("context", ""), mode=mode,
                          priority=str(len(rules) - position))
            for check in rule:
                if not isinstance(check.tag, str):
                    continue
                kind = etree.QName(check).localname
                if kind not in ("assert", "report"):
                    continue
                message = " ".join("".join(check.itertext()).split())
                test = check.get("test", "")
                attempt = _x(template, "try")
                condition = _x(attempt, "if", test=f"not({test})" if kind == "assert" else test)
                _failure(condition, kind, message)
                catch = _x(attempt, "catch")
                _failure(catch, "error", message)
                detail = _x(catch, "value-of", select="' [ошибка вычисления проверки: ' || $err:description || ']'")
                catch.find("failed").append(detail)
            _x(template, "apply-templates", select="@*|node()", mode=mode)
    return etree.tostring(sheet, encoding="unicode")


def strip_cda_namespace(data: bytes) -> str:
    """The document with elements of urn:hl7-org:v3 moved to no namespace, the others untouched."""
    root = xml.parse(data)     # the safe parser: no DTD, no entities, and a СЭМД with a large PDF inside parses
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith(f"{{{CDA}}}"):
            el.tag = el.tag[len(CDA) + 2:]
    etree.cleanup_namespaces(root)
    return etree.tostring(root, encoding="unicode")


class _Saxon:
    """One Saxon processor per process; compiled stylesheets are kept per Schematron file."""

    def __init__(self) -> None:
        from saxonche import PySaxonProcessor

        self.processor = PySaxonProcessor(license=False)
        self.lock = threading.Lock()
        self.compiled: dict[Path, object] = {}

    def executable(self, sch_path: Path) -> object:
        with self.lock:
            if sch_path not in self.compiled:
                self.compiled[sch_path] = self._compile(sch_path)
                log.info("compiled Schematron %s", sch_path)
            return self.compiled[sch_path]

    def check(self, sch_path: Path) -> None:
        """Compile without keeping the result: a pack being installed is checked from a temporary folder."""
        with self.lock:
            self._compile(sch_path)

    def _compile(self, sch_path: Path) -> object:
        try:
            xslt = compile_schematron(sch_path)
        except etree.XMLSyntaxError as exc:
            raise SchematronError(f"Schematron {sch_path} is not well-formed XML: {exc}") from None
        try:
            return self.processor.new_xslt30_processor().compile_stylesheet(stylesheet_text=xslt)
        except Exception as exc:  # noqa: BLE001 - Saxon raises its own PySaxonApiError
            raise SchematronError(f"Schematron {sch_path} does not compile: {exc}") from None

    def run(self, sch_path: Path, document: str) -> str:
        executable = self.executable(sch_path)
        with self.lock:
            node = self.processor.parse_xml(xml_text=document)
            return executable.transform_to_string(xdm_node=node)  # type: ignore[attr-defined]


@lru_cache(maxsize=1)
def _saxon() -> _Saxon:
    return _Saxon()


def schematron_for(pack: Path, kind_code: int) -> Path | None:
    candidate = pack / f"{kind_code}.sch"
    return candidate if candidate.is_file() else None


def check_compiles(sch_path: Path) -> None:
    """Raise SchematronError (naming the file and Saxon's reason) when this Schematron cannot be compiled."""
    _saxon().check(sch_path)


def validate(sch_path: Path, data: bytes) -> list[Failure]:
    output = _saxon().run(sch_path, strip_cda_namespace(data))
    failures = []
    for failed in etree.fromstring(output.encode()).iterfind("failed"):
        message = failed.text or ""
        rule = message.split(maxsplit=1)[0].rstrip(".") if message else "?"
        failures.append(Failure(rule, message, failed.get("location", ""), failed.get("kind", "")))
    return failures
