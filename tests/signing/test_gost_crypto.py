"""GOST R 34.11-2012 / 34.10-2012: known answers, both backends, and interop with OpenSSL."""

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from asn1crypto import x509

from iemk_etl.devtools import certs
from iemk_etl.signing import asn1, backend, cms, curves, gost

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
M1 = b"012345678901234567890123456789012345678901234567890123456789012"
M2 = "Се ветри, Стрибожи внуци, веютъ с моря стрелами на храбрыя плъкы Игоревы".encode("cp1251")


@pytest.mark.parametrize(("message", "digest256", "digest512"), [
    (M1, "9d151eefd8590b89daa6ba6cb74af9275dd051026bb149a452fd84e5e57b5500",
     "1b54d01a4af5b9d5cc3d86d68d285462b19abc2475222f35c085122be4ba1ffa00ad30f8767b3a82384c6574f024c311"
     "e2a481332b08ef7f41797891c1646f48"),
    (M2, "9dd2fe4e90409e5da87f53976d7405b0c0cac628fc669a741d50063c557e8f50",
     "1e88e62226bfca6f9994f1f2d51569e0daf8475a3b0fe61a5300eee46d961376035fe83549ada2b8620fcd7c496ce5b3"
     "3f0cb9dddc2b6460143b03dabac9fb28"),
], ids=["M1", "M2"])
def test_streebog_known_answers(gost_backend, message, digest256, digest512):
    assert gost_backend.streebog256(message).hex() == digest256
    assert gost_backend.streebog512(message).hex() == digest512


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 127, 128, 129, 4096])
def test_backends_agree_at_block_boundaries(gost_backend, size):
    data = bytes(range(256)) * (size // 256 + 1)
    assert gost_backend.streebog256(data[:size]) == backend.PythonBackend().streebog256(data[:size])


# GOST R 34.10-2012, appendix A.1 (= RFC 7091 §7.1), in wire form.
EXAMPLE_KEY = gost.GostPrivateKey(curves.TEST_PARAMSET,
                                     0x7A929ADE789BB9BE10ED359DD39A72C11B60961F49397EEE1D19CE9891EC3B28)
EXAMPLE_DIGEST = bytes.fromhex("e53e042b67e6ec678e2e02b12a0352ce1fc6eee0529cc088119ad872b3c1fb2d")
EXAMPLE_K = bytes.fromhex("77105C9B20BCD3122823C8CF6FCC7B956DE33814E95B7FE64FED924594DCEAB3")
EXAMPLE_SIGNATURE = bytes.fromhex(
    "01456c64ba4642a1653c235a98a60249bcd6d3f746b631df928014f6c5bf9c40"    # s
    "41aa28d2f1ab148280cd9ed56feda41974053554a42767b83ad043fd39dc0493")   # r
EXAMPLE_PUBLIC = bytes.fromhex("0bd86fe5d8db89668f789b4e1dba8585c5508b45ec5b59d8906ddb70e2492b7f"
                               "da77ff871a10fbdf2766d293c5d164afbb3c7b973a41c885d11d70d689b4f126")


def test_gost_34_10_example_signature():
    assert backend.PythonBackend().sign_digest(EXAMPLE_KEY, EXAMPLE_DIGEST, k=EXAMPLE_K) == EXAMPLE_SIGNATURE
    assert EXAMPLE_KEY.public_key().raw_le() == EXAMPLE_PUBLIC


def test_gost_34_10_example_verifies(gost_backend):
    public = EXAMPLE_KEY.public_key()
    assert gost_backend.verify_digest(public, EXAMPLE_DIGEST, EXAMPLE_SIGNATURE)
    assert not gost_backend.verify_digest(public, EXAMPLE_DIGEST, EXAMPLE_SIGNATURE[::-1])
    assert not gost_backend.verify_digest(public, bytes(32), EXAMPLE_SIGNATURE)


@pytest.mark.parametrize("name", ["rfc9215_test_paramset_256.pem", "rfc9215_tc26_256_paramSetA.pem"])
def test_rfc9215_example_certificates_verify(gost_backend, name):
    cert = x509.Certificate.load(asn1.unpem((VECTORS / name).read_bytes(), "CERTIFICATE"))
    key = asn1.certificate_public_key(cert)
    assert asn1.verify_certificate_signature(cert, key, gost_backend)
    other = asn1.generate_private_key(key.paramset if key.paramset in curves.CURVES else curves.DEFAULT_PARAMSET)
    assert not asn1.verify_certificate_signature(cert, other.public_key(), gost_backend)


def test_rfc9215_test_certificate_holds_the_standards_public_key():
    cert = x509.Certificate.load(asn1.unpem((VECTORS / "rfc9215_test_paramset_256.pem").read_bytes(), "CERTIFICATE"))
    assert asn1.certificate_public_key(cert).raw_le() == EXAMPLE_PUBLIC


def test_signatures_cross_backends(gost_backend):
    key = asn1.generate_private_key()
    digest = gost_backend.streebog256(b"document")
    python = backend.PythonBackend()
    assert python.verify_digest(key.public_key(), digest, gost_backend.sign_digest(key, digest))
    assert gost_backend.verify_digest(key.public_key(), digest, python.sign_digest(key, digest))


def test_backends_agree_on_the_public_key(gost_backend):
    key = asn1.generate_private_key()
    assert gost_backend.public_key(key) == key.public_key()
    assert gost_backend.public_key(EXAMPLE_KEY).raw_le() == EXAMPLE_PUBLIC


def test_pkcs8_round_trip():
    key = asn1.generate_private_key("1.2.643.2.2.35.2")
    assert asn1.read_private_key(asn1.private_key_der(key)) == key
    assert asn1.read_public_key(asn1.public_key_der(key.public_key())) == key.public_key()


def test_detached_cms_round_trip_and_tampering(gost_backend):
    key = asn1.generate_private_key()
    cert = certs.self_signed_certificate(key, gost_backend, common_name="Петрова Анна")
    signature = cms.sign_detached(b"<ClinicalDocument/>", key, cert, gost_backend)
    verified = cms.verify_detached(b"<ClinicalDocument/>", signature, gost_backend)
    assert "Петрова Анна" in verified.subject and verified.signing_time is not None
    with pytest.raises(cms.CmsError) as err:
        cms.verify_detached(b"<ClinicalDocument>changed</ClinicalDocument>", signature, gost_backend)
    assert err.value.code == "DIGEST_MISMATCH"


class _FixedSignature:
    """A backend whose signature is a function of the digest: two containers over the same values compare as bytes."""

    def __init__(self, inner):
        self.inner, self.name = inner, "fixed"

    def streebog256(self, data):
        return self.inner.streebog256(data)

    def sign_digest(self, key, digest):
        return (digest * 2)[::-1]


@pytest.mark.parametrize("when", [dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
                                  dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.timezone(dt.timedelta(hours=3))),
                                  dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)])
