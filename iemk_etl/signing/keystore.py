"""Where each МО's signing material lives, and who signs what.

Layout under IEMK_KEYS_DIR (default ``$IEMK_HOME/keys``), PEM files, keys PKCS#8::

    <mo code>/request-cert.pem, request-key.pem    signs every SOAP request of the МО (WS-Security), or
    <mo code>/request.p12                          the same as PKCS#12 (password: ``Settings.p12_password``,
                                                   i.e. IEMK_P12_PASSWORD__<MO CODE> or IEMK_P12_PASSWORD)
    <mo code>/mo-cert.pem, mo-key.pem              the МО's signature on СЭМД kinds that require it
    <mo code>/staff/<local id>-cert.pem, -key.pem  a doctor's signature on the СЭМД they author

A МО without its own request certificate uses IEMK_SIGN_CERT / IEMK_SIGN_KEY when they are set; with neither,
asking for its request signer is a configuration error that names what to provide. GOST keys sign with the backend
named by IEMK_GOST_BACKEND (``Settings.gost_backend``).

A caller may hand in a ``SignerLookup``: asked first for every signer, its answer wins over the files; ``None``
means "not there, use the files". Inside Airflow it reads the Airflow connections ``iemk_sign__<mo code>``,
``iemk_sign__<mo code>__org`` and ``iemk_sign__<mo code>__staff__<local id>`` (iemk_airflow.resources); this package
never reads them itself. What the lookup says is kept for the key store's life (one task), so a period of
thousands of documents asks once per signer, and a bad key refuses only its own documents.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from iemk_etl.settings import Settings
from iemk_etl.signing import keys
from iemk_etl.signing.backend import GostBackend, get_backend

Role = Literal["request", "org", "staff"]
# (role, МО code, staff local id or None) → a signer, or None when the caller holds nothing for it.
SignerLookup = Callable[[Role, str, str | None], "keys.AnySigner | None"]


class KeyStore:
    def __init__(self, settings: Settings, lookup: SignerLookup | None = None) -> None:
        self.settings = settings
        self.root = settings.keys_dir
        self.lookup = lookup
        self._looked_up: dict[tuple[Role, str, str | None], keys.AnySigner | keys.KeyMaterialError | None] = {}
        self._loaded: dict[tuple[Path, Path], tuple[tuple[int, ...], keys.AnySigner]] = {}

    def _injected(self, role: Role, mo_code: str, staff_local_id: str | None = None) -> keys.AnySigner | None:
        """The lookup's signer (None: use the files); its refusal is remembered and raised again, per signer."""
        if self.lookup is None:
            return None
        slot = (role, mo_code, staff_local_id)
        if slot not in self._looked_up:
            try:
                self._looked_up[slot] = self.lookup(role, mo_code, staff_local_id)
            except keys.KeyMaterialError as exc:
                self._looked_up[slot] = exc
        found = self._looked_up[slot]
        if isinstance(found, keys.KeyMaterialError):
            raise found
        return found

    @property
    def backend(self) -> GostBackend:
        return get_backend(self.settings.gost_backend)

    def _pair(self, folder: Path, prefix: str) -> tuple[Path, Path]:
        return folder / f"{prefix}-cert.pem", folder / f"{prefix}-key.pem"

    def request_signer(self, mo_code: str) -> keys.AnySigner:
        if (injected := self._injected("request", mo_code)) is not None:
            return injected
        container = self.root / mo_code / "request.p12"
        if container.exists():
            return keys.load_pkcs12(container, self.settings.p12_password(mo_code), backend=self.backend)
        cert, key = self._pair(self.root / mo_code, "request")
        if not cert.exists():
            cert, key = self._fallback_pair(mo_code, cert)
        return keys.load_signer(cert, key, backend=self.backend)

    def _fallback_pair(self, mo_code: str, own: Path) -> tuple[Path, Path]:
        if self.settings.sign_cert is None or self.settings.sign_key is None:
            raise keys.KeyMaterialError(f"нет сертификата ЭП запросов МО {mo_code}: положите {own.name} и ключ в "
                                        f"{own.parent} (или request.p12) либо задайте IEMK_SIGN_CERT и IEMK_SIGN_KEY")
        return self.settings.sign_cert, self.settings.sign_key

    def org_signer(self, mo_code: str) -> keys.AnySigner:
        if (injected := self._injected("org", mo_code)) is not None:
            return injected
        return self._load(*self._pair(self.root / mo_code, "mo"))

    def staff_signer(self, mo_code: str, staff_local_id: str) -> keys.AnySigner:
        if (injected := self._injected("staff", mo_code, staff_local_id)) is not None:
            return injected
        return self._load(*self._pair(self.root / mo_code / "staff", staff_local_id))

    def _load(self, cert: Path, key: Path) -> keys.AnySigner:
        """The signer of these files, read once while they stay as they are (a period's documents share a few
        signers; reading one costs a key check in pure Python, ≈ 60 ms); the certificate's validity is checked on
        every use, as when it was read each time. Failures are not kept: a fixed file works on the next document."""
        try:
            stats = [path.stat() for path in (cert, key)]
        except OSError:
            return keys.load_signer(cert, key, backend=self.backend)     # says which file is missing
        stamp = tuple(n for st in stats for n in (st.st_mtime_ns, st.st_size))
        held = self._loaded.get((cert, key))
        if held is not None and held[0] == stamp:
            keys.check_certificate(held[1].certificate_der)
            return held[1]
        signer = keys.load_signer(cert, key, backend=self.backend)
        self._loaded[(cert, key)] = (stamp, signer)
        return signer

    def request_certificate(self, mo_code: str) -> bytes | None:
        cert, _ = self._pair(self.root / mo_code, "request")
        path = cert if cert.exists() else self.settings.sign_cert
        return keys.read_certificate(path.read_bytes()) if path is not None and path.exists() else None
