import pytest

from satgate.caveats import CaveatSyntaxError, Methods

from .facts import facts


def test_method_in_list():
    caveat = Methods.parse("GET,HEAD")
    assert caveat.check(facts(method="HEAD")) is None
    denial = caveat.check(facts(method="POST"))
    assert (denial.status, denial.error, denial.caveat) == (403, "caveat_failed", "methods")


@pytest.mark.parametrize("value", ["get", "GET,,POST", "G E T"])
def test_rejects_bad_lists(value):
    with pytest.raises(CaveatSyntaxError):
        Methods.parse(value)
