import pytest

from satgate.caveats import CaveatSyntaxError, MaxDelegationDepth


def test_limit_counts_delegations_after_it():
    limit = MaxDelegationDepth.parse("2")
    assert not limit.exceeded_by(2)
    assert limit.exceeded_by(3)
    assert MaxDelegationDepth.parse("0").exceeded_by(1)


@pytest.mark.parametrize("value", ["17", "-1", "01", "x"])
def test_rejects_outside_0_to_16(value):
    with pytest.raises(CaveatSyntaxError):
        MaxDelegationDepth.parse(value)
