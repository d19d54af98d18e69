"""Kind 43's own logical control (flk.logical): its pack has no Schematron, so ours runs where it would.

Every rule has a mutation of a generated referral that passes the XSD and breaks that rule and no other — kind 42's
header rules, which 43 borrows, included; a generated 43 gets no finding at all.
"""

import copy
import shutil

import pytest
from lxml import etree

from iemk_etl import semd
from iemk_etl.flk import logical, packs, validation

from semd_helpers import H, cases, findings, mutate, remove, rules, setter

KIND = 43
BODY = "/h:ClinicalDocument/h:component/h:structuredBody"
SECTION = f"{BODY}/h:component/h:section"
REQUEST = f"{SECTION}[h:code/@code='SCOPORG']/h:entry/h:act"
DGN = f"{SECTION}[h:code/@code='DGN']"


def _with_service() -> bytes:
    """A referral that asks for a service (an entryRelationship under the request)."""
    return semd.build(next(c for c in cases(KIND, count=6) if c.subject.service_code))


def _non_xml_body(structured: etree._Element) -> None:
    body = etree.SubElement(structured.getparent(), f"{{{H['h']}}}nonXMLBody")
    etree.SubElement(body, f"{{{H['h']}}}text", mediaType="text/plain").text = "Направление"
    structured.getparent().remove(structured)


def _empty_text(node: etree._Element) -> None:
    node.text = ""


def _extra_section(component: etree._Element) -> None:
    twin = copy.deepcopy(component)
    twin.find("h:section/h:code", H).set("code", "COMPLAINTS")
    component.addnext(twin)


# (rule, XPath, change, document): the mutation that breaks exactly that rule.
MUTATIONS = [
    ("L43-1", "/h:ClinicalDocument/h:templateId", setter("root", "1.2.643.5.1.13.2.7.5.1.3.9"), None),
    ("L43-2", "/h:ClinicalDocument/h:code", setter("code", "5"), None),
    # Kind 42's У1-47 says it too; L43-3 is what says it where 42's pack is absent (the test then runs without it).
    ("L43-3", BODY, _non_xml_body, None),
    ("L43-4", f"{BODY}/h:component[h:section/h:code/@code='SCOPORG']", remove, None),
    ("L43-5", REQUEST, setter("moodCode", "INT"), None),
    ("L43-6", f"{REQUEST}/h:code", setter("codeSystem", "1.2.643.5.1.13.13.11.1007"), None),
    ("L43-7", f"{REQUEST}/h:performer/h:assignedEntity/h:representedOrganization/h:id", setter("root", "1.2.3.4"),
     None),
    ("L43-8", f"{REQUEST}/h:effectiveTime", remove, None),
    ("L43-9", f"{REQUEST}/h:entryRelationship", setter("typeCode", "REFR"), _with_service),
    ("L43-10", f"{BODY}/h:component[h:section/h:code/@code='DGN']", remove, None),
    ("L43-11", f"{DGN}//h:observation/h:value", setter("codeSystem", "1.2.643.5.1.13.13.11.9999"), None),
    ("L43-12", f"{DGN}/h:entry/h:act", setter("moodCode", "INT"), None),
    ("L43-13", f"{BODY}/h:component[h:section/h:code/@code='ELU']", remove, None),
    ("L43-14", f"{SECTION}[h:code/@code='SCOPORG']/h:title", _empty_text, None),
    ("L43-15", f"{BODY}/h:component[h:section/h:code/@code='ELU']", _extra_section, None),
]


_SAID_BY_KIND_42_TOO = {"L43-3": "У1-47"}


def _only_the_43_pack(packs_dir, tmp_path):
    shutil.copytree(packs_dir / "43", tmp_path / "43")
    return tmp_path


def test_every_rule_has_its_mutation():
    assert [m[0] for m in MUTATIONS] == [r.id for r in logical.rules_for(KIND).rules]


def test_generated_referrals_get_no_finding(packs_dir):
    for case in cases(KIND, count=6):
        assert findings(KIND, semd.build(case), packs_dir) == [], case.context.local_uid


