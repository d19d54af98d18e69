"""ФЛК cost per СЭМД kind, before and after (issue 14): format control (the pack's XSD, lxml) and logical control
(the Schematron compiled to XSLT 3.0, Saxon) per document, with the old one-pass engine ("walk": every pattern walks
the whole document) and the default one ("select": each pattern fires on the nodes its contexts select); the whole of
ФЛК (parse, XSD, Schematron or kind 43's rules, НСИ control) per document with each; the one-off compile cost of each
per process; then documents/s of ФЛК over a mixed batch with N worker processes (``flk.parallel``, as the validate
step runs it).

Run: .venv/bin/python benchmarks/bench_validation.py [--docs N] [--repeat N] [--batch N] [--processes 1,2]
(needs IEMK_SEMD_PACKS or ../shared/semd-packs)
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from iemk_etl import semd
from iemk_etl import settings as settings_mod
from iemk_etl.devtools.flk_corpus import full_flk
from iemk_etl.devtools.generate import Generator
from iemk_etl.flk import nsi_control, packs, parallel, schematron, validation

KINDS = (41, 42, 43, 119, 174, 186)


def _seconds(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _median(fn: Callable[[], object], repeat: int) -> float:
    return statistics.median(_seconds(fn) for _ in range(repeat)) * 1000


def _interleaved(fn: Callable[[bytes, str], object], docs: list[bytes], repeat: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"walk": [], "select": []}
    for data in docs:
        for _ in range(repeat):
            for engine, samples in times.items():
                samples.append(_seconds(lambda e=engine, d=data: fn(d, e)) * 1000)
    return {engine: statistics.median(samples) for engine, samples in times.items()}


def per_kind(packs_dir: Path, docs_per_kind: int, repeat: int) -> dict[int, list[bytes]]:
    gen = Generator(7)
    empty = nsi_control.DictionarySet([])
    print(f"{docs_per_kind} documents per kind, median of {repeat} runs each; packs: {packs_dir}; ms")
    print("| kind | KiB/doc | XSD compile | XSD / doc | Sch compile walk / select | Sch / doc walk (before) | "
          "Sch / doc select (after) | ×  | ФЛК / doc before | ФЛК / doc after | × | findings |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    corpus = {}
    for kind in KINDS:
        docs = [semd.build(gen.case(kind, dt.date(2026, 11, 25), v)) for v in range(docs_per_kind)]
        corpus[kind] = docs
        size = statistics.mean(len(d) for d in docs) / 1024
        xsd_compile = _seconds(lambda k=kind: packs.xsd_for(packs_dir, k, require=True)) * 1000
        xsd = statistics.median(_median(lambda d=d, k=kind: validation.validate_format(
            k, d, packs_dir=packs_dir, require_packs=True), repeat) for d in docs)
        sch_path = (packs.resolve(packs_dir, 42 if kind == 43 else kind)).schematron  # 43 borrows 42's header
        compile_ms = {e: _seconds(lambda e=e, s=sch_path: schematron._saxon().executable(s, e)) * 1000
                      for e in ("walk", "select")}
        # The engines measured in turn, document by document, so a neighbour's load on this shared machine falls
        # on both alike.
        sch_ms, flk_ms = _interleaved(
            lambda d, e, k=kind: validation.validate_logic(k, d, packs_dir=packs_dir, engine=e), docs, repeat), \
            _interleaved(lambda d, e, k=kind: validation.validate(k, d, packs_dir=packs_dir, require_packs=True,
                                                                  logical=True, nsi=empty, engine=e), docs, repeat)
        findings = sum(full_flk((kind, d, (packs_dir,))) for d in docs)
        print(f"| {kind} | {size:.1f} | {xsd_compile:.0f} | {xsd:.2f} | {compile_ms['walk']:.0f} / "
              f"{compile_ms['select']:.0f} | {sch_ms['walk']:.2f} | {sch_ms['select']:.2f} | "
              f"{sch_ms['walk'] / sch_ms['select']:.1f} | {flk_ms['walk']:.2f} | {flk_ms['select']:.2f} | "
              f"{flk_ms['walk'] / flk_ms['select']:.1f} | {findings} |")
    print("43: no Schematron in its pack; logical control = kind 42's header rules (its Schematron) + our L43 rules.")
    return corpus


def throughput(packs_dir: Path, corpus: dict[int, list[bytes]], batch: int, processes: int) -> None:
    """The mixed batch as validate runs it: a fresh pool whose workers start and compile each kind they meet (in
    one process the kinds are compiled already). Overall rate, and the steady rate after the first quarter."""
    mixed = [(k, corpus[k][(i // len(KINDS)) % len(corpus[k])], (packs_dir,))
             for i in range(batch) for k in (KINDS[i % len(KINDS)],)]
    done: list[float] = []
    started = time.perf_counter()
    if processes == 1:
        for job in mixed:
            full_flk(job)
            done.append(time.perf_counter())
    else:
        for _ in parallel.run(full_flk, enumerate(mixed), processes):
            done.append(time.perf_counter())
    elapsed = done[-1] - started
    quarter = batch // 4
    steady = (batch - quarter) / (done[-1] - done[quarter - 1])
    print(f"| {processes} | {batch} | {elapsed:.1f} | {batch / elapsed:.0f} | {steady:.0f} |")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--docs", type=int, default=6, help="documents per kind (the builders' variants cycle)")
    p.add_argument("--repeat", type=int, default=5, help="runs per document; the median counts")
    p.add_argument("--batch", type=int, default=600, help="documents of the mixed batch (the six kinds in turn)")
    p.add_argument("--processes", default="1,2", help="worker processes to measure the batch with")
    args = p.parse_args()
    packs_dir = settings_mod.load().packs_dir
    if packs_dir is None:
        raise SystemExit("no СЭМД packs: set IEMK_SEMD_PACKS")
    corpus = per_kind(packs_dir, args.docs, args.repeat)
    print("\nФЛК (default engine) over a mixed batch of the six kinds; a fresh pool per run (start and compiles "
          "included)")
    print("| processes | documents | s | documents/s overall | documents/s after the first quarter |\n"
          "|---|---|---|---|---|")
    for processes in (int(n) for n in args.processes.split(",")):
        throughput(packs_dir, corpus, args.batch, processes)


if __name__ == "__main__":
    main()
