"""Per-document cost of the send path: format control, building and signing the ITI-41 request, and the
emulator's verification of it. Run: .venv/bin/python benchmarks/bench_send_path.py [--repeat N]"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from iemk_etl import settings  # noqa: E402
from iemk_etl.devtools import certs  # noqa: E402
from iemk_etl.flk import validation  # noqa: E402
from iemk_etl.protocol import soap, xml  # noqa: E402
from iemk_etl.protocol.xds import submit  # noqa: E402
from iemk_etl.signing import keys, wssecurity  # noqa: E402

from cda_factory import MO, build, header, unique_id  # noqa: E402
from timing import median_ms  # noqa: E402


def _document(size: int) -> bytes:
    filler = "Текст осмотра. " * max(1, size // 28)
    return build(header(), sections=[("Заключение", filler)])


def _build_and_sign(sub: submit.Submission, signer: keys.RsaSha256Signer) -> bytes:
    env = soap.build_envelope(submit.build_request(sub), soap.Addressing(
        soap.new_message_id(), submit.ACTION, "http://iemk/xds", "http://mis/cb"), "client")
    wssecurity.sign_envelope(env, signer)
    return soap.to_bytes(env)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args()
    signer = keys.load_signer(*certs.create_dev_certificate(Path(tempfile.mkdtemp())))
    packs = settings.load().packs_dir
    print(f"packs: {packs or 'none (built-in checks)'}; median of {args.repeat} runs, ms per document")
    print(f"{'size':>8} {'validate':>9} {'sign':>8} {'verify':>8}")
    for size in (1_000, 100_000, 1_000_000):
        data = _document(size)
        sub = submit.Submission(unique_id(MO.oid, "D-1"), MO.oid, MO.name, "P-1", 42, dt.datetime.now(dt.UTC),
                             submit.AuthorRef("11223344595", "Петрова", "Анна", None), data, "1.2.3")
        signed = _build_and_sign(sub, signer)
        v = median_ms(lambda d=data: validation.validate_format(42, d, packs_dir=packs, require_packs=False),
                      args.repeat)
        s = median_ms(lambda sb=sub: _build_and_sign(sb, signer), args.repeat)
        r = median_ms(lambda sg=signed: wssecurity.verify_envelope(xml.parse(sg)), args.repeat)
        print(f"{len(data):>8} {v:>9.2f} {s:>8.2f} {r:>8.2f}")


if __name__ == "__main__":
    main()
