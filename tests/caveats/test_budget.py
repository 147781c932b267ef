import pytest

from satgate.caveats import Budget, CaveatSyntaxError

from .facts import facts


@pytest.mark.parametrize(("value", "credits"), [("1", 1), ("1000000000000000", 10**15)])
def test_parses_the_range(value, credits):
    assert Budget.parse(value).credits == credits


@pytest.mark.parametrize("value", ["0", "-1", "01", "+5", "1000000000000001", "1e3", "5 ", "١٢"])
def test_rejects_outside_range_or_non_canonical(value):
    with pytest.raises(CaveatSyntaxError):
        Budget.parse(value)


def test_request_check_leaves_budget_to_the_ledger():
    assert Budget.parse("5").check(facts()) is None
