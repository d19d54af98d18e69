"""The safe parser: large text nodes (a СЭМД with a scanned PDF) parse; DTDs, XXE, entity expansion and bodies over
the size limit are refused before the parser sees them."""

import base64

import pytest
from lxml import etree

from iemk_etl import errors, settings
from iemk_etl.protocol import soap, xml

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<r>&x;</r>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>"""


def test_a_text_node_over_libxml2s_default_cap_parses():
    payload = base64.b64encode(bytes(range(256)) * (48 * 1024))      # 12 MB of base64: one text node
    assert len(payload) > 10_000_000
    document = b"<ClinicalDocument xmlns='urn:hl7-org:v3'><value>" + payload + b"</value></ClinicalDocument>"
    with pytest.raises(etree.XMLSyntaxError):     # what lxml's default does with it: the bug this fixes
        etree.fromstring(document, etree.XMLParser(resolve_entities=False, no_network=True))
    root = xml.parse(document)
    assert root[0].text.encode() == payload


@pytest.mark.parametrize("data", [
    XXE,
    LAUGHS,
    b"<!DOCTYPE r SYSTEM 'http://127.0.0.1:9/evil.dtd'><r/>",
    b"\xef\xbb\xbf<?xml version='1.0'?><!-- a comment --><?pi here?>\n<!doctype r><r/>",
    "<?xml version='1.0' encoding='UTF-16'?><!DOCTYPE r [<!ENTITY a 'b'>]><r>&a;</r>".encode("utf-16"),
    "<!DOCTYPE r><r/>".encode("utf-16-le"),
], ids=["xxe", "billion-laughs", "external-dtd", "after-prolog-lowercase", "utf16-bom", "utf16-no-bom"])
def test_a_dtd_is_refused_before_parsing(data):
    with pytest.raises(xml.UnsafeXmlError, match="DOCTYPE") as refused:
        xml.parse(data)
    assert refused.value.code == errors.BAD_XML.code
    assert not isinstance(refused.value, xml.MessageTooLargeError)


def test_a_doctype_word_inside_the_document_is_only_text():
    root = xml.parse(b"<?xml version='1.0'?><!-- <!DOCTYPE x> --><r><![CDATA[<!DOCTYPE r>]]></r>")
    assert root.text == "<!DOCTYPE r>"


def test_a_soap_message_with_entities_is_a_format_error():
    with pytest.raises(soap.SoapFormatError, match="DOCTYPE"):
        soap.parse(LAUGHS)


def test_over_the_limit_is_refused_unread():
    data = b"<r>" + b"x" * 2000 + b"</r>"
    assert xml.parse(data, limit=len(data)).text == "x" * 2000
    with pytest.raises(xml.MessageTooLargeError) as refused:
        xml.parse(data, limit=len(data) - 1)
    assert refused.value.code == "MESSAGE_TOO_LARGE"
    assert (refused.value.size, refused.value.limit) == (len(data), len(data) - 1)
    # also when it is not XML at all: the size is checked first
    with pytest.raises(xml.MessageTooLargeError):
        xml.parse(b"\x00" * (xml.MAX_MESSAGE_BYTES + 1))


def test_the_default_limit_is_64_mib_and_the_setting_follows_it():
    assert xml.MAX_MESSAGE_BYTES == 67108864 == settings.DEFAULT_MAX_MESSAGE_BYTES
    assert settings.load({}).max_message_bytes == 67108864
    assert settings.load({"IEMK_MAX_MESSAGE_BYTES": "2097152"}).max_message_bytes == 2097152
    with pytest.raises(settings.SettingsError, match="IEMK_MAX_MESSAGE_BYTES"):
        settings.load({"IEMK_MAX_MESSAGE_BYTES": "1000"})       # under 1 MiB
    with pytest.raises(settings.SettingsError, match="IEMK_MAX_MESSAGE_BYTES"):
        settings.load({"IEMK_MAX_MESSAGE_BYTES": "64MB"})


def test_the_error_code_is_catalogued():
    kind = errors.kind("MESSAGE_TOO_LARGE")
    assert kind is errors.MESSAGE_TOO_LARGE
    assert (kind.actor, kind.retry) == (errors.Actor.MIS_DATA, errors.Retry.NEVER)
    assert kind.title == "Размер сообщения превышает допустимый"
    assert errors.of_fault("Sender", "MESSAGE_TOO_LARGE") is kind
