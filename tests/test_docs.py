"""The user documents name tests as evidence: every `tests/…::name` they cite must exist."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CITATION = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
DOCUMENTS = sorted((ROOT / "docs").glob("*.md"))


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_cited_test_exists(document):
    citations = CITATION.findall(document.read_text())
    missing = [f"{f}::{name}" for f, name in citations if name not in defined_tests(ROOT / f)]
    assert missing == []


def test_the_threat_model_cites_tests():
    assert len(CITATION.findall((ROOT / "docs" / "security.md").read_text())) > 50
