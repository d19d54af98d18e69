"""The ITI-41 metadata builder and the ITI-18 query/answer, in both layouts (IEMK_XDS_METADATA_LAYOUT)."""

import dataclasses
import hashlib

import pytest
from lxml import etree

from iemk_etl import kinds
from iemk_etl.protocol.xds import query as xds_query
from iemk_etl.protocol.xds import submit
from iemk_etl.protocol.xds.common import (
    EVIDENCE,
    LEGACY,
    NS,
    SCHEME_AUTHOR,
    SCHEME_CLASS_CODE,
    SCHEME_CONFIDENTIALITY,
    SCHEME_FORMAT_CODE,
    SCHEME_TYPE_CODE,
    is_urn_uuid,
)

from cda_factory import MO, document
from exchange_helpers import _submission

DATA = document()


def _request(layout: str = EVIDENCE, **changes) -> etree._Element:
    sub = dataclasses.replace(_submission(DATA), layout=layout, repository_unique_id="1.2.643.5.1.13.2.7.100.1",
                              **changes)
    return submit.build_request(sub)


def _code(request: etree._Element, scheme: str) -> tuple[str, str]:
    cl = request.xpath("//rim:ExtrinsicObject/rim:Classification[@classificationScheme=$s]", namespaces=NS,
                       s=scheme)[0]
    return cl.get("nodeRepresentation"), cl.xpath("string(rim:Slot[@name='codingScheme']//rim:Value)", namespaces=NS)


def _slot(request: etree._Element, name: str) -> list[str]:
    return request.xpath("//rim:ExtrinsicObject/rim:Slot[@name=$n]/rim:ValueList/rim:Value/text()", namespaces=NS,
                         n=name)


def test_the_evidence_layout_has_the_mime_format_and_the_document_type_in_class_code():
    r = _request()
    assert _code(r, SCHEME_FORMAT_CODE) == ("application/hl7-cda-level-one+xml", "1.2.643.5.1.13.2.7.1.40")
    assert _code(r, SCHEME_CLASS_CODE) == ("2", "1.2.643.5.1.13.13.11.1522")      # kind 42: type 2 by НСИ 1522
    assert _code(r, SCHEME_TYPE_CODE) == ("POCD_MT000040_RU01", "2.16.840.1.113883.1.3")
    assert _code(r, SCHEME_CONFIDENTIALITY) == ("N", "1.2.643.5.1.13.2.7.1.10")
    institution = r.xpath("string(//rim:ExtrinsicObject/rim:Classification[@classificationScheme=$s]"
                          "/rim:Slot[@name='authorInstitution']//rim:Value)", namespaces=NS, s=SCHEME_AUTHOR)
    assert institution == f"{MO.name}^^^^^&1.2.643.5.1.13.2.1.1.178&ISO^^^^{MO.oid}"
    assert _slot(r, "serviceStartTime") and _slot(r, "serviceStopTime")
    source = r.xpath("string(//rim:RegistryPackage/rim:ExternalIdentifier[@identificationScheme=$s]/@value)",
                     namespaces=NS, s=submit.EI_SS_SOURCE_ID)
    assert source == MO.oid


def test_the_legacy_layout_is_the_layout_before_issue_12():
    r = _request(LEGACY)
    assert _code(r, SCHEME_FORMAT_CODE) == ("42", kinds.NSI_1520)
    assert _code(r, SCHEME_CLASS_CODE) == ("2", kinds.NSI_1522)
    assert _code(r, SCHEME_TYPE_CODE) == ("POCD_MT000040", "2.16.840.1.113883.1.3")
    assert _code(r, SCHEME_CONFIDENTIALITY) == ("N", "1.2.643.5.1.13.13.99.2.285")
    assert not _slot(r, "serviceStartTime")
    assert not r.xpath("//rim:ExternalIdentifier[@identificationScheme=$s]", namespaces=NS, s=submit.EI_SS_SOURCE_ID)


