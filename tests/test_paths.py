"""Paths servers read differently are refused (satgate/paths.py): every reading of an accepted path — as sent,
percent-decoded once or twice, `;` parameters dropped, backslashes as slashes — has the same segments, none of
them a dot segment, so what the caveats and route table judged is the path every upstream serves."""

import re
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from satgate.paths import ambiguity


@pytest.mark.parametrize(
    "path",
    [
        "/v1/items/..;/premium",  # Tomcat and Spring read `..;` as `..`
        "/v1/items/.;/x",
        "/v1/items/%2e%2e;/premium",
        "/v1/items/%252e%252e/premium",  # decoded twice by some servers
        "/v1/items/%2e%2e/premium",  # what an Envoy without normalize_path would pass
        "/v1/items/..",
        "/v1/items/./x",
        "/v1/items/%2fpremium",
        "/v1/items/%2F..%2Fpremium",
        "/v1/items/%5c..%5cpremium",
        "/v1/items/%252f..%252fpremium",
        "/v1/items\\..\\premium",
        "/v1//items",
        "/v1/items/%00",
        "/v1/items/a\x00b",
        "/v1/items/a\tb",
        "/v1/items/%0a",
    ],
)
def test_paths_read_two_ways_are_refused(path):
    assert ambiguity(path) is not None


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/v1/items/1",
        "/v1/items/1;v=2",
        "/v1/items/a%20b",
        "/v1/items/%E6%BC%A2",
        "/.well-known/openid-configuration",
        "/v1/items/..hidden",
        "/v1/items/file.tar.gz",
        "/v1/items/%25",  # a literal percent sign
        "/mcp",
    ],
)
def test_ordinary_paths_pass(path):
    assert ambiguity(path) is None


def _readings(path: str) -> list[str]:
    """How servers we know of read a path before they route it."""
    once = unquote(path)
    twice = unquote(once)
    readings = []
    for base in (path, once, twice):
        for variant in (base, base.replace("\\", "/")):
            readings.append(variant)
            readings.append("/".join(segment.split(";", 1)[0] for segment in variant.split("/")))
    return readings


def _same_shape(path: str, reading: str) -> bool:
    segments = reading.split("/")
    return (
        len(segments) == len(path.split("/"))
        and all(s.split(";", 1)[0] not in (".", "..") for s in segments[1:])
        and "" not in segments[1:-1]
    )


SEGMENT = st.text(alphabet=st.sampled_from(list("ab.;%25fFcC0e\\/")), max_size=8)


@settings(max_examples=2000)
@given(st.lists(SEGMENT, min_size=1, max_size=5))
def test_every_reading_of_an_accepted_path_has_its_shape(segments):
    path = "/" + "/".join(segments)
    if ambiguity(path) is not None:
        return
    for reading in _readings(path):
        assert _same_shape(path, reading), (path, reading)


@settings(max_examples=500)
@given(st.text(max_size=60))
def test_any_text_gets_an_answer(text):
    answer = ambiguity("/" + text)
    assert answer is None or re.fullmatch(r"[a-z ,()/.A-Z]+", answer)
