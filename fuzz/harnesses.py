"""One harness per parser at a trust boundary: each takes arbitrary bytes and may only return or raise the
parser's own documented refusal. Anything else — another exception, a hang, a crash — is a finding. Used by
fuzz/run.py under atheris (coverage-guided) and by tests/test_fuzz_harnesses.py over the seed corpus and every
regression input, so a fixed crash stays fixed."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from mint_server.identity.aws import IamRequest, check_headers
from mint_server.identity.base import BadRequest
from mint_server.policies.files import load_policies, validate_policy
from mint_server.policies.models import PolicyError
from satgate import mcp
from satgate.caveats import CaveatSyntaxError, parse_caveat
from satgate.keyring import Keyring
from satgate.paths import ambiguity
from satgate.routes import RouteConfigError, RouteSettings
from satgate.tokens import wire
from satgate.tokens.verify import TokenRejected, TokenVerifier

_KEYRING = Keyring(active_kid="k1", keys={"k1": b"f" * 32})
_VERIFIER = TokenVerifier(_KEYRING, attribute_keys=frozenset({"department"}), cache_size=0, refusal_cache_size=1)
_POLICY_DIR = Path(tempfile.mkdtemp(prefix="satgate-fuzz-policies-"))


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="surrogateescape")


def token_wire(data: bytes) -> None:
    """The bearer token: base64url, the v2 binary format, then the whole verification (caveats, chain)."""
    text = _text(data)
    try:
        decoded = wire.decode(text)
    except wire.MalformedToken:
        decoded = None
    if decoded is not None:
        assert wire.decode(wire.encode(decoded)) == decoded  # what we read, we write back the same
    with contextlib.suppress(TokenRejected):
        _VERIFIER.verify(text)


def caveat_grammar(data: bytes) -> None:
    """`key = value` caveats, every built-in caveat's own value parser, and declared attributes."""
    with contextlib.suppress(CaveatSyntaxError):
        parse_caveat(data, frozenset({"department"}))


def route_settings(data: bytes) -> None:
    """The settings a route passes (context_extensions or the route table): a JSON object of strings."""
    try:
        values = json.loads(data)
    except ValueError:
        return
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        return
    with contextlib.suppress(RouteConfigError):
        RouteSettings.from_mapping(values)


def request_path(data: bytes) -> None:
    """The path judged by the caveats and routes: an answer for any text, never an exception."""
    reason = ambiguity("/" + _text(data))
    assert reason is None or isinstance(reason, str)


def mcp_body(data: bytes) -> None:
    """The JSON-RPC body of an MCP request."""
    try:
        request = mcp.parse(data, "application/json")
    except mcp.McpBodyError as exc:
        refused = exc.code
    else:
        refused = None
        assert request.calls
    assert refused in (None, -32700, -32600, -32602)


def trust_policy_file(data: bytes) -> None:
    """A trust-policy file as the Mint loads it from disk (YAML, several documents, every field checked)."""
    path = _POLICY_DIR / "fuzzed.yaml"
    path.write_bytes(data)
    with contextlib.suppress(PolicyError):
        load_policies(path, frozenset({"department"}), "acme")


def trust_policy_api(data: bytes) -> None:
    """A trust policy sent to the admin API as JSON."""
    try:
        document = json.loads(data)
    except ValueError:
        return
    with contextlib.suppress(PolicyError):
        validate_policy(document, frozenset({"department"}), tenant="acme")


def exchange_body(data: bytes) -> None:
    """The exchange request body's AWS form: iam_request with its headers (the JWT form goes to pyjwt)."""
    try:
        document = json.loads(data)
    except ValueError:
        return
    try:
        request = IamRequest.from_json(document.get("iam_request") if isinstance(document, dict) else document)
        check_headers(request.headers)
    except BadRequest:
        pass


HARNESSES: dict[str, Callable[[bytes], None]] = {
    "token_wire": token_wire,
    "caveat_grammar": caveat_grammar,
    "route_settings": route_settings,
    "request_path": request_path,
    "mcp_body": mcp_body,
    "trust_policy_file": trust_policy_file,
    "trust_policy_api": trust_policy_api,
    "exchange_body": exchange_body,
}
