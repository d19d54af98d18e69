"""Shared helpers of the СЭМД builder tests: built documents, their ФЛК findings, and mutations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import psycopg
from lxml import etree

from iemk_etl import semd
from iemk_etl.devtools.generate import Generator
from iemk_etl.flk import validation
from iemk_etl.protocol import snils
from iemk_etl.semd.model import Case

DAY = dt.date(2026, 11, 25)
H = {"h": "urn:hl7-org:v3", "xsi": "http://www.w3.org/2001/XMLSchema-instance",
     "identity": "urn:hl7-ru:identity", "address": "urn:hl7-ru:address", "medService": "urn:hl7-ru:medService",
     "fias": "urn:hl7-ru:fias"}


def cases(kind: int, count: int = 6, seed: int = 11) -> list[Case]:
    """Generated cases of a kind, cycling through its variants (rich, special, sparse, …)."""
    gen = Generator(seed)
    return [gen.case(kind, DAY, variant) for variant in range(count)]


def findings(kind: int, data: bytes, packs_dir: Path) -> list[validation.Finding]:
    return validation.validate(kind, data, packs_dir=packs_dir, require_packs=True, logical=True)


def rules(kind: int, data: bytes, packs_dir: Path) -> set[str]:
    return {f.rule for f in findings(kind, data, packs_dir)}


def built(kind: int, variant: int = 0, seed: int = 11) -> bytes:
    return semd.build(Generator(seed).case(kind, DAY, variant))


def mutate(data: bytes, xpath: str, change: Callable[[etree._Element], None]) -> bytes:
    """Apply ``change`` to every node the XPath (prefix h: for CDA) selects; at least one must match."""
    root = etree.fromstring(data)
    nodes = root.xpath(xpath, namespaces=H)
    assert nodes, f"nothing matches {xpath}"
    for node in nodes:
        change(node)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def remove(node: etree._Element) -> None:
    node.getparent().remove(node)


def setter(attr: str, value: str) -> Callable[[etree._Element], None]:
    return lambda node: node.set(attr, value)


def rename(new_local: str) -> Callable[[etree._Element], None]:
    def change(node: etree._Element) -> None:
        node.tag = f"{{{etree.QName(node).namespace}}}{new_local}"
    return change


def new_visit(conn: psycopg.Connection, mo_oid: str, day: dt.date, local_id: str, *, hour: int = 10) -> int:
    """A visit the МИС records after the seed (no СЭМД formed for it yet), of a patient ИЭМК will accept."""
    patient_id, doctor_id = next(
        (p, s) for p, s, number in conn.execute(
            "SELECT p.id, s.id, p.snils FROM mis.patient p JOIN mis.staff s ON s.mo_oid = p.mo_oid"
            " WHERE p.mo_oid = %s AND p.address IS NOT NULL ORDER BY p.id, s.id", (mo_oid,))
        if number and snils.is_valid(number))
    at = dt.datetime.combine(day, dt.time(hour), dt.timezone(dt.timedelta(hours=3)))
    visit_id = conn.execute(
        "INSERT INTO mis.visit (mo_oid, patient_id, doctor_id, local_id, started_at, ended_at, conclusion)"
        " VALUES (%s, %s, %s, %s, %s, %s, 'Здоров') RETURNING id",
        (mo_oid, patient_id, doctor_id, local_id, at, at + dt.timedelta(minutes=20))).fetchone()[0]
    conn.execute("INSERT INTO mis.diagnosis (visit_id, icd10, name) VALUES (%s, 'Z00.0', 'Общий медицинский осмотр')",
                 (visit_id,))
    return visit_id
