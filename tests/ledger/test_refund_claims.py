"""Delivery claims carry exactly the debit they name, and nothing but our own signature makes one."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from satgate.keyring import Keyring
from satgate.ledger import Bucket
from satgate.ledger.refund_claims import RefundClaim, sign, verify
from satgate.ledger.windows import Period

KEYRING = Keyring("k1", {"k1": b"\x01" * 32})
CLAIM = RefundClaim(
    ("5xx", "reset"),
    "acme",
    "t" * 32,
    "fp:" + "d" * 32,
    "a1b2",
    (Bucket("b" * 32, 100), Bucket("c" * 32, 7, Period.parse("1d")), Bucket("e" * 32, 9, Period.parse("month"))),
    "response_header",
    1_800_000_123.25,
    5,
)


def test_a_signed_claim_verifies_as_itself():
    assert verify(KEYRING, sign(KEYRING, CLAIM)) == CLAIM


def test_another_keyring_or_any_change_verifies_as_nothing():
    signed = sign(KEYRING, CLAIM)
    assert verify(Keyring("k1", {"k1": b"\x02" * 32}), signed) is None
    for old, new in (("acme", "evil"), ("/7/1d", "/70/1d"), ("~5~", "~50~"), ("response_header", "")):
        assert old in signed
        assert verify(KEYRING, signed.replace(old, new, 1)) is None


@pytest.mark.parametrize("field", ["tenant", "attempt"])
def test_a_field_that_cannot_be_carried_makes_no_claim(field):
    import dataclasses

    assert sign(KEYRING, dataclasses.replace(CLAIM, **{field: "a~b"})) is None


@given(st.text(max_size=300))
def test_any_text_is_a_claim_only_when_we_signed_it(text):
    assert verify(KEYRING, text) is None
