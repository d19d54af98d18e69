"""Kind 174 «Протокол инструментального исследования» built from instrumental studies: passes the official ФЛК."""

import dataclasses

import pytest
from lxml import etree

from iemk_etl import semd
from iemk_etl.semd import codes

from semd_helpers import H, built, cases, findings, mutate, remove, rules, setter

KIND = 174
ECG, ULTRASOUND = "A05.10.006", "A04.16.001"
RESINFO = "//h:section[h:code/@code='RESINFO']"


def _root(case) -> etree._Element:
    return etree.fromstring(semd.build(case))


def _value(root: etree._Element, field: str) -> list[str]:
    return root.xpath(f"{RESINFO}/h:entry/h:observation[h:code/@code='{field}']/h:value/text()", namespaces=H)


def test_every_generated_case_passes_xsd_and_schematron(packs_dir):
    made = cases(KIND, count=6)
    studies = {c.subject.code for c in made}
    assert studies == {ECG, ULTRASOUND}
    assert any(c.subject.referred_by for c in made) and any(c.subject.referred_by is None for c in made)
    assert any(not c.subject.diagnoses for c in made)
    for case in made:
        data = semd.build(case)
        assert findings(KIND, data, packs_dir) == [], (case.context.local_uid, case.subject.code)


def test_the_study_data_is_in_the_document():
    case = cases(KIND, count=1)[0]
    study = case.subject
    root = _root(case)
    assert root.xpath("string(h:id/@extension)", namespaces=H) == case.context.local_uid
    fsidi = root.xpath("//h:section[h:code/@code='DOCINFO']/h:entry/h:act/h:code", namespaces=H)
    assert [(c.get("code"), c.get("codeSystem")) for c in fsidi] == [
        (codes.FSIDI_BY_SERVICE[study.code][0], codes.FSIDI.oid)]
    service = root.xpath("//h:section[h:code/@code='SERVICES']/h:entry/h:act/h:code/@code", namespaces=H)
    assert service == [study.code]
    icd = root.xpath("//h:section[h:code/@code='DOCINFO']/h:entry/h:observation[h:code/@code='838']/h:value/@code",
                     namespaces=H)
    assert icd == [study.diagnoses[0].icd10]
    protocol = root.xpath("//h:section[h:code/@code='RESINFO']//h:observation[h:code/@code='8024']/h:value/text()",
                          namespaces=H)
    assert protocol == [study.local_id]          # «Номер протокола инструментального исследования», not nullFlavor
    performer = root.xpath("h:documentationOf/h:serviceEvent/h:performer/h:assignedEntity/h:id[2]/@extension",
                           namespaces=H)
    assert performer == [study.performer.snils]
    referrer = root.xpath("h:participant[@typeCode='REF']/h:associatedEntity/h:id[2]/@extension", namespaces=H)
    assert referrer == [study.referred_by.snils]
    order = root.xpath("h:inFulfillmentOf/h:order/h:id[1]/@extension", namespaces=H)
    assert order == [study.referral_id]


@pytest.mark.parametrize("variant", [0, 1], ids=["ecg", "ultrasound"])
def test_findings_and_conclusion_land_in_resinfo(variant):
    case = cases(KIND, count=2)[variant]
    root = _root(case)
    assert _value(root, "1805") == [case.subject.findings]
    assert _value(root, "1806") == [case.subject.conclusion]
    assert _value(root, "807") == [case.subject.recommendations]
    narrative = "".join(root.xpath(f"{RESINFO}/h:text//text()", namespaces=H))
    assert case.subject.findings in narrative and case.subject.conclusion in narrative


def test_a_sparse_study_omits_the_referral_and_a_missing_diagnosis_is_null():
    made = cases(KIND, count=6)
    sparse = made[5]
    assert sparse.subject.referred_by is None and not sparse.subject.diagnoses
    root = _root(sparse)
    assert root.xpath("h:participant[@typeCode='REF'] | h:inFulfillmentOf", namespaces=H) == []
    assert root.xpath("//h:section[h:code/@code='LINKDOCS']", namespaces=H) == []
    assert _value(root, "807") == []
    flavor = root.xpath("//h:observation[h:code/@code='838']/h:value/@nullFlavor", namespaces=H)
    assert flavor == ["NI"]


def test_no_document_carries_the_study_object():
    # 174.sch asserts both @value and @nullFlavor on OBJECTINFO's 8034: no document could satisfy it.
    for case in cases(KIND, count=6):
        root = _root(case)
        assert root.xpath("//h:section[h:code/@code='OBJECTINFO'] | //h:observation[h:code/@code='8034']",
                          namespaces=H) == []


def test_a_study_without_a_fsidi_code_is_refused_naming_the_service():
    case = cases(KIND, count=1)[0]
    unmapped = dataclasses.replace(case, subject=dataclasses.replace(
        case.subject, code="A05.23.001", name="Электроэнцефалография"))
    with pytest.raises(semd.FormingError, match=r"A05\.23\.001.*НСИ 1471"):
        semd.build(unmapped)


def test_a_study_without_a_conclusion_is_refused():
    case = cases(KIND, count=1)[0]
    bad = dataclasses.replace(case, subject=dataclasses.replace(case.subject, conclusion=" "))
    with pytest.raises(semd.FormingError, match="заключение"):
        semd.build(bad)


@pytest.mark.parametrize(("xpath", "change", "rule"), [
    pytest.param("/h:ClinicalDocument/h:informationRecipient/h:intendedRecipient/h:receivedOrganization/h:id",
                 setter("root", "1.2.643.5.1.13.13.12.2.77.7801"), "Main05-1", id="header"),
    pytest.param(f"{RESINFO}/h:entry[h:observation/h:code/@code='1806']", remove, "У3-13", id="body"),
    pytest.param("/h:ClinicalDocument/h:code", setter("code", "5"), "SCHEMAV_CVC_AU", id="xsd"),
])
def test_a_broken_document_gets_the_rule_that_it_breaks(packs_dir, xpath, change, rule):
    data = mutate(built(KIND), xpath, change)
    assert rules(KIND, data, packs_dir) == {rule}
