"""ФЛК cost per СЭМД kind: format control (the pack's XSD, lxml) and logical control (the Schematron compiled
to XSLT 3.0, Saxon) measured separately, per document, on documents the builders form from generated cases;
plus the one-off compile cost of each per process.

Run: .venv/bin/python benchmarks/bench_validation.py [--docs N] [--repeat N]   (needs IEMK_SEMD_PACKS or
../shared/semd-packs)
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

from iemk_etl import semd
from iemk_etl import settings as settings_mod
from iemk_etl.devtools.generate import Generator
from iemk_etl.flk import packs, validation

KINDS = (41, 42, 43, 119, 174, 186)


def _seconds(fn) -> float:  # noqa: ANN001 - any call
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--docs", type=int, default=6, help="documents per kind (the builders' variants cycle)")
    p.add_argument("--repeat", type=int, default=5, help="runs per document; the median counts")
    args = p.parse_args()
    packs_dir = settings_mod.load().packs_dir
    if packs_dir is None:
        raise SystemExit("no СЭМД packs: set IEMK_SEMD_PACKS")
    gen = Generator(7)
    print(f"{args.docs} documents per kind, median of {args.repeat} runs each; packs: {packs_dir}")
    print(f"{'kind':>4} {'KiB/doc':>8} {'XSD compile ms':>15} {'XSD ms/doc':>11} {'Sch compile ms':>15} "
          f"{'Sch ms/doc':>11} {'findings':>9}")
    for kind in KINDS:
        docs = [semd.build(gen.case(kind, dt.date(2026, 11, 25), v)) for v in range(args.docs)]
        size = statistics.mean(len(d) for d in docs) / 1024
        xsd_compile = _seconds(lambda k=kind: packs.xsd_for(packs_dir, k, require=True)) * 1000
        xsd = [_median(lambda d=d, k=kind: validation.validate_format(k, d, packs_dir=packs_dir, require_packs=True),
                       args.repeat) for d in docs]
        first = _seconds(lambda k=kind, d=docs[0]: validation.validate_logic(k, d, packs_dir=packs_dir)) * 1000
        sch = [_median(lambda d=d, k=kind: validation.validate_logic(k, d, packs_dir=packs_dir), args.repeat)
               for d in docs]
        findings = sum(len(validation.validate(kind, d, packs_dir=packs_dir, require_packs=True, logical=True))
                       for d in docs)
        sch_compile = max(first - statistics.median(sch), 0.0) if kind != 43 else 0.0
        print(f"{kind:>4} {size:>8.1f} {xsd_compile:>15.0f} {statistics.median(xsd):>11.2f} {sch_compile:>15.0f} "
              f"{statistics.median(sch) if kind != 43 else float('nan'):>11.2f} {findings:>9}")
    print("43 has no Schematron in its pack: format control only.")


def _median(fn, repeat: int) -> float:  # noqa: ANN001 - any call
    return statistics.median(_seconds(fn) for _ in range(repeat)) * 1000


if __name__ == "__main__":
    main()
