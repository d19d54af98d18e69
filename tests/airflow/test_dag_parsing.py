"""Where the МО list comes from, and a worker's parse building only the DAG it runs."""

import json
import logging

import psycopg
import pytest

from iemk_etl import settings as settings_mod

GKB = {"oid": "1.2.643.5.1.13.13.12.2.77.7801", "code": "gkb7801", "name": "ГКБ № 1"}
ORB = {"oid": "1.2.643.5.1.13.13.12.2.50.5012", "code": "orb5012", "name": "Одинцовская ОБ"}
CRB = {"oid": "1.2.643.5.1.13.13.12.2.50.5099", "code": "crb5099", "name": "ЦРБ"}


@pytest.fixture
def mo_file(tmp_path, monkeypatch):
    path = tmp_path / "mo.json"
    path.write_text(json.dumps({"mo": [GKB, ORB, CRB]}, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("IEMK_MO_CONFIG", str(path))
    monkeypatch.setenv("IEMK_HOME", str(tmp_path))
    for name in ("AIRFLOW_VAR_IEMK_MO_LIST", "IEMK_MO_SOURCES", "_AIRFLOW_PARSING_CONTEXT_DAG_ID",
                 "_AIRFLOW_PARSING_CONTEXT_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_with_the_parsing_context_set_only_that_dag_is_built(mo_file, monkeypatch):
    from iemk_airflow.export_dag import build_all

    assert len(build_all()) == 3 * 3 + 1                 # the dag-processor: every МО's three DAGs and the report
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "iemk_export__orb5012")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_TASK_ID", "extract")
    built = build_all()
    assert list(built) == ["iemk_export__orb5012"]
    assert "extract" in built["iemk_export__orb5012"].task_ids
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "iemk_report")
    assert list(build_all()) == ["iemk_report"]


def test_a_worker_parsing_the_dag_file_for_one_task_gets_only_that_dag(mo_file, monkeypatch):
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "iemk_sign_and_send__crb5099")
    dags = Path(__file__).resolve().parents[2] / "dags" / "iemk_export.py"
    bag = DagBag(dag_folder=str(dags))
    assert bag.import_errors == {} and sorted(bag.dags) == ["iemk_sign_and_send__crb5099"]


def test_the_airflow_variable_wins_over_the_file(mo_file, monkeypatch):
    from iemk_airflow import mo_list

    monkeypatch.setenv("AIRFLOW_VAR_IEMK_MO_LIST", json.dumps([GKB], ensure_ascii=False))
    assert [m.code for m in mo_list.configured_mo(settings_mod.load())] == ["gkb7801"]
    monkeypatch.setenv("IEMK_MO_SOURCES", "file,variable")
    assert [m.code for m in mo_list.configured_mo(settings_mod.load())] == ["gkb7801", "orb5012", "crb5099"]


def test_a_variable_that_cannot_be_read_is_logged_and_the_file_answers(mo_file, monkeypatch, caplog):
    from iemk_airflow import mo_list

    monkeypatch.setenv("AIRFLOW_VAR_IEMK_MO_LIST", "{not json")
    with caplog.at_level(logging.WARNING, logger="iemk_airflow.mo_list"):
        found = mo_list.configured_mo(settings_mod.load())
    assert len(found) == 3
    assert any(r.levelno == logging.ERROR and "'variable' could not be read" in r.getMessage() for r in caplog.records)


def test_no_source_answering_says_so_instead_of_silently_giving_no_dags(tmp_path, monkeypatch, caplog):
    from iemk_airflow import mo_list

    monkeypatch.setenv("IEMK_MO_CONFIG", str(tmp_path / "absent.json"))
    monkeypatch.delenv("AIRFLOW_VAR_IEMK_MO_LIST", raising=False)
    monkeypatch.delenv("IEMK_MO_SOURCES", raising=False)
    with caplog.at_level(logging.WARNING, logger="iemk_airflow.mo_list"):
        assert mo_list.configured_mo(settings_mod.load()) == []
    assert any("none of the sources variable,file" in r.getMessage() for r in caplog.records)


def test_a_database_that_cannot_be_reached_is_logged(mo_file, monkeypatch, caplog):
    from iemk_airflow import mo_list

    monkeypatch.setenv("IEMK_MO_SOURCES", "database")
    monkeypatch.setenv("IEMK_SOURCE_DSN", "host=127.0.0.1 port=1 dbname=none user=none connect_timeout=2")
    with caplog.at_level(logging.WARNING, logger="iemk_airflow.mo_list"):
        assert mo_list.configured_mo(settings_mod.load()) == []
    messages = [r.getMessage() for r in caplog.records]
    assert any("'database' could not be read" in m for m in messages) and any("none of the sources" in m
                                                                               for m in messages)


def test_the_mis_integration_section_lists_the_mo_ever_switched_on(fresh_dsn, mo_file, monkeypatch):
    from iemk_airflow import mo_list
    from iemk_etl.store import integration

    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        for mo in (GKB, ORB, CRB):
            conn.execute("INSERT INTO mis.mo (oid, code, name, region) VALUES (%s, %s, %s, %s)",
                         (mo["oid"], mo["code"], mo["name"], int(mo["oid"].split(".")[-2])))
        integration.set_enabled(conn, GKB["oid"], True)
        integration.set_enabled(conn, ORB["oid"], True)
        integration.set_enabled(conn, ORB["oid"], False)      # switched off since: keeps its DAGs, runs are skipped
    monkeypatch.setenv("IEMK_SOURCE_DSN", fresh_dsn)
    monkeypatch.setenv("IEMK_MO_SOURCES", "database,file")
    assert [m.code for m in mo_list.configured_mo(settings_mod.load())] == ["gkb7801", "orb5012"]


def test_mo_sources_setting_is_checked():
    with pytest.raises(settings_mod.SettingsError, match="IEMK_MO_SOURCES"):
        settings_mod.load({"IEMK_MO_SOURCES": "variable,consul"})
    assert settings_mod.load({"IEMK_MO_SOURCES": " Database , file"}).mo_sources == ("database", "file")
    assert settings_mod.load({}).mo_sources == ("variable", "file")


def test_building_the_dags_imports_no_pipeline_store_signing_or_transport(mo_file):
    """What keeps a worker's parse cheap: the task bodies' modules are imported when a task runs, not at parse."""
    import os
    import subprocess
    import sys

    code = ("import sys; from iemk_airflow.export_dag import build_all; assert len(build_all()) == 10; "
            "print(sorted(m for m in sys.modules if m.startswith(('iemk_etl.pipeline', 'iemk_etl.signing', "
            "'iemk_etl.transport', 'iemk_etl.flk', 'iemk_etl.semd', 'psycopg', 'lxml', 'zeep'))))")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ), capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