@pytest.mark.parametrize("layout", [EVIDENCE, LEGACY])
def test_ihe_ids_hash_size_and_repository_in_both_layouts(layout):
    r = _request(layout)
    entry = r.xpath("//rim:ExtrinsicObject/@id", namespaces=NS)[0]
    ids = r.xpath("//rim:ExtrinsicObject/@id | //rim:RegistryPackage/@id | //rim:Association/@id"
                  " | //rim:Classification/@id | //rim:ExternalIdentifier/@id", namespaces=NS)
    assert all(is_urn_uuid(i) for i in ids) and len(set(ids)) == len(ids)
    assert r.xpath("string(xds:Document/@id)", namespaces=NS) == entry
    assert r.xpath("string(//rim:Association/@targetObject)", namespaces=NS) == entry
    assert _slot(r, "hash") == [hashlib.sha1(DATA).hexdigest()]
    assert _slot(r, "size") == [str(len(DATA))]
    assert _slot(r, "repositoryUniqueId") == ["1.2.643.5.1.13.2.7.100.1"]


def test_ids_are_derived_from_the_unique_id_and_the_content():
    def ids(request: etree._Element) -> list[str]:
        return request.xpath("//@id", namespaces=NS)

    assert ids(_request()) == ids(_request())                      # a resend is the same request
    assert ids(_request()) != ids(_request(document=DATA + b" "))  # other bytes, other entry
    assert ids(_request()) != ids(_request(unique_id="1.2.3^other"))


def test_the_receiver_reads_both_layouts():
    evidence, legacy = (submit.read_request(_request(layout)) for layout in (EVIDENCE, LEGACY))
    assert evidence.kind_code is None and evidence.class_code == f"2^^{kinds.NSI_1522}"
    assert evidence.format_code == "application/hl7-cda-level-one+xml^^1.2.643.5.1.13.2.7.1.40"
    assert legacy.kind_code == 42 and legacy.format_code == f"42^^{kinds.NSI_1520}"
    assert evidence.document == legacy.document == DATA
    assert evidence.hash == hashlib.sha1(DATA).hexdigest() and evidence.size == str(len(DATA))
    assert is_urn_uuid(evidence.entry_id)


def test_find_documents_asks_the_kind_by_class_code_or_by_format_code():
    q = xds_query.DocumentQuery(mo_oid=MO.oid, kind_code=119)

    def slots(layout: str) -> dict[str, list[str]]:
        request = xds_query.build_request(q, layout)
        return {s.get("name"): s.xpath("rim:ValueList/rim:Value/text()", namespaces=NS)
                for s in request.iter(f"{{{NS['rim']}}}Slot")}

    assert slots(EVIDENCE)["$XDSDocumentEntryClassCode"] == [f"('5^^{kinds.NSI_1522}')"]
    assert "$XDSDocumentEntryFormatCode" not in slots(EVIDENCE)
    assert slots(LEGACY)["$XDSDocumentEntryFormatCode"] == [f"('119^^{kinds.NSI_1520}')"]
    assert xds_query.read_request(xds_query.build_request(q, EVIDENCE)).doc_type == 5
    assert xds_query.read_request(xds_query.build_request(q, LEGACY)).kind_code == 119


def _answer(**changes) -> etree._Element:
    entry = xds_query.DocumentEntry("1.2.3^D-1", "P-1^^^&1.2&ISO", 42, None, xds_query.APPROVED,
                                    hashlib.sha1(DATA).hexdigest(), len(DATA),
                                    "urn:uuid:9b1c7f0e-3c59-4d2a-9a61-0b7e0c1f5e21", "1.2.643.5.1.13.2.7.100.1",
                                    f"2^^{kinds.NSI_1522}",
                                    "application/hl7-cda-level-one+xml^^1.2.643.5.1.13.2.7.1.40")
    return xds_query.build_response([dataclasses.replace(entry, **changes)])


def test_an_iti18_entry_gives_its_kind_from_the_class_code():
    [entry] = xds_query.read_response(_answer())
    assert (entry.kind_code, entry.entry_uuid, entry.size) == (42, "urn:uuid:9b1c7f0e-3c59-4d2a-9a61-0b7e0c1f5e21",
                                                               len(DATA))


@pytest.mark.parametrize(("change", "words"), [
    ({"entry_uuid": "Document01"}, r"entryUUID \[Document01\] не urn:uuid"),
    ({"content_hash": hashlib.sha256(DATA).hexdigest()}, "не SHA-1"),
    ({"repository_unique_id": ""}, "нет repositoryUniqueId"),
])
def test_an_iti18_entry_without_ihe_metadata_is_refused(change, words):
    with pytest.raises(xds_query.RegistryMetadataError, match=words):
        xds_query.read_response(_answer(**change))
