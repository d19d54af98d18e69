"""НСИ control: codes against the demo dictionary set (a folder, no database), then the same in the pipeline (the
dictionaries in a fresh database) and in the emulator (XDSDictionaryValidationError)."""

import datetime as dt
import hashlib
import logging

import pytest
from lxml import etree

from iemk_etl import errors, semd
from iemk_etl.devtools.fnsi_standin import DEMO_DIR
from iemk_etl.devtools.generate import Generator
from iemk_etl.flk import nsi_control, validation
from iemk_etl.protocol import snils, xml
from iemk_etl.semd.header import NS, SNILS_ROOT

ALL_KINDS = (41, 42, 43, 119, 174, 186)
H = {"h": NS}
DOC_CODE = "/ClinicalDocument[1]/code[1]"
CONFIDENTIALITY = "/ClinicalDocument[1]/confidentialityCode[1]"
PATIENT_ID = "/ClinicalDocument[1]/recordTarget[1]/patientRole[1]/id[{}]"


@pytest.fixture(scope="module")
def demo():
    return nsi_control.FolderSource(DEMO_DIR)


def generated(kind: int, n: int = 0) -> bytes:
    return semd.build(Generator(7).case(kind, dt.date(2026, 11, 25), n))


def mutated(kind: int, section: bool = True) -> tuple[bytes, dict[str, str]]:
    """A generated document with four bad elements: rule id → the bad element's path."""
    root = xml.parse(generated(kind))
    code = root.find("h:code", H)
    code.set("displayName", code.get("displayName") + " (изменено)")             # NSI-NAME
    conf = root.find("h:confidentialityCode", H)
    conf.set("codeSystemVersion", "9.99")                                          # NSI-VERSION
    patient_ids = root.findall("h:recordTarget/h:patientRole/h:id", H)
    position = next(i for i, e in enumerate(patient_ids, 1) if e.get("root") == SNILS_ROOT)
    number = patient_ids[position - 1].get("extension")
    wrong = number[:9] + ("00" if number[9:] != "00" else "01")
    assert not snils.is_valid(wrong)
    patient_ids[position - 1].set("extension", wrong)                              # SNILS-CHECK
    expected = {"NSI-NAME": DOC_CODE, "NSI-VERSION": CONFIDENTIALITY, "SNILS-CHECK": PATIENT_ID.format(position)}
    if section:     # NSI-CODE: a section code absent from 99.2.197 (the packs' Schematrons catch it first)
        code_el = root.find("h:component/h:structuredBody/h:component/h:section/h:code", H)
        code_el.set("code", "NOSUCHSECTION")
        expected["NSI-CODE"] = nsi_control.element_path(code_el)
    return etree.tostring(root), expected


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_generated_documents_pass_the_demo_dictionaries(kind, demo):
    for n in range(5):
        findings = validation.validate_nsi(generated(kind, n), demo, require=False)
        assert findings == [], [f.text() for f in findings]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_one_finding_per_bad_element(kind, demo):
    data, expected = mutated(kind)
    findings = validation.validate_nsi(data, demo, require=False)
    assert sorted((f.rule, f.location) for f in findings) == sorted(expected.items())
    assert {f.stage for f in findings} == {"nsi"}
    assert all(f.kind is errors.FLK_NSI for f in findings)
    by_rule = {f.rule: f for f in findings}
    assert "справочнике [" in by_rule["NSI-NAME"].message            # says the name expected
    assert "OID [1.2.643.5.1.13.13.99.2.285]" in by_rule["NSI-VERSION"].message
    assert "[9.99] неизвестна" in by_rule["NSI-VERSION"].message
    assert "[NOSUCHSECTION] отсутствует в справочнике OID [1.2.643.5.1.13.13.99.2.197] версии [4.2]" in \
        by_rule["NSI-CODE"].message
    assert "не валидно контрольное число" in by_rule["SNILS-CHECK"].message


def test_an_author_snils_is_checked_too(demo):
    root = xml.parse(generated(42))
    author_id = root.xpath(f"/h:ClinicalDocument/h:author/h:assignedAuthor/h:id[@root='{SNILS_ROOT}']",
                           namespaces=H)[0]
    author_id.set("extension", "11223344500")
    [finding] = validation.validate_nsi(etree.tostring(root), demo, require=False)
    assert finding.rule == "SNILS-CHECK" and "assignedAuthor/id" in finding.message


