"""The layering contracts (pyproject [tool.importlinter], run by ./dev test) hold, and they do catch what they are
for: an import that points up a layer, one across the two servers, and an import cycle."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["satgate", "satgate_api", "authz_server", "mint_server", "satgate_sdk", "satgate_dev", "satgate_cli"]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture
def tree(tmp_path):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_contract(tree):
    result = lint(tree)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "broken"),
    [
        ("satgate/keyring.py", "import satgate_cli", "Layers"),  # the core reaching up to the CLI
        ("satgate/routes.py", "import authz_server.check", "Layers"),  # the core reaching up to a server
        ("authz_server/responses.py", "import mint_server.exchange.service", "Layers"),  # across the two servers
        ("satgate/caveats/scope.py", "import satgate.tokens.verify", "No import cycles"),  # caveats <-> tokens
        ("satgate/timefmt.py", "import httpx", "The core holds the domain"),
    ],
)
def test_a_bad_import_breaks_a_contract(tree, module, bad_import, broken):
    path = tree / module
    path.write_text(path.read_text() + f"\n{bad_import}  # noqa\n")
    result = lint(tree)
    assert result.returncode != 0
    assert f"{broken}" in result.stdout and "BROKEN" in result.stdout, result.stdout