def test_templated_cms_is_byte_for_byte_the_field_by_field_one(gost_backend, when):
    """The signer's template filled with a document's time, digest and signature gives exactly the container built
    with asn1crypto field by field: same attributes, same order, same encoding."""
    key = asn1.generate_private_key()
    cert = certs.self_signed_certificate(key, gost_backend, common_name="Петрова Анна")
    fixed = _FixedSignature(gost_backend)
    for data in (b"<ClinicalDocument/>", "<ClinicalDocument>Эпикриз</ClinicalDocument>".encode() * 50):
        templated = cms.sign_detached(data, key, cert, fixed, signing_time=when)
        assert templated == cms._build(data, key, cert, fixed, when.replace(microsecond=0))
    assert cms._template(cert.dump(), fixed) is not None      # the template was used, not the fallback


# -- interop with the openssl command and its gost engine --------------------------------------------------

def _material(tmp_path, gost_backend):
    key = asn1.generate_private_key()
    cert = certs.self_signed_certificate(key, gost_backend, common_name="Interop")
    (tmp_path / "cert.pem").write_bytes(asn1.pem("CERTIFICATE", cert.dump()))
    (tmp_path / "key.pem").write_bytes(asn1.pem("PRIVATE KEY", asn1.private_key_der(key)))
    (tmp_path / "doc.xml").write_bytes("<ClinicalDocument>Эпикриз</ClinicalDocument>".encode())
    return key, cert


