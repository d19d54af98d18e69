"""ITI-41 Provide and Register Document Set-b: one signed СЭМД with its metadata; answered by a RegistryResponse
(``common.build_registry_response`` / ``common.read_registry_response``)."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

from lxml import etree

from iemk_etl import kinds
from iemk_etl.protocol.xds.common import (
    EI_PATIENT_ID,
    EI_UNIQUE_ID,
    LCM,
    NS,
    RIM,
    SCHEME_AUTHOR,
    SCHEME_CLASS_CODE,
    SCHEME_CONFIDENTIALITY,
    SCHEME_FORMAT_CODE,
    SCHEME_TYPE_CODE,
    STABLE_DOCUMENT,
    XDS,
    classification,
    external_id,
    localized,
    patient_cx,
    slot,
    ts,
)
from iemk_etl.protocol.xml import sub

ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ASYNC_RESPONSE_ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bAsyncResponse"

SUBMISSION_SET = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
EI_SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
EI_SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"


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


def build_request(submission: Submission) -> etree._Element:
    request = etree.Element(f"{{{XDS}}}ProvideAndRegisterDocumentSetRequest",
                            nsmap={None: XDS, "lcm": LCM, "rim": RIM})
    objects = sub(sub(request, (LCM, "SubmitObjectsRequest")), (RIM, "RegistryObjectList"))
    patient = patient_cx(submission.patient_local_id, submission.mo_oid)
    _document_entry(objects, submission, patient)
    _submission_set(objects, submission, patient)
    if submission.replaces:
        sub(objects, (RIM, "Association"), id="as02", associationType=RPLC, sourceObject="Document01",
            targetObject=submission.replaces)
    sub(request, (XDS, "Document"), id="Document01").text = base64.b64encode(submission.document).decode()
    return request


def _document_entry(objects: etree._Element, s: Submission, patient: str) -> None:
    kind = kinds.get(s.kind_code)
    doc = sub(objects, (RIM, "ExtrinsicObject"), id="Document01", mimeType="text/xml", objectType=STABLE_DOCUMENT)
    slot(doc, "creationTime", ts(s.created_at))
    slot(doc, "languageCode", "RU")
    slot(doc, "sourcePatientId", patient)
    localized(doc, "Name", kind.doc_type_name)
    author = sub(doc, (RIM, "Classification"), id="cl01", classificationScheme=SCHEME_AUTHOR,
                 classifiedObject="Document01", nodeRepresentation="")
    a = s.author
    slot(author, "authorPerson", f"{a.snils}^{a.family}^{a.given}^{a.patronymic or ''}")
    slot(author, "authorInstitution", f"{s.mo_name}^^^^^&1.2.643.5.1.13.13.11.1461&ISO^^^^{s.mo_oid}")
    classification(doc, "cl02", SCHEME_CLASS_CODE, "Document01", str(kind.doc_type), kinds.NSI_1522,
                   kind.doc_type_name)
    classification(doc, "cl03", SCHEME_CONFIDENTIALITY, "Document01", "N", "1.2.643.5.1.13.13.99.2.285")
    classification(doc, "cl04", SCHEME_FORMAT_CODE, "Document01", str(kind.code), kinds.NSI_1520, kind.name)
    classification(doc, "cl07", SCHEME_TYPE_CODE, "Document01", "POCD_MT000040", "2.16.840.1.113883.1.3", "CDA R2")
    external_id(doc, "ei01", EI_PATIENT_ID, "Document01", patient, "XDSDocumentEntry.patientId")
    external_id(doc, "ei02", EI_UNIQUE_ID, "Document01", s.unique_id, "XDSDocumentEntry.uniqueId")


def _submission_set(objects: etree._Element, s: Submission, patient: str) -> None:
    package = sub(objects, (RIM, "RegistryPackage"), id="SubmissionSet01")
    slot(package, "submissionTime", ts(dt.datetime.now(dt.UTC)))
    external_id(package, "ei03", EI_SS_UNIQUE_ID, "SubmissionSet01", s.submission_set_id, "XDSSubmissionSet.uniqueId")
    external_id(package, "ei05", EI_SS_PATIENT_ID, "SubmissionSet01", patient, "XDSSubmissionSet.patientId")
    sub(objects, (RIM, "Classification"), id="cl10", classifiedObject="SubmissionSet01",
        classificationNode=SUBMISSION_SET)
    association = sub(objects, (RIM, "Association"), id="as01", associationType=HAS_MEMBER,
                      sourceObject="SubmissionSet01", targetObject="Document01")
    slot(association, "SubmissionSetStatus", "Original")


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
        found = request.xpath(xpath, namespaces=NS)
        return str(found[0]) if found else None

    objects = "lcm:SubmitObjectsRequest/rim:RegistryObjectList"
    eo = f"{objects}/rim:ExtrinsicObject"
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
        replaces=first(f"{objects}/rim:Association[@associationType='{RPLC}']/@targetObject"),
    )
