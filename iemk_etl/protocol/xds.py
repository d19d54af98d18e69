"""IHE XDS.b ITI-41 (Provide and Register Document Set-b) for the federal ИЭМК, and its RegistryResponse.

The metadata follows the one public reconstruction of what ИЭМК expects (see
../shared/samples/reconstructed): IHE classification scheme UUIDs with Russian code systems.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field

from lxml import etree

from iemk_etl import kinds

XDS = "urn:ihe:iti:xds-b:2007"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"

ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ASYNC_RESPONSE_ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bAsyncResponse"
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
SEVERITY_ERROR = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"

STABLE_DOCUMENT = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
SCHEME_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
SCHEME_CLASS_CODE = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
SCHEME_CONFIDENTIALITY = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
SCHEME_FORMAT_CODE = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
SCHEME_TYPE_CODE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
EI_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
EI_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
SUBMISSION_SET = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
EI_SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
EI_SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"

_NS = {"xds": XDS, "lcm": LCM, "rim": RIM, "rs": RS}


@dataclass(frozen=True)
class AuthorRef:
    snils: str
    family: str
    given: str
    patronymic: str | None


@dataclass(frozen=True)
class Submission:
    unique_id: str
    mo_oid: str
    mo_name: str
    patient_local_id: str
    kind_code: int
    created_at: dt.datetime
    author: AuthorRef
    document: bytes
    submission_set_id: str
    replaces: str | None = None          # uniqueId of the version this one replaces (RPLC)


def patient_cx(local_id: str, mo_oid: str) -> str:
    return f"{local_id}^^^&{mo_oid}&ISO"


def _ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")


def _el(parent: etree._Element, ns: str, tag: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{ns}}}{tag}", attrs)


def _slot(parent: etree._Element, name: str, *values: str) -> None:
    value_list = _el(_el(parent, RIM, "Slot", name=name), RIM, "ValueList")
    for value in values:
        _el(value_list, RIM, "Value").text = value


def _localized(parent: etree._Element, tag: str, value: str) -> None:
    _el(_el(parent, RIM, tag), RIM, "LocalizedString", value=value)


def _classification(parent: etree._Element, cid: str, scheme: str, obj: str, code: str, coding: str,
                    name: str | None = None) -> etree._Element:
    cl = _el(parent, RIM, "Classification", id=cid, classificationScheme=scheme, classifiedObject=obj,
             nodeRepresentation=code)
    _slot(cl, "codingScheme", coding)
    if name:
        _localized(cl, "Name", name)
    return cl


def _external_id(parent: etree._Element, eid: str, scheme: str, obj: str, value: str, name: str) -> None:
    ei = _el(parent, RIM, "ExternalIdentifier", id=eid, registryObject=obj, identificationScheme=scheme,
             value=value)
    _localized(ei, "Name", name)


def build_request(sub: Submission) -> etree._Element:
    kind = kinds.get(sub.kind_code)
    request = etree.Element(f"{{{XDS}}}ProvideAndRegisterDocumentSetRequest",
                            nsmap={None: XDS, "lcm": LCM, "rim": RIM})
    objects = _el(_el(request, LCM, "SubmitObjectsRequest"), RIM, "RegistryObjectList")
    patient = patient_cx(sub.patient_local_id, sub.mo_oid)
    doc = _el(objects, RIM, "ExtrinsicObject", id="Document01", mimeType="text/xml", objectType=STABLE_DOCUMENT)
    _slot(doc, "creationTime", _ts(sub.created_at))
    _slot(doc, "languageCode", "RU")
    _slot(doc, "sourcePatientId", patient)
    _localized(doc, "Name", kind.doc_type_name)
    author = _el(doc, RIM, "Classification", id="cl01", classificationScheme=SCHEME_AUTHOR,
                 classifiedObject="Document01", nodeRepresentation="")
    a = sub.author
    _slot(author, "authorPerson", f"{a.snils}^{a.family}^{a.given}^{a.patronymic or ''}")
    _slot(author, "authorInstitution", f"{sub.mo_name}^^^^^&1.2.643.5.1.13.13.11.1461&ISO^^^^{sub.mo_oid}")
    _classification(doc, "cl02", SCHEME_CLASS_CODE, "Document01", str(kind.doc_type), kinds.NSI_1522,
                    kind.doc_type_name)
    _classification(doc, "cl03", SCHEME_CONFIDENTIALITY, "Document01", "N", "1.2.643.5.1.13.13.99.2.285")
    _classification(doc, "cl04", SCHEME_FORMAT_CODE, "Document01", str(kind.code), kinds.NSI_1520, kind.name)
    _classification(doc, "cl07", SCHEME_TYPE_CODE, "Document01", "POCD_MT000040", "2.16.840.1.113883.1.3",
                    "CDA R2")
    _external_id(doc, "ei01", EI_PATIENT_ID, "Document01", patient, "XDSDocumentEntry.patientId")
    _external_id(doc, "ei02", EI_UNIQUE_ID, "Document01", sub.unique_id, "XDSDocumentEntry.uniqueId")

    package = _el(objects, RIM, "RegistryPackage", id="SubmissionSet01")
    _slot(package, "submissionTime", _ts(dt.datetime.now(dt.UTC)))
    _external_id(package, "ei03", EI_SS_UNIQUE_ID, "SubmissionSet01", sub.submission_set_id,
                 "XDSSubmissionSet.uniqueId")
    _external_id(package, "ei05", EI_SS_PATIENT_ID, "SubmissionSet01", patient, "XDSSubmissionSet.patientId")
    _el(objects, RIM, "Classification", id="cl10", classifiedObject="SubmissionSet01",
        classificationNode=SUBMISSION_SET)
    association = _el(objects, RIM, "Association", id="as01", associationType=HAS_MEMBER,
                      sourceObject="SubmissionSet01", targetObject="Document01")
    _slot(association, "SubmissionSetStatus", "Original")
    if sub.replaces:
        _el(objects, RIM, "Association", id="as02", associationType=RPLC, sourceObject="Document01",
            targetObject=sub.replaces)
    _el(request, XDS, "Document", id="Document01").text = base64.b64encode(sub.document).decode()
    return request


@dataclass(frozen=True)
class ReceivedDocument:
    """What the receiving side reads out of an ITI-41 request."""

    unique_id: str | None
    patient_id: str | None
    kind_code: int | None
    author_person: str | None
    document: bytes | None
    replaces: str | None = None


def read_request(request: etree._Element) -> ReceivedDocument:
    def first(xpath: str) -> str | None:
        found = request.xpath(xpath, namespaces=_NS)
        return str(found[0]) if found else None

    eo = "lcm:SubmitObjectsRequest/rim:RegistryObjectList/rim:ExtrinsicObject"
    kind = first(f"{eo}/rim:Classification[@classificationScheme='{SCHEME_FORMAT_CODE}']/@nodeRepresentation")
    data = first("xds:Document/text()")
    try:
        document = base64.b64decode(data, validate=True) if data else None
    except ValueError:
        document = None
    return ReceivedDocument(
        unique_id=first(f"{eo}/rim:ExternalIdentifier[@identificationScheme='{EI_UNIQUE_ID}']/@value"),
        patient_id=first(f"{eo}/rim:ExternalIdentifier[@identificationScheme='{EI_PATIENT_ID}']/@value"),
        kind_code=int(kind) if kind and kind.isdigit() else None,
        author_person=first(f"{eo}/rim:Classification[@classificationScheme='{SCHEME_AUTHOR}']"
                            "/rim:Slot[@name='authorPerson']/rim:ValueList/rim:Value/text()"),
        document=document,
        replaces=first(f"lcm:SubmitObjectsRequest/rim:RegistryObjectList/rim:Association[@associationType='{RPLC}']"
                       "/@targetObject"),
    )


@dataclass(frozen=True)
class RegistryError:
    error_code: str
    code_context: str
    severity: str = SEVERITY_ERROR
    location: str = ""

    def text(self) -> str:
        return f"{self.error_code}: {self.code_context}"


@dataclass(frozen=True)
class RegistryResponse:
    status: str
    errors: list[RegistryError] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.status == SUCCESS

    def error_text(self) -> str:
        return "; ".join(e.text() for e in self.errors) or "ИЭМК вернула отказ без описания ошибки"


def build_response(response: RegistryResponse) -> etree._Element:
    root = etree.Element(f"{{{RS}}}RegistryResponse", nsmap={"rs": RS}, status=response.status)
    if response.errors:
        error_list = _el(root, RS, "RegistryErrorList")
        for e in response.errors:
            _el(error_list, RS, "RegistryError", errorCode=e.error_code, codeContext=e.code_context,
                severity=e.severity, location=e.location)
    return root


def read_response(element: etree._Element) -> RegistryResponse:
    if element.tag != f"{{{RS}}}RegistryResponse":
        raise ValueError(f"ожидался rs:RegistryResponse, получен {element.tag}")
    errors = [
        RegistryError(e.get("errorCode", ""), e.get("codeContext", ""), e.get("severity", SEVERITY_ERROR),
                      e.get("location", ""))
        for e in element.iterfind(f"{{{RS}}}RegistryErrorList/{{{RS}}}RegistryError")
    ]
    return RegistryResponse(element.get("status", ""), errors)


# -- ITI-18 Registry Stored Query and ITI-43 Retrieve Document Set ------------------------------------------------

QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
QUERY_ACTION = "urn:ihe:iti:2007:RegistryStoredQuery"
QUERY_RESPONSE_ACTION = "urn:ihe:iti:2007:RegistryStoredQueryResponse"
RETRIEVE_ACTION = "urn:ihe:iti:2007:RetrieveDocumentSet"
RETRIEVE_RESPONSE_ACTION = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
# Our decision: FindDocuments by МО without a patient (not in IHE's parameter list) uses this slot.
SLOT_MO = "$XDSDocumentEntryAuthorInstitution"


@dataclass(frozen=True)
class DocumentQuery:
    patient_id: str | None = None            # CX, as patient_cx()
    mo_oid: str | None = None
    kind_code: int | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    statuses: tuple[str, ...] = (APPROVED,)
    unique_ids: tuple[str, ...] = ()         # GetDocuments


@dataclass(frozen=True)
class DocumentEntry:
    unique_id: str
    patient_id: str
    kind_code: int
    creation_time: dt.datetime | None
    status: str
    content_hash: str
    size: int


def _quoted(values: list[str]) -> str:
    return "(" + ",".join(f"'{v}'" for v in values) + ")"


def build_query(q: DocumentQuery) -> etree._Element:
    request = etree.Element(f"{{{QUERY}}}AdhocQueryRequest", nsmap={"query": QUERY, "rim": RIM})
    _el(request, QUERY, "ResponseOption", returnType="LeafClass", returnComposedObjects="true")
    query = _el(request, RIM, "AdhocQuery", id=GET_DOCUMENTS if q.unique_ids else FIND_DOCUMENTS)
    if q.unique_ids:
        _slot(query, "$XDSDocumentEntryUniqueId", _quoted(list(q.unique_ids)))
        return request
    if q.patient_id:
        _slot(query, "$XDSDocumentEntryPatientId", f"'{q.patient_id}'")
    if q.mo_oid:
        _slot(query, SLOT_MO, f"'{q.mo_oid}'")
    if q.kind_code is not None:
        _slot(query, "$XDSDocumentEntryFormatCode", f"('{q.kind_code}^^{kinds.NSI_1520}')")
    if q.created_from:
        _slot(query, "$XDSDocumentEntryCreationTimeFrom", _ts(q.created_from))
    if q.created_to:
        _slot(query, "$XDSDocumentEntryCreationTimeTo", _ts(q.created_to))
    _slot(query, "$XDSDocumentEntryStatus", _quoted(list(q.statuses)))
    return request


def _slot_values(query: etree._Element, name: str) -> list[str]:
    raw = query.xpath("rim:Slot[@name=$n]/rim:ValueList/rim:Value/text()", namespaces=_NS, n=name)
    values: list[str] = []
    for item in raw:
        values += [v.strip().strip("'") for v in item.strip().strip("()").split(",") if v.strip()]
    return values


def _parse_ts(value: str) -> dt.datetime:
    return dt.datetime.strptime(value[:14].ljust(14, "0"), "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)


def read_query(request: etree._Element) -> DocumentQuery:
    query = request.find(f"{{{RIM}}}AdhocQuery")
    if query is None or query.get("id") not in (FIND_DOCUMENTS, GET_DOCUMENTS):
        raise ValueError("поддерживаются только хранимые запросы FindDocuments и GetDocuments")
    if query.get("id") == GET_DOCUMENTS:
        ids = tuple(_slot_values(query, "$XDSDocumentEntryUniqueId"))
        if not ids:
            raise ValueError("GetDocuments: не указан $XDSDocumentEntryUniqueId")
        return DocumentQuery(unique_ids=ids, statuses=())
    patient, mo = _slot_values(query, "$XDSDocumentEntryPatientId"), _slot_values(query, SLOT_MO)
    if not patient and not mo:
        raise ValueError(f"FindDocuments: нужен $XDSDocumentEntryPatientId или {SLOT_MO}")
    kind = _slot_values(query, "$XDSDocumentEntryFormatCode")
    start, end = (_slot_values(query, f"$XDSDocumentEntryCreationTime{w}") for w in ("From", "To"))
    return DocumentQuery(patient_id=patient[0] if patient else None, mo_oid=mo[0] if mo else None,
                         kind_code=int(kind[0].split("^")[0]) if kind else None,
                         created_from=_parse_ts(start[0]) if start else None,
                         created_to=_parse_ts(end[0]) if end else None,
                         statuses=tuple(_slot_values(query, "$XDSDocumentEntryStatus")) or (APPROVED,))


def build_query_response(entries: list[DocumentEntry], error: RegistryError | None = None) -> etree._Element:
    response = etree.Element(f"{{{QUERY}}}AdhocQueryResponse", nsmap={"query": QUERY, "rim": RIM, "rs": RS},
                             status=FAILURE if error else SUCCESS)
    if error:
        _el(_el(response, RS, "RegistryErrorList"), RS, "RegistryError", errorCode=error.error_code,
            codeContext=error.code_context, severity=error.severity)
        return response
    objects = _el(response, RIM, "RegistryObjectList")
    for n, e in enumerate(entries, start=1):
        eo = _el(objects, RIM, "ExtrinsicObject", id=f"Document{n:02d}", mimeType="text/xml",
                 objectType=STABLE_DOCUMENT, status=e.status)
        if e.creation_time:
            _slot(eo, "creationTime", _ts(e.creation_time))
        _slot(eo, "hash", e.content_hash)
        _slot(eo, "size", str(e.size))
        _classification(eo, f"cl{n:02d}", SCHEME_FORMAT_CODE, eo.get("id"), str(e.kind_code), kinds.NSI_1520)
        _external_id(eo, f"pi{n:02d}", EI_PATIENT_ID, eo.get("id"), e.patient_id, "XDSDocumentEntry.patientId")
        _external_id(eo, f"ui{n:02d}", EI_UNIQUE_ID, eo.get("id"), e.unique_id, "XDSDocumentEntry.uniqueId")
    return response


def read_query_response(response: etree._Element) -> list[DocumentEntry]:
    if response.get("status") != SUCCESS:
        errors = [f"{e.get('errorCode')}: {e.get('codeContext')}" for e in response.iter(f"{{{RS}}}RegistryError")]
        raise ValueError("; ".join(errors) or "запрос к реестру не выполнен")
    entries = []
    for eo in response.iter(f"{{{RIM}}}ExtrinsicObject"):
        def slot(name: str, eo: etree._Element = eo) -> str | None:
            found = eo.xpath("rim:Slot[@name=$n]/rim:ValueList/rim:Value/text()", namespaces=_NS, n=name)
            return found[0] if found else None

        def ext(scheme: str, eo: etree._Element = eo) -> str:
            return eo.xpath("string(rim:ExternalIdentifier[@identificationScheme=$s]/@value)", namespaces=_NS,
                            s=scheme)

        created = slot("creationTime")
        kind = eo.xpath("string(rim:Classification[@classificationScheme=$s]/@nodeRepresentation)", namespaces=_NS,
                        s=SCHEME_FORMAT_CODE)
        entries.append(DocumentEntry(ext(EI_UNIQUE_ID), ext(EI_PATIENT_ID), int(kind) if kind else 0,
                                     _parse_ts(created) if created else None, eo.get("status", ""),
                                     slot("hash") or "", int(slot("size") or 0)))
    return entries


def build_retrieve(unique_ids: list[str], repository_id: str) -> etree._Element:
    request = etree.Element(f"{{{XDS}}}RetrieveDocumentSetRequest", nsmap={None: XDS})
    for unique in unique_ids:
        item = _el(request, XDS, "DocumentRequest")
        _el(item, XDS, "RepositoryUniqueId").text = repository_id
        _el(item, XDS, "DocumentUniqueId").text = unique
    return request


def read_retrieve(request: etree._Element) -> list[str]:
    return [u.strip() for u in request.xpath("xds:DocumentRequest/xds:DocumentUniqueId/text()", namespaces=_NS)]


def build_retrieve_response(found: list[tuple[str, bytes]], missing: list[str], repository_id: str) -> etree._Element:
    status = SUCCESS if not missing else (FAILURE if not found else PARTIAL_SUCCESS)
    response = etree.Element(f"{{{XDS}}}RetrieveDocumentSetResponse", nsmap={None: XDS, "rs": RS})
    registry = _el(response, RS, "RegistryResponse", status=status)
    if missing:
        errors = _el(registry, RS, "RegistryErrorList")
        for unique in missing:
            _el(errors, RS, "RegistryError", errorCode="XDSDocumentUniqueIdError",
                codeContext=f"Документ с уникальным идентификатором [{unique}] не найден", severity=SEVERITY_ERROR,
                location=unique)
    for unique, data in found:
        item = _el(response, XDS, "DocumentResponse")
        _el(item, XDS, "RepositoryUniqueId").text = repository_id
        _el(item, XDS, "DocumentUniqueId").text = unique
        _el(item, XDS, "mimeType").text = "text/xml"
        _el(item, XDS, "Document").text = base64.b64encode(data).decode()
    return response


def read_retrieve_response(response: etree._Element) -> tuple[dict[str, bytes], list[str]]:
    documents = {
        item.findtext(f"{{{XDS}}}DocumentUniqueId", "").strip():
            base64.b64decode(item.findtext(f"{{{XDS}}}Document", ""))
        for item in response.iter(f"{{{XDS}}}DocumentResponse")
    }
    errors = [f"{e.get('errorCode')}: {e.get('codeContext')}" for e in response.iter(f"{{{RS}}}RegistryError")]
    return documents, errors
