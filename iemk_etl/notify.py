"""Alerts: a failed export run, or one not finished by its deadline, told to the people who watch the exchange.

An ``Alert`` says which МО, which DAG run, what happened, and where the run's documents stand (the ledger's counts
per status for the run's period, as ``iemk-etl report`` counts them). A sender delivers it: to the log, by e-mail
(an SMTP server, with a timeout on the whole dialogue) or as a JSON POST to a webhook (with a timeout). The channel
is the setting IEMK_ALERT; the Airflow glue (callbacks, the SMTP connection) is plugins/iemk_airflow/alerts.py.

Nothing here quotes a document or a patient: ids, codes and counts only.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import smtplib
import ssl
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage

import psycopg

from iemk_etl.store.mis import reports

log = logging.getLogger(__name__)

RUN_FAILED = "run_failed"
DEADLINE_MISSED = "deadline_missed"
_HEADLINES = {
    RUN_FAILED: "экспорт СЭМД в ИЭМК завершился с ошибкой",
    DEADLINE_MISSED: "экспорт СЭМД в ИЭМК не завершён к сроку",
}


@dataclass(frozen=True)
class Alert:
    event: str                              # RUN_FAILED | DEADLINE_MISSED
    mo_code: str
    mo_oid: str
    dag_id: str
    run_id: str
    detail: str = ""                        # e.g. the failed task and the exception's type; never a document
    period: tuple[dt.datetime | None, dt.datetime | None] = (None, None)
    counts: dict[str, int] = field(default_factory=dict)    # documents of the period per visible status

    def subject(self) -> str:
        return f"[iemk-etl] МО {self.mo_code}: {_HEADLINES.get(self.event, self.event)} (run {self.run_id})"

    def text(self) -> str:
        lines = [self.subject(), "", f"МО: {self.mo_code} ({self.mo_oid})", f"DAG: {self.dag_id}",
                 f"run: {self.run_id}"]
        if any(self.period):
            lines.append(f"период: {_when(self.period[0])} — {_when(self.period[1])}")
        if self.detail:
            lines.append(f"причина: {self.detail}")
        lines.append("документы по статусам:" if self.counts else "документы по статусам: нет данных")
        lines += [f"  {status}: {n}" for status, n in sorted(self.counts.items())]
        return "\n".join(lines) + "\n"

    def as_json(self) -> dict[str, object]:
        return {"event": self.event, "mo": self.mo_code, "mo_oid": self.mo_oid, "dag_id": self.dag_id,
                "run_id": self.run_id, "detail": self.detail, "period": [_when(p) for p in self.period],
                "counts": dict(self.counts), "text": self.text()}


def _when(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def run_counts(conn: psycopg.Connection, mo_oid: str, start: dt.datetime | None, end: dt.datetime | None,
               tz: str) -> dict[str, int]:
    """Documents of the МО created in [start, end) per status family (the period report's query: «Ошибка: …»
    folded into «Ошибка»)."""
    totals: dict[str, int] = {}
    for row in reports.counts(conn, start, end, mo_oid, tz):
        totals[row.status] = totals.get(row.status, 0) + int(row.documents)
    return totals


# -- senders ---------------------------------------------------------------------------------------------------

Sender = Callable[[Alert], None]


def log_sender(alert: Alert) -> None:
    log.error("ALERT %s МО %s run %s: %s; counts %s", alert.event, alert.mo_code, alert.run_id,
              alert.detail or "-", json.dumps(alert.counts, ensure_ascii=False, sort_keys=True))


@dataclass(frozen=True)
class SmtpSender:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    timeout: float
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    use_ssl: bool = False                   # SMTP over TLS from the first byte (port 465)
    starttls: bool = False                  # plain connection upgraded with STARTTLS (port 587)

    def __call__(self, alert: Alert) -> None:
        if not self.recipients:
            raise ValueError("IEMK_ALERT_EMAIL_TO is empty: nobody to send the alert to")
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = alert.subject(), self.sender, ", ".join(self.recipients)
        message.set_content(alert.text())
        with self._connect() as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.login:
                smtp.login(self.login, self.password or "")
            smtp.send_message(message)
        log.info("alert %s for МО %s sent by e-mail to %d recipients", alert.event, alert.mo_code,
                 len(self.recipients))

    def _connect(self) -> smtplib.SMTP:
        # The timeout covers the connect and every command: a dead server never holds the callback.
        if self.use_ssl:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ssl.create_default_context())
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)


@dataclass(frozen=True)
class WebhookSender:
    url: str
    timeout: float

    def __call__(self, alert: Alert) -> None:
        body = json.dumps(alert.as_json(), ensure_ascii=False).encode()
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json; charset=utf-8"})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - URL from settings
            status = response.status
        if not 200 <= status < 300:
            raise RuntimeError(f"webhook {self.url} answered HTTP {status}")
        log.info("alert %s for МО %s posted to the webhook (HTTP %d)", alert.event, alert.mo_code, status)


def deliver(alert: Alert, sender: Sender) -> bool:
    """Send the alert; if the channel fails, the alert still reaches the log (never lost, never raised)."""
    try:
        sender(alert)
        return True
    except Exception as exc:  # noqa: BLE001 - a broken mail server must not hide the failure it reports
        log.error("alert channel failed (%s: %s); the alert follows in the log", type(exc).__name__, exc)
        log_sender(alert)
        return False
