"""AWS IAM identities: the caller presigns sts:GetCallerIdentity and the Mint forwards it, unchanged, to its
configured STS endpoint, which checks the signature and says who signed it (SPEC: Mint / AWS)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree

import aiohttp

from mint_server.identity.base import BadRequest, Identity, IdentityError

GET_CALLER_IDENTITY_BODY = b"Action=GetCallerIdentity&Version=2011-06-15"
_STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"
_SIGNED_HEADERS_RE = re.compile(r"SignedHeaders=([a-z0-9\-;]+)")
_SIGNATURE_RE = re.compile(r"Signature=([0-9a-f]{64})")
_ASSUMED_ROLE_RE = re.compile(r"arn:(aws[a-z\-]*):sts::(\d{12}):assumed-role/([^/]+)/(.+)")
_MAX_RESPONSE_BYTES = 64 * 1024
_MAX_HEADERS = 32
_MAX_HEADER_VALUE = 8192
_FIELD_NAME_RE = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]{1,128}")  # RFC 9110 token (names arrive lowercased)
_FIELD_VALUE_BAD_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # controls other than HTAB


@dataclass(frozen=True)
class AwsSettings:
    sts_endpoint: str
    server_id_header: str
    server_id: str
    max_clock_skew_seconds: int = 300
    timeout_seconds: float = 5.0


@dataclass(frozen=True)
class IamRequest:
    method: str
    url: str
    body: bytes
    headers: Mapping[str, str]  # lowercase names

    @classmethod
    def from_json(cls, doc: object) -> IamRequest:
        if not isinstance(doc, dict):
            raise BadRequest("iam_request must be an object with method, url, body and headers")
        method, url, body, headers = (doc.get(k) for k in ("method", "url", "body", "headers"))
        if not isinstance(method, str) or not isinstance(url, str) or not isinstance(body, str):
            raise BadRequest("iam_request.method, .url and .body must be strings")
        if not isinstance(headers, dict) or len(headers) > _MAX_HEADERS:
            raise BadRequest(f"iam_request.headers must be an object of at most {_MAX_HEADERS} headers")
        lowered: dict[str, str] = {}
        for name, raw in headers.items():
            value = raw[0] if isinstance(raw, list) and len(raw) == 1 else raw  # Go's http.Header shape
            if not isinstance(name, str) or not isinstance(value, str):
                raise BadRequest("iam_request.headers must map names to strings")
            lowered[name.lower()] = value
        try:
            raw_body = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("iam_request.body must be base64") from None
        return cls(method=method.upper(), url=url, body=raw_body, headers=lowered)


def check_headers(headers: Mapping[str, str]) -> None:
    """HTTP field names and values as RFC 9110 allows them: a CR, LF or NUL in a value would otherwise reach the
    HTTP client that forwards the request to STS (and fail there, or split the request)."""
    for name, value in headers.items():
        if not _FIELD_NAME_RE.fullmatch(name):
            raise BadRequest(f"iam_request.headers: {name[:64]!r} is not an HTTP header name")
        if _FIELD_VALUE_BAD_RE.search(value) or len(value) > _MAX_HEADER_VALUE:
            raise BadRequest(f"iam_request.headers.{name}: the value has control characters or is too long")


def check_request(request: IamRequest, settings: AwsSettings, now: datetime) -> float:
    """Everything the Mint can check before asking STS (STS checks the signature itself). Returns when the
    request stops being fresh (unix time): until then its signature must not be exchanged again."""
    check_headers(request.headers)
    if request.method != "POST":
        raise BadRequest("iam_request.method must be POST")
    if request.url != settings.sts_endpoint:
        raise IdentityError("iam_request.url is not this Mint's STS endpoint")
    if request.body != GET_CALLER_IDENTITY_BODY:
        raise BadRequest(f"iam_request.body must be exactly {GET_CALLER_IDENTITY_BODY.decode()}")
    authorization = request.headers.get("authorization", "")
    signed = _SIGNED_HEADERS_RE.search(authorization)
    if not authorization.startswith("AWS4-HMAC-SHA256 ") or signed is None:
        raise IdentityError("iam_request is not signed with AWS SigV4")
    signed_headers = set(signed.group(1).split(";"))
    server_id_header = settings.server_id_header.lower()
    if request.headers.get(server_id_header) != settings.server_id or server_id_header not in signed_headers:
        raise IdentityError(f"iam_request must sign the {settings.server_id_header} header with this Mint's id")
    amz_date = request.headers.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise IdentityError("iam_request has no valid X-Amz-Date") from None
    if "x-amz-date" not in signed_headers:
        raise IdentityError("iam_request must sign X-Amz-Date")
    if abs((now - signed_at).total_seconds()) > settings.max_clock_skew_seconds:
        raise IdentityError("iam_request X-Amz-Date is not fresh")
    missing = signed_headers - set(request.headers) - {"host"}
    if missing:
        raise BadRequest(f"iam_request lacks signed header(s): {', '.join(sorted(missing))}")
    return signed_at.timestamp() + settings.max_clock_skew_seconds


def signature_digest(request: IamRequest) -> bytes:
    """The request's SigV4 signature, hashed: what makes one presigned request exchangeable once."""
    signature = _SIGNATURE_RE.search(request.headers.get("authorization", ""))
    if signature is None:
        raise IdentityError("iam_request is not signed with AWS SigV4")
    return hashlib.sha256(signature.group(1).encode()).digest()


