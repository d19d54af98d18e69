"""The inspector page: what the emulator received, newest first, with verdicts and errors."""

from __future__ import annotations

import html

_VERDICT_COLOUR = {"success": "#1a7f37", "accepted": "#0969da", "failure": "#cf222e", "fault": "#cf222e",
                   "injected": "#9a6700"}


def render(rows: list[dict[str, object]], stats: dict[str, int]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ("received", "service", "action", "message", "verdict",
                                                         "detail"))
    body = []
    for r in rows:
        colour = _VERDICT_COLOUR.get(str(r["verdict"]), "#57606a")
        cells = [str(r["received_at"])[:23], str(r["service"]), str(r["action"] or ""), str(r["message_id"]),
                 f'<b style="color:{colour}">{html.escape(str(r["verdict"]))}</b>', str(r["detail"] or "")]
        body.append("<tr>" + "".join(f"<td>{c if c.startswith('<b') else html.escape(c)}</td>" for c in cells)
                    + "</tr>")
    totals = " · ".join(f"{html.escape(k)}: {v}" for k, v in stats.items())
    return (
        "<!doctype html><html lang=ru><head><meta charset=utf-8><title>ИЭМК emulator — messages</title>"
        "<style>body{font:14px system-ui;margin:1.5em}table{border-collapse:collapse}"
        "td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}</style></head><body>"
        f"<h1>ИЭМК emulator: received messages</h1><p>{totals}</p>"
        f"<p><a href='?'>refresh</a> · <a href='messages.json'>JSON</a></p>"
        f"<table><tr>{head}</tr>{''.join(body)}</table></body></html>"
    )
