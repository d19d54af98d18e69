"""`iemk-etl packs install|list`: official packs taken as published, checked, recorded, and then used by ФЛК."""

import json
import shutil
import zipfile

import pytest

from iemk_etl import cli
from iemk_etl.flk import install, packs, validation

from cda_factory import document, minimal_document

MINISTRY_42 = "1.2.643.5.1.13.13.15.26-1.2.643.5.1.13.13.15.26.3"   # GitLab archive of branch …15.26.3


def _copy_kind(packs_dir, kind, where):
    target = where / str(kind)
    shutil.copytree(packs_dir / str(kind), target)
    return target


def _zip(folder, archive):
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, path.relative_to(folder.parent).as_posix())
    return archive


def _ministry_layout(packs_dir, where):
    """Kind 42's pack as the Ministry's repository holds it: xsd/XSD CDA/…, schematron/<name>.sch, and more."""
    top = where / MINISTRY_42
    shutil.copytree(packs_dir / "42", top / "xsd" / "XSD CDA")
    (top / "schematron").mkdir()
    shutil.move(top / "xsd" / "XSD CDA" / "42.sch", top / "schematron" / "ЭпикризАмб_Ред3.sch")
    (top / "examples").mkdir()
    (top / "examples" / "пример.xml").write_text("<ClinicalDocument/>", encoding="utf-8")
    return top


def _with_rule(sch, rule_id):
    """The Schematron with one more pattern that every document fails: proof of which pack ran."""
    text = sch.read_text(encoding="utf-8-sig")
    extra = (f'<pattern><rule context="ClinicalDocument"><assert test="false()">{rule_id}. Проверка установленного '
             "пакета.</assert></rule></pattern></schema>")
    sch.write_text(text.replace("</schema>", extra), encoding="utf-8")


def test_a_folder_in_the_shared_layout_installs_and_again_is_a_no_op(packs_dir, tmp_path):
    source = _copy_kind(packs_dir, 42, tmp_path / "src")
    installed = tmp_path / "installed"
    [first] = install.install(source, installed)
    assert first.status == "установлен"
    entry = first.entry
    assert (entry["kind"], entry["edition"], entry["xsd"], entry["schematron"]) == (42, 3, "CDA.xsd", "42.sch")
    files = sorted(p for p in source.rglob("*") if p.suffix in (".xsd", ".sch"))
    assert entry["sha256"] == install.content_hash(source, files) and entry["files"] == len(files)
    assert (installed / entry["dir"] / "coreschemas" / "datatypes-base.xsd").is_file()
    manifest = (installed / "manifest.json").read_text(encoding="utf-8")

    [again] = install.install(source, installed)
    assert again.status == "уже установлен"
    assert (installed / "manifest.json").read_text(encoding="utf-8") == manifest     # nothing rewritten
    assert [p.name for p in (installed / "42").iterdir()] == [entry["dir"].split("/")[1]]


def test_a_zip_of_a_kind_folder_installs(packs_dir, tmp_path):
    archive = _zip(_copy_kind(packs_dir, 186, tmp_path / "src"), tmp_path / "186.zip")
    [done] = install.install(archive, tmp_path / "installed")
    assert (done.entry["kind"], done.entry["edition"], done.status) == (186, 5, "установлен")
    assert done.entry["source"] == str(archive)


def test_the_ministry_repository_layout_is_read_from_its_package_oid(packs_dir, tmp_path):
    archive = _zip(_ministry_layout(packs_dir, tmp_path / "src"), tmp_path / f"{MINISTRY_42}.zip")
    [done] = install.install(archive, tmp_path / "installed")
    entry = done.entry
    assert (entry["kind"], entry["edition"], entry["package"]) == (42, 3, "1.2.643.5.1.13.13.15.26.3")
    assert (entry["xsd"], entry["schematron"]) == ("xsd/XSD CDA/CDA.xsd", "schematron/ЭпикризАмб_Ред3.sch")
    kept = {p.suffix for p in (tmp_path / "installed" / entry["dir"]).rglob("*") if p.is_file()}
    assert kept == {".xsd", ".sch"}            # the examples are not part of what ФЛК runs


