"""Installing the official СЭМД packs: `iemk-etl packs install ZIP|DIR` and `iemk-etl packs list`.

A pack is taken as the Ministry publishes it — the repository ``git.minzdrav.gov.ru/semd/<package OID>``, one
branch ``<package OID>.<edition>`` per edition, with ``xsd/`` (the CDA base and the kind's modules) and
``schematron/*.sch``; its GitLab archive is ``<package OID>-<package OID>.<edition>.zip`` with one top folder of
that name — or as a flat folder (XSD files and the ``.sch`` side by side), or in the layout of IEMK_SEMD_PACKS
(``<kind>/CDA.xsd`` + ``<kind>.sch``; such a folder of several kinds installs each). Only the files ФЛК uses,
``*.xsd`` and ``*.sch``, are kept (not the guide's PDF nor the examples), with their relative paths, so includes
resolve as published.

Kind and edition come from the command line when given, else from the package OID in the path (НСИ 1520's
GIT_LINK), the templateId and «Редакция N» in the Schematron, the folder / ``<kind>.sch`` name, a README, and
finally the edition the НСИ 1520 kind code stands for. The pack is refused unless its XSD compiles (lxml) and its
Schematron compiles (Saxon, as ФЛК runs it). Installed packs live in IEMK_PACKS_DIR as ``<kind>/ed<N>-<hash>/``,
described by ``manifest.json``; the content hash is SHA-256 over the kept files in sorted order (path and bytes).
The same content again is a no-op; other content for an installed kind and edition replaces it (the Ministry
republishes fixes in the same branch).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from iemk_etl import errors, kinds
from iemk_etl.errors import ConfigurationError
from iemk_etl.flk import packs, schematron

KEPT = (".xsd", ".sch")
MAX_ZIP_BYTES = 512 * 1024 * 1024     # a pack is a few MB; a bigger archive is not a pack (or a zip bomb)
MAX_ZIP_FILES = 20_000

# НСИ 1520 GIT_LINK: the Ministry's package of a kind's edition → the 1520 kind code (the six kinds and the other
# editions of their documents; iemk-protocol.md §5.2, from the 1520 passport's GIT_LINK column).
_PKG = "1.2.643.5.1.13.13.15."
PACKAGES = {f"{_PKG}{suffix}": kind for suffix, kind in (
    ("25.3", 41), ("25.4", 77), ("25.5", 147), ("25.6", 235),
    ("26.3", 42), ("26.4", 92), ("26.5", 233),
    ("31.2", 43), ("31.3", 177), ("31.4", 206), ("31.5", 255),
    ("13.2", 16), ("13.3", 68), ("13.4", 119), ("13.5", 227),
    ("17.1", 15), ("17.2", 90), ("17.3", 110), ("17.4", 174), ("17.5", 224),
    ("18.2", 17), ("18.4", 75), ("18.5", 186),
)}
_PACKAGE = re.compile(r"(?<![\d.])(1\.2\.643\.5\.1\.13\.13\.15\.\d+)\.(\d+)(?!\d)")
_OID = re.compile(r"1\.2\.643(?:\.\d+)+")


class PackInstallError(ConfigurationError, ValueError):
    """The pack cannot be installed: what is wrong and which file, in words an administrator acts on."""

    default_kind = errors.FLK_PACK_MISSING


@dataclass
class Installed:
    """One pack's manifest entry and what this install did to it."""

    entry: dict
    status: str                     # "установлен", "уже установлен", "заменил <hash>"
    notes: list[str] = field(default_factory=list)


# -- reading the source ----------------------------------------------------------------------------------------

