"""How much of a broken kind-43 document its logical control sees (its pack has the XSD only).

Every element of documents the builder forms from generated cases is mutated one at a time — dropped, duplicated,
an identifying attribute (code, codeSystem, root, classCode, moodCode, typeCode, xsi:type) set to a wrong value, its
text emptied — and the mutants that still pass the pack's XSD are given to logical control: our body rules alone
(``flk.logical``) and the whole of it (plus kind 42's header rules). Counted per region: header, body entries,
section narrative (free text no structure rule can judge). Codes that exist but are wrong are НСИ control's, not this.

    IEMK_SEMD_PACKS=../shared/semd-packs .venv/bin/python benchmarks/flk_mutations_43.py [--docs 6] [--missed]
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import re
from collections.abc import Iterator

from lxml import etree

from iemk_etl import semd, settings
from iemk_etl.devtools import flk_corpus
from iemk_etl.devtools.generate import Generator
from iemk_etl.flk import logical, validation

KIND = 43
DAY = dt.date(2026, 11, 25)
H = {"h": "urn:hl7-org:v3"}
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
WRONG = {"code": "999999", "codeSystem": "1.2.643.5.1.13.13.11.9999", "root": "1.2.3.4", "classCode": "OBS",
         "moodCode": "EVN", "typeCode": "REFR", XSI_TYPE: "ST"}


def _region(node: etree._Element) -> str:
    if node.xpath("ancestor-or-self::h:text[parent::h:section]", namespaces=H):
        return "narrative"
    return "body" if node.xpath("ancestor-or-self::h:structuredBody", namespaces=H) else "header"


def mutants(data: bytes) -> Iterator[tuple[str, str, str, bytes]]:
    """(operation, region, element path without indexes, mutated document); the root is left alone."""
    count = sum(1 for _ in etree.fromstring(data).iter(etree.Element))

    def fresh(i: int) -> tuple[etree._Element, etree._Element]:
        root = etree.fromstring(data)
        return root, list(root.iter(etree.Element))[i]

    for i in range(1, count):
        root, node = fresh(i)
        where, region = re.sub(r"\[\d+\]", "", logical.path(node)), _region(node)
        for operation, change in flk_corpus.changes(node, WRONG):
            root, node = fresh(i)
            change(node)
            yield operation, region, where, etree.tostring(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=6)
    parser.add_argument("--missed", action="store_true", help="list the XSD-valid mutants nothing caught")
    args = parser.parse_args()
    packs_dir = settings.load().packs_dir
    gen = Generator(11)
    stats: collections.Counter[tuple[str, str]] = collections.Counter()
    missed: collections.Counter[tuple[str, str, str]] = collections.Counter()
    own_rules = logical.rules_for(KIND).rules  # type: ignore[union-attr]
    for variant in range(args.docs):
        for operation, region, where, data in mutants(semd.build(gen.case(KIND, DAY, variant))):
            stats[region, "mutants"] += 1
            if validation.validate_format(KIND, data, packs_dir=packs_dir, require_packs=True):
                continue
            stats[region, "pass the XSD"] += 1
            stats[region, "caught by the body rules"] += bool(logical.validate(own_rules, etree.fromstring(data)))
            caught = bool(validation.validate_logic(KIND, data, packs_dir=packs_dir))
            stats[region, "caught by logical control"] += caught
            if not caught:
                missed[region, operation, where] += 1
    columns = ("mutants", "pass the XSD", "caught by the body rules", "caught by logical control")
    print("| region | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns))
    for region in ("header", "body", "narrative"):
        print(f"| {region} | " + " | ".join(str(stats[region, c]) for c in columns) + " |")
    if args.missed:
        for (region, operation, where), n in sorted(missed.items()):
            print(f"{n:4} {region:9} {operation:12} {where}")


if __name__ == "__main__":
    main()
