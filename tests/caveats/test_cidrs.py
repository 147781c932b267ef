import pytest

from satgate.caveats import CaveatSyntaxError, Cidrs

from .facts import facts


@pytest.mark.parametrize(
    ("source", "allowed"),
    [
        ("10.1.2.3", True),
        ("192.168.0.1", False),
        ("::ffff:10.9.9.9", True),
        ("2001:db8::1", True),
        ("", False),
        ("not-an-ip", False),
    ],
)
def test_source_inside_one_network(source, allowed):
    caveat = Cidrs.parse("10.0.0.0/8,2001:db8::/32")
    assert (caveat.check(facts(source_ip=source)) is None) is allowed


@pytest.mark.parametrize("value", ["10.0.0.1/8", "10.0.0.0/33", "nope"])
def test_rejects_bad_networks(value):
    with pytest.raises(CaveatSyntaxError):
        Cidrs.parse(value)
