"""Development keys are private to their owner: 0600 when created, and when regenerated over an existing file."""

import os
import stat

from iemk_etl.devtools import certs
from iemk_etl.signing import keys


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_key_is_0600(tmp_path):
    _, key = certs.create_dev_certificate(tmp_path, algorithm="rsa")
    assert _mode(key) == 0o600


def test_a_key_regenerated_over_a_readable_file_is_0600_and_new(tmp_path):
    cert, key = certs.create_dev_certificate(tmp_path, algorithm="rsa")
    old = key.read_bytes()
    os.chmod(key, 0o644)                              # e.g. copied in by hand, or made before this fix
    old_umask = os.umask(0o022)
    try:
        cert, key = certs.create_dev_certificate(tmp_path, algorithm="rsa")
    finally:
        os.umask(old_umask)
    assert _mode(key) == 0o600
    assert key.read_bytes() != old
    keys.load_signer(cert, key)                       # the pair still matches
    assert sorted(p.name for p in tmp_path.iterdir()) == ["client-cert.pem", "client-key.pem"]   # no temp left
