from __future__ import annotations

from pathlib import Path

import pytest

from satgate.keyring import Keyring, write_keyring


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.generate("k1")


@pytest.fixture
def keyring_file(tmp_path: Path, keyring: Keyring) -> Path:
    path = tmp_path / "keyring.json"
    write_keyring(path, keyring)
    return path
