"""`iemk-etl dev-cert`, `sign`, `verify`: key material for tests, and СЭМД signatures by hand."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from lxml import etree

from iemk_etl.cli.common import Subparsers
from iemk_etl.settings import Settings

Element = etree._Element


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


# `verify` exit codes: valid, invalid, and "cannot say" (an algorithm or construction we do not verify).
VALID, INVALID, UNSUPPORTED = 0, 1, 3


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    if args.signature:
        return _verify_cms(Path(args.file).read_bytes(), Path(args.signature).read_bytes())
    from iemk_etl.protocol import xml
    from iemk_etl.signing import xmldsig

    try:
        root = xml.parse(Path(args.file).read_bytes())
    except (SyntaxError, ValueError) as exc:   # lxml's XMLSyntaxError is a SyntaxError
        print(f"файл не читается как XML ({exc}); для CMS укажите файл подписи: verify FILE FILE.sig")
        return INVALID
    try:
        lines = _verify_xml(root)
    except xmldsig.UnsupportedSignatureError as exc:
        print(f"подпись не проверена: {exc.message}")
        return UNSUPPORTED
    except xmldsig.SignatureError as exc:
        print(f"подпись НЕ верна: {exc.code}: {exc.message}")
        return INVALID
    print("\n".join(lines))
    return VALID


def _verify_cms(data: bytes, signature: bytes) -> int:
    from iemk_etl.signing import cms
    from iemk_etl.signing.backend import get_backend

    try:
        verified = cms.verify_detached(data, signature, get_backend())
    except cms.CmsError as exc:
        print(f"подпись {'не проверена' if exc.code == 'UNKNOWN_ALGORITHM' else 'НЕ верна'}: {exc.code}: "
              f"{exc.message}")
        return UNSUPPORTED if exc.code == "UNKNOWN_ALGORITHM" else INVALID
    print(f"подпись верна: {verified.subject}; подписано {verified.signing_time:%Y-%m-%d %H:%M:%S %Z}")
    return VALID


def _verify_xml(root: Element) -> list[str]:
    """A SOAP envelope with wsse:Security by the WS-Security profile, anything else as standalone XMLDSig."""
    from iemk_etl.protocol import soap
    from iemk_etl.signing import wssecurity, xmldsig

    security = root.find(f"{{{soap.SOAP}}}Header/{{{wssecurity.WSSE}}}Security")
    if root.tag == f"{{{soap.SOAP}}}Envelope" and security is not None:
        # Offline, "now" is the moment the message says it was made: coverage, certificate and timestamp
        # are checked as the receiver checked them then.
        created = _created(security)
        verified = wssecurity.verify_envelope(root, now=created)
        return [f"подпись верна: SOAP-сообщение, WS-Security (на момент wsu:Created {created:%Y-%m-%d %H:%M:%S} UTC)",
                *_signer(verified.certificate_der), f"  алгоритм подписи: {verified.signature_method}",
                f"  подписаны: {', '.join(wssecurity.REQUIRED_PARTS)}; метка времени в сроке"]
    lines = []
    for verified in xmldsig.verify_document(root):
        lines += [f"подпись верна: XMLDSig{', вложенная (enveloped)' if verified.enveloped else ''}",
                  *_signer(verified.certificate_der, warn_expired=True),
                  f"  алгоритм подписи: {verified.signature_method}", f"  канонизация: {verified.canonicalization}"]
        for ref in verified.references:
            what = "весь документ" if ref.uri == "" else "элемент"
            lines.append(f"  ссылка URI=\"{ref.uri}\": {what} <{etree.QName(ref.element).localname}>, "
                         f"хэш {ref.digest_method}, преобразования: {', '.join(ref.transforms) or 'нет'}")
    return lines


def _created(security: Element) -> dt.datetime:
    from iemk_etl.signing import wssecurity

    text = security.findtext(f"{{{wssecurity.WSU}}}Timestamp/{{{wssecurity.WSU}}}Created") or ""
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return dt.datetime.now(dt.UTC)   # no usable Created: verify_envelope reports the timestamp


def _signer(cert_der: bytes, *, warn_expired: bool = False) -> list[str]:
    """Who signed: the certificate's subject CN, issuer CN and serial — what identifies it, nothing private."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(cert_der)

    def cn(name: x509.Name) -> str:
        found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(found[0].value) if found else name.rfc4514_string()

    lines = [f"  подписант: {cn(cert.subject)} (издатель {cn(cert.issuer)}, серийный номер {cert.serial_number:x}, "
             f"действителен {cert.not_valid_before_utc:%Y-%m-%d} – {cert.not_valid_after_utc:%Y-%m-%d})"]
    now = dt.datetime.now(dt.UTC)
    if warn_expired and not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        # XMLDSig carries no signing time: the certificate may well have been valid when it signed.
        lines.append("  внимание: сертификат сегодня недействителен; время подписи в XMLDSig не указано")
    return lines


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

    vf = sub.add_parser("verify", help="verify a signature: XMLDSig in an XML file (enveloped, or WS-Security in a "
                                       "SOAP envelope), or a detached CMS signature FILE.sig of FILE; exit 0 valid, "
                                       "1 invalid, 3 algorithm not supported")
    vf.add_argument("file")
    vf.add_argument("signature", nargs="?", help="a detached CMS signature of FILE (DER)")
    vf.set_defaults(func=cmd_verify)
