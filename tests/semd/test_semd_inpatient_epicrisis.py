"""Kind 41 «Эпикриз в стационаре выписной» built per department stay: passes the official ФЛК."""

import dataclasses
import datetime as dt

import pytest
from lxml import etree

from iemk_etl import semd
from iemk_etl.devtools.generate import Generator
from iemk_etl.semd import FormingError, codes
from iemk_etl.semd.header import ts
from iemk_etl.semd.model import Case

from semd_helpers import DAY, H, built, cases, findings, mutate, rules, setter

KIND = 41
ENCOUNTER = "/h:ClinicalDocument/h:componentOf/h:encompassingEncounter"
HOSP = "//h:section[h:code/@code='HOSP']"


def _xpath(data: bytes, path: str) -> list:
    return etree.fromstring(data).xpath(path, namespaces=H)


def _stay_case(case: Case, index: int) -> Case:
    """The document of another stay of the same hospitalisation, as the МИС forms it: by that stay's doctor."""
    stay = case.subject.stays[index]
    ctx = dataclasses.replace(case.context, local_uid=f"{case.context.local_uid}-{index + 1}", author=stay.doctor,
                              legal_authenticator=None, created_at=stay.ended_at + dt.timedelta(hours=1))
    return dataclasses.replace(case, context=ctx, stay_index=index)


def test_every_generated_case_passes_xsd_and_schematron(packs_dir):
    made = cases(KIND, count=6)
    assert {len(c.subject.stays) for c in made} == {1, 2, 3}
    assert any(c.subject.stays[c.stay_index].transferred for c in made)
    assert any(c.subject.stays[c.stay_index].treatment is None for c in made)     # a sparse one
    for case in made:
        data = semd.build(case)
        assert findings(KIND, data, packs_dir) == [], case.context.local_uid


def test_the_stay_data_is_in_the_document():
    case = cases(KIND, count=1)[0]
    hosp, stay = case.subject, case.subject.stays[case.stay_index]
    data = semd.build(case)
    assert _xpath(data, "string(h:id/@extension)") == case.context.local_uid
    assert _xpath(data, f"{ENCOUNTER}/h:id/@extension") == [hosp.local_id, hosp.local_id]
    assert _xpath(data, f"{ENCOUNTER}/h:location/h:healthCareFacility/h:id/@root") == [stay.department.oid]
    assert _xpath(data, f"{ENCOUNTER}/h:effectiveTime/*/@value") == [ts(stay.started_at), ts(stay.ended_at)]
    final = _xpath(data, f"{HOSP}/h:entry/h:act[h:code/@code='3']/h:entryRelationship/h:observation/h:value/@code")
    assert final == [d.icd10 for d in stay.diagnoses]
    admission = _xpath(data, f"{HOSP}/h:entry/h:act[h:code/@code='1']//h:value/@code")
    assert admission == [d.icd10 for d in stay.admission_diagnoses]
    assert _xpath(data, f"{HOSP}/h:entry/h:observation/h:code/@code") == [str(stay.result)]
    severity = _xpath(data, "//h:section[h:code/@code='STATEDIS']/h:entry/h:observation/h:value/@code")
    assert severity == [str(stay.discharge_state)]
    treatment = _xpath(data, "//h:section[h:code/@code='DRUG']/h:text/h:paragraph/text()")
    assert treatment == [stay.treatment]
    services = _xpath(data, "//h:section[h:code/@code='SERVICES']/h:entry/h:act/h:code/@code")
    assert services == [s.code for s in stay.services]
    assert _xpath(data, "h:author/h:assignedAuthor/h:id[1]/@extension") == [stay.doctor.local_id]


