"""Idempotency keys and the ids debits carry."""

import hashlib
import os

from hypothesis import example, given
from hypothesis import strategies as st

from satgate.ledger.idempotency import UniqueIds, idempotency_key

_text = st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=40)


def _encoded(parts) -> bytes:
    text = "".join(part + "\x00" for part in parts)
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


@given(request_id=_text.filter(bool), method=_text, path=_text, host=_text, cost=st.integers(0, 10**15))
@example(request_id="0", method="", path="", host="\ud800", cost=0)  # a lone surrogate: once an encode error
def test_a_key_digests_each_part_nul_terminated(request_id, method, path, host, cost):
    """Keys recorded by earlier releases must still match: the digest is over every part, each ended by NUL."""
    expected = hashlib.blake2b(_encoded((request_id, method, path, host, str(cost))), digest_size=16)
    key = idempotency_key("fp", request_id, method=method, path=path, host=host, cost=cost)
    assert key == f"fp:{expected.hexdigest()}"


def test_moving_a_part_boundary_changes_the_key():
    one = idempotency_key("fp", "ab", method="GET", path="/c", host="h", cost=1)
    other = idempotency_key("fp", "a", method="bGET", path="/c", host="h", cost=1)
    assert one != other


def test_requests_without_an_id_have_no_key():
    assert idempotency_key("fp", "", method="GET", path="/", host="h", cost=1) is None


def test_unique_ids_differ_within_a_process_between_processes_and_after_fork():
    ids = UniqueIds()
    mine = {ids.next() for _ in range(10_000)}
    assert len(mine) == 10_000
    assert UniqueIds().next() not in mine  # another process (a fresh prefix)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child continues the parent's object: its prefix must be new
        os.write(write, ids.next().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    assert child not in mine and child != ids.next()
