"""Ledgers for tests: created as operators create them (`satgate ledger init`), then opened as servers open them."""

import subprocess
import sys

from satgate.ledger import Ledger
from satgate.ledger.initialise import init_ledger_blocking
from satgate.ledger.url import open_ledger


def fresh_ledger(url: str) -> Ledger:
    init_ledger_blocking(url)
    return open_ledger(url)


HOLD_WRITE_LOCK = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


def hold_write_lock(path, seconds: float) -> subprocess.Popen:
    """Another process holding the SQLite ledger's write lock for `seconds`; returns once it holds it."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WRITE_LOCK, str(path), str(seconds)], stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == b"locked"
    return holder
