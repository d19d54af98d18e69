"""Kind 186 «Протокол лабораторного исследования» built from lab studies: passes the official ФЛК."""

import dataclasses

import pytest
from lxml import etree

from iemk_etl import semd
from iemk_etl.devtools.generate import Generator, staff_pool
from iemk_etl.semd import FormingError, codes
from iemk_etl.semd.model import LabResult

from semd_helpers import H, built, cases, findings, mutate, remove, rules, setter

KIND = 186
RESLAB = "//h:section[h:code/@code='RESLAB']"
TESTS = RESLAB + "//h:organizer[@classCode='BATTERY']/h:component/h:observation[h:code/@code!='833']"


def _doc(case) -> etree._Element:
    return etree.fromstring(semd.build(case))


def _with_results(case, *results: LabResult):
    return dataclasses.replace(case, subject=dataclasses.replace(case.subject, lab_results=results))


def _test_obs(root: etree._Element, code: str) -> etree._Element:
    (obs,) = root.xpath(TESTS + "[h:code/@code=$code]", namespaces=H, code=code)
    return obs


def test_every_generated_case_passes_xsd_and_schematron(packs_dir):
    made = cases(KIND, count=6)
    panels = {c.subject.code for c in made}
    assert panels == {p.service_code for p in codes.LAB_PANELS}
    assert any(len(c.subject.lab_results) == 1 and c.subject.lab_results[0].interpretation is None for c in made)
    for case in made:
        assert findings(KIND, semd.build(case), packs_dir) == [], case.context.local_uid


def test_the_study_data_is_in_the_document():
    case = cases(KIND, count=1)[0]
    service, specimen = case.subject, case.subject.specimen
    root = _doc(case)
    assert root.xpath("string(h:id/@extension)", namespaces=H) == case.context.local_uid
    assert root.xpath(TESTS + "/h:code/@code", namespaces=H) == [r.test_code for r in service.lab_results]
    assert root.xpath(TESTS + "/h:value/@value", namespaces=H) == [r.value for r in service.lab_results]
    barcodes = root.xpath("//h:specimenRole/h:id/@extension", namespaces=H)
    assert set(barcodes) == {specimen.barcode} and len(barcodes) == 1 + len(service.lab_results)
    material = root.xpath("//h:section[h:code/@code='SPECIMENS']//h:specimenPlayingEntity/h:code/@code",
                          namespaces=H)
    assert material == [specimen.material_code]
    ordered = root.xpath(RESLAB + "//h:observation[h:code/@code='833']/h:value/@code", namespaces=H)
    assert ordered == [service.code]
    assert root.xpath("string(//h:act[h:code/@code='900']/h:text)", namespaces=H) == service.conclusion
    referral = root.xpath("h:inFulfillmentOf/h:order/h:id[1]/@extension", namespaces=H)
    assert referral == [service.referral_id]


def test_every_analyte_has_its_value_unit_and_reference_range():
    case = next(c for c in cases(KIND, count=3) if c.subject.code == "B03.016.002")
    root = _doc(case)
    units = {row[1]: row for row in codes.LAB_UNIT_ROWS}
    assert len(case.subject.lab_results) >= 5
    for result in case.subject.lab_results:
        obs = _test_obs(root, result.test_code)
        code, _, ucum = units[result.unit]
        (value,) = obs.xpath("h:value[@xsi:type='PQ']", namespaces=H)
        assert (value.get("value"), value.get("unit")) == (result.value, ucum)
        assert value.xpath("h:translation/@code", namespaces=H) == [code]
        bounds = obs.xpath("h:referenceRange/h:observationRange/h:value/*/@value", namespaces=H)
        assert bounds == [result.low, result.high]


def test_an_out_of_range_value_is_flagged_high_or_low(packs_dir):
    case = next(c for c in cases(KIND, count=12) if any(r.interpretation == "H" for r in c.subject.lab_results))
    high = next(r for r in case.subject.lab_results if r.interpretation == "H")
    assert float(high.value) > float(high.high)
    other = next(r for r in case.subject.lab_results if r.test_code != high.test_code)
    low = dataclasses.replace(other, value=f"{float(other.low) * 0.8:g}", interpretation="L")
    flagged = _with_results(case, high, low)
    data = semd.build(flagged)
    root = etree.fromstring(data)
    for result in (high, low):
        obs = _test_obs(root, result.test_code)
        assert obs.xpath("h:interpretationCode/@code", namespaces=H) == [result.interpretation]
    comment = _test_obs(root, high.test_code).xpath("h:entryRelationship/h:act[h:code/@code='10000']/h:text/text()",
                                                    namespaces=H)
    assert comment == [high.comment]
    assert findings(KIND, data, packs_dir) == []


