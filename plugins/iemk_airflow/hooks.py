"""``IemkHook``: the ``iemk`` connection type (registered by ``iemk_airflow.provider``) and its Test button.

The hook reads the connection (``connection.py`` says what each field means); the tasks get their settings and
client through ``resources``, which uses the same reading. ``test_connection()`` is what the UI's Test button and
``airflow connections test`` call: it fetches each service's WSDL (with timeouts) and checks the request
certificate the connection holds (validity dates, key usage, key matches certificate).
"""

from __future__ import annotations

from typing import Any

import httpx
from airflow.sdk import BaseHook
from lxml import etree

from iemk_airflow import connection
from iemk_airflow.provider import CONN_TYPE, DEFAULT_CONN_ID
from iemk_etl.protocol import xml
from iemk_etl.signing import keys

WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WARN_DAYS = 30            # "expires soon" in the Test answer (the tasks use IEMK_CERT_WARN_DAYS)
TEST_TIMEOUT = 10.0      # seconds per WSDL fetch when the connection sets none: a Test button must not hang
_SERVICES = {"IEMK_REPOSITORY_URL": "repository", "IEMK_REGISTRY_URL": "registry", "IEMK_PIX_URL": "pix",
             "IEMK_PDQ_URL": "pdq"}


class IemkHook(BaseHook):
    """The ИЭМК endpoints, clientEntityId and request certificate of one МО (``iemk__<mo code>``) or of every МО
    without its own (``iemk_default``)."""

    conn_name_attr = "iemk_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "ИЭМК (ЕГИСЗ)"

    def __init__(self, iemk_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.iemk_conn_id = iemk_conn_id

    def get_conn(self) -> connection.IemkEndpoint:
        conn = self.get_connection(self.iemk_conn_id)
        return connection.endpoint_from(conn.conn_id, host=conn.host, port=conn.port, login=conn.login,
                                        extra=conn.extra_dejson)

    def request_signer(self) -> keys.AnySigner | None:
        """The request certificate the connection holds (checked), or None when it holds none."""
        conn = self.get_connection(self.iemk_conn_id)
        return connection.signer_from(conn.conn_id, conn.extra_dejson, conn.password)

    def test_connection(self) -> tuple[bool, str]:
        """The certificate (local, quick) and the services; every problem found is said, not just the first."""
        try:
            endpoint = self.get_conn()
        except connection.ConnectionFieldError as exc:
            return False, str(exc)
        problems, certificate = [], ""
        try:
            certificate = self._certificate_summary()
        except keys.KeyMaterialError as exc:
            problems.append(f"сертификат ЭП запросов не годится: {exc} / the request certificate is not usable")
        if endpoint.base_url is None:
            problems.append("не задан базовый URL ИЭМК (поле host) / the IEMK base URL (host) is not set")
        else:
            try:
                fetched = [fetch_wsdl(name, endpoint.services[variable], endpoint.timeout or TEST_TIMEOUT)
                           for variable, name in _SERVICES.items()]
            except TestFailure as exc:
                problems.append(str(exc))
        if problems:
            return False, "; ".join(problems)
        entity = endpoint.client_entity_id or "не задан (поле login) / not set (login)"
        return True, (f"ИЭМК отвечает: WSDL {', '.join(fetched)} получены с {endpoint.base_url}; clientEntityId: "
                      f"{entity}; {certificate} / IEMK answers: WSDL fetched, certificate checked")

    def _certificate_summary(self) -> str:
        signer = self.request_signer()
        if signer is None:
            return ("сертификата в подключении нет: запросы подпишет iemk_sign__<МО> или файл из IEMK_KEYS_DIR "
                    "(no certificate in the connection)")
        return f"сертификат ЭП запросов: {keys.certificate_info(signer.certificate_der).describe(WARN_DAYS)}"


class TestFailure(Exception):
    """A failed check, in words for the person who pressed Test (Russian / English)."""

    __test__ = False   # not a pytest class


def fetch_wsdl(service: str, url: str, timeout: float) -> str:
    """GET ``<url>?wsdl``: it must answer 200 with a WSDL document. Returns the service's name."""
    address = f"{url}?wsdl"
    try:
        response = httpx.get(address, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
                             follow_redirects=False)
    except httpx.TimeoutException:
        raise TestFailure(f"ИЭМК не ответила за {timeout:g} с: {address} / IEMK did not answer in time") from None
    except httpx.HTTPError as exc:
        raise TestFailure(f"ИЭМК недоступна по адресу {address}: {type(exc).__name__}: {exc} / IEMK is not "
                          "reachable: check the host and the service paths") from None
    if response.status_code != 200:
        raise TestFailure(f"ИЭМК ответила HTTP {response.status_code} на {address}: неверный URL или путь сервиса "
                          f"{service} / wrong URL or service path")
    try:
        root = xml.parse(response.content)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise TestFailure(f"по адресу {address} не WSDL (ответ не XML: {exc}) / not a WSDL") from None
    if root.tag != f"{{{WSDL_NS}}}definitions":
        raise TestFailure(f"по адресу {address} не WSDL (корневой элемент {root.tag}) / not a WSDL")
    return service
