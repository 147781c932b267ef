"""The shell agent in deploy/kubernetes/examples/agent.yaml, run as written against a real Mint and Envoy: only the
in-cluster API address is swapped for this stack's Envoy."""

import os
import shutil
import subprocess

import pytest

from satgate_dev.demo_idp import DemoIdp
from tests.deploy.manifests import kubernetes_objects, the

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("curl") is None or shutil.which("sh") is None, reason="needs sh and curl"),
]

IN_CLUSTER_API = "http://demo-api.agents.svc.cluster.local:8000"


def agent_container() -> dict:
    job = the(kubernetes_objects("examples/agent.yaml"), "Job")
    return job["spec"]["template"]["spec"]["containers"][0]


def test_the_example_agent_exchanges_its_identity_and_calls_through_envoy(stack, tmp_path):
    container = agent_container()
    script = container["args"][0]
    assert IN_CLUSTER_API in script
    identity = tmp_path / "token"  # the projected service account token
    identity.write_text(DemoIdp.load(stack.idp_state).token("agent-example", "satgate"))
    env = {
        "PATH": os.environ["PATH"],
        "SATGATE_MINT_URL": f"http://127.0.0.1:{stack.ports.mint}",
        "SATGATE_IDENTITY_FILE": str(identity),
        "NO_PROXY": "*",
    }
    result = subprocess.run(
        [*container["command"], script.replace(IN_CLUSTER_API, stack.url)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("HTTP/1.1 200"), result.stdout
    assert "x-satgate-credits-remaining: 49" in result.stdout  # the demo policy's 50 credits, one spent
