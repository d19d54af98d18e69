"""A local stand-in of the ФНСИ REST API serving a dictionary folder (the demo set by default) in the API's shape.

``/port/rest/versions``, ``/port/rest/passport`` and ``/port/rest/data`` (paged) with ``userKey`` and
``identifier``, answering as ФНСИ does (``result`` "OK"/"ERROR", ``list``, ``total``; docs/nsi.md). It counts the
requests per method, so a test can prove that a second sync downloads nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from iemk_etl.nsi import files
from iemk_etl.nsi.fnsi import version_key
from iemk_etl.nsi.model import Dictionary
from iemk_etl.transport.http_server import BackgroundServer, QuietHandler

DEMO_DIR = Path(__file__).with_name("nsi_demo")
PREFIX = "/port/rest/"


def _passport(d: Dictionary) -> dict:
    keys = [{"field": d.code_column, "type": "PRIMARY"}]
    if d.name_column:
        keys.append({"field": d.name_column, "type": "VALUE"})
    return {"result": "OK", "resultText": None, "resultCode": None, "oid": d.oid, "version": d.version,
            "rowsCount": len(d.rows), "publishDate": d.publish_date, "fullName": d.name, "shortName": d.name,
            "fields": [c.as_json() for c in d.columns], "keys": keys,
            "codes": [{"value": d.oid, "type": "TYPE_PRIMARY"}], "archive": False}


def _error(text: str) -> dict:
    return {"result": "ERROR", "resultText": text, "resultCode": "01"}


class FnsiStandIn:
    def __init__(self, directory: Path = DEMO_DIR, user_key: str = "demo-user-key") -> None:
        self.user_key = user_key
        self.dictionaries = {(d.oid, d.version): d for d, _ in files.read(directory)}
        self.requests: Counter[str] = Counter()
        self._server: BackgroundServer | None = None

    def answer(self, method: str, query: dict[str, str]) -> tuple[int, dict]:
        self.requests[method] += 1
        if query.get("userKey") != self.user_key:
            return 401, _error("Неверный ключ пользователя")
        oid = query.get("identifier", "")
        held = sorted((v for o, v in self.dictionaries if o == oid), key=version_key, reverse=True)
        if not held:
            return 200, _error(f"Справочник {oid} не найден")
        if method == "versions":
            return 200, {"result": "OK", "resultText": None, "resultCode": None, "total": len(held),
                         "list": [{"version": v, "publishDate": self.dictionaries[(oid, v)].publish_date,
                                   "archive": False} for v in held]}
        d = self.dictionaries.get((oid, query.get("version") or held[0]))
        if d is None:
            return 200, _error("Версия справочника не найдена")
        if method == "passport":
            return 200, _passport(d)
        if method == "data":
            page, size = max(int(query.get("page", "1")), 1), min(max(int(query.get("size", "200")), 1), 500)
            chunk = d.rows[(page - 1) * size:page * size]
            return 200, {"result": "OK", "resultText": None, "resultCode": None, "total": len(d.rows),
                         "list": [[{"column": k, "value": v} for k, v in r.items()] for r in chunk]}
        return 404, _error(f"Неизвестный метод {method}")

    def start(self) -> FnsiStandIn:
        standin = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:   # noqa: N802  (http.server's name)
                parts = urlsplit(self.path)
                if not parts.path.startswith(PREFIX):
                    self.respond(404, b"not found")
                    return
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                status, body = standin.answer(parts.path[len(PREFIX):].strip("/"), query)
                self.respond(status, json.dumps(body, ensure_ascii=False).encode(), "application/json; charset=utf-8")

        self._server = BackgroundServer(Handler).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return self._server.url + PREFIX.rstrip("/")

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> FnsiStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
