"""Signing material checks, the WS-Security profile with GOST, СЭМД signing over a period, and the CLI."""

import dataclasses
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from lxml import etree

from iemk_etl import settings
from iemk_etl.devtools import certs, demo_data
from iemk_etl.emulator.service import EmulatorConfig, IemkEmulator
from iemk_etl.emulator.store import Store
from iemk_etl.pipeline import extract, send, sign, validate
from iemk_etl.protocol import soap
from iemk_etl.signing import asn1, cms, keys, keystore, wssecurity
from iemk_etl.store import integration

from cda_factory import document

GKB = demo_data.DEMO_MO[0][0]


def test_expired_not_yet_valid_and_mismatched_material_is_refused(tmp_path):
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    with pytest.raises(keys.KeyMaterialError, match="срок действия сертификата ЭП истёк"):
        keys.load_signer(*certs.create_dev_certificate(tmp_path / "a", days=10, not_before=past))
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    with pytest.raises(keys.KeyMaterialError, match="ещё не действует"):
        keys.load_signer(*certs.create_dev_certificate(tmp_path / "b", not_before=future))
    cert, _ = certs.create_dev_certificate(tmp_path / "c")
    _, other_key = certs.create_dev_certificate(tmp_path / "d")
    with pytest.raises(keys.KeyMaterialError, match="не соответствует сертификату"):
        keys.load_signer(cert, other_key)
    with pytest.raises(keys.KeyMaterialError, match="не найден файл"):
        keys.load_signer(tmp_path / "nope.pem", other_key)


def test_key_usage_without_signature_is_refused(tmp_path, gost_backend):
    key = asn1.generate_private_key()
    cert = certs.self_signed_certificate(key, gost_backend, common_name="Шифрование",
                                        key_usage=("key_encipherment",))
    with pytest.raises(keys.KeyMaterialError, match="keyUsage"):
        keys.signer_from_pem(asn1.pem("CERTIFICATE", cert.dump()), asn1.pem("PRIVATE KEY", asn1.private_key_der(key)))


def test_certificate_expiry_is_described_with_a_warning(tmp_path):
    near = dt.datetime.now(dt.UTC) - dt.timedelta(days=360)
    cert, _ = certs.create_dev_certificate(tmp_path, days=365, not_before=near)
    info = keys.certificate_info(asn1.unpem(cert.read_bytes(), "CERTIFICATE"))
    assert info.algorithm == "ГОСТ Р 34.10-2012 (256)"
    assert 3 <= info.days_left() <= 5
    assert info.describe(30).endswith("СКОРО ИСТЕКАЕТ")
    assert not info.describe(2).endswith("СКОРО ИСТЕКАЕТ")


def _signed_envelope(signer):
    env = soap.build_envelope(etree.Element("{urn:test}P"), soap.Addressing("urn:uuid:1", "urn:a", "http://t",
                                                                            "http://r"), "client")
    wssecurity.sign_envelope(env, signer)
    return soap.to_bytes(env)


@pytest.mark.parametrize("spelling", ["xmldsig-more", "cryptopro-urn"])
def test_gost_request_signature_verifies_in_both_uri_spellings(tmp_path, gost_backend, spelling):
    signer = keys.load_signer(*certs.create_dev_certificate(tmp_path), backend=gost_backend)
    if spelling == "cryptopro-urn":
        signer = dataclasses.replace(signer, signature_method=keys.GOST_2012_256_CP, digest_method=keys.STREEBOG_256_CP)
    data = _signed_envelope(signer)
    assert (signer.signature_method.encode() in data) and (signer.digest_method.encode() in data)
    assert wssecurity.verify_envelope(soap.parse(data).envelope).signature_method == signer.signature_method


@pytest.mark.parametrize("algorithm", ["gost", "rsa"])
def test_emulator_accepts_a_correctly_signed_request(tmp_path, algorithm, gost_backend, flk_packs, fresh_dsn):
    from iemk_etl.protocol.xds import submit

    from exchange_helpers import _submission

    signer = keys.load_signer(*certs.create_dev_certificate(tmp_path, algorithm=algorithm), backend=gost_backend)
    env = soap.build_envelope(submit.build_request(_submission(document())),
                              soap.Addressing("urn:uuid:a-1", submit.ACTION, "http://iemk", "http://mis/cb"), "client")
    wssecurity.sign_envelope(env, signer)
    answer = IemkEmulator(EmulatorConfig(packs_dir=flk_packs), Store(fresh_dsn)).receive_document_set(
        soap.to_bytes(env))
    assert answer.status == 202 and answer.scheduled


def _fault_reason(emulator, payload):
    answer = emulator.receive_document_set(payload)
    assert answer.status == 400
    return soap.find_fault(soap.parse(answer.body))


