"""The WSDL of each ИЭМК service, shipped as package data in ``protocol/schemas``: what the client may call and
what the emulator serves."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from iemk_etl import errors
from iemk_etl.errors import IemkError

SERVICES = {"pix": "/pix", "pdq": "/pdq", "registry": "/xds/registry", "repository": "/xds/repository"}


class UnknownOperationError(IemkError, ValueError):
    default_kind = errors.UNKNOWN_OPERATION


def schemas_dir() -> Path:
    # Package data: the WSDLs are part of the protocol, not of an installation (no setting overrides them).
    return Path(__file__).resolve().parent / "schemas"


def wsdl_path(service: str) -> Path:
    return schemas_dir() / f"{service}.wsdl"


@lru_cache(maxsize=8)
def actions(service: str) -> frozenset[str]:
    """The wsa:Action of every operation the service's WSDL declares (read with zeep)."""
    import zeep

    document = zeep.wsdl.Document(str(wsdl_path(service)), transport=zeep.Transport(timeout=5, operation_timeout=5))
    found = set()
    for svc in document.services.values():
        for port in svc.ports.values():
            found |= {op.soapaction for op in port.binding._operations.values() if op.soapaction}
    return frozenset(found)


def check_action(service: str, action: str) -> None:
    if action not in actions(service):
        raise UnknownOperationError(f"the {service} WSDL ({wsdl_path(service)}) has no operation with action {action}")


def service_for_path(path: str) -> str | None:
    return next((name for name, p in SERVICES.items() if p == path), None)


def document_for(service: str, query: str, base_url: str) -> tuple[bytes, str] | None:
    """``?wsdl`` → the WSDL with this server's address; ``?xsd=NAME`` → a schema it imports."""
    if query == "wsdl":
        text = wsdl_path(service).read_text(encoding="utf-8")
        text = text.replace("http://127.0.0.1:8510", base_url)
        # Imports resolve against this URL: point them at ?xsd= on the same path.
        text = text.replace('schemaLocation="iemk-messages.xsd"', 'schemaLocation="?xsd=iemk-messages.xsd"')
        return text.encode(), "text/xml; charset=utf-8"
    if query.startswith("xsd="):
        name = Path(query.removeprefix("xsd=")).name     # no path traversal: a bare file name only
        candidate = schemas_dir() / name
        if candidate.suffix == ".xsd" and candidate.is_file():
            return candidate.read_bytes(), "text/xml; charset=utf-8"
    return None
