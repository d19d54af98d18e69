"""XML the project reads and writes: safe parsing of what comes from outside, and the one element helper.

Parsing (``parse``): no DTD at all (a document declaring one is refused before the parser sees it, so neither XXE
nor entity expansion can happen), no entities resolved, no network, and a bounded size. Within that bound the
parser runs with libxml2's large-document option (``huge_tree``): a СЭМД embedding a scanned PDF carries a base64
text node of tens of megabytes, over libxml2's default 10 MB text-node cap («Text node too long» at ≈7.5 MB of
document), and the ITI-41 envelope around it is bigger still.
Building: ``sub`` adds a child element; every builder (SOAP, WS-Security, XDS, HL7v3, the СЭМД header) uses it,
so the rules for tags and attributes are written once.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable

from lxml import etree

from iemk_etl import errors
from iemk_etl.errors import IemkError

# The largest message (an HTTP body, an XML document) accepted or sent: 64 MiB, the limit ИЭМК documents.
# IEMK_MAX_MESSAGE_BYTES changes it for an installation (settings.max_message_bytes).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MIN_MESSAGE_BYTES = 1024 * 1024   # below this no real СЭМД fits: a smaller setting is a mistake

Element = etree._Element
Tag = str | tuple[str, str]
"""An element name: Clark notation ``{namespace}local`` (or a bare local name), or ``(namespace, local)``."""


class UnsafeXmlError(IemkError, ValueError):
    default_kind = errors.BAD_XML


class MessageTooLargeError(UnsafeXmlError):
    """Over the size limit: refused unread, whatever it holds."""

    default_kind = errors.MESSAGE_TOO_LARGE

    def __init__(self, size: int, limit: int, what: str = "XML document") -> None:
        super().__init__(f"{what} of {size} bytes exceeds the limit of {limit} bytes ({limit / 2**20:.1f} MiB)")
        self.size = size
        self.limit = limit


def _parser() -> etree.XMLParser:
    # huge_tree lifts libxml2's text-node and depth caps; what it would otherwise guard (entity amplification) cannot
    # happen, since a DTD never reaches the parser, and the size is bounded before parsing.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=True,
        remove_comments=False,
    )


def parse(data: bytes, *, limit: int = MAX_MESSAGE_BYTES) -> Element:
    """Parse untrusted bytes; over ``limit`` is MessageTooLargeError, a DOCTYPE is UnsafeXmlError (refused outright
    rather than half-processed), malformed XML is lxml's XMLSyntaxError."""
    if len(data) > limit:
        raise MessageTooLargeError(len(data), limit)
    refuse_doctype(data)
    root = etree.fromstring(data, parser=_parser())
    if root.getroottree().docinfo.doctype:       # a second guard: the prolog scan should have caught it
        raise UnsafeXmlError("XML with a DOCTYPE declaration is refused")
    return root


# The prolog: an XML declaration, processing instructions, comments and white space before the root element.
_PROLOG_ITEM = re.compile(rb"\s+|<\?.*?\?>|<!--.*?-->", re.DOTALL)
_PROLOG_SCAN = 1024 * 1024    # a longer prolog than this is not a document we take


def refuse_doctype(data: bytes) -> None:
    """UnsafeXmlError when the prolog declares a DTD (``<!DOCTYPE``): internal entities (billion laughs), external
    ones (XXE) and external DTDs all live there, so none of them gets as far as the parser."""
    head = _ascii_view(data[:_PROLOG_SCAN])
    pos = 0
    while pos < len(head):
        item = _PROLOG_ITEM.match(head, pos)
        if item is None:
            break
        pos = item.end()
    rest = head[pos:pos + 9]
    if rest.upper().startswith(b"<!DOCTYPE") or rest.startswith(b"<!"):
        raise UnsafeXmlError("XML with a DOCTYPE declaration is refused (DTDs and entities are not accepted)")
    if pos >= len(head) and len(data) > _PROLOG_SCAN:
        raise UnsafeXmlError(f"no root element in the first {_PROLOG_SCAN} bytes of the XML document")


# Encodings libxml2 detects without a BOM (XML 1.0 Appendix F): the first four bytes of "<?xm" or "<".
_SNIFFED = {b"\x00\x00\x00<": "utf-32-be", b"<\x00\x00\x00": "utf-32-le", b"\x00<\x00?": "utf-16-be",
            b"<\x00?\x00": "utf-16-le"}
_EBCDIC = b"\x4c\x6f\xa7\x94"


def _ascii_view(head: bytes) -> bytes:
    """The head's markup as ASCII-compatible bytes, whatever the encoding libxml2 would detect: UTF-16 and UTF-32
    (with a BOM or without) are decoded, a UTF-8 BOM dropped; EBCDIC is refused rather than scanned."""
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                       (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if head.startswith(bom):
            return _reencode(head, codec)
    if head[:4] in _SNIFFED:
        return _reencode(head, _SNIFFED[head[:4]])
    if head[:2] in (b"<\x00", b"\x00<"):      # "<" in UTF-16 before something other than "?"
        return _reencode(head, "utf-16-le" if head[0] == 0x3C else "utf-16-be")
    if head.startswith(_EBCDIC):
        raise UnsafeXmlError("XML in EBCDIC is not accepted")
    return head.removeprefix(codecs.BOM_UTF8)


def _reencode(head: bytes, codec: str) -> bytes:
    width = 4 if "32" in codec else 2
    cut = len(head) - len(head) % width       # the head may end inside a character
    return head[:cut].decode(codec, errors="replace").encode("utf-8", errors="replace")


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
