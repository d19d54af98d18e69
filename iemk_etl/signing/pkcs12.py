"""PKCS#12 (.p12/.pfx) containers holding a GOST key, as ``openssl pkcs12 -export`` writes them.

``cryptography`` reads PKCS#12 but refuses GOST keys, so this reads the container itself: the MAC is
checked (RFC 7292 appendix B key derivation), bags encrypted with PBES2 (PBKDF2-HMAC, AES-CBC) are opened.
Containers encrypted with GOST algorithms (CryptoPro's export, R 50.1.112-2016) are refused plainly.
"""

from __future__ import annotations

import hashlib
import hmac
import math

from asn1crypto import algos, keys, pkcs12
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.padding import PKCS7

from iemk_etl import errors
from iemk_etl.errors import IemkError


class Pkcs12Error(IemkError, ValueError):
    default_kind = errors.KEY_MATERIAL


_HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


def _fill(data: bytes, v: int) -> bytes:
    """``data`` repeated to the next multiple of v bytes (empty stays empty)."""
    size = v * math.ceil(len(data) / v)
    return (data * (size // len(data) + 1))[:size] if data else b""


def _kdf(password: str, salt: bytes, iterations: int, purpose: int, size: int, hash_name: str) -> bytes:
    """RFC 7292 B.2: the PKCS#12 key derivation (used for the MAC key)."""
    h = _HASHES[hash_name]
    u, v = h().digest_size, h().block_size
    secret = password.encode("utf-16-be") + b"\x00\x00" if password else b""
    d = bytes([purpose]) * v
    i = bytearray(_fill(salt, v) + _fill(secret, v))
    out = b""
    for _ in range(math.ceil(size / u)):
        a = h(d + bytes(i)).digest()
        for _ in range(iterations - 1):
            a = h(a).digest()
        out += a
        b = int.from_bytes((a * math.ceil(v / u))[:v], "big")
        for j in range(0, len(i), v):
            block = (int.from_bytes(i[j:j + v], "big") + b + 1) % (1 << (v * 8))
            i[j:j + v] = block.to_bytes(v, "big")
    return out[:size]


def _check_mac(pfx: pkcs12.Pfx, password: str) -> None:
    mac_data = pfx["mac_data"]
    if mac_data.native is None:
        return
    hash_name = mac_data["mac"]["digest_algorithm"]["algorithm"].native
    if hash_name not in _HASHES:
        raise Pkcs12Error(f"алгоритм MAC контейнера PKCS#12 [{hash_name}] не поддерживается "
                          "(контейнер КриптоПро с ГОСТ-шифрованием?)")
    size = _HASHES[hash_name]().digest_size
    key = _kdf(password, mac_data["mac_salt"].native, mac_data["iterations"].native, 3, size, hash_name)
    expected = hmac.new(key, pfx["auth_safe"]["content"].native, _HASHES[hash_name]).digest()
    if not hmac.compare_digest(expected, mac_data["mac"]["digest"].native):
        raise Pkcs12Error("неверный пароль контейнера PKCS#12 или контейнер повреждён")


def _decrypt(algorithm: algos.EncryptionAlgorithm, data: bytes, password: str) -> bytes:
    if algorithm.kdf != "pbkdf2" or algorithm.encryption_cipher != "aes":
        raise Pkcs12Error(f"шифрование контейнера [{algorithm['algorithm'].native}] не поддерживается: "
                          "экспортируйте ключ в PKCS#8 или в PKCS#12 с AES (openssl pkcs12 -export)")
    kdf = PBKDF2HMAC(getattr(hashes, algorithm.kdf_hmac.upper())(), algorithm.key_length, algorithm.kdf_salt,
                     algorithm.kdf_iterations)
    key = kdf.derive(password.encode("utf-8"))
    decryptor = Cipher(algorithms.AES(key), modes.CBC(algorithm.encryption_iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise Pkcs12Error("неверный пароль контейнера PKCS#12") from None


def read(data: bytes, password: str) -> tuple[list[bytes], list[bytes]]:
    """(certificates DER, PKCS#8 private keys DER) found in the container."""
    try:
        pfx = pkcs12.Pfx.load(data)
        safes = pfx.authenticated_safe
    except (ValueError, TypeError) as exc:
        raise Pkcs12Error(f"файл не является контейнером PKCS#12: {exc}") from None
    _check_mac(pfx, password)
    certificates: list[bytes] = []
    private_keys: list[bytes] = []
    for info in safes:
        if info["content_type"].native == "data":
            contents = info["content"].native
        elif info["content_type"].native == "encrypted_data":
            encrypted = info["content"]["encrypted_content_info"]
            contents = _decrypt(encrypted["content_encryption_algorithm"], encrypted["encrypted_content"].native,
                                password)
        else:
            continue
        for bag in pkcs12.SafeContents.load(contents):
            kind = bag["bag_id"].native
            if kind == "pkcs8_shrouded_key_bag":
                shrouded: keys.EncryptedPrivateKeyInfo = bag["bag_value"]
                private_keys.append(_decrypt(shrouded["encryption_algorithm"], shrouded["encrypted_data"].native,
                                             password))
            elif kind == "key_bag":
                private_keys.append(bag["bag_value"].dump())
            elif kind == "cert_bag" and bag["bag_value"]["cert_id"].native == "x509":
                certificates.append(bag["bag_value"]["cert_value"].parsed.dump())
    return certificates, private_keys

