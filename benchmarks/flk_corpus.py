"""The two Schematron engines over the whole ФЛК corpus (``iemk_etl.devtools.flk_corpus``): every document's findings
must be the same (rule ids, locations, texts, order). The test suite compares a sample; this compares all of it.

    IEMK_SEMD_PACKS=../shared/semd-packs .venv/bin/python benchmarks/flk_corpus.py [--docs 6] [--step 1]
"""

from __future__ import annotations

import argparse
import time

from iemk_etl import settings as settings_mod
from iemk_etl.devtools.flk_corpus import KINDS, compare, generated, mutants


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--docs", type=int, default=6, help="generated documents per kind")
    p.add_argument("--step", type=int, default=1, help="mutate every step-th element of the first document")
    args = p.parse_args()
    packs_dir = settings_mod.load().packs_dir
    if packs_dir is None:
        raise SystemExit("no СЭМД packs: set IEMK_SEMD_PACKS")
    print("| kind | documents (generated + mutants) | findings compared | of them logical control's | differing | s |")
    print("|---|---|---|---|---|---|")
    for kind in KINDS:
        started = time.perf_counter()
        docs = generated(kind, args.docs)
        corpus = [(f"generated #{i}", d) for i, d in enumerate(docs)] + list(mutants(docs[0], args.step))
        differ, compared, logic = compare(kind, corpus, packs_dir)
        print(f"| {kind} | {len(corpus)} | {compared} | {logic} | {len(differ)} | "
              f"{time.perf_counter() - started:.0f} |")
        for label in differ[:10]:
            print(f"    differs: {label}")


if __name__ == "__main__":
    main()