def test_a_dictionary_not_held_warns_once_or_with_require_refuses(tmp_path, caplog):
    nsi_control._warned.clear()
    only = nsi_control.DictionarySet(d for d in nsi_control.FolderSource(DEMO_DIR)._loaded._by_key.values()
                                     if d.oid != "1.2.643.5.1.13.13.99.2.285")
    data = generated(42)
    with caplog.at_level(logging.WARNING):
        assert validation.validate_nsi(data, only, require=False) == []
        assert validation.validate_nsi(data, only, require=False) == []
    warned = [r for r in caplog.records if "1.2.643.5.1.13.13.99.2.285 is not held" in r.getMessage()]
    assert len(warned) == 1
    [finding] = validation.validate_nsi(data, only, require=True)
    assert (finding.stage, finding.rule, finding.location) == ("policy", "IEMK_REQUIRE_NSI", CONFIDENTIALITY)
    assert finding.kind.holds


def test_no_dictionaries_at_all_warns_and_does_not_refuse(caplog):
    nsi_control._warned.clear()
    with caplog.at_level(logging.WARNING):
        assert validation.validate_nsi(generated(186), nsi_control.DictionarySet([]), require=False) == []
    assert any("No НСИ dictionaries are held" in r.getMessage() for r in caplog.records)


def test_nsi_control_runs_after_the_schematron_in_flk(packs_dir, demo):
    data, _ = mutated(42)        # the unknown section code is the Schematron's finding: НСИ control waits
    findings = validation.validate(42, data, packs_dir=packs_dir, require_packs=True, logical=True, nsi=demo)
    assert {f.stage for f in findings} == {"logic"}
    data, expected = mutated(42, section=False)
    findings = validation.validate(42, data, packs_dir=packs_dir, require_packs=True, logical=True, nsi=demo)
    assert sorted((f.rule, f.location) for f in findings) == sorted(expected.items())
    assert validation.validate(42, generated(42), packs_dir=packs_dir, require_packs=True, logical=True,
                               nsi=demo) == []


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_the_pipeline_refuses_with_the_dictionaries_of_the_database(kind, fresh_dsn):
    import dataclasses

    from iemk_etl import settings as settings_mod
    from iemk_etl.pipeline import nsi
    from iemk_etl.pipeline import validate as validate_step
    from iemk_etl.store import db

    with db.connect(fresh_dsn, autocommit=True) as conn:
        nsi.load_path(conn, DEMO_DIR)
        source = nsi.StoreSource(conn)
        data, expected = mutated(kind)
        findings = validation.validate_nsi(data, source, require=False)
        assert sorted((f.rule, f.location) for f in findings) == sorted(expected.items())
        assert validation.validate_nsi(generated(kind), source, require=False) == []
        data, _ = mutated(kind, section=False)      # the pack's XSD of 186 knows the section codes itself
        settings = dataclasses.replace(settings_mod.load(), logical_control=False)
        problem = validate_step._problem(kind, data, hashlib.sha256(data).hexdigest(), settings, None, source)
        assert problem is not None and problem[0] is errors.FLK_NSI
        assert problem[1].startswith("Ошибка контроля НСИ:")


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_the_emulator_refuses_with_xds_dictionary_validation_error(kind, fresh_dsn):
    from iemk_etl.emulator.service import EmulatorConfig, IemkEmulator
    from iemk_etl.emulator.store import Store, Submission

    emulator = IemkEmulator(EmulatorConfig(nsi_dir=DEMO_DIR, logical_control=False), Store(fresh_dsn))
    data, _ = mutated(kind)
    sub = Submission("urn:uuid:s-1", "http://cb", "x^y", "P-1^^^&1.2&ISO", kind, None, data)
    emulator.store.record_message(sub.message_id, "repository", "a", "c", "accepted")
    response = emulator.process(sub)
    [error] = response.errors
    assert response.status.endswith("Failure")
    assert error.error_code == "XDSDictionaryValidationError"
    assert "Путь: /ClinicalDocument[1]" in error.code_context


