"""Shared by the benchmark scripts: the emulator as its own process, so it does not share a GIL with the load."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from iemk_etl.emulator.server import STATS_PATH


@contextlib.contextmanager
def emulator_process(dsn: str, home: Path, *, packs: Path | None = None, logical: bool = False,
                     workers: int = 1) -> Iterator[str]:
    """`iemk-etl emulator serve` on a free port; yields its base URL once it answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "IEMK_EMULATOR_DSN": dsn, "IEMK_HOME": str(home), "IEMK_SEMD_PACKS": str(packs or ""),
           "IEMK_LOGICAL_CONTROL": "1" if logical else "0"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "iemk-etl"), "emulator", "serve", "--port", str(port),
                             "--reply-delay", "0", "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(url + STATS_PATH, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        httpx.get(url + STATS_PATH, timeout=5).raise_for_status()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
