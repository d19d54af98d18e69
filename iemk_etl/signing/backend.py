"""GOST R 34.11-2012 hashing and GOST R 34.10-2012 (256) signing behind one interface, two backends.

- ``python``: gostcrypto (pure Python), always available; Streebog is slow (≈0.1 MB/s), fine for SOAP.
- ``openssl``: the system OpenSSL 3 with Debian's ``libengine-gost-openssl``, called in-process through
  ctypes; hundreds of times faster. Used automatically when present (``IEMK_GOST_BACKEND=auto``).

Wire conventions (the usual source of GOST interop bugs), the same for both backends:
digests are byte strings as OpenSSL and CryptoPro emit them; the signed value e is the digest read as a
little-endian integer; a signature is s‖r, 32 bytes each, big-endian.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Iterable
from functools import lru_cache

from gostcrypto import gosthash, gostsignature

from iemk_etl import errors
from iemk_etl.errors import ConfigurationError
from iemk_etl.signing import asn1, curves
from iemk_etl.signing.gost import GostBackend, GostPrivateKey, GostPublicKey

log = logging.getLogger(__name__)


class BackendUnavailableError(ConfigurationError, RuntimeError):
    """The GOST backend asked for is not installed here."""

    default_kind = errors.CONFIGURATION


class PythonBackend:
    name = "python"

    def streebog256(self, data: bytes) -> bytes:
        # One-shot only: gostcrypto's incremental update() loses data at 64-byte boundaries.
        return bytes(gosthash.new("streebog256", data=bytearray(data)).digest())

    def streebog256_parts(self, parts: Iterable[bytes]) -> bytes:
        # Joined: the incremental update is what is broken (above).
        return self.streebog256(b"".join(parts))

    def streebog512(self, data: bytes) -> bytes:
        return bytes(gosthash.new("streebog512", data=bytearray(data)).digest())

    def sign_digest(self, key: GostPrivateKey, digest: bytes, *, k: bytes = b"") -> bytes:
        signer = gostsignature.new(gostsignature.MODE_256, curves.curve(key.paramset))
        # gostcrypto reads the digest big-endian and returns r‖s; the wire wants e little-endian and s‖r.
        rs = signer.sign(bytearray(key.d.to_bytes(32, "big")), bytearray(digest[::-1]), bytearray(k))
        return bytes(rs[32:] + rs[:32])

    def public_key(self, key: GostPrivateKey) -> GostPublicKey:
        return key.public_key()

    def verify_digest(self, key: GostPublicKey, digest: bytes, signature: bytes) -> bool:
        if len(signature) != 64 or len(digest) != 32:
            return False
        verifier = gostsignature.new(gostsignature.MODE_256, curves.curve(key.paramset))
        public = bytearray(key.x.to_bytes(32, "big") + key.y.to_bytes(32, "big"))
        try:
            return bool(verifier.verify(public, bytearray(digest[::-1]), bytearray(signature[32:] + signature[:32])))
        except gostsignature.GOSTSignatureError:
            return False


class OpenSslEngineBackend:
    """libcrypto 3 + the gost engine, in-process. Keys reach OpenSSL as DER, never through files."""

    name = "openssl"
    _METHOD_ALL = 0xFFFF

    def __init__(self) -> None:
        path = ctypes.util.find_library("crypto") or "libcrypto.so.3"
        try:
            lib = ctypes.CDLL(path)
        except OSError as exc:
            raise BackendUnavailableError(f"libcrypto not found: {exc}") from None
        self._lib = lib
        self._declare(lib)
        engine = lib.ENGINE_by_id(b"gost")
        if not engine or lib.ENGINE_init(engine) != 1:
            lib.ERR_clear_error()
            raise BackendUnavailableError("OpenSSL gost engine not installed (Debian: libengine-gost-openssl)")
        lib.ENGINE_set_default(engine, self._METHOD_ALL)
        self._engine = engine
        self._md256 = lib.EVP_get_digestbyname(b"md_gost12_256")
        self._md512 = lib.EVP_get_digestbyname(b"md_gost12_512")
        if not self._md256 or not self._md512:
            raise BackendUnavailableError("the gost engine did not register the Streebog digests")
        self._keys: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _declare(lib: ctypes.CDLL) -> None:
        vp, sz = ctypes.c_void_p, ctypes.c_size_t
        signatures = {
            "ENGINE_by_id": ([ctypes.c_char_p], vp), "ENGINE_init": ([vp], ctypes.c_int),
            "ENGINE_set_default": ([vp, ctypes.c_uint], ctypes.c_int), "ERR_clear_error": ([], None),
            "EVP_get_digestbyname": ([ctypes.c_char_p], vp),
            "EVP_Digest": ([ctypes.c_char_p, sz, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint), vp, vp],
                           ctypes.c_int),
            "EVP_MD_CTX_new": ([], vp), "EVP_MD_CTX_free": ([vp], None),
            "EVP_DigestInit_ex": ([vp, vp, vp], ctypes.c_int),
            "EVP_DigestUpdate": ([vp, ctypes.c_char_p, sz], ctypes.c_int),
            "EVP_DigestFinal_ex": ([vp, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint)], ctypes.c_int),
            "d2i_AutoPrivateKey": ([vp, ctypes.POINTER(ctypes.c_char_p), ctypes.c_long], vp),
            "d2i_PUBKEY": ([vp, ctypes.POINTER(ctypes.c_char_p), ctypes.c_long], vp),
            "i2d_PUBKEY": ([vp, ctypes.POINTER(vp)], ctypes.c_int),
            "EVP_PKEY_free": ([vp], None),
            "EVP_PKEY_CTX_new": ([vp, vp], vp), "EVP_PKEY_CTX_free": ([vp], None),
            "EVP_PKEY_sign_init": ([vp], ctypes.c_int), "EVP_PKEY_verify_init": ([vp], ctypes.c_int),
            "EVP_PKEY_sign": ([vp, ctypes.c_char_p, ctypes.POINTER(sz), ctypes.c_char_p, sz], ctypes.c_int),
            "EVP_PKEY_verify": ([vp, ctypes.c_char_p, sz, ctypes.c_char_p, sz], ctypes.c_int),
        }
        for name, (args, res) in signatures.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, res

    def _digest(self, md: int, data: bytes, size: int) -> bytes:
        out, length = ctypes.create_string_buffer(size), ctypes.c_uint(0)
        if self._lib.EVP_Digest(data, len(data), out, ctypes.byref(length), md, None) != 1:
            raise RuntimeError("EVP_Digest failed")
        return out.raw[: length.value]

    def streebog256(self, data: bytes) -> bytes:
        return self._digest(self._md256, data, 32)

    def streebog256_parts(self, parts: Iterable[bytes]) -> bytes:
        """Streebog-256 of the parts' concatenation, fed a part at a time (a signed 67 MB envelope's Body is hashed
        as it is produced, never joined)."""
        ctx = self._lib.EVP_MD_CTX_new()
        if not ctx:
            raise MemoryError("EVP_MD_CTX_new failed")
        try:
            if self._lib.EVP_DigestInit_ex(ctx, self._md256, None) != 1:
                raise RuntimeError("EVP_DigestInit_ex failed")
            for part in parts:
                if part and self._lib.EVP_DigestUpdate(ctx, part, len(part)) != 1:
                    raise RuntimeError("EVP_DigestUpdate failed")
            out, length = ctypes.create_string_buffer(32), ctypes.c_uint(0)
            if self._lib.EVP_DigestFinal_ex(ctx, out, ctypes.byref(length)) != 1:
                raise RuntimeError("EVP_DigestFinal_ex failed")
            return out.raw[: length.value]
        finally:
            self._lib.EVP_MD_CTX_free(ctx)

    def streebog512(self, data: bytes) -> bytes:
        return self._digest(self._md512, data, 64)

    def _pkey(self, der: bytes, private: bool) -> int:
        buf = ctypes.c_char_p(der)
        fn = self._lib.d2i_AutoPrivateKey if private else self._lib.d2i_PUBKEY
        pkey = fn(None, ctypes.byref(buf), len(der))
        if not pkey:
            self._lib.ERR_clear_error()
            raise ValueError("OpenSSL could not read the GOST key")
        return pkey

    def _private(self, key: GostPrivateKey) -> int:
        cache_key = (key.paramset, key.d)
        with self._lock:
            if cache_key not in self._keys:
                self._keys[cache_key] = self._pkey(asn1.private_key_der(key), private=True)
            return self._keys[cache_key]

    def sign_digest(self, key: GostPrivateKey, digest: bytes) -> bytes:
        ctx = self._lib.EVP_PKEY_CTX_new(self._private(key), None)
        try:
            out, length = ctypes.create_string_buffer(64), ctypes.c_size_t(64)
            if self._lib.EVP_PKEY_sign_init(ctx) != 1 or \
                    self._lib.EVP_PKEY_sign(ctx, out, ctypes.byref(length), digest, len(digest)) != 1:
                self._lib.ERR_clear_error()
                raise RuntimeError("GOST signing failed in OpenSSL")
            return out.raw[: length.value]
        finally:
            self._lib.EVP_PKEY_CTX_free(ctx)

    def public_key(self, key: GostPrivateKey) -> GostPublicKey:
        """The engine's public point of the key (≈ 2 ms; gostcrypto's scalar multiplication takes ≈ 60 ms)."""
        pkey = self._private(key)
        size = self._lib.i2d_PUBKEY(pkey, None)
        out = ctypes.create_string_buffer(max(size, 1))
        if size <= 0 or self._lib.i2d_PUBKEY(pkey, ctypes.byref(ctypes.c_void_p(ctypes.addressof(out)))) != size:
            self._lib.ERR_clear_error()
            raise RuntimeError("OpenSSL could not encode the GOST public key")
        return asn1.read_public_key(out.raw[:size])

    def verify_digest(self, key: GostPublicKey, digest: bytes, signature: bytes) -> bool:
        pkey = self._pkey(asn1.public_key_der(key), private=False)
        ctx = self._lib.EVP_PKEY_CTX_new(pkey, None)
        try:
            ok = self._lib.EVP_PKEY_verify_init(ctx) == 1 and \
                self._lib.EVP_PKEY_verify(ctx, signature, len(signature), digest, len(digest)) == 1
            self._lib.ERR_clear_error()
            return ok
        finally:
            self._lib.EVP_PKEY_CTX_free(ctx)
            self._lib.EVP_PKEY_free(pkey)


# The backends resolved in this process: one instance each (the OpenSSL one holds the engine and a key cache), made
# under a lock so concurrent first calls (request threads of a server) never race the engine's initialisation. A
# fall-back to pure Python for "auto" is ≈ 100× slower a signature: it is logged as a warning with its reason, and
# tried again after FALLBACK_RETRY_SECONDS rather than kept for the life of the process.
_resolved: dict[str, GostBackend] = {}
_fallback_at: dict[str, float] = {}
_resolve_lock = threading.Lock()
FALLBACK_RETRY_SECONDS = 60.0


def get_backend(name: str | None = None) -> GostBackend:
    """The backend by name (``python``, ``openssl``) or, for ``auto`` (or None), the fastest one available.

    The configured name is ``Settings.gost_backend`` (IEMK_GOST_BACKEND); the key store passes it in, and the
    signers it makes carry their backend. Callers without settings (digests, verification) get ``auto``: both
    backends give the same results, only their speed differs."""
    wanted = (name or "auto").lower()
    if wanted not in ("python", "openssl", "auto"):
        raise ValueError(f"IEMK_GOST_BACKEND={wanted!r}: use auto, openssl or python")
    backend = _resolved.get(wanted)
    if backend is not None:
        return backend
    with _resolve_lock:
        if wanted in _resolved:
            return _resolved[wanted]
        fell_back = _fallback_at.get(wanted)
        if fell_back is not None and time.monotonic() - fell_back < FALLBACK_RETRY_SECONDS:
            return _python()
        backend = _resolve(wanted)
        if backend.name == "python" and wanted == "auto":
            _fallback_at[wanted] = time.monotonic()
        else:
            _resolved[wanted] = backend
        return backend


def _resolve(wanted: str) -> GostBackend:
    if wanted == "python":
        return _python()
    try:
        return OpenSslEngineBackend()
    except BackendUnavailableError as exc:
        if wanted == "openssl":
            raise
        log.warning("GOST backend: pure Python, ≈ 100× slower a signature (%s)", exc)
        return _python()


@lru_cache(maxsize=1)
def _python() -> PythonBackend:
    return PythonBackend()


def available_backends() -> list[str]:
    names = ["python"]
    try:
        get_backend("openssl")
        names.append("openssl")
    except BackendUnavailableError:
        pass
    return names
