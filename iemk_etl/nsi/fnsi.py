"""The ФНСИ REST API (nsi.rosminzdrav.ru ``/port/rest``): versions, passport and paged data of a dictionary.

Every call is a GET with ``userKey`` and ``identifier`` (the OID) and answers JSON with ``result`` "OK" or "ERROR"
(docs/nsi.md: where this shape was confirmed). The user key is a secret: it never appears in an error message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from iemk_etl import errors
from iemk_etl.errors import TransientError
from iemk_etl.nsi.model import Dictionary, NsiFileError, build, check_result, other_oids, parse_passport, parse_rows

log = logging.getLogger(__name__)

DEFAULT_URL = "https://nsi.rosminzdrav.ru/port/rest"
PAGE_SIZE = 500            # rows per /data page; ФНСИ serves at most 500 in one answer
VERSIONS_PAGE_SIZE = 200   # /versions is paged too; a dictionary with more versions lists the newest first


class FnsiUnreachableError(TransientError):
    default_kind = errors.NSI_UNREACHABLE


class FnsiRefusedError(NsiFileError):
    """ФНСИ answered this request with an error of its own (result ≠ OK): an unknown dictionary or version."""


@dataclass(frozen=True)
class Version:
    version: str
    publish_date: str | None
    archive: bool


def version_key(version: str) -> tuple[int, ...]:
    """ФНСИ versions are dotted numbers: 2.10 follows 2.9."""
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


class FnsiClient:
    """One ФНСИ endpoint; ``on_request`` sees each method name called (the sync counts its downloads)."""

    def __init__(self, base_url: str, user_key: str, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._key = user_key
        self._http = httpx.Client(base_url=base_url.rstrip("/") + "/", timeout=httpx.Timeout(timeout),
                                  transport=transport, headers={"Accept": "application/json"})
        self.requests: dict[str, int] = {}
        self.on_request: Callable[[str], None] | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FnsiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, method: str, **params: object) -> dict:
        self.requests[method] = self.requests.get(method, 0) + 1
        try:
            resp = self._http.get(method, params={"userKey": self._key, **params})
        except httpx.HTTPError as exc:
            # the exception's text may carry the URL, and the URL the key: name the failure only
            raise FnsiUnreachableError(f"ФНСИ {method}: {type(exc).__name__}") from None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise FnsiUnreachableError(f"ФНСИ {method}: HTTP {resp.status_code}")
        if resp.status_code != 200:
            raise NsiFileError(f"ФНСИ {method}: HTTP {resp.status_code} (проверьте IEMK_FNSI_USER_KEY и OID)")
        try:
            doc = resp.json()
        except ValueError:
            raise NsiFileError(f"ФНСИ {method}: ответ не JSON") from None
        if not isinstance(doc, dict):
            raise NsiFileError(f"ФНСИ {method}: ожидался объект JSON")
        try:
            check_result(doc, method)
        except NsiFileError as exc:
            raise FnsiRefusedError(str(exc)) from None
        return doc

    def versions(self, oid: str) -> list[Version]:
        """The versions ФНСИ lists; none for a dictionary it does not know (it answers that as an error)."""
        try:
            doc = self._get("versions", identifier=oid, page=1, size=VERSIONS_PAGE_SIZE)
        except FnsiRefusedError:
            return []
        return [Version(str(v["version"]), v.get("publishDate"), bool(v.get("archive")))
                for v in doc.get("list") or [] if v.get("version")]

    def passport(self, oid: str, version: str) -> dict:
        return self._get("passport", identifier=oid, version=version)

    def dictionary(self, oid: str, version: str) -> Dictionary:
        """The passport and every data page of one version."""
        head = self.passport(oid, version)
        p_oid, p_version, name, columns, code, display, published = parse_passport(head)
        if oid in other_oids(head):
            p_oid = oid      # asked by an OID the passport lists as its own: kept under the one documents cite
        rows: list[dict[str, str | None]] = []
        page = 1
        while True:
            doc = self._get("data", identifier=oid, version=version, page=page, size=PAGE_SIZE)
            chunk = parse_rows(doc)
            rows.extend(chunk)
            total = int(doc.get("total") or 0)
            if not chunk or len(rows) >= total:
                break
            page += 1
        return build(p_oid, p_version, name, columns, code, display, rows, published)
