"""`iemk-etl dev-cert`, `sign`, `verify`: key material for tests, and СЭМД signatures by hand."""

from __future__ import annotations

import argparse
from pathlib import Path

from iemk_etl.cli.common import Subparsers
from iemk_etl.settings import Settings


def cmd_dev_cert(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.devtools import certs

    cert, key = certs.create_dev_certificate(Path(args.out), algorithm=args.algorithm, common_name=args.cn)
    print(f"test certificate {cert}\ntest key         {key}  ({args.algorithm}; for the demo and tests only)")
    return 0


def cmd_sign(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.signing import cades, keys

    signer = keys.load_signer(Path(args.cert), Path(args.key))
    out = Path(args.out or f"{args.file}.sig")
    out.write_bytes(cades.sign_bytes(Path(args.file).read_bytes(), signer))
    print(f"detached CMS signature (DER): {out}")
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from iemk_etl.signing import cms
    from iemk_etl.signing.backend import get_backend

    try:
        verified = cms.verify_detached(Path(args.file).read_bytes(), Path(args.signature).read_bytes(), get_backend())
    except cms.CmsError as exc:
        print(f"подпись НЕ верна: {exc.code}: {exc.message}")
        return 1
    print(f"подпись верна: {verified.subject}; подписано {verified.signing_time:%Y-%m-%d %H:%M:%S %Z}")
    return 0


def register(sub: Subparsers) -> None:
    dc = sub.add_parser("dev-cert", help="create a self-signed test certificate and key for signing requests")
    dc.add_argument("--out", required=True, help="folder for client-cert.pem and client-key.pem")
    dc.add_argument("--algorithm", choices=("gost", "rsa"), default="gost")
    dc.add_argument("--cn", default="iemk-etl test client", help="the certificate's common name")
    dc.set_defaults(func=cmd_dev_cert)

    sg = sub.add_parser("sign", help="sign a file: detached CMS (CAdES-BES, GOST R 34.10-2012), DER")
    sg.add_argument("file")
    sg.add_argument("--cert", required=True)
    sg.add_argument("--key", required=True)
    sg.add_argument("--out", help="default FILE.sig")
    sg.set_defaults(func=cmd_sign)

    vf = sub.add_parser("verify", help="verify a detached CMS signature of a file")
    vf.add_argument("file")
    vf.add_argument("signature")
    vf.set_defaults(func=cmd_verify)
