"""The project's Airflow setup: the objects the export DAGs need in the metadata database.

    python -m iemk_airflow.setup            # in the environment of the Airflow components (AIRFLOW_HOME, …)

Creates or updates the pool ``iemk_api`` (IEMK_API_POOL_SLOTS slots), which caps how many tasks call ИЭМК at once
across every МО's DAGs — the same as ``airflow pools set iemk_api N "…"``; running it again is harmless. Run it
after ``airflow db migrate`` (docker-compose's airflow-init does both).
"""

from __future__ import annotations

import argparse
import sys

from iemk_airflow.resources import API_POOL
from iemk_etl import settings as settings_mod

POOL_DESCRIPTION = "iemk-etl: tasks that call ИЭМК (PIX feed, ITI-41, ITI-18), across all МО"


def ensure_pool(slots: int | None = None) -> tuple[str, int]:
    """Create the pool or set its size (IEMK_API_POOL_SLOTS unless ``slots``); returns (name, slots).

    Deferred tasks do not hold its slots: the reply wait waits in the triggerer."""
    from airflow.models.pool import Pool

    size = slots if slots is not None else settings_mod.load().api_pool_slots
    Pool.create_or_update_pool(name=API_POOL, slots=size, description=POOL_DESCRIPTION, include_deferred=False)
    return API_POOL, size


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m iemk_airflow.setup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--slots", type=int, help="pool size (default: IEMK_API_POOL_SLOTS, 4)")
    args = p.parse_args(argv)
    if args.slots is not None and args.slots < 1:
        p.error("--slots must be at least 1")
    name, size = ensure_pool(args.slots)
    print(f"pool {name}: {size} slots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
