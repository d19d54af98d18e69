"""The official СЭМД packs (XSD + Schematron per kind) and the project's packs policy.

The packs are never part of this repository. They come from two places, looked up in this order:

1. the installed packs (``iemk-etl packs install``, under IEMK_PACKS_DIR): each pack a folder
   ``<kind>/ed<edition>-<hash>/`` described by ``manifest.json`` (kind, edition, content hash, entry files);
2. IEMK_SEMD_PACKS, read-only: one sub-folder per НСИ 1520 kind code with ``CDA.xsd`` and ``<kind>.sch``.

With a pack for a kind, full control runs. Without one, built-in checks run and we say so once per kind and
process; with IEMK_REQUIRE_PACKS=1 a missing pack is an error instead.

Which installed edition: a НСИ 1520 kind code names one edition of a document («…(CDA) Редакция 3»), and a
document of that kind carries that edition's templateId, so the pack of the kind's own edition is used when it is
installed; otherwise the newest installed edition of the kind (a pack installed under the kind for a later edition
is meant to replace it).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lxml import etree

from iemk_etl import errors, kinds
from iemk_etl.errors import ConfigurationError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"

# Where packs are looked up: one folder (installed packs or the IEMK_SEMD_PACKS layout), several in order, or none.
Sources = Path | Sequence[Path] | None

_warned: set[tuple[int, str]] = set()
_warned_lock = threading.Lock()
_EDITION = re.compile(r"Редакция\s+(\d+)|Ред\.\s*(\d+)", re.IGNORECASE)


class PackMissingError(ConfigurationError, RuntimeError):
    default_kind = errors.FLK_PACK_MISSING


@dataclass(frozen=True)
class Pack:
    """One kind's pack in force: its XSD entry point, its Schematron (kind 43 has none) and where it came from."""

    kind: int
    edition: int | None
    xsd: Path
    schematron: Path | None
    source: str            # "installed" or "IEMK_SEMD_PACKS"
    sha256: str = ""

    @property
    def label(self) -> str:
        """How findings name it: «43 ред. 2»."""
        return f"{self.kind} ред. {self.edition}" if self.edition is not None else str(self.kind)


def registered_edition(kind_code: int) -> int | None:
    """The edition a НСИ 1520 kind code stands for, from its name («… (CDA) Редакция 3»)."""
    kind = kinds.KINDS.get(kind_code)
    return edition_in(kind.name) if kind else None


def edition_in(text: str) -> int | None:
    found = _EDITION.search(text)
    return int(found.group(1) or found.group(2)) if found else None


def roots(sources: Sources) -> list[Path]:
    if sources is None:
        return []
    return [Path(sources)] if isinstance(sources, str | Path) else [Path(s) for s in sources]


def read_manifest(packs_dir: Path) -> list[dict]:
    """The installed packs' entries; [] when nothing was ever installed there."""
    path = packs_dir / MANIFEST
    try:
        stat = path.stat()
    except FileNotFoundError:
        return []
    return list(_manifest(path, stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=8)
def _manifest(path: Path, mtime_ns: int, size: int) -> tuple[dict, ...]:
    # Keyed by mtime and size: a document is checked per call, the manifest re-read only after an install.
    try:
        return tuple(json.loads(path.read_text(encoding="utf-8")).get("packs", []))
    except (ValueError, AttributeError) as exc:
        # Our configuration is broken, not the document: held (FLK_PACK_MISSING), not ended.
        raise PackMissingError(f"{path} повреждён ({exc}): удалите его и установите пакеты заново "
                               "(iemk-etl packs install)") from None


def _installed(packs_dir: Path, kind_code: int) -> Pack | None:
    entries = [e for e in read_manifest(packs_dir) if e.get("kind") == kind_code]
    if not entries:
        return None
    own = registered_edition(kind_code)
    entry = max(entries, key=lambda e: (e.get("edition") == own, e.get("edition") or 0, e.get("installed_at", "")))
    base = packs_dir / entry["dir"]
    sch = entry.get("schematron")
    return Pack(kind_code, entry.get("edition"), base / entry["xsd"], base / sch if sch else None, "installed",
                entry.get("sha256", ""))


def _shared(packs_dir: Path, kind_code: int) -> Pack | None:
    folder = packs_dir / str(kind_code)
    if not (folder / "CDA.xsd").is_file():
        return None
    sch = folder / f"{kind_code}.sch"
    return Pack(kind_code, registered_edition(kind_code), folder / "CDA.xsd", sch if sch.is_file() else None,
                "IEMK_SEMD_PACKS")


def resolve(sources: Sources, kind_code: int) -> Pack | None:
    """The pack in force for a kind: the first source that has one (installed packs come first)."""
    for root in roots(sources):
        found = _installed(root, kind_code) if (root / MANIFEST).is_file() else _shared(root, kind_code)
        if found is not None:
            return found
    return None


def pack_dir(packs_dir: Sources, kind_code: int) -> Path | None:
    """The folder of a kind's pack (its XSD's folder), or None."""
    found = resolve(packs_dir, kind_code)
    return found.xsd.parent if found else None


@lru_cache(maxsize=32)
def compiled_xsd(path: Path) -> etree.XMLSchema:
    # The pack's own files are trusted configuration; includes are resolved from the pack folder only.
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(path), parser=parser))


def find(sources: Sources, kind_code: int, *, require: bool) -> Pack | None:
    """The kind's pack, or None (after one plain warning) when no pack is configured."""
    found = resolve(sources, kind_code)
    if found is not None:
        return found
    where = ", ".join(map(str, roots(sources))) or "IEMK_SEMD_PACKS is not set"
    if require:
        raise PackMissingError(
            f"Нет официального пакета ФЛК для вида СЭМД {kind_code} ({where}); IEMK_REQUIRE_PACKS=1 "
            "запрещает передачу без полного контроля"
        )
    warn_once(kind_code, "format", f"No official pack for СЭМД kind {kind_code} ({where}): official format "
              "control is SKIPPED for this kind, only built-in checks run. Install one with `iemk-etl packs "
              "install` or set IEMK_SEMD_PACKS to the packs folder for full control.")
    return None


def xsd_for(packs_dir: Sources, kind_code: int, *, require: bool) -> etree.XMLSchema | None:
    """The compiled XSD of a kind's pack, or None (after one plain warning) when no pack is configured."""
    found = find(packs_dir, kind_code, require=require)
    return compiled_xsd(found.xsd) if found else None


def warn_once(kind_code: int, topic: str, message: str) -> None:
    """Say it once per kind, topic and process: plainly, not in every document's log line."""
    with _warned_lock:
        if (kind_code, topic) in _warned:
            return
        _warned.add((kind_code, topic))
    log.warning(message)
