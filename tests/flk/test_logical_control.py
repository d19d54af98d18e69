"""Logical control: the official Schematrons compiled to XSLT 3.0 and run by Saxon, after the XSD."""

import re
import shutil
from pathlib import Path

import pytest

from iemk_etl.flk import schematron, validation

from cda_factory import minimal_document as document

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "sch"


@pytest.fixture
def fake_pack(tmp_path):
    (tmp_path / "99").mkdir()
    shutil.copy(VECTORS / "semantics-99.schematron", tmp_path / "99" / "99.sch")  # a made-up pack
    return tmp_path / "99" / "99.sch"


def test_schematron_semantics(fake_pack):
    doc = b'<doc xmlns="urn:hl7-org:v3" xmlns:identity="urn:hl7-ru:identity"><b x="2"/><b x="1"/><b/></doc>'
    failures = schematron.validate(fake_pack, doc)
    rules = sorted((f.rule, f.kind) for f in failures)
    # T1-1 for the b with x=2; T1-2 only for the b without @x (first matching rule wins);
    # T2-1 (three b, XPath 3.1 array); T2-2 cannot be evaluated on several b: reported, the rest goes on;
    # T2-3: the extension namespace is kept while the CDA default namespace is stripped.
    assert rules == [("T1-1", "assert"), ("T1-2", "report"), ("T2-1", "assert"), ("T2-2", "error"),
                     ("T2-3", "assert")]
    located = {f.rule: f.location for f in failures}
    assert validation.schematron_path(located["T1-1"]) == "/doc[1]/b[1]"


def test_schematron_passes_a_good_document(fake_pack):
    doc = b'<doc xmlns="urn:hl7-org:v3" xmlns:identity="urn:hl7-ru:identity"><b x="1"/><identity:IdentityDoc/></doc>'
    assert schematron.validate(fake_pack, doc) == []


def test_logical_control_runs_after_the_xsd_with_the_official_pack(packs_dir):
    findings = validation.validate(42, document(), packs_dir=packs_dir, require_packs=True, logical=True)
    assert findings and {f.stage for f in findings} == {"logic"}
    by_rule = {f.rule: f for f in findings}
    assert "У2-1" in by_rule and "AMBS" in by_rule["У2-1"].message
    assert by_rule["У1-18"].location == "/ClinicalDocument[1]/recordTarget[1]/patientRole[1]"
    assert findings[0].text().startswith("Ошибка логического контроля (Schematron): У")


def test_logical_control_waits_for_format_control(packs_dir):
    findings = validation.validate(42, document(omit=("code",)), packs_dir=packs_dir, require_packs=True, logical=True)
    assert {f.stage for f in findings} == {"format"}


def test_logical_control_can_be_switched_off(packs_dir):
    assert validation.validate(42, document(), packs_dir=packs_dir, require_packs=True, logical=False) == []


@pytest.mark.parametrize("kind", [41, 42, 119, 174, 186])
def test_every_official_schematron_compiles_and_runs(packs_dir, kind):
    failures = schematron.validate(packs_dir / str(kind) / f"{kind}.sch", document())
    assert failures                       # a minimal kind-42 header is far from any kind's full rules
    for f in failures:
        assert re.fullmatch(r"(У|Main|Core|Extra)\d+-\d+", f.rule), f.rule
        assert f.message.startswith(f.rule) and f.location.startswith("/Q{}ClinicalDocument[1]")


def test_the_emulator_answers_a_schematron_failure_like_the_real_service(fresh_dsn, packs_dir):
    from iemk_etl.emulator.service import EmulatorConfig, IemkEmulator
    from iemk_etl.emulator.store import Store, Submission

    emulator = IemkEmulator(EmulatorConfig(packs_dir=packs_dir, logical_control=True), Store(fresh_dsn))
    sub = Submission("urn:uuid:s-1", "http://cb", "x^y", "P-1^^^&1.2&ISO", 42, None, document())
    emulator.store.record_message(sub.message_id, "repository", "a", "c", "accepted")
    [error] = emulator.process(sub).errors
    assert error.error_code == "XDS.CDA.ValidationError"
    assert error.code_context.startswith("Ошибка валидации Schematron: У1-2.")
    assert "Путь: /ClinicalDocument[1]/recordTarget[1]/patientRole[1]/providerOrganization[1]" in error.code_context


def test_the_validate_command_prints_findings_and_fails(tmp_path, packs_dir):
    import os
    import subprocess
    import sys

    good_format, broken = tmp_path / "a.xml", tmp_path / "b.xml"
    good_format.write_bytes(document())
    broken.write_bytes(document(omit=("code",)))
    exe = str(Path(sys.executable).parent / "iemk-etl")
    env = {**os.environ, "IEMK_SEMD_PACKS": str(packs_dir)}
    full = subprocess.run([exe, "documents", "validate", good_format, broken], capture_output=True, text=True, env=env)
    assert full.returncode == 1
    assert "[logic У2-1]" in full.stdout and "[format SCHEMAV_ELEMENT_CONTENT]" in full.stdout
    only_format = subprocess.run([exe, "documents", "validate", "--no-logic", good_format], capture_output=True,
                                 text=True, env=env)
    assert only_format.returncode == 0 and "замечаний: 0" in only_format.stdout
