"""XMLDSig: a CryptoPro-made GOST signature verifies (library and `iemk-etl verify`), tampering and wrapping are
caught, what we cannot verify is "unsupported" (exit 3), and our own enveloped signatures round-trip in both GOST
URI spellings and both canonicalisations."""

import base64
import datetime as dt
import subprocess
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from lxml import etree

from iemk_etl import cli
from iemk_etl.protocol import soap, xml
from iemk_etl.signing import asn1, keys, wssecurity, xmldsig

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
CRYPTOPRO_256 = VECTORS / "cryptopro_corefx_2012_256.xml"
CRYPTOPRO_2001 = VECTORS / "cryptopro_corefx_2001.xml"
CRYPTOPRO_512 = VECTORS / "cryptopro_corefx_2012_512.xml"
DS = {"ds": xmldsig.DS}


@pytest.fixture(scope="module")
def signer(dev_keys):
    return keys.load_signer(*dev_keys)


def _verify(data: bytes) -> list[xmldsig.VerifiedSignature]:
    return xmldsig.verify_document(xml.parse(data))


def _run_cli(capsys, path) -> tuple[int, str]:
    code = cli.main(["verify", str(path)])
    return code, capsys.readouterr().out


# -- the CryptoPro-made vector ---------------------------------------------------------------------------------

def test_cryptopro_signature_verifies():
    [verified] = _verify(CRYPTOPRO_256.read_bytes())
    assert verified.signature_method == keys.GOST_2012_256_CP
    assert verified.canonicalization == xmldsig.C14N        # inclusive c14n 1.0, as CryptoPro's .NET writes
    assert verified.enveloped
    [reference] = verified.references
    assert reference.uri == "" and etree.QName(reference.element).localname == "MyXML"
    assert reference.digest_method == keys.STREEBOG_256_CP
    cert = asn1_x509.Certificate.load(verified.certificate_der)
    assert cert.subject.native["common_name"] == "Gost_2012_256_Test"


def test_cryptopro_signature_verifies_with_each_backend(gost_backend):
    """The signature value itself, through each GOST backend (pure Python and the OpenSSL engine)."""
    root = xml.parse(CRYPTOPRO_256.read_bytes())
    signed_info = root.find("ds:Signature/ds:SignedInfo", DS)
    value = base64.b64decode(root.findtext("ds:Signature/ds:SignatureValue", namespaces=DS))
    cert = asn1_x509.Certificate.load(base64.b64decode(root.findtext(".//ds:X509Certificate", namespaces=DS)))
    digest = gost_backend.streebog256(xmldsig.canonicalize(signed_info, xmldsig.C14N))
    key = asn1.certificate_public_key(cert)
    assert gost_backend.verify_digest(key, digest, value)
    assert not gost_backend.verify_digest(key, digest, value[:-1] + bytes([value[-1] ^ 1]))


