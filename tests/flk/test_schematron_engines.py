"""The fast Schematron engine ("select") finds exactly what the one-pass engine ("walk") found.

The old engine stays callable (``validation.validate(..., engine="walk")``) so the comparison runs against it live,
not against a stored golden set: a pack or generator change cannot make the golden set stale. This is a sample of
the corpus (two generated variants of each kind, every 45th element of one document mutated);
benchmarks/flk_corpus.py compares all of it.
"""

import pytest

from iemk_etl.devtools import flk_corpus
from iemk_etl.flk import schematron, validation

SEMANTICS = """<schema xmlns="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt2">
  <pattern>
    <rule context="b[1 idiv number(@x) = 1]"><assert test="false()">T1-1. b, x = 1</assert></rule>
    <rule context="b"><report test="true()">T1-2. another b</report></rule>
  </pattern>
  <pattern>
    <rule context="doc | //c/@y"><assert test="count(b) = 1">T2-1. one b</assert></rule>
  </pattern>
  <pattern>
    <rule context="/doc/c[@y = '1']"><assert test="false()">T3-1. c with y=1</assert></rule>
  </pattern>
</schema>"""


@pytest.mark.parametrize("kind", flk_corpus.KINDS)
def test_engines_find_the_same_over_generated_and_mutated_documents(packs_dir, kind):
    docs = flk_corpus.generated(kind, 2)
    corpus = [(f"generated #{i}", d) for i, d in enumerate(docs)]
    corpus += list(flk_corpus.mutants(docs[0], step=45, offset=kind % 45))
    differ, compared, logic = flk_corpus.compare(kind, corpus, packs_dir)
    assert differ == []
    assert logic > 0          # the sample does reach logical control, so the Schematron findings were compared


def test_a_context_whose_predicate_fails_on_a_node_falls_back_to_the_walk(tmp_path):
    sch = tmp_path / "semantics.sch"
    sch.write_text(SEMANTICS, encoding="utf-8")
    # b x=0: 1 idiv 0 raises, so T1-1's pattern does not match that b and T1-2 does (a pattern's error is a
    # non-match); the select engine's expression would fail as a whole: it must walk instead and agree.
    doc = b'<doc xmlns="urn:hl7-org:v3"><b x="1"/><b x="0"/><b/><c y="1"/></doc>'
    walk = schematron.validate(sch, doc, "walk")
    assert [(f.rule, f.location) for f in walk] == [
        ("T1-1", "/Q{}doc[1]/Q{}b[1]"), ("T1-2", "/Q{}doc[1]/Q{}b[2]"), ("T1-2", "/Q{}doc[1]/Q{}b[3]"),
        ("T2-1", "/Q{}doc[1]"), ("T2-1", "/Q{}doc[1]/Q{}c[1]/@y"), ("T3-1", "/Q{}doc[1]/Q{}c[1]")]
    assert schematron.validate(sch, doc, "select") == walk


def test_compiled_stylesheets_follow_the_content_not_the_path(tmp_path):
    sch = tmp_path / "99.sch"
    sch.write_text(SEMANTICS, encoding="utf-8")
    doc = b'<doc xmlns="urn:hl7-org:v3"><b x="1"/></doc>'
    assert "T1-1" in {f.rule for f in schematron.validate(sch, doc)}
    sch.write_text(SEMANTICS.replace("T1-1. b", "T9-9. b").replace("T1-1", "T9-9"), encoding="utf-8")
    assert "T9-9" in {f.rule for f in schematron.validate(sch, doc)}     # recompiled: the same path, new content


def test_an_unknown_engine_is_refused(tmp_path):
    sch = tmp_path / "99.sch"
    sch.write_text(SEMANTICS, encoding="utf-8")
    with pytest.raises(ValueError, match="unknown Schematron engine"):
        schematron.compile_schematron(sch, "fast")


def test_the_parsed_tree_given_to_the_schematron_is_left_as_it_came(packs_dir):
    from iemk_etl.protocol import xml

    data = flk_corpus.generated(42, 1)[0]
    root = xml.parse(data)
    before = xml.etree.tostring(root)
    assert validation.validate(42, data, packs_dir=packs_dir, require_packs=True, logical=True) == []
    schematron.validate(packs_dir / "42" / "42.sch", root)
    assert xml.etree.tostring(root) == before


@pytest.mark.parametrize("kind", [k for k in flk_corpus.KINDS if k != 43])     # 43's pack has no Schematron
def test_the_unguarded_stylesheet_finds_what_the_guarded_one_finds(packs_dir, kind):
    """validate runs the stylesheet without xsl:try (it compiles ≈ 40 % faster) and the guarded one only for a
    document on which a check raises: over generated and mutated documents the findings are the same."""
    sch = packs_dir / str(kind) / f"{kind}.sch"
    docs = flk_corpus.generated(kind, 2)
    corpus = list(docs) + [d for _, d in flk_corpus.mutants(docs[0], step=45, offset=kind % 45)]
    found = 0
    for doc in corpus:
        fast = schematron.validate(sch, doc)
        assert fast == schematron.validate(sch, doc, fast=False)
        found += len(fast)
    assert found > 0          # the sample does produce findings, so there was something to compare


RAISING = """<schema xmlns="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt2">
  <pattern>
    <rule context="b"><assert test="1 idiv number(@x) = 1">T1-1. b, x = 1</assert>
                      <report test="@x = '0'">T1-2. b, x = 0</report></rule>
  </pattern>
</schema>"""


def test_a_check_that_raises_is_an_error_finding_and_the_others_still_run(tmp_path):
    """The unguarded stylesheet fails as a whole on x = 0 (1 idiv 0): the guarded one runs instead and gives the
    error as a finding of kind "error" beside the other checks' findings, as it always did."""
    sch = tmp_path / "raising.sch"
    sch.write_text(RAISING, encoding="utf-8")
    doc = b'<doc xmlns="urn:hl7-org:v3"><b x="1"/><b x="0"/><b x="2"/></doc>'
    findings = schematron.validate(sch, doc)
    assert [(f.rule, f.kind, f.location) for f in findings] == [
        ("T1-1", "error", "/Q{}doc[1]/Q{}b[2]"), ("T1-2", "report", "/Q{}doc[1]/Q{}b[2]"),
        ("T1-1", "assert", "/Q{}doc[1]/Q{}b[3]")]
    assert "ошибка вычисления проверки" in findings[0].message
    assert findings == schematron.validate(sch, doc, fast=False)
    with pytest.raises(Exception):   # noqa: B017,PT011 - Saxon's own error type: the unguarded one does raise here
        saxon = schematron._saxon()
        saxon.executable(sch, "select", guarded=False).transform_to_string(
            xdm_node=saxon.processor.parse_xml(xml_text=schematron.strip_cda_namespace(doc)))
