"""Caveat timestamps: the fast parse agrees with strptime, the reference, on every string of the shape."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satgate.timefmt import parse_utc

_digits = st.text(alphabet="0123456789", min_size=1, max_size=1)


def reference(text: str) -> float:
    whole, _, fraction = text[:-1].partition(".")
    stamp = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return stamp + (float("0." + fraction) if fraction else 0.0)


@given(
    year=st.integers(0, 9999),
    month=st.integers(0, 19),
    day=st.integers(0, 39),
    hour=st.integers(0, 29),
    minute=st.integers(0, 69),
    second=st.integers(0, 69),
    fraction=st.one_of(st.just(""), st.text(alphabet="0123456789", min_size=1, max_size=9).map(lambda f: "." + f)),
)
def test_parse_utc_agrees_with_strptime(year, month, day, hour, minute, second, fraction):
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{fraction}Z"
    try:
        expected = reference(text)
    except ValueError:
        with pytest.raises(ValueError):
            parse_utc(text)
        return
    assert parse_utc(text) == expected


@pytest.mark.parametrize("text", ["2026-11-22T18:00:00", "2026-11-22 18:00:00Z", "2026-11-22T18:00:00+00:00", ""])
def test_other_shapes_are_refused(text):
    with pytest.raises(ValueError, match="RFC 3339 UTC"):
        parse_utc(text)
