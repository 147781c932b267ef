import pytest

from satgate.caveats import CaveatSyntaxError, Delegation


def test_parses_32_lowercase_hex():
    assert Delegation.parse("0123456789abcdef" * 2).delegation_id == "0123456789abcdef" * 2


@pytest.mark.parametrize("value", ["ABCDEF0123456789" * 2, "a" * 31, "a" * 33, "g" * 32])
def test_rejects_other_ids(value):
    with pytest.raises(CaveatSyntaxError):
        Delegation.parse(value)