def test_openssl_gost_engine_agrees_on_the_cryptopro_vector(tmp_path, openssl_gost):
    """An independent check of the same bytes: OpenSSL's gost engine verifies the SignatureValue over our
    canonical SignedInfo and hashes our canonical document to the DigestValue."""
    root = xml.parse(CRYPTOPRO_256.read_bytes())
    signature = root.find("ds:Signature", DS)
    (tmp_path / "signedinfo").write_bytes(xmldsig.canonicalize(signature.find("ds:SignedInfo", DS), xmldsig.C14N))
    (tmp_path / "sig").write_bytes(base64.b64decode(signature.findtext("ds:SignatureValue", namespaces=DS)))
    der = base64.b64decode(signature.findtext(".//ds:X509Certificate", namespaces=DS))
    (tmp_path / "cert.pem").write_bytes(asn1.pem("CERTIFICATE", der))
    run = [*openssl_gost]
    pub = subprocess.run([*run, "x509", "-engine", "gost", "-in", tmp_path / "cert.pem", "-pubkey", "-noout"],
                         capture_output=True, timeout=60)
    assert pub.returncode == 0, pub.stderr
    (tmp_path / "pub.pem").write_bytes(pub.stdout)

    def dgst_verify(path):
        return subprocess.run([*run, "dgst", "-engine", "gost", "-md_gost12_256", "-verify", tmp_path / "pub.pem",
                               "-signature", tmp_path / "sig", path], capture_output=True, text=True, timeout=60)

    ok = dgst_verify(tmp_path / "signedinfo")
    assert ok.returncode == 0 and "Verified OK" in ok.stdout, ok.stderr
    (tmp_path / "other").write_bytes((tmp_path / "signedinfo").read_bytes() + b" ")
    assert dgst_verify(tmp_path / "other").returncode != 0

    document = etree.fromstring(CRYPTOPRO_256.read_bytes())
    document.remove(document.find("ds:Signature", DS))      # the enveloped-signature transform, by hand
    (tmp_path / "doc").write_bytes(etree.tostring(document, method="c14n"))
    digest = subprocess.run([*run, "dgst", "-engine", "gost", "-md_gost12_256", "-binary", tmp_path / "doc"],
                            capture_output=True, timeout=60)
    assert digest.returncode == 0, digest.stderr
    assert base64.b64encode(digest.stdout).decode() == signature.findtext(".//ds:DigestValue", namespaces=DS)


def test_one_changed_byte_of_the_signed_data_is_refused():
    data = CRYPTOPRO_256.read_bytes()
    assert data.count(b"some data") == 1
    with pytest.raises(xmldsig.SignatureError) as err:
        _verify(data.replace(b"some data", b"some dbta"))
    assert err.value.code == "DIGEST_MISMATCH" and not isinstance(err.value, xmldsig.UnsupportedSignatureError)


def test_one_changed_byte_of_the_signature_value_is_refused():
    data = CRYPTOPRO_256.read_bytes()
    old = b"<SignatureValue>fbjm"
    assert data.count(old) == 1
    with pytest.raises(xmldsig.SignatureError) as err:
        _verify(data.replace(old, b"<SignatureValue>fbjn"))
    assert err.value.code == "SIGNATURE_VERIFICATION_ERROR"


def test_text_after_the_signature_is_signed_data():
    """The enveloped transform removes the Signature element only: text after it (its tail) stays signed."""
    data = CRYPTOPRO_256.read_bytes()
    with pytest.raises(xmldsig.SignatureError) as err:
        _verify(data.replace(b"</Signature></MyXML>", b"</Signature> </MyXML>"))
    assert err.value.code == "DIGEST_MISMATCH"


@pytest.mark.parametrize("vector, algorithm", [(CRYPTOPRO_2001, "ГОСТ Р 34.10-2001"),
                                               (CRYPTOPRO_512, "ГОСТ Р 34.10-2012 (512)")])
def test_gost_2001_and_2012_512_are_unsupported_not_invalid(vector, algorithm):
    with pytest.raises(xmldsig.UnsupportedSignatureError) as err:
        _verify(vector.read_bytes())
    assert err.value.code == "UNKNOWN_ALGORITHM" and algorithm in err.value.message


@pytest.mark.parametrize("old, new", [
    (keys.GOST_2012_256_CP, "http://www.w3.org/2000/09/xmldsig#rsa-sha1"),
    ('#enveloped-signature" />',
     '#enveloped-signature" /><Transform Algorithm="urn://smev-gov-ru/xmldsig/transform" />'),
    ("URI=\"\"", "URI=\"#xpointer(/)\""),
    ("URI=\"\"", "URI=\"http://example.org/doc.xml\""),
])
def test_constructions_we_do_not_verify_are_unsupported(old, new):
    data = CRYPTOPRO_256.read_text(encoding="utf-8")
    assert data.count(old) == 1
    with pytest.raises(xmldsig.UnsupportedSignatureError):
        _verify(data.replace(old, new).encode())


def test_document_without_signature_is_refused():
    with pytest.raises(xmldsig.SignatureError) as err:
        _verify(b"<doc><a>1</a></doc>")
    assert err.value.code == "NO_SIGNATURE"


# -- the command line ------------------------------------------------------------------------------------------

