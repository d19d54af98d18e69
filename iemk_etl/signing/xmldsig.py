"""XML Signature (XMLDSig 1.0) on our GOST primitives: verify CryptoPro-made and WS-Security signatures; sign test data.

What is verified: an enveloped signature (``Reference URI=""`` with the enveloped-signature transform, what
CryptoPro's .NET and JCP signers make) and same-document references ``#id`` to an element with an ``Id``,
``ID`` or ``wsu:Id`` attribute (WS-Security; ``wssecurity`` builds its profile on this module).
Canonicalisation: exclusive c14n and inclusive c14n 1.0, each with or without comments. Algorithms: GOST
R 34.10-2012 (256) with Streebog-256 in both spellings (xmldsig-more and CryptoPro's URN), and RSA-SHA256
for non-GOST setups. Anything else — GOST 2001, GOST 2012-512, RSA-SHA1, XPath transforms, external
references — is ``UnsupportedSignatureError``: not a verdict on the signature, which we cannot check.

Signature wrapping is refused: every referenced id names exactly one element of the document (counted over
all three id attributes), and ``VerifiedSignature.references`` hands back the very elements whose digests
were checked, so a caller tests *those* for what it needs signed, never looks them up again by name.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from iemk_etl import errors
from iemk_etl.errors import CodedError
from iemk_etl.protocol.xml import qname, sub
from iemk_etl.signing import asn1, curves, keys
from iemk_etl.signing.backend import get_backend
from iemk_etl.signing.keys import Signer

DS = "http://www.w3.org/2000/09/xmldsig#"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_COMMENTS = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_COMMENTS = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
CANONICALIZATIONS = frozenset({EXC_C14N, EXC_C14N_COMMENTS, C14N, C14N_COMMENTS})

# The attributes an id reference may name (XMLDSig leaves it to the application; these three are what
# WS-Security, SAML and CryptoPro's samples use).
ID_ATTRIBUTES = ("Id", "ID", f"{{{WSU}}}Id")

# Both spellings of each GOST URI (keys.py), by the name the signer and the CLI use.
SPELLINGS = {
    "xmldsig-more": (keys.GOST_2012_256, keys.STREEBOG_256),
    "cryptopro": (keys.GOST_2012_256_CP, keys.STREEBOG_256_CP),
}

# Algorithms we recognise but do not verify: named so the verdict says what the signature is.
_KNOWN_UNSUPPORTED = {
    "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102001-gostr3411": "ГОСТ Р 34.10-2001",
    "http://www.w3.org/2001/04/xmldsig-more#gostr34102001-gostr3411": "ГОСТ Р 34.10-2001",
    "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-512": "ГОСТ Р 34.10-2012 (512)",
    "http://www.w3.org/2001/04/xmldsig-more#gostr34102012-gostr34112012-512": "ГОСТ Р 34.10-2012 (512)",
    "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr3411": "ГОСТ Р 34.11-94",
    "http://www.w3.org/2001/04/xmldsig-more#gostr3411": "ГОСТ Р 34.11-94",
    "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34112012-512": "ГОСТ Р 34.11-2012 (512)",
    "http://www.w3.org/2001/04/xmldsig-more#gostr34112012-512": "ГОСТ Р 34.11-2012 (512)",
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": "RSA-SHA1",
    "http://www.w3.org/2000/09/xmldsig#dsa-sha1": "DSA-SHA1",
    "http://www.w3.org/2000/09/xmldsig#sha1": "SHA-1",
    "urn://smev-gov-ru/xmldsig/transform": "преобразование СМЭВ",
}

_NS = {"ds": DS, "wsse": WSSE, "wsu": WSU}


class SignatureError(CodedError, ValueError):
    """A signature that cannot be accepted; ``code`` says why (НСИ 305 / WS-Security mnemonics), ``message``
    says it in Russian."""

    default_kind = errors.BAD_SIGNATURE


class UnsupportedSignatureError(SignatureError):
    """The signature uses an algorithm or construction we do not verify: no verdict, not an invalid signature."""

    def __init__(self, message: str) -> None:
        super().__init__("UNKNOWN_ALGORITHM", message)


# -- algorithms -----------------------------------------------------------------------------------------------

def _rsa_verify(cert_der: bytes, data: bytes, signature: bytes) -> None:
    key = x509.load_der_x509_certificate(cert_der).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError("UNKNOWN_ALGORITHM", "ключ сертификата не соответствует алгоритму RSA-SHA256")
    key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())


def _gost_verify(cert_der: bytes, data: bytes, signature: bytes) -> None:
    cert = asn1_x509.Certificate.load(cert_der)
    if not asn1.is_gost_certificate(cert):
        raise SignatureError("UNKNOWN_ALGORITHM", "ключ сертификата не ГОСТ Р 34.10-2012, а алгоритм подписи — ГОСТ")
    try:
        key = asn1.certificate_public_key(cert)
    except curves.UnknownCurveError as exc:
        raise UnsupportedSignatureError(f"параметры ключа сертификата не поддерживаются: {exc}") from None
    backend = get_backend()
    if not backend.verify_digest(key, backend.streebog256(data), signature):
        raise InvalidSignature()


def _streebog(data: bytes) -> bytes:
    return get_backend().streebog256(data)


# Allow-lists: an algorithm not listed here is refused as unsupported, never guessed.
SIGNATURE_VERIFIERS: dict[str, Callable[[bytes, bytes, bytes], None]] = {
    keys.RSA_SHA256: _rsa_verify, keys.GOST_2012_256: _gost_verify, keys.GOST_2012_256_CP: _gost_verify,
}
DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    keys.SHA256: lambda data: hashlib.sha256(data).digest(),
    keys.STREEBOG_256: _streebog, keys.STREEBOG_256_CP: _streebog,
}


def _unsupported(what: str, algorithm: str | None) -> UnsupportedSignatureError:
    name = _KNOWN_UNSUPPORTED.get(algorithm or "")
    return UnsupportedSignatureError(f"{what} [{algorithm}]{f' ({name})' if name else ''} не поддерживается")


# -- canonicalisation -----------------------------------------------------------------------------------------

def canonicalize(node: etree._Element, algorithm: str, *, prefixes: Sequence[str] = (),
                 comments: bool | None = None) -> bytes:
    """``node`` and its descendants in canonical form. ``comments=False`` drops comments whatever the algorithm
    says (same-document references select a node-set without comments, XMLDSig §4.3.3.3)."""
    if algorithm not in CANONICALIZATIONS:
        raise _unsupported("алгоритм канонизации", algorithm)
    exclusive = algorithm in (EXC_C14N, EXC_C14N_COMMENTS)
    with_comments = algorithm.endswith("#WithComments") and comments is not False
    if exclusive and not prefixes:
        # libxml2's exclusive c14n of a subtree is right; it is used as is (no copy of a 64 MB Body).
        return etree.tostring(node, method="c14n", exclusive=True, with_comments=with_comments)
    # libxml2's inclusive c14n of a subtree writes spurious xmlns="" on grandchildren of a default-namespace
    # declaration (libxml2 2.14; it broke the CryptoPro vector): canonicalise a standalone copy instead.
    return etree.tostring(_standalone(node, inherit_xml_attributes=not exclusive), method="c14n",
                          exclusive=exclusive, with_comments=with_comments,
                          inclusive_ns_prefixes=list(prefixes) or None)


def _standalone(node: etree._Element, *, inherit_xml_attributes: bool) -> etree._Element:
    """A copy of ``node`` as the root of its own document, carrying what c14n takes from its ancestors: every
    in-scope namespace and (inclusive c14n 1.0) the inherited xml:* attributes."""
    clone = copy.deepcopy(node)
    clone.tail = None
    etree.cleanup_namespaces(clone, top_nsmap=node.nsmap, keep_ns_prefixes=[p for p in node.nsmap if p])
    if inherit_xml_attributes:
        for ancestor in node.iterancestors():
            for name, value in ancestor.attrib.items():
                if name.startswith("{http://www.w3.org/XML/1998/namespace}") and name not in clone.attrib:
                    clone.set(name, value)
    return clone


def _prefix_list(method: etree._Element) -> list[str]:
    inclusive = method.find(f"{{{EXC_C14N}}}InclusiveNamespaces")
    return (inclusive.get("PrefixList") or "").split() if inclusive is not None else []


# -- verification ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VerifiedReference:
    uri: str
    element: etree._Element = field(repr=False)   # the element whose digest was checked (the root for URI="")
    digest_method: str
    transforms: tuple[str, ...]


@dataclass(frozen=True)
class VerifiedSignature:
    certificate_der: bytes = field(repr=False)
    signature_method: str
    canonicalization: str
    references: tuple[VerifiedReference, ...]

    @property
    def enveloped(self) -> bool:
        return any(ENVELOPED in r.transforms for r in self.references)


@dataclass(frozen=True)
class Profile:
    """What a caller accepts beyond the algorithm allow-lists; the default accepts everything this module does."""

    canonicalizations: frozenset[str] = CANONICALIZATIONS
    transforms: frozenset[str] = CANONICALIZATIONS | {ENVELOPED}
    id_attributes: tuple[str, ...] = ID_ATTRIBUTES


DEFAULT_PROFILE = Profile()
KeyResolver = Callable[[etree._Element], bytes]


def verify_signature(signature: etree._Element, *, resolve_certificate: KeyResolver | None = None,
                     now: dt.datetime | None = None, profile: Profile = DEFAULT_PROFILE) -> VerifiedSignature:
    """Check one ds:Signature in its document; raise SignatureError (UnsupportedSignatureError) otherwise.

    The signer's certificate comes from ``resolve_certificate(signature)`` (default: KeyInfo/X509Data or a
    WS-Security token reference); with ``now`` it must be valid at that moment."""
    signed_info = _single(signature, "ds:SignedInfo")
    c14n_method = _algorithm(signed_info, "CanonicalizationMethod")
    if c14n_method not in profile.canonicalizations:
        raise _unsupported("алгоритм канонизации SignedInfo", c14n_method)
    method = _algorithm(signed_info, "SignatureMethod")
    if method not in SIGNATURE_VERIFIERS:
        raise _unsupported("алгоритм подписи", method)
    references = [_parse_reference(r, profile) for r in signed_info.findall(qname((DS, "Reference")))]
    if not references:
        raise SignatureError("WRONG_SIGNATURE_FORMAT", "в подписи нет ни одной ссылки (Reference)")
    cert_der = (resolve_certificate or certificate_from_key_info)(signature)
    if now is not None:
        _check_validity(cert_der, now)
    value = _base64(signature.findtext(qname((DS, "SignatureValue"))), "SignatureValue")
    canonical = canonicalize(signed_info, c14n_method, prefixes=_prefix_list(_single(signed_info,
                                                                                    "ds:CanonicalizationMethod")))
    try:
        SIGNATURE_VERIFIERS[method](cert_der, canonical, value)
    except InvalidSignature:
        raise SignatureError("SIGNATURE_VERIFICATION_ERROR", "значение подписи SignedInfo не верно") from None
    ids = _id_index(signature.getroottree(), profile.id_attributes)
    verified = tuple(_check_reference(signature, ref, ids) for ref in references)
    return VerifiedSignature(cert_der, method, c14n_method, verified)


def verify_document(root: etree._Element, *, now: dt.datetime | None = None,
                    profile: Profile = DEFAULT_PROFILE) -> list[VerifiedSignature]:
    """Every ds:Signature of a document, each checked; a document without one is NO_SIGNATURE."""
    signatures = root.getroottree().getroot().xpath("//ds:Signature", namespaces=_NS)
    if not signatures:
        raise SignatureError("NO_SIGNATURE", "в документе нет подписи XMLDSig (ds:Signature)")
    return [verify_signature(s, now=now, profile=profile) for s in signatures]


@dataclass(frozen=True)
class _Reference:
    uri: str
    transforms: tuple[tuple[str, list[str]], ...]   # (algorithm, exc-c14n prefix list)
    digest_method: str
    digest: bytes


def _parse_reference(reference: etree._Element, profile: Profile) -> _Reference:
    uri = reference.get("URI")
    if uri is None or (uri and not uri.startswith("#")) or uri.startswith("#xpointer("):
        raise UnsupportedSignatureError(f"ссылка подписи [{uri}] не поддерживается: только URI=\"\" и #id")
    transforms = tuple((t.get("Algorithm") or "", _prefix_list(t))
                       for t in reference.iterfind("ds:Transforms/ds:Transform", _NS))
    algorithms = [a for a, _ in transforms]
    for algorithm in algorithms:
        if algorithm not in profile.transforms:
            raise _unsupported(f"преобразование ссылки [{uri}]", algorithm)
    # enveloped-signature first, then at most one canonicalisation: the chains real signers write.
    rest = algorithms[1:] if algorithms[:1] == [ENVELOPED] else algorithms
    if len(rest) > 1 or (rest and rest[0] not in CANONICALIZATIONS):
        raise UnsupportedSignatureError(f"цепочка преобразований ссылки [{uri}] не поддерживается: {algorithms}")
    digest_method = _algorithm(reference, "DigestMethod")
    if digest_method not in DIGESTS:
        raise _unsupported("алгоритм хэширования", digest_method)
    digest = _base64(reference.findtext(qname((DS, "DigestValue"))), "DigestValue")
    return _Reference(uri, transforms, digest_method, digest)


def _check_reference(signature: etree._Element, ref: _Reference, ids: dict[str, list[etree._Element]],
                     ) -> VerifiedReference:
    if ref.uri == "":
        target = signature.getroottree().getroot()
    else:
        targets = ids.get(ref.uri[1:], [])
        if len(targets) != 1:
            # Zero or several elements with one Id: the classic signature-wrapping attack.
            raise SignatureError("WRONG_SIGNATURE_FORMAT",
                                 f"ссылка подписи [{ref.uri}] не указывает ровно на один элемент")
        target = targets[0]
    algorithms = [a for a, _ in ref.transforms]
    data = _transformed(target, signature if ENVELOPED in algorithms else None, ref.transforms,
                        document=ref.uri == "")
    if DIGESTS[ref.digest_method](data) != ref.digest:
        name = etree.QName(target).localname
        raise SignatureError("DIGEST_MISMATCH", f"нарушена целостность подписанного элемента {name} [{ref.uri}]")
    return VerifiedReference(ref.uri, target, ref.digest_method, tuple(algorithms))


def _transformed(target: etree._Element, enveloped: etree._Element | None,
                 transforms: tuple[tuple[str, list[str]], ...], *, document: bool) -> bytes:
    """The octets a reference digests. ``document``: URI="" (the whole document, top-level processing
    instructions included); otherwise ``target``'s subtree. The caller's document is never changed."""
    c14n = [(a, p) for a, p in transforms if a in CANONICALIZATIONS]
    # Without a c14n transform the node-set becomes octets by inclusive c14n 1.0 (XMLDSig §4.3.3.2).
    algorithm, prefixes = c14n[-1] if c14n else (C14N, [])
    if enveloped is not None and not _is_within(enveloped, target):
        enveloped = None
    # The enveloped-signature transform: the same bytes with the Signature element removed (not its tail text).
    if document:
        tree = target.getroottree()
        if enveloped is not None:
            steps = _path(tree.getroot(), enveloped)
            tree = copy.deepcopy(tree)
            _remove_keeping_tail(_follow(tree.getroot(), steps))
        return _canonicalize_tree(tree, algorithm, prefixes)
    if enveloped is None:
        return canonicalize(target, algorithm, prefixes=prefixes, comments=False)
    clone = _standalone(target, inherit_xml_attributes=algorithm in (C14N, C14N_COMMENTS))
    _remove_keeping_tail(_follow(clone, _path(target, enveloped)))
    return canonicalize(clone, algorithm, prefixes=prefixes, comments=False)


def _canonicalize_tree(tree: etree._ElementTree, algorithm: str, prefixes: Sequence[str]) -> bytes:
    """The whole document (URI=""): top-level processing instructions included, comments not."""
    return etree.tostring(tree, method="c14n", exclusive=algorithm in (EXC_C14N, EXC_C14N_COMMENTS),
                          with_comments=False, inclusive_ns_prefixes=list(prefixes) or None)


def _is_within(node: etree._Element, ancestor: etree._Element) -> bool:
    return any(a is ancestor for a in node.iterancestors())


def _path(ancestor: etree._Element, node: etree._Element) -> list[int]:
    """Child positions from ``ancestor`` down to ``node``, to find the same node in a copy."""
    steps: list[int] = []
    while node is not ancestor:
        parent = node.getparent()
        steps.append(parent.index(node))
        node = parent
    return steps[::-1]


def _follow(root: etree._Element, steps: list[int]) -> etree._Element:
    for step in steps:
        root = root[step]
    return root


def _remove_keeping_tail(element: etree._Element) -> None:
    parent, previous, tail = element.getparent(), element.getprevious(), element.tail
    if tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)


def _id_index(tree: etree._ElementTree, attributes: tuple[str, ...]) -> dict[str, list[etree._Element]]:
    index: dict[str, list[etree._Element]] = {}
    for element in tree.iter(etree.Element):
        for name in attributes:
            value = element.get(name)
            if value is not None:
                index.setdefault(value, []).append(element)
    return index


def _single(parent: etree._Element, path: str) -> etree._Element:
    found = parent.findall(path, _NS)
    if len(found) != 1:
        raise SignatureError("WRONG_SIGNATURE_FORMAT", f"в подписи не один элемент {path.removeprefix('ds:')}")
    return found[0]


def _algorithm(parent: etree._Element, tag: str) -> str:
    el = parent.find(qname((DS, tag)))
    algorithm = el.get("Algorithm") if el is not None else None
    if not algorithm:
        raise SignatureError("WRONG_SIGNATURE_FORMAT", f"в подписи нет {tag}/@Algorithm")
    return algorithm


def _base64(text: str | None, what: str) -> bytes:
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except ValueError:
        raise SignatureError("SIGNATURE_DECODING_ERROR", f"{what} не в base64") from None


# -- the signer's certificate ---------------------------------------------------------------------------------

def certificate_from_key_info(signature: etree._Element) -> bytes:
    """KeyInfo/X509Data/X509Certificate (CryptoPro, XAdES) or KeyInfo/wsse:SecurityTokenReference to a
    BinarySecurityToken with that wsu:Id (WS-Security)."""
    certs = [_certificate(c.text) for c in signature.iterfind("ds:KeyInfo/ds:X509Data/ds:X509Certificate", _NS)]
    if certs:
        return _end_entity(certs)
    ref = signature.find("ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference", _NS)
    if ref is not None:
        uri = ref.get("URI", "")
        tokens = signature.getroottree().getroot().xpath("//wsse:BinarySecurityToken[@wsu:Id=$id]", namespaces=_NS,
                                                         id=uri.removeprefix("#"))
        if uri.startswith("#") and len(tokens) == 1:
            return _certificate(tokens[0].text)
    elif signature.find("ds:KeyInfo/*", _NS) is not None:
        # A bare KeyValue, X509IssuerSerial, SKI…: no certificate here to check the signer by.
        raise UnsupportedSignatureError("ключ подписи указан без сертификата (KeyInfo без X509Certificate)")
    raise SignatureError("NO_END_ENTITY_CERTIFICATE", "сертификат подписи (KeyInfo) не найден")


def _end_entity(certs: list[bytes]) -> bytes:
    """The signer's certificate among a chain in X509Data, in whatever order: the one that issued none of the
    others."""
    if len(certs) == 1:
        return certs[0]
    parsed = [x509.load_der_x509_certificate(der) for der in certs]
    issuers = {c.issuer for c in parsed if c.issuer != c.subject}
    leaves = [der for der, c in zip(certs, parsed, strict=True) if c.subject not in issuers]
    return leaves[0] if len(leaves) == 1 else certs[0]


def _certificate(text: str | None) -> bytes:
    der = _base64(text, "сертификат подписи")
    try:
        x509.load_der_x509_certificate(der)
    except ValueError:
        raise SignatureError("SIGNATURE_DECODING_ERROR", "сертификат подписи не читается") from None
    return der


def _check_validity(cert_der: bytes, now: dt.datetime) -> None:
    cert = x509.load_der_x509_certificate(cert_der)
    if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        raise SignatureError(
            "CERT_NOT_VALID",
            f"сертификат подписи недействителен на {now:%Y-%m-%d %H:%M:%S} UTC "
            f"(срок действия {cert.not_valid_before_utc:%Y-%m-%d} – {cert.not_valid_after_utc:%Y-%m-%d})",
        )


# -- signing --------------------------------------------------------------------------------------------------

def add_reference(signed_info: etree._Element, target: etree._Element, uri: str, signer: Signer, *,
                  transforms: Sequence[str], digest_method: str | None = None,
                  enveloped: etree._Element | None = None,
                  expand: Callable[[bytes], Iterable[bytes] | None] | None = None) -> etree._Element:
    """Append a ds:Reference to ``target`` (its digest computed through ``transforms``) to SignedInfo.

    ``expand`` may turn the transformed bytes into the parts of the bytes really meant (None: as they are): a
    placeholder standing for tens of MB of base64 is digested as that base64, a chunk at a time."""
    reference = sub(signed_info, (DS, "Reference"), URI=uri)
    if transforms:
        container = sub(reference, (DS, "Transforms"))
        for algorithm in transforms:
            sub(container, (DS, "Transform"), Algorithm=algorithm)
    sub(reference, (DS, "DigestMethod"), Algorithm=digest_method or signer.digest_method)
    data = _transformed(target, enveloped, tuple((a, []) for a in transforms), document=uri == "")
    parts = expand(data) if expand is not None else None
    digest = signer.digest(data) if parts is None else signer.digest_parts(parts)
    sub(reference, (DS, "DigestValue"), base64.b64encode(digest).decode())
    return reference


def sign_enveloped(root: etree._Element, signer: Signer, *, c14n: str = EXC_C14N,
                   spelling: str | None = None, reference_id: str | None = None) -> etree._Element:
    """Sign ``root``'s document (or, with ``reference_id``, its element with that Id) with an enveloped
    signature appended to ``root``, KeyInfo/X509Data carrying the certificate; return the ds:Signature.

    ``spelling`` picks the GOST URIs ("xmldsig-more" or "cryptopro"); the default is the signer's own."""
    method, digest_method = SPELLINGS[spelling] if spelling else (signer.signature_method, signer.digest_method)
    # ds as the default namespace, as CryptoPro writes it.
    signature = etree.SubElement(root, qname((DS, "Signature")), nsmap={None: DS})
    signed_info = sub(signature, (DS, "SignedInfo"))
    sub(signed_info, (DS, "CanonicalizationMethod"), Algorithm=c14n)
    sub(signed_info, (DS, "SignatureMethod"), Algorithm=method)
    target = root.getroottree().getroot() if reference_id is None else _by_id(root, reference_id)
    uri = "" if reference_id is None else f"#{reference_id}"
    add_reference(signed_info, target, uri, signer, transforms=(ENVELOPED, c14n), digest_method=digest_method,
                  enveloped=signature)
    value = signer.sign(canonicalize(signed_info, c14n))
    sub(signature, (DS, "SignatureValue"), base64.b64encode(value).decode())
    x509_data = sub(sub(signature, (DS, "KeyInfo")), (DS, "X509Data"))
    sub(x509_data, (DS, "X509Certificate"), base64.b64encode(signer.certificate_der).decode())
    return signature


def _by_id(root: etree._Element, value: str) -> etree._Element:
    found = _id_index(root.getroottree(), ID_ATTRIBUTES).get(value, [])
    if len(found) != 1:
        raise ValueError(f"cannot sign: not exactly one element with Id {value!r}")
    return found[0]