def test_the_emulator_answers_a_patient_snils_in_its_patient_step(fresh_dsn):
    from iemk_etl.emulator.service import EmulatorConfig, IemkEmulator
    from iemk_etl.emulator.store import Store, Submission

    emulator = IemkEmulator(EmulatorConfig(nsi_dir=DEMO_DIR, logical_control=False), Store(fresh_dsn))
    root = xml.parse(generated(42))
    patient = root.xpath(f"/h:ClinicalDocument/h:recordTarget/h:patientRole/h:id[@root='{SNILS_ROOT}']",
                         namespaces=H)[0]
    patient.set("extension", "11223344596")
    cda_id = root.find("h:id", H)
    local = root.xpath("string(/h:ClinicalDocument/h:recordTarget/h:patientRole/h:id[1]/@extension)", namespaces=H)
    sub = Submission("urn:uuid:s-2", "http://cb", f"{cda_id.get('root')}^{cda_id.get('extension')}",
                     f"{local}^^^&1.2&ISO", 42, None, etree.tostring(root))
    emulator.store.record_message(sub.message_id, "repository", "a", "c", "accepted")
    [error] = emulator.process(sub).errors
    assert error.error_code == "XDSPatientRegistrationError"
    assert "СНИЛС [11223344596] не валидно контрольное число" in error.code_context


def test_the_validate_command_takes_a_dictionary_folder(tmp_path, monkeypatch, capsys):
    from iemk_etl import cli

    monkeypatch.setenv("IEMK_SOURCE_DSN", "postgresql://nobody@127.0.0.1:1/none")   # --nsi: never touched
    monkeypatch.delenv("IEMK_SEMD_PACKS", raising=False)
    bad, good = tmp_path / "bad.xml", tmp_path / "good.xml"
    bad.write_bytes(mutated(42, section=False)[0])
    good.write_bytes(generated(42))
    assert cli.main(["documents", "validate", "--nsi", str(DEMO_DIR), str(good)]) == 0
    assert cli.main(["documents", "validate", "--nsi", str(DEMO_DIR), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "[nsi NSI-NAME]" in out and "[nsi NSI-VERSION]" in out and "[nsi SNILS-CHECK]" in out
    assert "замечаний: 3" in out
    # without a database and without --nsi the control is skipped, said on stderr, and the file is judged on the rest
    assert cli.main(["documents", "validate", str(bad)]) == 0
    assert "НСИ control skipped" in capsys.readouterr().err


def test_the_pipeline_step_ends_a_document_with_a_bad_code_and_lets_the_rest_go(fresh_dsn):
    """Through ``pipeline.validate`` itself: a seeded МИС, the demo dictionaries loaded into its database, one
    document's displayName spoiled before extraction: that one ends INVALID with FLK_NSI, every other goes on."""
    import psycopg

    from iemk_etl import settings
    from iemk_etl.devtools import demo_data
    from iemk_etl.pipeline import extract, nsi
    from iemk_etl.pipeline import validate as validate_step
    from iemk_etl.store import integration

    end = dt.date(2026, 9, 10)
    gkb = demo_data.DEMO_MO[0][0]
    period = (dt.datetime(2026, 9, 1, tzinfo=demo_data.MSK), dt.datetime(2026, 9, 10, tzinfo=demo_data.MSK))
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=6, days=3, seed=1, end=end, fail_share=0.0, unsigned_share=0.0)
        integration.set_enabled(conn, gkb, True)
        nsi.load_path(conn, DEMO_DIR)
        document_id, cda = conn.execute(
            "SELECT id, cda FROM mis.semd_document WHERE mo_oid = %s AND signed_at >= %s AND signed_at < %s"
            " ORDER BY id LIMIT 1", (gkb, *period)).fetchone()
        root = xml.parse(bytes(cda))
        root.find("h:code", H).set("displayName", "Не то название")
        conn.execute("UPDATE mis.semd_document SET cda = %s WHERE id = %s", (etree.tostring(root), document_id))
        extracted = extract.extract(conn, gkb, *period)
        ready = validate_step.validate(conn, extracted, settings.load())
        state, code = conn.execute("SELECT state, error_code FROM iemk.ledger WHERE document_id = %s",
                                   (document_id,)).fetchone()
        error = conn.execute("SELECT status FROM mis.semd_document WHERE id = %s", (document_id,)).fetchone()[0]
        assert (state, code) == ("invalid", errors.FLK_NSI.code)
        assert "Ошибка контроля НСИ: Элемент code" in error and "[Не то название]" in error
        assert len(ready) == len(extracted) - 1 > 0
