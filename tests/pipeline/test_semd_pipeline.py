"""The negative corpus through the pipeline: a document of each kind that breaks its kind's rules ends
«Ошибка: …» with the rule in the text at the validate step, and is never sent; the others go on."""

import dataclasses
import datetime as dt

import psycopg
import pytest

from iemk_etl import settings
from iemk_etl.devtools import demo_data
from iemk_etl.pipeline import extract, validate
from iemk_etl.store import integration

from semd_helpers import mutate, rename, setter

END = dt.date(2026, 11, 21)
GKB = demo_data.DEMO_MO[0][0]
PERIOD = (dt.datetime(2026, 11, 17, tzinfo=demo_data.MSK), dt.datetime(2026, 11, 21, tzinfo=demo_data.MSK))

# kind → (XPath, change, the start of the status the document must end with)
BREAKS = {
    41: ("/h:ClinicalDocument/h:typeId", setter("extension", "POCD_MT000040"),
         "Ошибка: Ошибка логического контроля (Schematron): У1-9. "),
    42: ("/h:ClinicalDocument/h:typeId", setter("extension", "POCD_MT000040"),
         "Ошибка: Ошибка логического контроля (Schematron): У1-9. "),
    43: ("/h:ClinicalDocument/h:title", rename("titel"), "Ошибка: Ошибка форматного контроля (XSD): "),
    119: ("/h:ClinicalDocument/h:effectiveTime", setter("value", "20261119103015+0300"),
          "Ошибка: Ошибка логического контроля (Schematron): У1-15. "),
    174: ("/h:ClinicalDocument/h:informationRecipient//h:receivedOrganization/h:id", setter("root", "1.2.3"),
          "Ошибка: Ошибка логического контроля (Schematron): Main05-1. "),
    186: ("/h:ClinicalDocument/h:informationRecipient//h:receivedOrganization/h:id", setter("root", "1.2.3"),
          "Ошибка: Ошибка логического контроля (Schematron): Main05-1. "),
}


@pytest.fixture
def broken(fresh_dsn):
    """A seeded МИС where one document of each kind was damaged before the export."""
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=24, days=4, seed=3, end=END, fail_share=0.0, unsigned_share=0.0)
        integration.set_enabled(conn, GKB, True)
        damaged = {}
        for kind, (xpath, change, _) in BREAKS.items():
            row = conn.execute(
                "SELECT id, cda FROM mis.semd_document WHERE mo_oid = %s AND kind_code = %s AND signed_at >= %s"
                " AND signed_at < %s ORDER BY id LIMIT 1", (GKB, kind, *PERIOD)).fetchone()
            assert row, f"the seed has no kind {kind} document in the period"
            conn.execute("UPDATE mis.semd_document SET cda = %s WHERE id = %s",
                         (mutate(bytes(row[1]), xpath, change), row[0]))
            damaged[kind] = row[0]
        yield conn, damaged


def test_a_document_breaking_its_kind_rules_ends_in_error_and_is_not_sent(broken, packs_dir):
    conn, damaged = broken
    cfg = dataclasses.replace(settings.load(), packs_dir=packs_dir, require_packs=True, logical_control=True)
    extracted = extract.extract(conn, GKB, *PERIOD)
    ready = validate.validate(conn, extracted, cfg)
    statuses = dict(conn.execute("SELECT id, status FROM mis.semd_document WHERE id = ANY(%s)",
                                 (list(damaged.values()),)).fetchall())
    for kind, document_id in damaged.items():
        assert statuses[document_id].startswith(BREAKS[kind][2]), (kind, statuses[document_id])
    ready_documents = {r[0] for r in conn.execute("SELECT document_id FROM iemk.ledger WHERE id = ANY(%s)",
                                                  (ready,))}
    assert not ready_documents & set(damaged.values())      # none of them goes on to send
    others = len(extracted) - len(damaged)
    assert len(ready) == others > 0                          # every intact document of all six kinds does
