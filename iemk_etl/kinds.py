"""The СЭМД kinds iemk-etl produces, by their code in НСИ 1.2.643.5.1.13.13.11.1520."""

from __future__ import annotations

from dataclasses import dataclass

from iemk_etl import errors
from iemk_etl.errors import DataError

NSI_1520 = "1.2.643.5.1.13.13.11.1520"
NSI_1522 = "1.2.643.5.1.13.13.11.1522"
# The 2013 OID of «Виды медицинской документации» (1522's predecessor): the XDS classCode of the reconstructed
# ITI-41 (../shared/samples/reconstructed, iemk-protocol.md §2.2 [S3]) is in it; code 1 «Эпикриз стационара» is
# the same document type as 1522's code 1.
NSI_646_OLD = "1.2.643.5.1.13.2.1.1.646"


@dataclass(frozen=True)
class SemdKind:
    code: int             # НСИ 1520: the registered kind and edition
    name: str
    doc_type: int         # НСИ 1522: «Виды медицинской документации», the ClinicalDocument/code
    doc_type_name: str
    template_id: str
    # НСИ 1.2.643.5.1.13.13.99.2.42 «Правила подписи ЭМД» decides; no public copy of it was found (docs/semd.md
    # says where we looked), so every kind we make carries the МО's signature too, which РЭМД accepts where it is
    # optional (unverified per kind).
    requires_org_signature: bool = True


KINDS: dict[int, SemdKind] = {
    k.code: k
    for k in (
        SemdKind(41, "Эпикриз в стационаре выписной (CDA) Редакция 3", 1, "Эпикриз в стационаре выписной",
                 "1.2.643.5.1.13.2.7.5.1.1.3"),
        SemdKind(42, "Эпикриз по законченному случаю амбулаторный (CDA) Редакция 3", 2,
                 "Эпикриз по законченному случаю амбулаторный", "1.2.643.5.1.13.2.7.5.1.2.3"),
        # 43's templateId is inferred, unverified: …5.1.<1522 type>.<formalisation level 3>, as 41/42 Ред. 3 (same
        # start date) and 15, 16, 17 (Ред. 2 is …5.1.7.3: the last arc is the level, not the edition). The authority is
        # ФНСИ 1.2.643.5.1.13.13.99.2.267 «Справочник шаблонов CDA документов»; evidence in docs/semd.md.
        SemdKind(43, "Направление на госпитализацию, восстановительное лечение, обследование, консультацию "
                 "(CDA) Редакция 2", 3, "Направление на госпитализацию, восстановительное лечение, "
                 "обследование, консультацию", "1.2.643.5.1.13.2.7.5.1.3.3"),
        SemdKind(119, "Протокол консультации (CDA) Редакция 4", 5, "Протокол консультации",
                 "1.2.643.5.1.13.2.7.5.1.5.9.4"),
        SemdKind(174, "Протокол инструментального исследования (CDA) Редакция 4", 6,
                 "Протокол инструментального исследования", "1.2.643.5.1.13.13.14.6.9.4"),
        SemdKind(186, "Протокол лабораторного исследования (CDA) Редакция 5", 7,
                 "Протокол лабораторного исследования", "1.2.643.5.1.13.13.14.7.9.5"),
    )
}

_BY_TEMPLATE = {k.template_id: k for k in KINDS.values()}
# НСИ 1522 type → our kind. Each of our six kinds has a type of its own (1520 «kind_1520,type_code_1522» in
# ../shared/nsi/1520_registered_emd_kinds_subset.csv: 41→1, 42→2, 43→3, 119→5, 174→6, 186→7), so a classCode
# answered by the registry names one of our kinds; other kinds of the same type (e.g. 16) are not ours.
_BY_DOC_TYPE = {k.doc_type: k for k in KINDS.values()}
if len(_BY_DOC_TYPE) != len(KINDS):
    raise RuntimeError("two of our kinds share an НСИ 1522 type: the XDS classCode would not name our kind")


class UnknownKindError(DataError, ValueError):
    default_kind = errors.UNKNOWN_KIND


def get(code: int) -> SemdKind:
    try:
        return KINDS[code]
    except KeyError:
        raise UnknownKindError(f"код {code} по НСИ 1520 (поддерживаются: {', '.join(map(str, sorted(KINDS)))})"
                               ) from None


def by_template_id(template_id: str) -> SemdKind | None:
    return _BY_TEMPLATE.get(template_id)


def by_doc_type(doc_type: int) -> SemdKind | None:
    """Our kind of an НСИ 1522 document type (the XDS classCode), if we make one of that type."""
    return _BY_DOC_TYPE.get(doc_type)