def _openssl(openssl_gost, *args, **kw):
    return subprocess.run([*openssl_gost, *args], capture_output=True, check=False, **kw)


def test_our_certificate_and_key_are_readable_by_openssl(tmp_path, openssl_gost, gost_backend):
    _material(tmp_path, gost_backend)
    assert _openssl(openssl_gost, "verify", "-engine", "gost", "-CAfile", tmp_path / "cert.pem",
                    tmp_path / "cert.pem").returncode == 0
    assert _openssl(openssl_gost, "pkey", "-engine", "gost", "-in", tmp_path / "key.pem", "-noout").returncode == 0


@pytest.mark.parametrize("document", [1, 2], ids=["first", "second"])
def test_our_cms_verifies_with_openssl(tmp_path, openssl_gost, gost_backend, document):
    """The second document of a signer is signed from the signer's template: OpenSSL verifies both."""
    key, cert = _material(tmp_path, gost_backend)
    for n in range(document):
        (tmp_path / "doc.xml").write_bytes(f"<ClinicalDocument>Эпикриз {n}</ClinicalDocument>".encode())
        (tmp_path / "doc.sig").write_bytes(cms.sign_detached((tmp_path / "doc.xml").read_bytes(), key, cert,
                                                             gost_backend))
    result = _openssl(openssl_gost, "cms", "-engine", "gost", "-verify", "-binary", "-inform", "DER",
                      "-in", tmp_path / "doc.sig", "-content", tmp_path / "doc.xml", "-CAfile", tmp_path / "cert.pem",
                      "-purpose", "any", "-out", "/dev/null")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("cades", [False, True], ids=["cms", "cades"])
def test_openssl_cms_verifies_with_ours(tmp_path, openssl_gost, gost_backend, cades):
    _material(tmp_path, gost_backend)
    args = ["cms", "-engine", "gost", "-sign", "-binary", "-in", tmp_path / "doc.xml", "-signer",
            tmp_path / "cert.pem", "-inkey", tmp_path / "key.pem", "-md", "md_gost12_256", "-outform", "DER",
            "-out", tmp_path / "doc.sig"] + (["-cades"] if cades else [])
    made = _openssl(openssl_gost, *args)
    assert made.returncode == 0, made.stderr
    if not cades:
        # plain `openssl cms -sign` has no signingCertificateV2: our CAdES-BES check must say so
        with pytest.raises(cms.CmsError, match="signingCertificateV2"):
            cms.verify_detached((tmp_path / "doc.xml").read_bytes(), (tmp_path / "doc.sig").read_bytes(),
                                gost_backend)
        return
    verified = cms.verify_detached((tmp_path / "doc.xml").read_bytes(), (tmp_path / "doc.sig").read_bytes(),
                                   gost_backend)
    assert "Interop" in verified.subject


def test_raw_signatures_interoperate_both_ways(tmp_path, openssl_gost, gost_backend):
    key, _ = _material(tmp_path, gost_backend)
    digest = gost_backend.streebog256(b"payload")
    (tmp_path / "digest").write_bytes(digest)
    (tmp_path / "ours.sig").write_bytes(gost_backend.sign_digest(key, digest))
    (tmp_path / "pub.pem").write_bytes(asn1.pem("PUBLIC KEY", asn1.public_key_der(key.public_key())))
    verify = _openssl(openssl_gost, "pkeyutl", "-engine", "gost", "-verify", "-pubin", "-inkey",
                      tmp_path / "pub.pem", "-in", tmp_path / "digest", "-sigfile", tmp_path / "ours.sig")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    made = _openssl(openssl_gost, "pkeyutl", "-engine", "gost", "-sign", "-inkey", tmp_path / "key.pem",
                    "-in", tmp_path / "digest", "-out", tmp_path / "theirs.sig")
    assert made.returncode == 0, made.stderr
    assert gost_backend.verify_digest(key.public_key(), digest, (tmp_path / "theirs.sig").read_bytes())
