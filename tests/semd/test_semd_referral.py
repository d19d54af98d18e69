"""Kind 43 «Направление на госпитализацию, восстановительное лечение, обследование, консультацию» from referrals.

Pack 43 has the XSD only: the official ФЛК checks the format and nothing else. Our own logical control for 43
(``iemk_etl.flk.logical``: its body rules, plus kind 42's header rules — the same guide generation) runs in its place,
so ``findings`` below is XSD + those rules; tests/flk/test_logical_43.py holds every rule to a mutation.
"""

import dataclasses

import pytest
from lxml import etree

from iemk_etl import semd
from iemk_etl.devtools import clinical
from iemk_etl.devtools.generate import Generator
from iemk_etl.flk import logical, validation
from iemk_etl.semd.model import REFERRAL_KINDS

from semd_helpers import DAY, H, built, cases, findings, mutate, remove, rename, rules, setter

KIND = 43
# What kind 42's rules say of any kind-43 document: its own templateId (У1-10), its document type 2 (У1-12) and
# its AMBS section (У2-1). Every other header rule of 42 must pass.
KIND_42_SPECIFICS = ["У1-10", "У1-12", "У2-1"]

SCOPORG = "/h:ClinicalDocument/h:component/h:structuredBody/h:component/h:section[h:code/@code='SCOPORG']"
DGN = "/h:ClinicalDocument/h:component/h:structuredBody/h:component/h:section[h:code/@code='DGN']"
ELU = "/h:ClinicalDocument/h:component/h:structuredBody/h:component/h:section[h:code/@code='ELU']"
REQUEST = f"{SCOPORG}/h:entry/h:act[@classCode='ACT'][@moodCode='RQO']"


def test_every_generated_case_passes_xsd_and_keeps_the_referral_structure(packs_dir):
    made = cases(KIND, count=6)
    referrals = [c.subject for c in made]
    assert {r.kind for r in referrals} == set(REFERRAL_KINDS)
    assert any(r.service_code is None and r.target.address is None for r in referrals)     # sparse
    assert {r.urgent for r in referrals if r.kind == "hospitalisation"} == {True, False}
    for case in made:
        data = semd.build(case)
        assert findings(KIND, data, packs_dir) == [], case.context.local_uid


def test_the_header_passes_kind_42_header_rules(packs_dir):
    # What the logical control of 43 borrows: 42's header rules, but for the two that name kind 42 itself.
    assert logical.rules_for(KIND).header_skip == {r for r in KIND_42_SPECIFICS if r.startswith("У1-")}
    for case in cases(KIND, count=6):
        found = sorted(f.rule for f in findings(42, semd.build(case), packs_dir))
        assert found == KIND_42_SPECIFICS, case.context.local_uid


def test_the_referral_data_is_in_the_document():
    case = cases(KIND, count=1)[0]
    ref = case.subject
    root = etree.fromstring(semd.build(case))

    def values(xpath: str) -> list[str]:
        return [str(v) for v in root.xpath(xpath, namespaces=H)]

    assert values("h:id/@extension") == [case.context.local_uid]
    assert values("h:recordTarget/h:patientRole/h:id[@root='1.2.643.100.3']/@extension") == [case.context.patient.snils]
    assert values(f"{REQUEST}/h:effectiveTime/@value") == [f"{ref.issued_at:%Y%m%d}"]
    target = f"{REQUEST}/h:performer/h:assignedEntity/h:representedOrganization"
    assert values(f"{target}/h:id/@root") == [ref.target.oid]
    assert values(f"{target}/h:name/text()") == [ref.target.name]
    assert values(f"{target}/h:addr/h:streetAddressLine/text()") == [ref.target.address.text]
    assert values(f"{DGN}//h:observation/h:value/@code") == [ref.diagnosis.icd10]
    assert values(f"{DGN}/h:text//h:td/text()")[1] == ref.diagnosis.icd10
    assert values(f"{ELU}/h:text/h:paragraph/text()") == [ref.reason]


def test_a_target_known_by_id_and_name_only_gets_no_invented_address(packs_dir):
    sparse = next(c for c in cases(KIND, count=3) if c.subject.target.address is None)
    data = semd.build(sparse)
    entity = etree.fromstring(data).xpath(f"{REQUEST}/h:performer/h:assignedEntity/h:representedOrganization",
                                          namespaces=H)[0]
    assert [etree.QName(child).localname for child in entity] == ["id", "name"]
    assert findings(KIND, data, packs_dir) == []


@pytest.mark.parametrize(("kind", "urgent", "type_code", "type_name", "service"), [
    ("hospitalisation", False, "1", "На плановую госпитализацию", None),
    ("hospitalisation", True, "2", "На госпитализацию по экстренным показаниям", None),
    ("consultation", False, "6", "На консультацию", "B01.015.001"),
    ("lab", False, "4", "На обследование", "B03.016.004"),
    ("diagnostic", False, "4", "На обследование", "A04.10.002"),
])
def test_each_referral_kind_gives_its_1009_type_and_requested_service(packs_dir, kind, urgent, type_code, type_name,
                                                                      service):
    gen = Generator(11)
    case = gen.case(KIND, DAY, 0)
    # The target follows the diagnosis: hypertension with heart involvement asks for a cardiologist, the
    # biochemistry panel and an echocardiography.
    ref = gen.referral(DAY, kind, case.subject.doctor, urgent=urgent, profile=clinical.PROFILES["I11.9"])
    data = semd.build(dataclasses.replace(case, subject=ref))
    root = etree.fromstring(data)
    code = root.xpath(f"{REQUEST}/h:code", namespaces=H)[0]
    assert (code.get("code"), code.get("displayName")) == (type_code, type_name)
    assert ref.service_code == service
    requested = root.xpath(f"{REQUEST}/h:entryRelationship/h:act/h:code", namespaces=H)
    assert [(c.get("code"), c.get("displayName")) for c in requested] == ([(service, ref.target_service)]
                                                                          if service else [])
    narrative = " ".join(root.xpath(f"{SCOPORG}/h:text//text()", namespaces=H))
    assert type_name in narrative and ref.target_service in narrative
    assert findings(KIND, data, packs_dir) == []


def _header_rules(data, packs_dir):
    return rules(42, data, packs_dir)


def _structure_rules(data, packs_dir):
    assert validation.validate_format(KIND, data, packs_dir=packs_dir, require_packs=True) == []  # the XSD cannot
    return rules(KIND, data, packs_dir)                                                             # see a body error


def _format_rules(data, packs_dir):
    return rules(KIND, data, packs_dir)


@pytest.mark.parametrize(("xpath", "change", "check", "rule"), [
    pytest.param("/h:ClinicalDocument/h:recordTarget/h:patientRole/h:patient/h:name/h:given[2]", remove,
                 _header_rules, "У1-1", id="header"),
    pytest.param(f"{REQUEST}/h:code", setter("codeSystem", "1.2.643.5.1.13.13.11.1007"), _structure_rules, "L43-6",
                 id="body"),
    pytest.param("/h:ClinicalDocument/h:title", rename("titel"), _format_rules, "SCHEMAV_ELEMENT_CONTENT", id="xsd"),
])
def test_a_broken_document_gets_the_rule_that_it_breaks(packs_dir, xpath, change, check, rule):
    data = mutate(built(KIND), xpath, change)
    assert rule in check(data, packs_dir)