def forwarded_headers(request: IamRequest) -> dict[str, str]:
    """Exactly what the signature covers (host comes from the URL), plus the signature itself."""
    signed = _SIGNED_HEADERS_RE.search(request.headers["authorization"])
    names = set(signed.group(1).split(";")) if signed else set()
    names |= {"authorization", "x-amz-security-token", "content-type"}
    names.discard("host")
    return {name: value for name, value in request.headers.items() if name in names}


async def get_caller_identity(session: aiohttp.ClientSession, request: IamRequest, settings: AwsSettings) -> Identity:
    try:
        async with session.post(
            settings.sts_endpoint,
            data=request.body,
            headers=forwarded_headers(request),
            timeout=aiohttp.ClientTimeout(total=settings.timeout_seconds),
            allow_redirects=False,
        ) as response:
            body = await response.content.read(_MAX_RESPONSE_BYTES + 1)
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise StsUnavailable(str(exc)) from exc
    if status >= 500:
        raise StsUnavailable(f"STS answered HTTP {status}")
    if status != 200:
        raise IdentityError("AWS STS rejected the signed request")
    if len(body) > _MAX_RESPONSE_BYTES:
        raise StsUnavailable("STS response too large")
    return identity_from_response(body)


class StsUnavailable(Exception):
    """STS could not be asked (→ 503): not the caller's fault."""


def identity_from_response(body: bytes) -> Identity:
    try:
        root = ElementTree.fromstring(body)  # noqa: S314 - our configured STS, size-bounded, expat >= 2.4
    except ElementTree.ParseError:
        raise StsUnavailable("STS response is not XML") from None
    result = root.find(f"{_STS_NS}GetCallerIdentityResult")
    fields: dict[str, Any] = {}
    for name in ("Arn", "Account", "UserId"):
        node = result.find(f"{_STS_NS}{name}") if result is not None else None
        if node is None or not node.text:
            raise StsUnavailable(f"STS response has no {name}")
        fields[name] = node.text.strip()
    raw_arn = fields["Arn"]
    arn = canonical_arn(raw_arn)
    claims: dict[str, Any] = {"arn": arn, "raw_arn": raw_arn, "account": fields["Account"], "user_id": fields["UserId"]}
    assumed = _ASSUMED_ROLE_RE.fullmatch(raw_arn)
    if assumed is not None:
        claims.update(role=assumed.group(3), session=assumed.group(4))
    return Identity(provider="aws", subject=arn, claims=claims)


def canonical_arn(arn: str) -> str:
    """`arn:aws:sts::123:assumed-role/Role/session` → `arn:aws:iam::123:role/Role`: policies name roles, and
    the session name is chosen by the caller. (STS does not return the role's path, so neither can we.)"""
    assumed = _ASSUMED_ROLE_RE.fullmatch(arn)
    if assumed is None:
        return arn
    partition, account, role, _session = assumed.groups()
    return f"arn:{partition}:iam::{account}:role/{role}"
