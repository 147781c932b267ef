from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satgate.caveats import BudgetWindow, CaveatSyntaxError
from satgate.ledger.windows import Period

from .facts import facts


@pytest.mark.parametrize(
    ("value", "credits", "seconds"),
    [
        ("500/1d", 500, 86400),
        ("1/1m", 1, 60),
        ("10/24h", 10, 86400),
        ("1000000000000000/10000d", 10**15, 864000000),
        ("7/month", 7, 0),
    ],
)
def test_parses_credits_and_period(value, credits, seconds):
    window = BudgetWindow.parse(value)
    assert (window.credits, window.period.seconds) == (credits, seconds)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "500",
        "500/",
        "/1d",
        "0/1d",
        "01/1d",
        "500/0d",
        "500/01d",
        "500/10001d",
        "500/1w",
        "500/1D",
        "500/1 d",
        "500 /1d",
        "1000000000000001/1d",
        "500/months",
        "500/1d/1d",
        "-5/1d",
        "500/1.5d",
        "500/\u0661d",
    ],
)
def test_rejects_anything_but_the_grammar(value):
    with pytest.raises(CaveatSyntaxError):
        BudgetWindow.parse(value)


@given(st.text(max_size=24))
def test_any_text_parses_or_is_refused_cleanly(text):
    try:
        window = BudgetWindow.parse(text)
    except CaveatSyntaxError:
        return
    assert str(window) == text or BudgetWindow.parse(str(window)) == window  # 24h prints as 1d: same window


def test_request_check_leaves_the_window_to_the_ledger():
    assert BudgetWindow.parse("5/1h").check(facts()) is None


def test_fixed_windows_are_epoch_aligned_utc():
    day = Period.parse("1d")
    noon = datetime(2026, 12, 2, 12, tzinfo=UTC).timestamp()
    index = day.index(noon)
    assert day.start(index) == datetime(2026, 12, 2, tzinfo=UTC).timestamp()
    assert day.end(index) == datetime(2026, 12, 3, tzinfo=UTC).timestamp()
    assert day.index(day.end(index)) == index + 1  # the boundary belongs to the next window
    assert day.index(day.end(index) - 1e-6) == index


def test_month_is_the_calendar_month_in_utc():
    month = Period.parse("month")
    feb = month.index(datetime(2028, 2, 29, 23, 59, tzinfo=UTC).timestamp())
    assert month.start(feb) == datetime(2028, 2, 1, tzinfo=UTC).timestamp()
    assert month.end(feb) == datetime(2028, 3, 1, tzinfo=UTC).timestamp()
    december = month.index(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())
    assert month.end(december) == datetime(2027, 1, 1, tzinfo=UTC).timestamp()
    assert month.index(month.end(december)) == december + 1
    assert str(month) == "month"
