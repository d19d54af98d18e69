"""НСИ dictionaries: files and the ФНСИ API (a local stand-in in the API's shape) into the database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iemk_etl.devtools.fnsi_standin import DEMO_DIR, FnsiStandIn
from iemk_etl.nsi import files
from iemk_etl.nsi.fnsi import FnsiClient
from iemk_etl.nsi.model import NsiFileError
from iemk_etl.pipeline import nsi
from iemk_etl.store import db
from iemk_etl.store import nsi as store

SEX = "1.2.643.5.1.13.13.11.1040"
ICD10 = "1.2.643.5.1.13.13.11.1005"


@pytest.fixture
def conn(fresh_dsn):
    with db.connect(fresh_dsn, autocommit=True) as c:
        yield c


def test_demo_set_reads_in_the_api_shape():
    read = {(d.oid, d.version): d for d, _ in files.read(DEMO_DIR)}
    sex = read[(SEX, "2.1")]
    assert sex.names() == {"1": "Мужской", "2": "Женский", "3": "Неопределенный"}
    assert sex.name == "Пол пациента"
    # МКБ-10: the CDA code is MKB_CODE, not the passport's numeric PRIMARY key
    assert read[(ICD10, "2.24")].code_column == "MKB_CODE"
    assert "I10" in read[(ICD10, "2.24")].names()


def test_load_dir_stores_each_version_once(conn):
    first = nsi.load_path(conn, DEMO_DIR)
    assert (SEX, "2.1") in first.loaded and not first.unchanged
    again = nsi.load_path(conn, DEMO_DIR)
    assert not again.loaded and len(again.unchanged) == len(first.loaded)
    sex = store.load(conn, SEX, "2.1")
    assert sex is not None and sex.names()["2"] == "Женский"
    held = {(h.oid, h.version): h for h in store.held(conn)}
    assert held[(SEX, "2.1")].rows_count == 3


def test_load_csv_export(conn, tmp_path: Path):
    (tmp_path / f"{SEX}_9.9.csv").write_text("\ufeffID;NAME\n1;Мужской\n2;Женский\n", encoding="utf-8")
    result = nsi.load_path(conn, tmp_path / f"{SEX}_9.9.csv")
    assert result.loaded == [(SEX, "9.9")]
    assert store.load(conn, SEX, "9.9").names() == {"1": "Мужской", "2": "Женский"}


def test_a_broken_file_is_refused(tmp_path: Path):
    (tmp_path / f"{SEX}_2.1_passport.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(NsiFileError):
        list(files.read(tmp_path))


def test_sync_loads_the_demo_set_and_a_second_sync_downloads_nothing(conn, monkeypatch):
    # a cited version ФНСИ does not list (semd.codes cited 1471 v4.9 before issue 13 corrected it to 2.38)
    cited = {**nsi.cited_versions(), "1.2.643.5.1.13.13.11.1471": "4.9"}
    monkeypatch.setattr(nsi, "cited_versions", lambda: cited)
    with FnsiStandIn(user_key="k") as standin, FnsiClient(standin.url, "k", timeout=10) as client:
        oids = [SEX, ICD10, "1.2.643.5.1.13.13.11.1471"]
        first = nsi.sync(conn, client, oids)
        assert {(o, v) for o, v in first.loaded} == {(SEX, "2.1"), (ICD10, "2.24"),
                                                     ("1.2.643.5.1.13.13.11.1471", "2.38")}
        assert standin.requests["passport"] == 3 and standin.requests["data"] >= 3
        # the cited version of 1471 is not in ФНСИ's list: said, not invented
        assert "1.2.643.5.1.13.13.11.1471" in first.missing
        fsidi = store.load(conn, "1.2.643.5.1.13.13.11.1471", "2.38")
        assert fsidi is not None and fsidi.names()["7014145"] == "Электрокардиография"

        standin.requests.clear()
        second = nsi.sync(conn, client, oids)
        assert not second.loaded
        assert standin.requests["passport"] == 0 and standin.requests["data"] == 0
        assert standin.requests["versions"] == 3


def test_sync_pages_through_data(conn, tmp_path: Path):
    rows = [[{"column": "ID", "value": str(i)}, {"column": "NAME", "value": f"n{i}"}] for i in range(1, 1201)]
    passport = {"result": "OK", "oid": "1.2.643.5.1.13.13.99.9.1", "version": "1.0", "fullName": "Тест",
                "fields": [{"field": "ID"}, {"field": "NAME"}],
                "keys": [{"field": "ID", "type": "PRIMARY"}, {"field": "NAME", "type": "VALUE"}]}
    (tmp_path / "1.2.643.5.1.13.13.99.9.1_1.0_passport.json").write_text(json.dumps(passport), encoding="utf-8")
    (tmp_path / "1.2.643.5.1.13.13.99.9.1_1.0_data.json").write_text(
        json.dumps({"result": "OK", "total": len(rows), "list": rows}), encoding="utf-8")
    with FnsiStandIn(tmp_path, user_key="k") as standin, FnsiClient(standin.url, "k", timeout=10) as client:
        nsi.sync(conn, client, ["1.2.643.5.1.13.13.99.9.1"])
        assert standin.requests["data"] == 3     # 500 + 500 + 200
    assert len(store.load(conn, "1.2.643.5.1.13.13.99.9.1", "1.0").rows) == 1200


def test_a_wrong_user_key_is_refused_without_showing_it(conn):
    with FnsiStandIn(user_key="right") as standin, FnsiClient(standin.url, "SECRET-KEY", timeout=10) as client:
        with pytest.raises(NsiFileError) as err:
            nsi.sync(conn, client, [SEX])
    assert "SECRET" not in str(err.value)
    assert store.held(conn) == []
