"""What the report DAG (``iemk_report``) writes: the one place to plug the fuller report in.

HOOK: ``iemk-etl report`` (XLSX, CSV, PNG; being built) should be called from ``write_report`` once it exists,
with the same МО and a period; until then this writes today's status summary (iemk_etl.pipeline.report, the
table behind ``iemk-etl status``) as CSV. Only paths and counts go back to XCom.
"""

from __future__ import annotations

import re
from typing import Any

from iemk_etl.settings import Settings


def write_report(settings: Settings, mo_oids: list[str], run_id: str) -> dict[str, Any]:
    """The status summary of ``mo_oids`` (all МО when empty) as CSV under IEMK_HOME/reports; its path and size."""
    import pandas as pd

    from iemk_airflow import resources
    from iemk_etl.pipeline import report
    from iemk_etl.store import db

    with db.connect(resources.source_dsn(settings)) as conn:
        frames = [report.documents(conn, oid) for oid in mo_oids] if mo_oids else [report.documents(conn)]
        quarantine = report.quarantined(conn)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out = settings.home / "reports" / f"status-{re.sub(r'[^A-Za-z0-9_.-]+', '_', run_id)}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.render(frame, "csv", quarantine), encoding="utf-8")
    return {"csv": str(out), "mo": mo_oids, "documents": int(len(frame))}
