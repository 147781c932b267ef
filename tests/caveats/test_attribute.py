from satgate.caveats import Attribute, parse_caveat

from .facts import facts


def test_declared_attribute_parses_and_holds_alone():
    caveat = parse_caveat(b"department = eng", attribute_keys={"department"})
    assert caveat == Attribute("department", "eng")
    assert caveat.check(facts()) is None
