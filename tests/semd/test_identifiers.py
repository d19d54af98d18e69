"""The identifiers we issue under an МО's OID carry the installation's МИС number (IEMK_MIS_NUMBER)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from lxml import etree

from iemk_etl import semd
from iemk_etl.devtools.generate import Generator
from iemk_etl.semd import header


@pytest.mark.parametrize("kind", [41, 42, 43, 119, 174, 186])
def test_every_document_identifier_uses_the_installation_mis_number(kind):
    case = Generator(3).case(kind, dt.date(2026, 3, 2), 0)
    mo = dataclasses.replace(case.context.mo, mis_number="100.27.4")
    case = dataclasses.replace(case, context=dataclasses.replace(case.context, mo=mo))
    roots = etree.fromstring(semd.build(case)).xpath("//*[local-name()='id' or local-name()='setId']/@root")
    ours = [r for r in roots if r.startswith(mo.oid + ".100.")]
    assert f"{mo.oid}.100.27.4.51" in ours            # ClinicalDocument/id
    assert f"{mo.oid}.100.27.4.50" in ours            # setId
    assert all(r.startswith(f"{mo.oid}.100.27.4.") for r in ours), ours


def test_unique_id_and_its_mo_round_trip():
    uid = header.unique_id("1.2.643.5.1.13.13.12.2.77.7801", "D-1", "100.27.4")
    assert uid == "1.2.643.5.1.13.13.12.2.77.7801.100.27.4.51^D-1"
    assert header.mo_of(uid, "100.27.4") == "1.2.643.5.1.13.13.12.2.77.7801"
    assert header.mo_of("1.2.3^X", "100.27.4") == "1.2.3"       # not one of ours: the root as it is
