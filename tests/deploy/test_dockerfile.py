"""The Dockerfile, without a Docker engine: hadolint, the build context it sees, and what its build stage installs."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import dockerfile
import pytest
import yaml
from click.testing import CliRunner
from docker.utils.build import exclude_paths

from satgate_cli import cli

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def instructions(path: Path = DOCKERFILE) -> list[dockerfile.Command]:
    return list(dockerfile.parse_file(str(path)))


def stages() -> list[list[dockerfile.Command]]:
    found: list[list[dockerfile.Command]] = []
    for command in instructions():
        if command.cmd == "FROM":
            found.append([])
        if found:
            found[-1].append(command)
    return found


def build_context(tmp_path: Path) -> Path:
    """What `docker build .` sends: the repository filtered by .dockerignore (docker-py's own matcher)."""
    context = tmp_path / "context"
    patterns = (ROOT / ".dockerignore").read_text().splitlines()
    for name in exclude_paths(str(ROOT), patterns):
        source = ROOT / name
        if source.is_file():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / name)
    return context


def hadolint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(HADOLINT), "--no-color", str(path)], capture_output=True, text=True, timeout=60)


def test_hadolint_is_clean():
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_root_image(tmp_path):
    rooted = tmp_path / "Dockerfile"
    rooted.write_text(DOCKERFILE.read_text().replace("USER 10001:10001", "USER root"))
    result = hadolint(rooted)
    assert result.returncode != 0 and "DL3002" in result.stdout


def test_final_stage_is_slim_and_runs_as_a_fixed_non_root_user():
    final = stages()[-1]
    users = [c.value[0] for c in final if c.cmd == "USER"]
    assert users and users[-1] == "10001:10001"
    base_arg = next(c.value[0] for c in instructions() if c.cmd == "ARG" and c.value[0].startswith("PYTHON_IMAGE="))
    assert base_arg.split("=", 1)[1].startswith("python:3.12-slim")
    assert not any(c.cmd == "ADD" for c in instructions())
    copies_from_build = [c for c in final if c.cmd == "COPY" and c.flags]
    assert [c.value for c in copies_from_build] == [("/opt/satgate", "/opt/satgate")]  # no sources, no compilers


def test_every_copied_file_is_in_the_build_context_and_nothing_secret_is(tmp_path):
    context = build_context(tmp_path)
    for command in instructions():
        if command.cmd == "COPY" and not command.flags:
            for source in command.value[:-1]:
                assert (context / source).exists(), f"{source} is not in the build context (.dockerignore?)"
    sent = {p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()}
    assert not [
        name for name in sent if name.startswith((".satgate", ".venv", "tests/")) or name.endswith("keyring.json")
    ]
    assert not [name for name in sent if "__pycache__" in name]


def test_the_build_stage_installs_every_package(tmp_path):
    """Replay the build stage's COPY lines into a /src and build the wheel `pip install .` would install."""
    context, src = build_context(tmp_path), tmp_path / "src"
    build = stages()[0]
    for command in build:
        if command.cmd == "COPY":
            *sources, destination = command.value
            for source in sources:
                target = src / destination / (Path(source).name if destination.endswith("/") else "")
                if (context / source).is_dir():
                    shutil.copytree(context / source, target)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(context / source, target)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("satgate_envoy-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "satgate_cli/app.py",
        "satgate_dev/demo_upstream.py",
        "authz_server/server.py",
        "authz_server/transports/grpc.py",
        "mint_server/api/http.py",
        "satgate_api/mint/v1/mint_pb2.py",
        "satgate_api/admin/v1/admin_pb2_grpc.py",
    ):
        assert module in names, module
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "satgate = satgate_cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


@pytest.mark.parametrize("service", ["keys", "authz", "mint", "upstream"])
def test_compose_commands_are_real_cli_commands(service):
    """The image's ENTRYPOINT is `satgate`: each compose command must parse as a satgate command line."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = compose["services"][service]["command"]
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output  # an unknown command or option exits 2
    assert CliRunner().invoke(cli, ["no-such-command", "--help"]).exit_code == 2
