import logging

import pytest

from iemk_etl.flk import validation
from iemk_etl.protocol import xml

from cda_factory import document


def test_demo_document_passes_the_official_xsd(packs_dir):
    assert validation.validate_format(42, document(), packs_dir=packs_dir, require_packs=True) == []


def test_missing_code_fails_the_official_xsd_naming_the_element(packs_dir):
    findings = validation.validate_format(42, document(omit=("code",)), packs_dir=packs_dir, require_packs=True)
    assert [f.stage for f in findings] == ["format"]
    assert "{urn:hl7-org:v3}code" in findings[0].message
    assert findings[0].text().startswith("Ошибка форматного контроля (XSD)")
    assert findings[0].location.startswith("строка ")


def test_without_a_pack_builtin_checks_run_and_warn_once(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    good = validation.validate_format(42, document(), packs_dir=tmp_path, require_packs=False)
    bad = validation.validate_format(42, document(omit=("code", "setId")), packs_dir=tmp_path, require_packs=False)
    validation.validate_format(42, document(), packs_dir=tmp_path, require_packs=False)
    assert good == []
    assert [f.rule for f in bad] == ["B5", "B8"]
    assert "ClinicalDocument/code" in bad[0].message
    warnings = [r for r in caplog.records if "official format control is SKIPPED" in r.message]
    assert len(warnings) <= 1  # once per kind and process (another test may have warned already)


def test_builtin_checks_find_a_malformed_snils(tmp_path):
    findings = validation.validate_format(42, document(snils="1122334459"), packs_dir=tmp_path, require_packs=False)
    assert [f.rule for f in findings] == ["B16"]


def test_required_packs_turn_a_missing_pack_into_an_error(tmp_path):
    findings = validation.validate_format(42, document(), packs_dir=tmp_path, require_packs=True)
    assert [(f.stage, f.rule) for f in findings] == [("policy", "IEMK_REQUIRE_PACKS")]
    assert "42" in findings[0].message


def test_not_xml_is_a_parse_finding(tmp_path):
    findings = validation.validate_format(42, b"<ClinicalDocument>", packs_dir=tmp_path, require_packs=False)
    assert findings[0].stage == "parse"


def test_entities_and_doctype_are_refused():
    xxe = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>'
    with pytest.raises(xml.UnsafeXmlError):
        xml.parse(xxe)
