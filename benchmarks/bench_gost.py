"""GOST R 34.10-2012 / 34.11-2012 per backend and document size: Streebog, CMS sign and verify (the СЭМД
signature), and a WS-Security request signature. Run: .venv/bin/python benchmarks/bench_gost.py [--repeat N]"""

from __future__ import annotations

import argparse

from lxml import etree

from iemk_etl.devtools import certs
from iemk_etl.protocol import soap
from iemk_etl.signing import asn1, backend, cms, keys, wssecurity

from timing import median_ms


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    print(f"median of {args.repeat} runs, milliseconds")
    print(f"{'backend':>8} {'size':>9} {'streebog':>9} {'cms sign':>9} {'cms verify':>10} {'wss sign':>9}")
    for name in backend.available_backends():
        gost = backend.get_backend(name)
        key = asn1.generate_private_key()
        cert = certs.self_signed_certificate(key, gost, common_name="bench")
        signer = keys.GostSigner(key, cert.dump(), gost)
        for size in (1_000, 100_000, 1_000_000):
            data = bytes(range(256)) * (size // 256)
            signature = cms.sign_detached(data, key, cert, gost)
            body = etree.Element("{urn:bench}Body")
            body.text = data[: min(size, 100_000)].hex()

            def wss(body: etree._Element = body, signer: keys.GostSigner = signer) -> None:
                env = soap.build_envelope(etree.fromstring(etree.tostring(body)), soap.Addressing(
                    soap.new_message_id(), "urn:a", "http://t", "http://r"), "client")
                wssecurity.sign_envelope(env, signer)

            n = args.repeat
            digest = median_ms(lambda d=data, g=gost: g.streebog256(d), n)
            sign = median_ms(lambda d=data, g=gost, k=key, c=cert: cms.sign_detached(d, k, c, g), n)
            verify = median_ms(lambda d=data, g=gost, s=signature: cms.verify_detached(d, s, g), n)
            request = median_ms(wss, n) if size <= 100_000 else float("nan")
            print(f"{name:>8} {size:>9} {digest:>9.1f} {sign:>9.1f} {verify:>10.1f} {request:>9.1f}")


if __name__ == "__main__":
    main()
