"""The ИЭМК page in the Airflow UI: a FastAPI app mounted by the api-server at ``/iemk`` and a navigation entry that
shows it inside the UI (Browse → ИЭМК: документы).

Registered through the ``airflow.plugins`` entry point (pyproject.toml), so an installed package is enough. Airflow
does not authenticate a plugin's FastAPI app: every route here depends on Airflow's own security dependency
(``requires_access_view``: the caller's JWT from the ``Authorization`` header or the UI's ``_token`` cookie, checked
by the configured auth manager), so an anonymous request is refused (401) and a browser is sent to the login page.
Read-only: the page only reads the iemk database (``iemk_etl.pipeline.status_page``) and Airflow's dag runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated

from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

if TYPE_CHECKING:   # the page's modules (pandas among them) are imported when the page is asked for, not by
    # every Airflow process that loads plugins
    from iemk_etl.pipeline.status_page import RunLink, Sending

log = logging.getLogger(__name__)

URL_PREFIX = "/iemk"
_bearer = HTTPBearer(auto_error=False)


async def _authorized(request: Request,
                      credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """Airflow's own check of the core API: the user from the bearer token or the UI's cookie (``get_user``, 401
    without one, 403 for a bad one), then the auth manager's permission to use the UI (WEBSITE). Imported here, not
    at module level: Airflow's security module pulls in Starlette's test client (a deprecation warning) into every
    process that loads plugins, task processes included."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import get_user

    user = await get_user(request, None, credentials)
    if not get_auth_manager().is_authorized_view(access_view=AccessView.WEBSITE, user=user):
        raise HTTPException(status_code=403, detail="Forbidden")


_ACCESS = [Depends(_authorized)]

app = FastAPI(title="iemk-etl", docs_url=None, redoc_url=None, openapi_url=None)


@app.exception_handler(StarletteHTTPException)
async def _refused(request: Request, exc: StarletteHTTPException) -> Response:
    """Not logged in: a browser asking for the page goes to Airflow's login page and back; anything else gets the
    status (401/403) as JSON, as the core API answers."""
    if exc.status_code == 401 and "text/html" in request.headers.get("accept", ""):
        from airflow.api_fastapi.app import get_auth_manager

        return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


@app.get("/", response_class=HTMLResponse, dependencies=_ACCESS)
def page(first: Annotated[str | None, Query(alias="from")] = None,
         last: Annotated[str | None, Query(alias="to")] = None, mo: str | None = None) -> HTMLResponse:
    import psycopg

    from iemk_airflow import resources
    from iemk_etl import settings as settings_mod
    from iemk_etl.pipeline import status_page
    from iemk_etl.store import db

    cfg = settings_mod.load()
    try:
        period = status_page.parse_period(first, last, mo, cfg.timezone)
    except ValueError as exc:
        return HTMLResponse(status_page.error_page(f"Период не понят: {exc}"), status_code=400)
    if not (cfg.source_conn_id or cfg.source_dsn):     # never start the embedded server inside the api-server
        return HTMLResponse(status_page.error_page(
            "База данных iemk не задана: IEMK_SOURCE_CONN_ID или IEMK_SOURCE_DSN в окружении api-server"), 503)
    try:
        with db.connect(resources.source_dsn(cfg)) as conn:
            data = status_page.load(conn, period)
    except psycopg.OperationalError as exc:
        log.warning("iemk page: the iemk database is unreachable (%s)", type(exc).__name__)
        return HTMLResponse(status_page.error_page("База данных iemk недоступна"), status_code=503)
    return HTMLResponse(status_page.render(data, runs_of(data.sendings())))


def runs_of(sendings: Iterable[Sending]) -> dict[int, RunLink]:
    """Which Airflow run made each sending: a run of the МО's export, sign-and-send or reconcile DAG that was running
    at the instant the document was last sent (the ledger records when, the runs record from when to when; one run
    of a DAG at a time per МО). A sending by the command line's own runner is not in this Airflow and gets none."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import or_, select

    from iemk_etl.pipeline import status_page
    from iemk_etl.store import integration

    todo = list(sendings)
    if not todo:
        return {}
    dag_ids = {integration.dag_id(prefix, s.mo): s.mo for s in todo
               for prefix in (integration.EXPORT_DAG, integration.SIGN_AND_SEND_DAG, integration.RECONCILE_DAG)}
    first = min(s.at for s in todo)
    last = max(s.at for s in todo)
    with create_session() as session:
        runs = session.execute(
            select(DagRun.dag_id, DagRun.run_id, DagRun.start_date, DagRun.end_date)
            .where(DagRun.dag_id.in_(dag_ids), DagRun.start_date <= last,
                   or_(DagRun.end_date.is_(None), DagRun.end_date >= first))
            .order_by(DagRun.start_date.desc())).all()
    found: dict[int, RunLink] = {}
    for s in todo:
        for dag_id, run_id, start, end in runs:
            if dag_ids[dag_id] == s.mo and start <= s.at and (end is None or s.at <= end):
                found[s.document_id] = status_page.RunLink(dag_id, run_id)
                break
    return found


class IemkUiPlugin(AirflowPlugin):
    name = "iemk_etl_ui"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "iemk-etl: документы в ИЭМК"}]
    # Shown inside the UI (an iframe at /plugin/iemk-documents), under Browse; href relative to the UI's base URL.
    external_views = [{"name": "ИЭМК: документы", "href": URL_PREFIX.lstrip("/") + "/", "destination": "nav",
                       "category": "browse", "url_route": "iemk-documents"}]
