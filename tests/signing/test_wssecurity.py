import datetime as dt

import pytest
from lxml import etree

from iemk_etl.devtools import certs
from iemk_etl.protocol import soap, xml
from iemk_etl.signing import keys, wssecurity


def _envelope(signer=None, **addressing):
    a = soap.Addressing(message_id="urn:uuid:1", action="urn:test", to="http://iemk/xds",
                        reply_to="http://mis/cb", **addressing)
    body = etree.Element("{urn:test}Payload")
    body.text = "значение"
    env = soap.build_envelope(body, a, "17c74e63-dc38-438d-a27a-a1aa063ee7b8")
    if signer:
        wssecurity.sign_envelope(env, signer)
    # Every check goes through bytes, as on the wire.
    return xml.parse(soap.to_bytes(env))


@pytest.fixture(scope="module")
def signer(dev_keys):
    return keys.load_signer(*dev_keys)


def test_signed_envelope_verifies(signer):
    verified = wssecurity.verify_envelope(_envelope(signer))
    assert verified.certificate_der == signer.certificate_der


def test_every_required_part_is_referenced(signer):
    env = _envelope(signer)
    refs = env.xpath("//ds:Reference/@URI", namespaces={"ds": wssecurity.DS})
    assert len(refs) == len(wssecurity.REQUIRED_PARTS) == 6


def test_unsigned_request_is_refused():
    with pytest.raises(wssecurity.SignatureError) as err:
        wssecurity.verify_envelope(_envelope())
    assert err.value.code == "NO_SIGNATURE"


def test_tampered_body_is_refused(signer):
    env = _envelope(signer)
    env.find(".//{urn:test}Payload").text = "подмена"
    with pytest.raises(wssecurity.SignatureError) as err:
        wssecurity.verify_envelope(env)
    assert err.value.code == "DIGEST_MISMATCH"
    assert "Body" in err.value.message


@pytest.mark.parametrize("header", ["To", "Action", "MessageID"])
def test_tampered_addressing_header_is_refused(signer, header):
    env = _envelope(signer)
    env.find(f".//{{{soap.WSA}}}{header}").text = "urn:other"
    with pytest.raises(wssecurity.SignatureError) as err:
        wssecurity.verify_envelope(env)
    assert err.value.code == "DIGEST_MISMATCH"
    assert header in err.value.message


def test_tampered_reply_to_is_refused(signer):
    env = _envelope(signer)
    env.find(f".//{{{soap.WSA}}}ReplyTo/{{{soap.WSA}}}Address").text = "http://attacker/cb"
    with pytest.raises(wssecurity.SignatureError) as err:
        wssecurity.verify_envelope(env)
    assert err.value.code == "DIGEST_MISMATCH"


def test_tampered_signature_value_is_refused(signer):
    env = _envelope(signer)
    value = env.find(f".//{{{wssecurity.DS}}}SignatureValue")
    value.text = ("A" if value.text[0] != "A" else "B") + value.text[1:]
    with pytest.raises(wssecurity.SignatureError) as err:
        wssecurity.verify_envelope(env)
    assert err.value.code == "SIGNATURE_VERIFICATION_ERROR"


def test_duplicate_id_signature_wrapping_is_refused(signer):
    env = _envelope(signer)
    body = env.find(f"{{{soap.SOAP}}}Body")
    clone = etree.fromstring(etree.tostring(body))
    env.find(f"{{{soap.SOAP}}}Header").append(clone)
    with pytest.raises(wssecurity.SignatureError) as err:
        wssecurity.verify_envelope(env)
    assert err.value.code == "WRONG_SIGNATURE_FORMAT"


def test_expired_certificate_is_refused(tmp_path):
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    expired = keys.load_signer(*certs.create_dev_certificate(tmp_path, days=10, not_before=old), check=False)
    with pytest.raises(wssecurity.SignatureError) as err:
        wssecurity.verify_envelope(_envelope(expired))
    assert err.value.code == "CERT_NOT_VALID"


def test_stale_timestamp_is_refused(signer):
    env = soap.build_envelope(etree.Element("{urn:test}P"), soap.Addressing("urn:uuid:2", "urn:a", "http://t",
                                                                            "http://r"), "id")
    wssecurity.sign_envelope(env, signer, ttl_seconds=60, now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    with pytest.raises(wssecurity.SignatureError) as err:
        wssecurity.verify_envelope(xml.parse(soap.to_bytes(env)))
    assert err.value.code == "MESSAGE_EXPIRED"


def test_key_that_does_not_match_the_certificate_is_refused(tmp_path, dev_keys):
    other_cert, _ = certs.create_dev_certificate(tmp_path)
    with pytest.raises(keys.KeyMaterialError, match="не соответствует сертификату"):
        keys.load_signer(other_cert, dev_keys[1])
