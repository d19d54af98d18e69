"""Refuse, when a run is triggered, conf keys that our DAGs do not take.

Airflow 3.3 validates each declared param against its JSON schema when a run is created (REST
``POST /api/v2/dags/{dag_id}/dagRuns``, the UI's trigger form, which posts there, ``dag.test(run_conf=...)``): a bad
date or an unknown ``reprocess`` state is answered 400 / ``ParamValidationError``. A conf key that is *not* a param
is let through (it becomes a param without a schema), so ``{"mo_oid": ...}`` or a misspelt ``"form"`` would start a
run that silently ignores it. This API-server middleware (registered as an Airflow plugin) answers such a trigger
400 before Airflow sees it. Runs created without the REST API (``airflow dags trigger`` on the scheduler host,
``dag.test``) are checked again by the DAG's first reading task (export_dag.run_params).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from iemk_etl.store.integration import EXPORT_DAG, RECONCILE_DAG, SIGN_AND_SEND_DAG

# The params of each DAG family, by dag_id prefix (tests check them against the built DAGs).
ALLOWED_CONF: dict[str, frozenset[str]] = {
    EXPORT_DAG: frozenset({"from", "to", "document_ids", "reprocess"}),
    SIGN_AND_SEND_DAG: frozenset({"from", "to", "kinds"}),
    RECONCILE_DAG: frozenset({"from", "to"}),
}
_TRIGGER = re.compile(r"^/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/?$")
_MAX_BODY = 1024 * 1024   # a trigger body is small; a bigger one is left for Airflow to judge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def refusal(dag_id: str, conf: object) -> str | None:
    """Why a trigger of ``dag_id`` with ``conf`` is refused, or None (not our DAG, or only known keys)."""
    allowed = next((keys for prefix, keys in ALLOWED_CONF.items() if dag_id.startswith(prefix)), None)
    if allowed is None or not isinstance(conf, dict):
        return None
    unknown = sorted(set(conf) - allowed)
    if not unknown:
        return None
    return f"unknown param(s) {unknown} for {dag_id}: it takes only {sorted(allowed)}"


class TriggerConfGuard:
    """Pure ASGI middleware: reads a trigger's body, answers 400 on unknown conf keys, else replays it unchanged."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _TRIGGER.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if message["type"] != "http.request" or not message.get("more_body") or len(body) > _MAX_BODY:
                break
        reason = _reason(match["dag_id"], body)
        if reason is not None:
            await _answer_400(send, reason)
            return
        pending = iter(messages)

        async def replay() -> Message:
            return next(pending, None) or await receive()

        await self.app(scope, replay, send)


def _reason(dag_id: str, body: bytes) -> str | None:
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return None   # not JSON: Airflow answers that itself
    return refusal(dag_id, payload.get("conf")) if isinstance(payload, dict) else None


async def _answer_400(send: Send, reason: str) -> None:
    data = json.dumps({"detail": reason}, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": 400,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


class IemkTriggerGuardPlugin(AirflowPlugin):
    name = "iemk_trigger_guard"
    fastapi_root_middlewares = [{"name": "iemk_trigger_conf_guard", "middleware": TriggerConfGuard}]