@pytest.mark.parametrize("case", ["unsigned", "tampered body", "tampered To", "expired certificate"])
def test_emulator_rejects_each_bad_signature_with_its_own_reason(tmp_path, case, flk_packs, fresh_dsn):
    from iemk_etl.protocol.xds import submit

    from exchange_helpers import _submission

    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    material = certs.create_dev_certificate(tmp_path, days=10, not_before=past) if case == "expired certificate" \
        else certs.create_dev_certificate(tmp_path)
    signer = keys.load_signer(*material, check=False)
    env = soap.build_envelope(submit.build_request(_submission(document())),
                              soap.Addressing("urn:uuid:b-1", submit.ACTION, "http://iemk", "http://mis/cb"), "client")
    if case != "unsigned":
        wssecurity.sign_envelope(env, signer)
    payload = soap.to_bytes(env)
    if case == "tampered body":
        payload = payload.replace(b"P-1^^^", b"P-2^^^", 1)     # the patient id in the signed metadata
    if case == "tampered To":
        payload = payload.replace(b"http://iemk<", b"http://evil<", 1)
    fault = _fault_reason(IemkEmulator(EmulatorConfig(packs_dir=flk_packs), Store(fresh_dsn)), payload)
    expected = {"unsigned": "wsse:NO_SIGNATURE", "tampered body": "wsse:DIGEST_MISMATCH",
                "tampered To": "wsse:DIGEST_MISMATCH", "expired certificate": "wsse:CERT_NOT_VALID"}[case]
    assert fault.subcode == expected
    if case == "tampered To":
        assert "To" in fault.reason
    if case == "tampered body":
        assert "Body" in fault.reason


# -- СЭМД signing over a period --------------------------------------------------------------------------------

@pytest.fixture
def mis(fresh_dsn, tmp_path):
    cfg = dataclasses.replace(settings.load(), keys_dir=tmp_path / "keys")
    store = keystore.KeyStore(cfg)
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=8, days=2, seed=4, end=dt.date(2026, 8, 3), fail_share=0.0,
                       unsigned_share=0.6, store=store)
        integration.set_enabled(conn, GKB, True)
        yield conn, store, cfg


PERIOD = (dt.datetime(2026, 8, 1, tzinfo=demo_data.MSK), dt.datetime(2026, 8, 3, tzinfo=demo_data.MSK))


def test_seeded_signatures_are_real_gost_cades(mis, gost_backend):
    conn, _, _ = mis
    rows = conn.execute("SELECT cda, signature, org_signature FROM mis.semd_document WHERE signed_at IS NOT NULL"
                        " LIMIT 3").fetchall()
    assert rows
    for data, signature, org_signature in rows:
        author = cms.verify_detached(bytes(data), bytes(signature), gost_backend)
        org = cms.verify_detached(bytes(data), bytes(org_signature), gost_backend)
        assert author.subject != org.subject


def test_sign_period_signs_once_and_feeds_the_outbox(mis, gost_backend):
    conn, store, _ = mis
    unsigned = {r[0] for r in conn.execute("SELECT id FROM mis.semd_document WHERE mo_oid = %s AND signed_at IS NULL",
                                           (GKB,))}
    assert unsigned
    report = sign.sign_period(conn, store, GKB, *PERIOD)
    assert set(report.signed) == unsigned and not report.errors
    rows = conn.execute("SELECT id, status, cda, signature FROM mis.semd_document WHERE id = ANY(%s)",
                        (list(unsigned),)).fetchall()
    assert {r[1] for r in rows} == {"Подписан"}
    for _, _, data, signature in rows:
        cms.verify_detached(bytes(data), bytes(signature), gost_backend)
    queued = {r[0] for r in conn.execute("SELECT document_id FROM iemk.outbox WHERE document_id = ANY(%s)",
                                         (list(unsigned),))}
    assert queued == unsigned                           # procedure 1 fired for each
    before = conn.execute("SELECT id, signature FROM mis.semd_document WHERE id = ANY(%s) ORDER BY id",
                          (list(unsigned),)).fetchall()
    assert sign.sign_period(conn, store, GKB, *PERIOD).signed == []     # nothing is re-signed
    assert conn.execute("SELECT id, signature FROM mis.semd_document WHERE id = ANY(%s) ORDER BY id",
                        (list(unsigned),)).fetchall() == before