def test_a_three_department_stay_gives_one_valid_document_per_department(packs_dir):
    case = Generator(11).case(KIND, DAY, 1)
    hosp = case.subject
    assert len(hosp.stays) == 3
    documents = [semd.build(_stay_case(case, i)) for i in range(3)]
    for stay, data in zip(hosp.stays, documents, strict=True):
        assert findings(KIND, data, packs_dir) == []
        assert _xpath(data, f"{ENCOUNTER}/h:location/h:healthCareFacility/h:id/@root") == [stay.department.oid]
        assert _xpath(data, f"{ENCOUNTER}/h:effectiveTime/*/@value") == [ts(stay.started_at), ts(stay.ended_at)]
        assert _xpath(data, f"{HOSP}/h:entry/h:encounter/h:effectiveTime/h:high/@value") == [ts(stay.ended_at)]
        assert _xpath(data, "h:author/h:assignedAuthor/h:id[1]/@extension") == [stay.doctor.local_id]
    assert len({stay.department.oid for stay in hosp.stays}) == 3
    case_ids = {tuple(_xpath(data, f"{ENCOUNTER}/h:id/@extension")) for data in documents}
    assert case_ids == {(hosp.local_id, hosp.local_id)}
    assert len({_xpath(data, "string(h:id/@extension)") for data in documents}) == 3


def test_a_transfer_and_a_discharge_show_their_own_outcome():
    case = Generator(11).case(KIND, DAY, 1)
    hosp = case.subject
    transfer, discharge = semd.build(_stay_case(case, 1)), semd.build(_stay_case(case, 2))
    disposition = f"{ENCOUNTER}/h:dischargeDispositionCode/@code"
    assert _xpath(transfer, disposition) == [codes.TRANSFERRED[0]]
    assert _xpath(discharge, disposition) == [codes.DISCHARGED[0]]
    assert _xpath(transfer, "string(h:title)") == "Переводной эпикриз"
    assert _xpath(discharge, "string(h:title)") == "Выписной эпикриз"
    outcome = f"string({HOSP}/h:text/h:table/h:tbody/h:tr[h:th='Исход пребывания в отделении']/h:td)"
    assert _xpath(transfer, outcome) == f"Перевод в другое отделение: {hosp.stays[2].department.name}"
    assert _xpath(discharge, outcome).startswith("Выписан ")


def test_an_unrecorded_result_comes_from_the_hospitalisation_outcome_or_is_refused():
    case = Generator(11).case(KIND, DAY, 2)     # sparse: one department, discharged
    hosp = case.subject
    unrecorded = dataclasses.replace(hosp, stays=(dataclasses.replace(hosp.stays[0], result=None),))
    improved = dataclasses.replace(case, subject=dataclasses.replace(unrecorded, outcome="Улучшение состояния"))
    result = f"{HOSP}/h:entry/h:observation/h:code/@code"
    assert _xpath(semd.build(improved), result) == ["2"]
    silent = dataclasses.replace(case, subject=dataclasses.replace(unrecorded, outcome=None))
    with pytest.raises(FormingError, match="не указан результат пребывания в отделении"):
        semd.build(silent)


@pytest.mark.parametrize(("patient_change", "message"), [
    pytest.param({"snils": None}, "СНИЛС", id="no-snils"),
    pytest.param({"oms_policy": None}, "полис ОМС", id="no-policy"),
])
def test_a_patient_without_the_mandatory_ids_is_refused_clearly(patient_change, message):
    case = cases(KIND, count=1)[0]
    patient = dataclasses.replace(case.context.patient, **patient_change)
    bad = dataclasses.replace(case, context=dataclasses.replace(case.context, patient=patient))
    with pytest.raises(FormingError, match=message):
        semd.build(bad)


def _before_previous(node: etree._Element) -> None:
    node.getprevious().addprevious(node)


@pytest.mark.parametrize(("xpath", "change", "rule"), [
    pytest.param("/h:ClinicalDocument/h:typeId", setter("extension", "POCD_MT000040"), "У1-9", id="header"),
    pytest.param(f"{HOSP}/h:entry/h:act[h:code/@code='3']/h:entryRelationship[1]/h:observation/h:code",
                 setter("code", "3"), "У3-3", id="body"),
    pytest.param("/h:ClinicalDocument/h:versionNumber", _before_previous, "SCHEMAV_ELEMENT_CONTENT", id="xsd"),
])
def test_a_broken_document_gets_the_rule_that_it_breaks(packs_dir, xpath, change, rule):
    data = mutate(built(KIND), xpath, change)
    assert rule in rules(KIND, data, packs_dir)
