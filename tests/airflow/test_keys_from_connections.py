"""The МО's and authors' СЭМД signatures from Airflow connections (``iemk_sign__<mo>__org``,
``iemk_sign__<mo>__staff__<local id>``), as the sign-and-send DAG's sign task signs: a connection wins over the key
files, a signer without one keeps its files, a bad key in a connection refuses only its author's documents."""

import base64
import datetime as dt
import json

import psycopg
import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from iemk_airflow import connection, resources
from iemk_etl import settings
from iemk_etl.devtools import certs, demo_data
from iemk_etl.pipeline import sign as sign_step
from iemk_etl.signing import keys
from iemk_etl.signing.keystore import KeyStore

GKB_OID, GKB = demo_data.DEMO_MO[0][0], demo_data.DEMO_MO[0][1]
END = dt.date(2026, 11, 21)


@pytest.fixture
def define(monkeypatch):
    def put(conn_id: str, cert, key, **fields):
        extra = {"cert": cert.read_text(), "private_key": key.read_text()}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}",
                           json.dumps({"conn_type": "generic", "extra": extra, **fields}))
    return put


def _signer_certificate(signature: bytes) -> bytes:
    return cms.ContentInfo.load(signature)["content"]["certificates"][0].chosen.dump()


def _der(cert_path) -> bytes:
    return keys.read_certificate(cert_path.read_bytes())


def test_the_sign_task_takes_org_and_staff_keys_from_connections(fresh_dsn, define, tmp_path):
    cfg = settings.load()
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        demo_data.seed(conn, patients=12, days=1, end=END, fail_share=0.0, unsigned_share=1.0)
        authors = sorted({r[0] for r in conn.execute(
            "SELECT s.local_id FROM mis.semd_document d JOIN mis.staff s ON s.id = d.author_id"
            " WHERE d.mo_oid = %s AND d.signed_at IS NULL", (GKB_OID,))})
    assert len(authors) >= 3
    org = certs.create_dev_certificate(tmp_path, prefix="org", common_name=f"МО {GKB}")
    staff = certs.create_dev_certificate(tmp_path, prefix="staff", common_name="Врач из подключения")
    define(f"iemk_sign__{GKB}__org", *org)
    by_file = authors[0]                          # this author keeps the key file the demo made
    broken = authors[1]                           # this one's connection holds another certificate's key
    define(f"iemk_sign__{GKB}__staff__{broken}", staff[0], org[1])
    for author in authors[2:]:
        define(f"iemk_sign__{GKB}__staff__{author}", *staff)

    start = dt.datetime.combine(END - dt.timedelta(days=1), dt.time(), demo_data.MSK)
    end = dt.datetime.combine(END, dt.time(), demo_data.MSK)
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        report = sign_step.sign_period(conn, resources.key_store(cfg), GKB_OID, start, end)
        rows = conn.execute(
            "SELECT s.local_id, d.signature, d.org_signature, d.status FROM mis.semd_document d"
            " JOIN mis.staff s ON s.id = d.author_id WHERE d.mo_oid = %s", (GKB_OID,)).fetchall()

    file_cert = keys.read_certificate((cfg.keys_dir / GKB / "staff" / f"{by_file}-cert.pem").read_bytes())
    for author, signature, org_signature, status in rows:
        if author == broken:
            assert signature is None
            assert status == (f"Ошибка: не удалось подписать СЭМД: подключение iemk_sign__{GKB}__staff__{broken}: "
                              "закрытый ключ не соответствует сертификату ЭП")
            continue
        assert status == "Подписан", (author, status)
        expected = file_cert if author == by_file else _der(staff[0])
        assert _signer_certificate(bytes(signature)) == expected, author
        if org_signature is not None:
            assert _signer_certificate(bytes(org_signature)) == _der(org[0])
    assert len(report.errors) == sum(1 for r in rows if r[0] == broken) > 0
    assert any(r[0] in authors[2:] and r[1] is not None for r in rows)      # signed with a connection's key
    assert any(r[2] is not None for r in rows)                              # an МО signature among them


def test_a_looked_up_signer_is_asked_for_once_and_its_refusal_kept(tmp_path):
    cfg = settings.load({"IEMK_KEYS_DIR": str(tmp_path)})
    signer = keys.load_signer(*certs.create_dev_certificate(tmp_path / "c", prefix="x"))
    asked = []

    def lookup(role, mo_code, staff_local_id):
        asked.append((role, mo_code, staff_local_id))
        if staff_local_id == "bad":
            raise keys.KeyMaterialError("подключение x: плохой ключ")
        return signer if role == "org" else None

    store = KeyStore(cfg, lookup)
    for _ in range(3):
        assert store.org_signer("m1") is signer
        with pytest.raises(keys.KeyMaterialError, match="плохой ключ"):
            store.staff_signer("m1", "bad")
        with pytest.raises(keys.KeyMaterialError, match="не найден файл"):   # no connection: the files
            store.staff_signer("m1", "nobody")
    assert asked == [("org", "m1", None), ("staff", "m1", "bad"), ("staff", "m1", "nobody")]


def test_a_request_key_in_the_mo_iemk_connection_wins_over_iemk_sign(monkeypatch, define, tmp_path):
    mine = certs.create_dev_certificate(tmp_path, prefix="mine")
    sign_conn = certs.create_dev_certificate(tmp_path, prefix="sign")
    define(f"iemk_sign__{GKB}", *sign_conn)
    assert resources.key_store(settings.load()).request_signer(GKB).certificate_der == _der(sign_conn[0])
    monkeypatch.setenv(f"AIRFLOW_CONN_IEMK__{GKB.upper()}", json.dumps(
        {"conn_type": "iemk", "host": "http://127.0.0.1:1",
         "extra": {"cert": mine[0].read_text(), "private_key": mine[1].read_text()}}))
    assert resources.key_store(settings.load()).request_signer(GKB).certificate_der == _der(mine[0])


def test_a_pkcs12_container_in_a_connection_with_its_password(tmp_path):
    cert_path, key_path = certs.create_dev_certificate(tmp_path, algorithm="rsa", prefix="p12")
    cert = keys.read_certificate(cert_path.read_bytes())
    container = pkcs12.serialize_key_and_certificates(
        b"req", serialization.load_pem_private_key(key_path.read_bytes(), None), x509.load_der_x509_certificate(cert),
        None, serialization.BestAvailableEncryption(b"secret"))
    extra = {"p12_base64": base64.b64encode(container).decode()}
    assert connection.signer_from("iemk__m1", extra, "secret").certificate_der == cert
    with pytest.raises(keys.KeyMaterialError, match="^подключение iemk__m1: "):
        connection.signer_from("iemk__m1", extra, "wrong")
    assert connection.signer_from("iemk__m1", {"callback_url": "http://x"}, None) is None
