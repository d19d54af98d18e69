"""An ITI-41 request is built and signed with a token for the document's base64 and sent with the base64 spliced in
a chunk at a time: what goes on the wire must be one ordinary envelope — exact Content-Length, the whole base64, a
signature whose Body digest is over exactly those bytes — and the audit observer must see the same bytes."""

import hashlib

import httpx
import pytest

from iemk_etl.protocol import soap
from iemk_etl.protocol.xds import submit
from iemk_etl.signing import backend, keys, wssecurity
from iemk_etl.transport import client

from exchange_helpers import _submission


def _document_size() -> int:
    # Several base64 chunks (768 KiB of document each) where Streebog is fast; pure-Python Streebog is ≈0.1 MB/s.
    return 2_000_001 if "openssl" in backend.available_backends() else 30_001


def test_an_iti41_request_goes_as_one_signed_envelope_with_the_whole_base64(dev_keys):
    document = hashlib.sha256(b"seed").digest() * (_document_size() // 32) + b"tail"   # not a multiple of 3
    sent: list[tuple[httpx.Headers, bytes]] = []
    archived: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append((request.headers, request.read()))
        return httpx.Response(202)

    class Observer:
        def on_exchange(self, envelope) -> None:  # noqa: ANN001 - audit.Envelope
            archived.append(b"".join(envelope.raw) if not isinstance(envelope.raw, bytes) else envelope.raw)

    iemk = client.IemkClient("http://iemk.test/repository", client_entity_id="client-1",
                             signer=keys.load_signer(*dev_keys), timeout=5,
                             http=httpx.Client(transport=httpx.MockTransport(answer)), observer=Observer())
    result = iemk.provide_and_register(_submission(document), reply_to="http://mis.test/callback",
                                       message_id="urn:uuid:7f1c0e9e-0000-4000-8000-000000000001")

    assert result.verdict is client.Verdict.ACCEPTED, result
    [(headers, body)] = sent
    assert headers["content-length"] == str(len(body))
    assert "transfer-encoding" not in headers
    assert archived[0] == body
    assert b"IEMK-DOCUMENT-" not in body
    message = soap.parse(body, limit=len(body))
    wssecurity.verify_envelope(message.envelope)        # the Body's digest is over the base64 that went
    assert submit.read_request(message.body).document == document


@pytest.mark.skipif("openssl" not in backend.available_backends(), reason="OpenSSL gost engine absent")
def test_streebog_over_parts_is_streebog_over_their_concatenation():
    gost = backend.get_backend("openssl")
    parts = [b"", b"a" * 63, b"b" * 65, bytes(range(256)) * 4096, b"c"]
    assert gost.streebog256_parts(iter(parts)) == gost.streebog256(b"".join(parts))
