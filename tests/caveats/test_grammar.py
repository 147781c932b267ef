import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satgate.caveats import CaveatSyntaxError, format_caveat, parse_caveat, split_caveat
from satgate.caveats.grammar import KEY_RE


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"scope = api:read", ("scope", "api:read")),
        (b"label = a = b", ("label", "a = b")),  # only the first ' = ' separates
        (b"cost_center.v2 = 42", ("cost_center.v2", "42")),
        ("label = caf\u00e9".encode(), ("label", "caf\u00e9")),
    ],
)
def test_splits(raw, expected):
    assert split_caveat(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"scope=api",
        b"scope  = api",
        b"scope =  api",
        b"scope = ",
        b"Scope = a",
        b"1scope = a",
        b"scope = a\n",
        b"scope = a\x00",
        b"scope = \xc2\x85x",
        b" scope = a",
        b"k" * 65 + b" = v",
        b"label = " + b"x" * 1025,
        b"\xff\xfe = x",
    ],
)
def test_rejects(raw):
    with pytest.raises(CaveatSyntaxError):
        split_caveat(raw)


def test_value_length_boundary():
    assert split_caveat(b"label = " + b"x" * 1024)[1] == "x" * 1024


@given(st.binary(max_size=200))
def test_parser_fails_only_with_syntax_errors(raw):
    with contextlib.suppress(CaveatSyntaxError):
        parse_caveat(raw, attribute_keys={"department"})


@given(
    st.from_regex(KEY_RE, fullmatch=True),
    st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1, max_size=50),
)
def test_format_then_split_round_trips(key, value):
    assert split_caveat(format_caveat(key, value)) == (key, value)


def test_unknown_keys_fail_closed():
    with pytest.raises(CaveatSyntaxError, match="unknown caveat 'colour'"):
        parse_caveat(b"colour = red")
