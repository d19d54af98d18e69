"""Where each МО's signing material lives, and who signs what.

Layout under IEMK_KEYS_DIR (default ``$IEMK_HOME/keys``), PEM files, keys PKCS#8::

    <mo code>/request-cert.pem, request-key.pem    signs every SOAP request of the МО (WS-Security), or
    <mo code>/request.p12                          the same as PKCS#12 (password: IEMK_P12_PASSWORD__<MO CODE>
                                                   or IEMK_P12_PASSWORD)
    <mo code>/mo-cert.pem, mo-key.pem              the МО's signature on СЭМД kinds that require it
    <mo code>/staff/<local id>-cert.pem, -key.pem  a doctor's signature on the СЭМД they author

A МО without its own request certificate uses IEMK_SIGN_CERT / IEMK_SIGN_KEY. Inside Airflow an
Airflow connection ``iemk_sign__<mo code>`` takes precedence (see iemk_airflow.resources).
"""

from __future__ import annotations

import os
from pathlib import Path

from iemk_etl.settings import Settings
from iemk_etl.signing import keys


class KeyStore:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.keys_dir

    def _pair(self, folder: Path, prefix: str) -> tuple[Path, Path]:
        return folder / f"{prefix}-cert.pem", folder / f"{prefix}-key.pem"

    def request_signer(self, mo_code: str) -> keys.AnySigner:
        container = self.root / mo_code / "request.p12"
        if container.exists():
            password = os.environ.get(f"IEMK_P12_PASSWORD__{mo_code.upper()}") or os.environ.get("IEMK_P12_PASSWORD")
            return keys.load_pkcs12(container, password)
        cert, key = self._pair(self.root / mo_code, "request")
        if not cert.exists():
            cert, key = self.settings.sign_cert, self.settings.sign_key
        return keys.load_signer(cert, key)

    def org_signer(self, mo_code: str) -> keys.AnySigner:
        return keys.load_signer(*self._pair(self.root / mo_code, "mo"))

    def staff_signer(self, mo_code: str, staff_local_id: str) -> keys.AnySigner:
        return keys.load_signer(*self._pair(self.root / mo_code / "staff", staff_local_id))

    def request_certificate(self, mo_code: str) -> bytes | None:
        cert, _ = self._pair(self.root / mo_code, "request")
        path = cert if cert.exists() else self.settings.sign_cert
        return keys.read_certificate(path.read_bytes()) if path.exists() else None
