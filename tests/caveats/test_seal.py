import hashlib
import hmac

import pytest

from satgate.caveats import CaveatSyntaxError, Seal, parse_caveat
from satgate.caveats.seal import seal_value

KEY = b"k" * 32
SIG = bytes(range(32))


def test_parses_32_lowercase_hex():
    assert parse_caveat(b"seal = " + b"0a" * 16) == Seal("0a" * 16)


@pytest.mark.parametrize("value", ["0A" * 16, "a" * 31, "a" * 33, "g" * 32, "0x" + "a" * 30])
def test_rejects_other_values(value):
    with pytest.raises(CaveatSyntaxError):
        Seal.parse(value)


def test_value_is_the_hmac_of_the_signature_before_it():
    expected = hmac.new(KEY, SIG, hashlib.sha256).hexdigest()[:32]
    assert seal_value(KEY, SIG) == expected
    assert Seal(expected).seals(KEY, SIG)


def test_another_signature_or_key_does_not_seal():
    seal = Seal(seal_value(KEY, SIG))
    assert not seal.seals(KEY, bytes(32))
    assert not seal.seals(b"j" * 32, SIG)
