"""Kind 119 «Протокол консультации» built from consultations: passes the official ФЛК (XSD + 119.sch)."""

import dataclasses

import pytest
from lxml import etree

from iemk_etl import semd
from iemk_etl.semd import FormingError
from iemk_etl.semd.model import Case

from semd_helpers import H, built, cases, findings, mutate, remove, rules, setter

KIND = 119
REF = "/h:ClinicalDocument/h:participant[@typeCode='REF']/h:associatedEntity"
RESCONS = "//h:section[h:code/@code='RESCONS']"


def _xpath(root: etree._Element, path: str) -> list:
    return root.xpath(path, namespaces=H)


def _referred() -> Case:
    return next(c for c in cases(KIND, count=2) if c.subject.referred_from)


def _not_referred() -> Case:
    return next(c for c in cases(KIND, count=2) if c.subject.referral_id is None)


def test_every_generated_case_passes_xsd_and_schematron(packs_dir):
    made = cases(KIND, count=6)
    shapes = {(c.subject.referral_id is not None, c.subject.anamnesis is None) for c in made}
    assert shapes == {(True, False), (True, True), (False, False), (False, True)}   # referral × rich/sparse
    for case in made:
        assert findings(KIND, semd.build(case), packs_dir) == [], case.context.local_uid


def test_the_consultation_data_is_in_the_document():
    case = _referred()
    svc = case.subject
    root = etree.fromstring(semd.build(case))
    assert _xpath(root, "string(h:id/@extension)") == case.context.local_uid
    main = _xpath(root, "//h:section[h:code/@code='DOCINFO']/h:entry/h:observation[h:code/@code='809']/h:value/@code")
    assert main == [d.icd10 for d in svc.diagnoses]
    assert _xpath(root, f"{RESCONS}/h:entry/h:observation[h:code/@code='806']/h:value/text()") == [svc.conclusion]
    assert _xpath(root, f"{RESCONS}/h:component/h:section[h:code/@code='REGIME']//h:value/text()") == \
        [svc.recommendations]
    assert _xpath(root, "//h:section[h:code/@code='ANAM']//h:value/text()") == [svc.anamnesis]
    performer = _xpath(root, "//h:serviceEvent/h:performer/h:assignedEntity/h:id[1]/@extension")
    assert performer == [svc.performer.local_id]
    encounter = _xpath(root, "//h:componentOf/h:encompassingEncounter/h:id/@extension")
    assert encounter == [svc.case_id, svc.case_id]


def test_the_referring_department_and_doctor_are_the_ref_participant(packs_dir):
    case = _referred()
    svc = case.subject
    data = semd.build(case)
    root = etree.fromstring(data)
    assert _xpath(root, f"{REF}/h:id[1]/@extension") == [svc.referred_by.local_id]
    assert _xpath(root, f"{REF}/h:id[@root='1.2.643.100.3']/@extension") == [svc.referred_by.snils]
    assert _xpath(root, f"{REF}/h:code/@code") == [svc.referred_by.position_code]
    assert _xpath(root, f"string({REF}/h:associatedPerson/h:name/h:family)") == svc.referred_by.family
    assert _xpath(root, f"{REF}/h:scopingOrganization/h:id/@root") == [svc.referred_from.oid]
    assert _xpath(root, f"string({REF}/h:scopingOrganization/h:name)").startswith(svc.referred_from.name)
    assert _xpath(root, "/h:ClinicalDocument/h:inFulfillmentOf/h:order/h:id/@extension") == [svc.referral_id]
    assert _xpath(root, "/h:ClinicalDocument/h:inFulfillmentOf/h:order/h:code/@code") == ["3"]
    linked = _xpath(root, "//h:section[h:code/@code='LINKDOCS']//h:externalDocument/h:id/@extension")
    assert linked == [svc.referral_id]
    place = _xpath(root, "//h:observation[h:code/@code='801']/h:value/@displayName")
    assert place == ["Стационар"]
    assert findings(KIND, data, packs_dir) == []


