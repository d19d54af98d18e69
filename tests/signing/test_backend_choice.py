"""Which GOST backend a process gets: one instance per name, and a fall-back to pure Python that is said and not
kept for good (a server that once missed the engine verified every request ≈ 100× slower for the rest of its life)."""

import logging
import threading

import pytest

from iemk_etl.signing import backend


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(backend, "_resolved", {})
    monkeypatch.setattr(backend, "_fallback_at", {})
    clock = [1000.0]
    monkeypatch.setattr(backend.time, "monotonic", lambda: clock[0])
    return clock


class _Engine:
    """Stands in for OpenSslEngineBackend (below the unit: libcrypto is not what is tested): fails while told to."""
    name = "openssl"
    failing = True
    made = 0

    def __init__(self) -> None:
        type(self).made += 1
        if type(self).failing:
            raise backend.BackendUnavailableError("engine busy")


def test_auto_falls_back_with_a_warning_and_tries_the_engine_again_later(fresh, monkeypatch, caplog):
    monkeypatch.setattr(backend, "OpenSslEngineBackend", _Engine)
    _Engine.failing, _Engine.made = True, 0
    with caplog.at_level(logging.WARNING, logger=backend.__name__):
        assert backend.get_backend().name == "python"
    assert "pure Python" in caplog.text and "engine busy" in caplog.text
    _Engine.failing = False
    assert backend.get_backend().name == "python" and _Engine.made == 1     # within the retry interval: not retried
    fresh[0] += backend.FALLBACK_RETRY_SECONDS + 1
    engine = backend.get_backend()
    assert engine.name == "openssl" and _Engine.made == 2
    assert backend.get_backend() is engine and backend.get_backend("auto") is engine and _Engine.made == 2


def test_an_asked_for_engine_that_is_missing_raises_every_time(fresh, monkeypatch):
    monkeypatch.setattr(backend, "OpenSslEngineBackend", _Engine)
    _Engine.failing, _Engine.made = True, 0
    for _ in range(2):
        with pytest.raises(backend.BackendUnavailableError):
            backend.get_backend("openssl")
    assert _Engine.made == 2
    with pytest.raises(ValueError, match="IEMK_GOST_BACKEND"):
        backend.get_backend("rsa")


def test_concurrent_first_calls_make_one_backend(fresh):
    got: list[object] = []
    start = threading.Barrier(8)

    def first_call() -> None:
        start.wait()
        got.append(backend.get_backend())

    threads = [threading.Thread(target=first_call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(b) for b in got}) == 1