@pytest.mark.parametrize(("rule", "xpath", "change", "source"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_mutation_breaks_exactly_its_rule(packs_dir, tmp_path, rule, xpath, change, source):
    data = mutate(source() if source else semd.build(cases(KIND, count=1)[0]), xpath, change)
    assert validation.validate_format(KIND, data, packs_dir=packs_dir, require_packs=True) == []  # XSD-valid
    if rule in _SAID_BY_KIND_42_TOO:
        assert rules(KIND, data, packs_dir) == {rule, _SAID_BY_KIND_42_TOO[rule]}
        packs_dir = _only_the_43_pack(packs_dir, tmp_path)
    found = findings(KIND, data, packs_dir)
    assert [f.rule for f in found] == [rule]
    [finding] = found
    assert finding.stage == "logic" and finding.kind.code == "FLK_SCHEMATRON"
    assert finding.message.startswith(f"{rule}. Элемент") or finding.message.startswith(f"{rule}. Секция")
    assert finding.location.startswith("/ClinicalDocument[1]")


def test_the_finding_names_the_element_it_is_about(packs_dir):
    data = mutate(semd.build(cases(KIND, count=1)[0]), f"{REQUEST}/h:code", setter("code", "99"))
    [finding] = findings(KIND, data, packs_dir)
    root = etree.fromstring(data)
    [act] = root.xpath(REQUEST, namespaces=H)
    assert finding.location == logical.path(act)
    assert finding.location.startswith("/ClinicalDocument[1]/component[1]/structuredBody[1]/component[")
    assert finding.location.endswith("]/section[1]/entry[1]/act[1]")
    assert "SCOPORG/entry/act/code" in finding.message and "1.2.643.5.1.13.13.11.1009" in finding.message
    assert finding.text().startswith("Ошибка логического контроля (Schematron): L43-6.")


def test_the_header_is_held_to_kind_42s_header_rules(packs_dir):
    data = mutate(semd.build(cases(KIND, count=1)[0]), "/h:ClinicalDocument/h:realmCode", setter("code", "EN"))
    found = findings(KIND, data, packs_dir)
    assert [f.rule for f in found] == ["У1-8"]
    assert found[0].location == "/ClinicalDocument[1]/realmCode[1]"


def test_own_rules_wait_for_format_control(packs_dir):
    data = mutate(semd.build(cases(KIND, count=1)[0]), f"{BODY}/h:component[h:section/h:code/@code='DGN']", remove)
    data = mutate(data, "/h:ClinicalDocument/h:title", lambda n: setattr(n, "tag", f"{{{H['h']}}}titel"))
    assert {f.stage for f in findings(KIND, data, packs_dir)} == {"format"}


def test_own_rules_can_be_switched_off_with_logical_control(packs_dir):
    data = mutate(semd.build(cases(KIND, count=1)[0]), f"{REQUEST}/h:effectiveTime", remove)
    assert validation.validate(KIND, data, packs_dir=packs_dir, require_packs=True, logical=False) == []


def test_without_kind_42s_pack_the_own_rules_still_run_and_the_header_gap_is_said(tmp_path, packs_dir, caplog):
    only_43 = _only_the_43_pack(packs_dir, tmp_path)
    packs._warned.discard((KIND, "logical-header"))
    data = mutate(semd.build(cases(KIND, count=1)[0]), "/h:ClinicalDocument/h:realmCode", setter("code", "EN"))
    data = mutate(data, f"{REQUEST}/h:effectiveTime", remove)
    with caplog.at_level("WARNING"):
        assert rules(KIND, data, only_43) == {"L43-8"}
    assert "header is NOT checked" in caplog.text


def test_an_official_schematron_for_43_replaces_the_own_rules(tmp_path, packs_dir):
    (_only_the_43_pack(packs_dir, tmp_path) / "43" / "43.sch").write_text(
        '<schema xmlns="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt2"><pattern>'
        '<rule context="ClinicalDocument"><assert test="false()">O1-1. Официальное правило</assert></rule>'
        "</pattern></schema>", encoding="utf-8")
    data = mutate(semd.build(cases(KIND, count=1)[0]), f"{REQUEST}/h:effectiveTime", remove)
    assert rules(KIND, data, tmp_path) == {"O1-1"}


def test_the_emulator_refuses_a_broken_referral_with_the_rule(fresh_dsn, packs_dir):
    from iemk_etl.emulator.service import EmulatorConfig, IemkEmulator
    from iemk_etl.emulator.store import Store, Submission

    emulator = IemkEmulator(EmulatorConfig(packs_dir=packs_dir, logical_control=True), Store(fresh_dsn))
    data = mutate(semd.build(cases(KIND, count=1)[0]), f"{BODY}/h:component[h:section/h:code/@code='DGN']", remove)
    sub = Submission("urn:uuid:s-43", "http://cb", "x^y", "P-1^^^&1.2&ISO", KIND, None, data)
    emulator.store.record_message(sub.message_id, "repository", "a", "c", "accepted")
    [error] = emulator.process(sub).errors
    assert error.error_code == "XDS.CDA.ValidationError"
    assert error.code_context.startswith("Ошибка валидации Schematron: L43-10. Элемент structuredBody")
    assert "Путь: /ClinicalDocument[1]/component[1]/structuredBody[1]" in error.code_context
