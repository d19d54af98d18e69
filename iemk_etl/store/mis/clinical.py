"""The МИС clinical records of a period, read as cases to form СЭМД from (the seed's «Получить документы»).

Which record makes which kind follows the seed: every department stay of a hospitalisation (41), every
finished visit (42), every referral issued (43), consultations asked for by a hospital department (119),
instrumental studies (174) and lab services (186). Each case carries a ``source`` key naming its record,
which is what makes forming a period twice add nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg

from iemk_etl.semd.model import (
    Address,
    Case,
    Department,
    DepartmentStay,
    Diagnosis,
    DocumentContext,
    Hospitalisation,
    IdentityDocument,
    LabResult,
    Organization,
    Patient,
    Referral,
    Service,
    SignedReport,
    Specimen,
    Staff,
    Visit,
)
from iemk_etl.settings import DEFAULT_MIS_NUMBER


@dataclass(frozen=True)
class SourcedCase:
    case: Case
    source: str                  # "stay:12", "visit:3", …
    patient_id: int
    author_id: int


class Source:
    """One МО's records, with small caches: a period touches the same staff and patients many times."""

    def __init__(self, conn: psycopg.Connection, mo_oid: str, mis_number: str = DEFAULT_MIS_NUMBER) -> None:
        self.conn = conn
        row = conn.execute("SELECT oid, name, address, region, postal_code, phone, ogrn, fias_aoguid::text,"
                           " fias_houseguid::text FROM mis.mo WHERE oid = %s", (mo_oid,)).fetchone()
        if row is None:
            raise LookupError(f"МО {mo_oid} нет в МИС")
        oid, name, address, region, postal, phone, ogrn, aoguid, houseguid = row
        where = Address(address, f"{region:02d}", postal, aoguid, houseguid) if address else None
        self.mo = Organization(oid, name, where, phone, ogrn, mis_number)
        self._staff: dict[int, Staff] = {}
        self._patients: dict[int, Patient] = {}

    # --- people -------------------------------------------------------------------------------------
    def staff(self, staff_id: int) -> Staff:
        if staff_id not in self._staff:
            r = self.conn.execute(
                "SELECT s.local_id, s.family, s.given, s.patronymic, s.snils, s.position_code, s.position_name,"
                " s.phone, d.oid, d.name FROM mis.staff s LEFT JOIN mis.department d ON d.id = s.department_id"
                " WHERE s.id = %s", (staff_id,)).fetchone()
            dep = Department(r[8], r[9]) if r[8] else None
            self._staff[staff_id] = Staff(*r[:8], department=dep)
        return self._staff[staff_id]

    def patient(self, patient_id: int) -> Patient:
        if patient_id not in self._patients:
            r = self.conn.execute(
                "SELECT local_id, family, given, patronymic, birth_date, sex, snils, address, region, postal_code,"
                " phone, oms_policy, id_doc_type, id_doc_series, id_doc_number, id_doc_issued_by, id_doc_issued_on,"
                " oms_insurer FROM mis.patient WHERE id = %s", (patient_id,)).fetchone()
            address = Address(r[7], f"{r[8] or 77:02d}", r[9]) if r[7] else None
            identity = IdentityDocument(r[12], r[13], r[14], r[15], r[16]) if r[12] and r[14] else None
            self._patients[patient_id] = Patient(*r[:7], address=address, phone=r[10], oms_policy=r[11],
                                                 identity=identity, oms_insurer=r[17])
        return self._patients[patient_id]

    def _diagnoses(self, column: str, owner_id: int, *, at_admission: bool = False) -> tuple[Diagnosis, ...]:
        rows = self.conn.execute(
            f"SELECT icd10, name, role, note FROM mis.diagnosis WHERE {column} = %s"  # noqa: S608 - fixed columns
            " AND at_admission = %s ORDER BY (role <> 'main'), ordinal, id", (owner_id, at_admission)).fetchall()
        return tuple(Diagnosis(r[0], r[1], r[2], r[3]) for r in rows)

    def _context(self, kind: int, local_uid: str, created_at: dt.datetime, patient_id: int,
                 author_id: int) -> DocumentContext:
        return DocumentContext(local_uid, 1, created_at, self.mo, self.patient(patient_id), self.staff(author_id))

    # --- records by kind ----------------------------------------------------------------------------
    def stays(self, start: dt.datetime, end: dt.datetime) -> list[SourcedCase]:
        rows = self.conn.execute(
            "SELECT h.id, s.id, h.patient_id, s.doctor_id, s.ended_at FROM mis.department_stay s"
            " JOIN mis.hospitalisation h ON h.id = s.hospitalisation_id"
            " WHERE h.mo_oid = %s AND s.ended_at >= %s AND s.ended_at < %s ORDER BY s.ended_at, s.id",
            (self.mo.oid, start, end)).fetchall()
        out = []
        for hosp_id, stay_id, patient_id, doctor_id, ended_at in rows:
            hosp, index = self.hospitalisation(hosp_id, stay_id)
            ctx = self._context(41, f"41-{hosp.local_id}-{index + 1}", ended_at, patient_id, doctor_id)
            out.append(SourcedCase(Case(41, ctx, hosp, index), f"stay:{stay_id}", patient_id, doctor_id))
        return out

    def hospitalisation(self, hosp_id: int, stay_id: int) -> tuple[Hospitalisation, int]:
        h = self.conn.execute(
            "SELECT case_number, admitted_at, discharged_at, urgent, complaints, anamnesis, outcome"
            " FROM mis.hospitalisation WHERE id = %s", (hosp_id,)).fetchone()
        stay_rows = self.conn.execute(
            "SELECT s.id, d.oid, d.name, s.started_at, s.ended_at, s.doctor_id, s.condition, s.treatment,"
            " s.recommendations, s.transferred, s.admission_state, s.discharge_state, s.result, s.surgery, s.diet,"
            " s.work FROM mis.department_stay s"
            " JOIN mis.department d ON d.id = s.department_id"
            " WHERE s.hospitalisation_id = %s ORDER BY s.started_at, s.id", (hosp_id,)).fetchall()
        stays = tuple(
            DepartmentStay(Department(r[1], r[2]), r[3], r[4], self.staff(r[5]), self._diagnoses("stay_id", r[0]),
                           r[6], r[7], r[8], r[9],
                           admission_diagnoses=self._diagnoses("stay_id", r[0], at_admission=True),
                           admission_state=r[10], discharge_state=r[11], result=r[12], surgery=r[13], diet=r[14],
                           work=r[15], services=self._stay_services(r[0]))
            for r in stay_rows)
        index = [r[0] for r in stay_rows].index(stay_id)
        discharged = h[2] or stays[index].ended_at
        return Hospitalisation(h[0], h[1], discharged, h[3], stays, h[4], h[5], h[6]), index

    def _stay_services(self, stay_id: int) -> tuple[Service, ...]:
        return tuple(self.service(r[0]) for r in self.conn.execute(
            "SELECT id FROM mis.service WHERE referred_from_stay_id = %s ORDER BY performed_at, id", (stay_id,)))

    def visits(self, start: dt.datetime, end: dt.datetime) -> list[SourcedCase]:
        rows = self.conn.execute(
            "SELECT id, patient_id, doctor_id, ended_at FROM mis.visit"
            " WHERE mo_oid = %s AND ended_at >= %s AND ended_at < %s ORDER BY ended_at, id",
            (self.mo.oid, start, end)).fetchall()
        out = []
        for visit_id, patient_id, doctor_id, ended_at in rows:
            visit = self.visit(visit_id)
            ctx = self._context(42, f"42-{visit.local_id}", ended_at, patient_id, doctor_id)
            out.append(SourcedCase(Case(42, ctx, visit), f"visit:{visit_id}", patient_id, doctor_id))
        return out

    def visit(self, visit_id: int) -> Visit:
        r = self.conn.execute(
            "SELECT local_id, started_at, ended_at, doctor_id, complaints, anamnesis, objective, conclusion,"
            " recommendations, service_code, service_name, repeat FROM mis.visit WHERE id = %s",
            (visit_id,)).fetchone()
        services = tuple(self.service(s[0]) for s in self.conn.execute(
            "SELECT id FROM mis.service WHERE visit_id = %s ORDER BY performed_at, id", (visit_id,)))
        referrals = tuple(self.referral(x[0]) for x in self.conn.execute(
            "SELECT id FROM mis.referral WHERE visit_id = %s ORDER BY issued_at, id", (visit_id,)))
        rep = self.conn.execute(
            "SELECT name, file_name, content, signed_at FROM mis.report_template"
            " WHERE visit_id = %s AND to_iemk AND signed_at IS NOT NULL ORDER BY signed_at DESC, id DESC LIMIT 1",
            (visit_id,)).fetchone()
        report = SignedReport(rep[0], rep[1], bytes(rep[2]), rep[3]) if rep else None
        return Visit(r[0], r[1], r[2], self.staff(r[3]), self._diagnoses("visit_id", visit_id), *r[4:9],
                     services=services, referrals=referrals, report=report, service_code=r[9],
                     service_name=r[10], repeat=r[11])

    def services(self, kind: int, type_: str, start: dt.datetime, end: dt.datetime, *,
                 from_hospital: bool = False) -> list[SourcedCase]:
        rows = self.conn.execute(
            "SELECT s.id, s.patient_id, s.performer_id, s.performed_at FROM mis.service s"
            " WHERE s.mo_oid = %s AND s.type = %s AND s.performed_at >= %s AND s.performed_at < %s"
            "   AND (NOT %s OR s.referred_from_stay_id IS NOT NULL) ORDER BY s.performed_at, s.id",
            (self.mo.oid, type_, start, end, from_hospital)).fetchall()
        out = []
        for service_id, patient_id, performer_id, performed_at in rows:
            svc = self.service(service_id)
            ctx = self._context(kind, f"{kind}-{svc.local_id}", performed_at, patient_id, performer_id)
            out.append(SourcedCase(Case(kind, ctx, svc), f"service:{service_id}", patient_id, performer_id))
        return out

    def service(self, service_id: int) -> Service:
        r = self.conn.execute(
            "SELECT s.local_id, s.code, s.name, s.type, s.performed_at, s.performer_id, d.oid, d.name,"
            " s.referral_number, s.referred_at, s.referred_by_id, s.findings, s.conclusion, s.recommendations,"
            " s.complaints, s.specimen_taken_at, s.anamnesis, s.life_anamnesis, s.condition, s.repeat,"
            " coalesce(s.case_id, h.case_number), coalesce(s.case_started_at, h.admitted_at), s.analyser_id,"
            " s.analyser_name FROM mis.service s"
            " LEFT JOIN mis.department_stay st ON st.id = s.referred_from_stay_id"
            " LEFT JOIN mis.hospitalisation h ON h.id = st.hospitalisation_id"
            " LEFT JOIN mis.department d ON d.id = st.department_id WHERE s.id = %s", (service_id,)).fetchone()
        results = tuple(LabResult(*x) for x in self.conn.execute(
            "SELECT test_code, test_name, value, unit, ref_low, ref_high, interpretation, specimen, comment"
            " FROM mis.lab_result WHERE service_id = %s ORDER BY ordinal, id", (service_id,)))
        return Service(r[0], r[1], r[2], r[3], r[4], self.staff(r[5]),
                       referred_from=Department(r[6], r[7]) if r[6] else None, referral_id=r[8], referred_at=r[9],
                       referred_by=self.staff(r[10]) if r[10] else None,
                       diagnoses=self._diagnoses("service_id", service_id), findings=r[11], conclusion=r[12],
                       recommendations=r[13], complaints=r[14], lab_results=results, specimen_taken_at=r[15],
                       anamnesis=r[16], life_anamnesis=r[17], condition=r[18], repeat=r[19], case_id=r[20],
                       case_started_at=r[21], specimen=self._specimen(service_id), analyser_id=r[22],
                       analyser_name=r[23])

    def _specimen(self, service_id: int) -> Specimen | None:
        r = self.conn.execute(
            "SELECT barcode, material_code, material_name, received_at, volume_ml, container, collected_by_id"
            " FROM mis.specimen WHERE service_id = %s", (service_id,)).fetchone()
        if r is None:
            return None
        return Specimen(*r[:6], collected_by=self.staff(r[6]) if r[6] else None)

    def referrals(self, start: dt.datetime, end: dt.datetime) -> list[SourcedCase]:
        rows = self.conn.execute(
            "SELECT r.id, v.patient_id, v.doctor_id, r.issued_at FROM mis.referral r"
            " JOIN mis.visit v ON v.id = r.visit_id"
            " WHERE v.mo_oid = %s AND r.issued_at >= %s AND r.issued_at < %s ORDER BY r.issued_at, r.id",
            (self.mo.oid, start, end)).fetchall()
        out = []
        for referral_id, patient_id, doctor_id, issued_at in rows:
            ref = self.referral(referral_id)
            ctx = self._context(43, f"43-{ref.local_id}", issued_at, patient_id, doctor_id)
            out.append(SourcedCase(Case(43, ctx, ref), f"referral:{referral_id}", patient_id, doctor_id))
        return out

    def referral(self, referral_id: int) -> Referral:
        r: Any = self.conn.execute(
            "SELECT r.local_id, r.kind, r.issued_at, v.doctor_id, r.target_mo_oid, r.target_mo_name,"
            " r.target_service, r.icd10, r.icd10_name, r.reason, r.urgent, r.service_code FROM mis.referral r"
            " JOIN mis.visit v ON v.id = r.visit_id WHERE r.id = %s", (referral_id,)).fetchone()
        return Referral(r[0], r[1], r[2], self.staff(r[3]), Organization(r[4], r[5]), r[6], Diagnosis(r[7], r[8]),
                        r[9], r[10], service_code=r[11])

    def cases(self, start: dt.datetime, end: dt.datetime, kinds: set[int] | None = None) -> list[SourcedCase]:
        """Every case of the period, kind by kind in the seed's order."""
        wanted = kinds or {41, 42, 43, 119, 174, 186}
        out: list[SourcedCase] = []
        if 41 in wanted:
            out += self.stays(start, end)
        if 42 in wanted:
            out += self.visits(start, end)
        if 186 in wanted:
            out += self.services(186, "Анализ", start, end)
        if 43 in wanted:
            out += self.referrals(start, end)
        if 119 in wanted:
            out += self.services(119, "Посещение", start, end, from_hospital=True)
        if 174 in wanted:
            out += self.services(174, "Инструментальное исследование", start, end)
        return out