def test_a_missing_doctor_key_is_an_error_on_that_document_only(mis):
    conn, store, cfg = mis
    victim, staff_id = conn.execute(
        "SELECT d.id, s.local_id FROM mis.semd_document d JOIN mis.staff s ON s.id = d.author_id"
        " WHERE d.mo_oid = %s AND d.signed_at IS NULL ORDER BY d.id LIMIT 1", (GKB,)).fetchone()
    for suffix in ("cert", "key"):
        (cfg.keys_dir / "gkb7801" / "staff" / f"{staff_id}-{suffix}.pem").unlink()
    report = sign.sign_period(conn, store, GKB, *PERIOD)
    assert victim in report.errors
    status = conn.execute("SELECT status FROM mis.semd_document WHERE id = %s", (victim,)).fetchone()[0]
    assert status.startswith("Ошибка: не удалось подписать СЭМД: не найден файл сертификата или ключа ЭП")
    assert report.signed                              # the others were signed all the same


def test_an_unusable_request_certificate_is_shown_on_the_waiting_documents(mis, fresh_dsn):
    conn, store, cfg = mis
    signed = sign.sign_period(conn, store, GKB, *PERIOD).signed
    ids = validate.validate(conn, extract.extract_documents(conn, GKB, signed), cfg)
    assert ids
    assert send.hold_for_signing_key(fresh_dsn, ids, "срок действия сертификата ЭП истёк") == len(ids)
    statuses = {r[0] for r in conn.execute("SELECT status FROM mis.semd_document d JOIN iemk.ledger l"
                                           " ON l.document_id = d.id WHERE l.id = ANY(%s)", (ids,))}
    assert statuses == {"Ошибка: сертификат ЭП для подписания запросов к ИЭМК не может быть использован: "
                        "срок действия сертификата ЭП истёк"}
    states = {r[0] for r in conn.execute("SELECT state FROM iemk.ledger WHERE id = ANY(%s)", (ids,))}
    assert states == {"valid"}                        # not final: sent once the certificate is fixed


# -- the command line ------------------------------------------------------------------------------------------

def _cli(*args, cwd=None):
    return subprocess.run([str(Path(sys.executable).parent / "iemk-etl"), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=os.environ.copy(), timeout=120)


def test_cli_dev_cert_sign_verify(tmp_path):
    made = _cli("dev-cert", "--out", tmp_path, "--cn", "Тестовый врач")
    assert made.returncode == 0, made.stderr
    doc = tmp_path / "doc.xml"
    doc.write_bytes(document())
    signed = _cli("sign", doc, "--cert", tmp_path / "client-cert.pem", "--key", tmp_path / "client-key.pem")
    assert signed.returncode == 0, signed.stderr
    ok = _cli("verify", doc, f"{doc}.sig")
    assert ok.returncode == 0 and "подпись верна" in ok.stdout and "Тестовый врач" in ok.stdout
    doc.write_bytes(document() + b" ")
    bad = _cli("verify", doc, f"{doc}.sig")
    assert bad.returncode == 1 and "DIGEST_MISMATCH" in bad.stdout


# -- PKCS#12 ----------------------------------------------------------------------------------------------------

def test_gost_pkcs12_from_openssl_is_read_and_checked(tmp_path, openssl_gost, monkeypatch):
    cert, key = certs.create_dev_certificate(tmp_path, common_name="Контейнер")
    made = subprocess.run([*openssl_gost, "pkcs12", "-export", "-engine", "gost", "-inkey", key, "-in", cert,
                           "-out", tmp_path / "request.p12", "-passout", "pass:пароль-1"], capture_output=True)
    assert made.returncode == 0, made.stderr
    signer = keys.load_pkcs12(tmp_path / "request.p12", "пароль-1")
    assert isinstance(signer, keys.GostSigner)
    assert signer.certificate_der == asn1.unpem(cert.read_bytes(), "CERTIFICATE")
    with pytest.raises(keys.KeyMaterialError, match="неверный пароль"):
        keys.load_pkcs12(tmp_path / "request.p12", "не тот")
    # the key store takes an МО's request.p12, with the МО's password setting (read at load)
    monkeypatch.setenv("IEMK_P12_PASSWORD__GKB7801", "пароль-1")
    cfg = dataclasses.replace(settings.load(), keys_dir=tmp_path / "keys")
    (cfg.keys_dir / "gkb7801").mkdir(parents=True)
    (tmp_path / "request.p12").rename(cfg.keys_dir / "gkb7801" / "request.p12")
    assert keystore.KeyStore(cfg).request_signer("gkb7801").certificate_der == signer.certificate_der


def test_rsa_pkcs12_is_read(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    cert_path, key_path = certs.create_dev_certificate(tmp_path, algorithm="rsa")
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    (tmp_path / "c.p12").write_bytes(pkcs12.serialize_key_and_certificates(
        b"c", key, cert, None, serialization.BestAvailableEncryption(b"pw")))
    assert isinstance(keys.load_pkcs12(tmp_path / "c.p12", "pw"), keys.RsaSha256Signer)
