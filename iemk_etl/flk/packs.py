"""The official СЭМД packs (XSD + Schematron per kind) and the project's packs policy.

The packs are never part of this repository: IEMK_SEMD_PACKS points at a folder with one sub-folder per
НСИ 1520 kind code. With a pack for a kind, full control runs. Without one, built-in checks run and we
say so once per kind and process; with IEMK_REQUIRE_PACKS=1 a missing pack is an error instead.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache
from pathlib import Path

from lxml import etree

from iemk_etl import errors
from iemk_etl.errors import ConfigurationError

log = logging.getLogger(__name__)

_warned: set[tuple[int, str]] = set()
_warned_lock = threading.Lock()


class PackMissingError(ConfigurationError, RuntimeError):
    default_kind = errors.FLK_PACK_MISSING


def pack_dir(packs_dir: Path | None, kind_code: int) -> Path | None:
    if packs_dir is None:
        return None
    candidate = packs_dir / str(kind_code)
    return candidate if (candidate / "CDA.xsd").is_file() else None


@lru_cache(maxsize=32)
def _compiled_xsd(path: Path) -> etree.XMLSchema:
    # The pack's own files are trusted configuration; includes are resolved from the pack folder only.
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    return etree.XMLSchema(etree.parse(str(path), parser=parser))


def xsd_for(packs_dir: Path | None, kind_code: int, *, require: bool) -> etree.XMLSchema | None:
    """The compiled XSD of a kind's pack, or None (after one plain warning) when no pack is configured."""
    found = pack_dir(packs_dir, kind_code)
    if found is not None:
        return _compiled_xsd(found / "CDA.xsd")
    where = f"{packs_dir}" if packs_dir else "IEMK_SEMD_PACKS is not set"
    if require:
        raise PackMissingError(
            f"Нет официального пакета ФЛК для вида СЭМД {kind_code} ({where}); IEMK_REQUIRE_PACKS=1 "
            "запрещает передачу без полного контроля"
        )
    warn_once(kind_code, "format", f"No official pack for СЭМД kind {kind_code} ({where}): official format "
              "control is SKIPPED for this kind, only built-in checks run. Set IEMK_SEMD_PACKS to the packs folder "
              "for full control.")
    return None


def warn_once(kind_code: int, topic: str, message: str) -> None:
    """Say it once per kind, topic and process: plainly, not in every document's log line."""
    with _warned_lock:
        if (kind_code, topic) in _warned:
            return
        _warned.add((kind_code, topic))
    log.warning(message)
