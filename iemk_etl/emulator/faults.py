"""Faults on demand: the emulator misbehaving the way a federal service does, at set rates, reproducibly.

A profile is JSON (a file path or the JSON itself, ``--faults`` or IEMK_EMULATOR_FAULTS)::

    {"seed": 7,
     "operations": {
       "*":     {"http_503": 0.05, "retry_after": 3},
       "iti41": {"rate_limit": 0.1, "slow": 0.2, "latency_ms": [200, 1500],
                 "registry_busy": 0.05, "lost_reply": 0.02, "duplicate_reply": 0.02, "out_of_order": 0.3},
       "pix":   {"reset": 0.01, "malformed": 0.01}}}

Operations: ``iti41``, ``iti43``, ``iti18``, ``pix``, ``pdq``; ``*`` applies where an operation sets nothing.
Every draw comes from one seeded generator, so the same requests in the same order meet the same faults.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path

from iemk_etl import errors
from iemk_etl.errors import ConfigurationError

RATE_LIMIT_TEXT = "Доступ к сервису временно запрещён - превышен лимит запросов"

SYNC_KINDS = ("http_500", "http_503", "reset", "malformed", "rate_limit")
ASYNC_KINDS = ("registry_busy", "lost_reply", "duplicate_reply", "out_of_order")


class FaultProfileError(ConfigurationError, ValueError):
    default_kind = errors.BAD_FAULT_PROFILE


@dataclass(frozen=True)
class OperationFaults:
    http_500: float = 0.0
    http_503: float = 0.0
    retry_after: int = 5
    reset: float = 0.0
    slow: float = 0.0
    latency_ms: tuple[float, float] = (200.0, 2000.0)
    malformed: float = 0.0
    rate_limit: float = 0.0
    registry_busy: float = 0.0
    lost_reply: float = 0.0
    duplicate_reply: float = 0.0
    out_of_order: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> OperationFaults:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise FaultProfileError(f"unknown fault settings {sorted(unknown)}; known: {sorted(known)}")
        values = dict(data)
        if "latency_ms" in values:
            low, high = values["latency_ms"]  # type: ignore[misc]
            values["latency_ms"] = (float(low), float(high))
        for name, value in values.items():
            if name not in ("latency_ms", "retry_after") and not 0.0 <= float(value) <= 1.0:  # type: ignore[arg-type]
                raise FaultProfileError(f"rate {name}={value} must be between 0 and 1")
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SyncFault:
    kind: str                 # one of SYNC_KINDS
    retry_after: int = 0


@dataclass
class FaultProfile:
    seed: int = 0
    operations: dict[str, OperationFaults] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311 - reproducible test faults, not secrets
        self._lock = threading.Lock()

    @classmethod
    def load(cls, source: str | None) -> FaultProfile:
        """From a JSON text or a path to a JSON file; None or empty: no faults."""
        if not source:
            return cls()
        text = Path(source).read_text(encoding="utf-8") if not source.lstrip().startswith("{") else source
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FaultProfileError(f"fault profile is not JSON: {exc}") from None
        operations = {name: OperationFaults.from_dict(values) for name, values in data.get("operations", {}).items()}
        return cls(seed=int(data.get("seed", 0)), operations=operations)

    @property
    def active(self) -> bool:
        return bool(self.operations)

    def settings(self, operation: str) -> OperationFaults:
        return self.operations.get(operation) or self.operations.get("*") or OperationFaults()

    def _hit(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._random.random() < rate

    def latency(self, operation: str) -> float:
        """Seconds to stall this response (0 when it is not a slow one)."""
        s = self.settings(operation)
        if not self._hit(s.slow):
            return 0.0
        with self._lock:
            return self._random.uniform(*s.latency_ms) / 1000

    def sync_fault(self, operation: str) -> SyncFault | None:
        s = self.settings(operation)
        for kind in SYNC_KINDS:
            if self._hit(getattr(s, kind)):
                return SyncFault(kind, s.retry_after if kind == "http_503" else 0)
        return None

    def async_fault(self, operation: str, kind: str) -> bool:
        return self._hit(getattr(self.settings(operation), kind))

    def extra_delay(self, operation: str, base: float) -> float:
        """Out-of-order replies: some answers are held back a random while, so later ones overtake them."""
        if not self.async_fault(operation, "out_of_order"):
            return 0.0
        with self._lock:
            return self._random.uniform(0.5, 3.0) * max(base, 0.2)
