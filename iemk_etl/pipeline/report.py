"""Reports for people: documents by status and МО, as a table, CSV or JSON (pandas does the shaping), with the
replies held in quarantine by reason (``quarantined_<reason>``: answers to nothing we sent, untrusted signers)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import psycopg

from iemk_etl import statuses
from iemk_etl.store import inbox
from iemk_etl.store.mis import exchange

STATUS_ORDER = statuses.ORDER


def documents(conn: psycopg.Connection, mo: str | None = None, start: dt.datetime | None = None,
              end: dt.datetime | None = None) -> pd.DataFrame:
    """The documents (of one МО; created in [start, end) when given) with their ledger rows."""
    columns, rows = exchange.documents_with_ledger(conn, mo, start, end)
    return pd.DataFrame(rows, columns=columns)


def quarantined(conn: psycopg.Connection) -> dict[str, int]:
    """Replies held in quarantine now, by reason (every reason, 0 included): not per МО, a reply names none."""
    return inbox.quarantined(conn)


# How the table names each reason; a reason not here is shown by its code.
_QUARANTINE_TEXT = {
    "unknown_relates_to": "ответ на неизвестный MessageID (RelatesTo)",
    "no_relates_to": "ответ без RelatesTo",
    "untrusted_signer": "подпись ответа не проверена или сертификат не ИЭМК",
}


def quarantine_text(counts: dict[str, int]) -> str:
    """The table's closing lines: replies not applied, by reason; nothing when none."""
    held = {reason: n for reason, n in counts.items() if n}
    if not held:
        return ""
    lines = [f"Ответы ИЭМК в карантине (не применены): {sum(held.values())}"]
    lines += [f"  {_QUARANTINE_TEXT.get(reason, reason)} [{reason}]: {n}" for reason, n in sorted(held.items())]
    return "\n".join(lines) + "\n"


def status_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts per МО and status group («Ошибка: …» texts folded into «Ошибка»)."""
    if frame.empty:
        return pd.DataFrame(columns=["mo", "status", "documents"])
    group = frame["status"].where(~frame["status"].str.startswith("Ошибка"), "Ошибка")
    summary = (frame.assign(status=pd.Categorical(group, STATUS_ORDER, ordered=True))
               .groupby(["mo", "status"], observed=True).size().rename("documents").reset_index())
    return summary


def error_samples(frame: pd.DataFrame, per_mo: int = 3) -> pd.DataFrame:
    errors = frame[frame["status"].str.startswith("Ошибка")]
    return errors.groupby("mo").head(per_mo)[["mo", "local_uid", "status"]]


def render_text(frame: pd.DataFrame, *, errors_per_mo: int = 3) -> str:
    lines = []
    summary = status_summary(frame)
    samples = error_samples(frame, errors_per_mo)
    for mo, part in summary.groupby("mo", sort=True):
        oid = frame.loc[frame["mo"] == mo, "mo_oid"].iloc[0]
        lines.append(f"МО {mo} ({oid})")
        width = max(len(s) for s in STATUS_ORDER)
        for _, row in part.iterrows():
            lines.append(f"  {row['status']:<{width}}  {row['documents']:>5}")
        lines.append(f"  сохранено по видам СЭМД: {_kinds_line(frame[frame['mo'] == mo])}")
        for _, row in samples[samples["mo"] == mo].iterrows():
            lines.append(f"    {row['local_uid']}: {row['status']}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n" if lines else "нет документов\n"


def _kinds_line(frame: pd.DataFrame) -> str:
    """«41: 7/9» = stored / all documents of the kind (НСИ 1520)."""
    counts = frame.groupby("kind_code").agg(total=("status", "size"),
                                             stored=("status", lambda s: int((s == statuses.STORED).sum())))
    return ", ".join(f"{kind}: {row.stored}/{row.total}" for kind, row in counts.iterrows())


def render(frame: pd.DataFrame, fmt: str, quarantine: dict[str, int] | None = None) -> str:
    """``quarantine`` (``quarantined()``): the table closes with it; CSV and JSON carry one ``quarantined_<reason>``
    column per reason on every row (one row with no МО when there are no documents)."""
    if fmt == "table":
        text = render_text(frame)
        return text + ("\n" + quarantine_text(quarantine) if quarantine and any(quarantine.values()) else "")
    summary = status_summary(frame)
    if quarantine is not None:
        if summary.empty:
            summary = pd.DataFrame([{"mo": None, "status": None, "documents": 0}])
        summary = summary.assign(**{f"quarantined_{reason}": n for reason, n in sorted(quarantine.items())})
    if fmt == "csv":
        return summary.to_csv(index=False)
    if fmt == "json":
        return summary.to_json(orient="records", force_ascii=False) + "\n"
    raise ValueError(f"unknown format {fmt!r}; use table, csv or json")
