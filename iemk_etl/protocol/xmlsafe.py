"""Parsing of XML that comes from outside: no entities, no DTDs, no network, bounded size."""

from __future__ import annotations

from lxml import etree

MAX_XML_BYTES = 50 * 1024 * 1024


class UnsafeXmlError(ValueError):
    pass


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False,
        remove_comments=False,
    )


def parse(data: bytes) -> etree._Element:
    """Parse untrusted bytes; a DOCTYPE is refused outright rather than half-processed."""
    if len(data) > MAX_XML_BYTES:
        raise UnsafeXmlError(f"XML document of {len(data)} bytes exceeds the limit of {MAX_XML_BYTES}")
    root = etree.fromstring(data, parser=_parser())
    if root.getroottree().docinfo.doctype:
        raise UnsafeXmlError("XML with a DOCTYPE declaration is refused")
    return root