def test_a_qualitative_result_goes_as_text_without_unit_or_range(packs_dir):
    case = cases(KIND, count=1)[0]
    smear = LabResult("1017540", "Микроциты, обнаружение в крови методом световой микроскопии", "не обнаружены",
                      interpretation="N")
    data = semd.build(_with_results(case, case.subject.lab_results[0], smear))
    obs = _test_obs(etree.fromstring(data), smear.test_code)
    assert obs.xpath("h:value[@xsi:type='ST']/text()", namespaces=H) == ["не обнаружены"]
    assert not obs.xpath("h:referenceRange | h:value/h:translation", namespaces=H)
    assert findings(KIND, data, packs_dir) == []


def test_a_one_sided_reference_range_keeps_both_bounds(packs_dir):
    case = cases(KIND, count=2)[1]
    glucose = dataclasses.replace(case.subject.lab_results[0], low=None)
    data = semd.build(_with_results(case, glucose))
    bounds = _test_obs(etree.fromstring(data), glucose.test_code).xpath(
        "h:referenceRange/h:observationRange/h:value/*", namespaces=H)
    assert [(etree.QName(b).localname, b.get("nullFlavor")) for b in bounds] == [("low", "NI"), ("high", None)]
    assert findings(KIND, data, packs_dir) == []


def test_a_unit_without_an_nsi_1358_row_is_refused_by_name():
    case = cases(KIND, count=1)[0]
    odd = dataclasses.replace(case.subject.lab_results[0], unit="мг%")
    with pytest.raises(FormingError, match="единица измерения «мг%».*НСИ 1.2.643.5.1.13.13.11.1358"):
        semd.build(_with_results(case, odd))


def test_a_study_without_its_specimen_is_refused():
    case = cases(KIND, count=1)[0]
    bare = dataclasses.replace(case, subject=dataclasses.replace(case.subject, specimen=None))
    with pytest.raises(FormingError, match="не указан исследованный биоматериал"):
        semd.build(bare)


def test_staff_ids_that_contain_one_another_still_pass_extra04(packs_dir):
    # Extra04-1 matches body staff ids against documentationOf ids as regex substrings: S-2 "is" S-201.
    case = cases(KIND, count=1)[0]
    service = case.subject
    doctor = dataclasses.replace(service.performer, local_id="S-201")
    nurse = dataclasses.replace(service.specimen.collected_by, local_id="S-2")
    odd = dataclasses.replace(service, performer=doctor,
                              specimen=dataclasses.replace(service.specimen, collected_by=nurse))
    context = dataclasses.replace(case.context, author=doctor)
    data = semd.build(dataclasses.replace(case, context=context, subject=odd))
    collector = etree.fromstring(data).xpath("//h:procedure/h:performer/h:assignedEntity", namespaces=H)[0]
    assert collector.xpath("h:assignedPerson/h:name/h:family/text()", namespaces=H) == [nurse.family]
    assert findings(KIND, data, packs_dir) == []


def test_generated_staff_ids_never_contain_one_another():
    gen = Generator(11)
    ids = [s.local_id for s in staff_pool(gen.rng, gen.mo)]
    ids += [c.subject.specimen.collected_by.local_id for c in cases(KIND, count=2)]
    assert not [(a, b) for a in ids for b in ids if a != b and a in b]


def _a_real_time(node: etree._Element) -> None:
    # The guide's XSD fixes author/time to nullFlavor="NI": the signing moment lives in the signature.
    del node.attrib["nullFlavor"]
    node.set("value", "202611251130+0300")


@pytest.mark.parametrize(("xpath", "change", "rule"), [
    pytest.param("/h:ClinicalDocument/h:informationRecipient/h:intendedRecipient/h:receivedOrganization/h:id",
                 setter("root", "1.2.643.5.1.13.13"), "Main05-1", id="header"),
    pytest.param(f"({TESTS}/h:interpretationCode)[1]", remove, "У3-4", id="body"),
    pytest.param("/h:ClinicalDocument/h:author/h:time", _a_real_time, "SCHEMAV_CVC_COMPLEX_TYPE_3_2_1", id="xsd"),
])
def test_a_broken_document_gets_the_rule_that_it_breaks(packs_dir, xpath, change, rule):
    data = mutate(built(KIND), xpath, change)
    assert rule in rules(KIND, data, packs_dir)
