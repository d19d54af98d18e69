"""docs/federal-contract.md holds the code: every row's Value is read back out of the real messages.

The messages are the pipeline's own, with default settings, signed, sent to the running emulator and captured as they
leave the HTTP client (tests/federal_contract_wire.py): an ITI-41 of a generated СЭМД, a PIX add, a PDQ query, an
ITI-18 query and an ITI-43 request.
A row's check returns the values it finds, in the order the page lists them; a decision changed on one
side only fails, and so does a row without a check or a check without a row.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from iemk_etl import settings
from iemk_etl.protocol import soap
from iemk_etl.protocol.hl7v3 import pix
from iemk_etl.protocol.xds import query as xds_query
from iemk_etl.protocol.xds import retrieve, submit
from iemk_etl.protocol.xds.common import LCM, RIM, XDS
from iemk_etl.signing import wssecurity

from federal_contract_wire import Sent, capture_wire, new_database

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "federal-contract.md"

_ROW = re.compile(r"^\|\s*`(?P<id>[A-Z0-9][A-Z0-9-]*)`\s*\|(?P<rest>.*)\|\s*$")


def _rows(text: str) -> dict[str, list[str]]:
    """Id → the backticked items of the Value column (the third), in order."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = _ROW.match(line)
        if not m:
            continue
        cells = [c.strip() for c in m["rest"].split("|")]
        assert m["id"] not in rows, f"row {m['id']} twice in {PAGE.name}"
        rows[m["id"]] = re.findall(r"`([^`]*)`", cells[1])
    return rows


ROWS = _rows(PAGE.read_text(encoding="utf-8"))


NS = {"s": soap.SOAP, "wsa": soap.WSA, "egis": soap.EGIS, "wsse": wssecurity.WSSE, "wsu": wssecurity.WSU,
      "ds": wssecurity.DS, "hl7": "urn:hl7-org:v3", "xds": XDS, "rim": RIM, "lcm": LCM,
      "query": xds_query.QUERY}


class Msg:
    """One captured request, parsed once."""

    def __init__(self, sent: Sent) -> None:
        self.content_type = sent.content_type
        self.envelope = sent.envelope

    def xpath(self, path: str) -> list:
        return self.envelope.xpath(path, namespaces=NS)

    def text(self, path: str) -> str:
        return self.envelope.xpath(f"string({path})", namespaces=NS)

    @property
    def header_names(self) -> list[str]:
        return [etree.QName(el).localname for el in self.xpath("/s:Envelope/s:Header/*")]


Check = Callable[["Wire"], list[str]]
CHECKS: dict[str, Check] = {}


