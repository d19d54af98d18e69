"""ITI-43 Retrieve Document Set: documents by uniqueId from one repository."""

from __future__ import annotations

import base64

from lxml import etree

from iemk_etl.protocol.xds.common import (
    FAILURE,
    NS,
    PARTIAL_SUCCESS,
    RS,
    SEVERITY_ERROR,
    SUCCESS,
    XDS,
    RegistryError,
    error_list,
    error_texts,
)
from iemk_etl.protocol.xml import sub

ACTION = "urn:ihe:iti:2007:RetrieveDocumentSet"
RESPONSE_ACTION = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"


def build_request(unique_ids: list[str], repository_id: str) -> etree._Element:
    request = etree.Element(f"{{{XDS}}}RetrieveDocumentSetRequest", nsmap={None: XDS})
    for unique in unique_ids:
        item = sub(request, (XDS, "DocumentRequest"))
        sub(item, (XDS, "RepositoryUniqueId"), repository_id)
        sub(item, (XDS, "DocumentUniqueId"), unique)
    return request


def read_request(request: etree._Element) -> list[str]:
    return [u.strip() for u in request.xpath("xds:DocumentRequest/xds:DocumentUniqueId/text()", namespaces=NS)]


def build_response(found: list[tuple[str, bytes]], missing: list[str], repository_id: str) -> etree._Element:
    status = SUCCESS if not missing else (FAILURE if not found else PARTIAL_SUCCESS)
    response = etree.Element(f"{{{XDS}}}RetrieveDocumentSetResponse", nsmap={None: XDS, "rs": RS})
    registry = sub(response, (RS, "RegistryResponse"), status=status)
    if missing:
        error_list(registry, [
            RegistryError("XDSDocumentUniqueIdError", f"Документ с уникальным идентификатором [{unique}] не найден",
                          SEVERITY_ERROR, unique)
            for unique in missing
        ])
    for unique, data in found:
        item = sub(response, (XDS, "DocumentResponse"))
        sub(item, (XDS, "RepositoryUniqueId"), repository_id)
        sub(item, (XDS, "DocumentUniqueId"), unique)
        sub(item, (XDS, "mimeType"), "text/xml")
        sub(item, (XDS, "Document"), base64.b64encode(data).decode())
    return response


def read_response(response: etree._Element) -> tuple[dict[str, bytes], list[str]]:
    """The documents found, by uniqueId, and the registry's errors as "code: context"."""
    documents = {
        item.findtext(f"{{{XDS}}}DocumentUniqueId", "").strip():
            base64.b64decode(item.findtext(f"{{{XDS}}}Document", ""))
        for item in response.iter(f"{{{XDS}}}DocumentResponse")
    }
    return documents, error_texts(response)
