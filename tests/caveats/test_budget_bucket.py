import pytest
from hypothesis import given
from hypothesis import strategies as st

from satgate.caveats import BudgetBucket, CaveatSyntaxError

from .facts import facts

BUCKET = "0123456789abcdef" * 2


@pytest.mark.parametrize(("period", "seconds"), [("8h", 28800), ("90m", 5400), ("1d", 86400), ("month", 0)])
def test_parses_the_bucket_and_its_period(period, seconds):
    parsed = BudgetBucket.parse(f"{BUCKET}/{period}")
    assert (parsed.bucket_id, parsed.period.seconds, str(parsed)) == (BUCKET, seconds, f"{BUCKET}/{period}")


@pytest.mark.parametrize(
    "value",
    [
        "",
        BUCKET,
        f"{BUCKET}/",
        f"/{BUCKET}",
        f"{BUCKET.upper()}/1h",
        f"{BUCKET[:-1]}/1h",
        f"{BUCKET}0/1h",
        f"{BUCKET}/0h",
        f"{BUCKET}/1w",
        f"{BUCKET}/10001d",
        f"{BUCKET} /1h",
        f"500/{BUCKET}",
    ],
)
def test_anything_else_is_refused(value):
    with pytest.raises(CaveatSyntaxError, match="budget_bucket"):
        BudgetBucket.parse(value)


@given(st.text(max_size=60))
def test_any_text_parses_or_is_refused_cleanly(text):
    try:
        parsed = BudgetBucket.parse(text)
    except CaveatSyntaxError:
        return
    assert str(parsed) == text


def test_always_holds_for_the_request():
    assert BudgetBucket.parse(f"{BUCKET}/1h").check(facts()) is None