def check(row_id: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS[row_id] = fn
        return fn
    return register


# --- the messages -----------------------------------------------------------------------------------------------

@dataclass
class Wire:
    iti41: Msg
    pix_add: Msg
    pdq: Msg
    iti18: Msg
    iti43: Msg

    @property
    def sync(self) -> list[Msg]:
        return [self.pix_add, self.pdq, self.iti18, self.iti43]

    @property
    def all(self) -> list[Msg]:
        return [self.iti41, *self.sync]


@pytest.fixture(scope="module")
def wire(pg_template: str, dev_keys, flk_packs) -> Wire:
    dsn = new_database(pg_template, "iemk_federal_contract")
    capture = capture_wire(dsn, dev_keys, flk_packs)
    return Wire(iti41=Msg(capture.first(submit.ACTION)), pix_add=Msg(capture.first(pix.ACTION[pix.ADD])),
                pdq=Msg(capture.first(settings.load({}).pdq_action)), iti18=Msg(capture.first(xds_query.ACTION)),
                iti43=Msg(capture.first(retrieve.ACTION)))


# --- 1. SOAP transport ------------------------------------------------------------------------------------------

def _one(values: list[str], what: str) -> list[str]:
    distinct = sorted(set(values))
    assert len(distinct) == 1, f"{what} differs between messages: {distinct}"
    return distinct


@check("SOAP-VERSION")
def _soap_version(w: Wire) -> list[str]:
    return _one([etree.QName(s.envelope).namespace for s in w.all], "envelope namespace")


@check("SOAP-CONTENT-TYPE")
def _content_type(w: Wire) -> list[str]:
    return _one([s.content_type for s in w.all], "Content-Type")


@check("WSA-NS")
def _wsa_ns(w: Wire) -> list[str]:
    return _one([etree.QName(s.xpath("/s:Envelope/s:Header/*[local-name()='MessageID']")[0]).namespace
                 for s in w.all], "WS-Addressing namespace")


@check("WSA-MESSAGE-ID")
def _message_id(w: Wire) -> list[str]:
    return _one([s.text("/s:Envelope/s:Header/wsa:MessageID")[:len("urn:uuid:")] for s in w.all], "MessageID form")


@check("WSA-HEADERS")
def _wsa_headers(w: Wire) -> list[str]:
    orders = {tuple(n for n in s.header_names if n in ("Action", "MessageID", "ReplyTo", "To", "RelatesTo"))
              for s in w.all}
    assert len(orders) == 1, f"header order differs: {orders}"
    return list(orders.pop())


@check("WSA-REPLY-TO-SYNC")
def _reply_to_sync(w: Wire) -> list[str]:
    return _one([s.text("/s:Envelope/s:Header/wsa:ReplyTo/wsa:Address") for s in w.sync], "ReplyTo")


@check("EGIS-HEADER")
def _egis_header(w: Wire) -> list[str]:
    def where(s: Msg) -> str:
        found = s.xpath("/s:Envelope/s:Header//*[local-name()='clientEntityId']")
        assert len(found) == 1, "one clientEntityId in the header"
        path = [el for el in reversed(list(found[0].iterancestors())) if etree.QName(el).localname
                not in ("Envelope", "Header")]
        names = [etree.QName(el).localname for el in [*path, found[0]]]
        return f"{etree.QName(found[0]).namespace} {'/'.join(names)}"
    return _one([where(s) for s in w.all], "clientEntityId place")[0].split(" ")


# --- 2. WS-Security ---------------------------------------------------------------------------------------------

def _signed_part_names(s: Msg) -> list[str]:
    by_id = {el.get(f"{{{wssecurity.WSU}}}Id"): etree.QName(el).localname
             for el in s.xpath("//*[@wsu:Id]")}
    return [by_id[uri[1:]] for uri in s.xpath("//ds:SignedInfo/ds:Reference/@URI")]


@check("WSSE-SIGNED-PARTS")
def _signed_parts(w: Wire) -> list[str]:
    orders = {tuple(_signed_part_names(s)) for s in w.all}
    assert len(orders) == 1, f"signed parts differ: {orders}"
    return list(orders.pop())


@check("WSSE-C14N")
def _c14n(w: Wire) -> list[str]:
    found = [a for s in w.all for a in s.xpath("//ds:CanonicalizationMethod/@Algorithm | //ds:Transform/@Algorithm")]
    return _one(found, "canonicalization")


@check("WSSE-SIGNATURE-METHOD")
def _signature_method(w: Wire) -> list[str]:
    return _one([a for s in w.all for a in s.xpath("//ds:SignatureMethod/@Algorithm")], "SignatureMethod")


@check("WSSE-DIGEST-METHOD")
def _digest_method(w: Wire) -> list[str]:
    return _one([a for s in w.all for a in s.xpath("//ds:DigestMethod/@Algorithm")], "DigestMethod")


@check("WSSE-TOKEN")
def _token(w: Wire) -> list[str]:
    return _one([a for s in w.all for a in s.xpath("//wsse:BinarySecurityToken/@ValueType")], "token ValueType")


@check("WSSE-TIMESTAMP-TTL")
def _ttl(w: Wire) -> list[str]:
    import datetime as dt

    def seconds(s: Msg) -> str:
        created = dt.datetime.fromisoformat(s.text("//wsu:Timestamp/wsu:Created").replace("Z", "+00:00"))
        expires = dt.datetime.fromisoformat(s.text("//wsu:Timestamp/wsu:Expires").replace("Z", "+00:00"))
        return str(int((expires - created).total_seconds()))
    return _one([seconds(s) for s in w.all], "Timestamp lifetime")


# --- the page and the checks agree ------------------------------------------------------------------------------

def test_every_row_has_a_check_and_every_check_a_row() -> None:
    assert sorted(set(ROWS) - set(CHECKS)) == [], "rows of docs/federal-contract.md without a check"
    assert sorted(set(CHECKS) - set(ROWS)) == [], "checks without a row in docs/federal-contract.md"


def test_every_row_gives_a_value() -> None:
    assert [r for r, values in ROWS.items() if not values] == []


@pytest.mark.parametrize("row_id", sorted(ROWS))
def test_the_code_does_what_the_page_says(row_id: str, wire: Wire) -> None:
    if row_id not in CHECKS:
        pytest.fail(f"{row_id}: no check")
    assert CHECKS[row_id](wire) == ROWS[row_id], f"{row_id}: the code and docs/federal-contract.md disagree"
