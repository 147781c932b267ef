"""Ledgers for tests: created as operators create them (`satgate ledger init`), then opened as servers open them."""

from satgate.ledger import Ledger
from satgate.ledger.initialise import init_ledger_blocking
from satgate.ledger.url import open_ledger


def fresh_ledger(url: str) -> Ledger:
    init_ledger_blocking(url)
    return open_ledger(url)
