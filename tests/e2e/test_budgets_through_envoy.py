"""Windowed budgets, threshold alerts and team pools through real Envoy on both ext_authz transports: a 402 from
a spent window tells the client when it refills; each threshold crossing reaches a real local webhook receiver
once, as JSON and in Slack and Discord shape; children delegated through the Mint's API share their parent's
budget, each within its own cap and window, and a burst of all of them together never overspends either."""

import asyncio
import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from satgate.keyring import load_keyring
from satgate.ledger.windows import Period
from satgate.timefmt import format_utc, parse_utc
from satgate.tokens.mint import mint
from satgate.tokens.verify import TokenVerifier
from satgate_dev.devstack import Stack, StackPorts, free_port

from .conftest import burst

pytestmark = pytest.mark.e2e
FORMATS = ("json", "slack", "discord")


class Receiver(ThreadingHTTPServer):
    """A webhook endpoint on loopback: every POST body, by path (/json, /slack, /discord)."""

    def __init__(self) -> None:
        self.received: dict[str, list[dict]] = {f: [] for f in FORMATS}
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", free_port()), _Hook)

    def url(self, fmt: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{fmt}"

    def bodies(self, fmt: str) -> list[dict]:
        with self.lock:
            return list(self.received[fmt])


class _Hook(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        with self.server.lock:
            self.server.received[self.path.strip("/")].append(body)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def alerting_stack(tmp_path_factory, transport, receiver):
    hooks = [
        {"url": receiver.url(fmt), "secret": "whsec-e2e", "format": fmt, "events": ["budget_threshold"]}
        for fmt in FORMATS
    ]
    state = tmp_path_factory.mktemp("budgets")
    with Stack(state, StackPorts.free(), config_overrides={"mint": {"webhooks": hooks}}, transport=transport) as stack:
        yield stack


def _get(stack: Stack, token: str) -> httpx.Response:
    with httpx.Client(base_url=stack.url, trust_env=False, timeout=10) as client:
        return client.get("/v1/items", headers={"authorization": f"Bearer {token}"})


def test_a_spent_window_says_when_it_refills(alerting_stack):
    keyring = load_keyring(alerting_stack.state_dir / "keyring.json")
    token = mint(keyring, "acme", [("scope", "api:*"), ("budget", "100"), ("budget_window", "3/1h")]).token
    assert [_get(alerting_stack, token).status_code for _ in range(3)] == [200, 200, 200]
    refused = _get(alerting_stack, token)
    now = time.time()
    hour = Period.parse("1h")
    window_end = hour.end(hour.index(now))
    assert refused.status_code == 402
    assert refused.headers["x-satgate-budget-reset"] == format_utc(window_end)
    assert abs(int(refused.headers["retry-after"]) - math.ceil(window_end - now)) <= 2
    assert refused.json()["resets_at"] == format_utc(window_end)

    lifetime = mint(keyring, "acme", [("scope", "api:*"), ("budget", "1"), ("budget_window", "50/1h")]).token
    assert [_get(alerting_stack, lifetime).status_code for _ in range(2)] == [200, 402]
    spent = _get(alerting_stack, lifetime)  # the lifetime budget is what is short: it never refills by itself
    assert "retry-after" not in spent.headers and "x-satgate-budget-reset" not in spent.headers


def _thresholds(receiver: Receiver, fmt: str, needle: str) -> list[dict]:
    if fmt == "json":
        return [b["event"] for b in receiver.bodies(fmt) if b["event"]["details"]["bucket_id"] == needle]
    key = "text" if fmt == "slack" else "content"
    return [b for b in receiver.bodies(fmt) if needle in b[key]]


def test_threshold_crossings_reach_every_webhook_once(alerting_stack, receiver):
    """Budget 10 and a window of 5: 80 % and 100 % of the window are crossed by the 4th and 5th request, the
    lifetime budget's 80 % never (five requests; the 402 after them moves nothing). One event each, per format."""
    keyring = load_keyring(alerting_stack.state_dir / "keyring.json")
    label = f"alerts-{time.monotonic_ns()}"
    token = mint(
        keyring, "acme", [("scope", "api:*"), ("budget", "10"), ("budget_window", "5/1d"), ("label", label)]
    ).token
    verified = TokenVerifier(keyring).verify(token)
    lifetime, window = verified.buckets
    assert [_get(alerting_stack, token).status_code for _ in range(7)] == [200] * 5 + [402] * 2
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not all(
        len(_thresholds(receiver, fmt, window.bucket_id if fmt == "json" else "100%")) >= 1 for fmt in FORMATS
    ):
        time.sleep(0.2)
    time.sleep(1.0)  # a duplicate would have landed by now
    events = _thresholds(receiver, "json", window.bucket_id)
    day = Period.parse("1d")
    index = day.index(time.time())
    assert [(e["type"], e["details"]["threshold_percent"], e["details"]["remaining"]) for e in events] == [
        ("budget_threshold", 80, 1),
        ("budget_threshold", 100, 0),
    ]
    assert {(e["details"]["window"], e["details"]["window_end"]) for e in events} == {
        ("1d", format_utc(day.end(index)))
    }
    assert _thresholds(receiver, "json", lifetime.bucket_id) == []
    for fmt in ("slack", "discord"):
        mine = [b for b in _thresholds(receiver, fmt, "budget_threshold") if verified.token_id in json.dumps(b)]
        texts = [b["text" if fmt == "slack" else "content"] for b in mine]
        assert len(texts) == 2, texts
        assert "reached 80% of 5 credits" in texts[0] and "reached 100% of 5 credits" in texts[1]
        assert f"(window 1d until {format_utc(day.end(index))})" in texts[1]
    assert parse_utc(events[0]["details"]["window_start"]) == day.start(index)


def _delegate(stack: Stack, parent: str, **body) -> dict:
    answer = httpx.post(
        f"http://127.0.0.1:{stack.ports.mint}/api/mint/delegate",
        headers={"authorization": f"Bearer {parent}"},
        json=body,
        timeout=10,
        trust_env=False,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_team_pool_is_shared_and_each_member_stays_within_its_own_cap(alerting_stack):
    """Parent pool 10; through the Mint's delegation API: `a` with a window of 4 per day, `b` with a cap of 3
    and the same window, `c` with a window of 100. 30 concurrent requests: exactly 10 served, a at most 4,
    b at most 3 — and the pool then refuses everyone, `a`'s window refusals saying when it refills."""
    keyring = load_keyring(alerting_stack.state_dir / "keyring.json")
    pool = mint(keyring, "acme", [("scope", "api:*"), ("budget", "10"), ("label", "team-pool")]).token
    members = {
        "a": _delegate(alerting_stack, pool, budget_window="4/1d", label="a"),
        "b": _delegate(alerting_stack, pool, budget_window="4/1d", budget_credits=3, label="b"),
        "c": _delegate(alerting_stack, pool, budget_window="100/1d", label="c"),
    }

    async def all_at_once() -> dict[str, list[int]]:
        answers = await asyncio.gather(*(burst(alerting_stack.url, m["token"], 10, 10) for m in members.values()))
        return dict(zip(members, answers, strict=True))

    statuses = asyncio.run(all_at_once())
    served = {name: s.count(200) for name, s in statuses.items()}
    assert sum(served.values()) == 10, statuses
    assert served["a"] <= 4 and served["b"] <= 3, served
    assert all(set(s) <= {200, 402} for s in statuses.values()), statuses
    for member in members.values():
        assert _get(alerting_stack, member["token"]).status_code == 402  # the pool is spent for everyone
    assert _get(alerting_stack, pool).status_code == 402
