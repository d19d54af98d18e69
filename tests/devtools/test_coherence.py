"""Generated clinical content is coherent: a few thousand generated cases of all six kinds, checked against rules
written here independently of the generator's own tables.

- conclusions (42, 119, 41) name the coded main disease; a study (174) is one done for it; a consultant (119) is a
  specialist of it;
- texts, diagnoses and services fit age and sex: no sick-leave, smoking or hypertension for a child, no adult-only
  disease either, no therapist for a child; no pregnancy and no feminine wording for a man, nor masculine for a
  woman; no sick-leave for a pensioner;
- lab results: the range is the patient's (sex- and age-specific), the interpretation matches the value against
  it, and values fall low, normal and high, far and near;
- referrals: reason and target (bed profile, specialist, study) follow the diagnosis;
- the formed documents carry the МИС's data instead of placeholders.

The models are checked without forming; only a sample is formed (no signing), so the test takes seconds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterator

import pytest

from iemk_etl import semd
from iemk_etl.devtools.generate import Generator
from iemk_etl.semd.model import SERVICE_LAB, Case, Hospitalisation, Patient, Referral, Service, Visit

DAY = dt.date(2026, 11, 25)
KINDS = (41, 42, 43, 119, 174, 186)
PER_KIND = 500          # 3000 cases
FORMED_PER_KIND = 24

# Words a text about the disease uses (lower case), by МКБ-10 code.
DISEASE_WORDS = {
    "I10": ("гипертони", "гипертенз"), "I11.9": ("гипертони", "гипертенз"),
    "I25.1": ("ишемическ", "стенокард", "атеросклер"), "I48.0": ("фибрилляц",), "E11.9": ("сахарный диабет",),
    "G45.9": ("ишемическая атака",), "M54.5": ("спин", "люмбалг", "поясн"), "J06.9": ("инфекц", "орви"),
    "K29.7": ("гастрит",), "K80.2": ("желчнокамен", "камни желчного"),
}
CARDIAC = {"I10", "I11.9", "I25.1", "I48.0"}
CHILD_DISEASES = {"J06.9", "K29.7"}     # what the generated МО treats in a child
# What a referral or a service for the disease may target: bed profile / specialist / study (words of its name).
HOSPITAL_PROFILES = {**dict.fromkeys(CARDIAC, "кардиолог"), "G45.9": "неврол", "M54.5": "неврол",
                     "E11.9": "эндокрин", "K29.7": "гастроэнтерол", "K80.2": "хирург"}
SPECIALISTS = {**dict.fromkeys(CARDIAC, "кардиолог"), "G45.9": "невролог", "M54.5": "невролог"}
STUDIES = {**dict.fromkeys(CARDIAC, ("электрокардиограм", "эхокардиограф")), "G45.9": ("электрокардиограм",),
           "K29.7": ("брюшной полости",), "K80.2": ("брюшной полости",)}
# Textbook reference ranges of sex-dependent tests (НСИ 1080): men, women.
HEMOGLOBIN, CREATININE = "1017128", "1006477"
ADULT_RANGES = {HEMOGLOBIN: ((130, 160), (120, 140)), CREATININE: ((62, 115), (53, 97))}
CHILD_ONLY_WORDS = ("нетрудоспособ", "курит", "гипертон", "гипертенз", "беремен")
PLACEHOLDER_INSURER = "Страховая медицинская организация"


@pytest.fixture(scope="module")
def corpus() -> list[Case]:
    gen = Generator(2026)
    return [gen.case(kind, DAY, variant) for kind in KINDS for variant in range(PER_KIND)]


def age(patient: Patient, on: dt.date = DAY) -> int:
    born = patient.birth_date
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def texts(value: object) -> Iterator[str]:
    """Every string of a МИС record, recursively (people's names aside)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, tuple | list):
        for item in value:
            yield from texts(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, Patient):
        for f in dataclasses.fields(value):
            if f.name not in ("family", "given", "patronymic", "doctor", "performer", "referred_by", "collected_by"):
                yield from texts(getattr(value, f.name))


def services(case: Case) -> Iterator[Service]:
    subject = case.subject
    if isinstance(subject, Service):
        yield subject
    elif isinstance(subject, Visit):
        yield from subject.services
    elif isinstance(subject, Hospitalisation):
        for stay in subject.stays:
            yield from stay.services


def mentions(text: str | None, icd10: str) -> bool:
    return text is not None and any(w in text.lower() for w in DISEASE_WORDS[icd10])


def test_the_corpus_is_large_and_has_children_men_and_women(corpus):
    assert len(corpus) >= 3000
    patients = [c.context.patient for c in corpus]
    assert {p.sex for p in patients} == {1, 2}
    assert any(age(p) < 18 for p in patients) and any(age(p) >= 65 for p in patients)


def test_conclusions_follow_the_coded_diagnosis(corpus):
    wrong = []
    for case in corpus:
        s = case.subject
        if isinstance(s, Visit):
            if not mentions(s.conclusion, s.diagnoses[0].icd10):
                wrong.append((case.kind, s.diagnoses[0].icd10, s.conclusion))
        elif isinstance(s, Hospitalisation):
            for stay in s.stays:
                main = stay.diagnoses[0]
                if main.note and not mentions(main.note, main.icd10):
                    wrong.append((41, main.icd10, main.note))
        elif case.kind == 119:
            main = s.diagnoses[0].icd10
            if not mentions(s.conclusion, main) or SPECIALISTS.get(main, "?") not in s.name:
                wrong.append((119, main, s.name, s.conclusion))
        elif case.kind == 174 and s.diagnoses:
            main = s.diagnoses[0].icd10
            if not any(w in s.name.lower() for w in STUDIES.get(main, ("?",))):
                wrong.append((174, main, s.name))
    assert wrong == []


def test_texts_diagnoses_and_services_fit_age_and_sex(corpus):
    wrong = []
    for case in corpus:
        patient = case.context.patient
        years = age(patient)
        text = " ".join(texts(case.subject)).lower()
        codes = {d.icd10 for d in _diagnoses(case)}
        if years < 18:
            wrong += [(case.kind, "child", w) for w in CHILD_ONLY_WORDS if w in text]
            wrong += [(case.kind, "child", c) for c in codes - CHILD_DISEASES]
            wrong += [(case.kind, "child", "терапевт") for s in services(case)
                      if s.referred_by and "терапевт" in s.referred_by.position_name.lower()]
            wrong += [(case.kind, "child", "visit")] if isinstance(case.subject, Visit) else []
        if patient.sex == 1:
            wrong += [(case.kind, "man", w) for w in ("беремен", "нетрудоспособна") if w in text]
        else:
            wrong += [(case.kind, "woman", "нетрудоспособен")] if "нетрудоспособен" in text else []
        if years >= 65 and ("листок нетрудоспособности закрыт" in text or "нетрудоспособен" in text
                            or "нетрудоспособна" in text):
            wrong.append((case.kind, "pensioner", "sick-leave"))
    assert wrong == []


def _diagnoses(case: Case):
    s = case.subject
    if isinstance(s, Referral):
        return [s.diagnosis]
    if isinstance(s, Hospitalisation):
        return [d for stay in s.stays for d in stay.diagnoses]
    return [*s.diagnoses, *(d for svc in services(case) for d in svc.diagnoses)]


def test_lab_ranges_are_the_patients_and_interpretations_match(corpus):
    seen: dict[str, set[str]] = defaultdict(set)
    high_ratios: list[float] = []
    ranges: dict[tuple[str, str], set[tuple[float, float]]] = defaultdict(set)
    wrong = []
    for case in corpus:
        patient = case.context.patient
        group = "child" if age(patient) < 18 else "man" if patient.sex == 1 else "woman"
        for svc in services(case):
            if svc.type != SERVICE_LAB:
                continue
            for r in svc.lab_results:
                if r.low is None:
                    assert r.interpretation is None
                    continue
                value, low, high = float(r.value), float(r.low), float(r.high)
                expected = "L" if value < low else "H" if value > high else "N"
                if r.interpretation != expected:
                    wrong.append((r.test_code, r.value, r.low, r.high, r.interpretation))
                if (r.interpretation != "N") != (r.comment is not None):
                    wrong.append((r.test_code, "comment", r.interpretation, r.comment))
                seen[r.test_code].add(expected)
                ranges[r.test_code, group].add((low, high))
                if expected == "H":
                    high_ratios.append(value / high)
                if group != "child" and r.test_code in ADULT_RANGES:
                    want = ADULT_RANGES[r.test_code][0 if group == "man" else 1]
                    if (low, high) != want:
                        wrong.append((r.test_code, group, (low, high)))
            flagged = [r for r in svc.lab_results if r.interpretation in ("L", "H")]
            if svc.conclusion and any(r.value not in svc.conclusion for r in flagged):
                wrong.append((svc.code, "conclusion", svc.conclusion))
            if any(d.icd10 == "E11.9" for d in svc.diagnoses):
                wrong += [(svc.code, "E11.9 glucose", r.value) for r in svc.lab_results
                          if r.test_code == "1003870" and r.interpretation == "N"]
    assert wrong == []
    assert all(found == {"L", "N", "H"} for found in seen.values()), dict(seen)
    assert min(high_ratios) < 1.15 and max(high_ratios) > 1.4      # not one narrow band above the limit
    for code in ADULT_RANGES:
        assert ranges[code, "man"] and ranges[code, "woman"] and ranges[code, "man"].isdisjoint(ranges[code, "woman"])
    for code in ("1017128", "1017979"):      # children have their own ranges (of the blood count they get)
        assert ranges[code, "child"] and ranges[code, "child"].isdisjoint(ranges[code, "man"] | ranges[code, "woman"])


def test_referral_reasons_and_targets_follow_the_diagnosis(corpus):
    wrong = []
    reasons = set()
    for case in corpus:
        ref = case.subject
        if not isinstance(ref, Referral):
            continue
        main = ref.diagnosis.icd10
        target = ref.target_service.lower()
        reasons.add(ref.reason)
        if not mentions(ref.reason, main):
            wrong.append((main, "reason", ref.reason))
        if ref.kind == "hospitalisation":
            ok = HOSPITAL_PROFILES.get(main, "?") in target
        elif ref.kind == "consultation":
            ok = SPECIALISTS.get(main, "?") in target
        elif ref.kind == "diagnostic":
            ok = any(w in target for w in STUDIES.get(main, ("?",)))
        else:
            ok = "анализ крови" in target
        if not ok:
            wrong.append((main, ref.kind, ref.target_service))
    assert wrong == []
    assert len(reasons) > 10


def test_formed_documents_carry_data_not_placeholders(corpus):
    by_kind: dict[int, list[Case]] = defaultdict(list)
    for case in corpus:
        by_kind[case.kind].append(case)
    wrong = []
    for kind, cases in by_kind.items():
        for case in cases[:FORMED_PER_KIND]:
            data = semd.build(case).decode()
            if case.context.patient.oms_policy and PLACEHOLDER_INSURER in data:
                wrong.append((kind, case.context.local_uid, "insurer"))
            rich = not (isinstance(case.subject, Hospitalisation) and not case.subject.complaints)
            if kind == 41 and rich and "Нет данных" in data:
                wrong.append((kind, case.context.local_uid, data.count("Нет данных")))
    assert wrong == []
