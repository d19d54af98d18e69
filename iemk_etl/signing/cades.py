"""CAdES of СЭМД: the seed's «подписание СЭМД простой ЭП».

Each signature is a detached CAdES-BES CMS over the document's exact bytes (``signing.cms``): the author's,
and the МО's for kinds that require it. The use case that signs a period's documents in the МИС is
``pipeline.sign``.
"""

from __future__ import annotations

from iemk_etl import kinds
from iemk_etl.signing import cms, keys


def sign_bytes(data: bytes, signer: keys.AnySigner) -> bytes:
    if not isinstance(signer, keys.GostSigner):
        raise keys.KeyMaterialError("для подписи СЭМД нужен сертификат ГОСТ Р 34.10-2012")
    return cms.sign_detached(data, signer.key, signer.certificate, signer.backend)


def sign_document(data: bytes, kind_code: int, author: keys.AnySigner,
                  org: keys.AnySigner | None) -> tuple[bytes, bytes | None]:
    """(the author's signature, the МО's signature or None when the kind does not require one)."""
    org_signature = None
    if kinds.get(kind_code).requires_org_signature:
        if org is None:
            raise keys.KeyMaterialError("для этого вида СЭМД нужна подпись МО, а сертификат МО не настроен")
        org_signature = sign_bytes(data, org)
    return sign_bytes(data, author), org_signature
