"""Our own logical control for kinds whose official pack has no Schematron (today: kind 43).

Pack 43 (Направление …, Ред. 2) publishes the XSD only, so nothing checked a kind-43 document's structure after
format control. The rules below are written the way the official Schematrons are: a context (the element the rule is
about), a test that must hold on each context element, and a Russian message that starts with the rule id and names
the element. A finding carries the context element's path in the form the Schematron findings use
(``/ClinicalDocument[1]/component[1]/…``), so the pipeline, the emulator and ``documents validate`` show both alike.

They run where the Schematron would (``validation.validate_logic``), only when the pack has no Schematron of its
own: an official one, once published, replaces them. Within a rule set every rule fires on its own (no first-match
semantics: the contexts here never overlap for the same rule).

Where the rules come from (kind 43): the structure rules that lived in the builder's test (B43-1…12, now L43-…),
i.e. the body ``semd/referral.py`` writes, whose sections ФНСИ 1.2.643.5.1.13.13.99.2.197 lists for the kind-43
package 1.2.643.5.1.13.13.15.31.2 (SCOPORG, WORK, DGN, ELU, BENEFITS); НСИ 1009 «Виды направлений» for the referral
type (the rows of form 057/у-04); and the CDA moods of a request (RQO) and of a diagnosis made (EVN). The header is not
re-written here: ``RuleSet.header_from`` names the kind of the same guide generation whose official header rules
(У1-…) apply — 42 for 43 — and ``validation`` runs them with its Schematron. docs/semd.md lists the rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from iemk_etl import kinds

CDA = "urn:hl7-org:v3"
_NS = {"h": CDA, "xsi": "http://www.w3.org/2001/XMLSchema-instance"}


@dataclass(frozen=True)
class Rule:
    id: str
    context: str       # absolute XPath (prefix h: for CDA) of the elements the rule is about
    test: str          # XPath relative to each context element; the rule is broken where it is false
    message: str       # Russian, without the id: which element, what must hold


@dataclass(frozen=True)
class Failure:
    rule: str
    message: str       # "<id>. <message>", as the official Schematrons word theirs
    location: str      # /ClinicalDocument[1]/component[1]/…


DOC = "/h:ClinicalDocument"
BODY = f"{DOC}/h:component/h:structuredBody"
SECTION = f"{BODY}/h:component/h:section"
REQUEST = f"{SECTION}[h:code/@code='SCOPORG']/h:entry/h:act[@classCode='ACT'][@moodCode='RQO']"

_NSI_1522 = kinds.NSI_1522
_NSI_1009 = "1.2.643.5.1.13.13.11.1009"       # «Виды направлений»
_NSI_1070 = "1.2.643.5.1.13.13.11.1070"       # «Номенклатура медицинских услуг»
_NSI_1005 = "1.2.643.5.1.13.13.11.1005"       # МКБ-10
_NSI_1077 = "1.2.643.5.1.13.13.11.1077"       # «Виды нозологических единиц диагноза»
_NSI_197 = "1.2.643.5.1.13.13.99.2.197"       # «Секции ЭМД»
_FRMO_PREFIX = "1.2.643.5.1.13.13.12."        # ФРМО: МО and their departments
_NSI_1076 = "1.2.643.5.1.13.13.11.1076"       # «Виды медицинских диагнозов»
# The rows of НСИ 1009 v2.5 that are referrals of form 057/у-04 (semd/codes.py: 1, 2, 3, 4, 6, 10 of its 12 rows).
_REFERRAL_TYPES = ("1", "2", "3", "4", "6", "10")
_MAIN_DIAGNOSIS = (f"h:entry/h:act[h:code/@codeSystem='{_NSI_1076}']/h:entryRelationship[@typeCode='COMP']"
                   f"/h:observation[h:code[@code='1'][@codeSystem='{_NSI_1077}']]")
_SECTIONS_43 = ("SCOPORG", "WORK", "DGN", "ELU", "BENEFITS")


def _any_of(attr: str, values: tuple[str, ...]) -> str:
    return "(" + " or ".join(f"{attr}='{v}'" for v in values) + ")"


def _rules_43() -> tuple[Rule, ...]:
    template = kinds.get(43).template_id
    return (
        # The header: the document's identity.
        Rule("L43-1", DOC, f"count(h:templateId[@root='{template}']) = 1",
             f"Элемент ClinicalDocument должен содержать один элемент templateId с @root = «{template}» "
             "(вид 43)"),
        Rule("L43-2", DOC, f"count(h:code[@code='3'][@codeSystem='{_NSI_1522}'][normalize-space(@displayName)]) = 1",
             f"Элемент ClinicalDocument/code должен иметь @code = «3» по НСИ {_NSI_1522} (вид документа "
             "«Направление…») и непустой @displayName"),
        # The body: a structured body with the package's sections, each coded, titled and with its narrative.
        Rule("L43-3", DOC, "count(h:component/h:structuredBody) = 1",
             "Элемент ClinicalDocument/component должен содержать structuredBody (СЭМД уровня 3)"),
        Rule("L43-4", BODY, "count(h:component/h:section[h:code/@code='SCOPORG']) = 1",
             "Элемент structuredBody должен содержать одну секцию SCOPORG «Цель направления и медицинская "
             "организация, куда направлен»"),
        Rule("L43-5", f"{SECTION}[h:code/@code='SCOPORG']",
             "count(h:entry/h:act) = 1 and count(h:entry/h:act[@classCode='ACT'][@moodCode='RQO']) = 1",
             "Секция SCOPORG должна содержать один элемент entry/act с @classCode = «ACT» и @moodCode = «RQO»"),
        Rule("L43-6", REQUEST,
             f"h:code[@codeSystem='{_NSI_1009}'][{_any_of('@code', _REFERRAL_TYPES)}][normalize-space(@displayName)]",
             f"Элемент SCOPORG/entry/act/code должен указывать вид направления по НСИ {_NSI_1009} "
             f"(@code из {', '.join(_REFERRAL_TYPES)}) с непустым @displayName"),
        Rule("L43-7", REQUEST,
             "count(h:performer) = 1 and count(h:performer/h:assignedEntity/h:representedOrganization"
             f"[count(h:id) = 1][starts-with(h:id/@root, '{_FRMO_PREFIX}')][count(h:name) = 1][normalize-space(h:name)]"
             "[count(h:addr) <= 1]) = 1",
             "Элемент SCOPORG/entry/act должен содержать один performer/assignedEntity/representedOrganization — "
             f"медицинскую организацию, куда направлен пациент: один id с @root по ФРМО ({_FRMO_PREFIX}…), один "
             "непустой name, не более одного addr"),
        Rule("L43-8", REQUEST, "count(h:effectiveTime[string-length(@value) >= 8]) = 1",
             "Элемент SCOPORG/entry/act должен содержать один effectiveTime с датой выдачи направления (@value)"),
        Rule("L43-9", f"{REQUEST}/h:entryRelationship",
             "@typeCode='COMP' and count(h:act[@classCode='ACT'][@moodCode='RQO']) = 1 and "
             f"h:act/h:code[@codeSystem='{_NSI_1070}'][normalize-space(@code)][normalize-space(@displayName)]",
             "Элемент SCOPORG/entry/act/entryRelationship (запрошенная услуга) должен иметь @typeCode = «COMP» "
             f"и содержать один act (@classCode «ACT», @moodCode «RQO») с code по НСИ {_NSI_1070}, @code и "
             "@displayName"),
        Rule("L43-10", BODY, "count(h:component/h:section[h:code/@code='DGN']) = 1",
             "Элемент structuredBody должен содержать одну секцию DGN «Диагнозы»"),
        Rule("L43-11", f"{SECTION}[h:code/@code='DGN']",
             f"count({_MAIN_DIAGNOSIS}) = 1 and {_MAIN_DIAGNOSIS}[count(h:value) = 1]"
             f"/h:value[@xsi:type='CD'][@codeSystem='{_NSI_1005}'][normalize-space(@code)]",
             f"Секция DGN должна содержать один основной диагноз: entry/act (code по НСИ {_NSI_1076})/"
             f"entryRelationship[@typeCode «COMP»]/observation с code = «1» по НСИ {_NSI_1077} и одним value "
             f"(xsi:type CD) с кодом МКБ-10 по НСИ {_NSI_1005}"),
        Rule("L43-12", f"{SECTION}[h:code/@code='DGN']/h:entry/h:act",
             "@classCode='ACT' and @moodCode='EVN' and not(h:entryRelationship/h:observation"
             "[not(@classCode='OBS') or not(@moodCode='EVN')])",
             "Элемент DGN/entry/act должен иметь @classCode «ACT» и @moodCode «EVN», его entryRelationship/"
             "observation — @classCode «OBS» и @moodCode «EVN» (диагноз установлен, а не запрошен)"),
        Rule("L43-13", BODY, "count(h:component/h:section[h:code/@code='ELU'][normalize-space(h:text)]) = 1",
             "Элемент structuredBody должен содержать одну секцию ELU «Описание и обоснование направления» "
             "с непустым text"),
        Rule("L43-14", SECTION,
             f"h:code[@codeSystem='{_NSI_197}'] and normalize-space(h:title) and normalize-space(h:text)",
             f"Элемент section должен содержать code по НСИ {_NSI_197}, непустой title и непустой text"),
        Rule("L43-15", SECTION, _any_of("h:code/@code", _SECTIONS_43),
             "Элемент section вида 43 может быть только одной из секций пакета 1.2.643.5.1.13.13.15.31.2: "
             + ", ".join(_SECTIONS_43)),
    )


@dataclass(frozen=True)
class RuleSet:
    kind: int
    rules: tuple[Rule, ...]
    # A kind of the same guide generation whose official Schematron's header rules (У1-…) hold for this kind too,
    # minus its kind-specific ones (replaced by ours): the header is not re-invented rule by rule.
    header_from: int | None = None
    header_skip: frozenset[str] = frozenset()

    def header_rule(self, rule_id: str) -> bool:
        return rule_id.startswith("У1-") and rule_id not in self.header_skip


# Kind 43's header is that of 41/42 Ред. 3 (same generation, same header builder); 42's У1-10 (its templateId) and
# У1-12 (its document type 2) are the two header rules that name kind 42 itself: L43-1 and L43-2 stand for them.
RULES: dict[int, RuleSet] = {43: RuleSet(43, _rules_43(), header_from=42, header_skip=frozenset({"У1-10", "У1-12"}))}


def rules_for(kind_code: int) -> RuleSet | None:
    """The kind's own rule set, or None when we have none for it."""
    return RULES.get(kind_code)


def validate(rules: tuple[Rule, ...], root: etree._Element) -> list[Failure]:
    """Every rule on every element its context selects; the document order of contexts is kept per rule."""
    failures = []
    for rule in rules:
        for node in root.xpath(rule.context, namespaces=_NS):
            if not node.xpath(f"boolean({rule.test})", namespaces=_NS):
                failures.append(Failure(rule.id, f"{rule.id}. {rule.message}", path(node)))
    return failures


def path(node: etree._Element) -> str:
    """The element's path as Saxon's path() gives it once the CDA namespace is stripped: /ClinicalDocument[1]/…"""
    steps = []
    while node is not None:
        qname = etree.QName(node)
        name = qname.localname if qname.namespace == CDA else f"Q{{{qname.namespace or ''}}}{qname.localname}"
        parent = node.getparent()
        index = 1 if parent is None else 1 + sum(1 for s in node.itersiblings(preceding=True) if s.tag == node.tag)
        steps.append(f"{name}[{index}]")
        node = parent
    return "/" + "/".join(reversed(steps))
