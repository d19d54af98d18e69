"""SOAP 1.2 envelopes as the ИПС expects them: WS-Addressing 2005/08 and the egisz transportHeader."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from iemk_etl.errors import IemkError
from iemk_etl.protocol import xml
from iemk_etl.protocol.xml import sub

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
EGIS = "http://egisz.rosminzdrav.ru"
ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"
CONTENT_TYPE = "application/soap+xml; charset=utf-8"

_NS = {"s": SOAP, "wsa": WSA, "egis": EGIS}


class SoapFormatError(IemkError, ValueError):
    """A message that is not a usable SOAP 1.2 envelope (said in Russian: it may reach a status)."""


@dataclass(frozen=True)
class Addressing:
    message_id: str
    action: str
    to: str | None = None
    reply_to: str | None = None
    relates_to: str | None = None


@dataclass(frozen=True)
class Message:
    envelope: etree._Element
    addressing: Addressing
    client_entity_id: str | None
    body: etree._Element | None  # the first child of soap:Body


@dataclass(frozen=True)
class Fault:
    code: str        # "Sender" or "Receiver"
    subcode: str | None
    reason: str

    @property
    def is_transient(self) -> bool:
        # A Receiver fault is the service's own trouble: the same request may succeed later.
        return self.code == "Receiver"


def new_message_id() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def build_envelope(body_child: etree._Element | None, addressing: Addressing,
                   client_entity_id: str | None = None) -> etree._Element:
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"soap": SOAP, "wsa": WSA, "egis": EGIS})
    header = sub(env, (SOAP, "Header"))
    if client_entity_id is not None:
        auth = sub(sub(header, (EGIS, "transportHeader")), (EGIS, "authInfo"))
        sub(auth, (EGIS, "clientEntityId"), client_entity_id)
    sub(header, (WSA, "Action"), addressing.action)
    sub(header, (WSA, "MessageID"), addressing.message_id)
    if addressing.reply_to is not None:
        sub(sub(header, (WSA, "ReplyTo")), (WSA, "Address"), addressing.reply_to)
    if addressing.to is not None:
        sub(header, (WSA, "To"), addressing.to)
    if addressing.relates_to is not None:
        sub(header, (WSA, "RelatesTo"), addressing.relates_to)
    body = sub(env, (SOAP, "Body"))
    if body_child is not None:
        body.append(body_child)
    return env


def to_bytes(envelope: etree._Element) -> bytes:
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


# Whole base64 quanta (a multiple of 3 bytes): the chunks' encodings, one after another, are the whole one's.
_BASE64_CHUNK = 3 * 256 * 1024


def base64_chunks(data: bytes) -> Iterator[bytes]:
    """``base64.b64encode(data)`` a megabyte at a time (slices of a memoryview: the document is not copied)."""
    view = memoryview(data)
    for start in range(0, len(view), _BASE64_CHUNK):
        yield base64.b64encode(view[start:start + _BASE64_CHUNK])


@dataclass(frozen=True)
class SplicedMessage:
    """A serialised message in which ``document``'s base64 stands where a placeholder was: the bytes before it, the
    base64 a chunk at a time, the bytes after it. Iterating it gives exactly the message's bytes; they are never all
    in memory at once (a 50 MB СЭМД's ITI-41 envelope is 67 MB): the HTTP body and the audit archive read it
    in chunks. ``bytes(message)`` joins it, for whoever needs the whole."""

    head: bytes
    document: bytes
    tail: bytes

    def __len__(self) -> int:
        return len(self.head) + 4 * -(-len(self.document) // 3) + len(self.tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        yield from base64_chunks(self.document)
        yield self.tail

    def __bytes__(self) -> bytes:
        return b"".join(self)


@dataclass(frozen=True)
class Placeholder:
    """What an element's text holds instead of ``document``'s base64 while the message is built and signed: a token
    unique to this message, plain ASCII, which neither serialisation nor canonicalisation escapes (nor the
    base64 that replaces it), so splicing the base64 in after either gives the bytes the whole text would have."""

    text: str
    document: bytes

    @classmethod
    def of(cls, document: bytes) -> Placeholder:
        return cls(f"IEMK-DOCUMENT-{uuid.uuid4().hex}", document)

    def splice(self, serialized: bytes) -> SplicedMessage | None:
        """The serialised element or message with the base64 in place of the token; None when it does not hold the
        token (once only: a second one would be an error)."""
        head, found, tail = serialized.partition(self.text.encode())
        if not found:
            return None
        if self.text.encode() in tail:
            raise ValueError("the document's placeholder occurs more than once")
        return SplicedMessage(head, self.document, tail)


def parse(data: bytes, *, limit: int = xml.MAX_MESSAGE_BYTES) -> Message:
    try:
        env = xml.parse(data, limit=limit)
    except (etree.XMLSyntaxError, xml.UnsafeXmlError) as exc:
        raise SoapFormatError(f"сообщение не является корректным XML: {exc}") from None
    if env.tag != f"{{{SOAP}}}Envelope":
        raise SoapFormatError(f"ожидался конверт SOAP 1.2 ({SOAP}), получен {env.tag}")

    def text(xpath: str) -> str | None:
        value = env.xpath(f"normalize-space({xpath})", namespaces=_NS)
        return value or None

    addressing = Addressing(
        message_id=text("/s:Envelope/s:Header/wsa:MessageID") or "",
        action=text("/s:Envelope/s:Header/wsa:Action") or "",
        to=text("/s:Envelope/s:Header/wsa:To"),
        reply_to=text("/s:Envelope/s:Header/wsa:ReplyTo/wsa:Address"),
        relates_to=text("/s:Envelope/s:Header/wsa:RelatesTo"),
    )
    body = env.find(f"{{{SOAP}}}Body")
    first = body[0] if body is not None and len(body) else None
    client = text("/s:Envelope/s:Header/egis:transportHeader/egis:authInfo/egis:clientEntityId")
    return Message(env, addressing, client, first)


def build_fault(fault: Fault, *, relates_to: str | None = None) -> bytes:
    addressing = Addressing(new_message_id(), f"{WSA}/soap/fault", relates_to=relates_to)
    env = build_envelope(None, addressing)
    fault_el = sub(env.find(f"{{{SOAP}}}Body"), (SOAP, "Fault"))
    code = sub(fault_el, (SOAP, "Code"))
    sub(code, (SOAP, "Value"), f"soap:{fault.code}")
    if fault.subcode:
        sub(sub(code, (SOAP, "Subcode")), (SOAP, "Value"), fault.subcode)
    text = sub(sub(fault_el, (SOAP, "Reason")), (SOAP, "Text"), fault.reason)
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "ru")
    return to_bytes(env)


def find_fault(message: Message) -> Fault | None:
    if message.body is None or message.body.tag != f"{{{SOAP}}}Fault":
        return None
    f = message.body
    value = f.xpath("normalize-space(s:Code/s:Value)", namespaces=_NS)
    subcode = f.xpath("normalize-space(s:Code/s:Subcode/s:Value)", namespaces=_NS) or None
    reason = f.xpath("normalize-space(s:Reason/s:Text)", namespaces=_NS)
    return Fault(value.split(":")[-1] or "Receiver", subcode, reason)
