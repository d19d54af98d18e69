"""Format control of a СЭМД before it leaves (and, in the emulator, when it arrives).

Format control is the kind's XSD when its pack is configured, or the built-in checks otherwise
(see ``packs``). Logical control — the kind's Schematron (``schematron``), or for a kind whose pack has none our own
rule set (``logical``: kind 43) — runs only after format control passed, as ФЛК does. It is on by default
(IEMK_LOGICAL_CONTROL=0 switches it off, e.g. for documents a МИС forms by other means): the six kinds iemk-etl
forms (``semd``) pass the official Schematrons and kind 43's own rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from iemk_etl import errors
from iemk_etl.flk import logical, nsi_control, packs
from iemk_etl.protocol import xml
from iemk_etl.semd.header import NS, SNILS_ROOT

_H = {"h": NS}


# What each stage's finding is in the error taxonomy: who must act and whether the document is finished.
_STAGE_KIND = {
    "format": errors.FLK_XSD,
    "logic": errors.FLK_SCHEMATRON,
    "builtin": errors.FLK_BUILTIN,
    "parse": errors.FLK_NOT_XML,
    "policy": errors.FLK_PACK_MISSING,     # our configuration (a pack required but absent): held, not ended
    "nsi": errors.FLK_NSI,
}


@dataclass(frozen=True)
class Finding:
    # "format" (XSD), "logic" (Schematron or flk.logical), "nsi" (НСИ control), "builtin" (no pack), "policy",
    # "parse"
    stage: str
    rule: str           # an XSD error type, a Schematron rule id, a built-in rule id, ...
    message: str
    location: str = ""
    pack: str = ""      # the pack that produced it, kind and edition («42 ред. 3»); "" for built-in checks


    @property
    def kind(self) -> errors.ErrorKind:
        return _STAGE_KIND.get(self.stage, errors.FLK_BUILTIN)

    def text(self) -> str:
        where = f" ({self.location})" if self.location else ""
        pack = f" [пакет {self.pack}]" if self.pack else ""
        return f"{self.kind.title}: {self.message}{where}{pack}"


# Built-in header rules: (rule id, XPath that must select something, what is missing).
_REQUIRED = (
    ("B1", "/h:ClinicalDocument", "корневой элемент ClinicalDocument в пространстве имён urn:hl7-org:v3"),
    ("B2", "/h:ClinicalDocument/h:typeId", "ClinicalDocument/typeId"),
    ("B3", "/h:ClinicalDocument/h:templateId/@root", "ClinicalDocument/templateId/@root"),
    ("B4", "/h:ClinicalDocument/h:id[@root and @extension]", "ClinicalDocument/id с атрибутами @root и @extension"),
    ("B5", "/h:ClinicalDocument/h:code/@code", "ClinicalDocument/code/@code"),
    ("B6", "/h:ClinicalDocument/h:effectiveTime/@value", "ClinicalDocument/effectiveTime/@value"),
    ("B7", "/h:ClinicalDocument/h:confidentialityCode", "ClinicalDocument/confidentialityCode"),
    ("B8", "/h:ClinicalDocument/h:setId", "ClinicalDocument/setId"),
    ("B9", "/h:ClinicalDocument/h:versionNumber/@value", "ClinicalDocument/versionNumber/@value"),
    ("B10", "/h:ClinicalDocument/h:recordTarget/h:patientRole/h:id", "recordTarget/patientRole/id"),
    ("B11", "/h:ClinicalDocument/h:recordTarget/h:patientRole/h:patient/h:name/h:family",
     "recordTarget/patientRole/patient/name/family"),
    ("B12", "/h:ClinicalDocument/h:author/h:assignedAuthor/h:id", "author/assignedAuthor/id"),
    ("B13", "/h:ClinicalDocument/h:custodian/h:assignedCustodian/h:representedCustodianOrganization/h:id",
     "custodian/assignedCustodian/representedCustodianOrganization/id"),
    ("B14", "/h:ClinicalDocument/h:component", "ClinicalDocument/component"),
)


def builtin_findings(root: etree._Element) -> list[Finding]:
    found = [
        Finding("builtin", rule, f"отсутствует обязательный элемент {what}")
        for rule, xpath, what in _REQUIRED
        if not root.xpath(xpath, namespaces=_H)
    ]
    snils = root.xpath(f"/h:ClinicalDocument/h:recordTarget/h:patientRole/h:id[@root='{SNILS_ROOT}']/@extension",
                       namespaces=_H)
    if not snils:
        found.append(Finding("builtin", "B15", "не указан СНИЛС пациента (patientRole/id root=1.2.643.100.3)"))
    elif not (len(snils[0]) == 11 and snils[0].isdigit()):
        found.append(Finding("builtin", "B16", f"СНИЛС пациента [{snils[0]}] должен состоять из 11 цифр"))
    return found


def xsd_findings(schema: etree.XMLSchema, root: etree._Element, pack: str = "") -> list[Finding]:
    if schema.validate(root.getroottree()):
        return []
    return [
        Finding("format", e.type_name, e.message, f"строка {e.line}", pack)
        for e in schema.error_log  # type: ignore[attr-defined]
    ]


def validate(kind_code: int, data: bytes, *, packs_dir: packs.Sources, require_packs: bool,
             logical: bool, nsi: nsi_control.DictionarySource | None = None,
             require_nsi: bool = False, engine: str | None = None) -> list[Finding]:
    """ФЛК: format control, then — if it passed and ``logical`` — logical control with the kind's Schematron, then —
    if that passed and a dictionary source is given — НСИ control (ИЭМК's order). The document is parsed once and
    every stage reads that tree. ``engine``: the Schematron engine (``schematron.ENGINES``; the default one if None)."""
    try:
        root = xml.parse(data)
    except (etree.XMLSyntaxError, xml.UnsafeXmlError) as exc:
        return [Finding("parse", "XML", str(exc))]
    findings = _format_findings(kind_code, root, packs_dir, require_packs)
    if findings:
        return findings
    if logical:
        findings = _logic_findings(kind_code, root, packs_dir, engine)
    if findings or nsi is None:
        return findings
    return _nsi_findings(root, nsi, require_nsi)


def validate_nsi(data: bytes, source: nsi_control.DictionarySource, *, require: bool) -> list[Finding]:
    """НСИ control: codes against the dictionaries held, СНИЛС check digits; a dictionary required but not held is
    our configuration (``policy``: the document is held, not ended)."""
    return _nsi_findings(xml.parse(data), source, require)


def _nsi_findings(root: etree._Element, source: nsi_control.DictionarySource, require: bool) -> list[Finding]:
    return [Finding("policy" if rule == nsi_control.NSI_MISSING else "nsi", rule, message, path)
            for rule, message, path in nsi_control.check(root, source, require=require)]


def validate_logic(kind_code: int, data: bytes, *, packs_dir: packs.Sources,
                   engine: str | None = None) -> list[Finding]:
    try:
        root = xml.parse(data)
    except (etree.XMLSyntaxError, xml.UnsafeXmlError) as exc:
        return [Finding("parse", "XML", str(exc))]
    return _logic_findings(kind_code, root, packs_dir, engine)


def _logic_findings(kind_code: int, root: etree._Element, packs_dir: packs.Sources,
                    engine: str | None) -> list[Finding]:
    pack = packs.resolve(packs_dir, kind_code)
    sch = pack.schematron if pack else None
    if sch is None and (own := logical.rules_for(kind_code)) is not None:
        return _own_rule_findings(own, root, packs_dir, engine)
    if pack is None or sch is None:
        packs.warn_once(kind_code, "logical", f"no Schematron for СЭМД kind {kind_code} in its pack: logical control "
                        "is SKIPPED for this kind")
        return []
    return _schematron_findings(pack, sch, root, engine)


def _schematron_findings(pack: packs.Pack, sch: Path, root: etree._Element, engine: str | None,
                         keep: Callable[[str], bool] | None = None) -> list[Finding]:
    from iemk_etl.flk import schematron

    failures = schematron.validate(sch, root, engine or schematron.DEFAULT_ENGINE)
    return [Finding("logic", f.rule, f.message + (" [ошибка вычисления]" if f.kind == "error" else ""),
                    schematron_path(f.location), pack.label)
            for f in failures if keep is None or keep(f.rule)]


def _own_rule_findings(rule_set: logical.RuleSet, root: etree._Element, packs_dir: packs.Sources,
                       engine: str | None) -> list[Finding]:
    """Our rules for a kind whose pack has no Schematron (see ``logical``): same stage, same finding shape."""
    header = _borrowed_header_findings(rule_set, root, packs_dir, engine)
    return header + [Finding("logic", f.rule, f.message, f.location) for f in logical.validate(rule_set.rules, root)]


def _borrowed_header_findings(rule_set: logical.RuleSet, root: etree._Element, packs_dir: packs.Sources,
                              engine: str | None) -> list[Finding]:
    if rule_set.header_from is None:
        return []
    pack = packs.resolve(packs_dir, rule_set.header_from)
    sch = pack.schematron if pack else None
    if pack is None or sch is None:
        packs.warn_once(rule_set.kind, "logical-header", f"no Schematron of kind {rule_set.header_from} whose header "
                        f"rules СЭМД kind {rule_set.kind} borrows: its header is NOT checked, only its own rules run")
        return []
    return _schematron_findings(pack, sch, root, engine, rule_set.header_rule)


def schematron_path(location: str) -> str:
    """Saxon's path() without the empty-namespace markers: /ClinicalDocument[1]/recordTarget[1]."""
    return location.replace("Q{}", "")


def validate_format(kind_code: int, data: bytes, *, packs_dir: packs.Sources, require_packs: bool) -> list[Finding]:
    """Findings of format control; an empty list means the document may go on."""
    try:
        root = xml.parse(data)
    except (etree.XMLSyntaxError, xml.UnsafeXmlError) as exc:
        return [Finding("parse", "XML", str(exc))]
    return _format_findings(kind_code, root, packs_dir, require_packs)


def _format_findings(kind_code: int, root: etree._Element, packs_dir: packs.Sources,
                     require_packs: bool) -> list[Finding]:
    try:
        pack = packs.find(packs_dir, kind_code, require=require_packs)
    except packs.PackMissingError as exc:
        return [Finding("policy", "IEMK_REQUIRE_PACKS", str(exc))]
    if pack is None:
        return builtin_findings(root)
    return xsd_findings(packs.compiled_xsd(pack.xsd), root, pack.label)