def test_a_consultation_without_referral_data_still_passes(packs_dir):
    case = _not_referred()
    data = semd.build(case)
    root = etree.fromstring(data)
    assert _xpath(root, "/h:ClinicalDocument/h:participant[@typeCode='REF']") == []
    assert _xpath(root, "/h:ClinicalDocument/h:inFulfillmentOf") == []
    assert _xpath(root, "//h:section[h:code/@code='LINKDOCS']") == []
    # the case is the consultation itself when the МИС links it to no stay
    assert _xpath(root, "//h:encompassingEncounter/h:id[1]/@extension") == [case.subject.local_id]
    assert _xpath(root, "//h:encompassingEncounter/h:id[2]/@nullFlavor") == ["NI"]
    assert findings(KIND, data, packs_dir) == []


def test_a_referral_whose_department_is_unknown_keeps_the_doctor(packs_dir):
    case = _referred()
    case = dataclasses.replace(case, subject=dataclasses.replace(case.subject, referred_from=None))
    data = semd.build(case)
    root = etree.fromstring(data)
    assert _xpath(root, f"{REF}/h:id[1]/@extension") == [case.subject.referred_by.local_id]
    assert _xpath(root, f"{REF}/h:scopingOrganization") == []
    assert _xpath(root, "//h:encompassingEncounter/h:id[2]/@root")[0].endswith(".17")
    assert findings(KIND, data, packs_dir) == []


def test_sparse_data_takes_the_null_forms(packs_dir):
    case = cases(KIND, count=6)[5]
    assert case.subject.anamnesis is None and case.subject.life_anamnesis is None
    data = semd.build(case)
    root = etree.fromstring(data)
    assert _xpath(root, "//h:section[h:code/@code='ANAM']//h:value/@nullFlavor") == ["NI"]
    assert _xpath(root, "string(//h:section[h:code/@code='LANAM']/h:text)").strip() == "Нет данных"
    assert _xpath(root, f"{RESCONS}/h:component/h:section[h:code/@code='REGIME']") == []
    assert _xpath(root, "//h:observation[h:code/@code='804']/h:value/@code") == [str(case.subject.condition)]
    assert findings(KIND, data, packs_dir) == []


@pytest.mark.parametrize(("change", "message"), [
    ({"conclusion": None}, "заключение"),
    ({"complaints": None, "findings": None}, "жалобы и объективные данные"),
    ({"diagnoses": ()}, "диагноз"),
    ({"condition": 9}, "степень тяжести"),
    ({"condition": None}, "не указано состояние пациента"),
])
def test_missing_mandatory_data_is_refused_with_a_clear_error(change, message):
    case = _referred()
    bad = dataclasses.replace(case, subject=dataclasses.replace(case.subject, **change))
    with pytest.raises(FormingError, match=message):
        semd.build(bad)


def test_a_patient_without_snils_is_refused():
    case = _referred()
    patient = dataclasses.replace(case.context.patient, snils=None)
    bad = dataclasses.replace(case, context=dataclasses.replace(case.context, patient=patient))
    with pytest.raises(FormingError, match="СНИЛС"):
        semd.build(bad)


def _before(tag: str):
    def change(node: etree._Element) -> None:
        sibling = node.getparent().find(f"{{urn:hl7-org:v3}}{tag}")
        sibling.addprevious(node)
    return change


@pytest.mark.parametrize(("xpath", "change", "rule"), [
    pytest.param("/h:ClinicalDocument/h:effectiveTime", setter("value", "20261125114500+0300"), "У1-15", id="header"),
    pytest.param(f"{REF}", setter("classCode", "ASSIGNED"), "У1-28", id="header-ref"),
    pytest.param(f"{RESCONS}/h:entry[h:observation/h:code/@code='804']", remove, "У3-14", id="body"),
    pytest.param("/h:ClinicalDocument/h:setId", _before("languageCode"), "SCHEMAV_ELEMENT_CONTENT", id="xsd"),
])
def test_a_broken_document_gets_the_rule_that_it_breaks(packs_dir, xpath, change, rule):
    data = mutate(built(KIND), xpath, change)
    assert rules(KIND, data, packs_dir) == {rule}
