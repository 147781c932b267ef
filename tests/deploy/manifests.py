"""The deploy/ files as every test reads them: one loader, so a test about the Kubernetes config, the Istio wiring
or an end-to-end run looks at exactly the same objects."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
ISTIO = ROOT / "deploy" / "istio"


def load_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kubernetes_objects(relative: str) -> list[dict]:
    return load_all(KUBERNETES / relative)


def the(documents: list[dict], kind: str) -> dict:
    (found,) = [doc for doc in documents if doc["kind"] == kind]
    return found


def satgate_configmap() -> dict[str, str]:
    """satgate.yaml and trust-policies.yaml as the pods mount them."""
    return the(kubernetes_objects("config.yaml"), "ConfigMap")["data"]


def extension_providers(kind: str = "envoyExtAuthzGrpc") -> dict[str, dict]:
    """Istio's extension providers of one kind (envoyExtAuthzGrpc, envoyExtAuthzHttp) by name: their settings."""
    (operator,) = load_all(ISTIO / "mesh-config.yaml")
    return {p["name"]: p[kind] for p in operator["spec"]["meshConfig"]["extensionProviders"] if kind in p}