def test_list_shows_the_installed_pack_in_force(packs_dir, tmp_path, monkeypatch, capsys):
    installed = tmp_path / "installed"
    install.install(_copy_kind(packs_dir, 42, tmp_path / "src"), installed)
    monkeypatch.setenv("IEMK_PACKS_DIR", str(installed))
    monkeypatch.setenv("IEMK_SEMD_PACKS", str(packs_dir))
    assert cli.main(["packs", "list", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    mine = [r for r in rows if r["kind"] == 42]
    assert [(r["where"], r["edition"], r["active"]) for r in mine] == [("IEMK_PACKS_DIR", 3, True),
                                                                        ("IEMK_SEMD_PACKS", 3, False)]
    assert mine[0]["sha256"] == mine[1]["sha256"] and mine[0]["files"] == 7
    assert cli.main(["packs", "list"]) == 0
    table = capsys.readouterr().out
    assert any(line.startswith("*") and " 42 " in line and mine[0]["sha256"][:12] in line and "IEMK_PACKS_DIR" in line
               for line in table.splitlines())


def test_a_pack_whose_xsd_does_not_compile_is_refused_naming_the_file(packs_dir, tmp_path, capsys, monkeypatch):
    source = _copy_kind(packs_dir, 42, tmp_path / "src")
    broken = source / "coreschemas" / "datatypes-base.xsd"
    broken.write_text(broken.read_text(encoding="utf-8").replace("<xs:complexType", "<xs:complexTyp", 1),
                      encoding="utf-8")
    monkeypatch.setenv("IEMK_PACKS_DIR", str(tmp_path / "installed"))
    assert cli.main(["packs", "install", str(source)]) == 2
    err = capsys.readouterr().err
    assert "XSD пакета не компилируется: coreschemas/datatypes-base.xsd" in err
    assert packs.read_manifest(tmp_path / "installed") == []


def test_a_pack_whose_schematron_does_not_compile_is_refused_naming_the_file(packs_dir, tmp_path):
    source = _copy_kind(packs_dir, 42, tmp_path / "src")
    sch = source / "42.sch"
    sch.write_text(sch.read_text(encoding="utf-8-sig").replace('test="count(family)=1"', 'test="count(family)=(1"',
                                                               1), encoding="utf-8")
    with pytest.raises(install.PackInstallError, match=r"Schematron пакета не компилируется: 42\.sch: строка \d+, "
                       r"проверка «count\(family\)=\(1»: XPST0003"):
        install.install(source, tmp_path / "installed")
    assert not (tmp_path / "installed" / "42").exists()


def test_a_pack_of_unknown_kind_asks_for_it(packs_dir, tmp_path):
    source = tmp_path / "some-pack"
    shutil.copytree(packs_dir / "43", source)       # 43 has no Schematron: nothing in it names the kind
    with pytest.raises(install.PackInstallError, match="укажите --kind"):
        install.install(source, tmp_path / "installed")
    [done] = install.install(source, tmp_path / "installed", kind=43)
    assert (done.entry["kind"], done.entry["edition"], done.entry["schematron"]) == (43, 2, None)


def test_validation_uses_the_installed_pack_and_findings_name_its_edition(packs_dir, tmp_path):
    source = _copy_kind(packs_dir, 42, tmp_path / "src")
    _with_rule(source / "42.sch", "Т-УСТАНОВЛЕН")
    installed = tmp_path / "installed"
    install.install(source, installed)
    sources = (installed, packs_dir)

    logic = validation.validate(42, document(), packs_dir=sources, require_packs=True, logical=True)
    assert [(f.stage, f.rule, f.pack) for f in logic] == [("logic", "Т-УСТАНОВЛЕН", "42 ред. 3")]
    assert logic[0].text().endswith("[пакет 42 ред. 3]")
    # IEMK_SEMD_PACKS alone: the same document has no finding; its pack is named by the kind's edition too.
    assert validation.validate(42, document(), packs_dir=packs_dir, require_packs=True, logical=True) == []
    fmt = validation.validate(42, minimal_document(omit=("code",)), packs_dir=sources, require_packs=True,
                              logical=True)
    assert fmt and {(f.stage, f.pack) for f in fmt} == {("format", "42 ред. 3")}


def test_the_kinds_own_edition_wins_then_the_newest(packs_dir, tmp_path):
    installed = tmp_path / "installed"
    for edition in (5, 3, 4):
        source = _copy_kind(packs_dir, 42, tmp_path / f"src{edition}")
        _with_rule(source / "42.sch", f"Т-{edition}")        # different content per edition
        install.install(source, installed, edition=edition)
    assert packs.resolve((installed, packs_dir), 42).edition == 3    # 42 is «Редакция 3» in НСИ 1520
    manifest = json.loads((installed / "manifest.json").read_text(encoding="utf-8"))
    manifest["packs"] = [e for e in manifest["packs"] if e["edition"] != 3]
    (installed / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert packs.resolve((installed, packs_dir), 42).edition == 5


def test_a_corrupt_manifest_holds_the_document_as_a_configuration_error(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    findings = validation.validate(42, minimal_document(), packs_dir=tmp_path, require_packs=False, logical=True)
    assert [(f.stage, f.kind.code) for f in findings] == [("policy", "FLK_PACK_MISSING")]
    assert "manifest.json повреждён" in findings[0].message
