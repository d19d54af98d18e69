"""XML the project reads and writes: safe parsing of what comes from outside, and the one element helper.

Parsing: no entities, no DTDs, no network, bounded size (``parse``).
Building: ``sub`` adds a child element; every builder (SOAP, WS-Security, XDS, HL7v3, the СЭМД header) uses it,
so the rules for tags and attributes are written once.
"""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from iemk_etl import errors
from iemk_etl.errors import IemkError

MAX_XML_BYTES = 50 * 1024 * 1024

Element = etree._Element
Tag = str | tuple[str, str]
"""An element name: Clark notation ``{namespace}local`` (or a bare local name), or ``(namespace, local)``."""


class UnsafeXmlError(IemkError, ValueError):
    default_kind = errors.BAD_XML


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False,
        remove_comments=False,
    )


def parse(data: bytes) -> Element:
    """Parse untrusted bytes; a DOCTYPE is refused outright rather than half-processed."""
    if len(data) > MAX_XML_BYTES:
        raise UnsafeXmlError(f"XML document of {len(data)} bytes exceeds the limit of {MAX_XML_BYTES}")
    root = etree.fromstring(data, parser=_parser())
    if root.getroottree().docinfo.doctype:
        raise UnsafeXmlError("XML with a DOCTYPE declaration is refused")
    return root


def qname(tag: Tag) -> str:
    """The Clark name of ``tag``."""
    return f"{{{tag[0]}}}{tag[1]}" if isinstance(tag, tuple) else tag


def sub(parent: Element, tag: Tag, text: str | None = None, /, **attrs: str | None) -> Element:
    """Append a child element to ``parent`` and return it.

    Attributes are set in the order given (the wire output keeps it); a ``None`` value leaves the attribute out;
    a trailing underscore is dropped so Python keywords can be names (``class_``); namespaced attributes are
    passed in Clark notation, ``**{"{ns}name": value}``.
    """
    node = etree.SubElement(parent, qname(tag))
    for name, value in attrs.items():
        if value is not None:
            node.set(name.rstrip("_"), value)
    if text is not None:
        node.text = text
    return node


def in_namespace(namespace: str) -> Callable[..., Element]:
    """``sub`` with bare tags read in one namespace, for builders that write a single vocabulary (HL7v3)."""
    def sub_in(parent: Element, tag: str, text: str | None = None, /, **attrs: str | None) -> Element:
        return sub(parent, (namespace, tag), text, **attrs)

    sub_in.__doc__ = f"``sub`` in {namespace}."
    return sub_in
