"""The inspector page: what the emulator received, newest first, with verdicts and errors.

Everything shown comes from requests anyone may send (MessageIDs, actions, ФЛК findings quoting the document), so
every value goes through ``_text`` (html.escape with quotes: safe in text and in quoted attributes), and nothing a
request carries ever lands in markup unescaped; the only attribute built from data is the verdict colour, picked from
a fixed table.
"""

from __future__ import annotations

import html

_VERDICT_COLOUR = {"success": "#1a7f37", "accepted": "#0969da", "failure": "#cf222e", "fault": "#cf222e",
                   "injected": "#9a6700"}
_OTHER_COLOUR = "#57606a"
_COLUMNS = ("received", "service", "action", "message", "verdict", "detail")


def _text(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _row(r: dict[str, object]) -> str:
    verdict = str(r.get("verdict") or "")
    colour = _VERDICT_COLOUR.get(verdict, _OTHER_COLOUR)
    cells = [_text(str(r.get("received_at") or "")[:23]), _text(r.get("service")), _text(r.get("action")),
             _text(r.get("message_id")), f'<b style="color:{colour}">{_text(verdict)}</b>', _text(r.get("detail"))]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def render(rows: list[dict[str, object]], stats: dict[str, int]) -> str:
    head = "".join(f"<th>{_text(h)}</th>" for h in _COLUMNS)
    body = "".join(_row(r) for r in rows)
    totals = " · ".join(f"{_text(k)}: {_text(v)}" for k, v in stats.items())
    return (
        "<!doctype html><html lang=ru><head><meta charset=utf-8><title>ИЭМК emulator — messages</title>"
        "<style>body{font:14px system-ui;margin:1.5em}table{border-collapse:collapse}"
        "td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}</style></head><body>"
        f"<h1>ИЭМК emulator: received messages</h1><p>{totals}</p>"
        "<p><a href='?'>refresh</a> · <a href='messages.json'>JSON</a></p>"
        f"<table><tr>{head}</tr>{body}</table></body></html>"
    )
