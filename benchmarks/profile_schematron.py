"""Where logical control's time goes, per СЭМД kind: the stages of ФЛК, then inside the Schematron.

For each kind, on documents the builders form from generated cases:

- ФЛК stages per document: parse (lxml), XSD, the CDA namespace stripped and serialised for Saxon, Saxon's parse,
  the transform, НСИ control (on an empty dictionary set: СНИЛС check digits and the element walk only);
- the Schematron's shape: patterns, rules, tests; the nodes (elements, attributes, text) of a document, so the
  template-match attempts of the "walk" engine (every pattern walks every node); the contexts that fire a rule;
- the most expensive patterns: each pattern run alone (a stylesheet parameter picks it), per engine.

Run: .venv/bin/python benchmarks/profile_schematron.py [--docs N] [--repeat N] [--top N] [--kinds 174,186]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from iemk_etl import semd
from iemk_etl import settings as settings_mod
from iemk_etl.devtools.generate import Generator
from iemk_etl.flk import nsi_control, packs, schematron, validation
from iemk_etl.protocol import xml

KINDS = (41, 42, 119, 174, 186)
XSL = schematron.XSL


def _ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def instrumented(sch: Path, engine: str) -> str:
    """The engine's stylesheet with a parameter $only (-1: every pattern) and a <fired/> per rule that fires."""
    sheet = etree.fromstring(schematron.compile_schematron(sch, engine).encode())
    param = etree.Element(f"{{{XSL}}}param", name="only", select="-1")
    sheet.insert(1, param)
    findings = sheet.find(f"{{{XSL}}}template[@match='/']/findings")
    for index, step in enumerate(list(findings)):
        guard = etree.SubElement(findings, f"{{{XSL}}}if", test=f"$only = (-1, {index})")
        guard.append(step)
    for template in sheet.iterfind(f"{{{XSL}}}template[@mode]"):
        if float(template.get("priority", "0")) >= 1:        # a rule's template, not the walk's fallback
            params = len(template.findall(f"{{{XSL}}}param"))
            template.insert(params, etree.Element("fired"))
    return etree.tostring(sheet, encoding="unicode")


def shape(sch: Path) -> tuple[int, int, int, list[str]]:
    root = etree.parse(str(sch)).getroot()
    sch_ns = f"{{{schematron.SCH}}}"
    patterns = list(root.iter(f"{sch_ns}pattern"))
    tests = sum(1 for _ in root.iter(f"{sch_ns}assert", f"{sch_ns}report"))
    contexts = [" ; ".join(r.get("context", "") for r in p.iter(f"{sch_ns}rule")) for p in patterns]
    return len(patterns), sum(1 for _ in root.iter(f"{sch_ns}rule")), tests, contexts


def nodes(data: bytes) -> tuple[int, int, int]:
    root = etree.fromstring(data)
    elements = sum(1 for _ in root.iter(etree.Element))
    attributes = sum(len(e.attrib) for e in root.iter(etree.Element))
    texts = len(root.xpath("//text()"))
    return elements, attributes, texts


