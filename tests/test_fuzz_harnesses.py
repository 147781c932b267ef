"""The fuzz harnesses (fuzz/harnesses.py) on every run of the suite: each replays its seed corpus and every
regression input a fuzz run found (fuzz/corpus/<harness>/), and a few hundred random inputs. A harness may
return or raise its parser's own refusal only — what `./dev fuzz` runs for long, coverage-guided, with atheris."""

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"
sys.path.insert(0, str(FUZZ))

from harnesses import HARNESSES  # noqa: E402

CORPUS = sorted((FUZZ / "corpus").glob("*/*"))


def test_every_harness_has_a_seed_corpus():
    assert {p.parent.name for p in CORPUS} == set(HARNESSES)


@pytest.mark.parametrize("entry", CORPUS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_corpus_replays_clean(entry):
    HARNESSES[entry.parent.name](entry.read_bytes())


@pytest.mark.parametrize("name", sorted(HARNESSES))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_random_bytes_are_refused_cleanly(name, data):
    HARNESSES[name](data)


@pytest.mark.parametrize("name", sorted(HARNESSES))
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_mutated_seeds_are_refused_cleanly(name, data):
    seeds = [p.read_bytes() for p in CORPUS if p.parent.name == name]
    seed = bytearray(data.draw(st.sampled_from(seeds)))
    for _ in range(data.draw(st.integers(1, 8))):
        if not seed:
            break
        at = data.draw(st.integers(0, len(seed) - 1))
        seed[at] = data.draw(st.integers(0, 255))
    HARNESSES[name](bytes(seed))
