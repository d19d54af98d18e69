"""НСИ control beyond codes: ОГРН/ОГРНИП and ОМС policy check digits (OGRN-CHECK, OMS-CHECK) and codes whose
dictionary row has ended before the document's date (NSI-EXPIRED)."""

import dataclasses
import datetime as dt

import pytest
from lxml import etree

from iemk_etl import semd
from iemk_etl.devtools.fnsi_standin import DEMO_DIR
from iemk_etl.devtools.generate import Generator
from iemk_etl.flk import nsi_control, validation
from iemk_etl.nsi.model import Column
from iemk_etl.protocol import ogrn, oms_policy, xml
from iemk_etl.semd.header import NS, RU_NS

ALL_KINDS = (41, 42, 43, 119, 174, 186)
H = {"h": NS, "identity": RU_NS["identity"]}
CONFIDENTIALITY_OID = "1.2.643.5.1.13.13.99.2.285"
CONFIDENTIALITY = "/ClinicalDocument[1]/confidentialityCode[1]"


@pytest.fixture(scope="module")
def demo():
    return nsi_control.FolderSource(DEMO_DIR)


def generated(kind: int, n: int = 0) -> bytes:
    return semd.build(Generator(7).case(kind, dt.date(2026, 11, 25), n))


def test_ogrn_control_digit():
    assert ogrn.complete("102773900000") == "1027739000002"        # 102773900000 mod 11 = 2
    assert ogrn.is_valid("1027700132195") and ogrn.is_valid("304500116000157")
    assert ogrn.is_valid("1037739010891") and ogrn.is_valid("1117746358608")   # docs/nsi.md's references
    assert not ogrn.is_valid("1027700132194")
    assert not ogrn.is_valid("304500116000157", length=13)        # an ОГРНИП where an ОГРН is due
    assert not ogrn.is_valid("10277001321") and not ogrn.is_valid("102770013219x")


def test_oms_policy_control_digit_is_hl7_mod10():
    # The worked examples of the Mod10 scheme in HL7 v2.5 / ISO/HL7 27931 (leading zeros change nothing).
    for body, digit in (("12345", "5"), ("401", "0"), ("9999", "4"), ("99999999", "8")):
        assert oms_policy.control_digit(body.zfill(15)) == digit
    number = oms_policy.complete("770000123456789")
    assert oms_policy.is_valid(number)
    assert not oms_policy.is_valid(number[:15] + str((int(number[15]) + 1) % 10))
    assert not oms_policy.is_valid(number[:15])


def test_generated_policies_and_ogrn_are_valid():
    gen = Generator(11)
    for kind in ALL_KINDS:
        for n in range(6):
            root = xml.parse(semd.build(gen.case(kind, dt.date(2026, 11, 25), n)))
            assert nsi_control.check_identifiers(root) == []


def _break(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_one_finding_per_bad_identifier(kind, demo):
    root = xml.parse(generated(kind))
    expected = []
    for el, number in list(nsi_control._policy_numbers(root)):
        if el.tag == f"{{{NS}}}id":
            el.set("extension", _break(number))
        else:
            el.text = _break(number)
        expected.append(("OMS-CHECK", nsi_control.element_path(el)))
    for el in root.iter(f"{{{RU_NS['identity']}}}Ogrn"):
        el.text = _break(el.text)
        expected.append(("OGRN-CHECK", nsi_control.element_path(el)))
    assert len(expected) == (3 if kind in (119, 174, 186) else 2)      # the patient's, the payer's, the МО's ОГРН
    findings = validation.validate_nsi(etree.tostring(root), demo, require=False)
    assert sorted((f.rule, f.location) for f in findings) == sorted(expected)
    assert {f.stage for f in findings} == {"nsi"}
    assert all("не валидно контрольное число" in f.message for f in findings)
    assert any("полиса ОМС единого образца [" in f.message for f in findings)


def test_only_the_unified_policy_is_checked(demo):
    root = xml.parse(generated(119))
    kind = root.find("h:recordTarget/h:patientRole/identity:InsurancePolicy/identity:InsurancePolicyType", H)
    number = root.find("h:recordTarget/h:patientRole/identity:InsurancePolicy/identity:Number", H)
    kind.set("code", "1")                   # a policy of the old form: series and number, no check digit defined
    number.text = "7700 123456"
    assert nsi_control.check_oms_policy(root) == []


def _with_end_date(source: nsi_control.FolderSource, code: str, end: str) -> nsi_control.DictionarySet:
    """The demo set with 99.2.285's row ``code`` ending on ``end`` (a DATA_END column, as 1002 carries)."""
    dictionaries = []
    for d in source._loaded._by_key.values():
        if d.oid == CONFIDENTIALITY_OID:
            rows = tuple({**r, "DATA_END": end if d.code(r) == code else None} for r in d.rows)
            d = dataclasses.replace(d, rows=rows, columns=(*d.columns, Column("DATA_END", "DATE")))
        dictionaries.append(d)
    return nsi_control.DictionarySet(dictionaries)


def test_a_code_ended_before_the_document_is_expired(demo):
    data = generated(42)
    code = xml.parse(data).find("h:confidentialityCode", H).get("code")
    [finding] = validation.validate_nsi(data, _with_end_date(demo, code, "01.09.2023"), require=False)
    assert (finding.rule, finding.location) == ("NSI-EXPIRED", CONFIDENTIALITY)
    assert "недействительна с 01.09.2023" in finding.message
    # Ending after the document's date, or on an unreadable date, is no finding.
    assert validation.validate_nsi(data, _with_end_date(demo, code, "2099-01-01"), require=False) == []
    assert validation.validate_nsi(data, _with_end_date(demo, code, "когда-нибудь"), require=False) == []


def test_the_demo_dictionaries_carry_end_dates(demo):
    # 1002 (DATA_END) and 1070 (DATEOUT): the held dictionaries name the column; 1002 v9.6 has ended rows.
    assert any(demo.end_dates("1.2.643.5.1.13.13.11.1002", "9.6").values())


def test_the_database_source_reads_end_dates(demo, fresh_dsn):
    from iemk_etl.pipeline import nsi
    from iemk_etl.store import db
    from iemk_etl.store import nsi as store

    source = _with_end_date(demo, "N", "01.09.2023")
    [version] = source.versions(CONFIDENTIALITY_OID)
    with db.connect(fresh_dsn, autocommit=True) as conn:
        store.save(conn, source._by_key[(CONFIDENTIALITY_OID, version)], "test")
        held = nsi.StoreSource(conn)
        assert held.end_dates(CONFIDENTIALITY_OID, version) == {"N": dt.date(2023, 9, 1)}


def test_the_emulator_refuses_a_bad_ogrn_as_a_dictionary_error(fresh_dsn):
    from iemk_etl.emulator.service import EmulatorConfig, IemkEmulator
    from iemk_etl.emulator.store import Store, Submission

    emulator = IemkEmulator(EmulatorConfig(nsi_dir=DEMO_DIR, logical_control=False), Store(fresh_dsn))
    root = xml.parse(generated(119))
    element = next(root.iter(f"{{{RU_NS['identity']}}}Ogrn"))     # the МО's, in providerOrganization
    element.text = _break(element.text)
    sub = Submission("urn:uuid:s-3", "http://cb", "x^y", "P-1^^^&1.2&ISO", 119, None, etree.tostring(root))
    emulator.store.record_message(sub.message_id, "repository", "a", "c", "accepted")
    [error] = emulator.process(sub).errors
    assert error.error_code == "XDSDictionaryValidationError"
    assert f"ОГРН [{element.text}] не валидно контрольное число" in error.code_context