def stages(kind: int, docs: list[bytes], packs_dir: Path, repeat: int) -> dict[str, float]:
    pack = packs.resolve(packs_dir, kind)
    assert pack is not None and pack.schematron is not None
    saxon = schematron._saxon()
    executable = saxon.executable(pack.schematron, schematron.DEFAULT_ENGINE)
    walk = saxon.executable(pack.schematron, "walk")
    roots = [xml.parse(d) for d in docs]
    texts = [schematron.strip_cda_namespace(d) for d in docs]
    parsed = [saxon.processor.parse_xml(xml_text=t) for t in texts]
    empty = nsi_control.DictionarySet([])
    schema = packs.compiled_xsd(pack.xsd)
    out = {
        "parse": [_ms(lambda d=d: xml.parse(d), repeat) for d in docs],
        "XSD": [_ms(lambda r=r: schema.validate(r.getroottree()), repeat) for r in roots],
        "strip+serialise": [_ms(lambda r=r: schematron.strip_cda_namespace(r), repeat) for r in roots],
        "Saxon parse": [_ms(lambda t=t: saxon.processor.parse_xml(xml_text=t), repeat) for t in texts],
        "transform walk": [_ms(lambda n=n: walk.transform_to_string(xdm_node=n), repeat) for n in parsed],
        "transform select": [_ms(lambda n=n: executable.transform_to_string(xdm_node=n), repeat) for n in parsed],
        "НСИ (no dictionaries)": [_ms(lambda r=r: nsi_control.check(r, empty), repeat) for r in roots],
        "ФЛК walk (old)": [_ms(lambda d=d: validation.validate(kind, d, packs_dir=packs_dir, require_packs=True,
                                                              logical=True, nsi=empty, engine="walk"), repeat)
                           for d in docs],
        "ФЛК select (new)": [_ms(lambda d=d: validation.validate(kind, d, packs_dir=packs_dir, require_packs=True,
                                                                logical=True, nsi=empty), repeat) for d in docs],
    }
    return {k: statistics.median(v) for k, v in out.items()}


def per_pattern(kind: int, doc: bytes, sch: Path, engine: str, repeat: int) -> tuple[list[float], int]:
    saxon = schematron._saxon()
    executable = saxon.processor.new_xslt30_processor().compile_stylesheet(stylesheet_text=instrumented(sch, engine))
    node = saxon.processor.parse_xml(xml_text=schematron.strip_cda_namespace(doc))
    fired = executable.transform_to_string(xdm_node=node).count("<fired")
    count = shape(sch)[0]
    times = []
    for index in range(count):
        executable.set_parameter("only", saxon.processor.make_integer_value(index))
        times.append(_ms(lambda: executable.transform_to_string(xdm_node=node), repeat))
    executable.set_parameter("only", saxon.processor.make_integer_value(-2))       # no pattern: the fixed cost
    base = _ms(lambda: executable.transform_to_string(xdm_node=node), repeat)
    return [max(t - base, 0.0) for t in times], fired


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--docs", type=int, default=3)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--top", type=int, default=5)
    p.add_argument("--kinds", default=",".join(map(str, KINDS)))
    args = p.parse_args()
    packs_dir = settings_mod.load().packs_dir
    if packs_dir is None:
        raise SystemExit("no СЭМД packs: set IEMK_SEMD_PACKS")
    gen = Generator(7)
    for kind in (int(k) for k in args.kinds.split(",")):
        docs = [semd.build(gen.case(kind, dt.date(2026, 11, 25), v)) for v in range(args.docs)]
        pack = packs.resolve(packs_dir, kind)
        assert pack is not None and pack.schematron is not None
        n_patterns, n_rules, n_tests, contexts = shape(pack.schematron)
        elements, attributes, texts = nodes(docs[0])
        print(f"\n## kind {kind}: {n_patterns} patterns, {n_rules} rules, {n_tests} tests; document: {elements} "
              f"elements, {attributes} attributes, {texts} text nodes")
        for stage, ms in stages(kind, docs, packs_dir, args.repeat).items():
            print(f"  {stage:<24} {ms:8.2f} ms/doc")
        for engine in schematron.ENGINES:
            costs, fired = per_pattern(kind, docs[0], pack.schematron, engine, args.repeat)
            visits = n_patterns * (elements + attributes + texts) if engine == "walk" else fired
            print(f"  engine {engine}: rules fired {fired}, nodes dispatched to templates ≈ {visits}; "
                  f"sum of patterns run alone {sum(costs):.1f} ms; the costliest:")
            for cost, index in sorted(((c, i) for i, c in enumerate(costs)), reverse=True)[:args.top]:
                print(f"    p{index:<4} {cost:6.3f} ms  {contexts[index][:110]}")


if __name__ == "__main__":
    main()