def _unzip(archive: Path, into: Path) -> None:
    """Extract only regular files with relative paths inside ``into``, within size limits."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
            if len(members) > MAX_ZIP_FILES or sum(m.file_size for m in members) > MAX_ZIP_BYTES:
                raise PackInstallError(f"архив {archive} слишком велик для пакета СЭМД")
            for member in members:
                parts = Path(_member_name(member).replace("\\", "/")).parts
                if member.filename.startswith(("/", "\\")) or ".." in parts or (member.external_attr >> 28) == 0xA:
                    raise PackInstallError(f"архив {archive}: недопустимый путь {member.filename!r}")
                target = into.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile as exc:
        raise PackInstallError(f"{archive} не является ZIP-архивом: {exc}") from None


def _member_name(member: zipfile.ZipInfo) -> str:
    """The member's name: UTF-8 when flagged, else as Windows archivers write Russian names (cp866) unless the
    raw bytes are UTF-8 anyway (Info-ZIP on Linux does not set the flag)."""
    if member.flag_bits & 0x800:
        return member.filename
    raw = member.filename.encode("cp437")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp866")


def _descend(root: Path, names: list[str]) -> Path:
    """Through single wrapping folders (a GitLab archive's ``<project>-<ref>/``), keeping their names for detection."""
    while True:
        entries = [p for p in root.iterdir() if not p.name.startswith(".")]
        if len(entries) != 1 or not entries[0].is_dir():
            return root
        root = entries[0]
        names.append(root.name)


def _kept_files(root: Path) -> list[Path]:
    return sorted((p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in KEPT),
                  key=lambda p: p.relative_to(root).as_posix())


def _split(root: Path, names: list[str]) -> list[tuple[Path, list[str]]]:
    """One pack, or — the IEMK_SEMD_PACKS layout — one per kind-code sub-folder."""
    subs = [d for d in sorted(root.iterdir()) if d.is_dir() and d.name.isdigit() and any(d.glob("*.xsd"))]
    if subs and not any(root.glob("*.xsd")):
        return [(d, [*names, d.name]) for d in subs]
    return [(root, names)]


# -- what the pack is --------------------------------------------------------------------------------------------

def content_hash(root: Path, files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _entry_xsd(root: Path) -> Path:
    """The schema of ClinicalDocument: CDA.xsd as published; with several, the one among the kind's modules."""
    candidates = [p for p in _kept_files(root) if p.suffix.lower() == ".xsd" and _declares_document(p)]
    if not candidates:
        raise PackInstallError(f"в пакете {root} нет XSD-схемы с элементом ClinicalDocument (CDA.xsd)")
    return min(candidates, key=lambda p: (p.name.lower() != "cda.xsd", -len(list(p.parent.glob("*.xsd"))),
                                          len(p.relative_to(root).parts)))


def _declares_document(path: Path) -> bool:
    text = path.read_bytes()
    return path.name.lower() == "cda.xsd" or (b"<xs:element" in text and b'name="ClinicalDocument"' in text)


def _schematrons(root: Path) -> list[Path]:
    return [p for p in _kept_files(root) if p.suffix.lower() == ".sch"]


def _entry_sch(root: Path, kind: int) -> Path | None:
    found = _schematrons(root)
    if len(found) <= 1:
        return found[0] if found else None
    own = [p for p in found if p.stem == str(kind)]
    if len(own) == 1:
        return own[0]
    names = ", ".join(p.relative_to(root).as_posix() for p in found)
    raise PackInstallError(f"в пакете несколько файлов Schematron ({names}); оставьте один")


def _from_names(names: list[str]) -> tuple[int | None, int | None, str | None]:
    for name in reversed(names):             # the innermost name is the most specific
        found = _PACKAGE.search(name)
        if found:
            package = f"{found.group(1)}.{found.group(2)}"
            return PACKAGES.get(package), int(found.group(2)), package
    return None, None, None


def _from_schematron(sch: Path | None) -> tuple[int | None, int | None]:
    if sch is None:
        return None, None
    text = sch.read_text(encoding="utf-8-sig", errors="replace")
    kind = next((k.code for oid in _OID.findall(text) if (k := kinds.by_template_id(oid)) is not None), None)
    return kind, packs.edition_in(text[:4000])


def _from_folder(root: Path, names: list[str]) -> int | None:
    stems = [p.stem for p in _schematrons(root) if p.stem.isdigit()]
    for name in [*stems, *reversed(names)]:
        if name.isdigit() and (int(name) in kinds.KINDS or name in stems):
            return int(name)
    return None


def _from_readme(root: Path) -> int | None:
    for readme in sorted(root.glob("README*")):
        found = packs.edition_in(readme.read_text(encoding="utf-8", errors="replace")[:4000])
        if found is not None:
            return found
    return None


def detect(root: Path, names: list[str], kind: int | None, edition: int | None) -> tuple[int, int, str | None]:
    """Kind and edition: the command line's, else from the pack itself; refused (asking for them) when unknown."""
    by_name_kind, by_name_edition, package = _from_names(names)
    sch = _schematrons(root)
    sch_kind, sch_edition = _from_schematron(sch[0] if len(sch) == 1 else None)
    kind = kind or by_name_kind or sch_kind or _from_folder(root, names)
    if kind is None:
        raise PackInstallError(f"не удалось определить вид СЭМД пакета {names[0]} (ни OID пакета в имени, ни "
                               "templateId в Schematron, ни имени папки с кодом по НСИ 1520); укажите --kind")
    if edition is None:
        edition = by_name_edition or sch_edition or _from_readme(root) or packs.registered_edition(kind)
    if edition is None:
        raise PackInstallError(f"не удалось определить редакцию пакета вида {kind}; укажите --edition")
    return kind, edition, package


# -- checks ------------------------------------------------------------------------------------------------------

def check_xsd(root: Path, xsd: Path) -> None:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        etree.XMLSchema(etree.parse(str(xsd), parser=parser))
    except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        where = _failing_file(root, exc, xsd)
        raise PackInstallError(f"XSD пакета не компилируется: {where}: {_first_line(exc)}") from None


def _failing_file(root: Path, exc: Exception, default: Path) -> str:
    log = getattr(exc, "error_log", None)
    name = next((e.filename for e in log if e.filename), None) if log else None
    path = Path(name) if name else default
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def check_schematron(root: Path, sch: Path) -> None:
    try:
        schematron.check_compiles(sch)
    except schematron.SchematronError as exc:
        raise PackInstallError(f"Schematron пакета не компилируется: {sch.relative_to(root).as_posix()}: "
                               f"{_saxon_reason(sch, str(exc))}") from None


def _saxon_reason(sch: Path, message: str) -> str:
    """Saxon's reason in one line, with the Schematron's own line and text of the test it could not compile."""
    reason = re.split(r" does not compile: | is not well-formed XML: ", message, maxsplit=1)[-1]
    lines = [line.strip() for line in reason.splitlines() if line.strip()]
    test = re.search(r"Error in \{(.*)\} at char", lines[0]) if lines else None
    if test is None:
        return " ".join(lines)
    return f"{_test_where(sch, test.group(1))}: {' '.join(lines[1:])}"


def _test_where(sch: Path, compiled: str) -> str:
    # compile_schematron wraps an assert's test in not(...): look for both spellings.
    wanted = [compiled[4:-1], compiled] if compiled.startswith("not(") else [compiled]
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    for element in etree.parse(str(sch), parser).iter():
        if isinstance(element.tag, str) and element.get("test") in wanted:
            return f"строка {element.sourceline}, проверка «{element.get('test')}»"
    return f"проверка «{compiled}»"


# -- the manifest ------------------------------------------------------------------------------------------------

def _write_manifest(packs_dir: Path, entries: list[dict]) -> None:
    entries = sorted(entries, key=lambda e: (e["kind"], e["edition"]))
    tmp = packs_dir / f".{packs.MANIFEST}.tmp"
    tmp.write_text(json.dumps({"packs": entries}, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, packs_dir / packs.MANIFEST)     # readers see the old manifest or the new one, never half


@dataclass
class _Prepared:
    root: Path
    kind: int
    edition: int
    package: str | None
    files: list[Path]
    xsd: Path
    sch: Path | None
    digest: str


def _prepare(root: Path, names: list[str], kind: int | None, edition: int | None) -> _Prepared:
    """Detected and checked, nothing written yet."""
    kind, edition, package = detect(root, names, kind, edition)
    files = _kept_files(root)
    xsd, sch = _entry_xsd(root), _entry_sch(root, kind)
    return _Prepared(root, kind, edition, package, files, xsd, sch, content_hash(root, files))


def _check(pack: _Prepared, packs_dir: Path) -> bool:
    """False when this very content is installed already; raises when the pack does not compile."""
    same = [e for e in packs.read_manifest(packs_dir) if (e["kind"], e["edition"]) == (pack.kind, pack.edition)]
    if same and same[0]["sha256"] == pack.digest:
        return False
    check_xsd(pack.root, pack.xsd)
    if pack.sch is not None:
        check_schematron(pack.root, pack.sch)
    return True


def _commit(pack: _Prepared, packs_dir: Path, source: Path) -> Installed:
    entries = packs.read_manifest(packs_dir)
    same = [e for e in entries if (e["kind"], e["edition"]) == (pack.kind, pack.edition)]
    if same and same[0]["sha256"] == pack.digest:
        return Installed(same[0], "уже установлен")
    target = Path(str(pack.kind)) / f"ed{pack.edition}-{pack.digest[:12]}"
    _copy(pack.root, pack.files, packs_dir / target)
    entry = {"kind": pack.kind, "edition": pack.edition, "sha256": pack.digest, "package": pack.package,
             "installed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "source": str(source),
             "dir": target.as_posix(), "xsd": pack.xsd.relative_to(pack.root).as_posix(),
             "schematron": pack.sch.relative_to(pack.root).as_posix() if pack.sch else None,
             "files": len(pack.files)}
    _write_manifest(packs_dir, [e for e in entries if e not in same] + [entry])
    for old in same:
        shutil.rmtree(packs_dir / old["dir"], ignore_errors=True)
    status = f"заменил {same[0]['sha256'][:12]}" if same else "установлен"
    return Installed(entry, status, _notes(pack.kind, pack.edition, pack.sch))


def _copy(root: Path, files: list[Path], target: Path) -> None:
    staging = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    for path in files:
        dest = staging / path.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def _notes(kind: int, edition: int, sch: Path | None) -> list[str]:
    notes = []
    own = packs.registered_edition(kind)
    if own is not None and own != edition:
        notes.append(f"вид {kind} по НСИ 1520 — редакция {own}, пакет — редакция {edition}: ФЛК берёт пакет "
                     f"редакции {own}, если он установлен, иначе новейший")
    if sch is None:
        notes.append("в пакете нет Schematron: логический контроль этого вида не выполняется")
    return notes


def install(source: Path, packs_dir: Path, *, kind: int | None = None, edition: int | None = None) -> list[Installed]:
    """Install the pack(s) in a ZIP or a folder into ``packs_dir``; refused as a whole on the first bad pack."""
    if not source.exists():
        raise PackInstallError(f"нет такого файла или папки: {source}")
    packs_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="iemk-pack-") as work:
        if source.is_dir():
            root, names = source, [source.resolve().name]
        else:
            root, names = Path(work), [source.name.removesuffix(".zip")]
            _unzip(source, root)
        root = _descend(root, names)
        found = _split(root, names)
        if len(found) > 1 and kind is not None:
            raise PackInstallError("--kind задаётся для одного пакета, а здесь пакеты нескольких видов")
        for pack_root, _ in found:
            if not any(p.suffix.lower() == ".xsd" for p in _kept_files(pack_root)):
                raise PackInstallError(f"в {source} нет XSD-схем: это не пакет СЭМД")
        prepared = [_prepare(pack_root, pack_names, kind, edition) for pack_root, pack_names in found]
        for pack in prepared:      # every pack checked before any is written: all of a folder, or none
            _check(pack, packs_dir)
        return [_commit(pack, packs_dir, source.resolve()) for pack in prepared]


# -- listing -----------------------------------------------------------------------------------------------------

def listing(installed_dir: Path | None, shared_dir: Path | None) -> list[dict]:
    """Every pack ФЛК can see: the installed ones, then IEMK_SEMD_PACKS's; ``active`` marks the one in force."""
    rows = []
    if installed_dir is not None:
        for entry in packs.read_manifest(installed_dir):
            base = installed_dir / entry["dir"]
            rows.append({**entry, "where": "IEMK_PACKS_DIR", "xsd_path": str(base / entry["xsd"])})
    if shared_dir is not None and shared_dir.is_dir():
        for folder in sorted((d for d in shared_dir.iterdir() if d.name.isdigit()), key=lambda d: int(d.name)):
            pack = packs.resolve(shared_dir, int(folder.name))
            if pack is None:
                continue
            files = _kept_files(folder)
            rows.append({"kind": pack.kind, "edition": pack.edition, "sha256": content_hash(folder, files),
                         "package": None, "installed_at": None, "source": str(folder), "dir": str(folder),
                         "xsd": pack.xsd.name, "schematron": pack.schematron.name if pack.schematron else None,
                         "files": len(files), "where": "IEMK_SEMD_PACKS", "xsd_path": str(pack.xsd)})
    sources = [p for p in (installed_dir, shared_dir) if p is not None]
    for row in rows:
        active = packs.resolve(sources, row["kind"])
        row["active"] = active is not None and str(active.xsd) == row.pop("xsd_path")
    return rows
