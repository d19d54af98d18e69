"""The ФЛК corpus the Schematron engines are compared on: generated documents of the six kinds and their mutants.

Mutants are the kinds ``flk_mutations_43.py`` makes (an element dropped or duplicated, an identifying attribute set
to a wrong value, a text emptied), for every kind, on every ``step``-th element; the ones that still pass the XSD
reach logical control, the others are compared on their format findings.

``compare`` runs both engines (``schematron.ENGINES``) through the whole of ФЛК and returns the documents whose
findings differ: the engines must agree on rule ids, locations, texts and order.

Used by tests/flk/test_schematron_engines.py (a sample) and benchmarks/flk_corpus.py (all of it).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

from lxml import etree

from iemk_etl import semd
from iemk_etl.devtools.generate import Generator
from iemk_etl.flk import nsi_control, validation

KINDS = (41, 42, 43, 119, 174, 186)
DAY = dt.date(2026, 11, 25)
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
WRONG = {"code": "999999", "codeSystem": "1.2.643.5.1.13.13.11.9999", "root": "1.2.3.4", "classCode": "OBS",
         "moodCode": "EVN", "typeCode": "REFR", XSI_TYPE: "ST", "value": "x", "nullFlavor": "NI"}


def generated(kind: int, docs: int, seed: int = 7) -> list[bytes]:
    gen = Generator(seed)
    return [semd.build(gen.case(kind, DAY, variant)) for variant in range(docs)]


def changes(node: etree._Element, wrong: dict[str, str] | None = None,
            ) -> list[tuple[str, Callable[[etree._Element], None]]]:
    """The mutations tried on an element (applied to the same element of a fresh copy): dropped, duplicated, an
    identifying attribute set to its ``wrong`` value (default WRONG), its text emptied."""
    found: list[tuple[str, Callable[[etree._Element], None]]] = [
        ("drop", lambda n: n.getparent().remove(n)), ("duplicate", lambda n: n.addnext(copy.deepcopy(n)))]
    found += [(f"@{etree.QName(a).localname}", lambda n, a=a, v=v: n.set(a, v))
              for a, v in (WRONG if wrong is None else wrong).items() if node.get(a) not in (None, v)]
    if node.text and node.text.strip() and len(node) == 0:
        found.append(("empty text", lambda n: setattr(n, "text", "")))
    return found


def mutants(data: bytes, step: int = 1, offset: int = 0) -> Iterator[tuple[str, bytes]]:
    """(what was changed, mutated document) for every ``step``-th element, the root left alone."""
    count = sum(1 for _ in etree.fromstring(data).iter(etree.Element))
    for i in range(1 + offset, count, step):
        root = etree.fromstring(data)
        node = list(root.iter(etree.Element))[i]
        for operation, change in changes(node):
            root = etree.fromstring(data)
            change(list(root.iter(etree.Element))[i])
            yield f"{operation} element #{i}", etree.tostring(root)


def full_flk(job: tuple[int, bytes, tuple[Path, ...]]) -> int:
    """One document's whole ФЛК, as a worker of ``flk.parallel`` runs it for benchmarks/bench_validation.py (НСИ
    control on an empty dictionary set: СНИЛС digits and the walk); the number of findings. Here rather than in the
    benchmark script: the pool's workers do not run the main program, so they can take only an importable one."""
    kind, data, sources = job
    return len(validation.validate(kind, data, packs_dir=sources, require_packs=True, logical=True,
                                   nsi=nsi_control.DictionarySet([])))


def findings(kind: int, data: bytes, packs_dir: Path, engine: str) -> list[tuple[str, str, str, str, str]]:
    return [(f.stage, f.rule, f.location, f.message, f.pack)
            for f in validation.validate(kind, data, packs_dir=packs_dir, require_packs=True, logical=True,
                                         engine=engine)]


def compare(kind: int, documents: list[tuple[str, bytes]], packs_dir: Path) -> tuple[list[str], int, int]:
    """(the documents whose findings differ between the engines, the findings compared, of them logical control's)."""
    differ, compared, logic = [], 0, 0
    for label, data in documents:
        walk, select = findings(kind, data, packs_dir, "walk"), findings(kind, data, packs_dir, "select")
        compared += len(walk)
        logic += sum(1 for f in walk if f[0] == "logic")
        if walk != select:
            differ.append(label)
    return differ, compared, logic
