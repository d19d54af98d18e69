"""Kind 42 «Эпикриз по законченному случаю амбулаторный» built from visits: passes the official ФЛК."""

import base64
import dataclasses

import pytest
from lxml import etree

from iemk_etl import semd
from iemk_etl.semd import pdf
from iemk_etl.semd.model import SignedReport

from semd_helpers import H, built, cases, findings, mutate, remove, rename, rules, setter

KIND = 42


def test_every_generated_case_passes_xsd_and_schematron(packs_dir):
    made = cases(KIND, count=6)
    assert any(c.subject.report for c in made) and any(c.subject.complaints is None for c in made)
    for case in made:
        data = semd.build(case)
        assert findings(KIND, data, packs_dir) == [], case.context.local_uid


def test_the_visit_data_is_in_the_document():
    case = cases(KIND, count=1)[0]
    root = etree.fromstring(semd.build(case))
    visit = case.subject
    assert root.xpath("string(h:id/@extension)", namespaces=H) == case.context.local_uid
    main = root.xpath("//h:section[h:code/@code='AMBS']/h:entry/h:encounter/h:entryRelationship"
                      "[@typeCode='REFR']/h:act/h:code/@code", namespaces=H)
    assert main == [visit.diagnoses[0].icd10]
    complaints = root.xpath("//h:observation[h:code/@code='835']/h:value/text()", namespaces=H)
    assert complaints == [visit.complaints]
    snils = root.xpath("h:recordTarget/h:patientRole/h:id[@root='1.2.643.100.3']/@extension", namespaces=H)
    assert snils == [case.context.patient.snils]


def test_a_signed_report_travels_as_pdf_inside_the_document(packs_dir):
    case = next(c for c in cases(KIND, count=3) if c.subject.report)
    data = semd.build(case)
    media = etree.fromstring(data).xpath("//h:observationMedia/h:value", namespaces=H)
    assert [m.get("mediaType") for m in media] == ["application/pdf"]
    assert base64.b64decode(media[0].text) == case.subject.report.content
    assert findings(KIND, data, packs_dir) == []


def test_a_doctor_outside_any_department_still_makes_a_valid_document(packs_dir):
    case = cases(KIND, count=1)[0]
    doctor = dataclasses.replace(case.subject.doctor, department=None)
    lone = dataclasses.replace(case, subject=dataclasses.replace(case.subject, doctor=doctor))
    data = semd.build(lone)
    assert etree.fromstring(data).xpath("//h:healthCareFacility/h:id/@nullFlavor", namespaces=H) == ["UNK"]
    assert findings(KIND, data, packs_dir) == []


def test_a_zipped_report_is_refused_with_a_clear_error():
    case = next(c for c in cases(KIND, count=3) if c.subject.report)
    zipped = SignedReport("Протокол", "protocol.zip", b"PK\x03\x04rest-of-zip", case.subject.report.signed_at)
    bad = dataclasses.replace(case, subject=dataclasses.replace(case.subject, report=zipped))
    with pytest.raises(pdf.NotPdfError, match=r"формате \.zip не поддерживается"):
        semd.build(bad)


@pytest.mark.parametrize(("xpath", "change", "rule"), [
    pytest.param("/h:ClinicalDocument/h:typeId", setter("extension", "POCD_MT000040"), "У1-9", id="header"),
    pytest.param("//h:section[h:code/@code='AMBS']/h:entry/h:encounter/h:entryRelationship[@typeCode='REFR']",
                 remove, "У3-1", id="body"),
    pytest.param("/h:ClinicalDocument/h:title", rename("titel"), "SCHEMAV_ELEMENT_CONTENT", id="xsd"),
])
def test_a_broken_document_gets_the_rule_that_it_breaks(packs_dir, xpath, change, rule):
    data = mutate(built(KIND), xpath, change)
    assert rule in rules(KIND, data, packs_dir)