def test_cli_verifies_the_cryptopro_signature(capsys):
    code, out = _run_cli(capsys, CRYPTOPRO_256)
    assert code == 0, out
    assert "подпись верна" in out and "Gost_2012_256_Test" in out
    assert "75119d8c51055aa24574adee5dfb6abc" in out               # the certificate's serial
    assert keys.GOST_2012_256_CP in out and "enveloped" in out


def test_cli_exit_codes_invalid_and_unsupported(capsys, tmp_path):
    tampered = tmp_path / "tampered.xml"
    tampered.write_bytes(CRYPTOPRO_256.read_bytes().replace(b"some data", b"some dbta"))
    code, out = _run_cli(capsys, tampered)
    assert code == 1 and "НЕ верна" in out and "DIGEST_MISMATCH" in out
    for vector in (CRYPTOPRO_2001, CRYPTOPRO_512):
        code, out = _run_cli(capsys, vector)
        assert code == 3 and "не поддерживается" in out


@pytest.mark.parametrize("spelling", ["xmldsig-more", "cryptopro"])
def test_cli_verifies_a_ws_security_envelope(capsys, tmp_path, spelling):
    import dataclasses

    from iemk_etl.devtools import certs

    method, digest = xmldsig.SPELLINGS[spelling]
    week_old = certs.create_dev_certificate(tmp_path, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=7))
    spelled = dataclasses.replace(keys.load_signer(*week_old), signature_method=method, digest_method=digest)
    env = soap.build_envelope(etree.Element("{urn:test}P"), soap.Addressing("urn:uuid:1", "urn:a", "http://t",
                                                                            "http://r"), "client")
    # Made an hour ago: offline, the command checks it as of its own wsu:Created.
    wssecurity.sign_envelope(env, spelled, now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    path = tmp_path / "request.xml"
    path.write_bytes(soap.to_bytes(env))
    with pytest.raises(wssecurity.SignatureError, match="MESSAGE_EXPIRED"):   # as a live request, stale
        wssecurity.verify_envelope(xml.parse(path.read_bytes()))
    code, out = _run_cli(capsys, path)
    assert code == 0, out
    assert "WS-Security" in out and method in out and "iemk-etl test client" in out
    path.write_bytes(soap.to_bytes(env).replace(b"urn:a<", b"urn:b<"))
    code, out = _run_cli(capsys, path)
    assert code == 1 and "DIGEST_MISMATCH" in out and "Action" in out


def test_cli_still_verifies_detached_cms(capsys, tmp_path, signer):
    from iemk_etl.signing import cades

    doc = tmp_path / "doc.xml"
    doc.write_bytes(b"<doc/>")
    (tmp_path / "doc.xml.sig").write_bytes(cades.sign_bytes(doc.read_bytes(), signer))
    assert cli.main(["verify", str(doc), str(tmp_path / "doc.xml.sig")]) == 0
    assert "подпись верна" in capsys.readouterr().out


# -- our own signatures ----------------------------------------------------------------------------------------

# A default namespace, nested prefixes, an inherited xml:lang, a comment and mixed whitespace: what trips c14n.
DOCUMENT = """<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:x="urn:extra" xml:lang="ru">
  <!-- комментарий -->
  <title>Протокол</title>
  <component><x:section Id="part-1"><x:text>данные &amp; ещё</x:text><x:empty/></x:section></component>
</ClinicalDocument>"""

ALL_C14N = [xmldsig.EXC_C14N, xmldsig.C14N, xmldsig.EXC_C14N_COMMENTS, xmldsig.C14N_COMMENTS]


@pytest.mark.parametrize("spelling", ["xmldsig-more", "cryptopro"])
@pytest.mark.parametrize("c14n", ALL_C14N)
@pytest.mark.parametrize("reference_id", [None, "part-1"])
def test_sign_enveloped_round_trip(signer, spelling, c14n, reference_id):
    root = xml.parse(DOCUMENT.encode())
    target = root if reference_id is None else root.find(".//{urn:extra}section")
    xmldsig.sign_enveloped(target, signer, c14n=c14n, spelling=spelling, reference_id=reference_id)
    data = etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
    [verified] = _verify(data)
    assert verified.signature_method == xmldsig.SPELLINGS[spelling][0]
    assert verified.references[0].digest_method == xmldsig.SPELLINGS[spelling][1]
    assert verified.canonicalization == c14n and verified.certificate_der == signer.certificate_der
    assert etree.QName(verified.references[0].element).localname == ("section" if reference_id else
                                                                     "ClinicalDocument")
    with pytest.raises(xmldsig.SignatureError) as err:
        _verify(data.replace("ещё".encode(), "ешё".encode()))
    assert err.value.code == "DIGEST_MISMATCH"


def test_comments_are_outside_a_same_document_reference(signer):
    """URI="" and #id select the document without comments (XMLDSig §4.3.3.3), even under #WithComments."""
    root = xml.parse(DOCUMENT.encode())
    xmldsig.sign_enveloped(root, signer, c14n=xmldsig.C14N_COMMENTS)
    data = etree.tostring(root)
    assert _verify(data.replace("комментарий".encode(), "другой".encode()))


def test_signed_element_moved_and_replaced_is_refused(signer):
    """Signature wrapping: the signed element is hidden elsewhere and a forged one with its Id put in its place."""
    root = xml.parse(b'<doc><order Id="o1"><sum>100</sum></order></doc>')
    xmldsig.sign_enveloped(root, signer, reference_id="o1")
    [verified] = xmldsig.verify_document(root)
    assert verified.references[0].element is root.find("order")   # the very element checked is handed back
    original = root.find("order")
    forged = etree.fromstring(b'<order Id="o1"><sum>999999</sum></order>')
    wrapper = etree.SubElement(root, "wrapper")
    wrapper.append(original)            # moves it (with the signature inside it)
    root.insert(0, forged)
    with pytest.raises(xmldsig.SignatureError) as err:
        xmldsig.verify_document(xml.parse(etree.tostring(root)))
    assert err.value.code == "WRONG_SIGNATURE_FORMAT"


@pytest.mark.parametrize("attribute", ["ID", f"{{{xmldsig.WSU}}}Id"])
def test_a_second_element_with_the_id_under_another_attribute_is_refused(signer, attribute):
    root = xml.parse(b'<doc><order Id="o1"><sum>100</sum></order></doc>')
    xmldsig.sign_enveloped(root, signer, reference_id="o1")
    etree.SubElement(root, "decoy", {attribute: "o1"})
    with pytest.raises(xmldsig.SignatureError) as err:
        xmldsig.verify_document(xml.parse(etree.tostring(root)))
    assert err.value.code == "WRONG_SIGNATURE_FORMAT"


def test_verification_leaves_the_document_unchanged(signer):
    root = xml.parse(DOCUMENT.encode())
    xmldsig.sign_enveloped(root, signer, c14n=xmldsig.C14N)
    before = etree.tostring(root)
    xmldsig.verify_document(root)
    assert etree.tostring(root) == before


def test_key_without_a_certificate_is_unsupported():
    data = CRYPTOPRO_256.read_text(encoding="utf-8")
    start, end = data.index("<X509Data>"), data.index("</X509Data>") + len("</X509Data>")
    with pytest.raises(xmldsig.UnsupportedSignatureError):
        _verify((data[:start] + "<KeyValue><Modulus>AA==</Modulus></KeyValue>" + data[end:]).encode())


def test_whole_document_reference_covers_top_level_processing_instructions(signer):
    root = xml.parse(b'<?xml-stylesheet href="view.xsl"?><doc><a>1</a></doc>')
    xmldsig.sign_enveloped(root, signer, c14n=xmldsig.C14N)
    data = etree.tostring(root.getroottree())
    assert b"view.xsl" in data and _verify(data)
    with pytest.raises(xmldsig.SignatureError) as err:
        _verify(data.replace(b"view.xsl", b"evil.xsl"))
    assert err.value.code == "DIGEST_MISMATCH"
