"""GOST R 34.10-2012 / 34.11-2012 per backend and document size: Streebog, CMS sign and verify (the СЭМД
signature), and a WS-Security request signature. Run: .venv/bin/python benchmarks/bench_gost.py [--repeat N]"""

from __future__ import annotations

import argparse
import statistics
import time

from lxml import etree

from iemk_etl import keys, soap, wssecurity
from iemk_etl.crypto import asn1, backend, cms


def _ms(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    print(f"median of {args.repeat} runs, milliseconds")
    print(f"{'backend':>8} {'size':>9} {'streebog':>9} {'cms sign':>9} {'cms verify':>10} {'wss sign':>9}")
    for name in backend.available_backends():
        gost = backend.get_backend(name)
        key = asn1.generate_private_key()
        cert = asn1.self_signed_certificate(key, gost, common_name="bench")
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

            print(f"{name:>8} {size:>9} {_ms(lambda d=data, g=gost: g.streebog256(d), args.repeat):>9.1f} "
                  f"{_ms(lambda d=data, g=gost, k=key, c=cert: cms.sign_detached(d, k, c, g), args.repeat):>9.1f} "
                  f"{_ms(lambda d=data, g=gost, s=signature: cms.verify_detached(d, s, g), args.repeat):>10.1f} "
                  f"{_ms(wss, args.repeat) if size <= 100_000 else float('nan'):>9.1f}")


if __name__ == "__main__":
    main()
