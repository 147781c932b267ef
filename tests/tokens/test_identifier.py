import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satgate.tokens.identifier import IdentifierError, TokenIdentifier


def test_round_trip():
    ident = TokenIdentifier.new("acme-prod", "k1")
    assert len(ident.token_id) == 32
    assert TokenIdentifier.parse(ident.encode()) == ident


def test_token_ids_are_random():
    assert len({TokenIdentifier.new("a", "k1").token_id for _ in range(200)}) == 200


@pytest.mark.parametrize(
    "raw",
    [
        b"sg2:acme:k1:" + b"0" * 32,
        b"sg1:Acme:k1:" + b"0" * 32,
        b"sg1:-acme:k1:" + b"0" * 32,
        b"sg1:acme:k1:" + b"0" * 31,
        b"sg1:acme:k1:" + b"A" * 32,
        b"sg1:acme:k_1:" + b"0" * 32,
        b"sg1:acme:k1:" + b"0" * 32 + b"\n",
        b"sg1:" + b"a" * 64 + b":k1:" + b"0" * 32,
        b"\xff\xfe",
    ],
)
def test_rejects_anything_off_grammar(raw):
    with pytest.raises(IdentifierError):
        TokenIdentifier.parse(raw)


@given(st.binary(max_size=120))
def test_parser_never_fails_any_other_way(raw):
    with contextlib.suppress(IdentifierError):
        TokenIdentifier.parse(raw)
