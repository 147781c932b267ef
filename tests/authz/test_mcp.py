"""MCP routes: the JSON-RPC body decides the price, the tools caveat and the tool scopes; refusals are
JSON-RPC 2.0 errors carrying the request ids."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authz_server.check import CheckSettings
from satgate import mcp
from satgate.tokens.mint import attenuate, mint

from .conftest import check_request, headers_of, status_of

MCP = {"mcp": "true"}
PRICING = {
    "default": mcp.PricingTable(
        tools={"search": 2, "fetch_*": 3, "fetch_big*": 10, "*": 1},
        methods={"initialize": 0, "tools/list": 0, "notifications/*": 0},
        default=1,
    )
}


def call(tool, request_id=1, **params):
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": tool, **params}}


def body(doc) -> bytes:
    return json.dumps(doc).encode()


@pytest.fixture
def pipeline(make_pipeline):
    return make_pipeline(pricing=PRICING)


def tok(keyring, *caveats):
    return mint(keyring, "acme", list(caveats)).token


@pytest.mark.parametrize(
    ("doc", "charged"),
    [
        (call("search"), 2),
        (call("fetch_page"), 3),
        (call("fetch_bigfile"), 10),  # the longest prefix wins
        (call("anything_else"), 1),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, 0),
        ({"jsonrpc": "2.0", "method": "notifications/initialized"}, 0),
        ({"jsonrpc": "2.0", "id": 9, "method": "resources/read"}, 1),  # table default
        ([call("search", 1), call("fetch_x", 2), {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}], 5),
    ],
)
async def test_price_comes_from_the_pricing_table(pipeline, keyring, doc, charged):
    response = await pipeline.check(check_request(tok(keyring, ("budget", "100")), context=MCP, body=body(doc)))
    assert status_of(response) == 200
    assert headers_of(response)["x-satgate-credits-charged"] == str(charged)


async def test_a_batch_is_one_atomic_debit(pipeline, keyring):
    t = tok(keyring, ("budget", "4"))
    batch = body([call("search", 1), call("fetch_x", 2)])  # 5 credits
    denied = await pipeline.check(check_request(t, context=MCP, body=batch))
    assert status_of(denied) == 402
    assert [e["id"] for e in body_of_jsonrpc(denied)] == [1, 2]
    ok = await pipeline.check(check_request(t, context=MCP, body=body(call("search"))))
    assert headers_of(ok)["x-satgate-credits-remaining"] == "2"  # nothing was taken by the refused batch


def body_of_jsonrpc(response):
    return json.loads(response.denied_response.body)


async def test_tools_caveat_denies_with_a_jsonrpc_error_carrying_the_id(pipeline, keyring):
    t = tok(keyring, ("tools", "search,fetch_*"))
    assert status_of(await pipeline.check(check_request(t, context=MCP, body=body(call("fetch_page", 7))))) == 200
    denied = await pipeline.check(check_request(t, context=MCP, body=body(call("delete_everything", "req-42"))))
    assert status_of(denied) == 403
    error = body_of_jsonrpc(denied)
    assert (error["jsonrpc"], error["id"], error["error"]["code"]) == ("2.0", "req-42", -32003)
    assert error["error"]["data"]["error"] == "caveat_failed" and error["error"]["data"]["caveat"] == "tools"


async def test_tool_scopes(pipeline, keyring):
    only_search = tok(keyring, ("scope", "mcp:tool:search"))
    assert status_of(await pipeline.check(check_request(only_search, context=MCP, body=body(call("search"))))) == 200
    denied = await pipeline.check(check_request(only_search, context=MCP, body=body(call("fetch_x"))))
    assert body_of_jsonrpc(denied)["error"]["data"]["error"] == "insufficient_scope"
    any_tool = attenuate(tok(keyring, ("scope", "mcp:*")), [("label", "agent")])
    assert status_of(await pipeline.check(check_request(any_tool, context=MCP, body=body(call("fetch_x"))))) == 200
    # Methods that call no tool need no tool scope.
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert status_of(await pipeline.check(check_request(only_search, context=MCP, body=body(listing)))) == 200


async def test_missing_token_on_an_mcp_route_is_a_jsonrpc_401(pipeline):
    denied = await pipeline.check(check_request(context=MCP, body=body(call("search", 5))))
    assert status_of(denied) == 401
    assert headers_of(denied)["www-authenticate"].startswith("Bearer")
    error = body_of_jsonrpc(denied)
    # id null: the body of a caller without a verified token is never read (SPEC v2.1, refuse before work)
    assert (error["id"], error["error"]["code"], error["error"]["data"]["error"]) == (None, -32001, "missing_token")


@pytest.mark.parametrize("credential", [None, "junk", "forged"])
async def test_refusals_before_the_token_verified_never_parse_the_body(pipeline, keyring, monkeypatch, credential):
    def parse_called(*_args):
        raise AssertionError("the body was parsed for a caller without a verified token")

    monkeypatch.setattr(mcp, "parse", parse_called)
    if credential == "forged":
        credential = tok(mint_keyring_other(), ("budget", "5"))
    denied = await pipeline.check(check_request(credential, context=MCP, body=body(call("search", 5)) * 1000))
    assert status_of(denied) == 401
    assert body_of_jsonrpc(denied)["error"]["code"] == -32001


def mint_keyring_other():
    from satgate.keyring import Keyring

    return Keyring(active_kid="k1", keys={"k1": b"x" * 32})


@pytest.mark.parametrize(
    ("raw", "content_type", "code"),
    [
        (b"{not json", "application/json", -32700),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", -32700),  # deeply nested
        (b'"a string"', "application/json", -32600),
        (b"[]", "application/json", -32600),
        (b'{"jsonrpc": "1.0", "method": "x"}', "application/json", -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {}}', "application/json", -32602),
        (body(call("search")), "text/plain", -32600),
        (body([call("search", i) for i in range(101)]), "application/json", -32600),
        (b" " * (mcp.MAX_BODY_BYTES + 1), "application/json", -32600),
    ],
)
async def test_bad_bodies_are_clear_refusals(pipeline, keyring, raw, content_type, code):
    denied = await pipeline.check(check_request(tok(keyring), context=MCP, body=raw, content_type=content_type))
    assert status_of(denied) == 400
    error = body_of_jsonrpc(denied)
    assert (error["id"], error["error"]["code"], error["error"]["data"]["error"]) == (None, code, "invalid_request")


async def test_strangers_get_401_not_parse_errors(pipeline):
    assert status_of(await pipeline.check(check_request("junk", context=MCP, body=b"{bad"))) == 401


async def test_tool_arguments_are_never_logged(make_pipeline, keyring, capsys):
    from satgate.logs import configure_logging

    configure_logging("info", component="test")
    pipeline = make_pipeline(pricing=PRICING, decision_log="all")
    await pipeline.check(check_request(tok(keyring), context=MCP, body=body(call("search", query="secret-q-123"))))
    await pipeline.check(
        check_request(tok(keyring, ("tools", "x")), context=MCP, body=body(call("search", query="secret-q-456")))
    )
    out = capsys.readouterr().out
    assert '"decision"' in out and "secret-q" not in out


AMBIGUOUS = [
    # the classic smuggle: the check prices the first (or last) name, the tool server calls the other
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "cheap", "name": "costly"}}', -32700),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "method": "tools/call", "params": {"name": "x"}}', -32700),
    (
        b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x", "arguments": {"a": 1, "a": 2}}}',
        -32700,
    ),
    (
        b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}, {"jsonrpc": "2.0", "jsonrpc": "2.0", "method": "ping"}]',
        -32700,
    ),
    (b'{"jsonrpc": "2.0", "id": NaN, "method": "ping"}', -32700),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": Infinity}}', -32700),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": -Infinity}}', -32700),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": 1e400}}', -32700),
    (b'{"jsonrpc": "2.0", "id": 9007199254740993, "method": "ping"}', -32700),  # 2^53 + 1
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call\u0000", "params": {"name": "x"}}', -32600),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "ping\u007f"}', -32600),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search\u200b"}}', -32602),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search\ud800"}}', -32602),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "se\\narch"}}', -32602),
]


@pytest.mark.parametrize(("raw", "code"), AMBIGUOUS)
def test_json_other_parsers_read_differently_is_refused(raw, code):
    """Duplicate keys at any level, non-standard or out-of-range numbers, control, format, surrogate characters in
    a method or tool name: what we price must be what the tool server runs, so such bodies are refused."""
    with pytest.raises(mcp.McpBodyError) as refused:
        mcp.parse(raw, "application/json")
    assert refused.value.code == code


async def test_an_ambiguous_body_is_refused_through_the_pipeline(pipeline, keyring):
    denied = await pipeline.check(check_request(tok(keyring), context=MCP, body=AMBIGUOUS[0][0]))
    assert status_of(denied) == 400 and body_of_jsonrpc(denied)["error"]["code"] == -32700


def test_plain_names_and_large_but_safe_numbers_still_pass():
    raw = (
        b'{"jsonrpc": "2.0", "id": 9007199254740991, "method": "tools/call",'
        b' "params": {"name": "s\u00f6k-\u6f22", "arguments": {"x": 1.5e300, "y": -3}}}'
    )
    (parsed,) = mcp.parse(raw, "application/json").calls
    assert (parsed.id, parsed.tool) == (2**53 - 1, "sök-漢")


@settings(max_examples=300)
@given(st.dictionaries(st.text(max_size=5), st.integers(-100, 100), min_size=1, max_size=4), st.data())
def test_any_repeated_key_is_refused(arguments, data):
    key = data.draw(st.sampled_from(sorted(arguments)))
    inner = ", ".join(f"{json.dumps(k)}: {v}" for k, v in arguments.items())
    raw = (
        '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x", "arguments": {'
        + inner
        + f", {json.dumps(key)}: 0"
        + "}}}"
    ).encode()
    with pytest.raises(mcp.McpBodyError):
        mcp.parse(raw, "application/json")


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_the_reader_only_ever_refuses_with_mcp_errors(raw):
    code, request = None, None
    try:
        request = mcp.parse(raw, "application/json")
    except mcp.McpBodyError as exc:
        code = exc.code
    assert code in {-32700, -32600, -32602} if request is None else request.calls


def test_pricing_lookup_order():
    table = mcp.PricingTable(tools={"a*": 1, "ab*": 2, "abc": 3, "*": 9}, default=7)
    assert [table.cost(mcp.McpCall(1, "tools/call", t)) for t in ("abc", "abd", "axe", "zzz")] == [3, 2, 1, 9]
    assert mcp.PricingTable(default=7).cost(mcp.McpCall(1, "tools/call", "zzz")) == 7


def test_settings_default_to_a_default_table():
    assert "default" in CheckSettings().pricing
