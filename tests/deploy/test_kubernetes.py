"""deploy/kubernetes: every object checked against the Kubernetes API schemas (kubernetes-validate, strict: unknown
fields are errors), and the manifests checked against the config and code they deploy."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from mint_server.policies.files import load_policies
from satgate.config import load_config

from .manifests import KUBERNETES, load_all, satgate_configmap

K8S_VERSION = kubernetes_validate.latest_version()
MANIFESTS = sorted(p for p in KUBERNETES.rglob("*.yaml") if p.name != "kustomization.yaml")


def all_objects() -> list[dict]:
    return [doc for path in MANIFESTS for doc in load_all(path)]


def find(kind: str, name: str) -> dict:
    (found,) = [doc for doc in all_objects() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(KUBERNETES)))
def test_every_object_matches_the_kubernetes_schema(path):
    for doc in load_all(path):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["spec"].update(replica=3), "replica"),  # a typo
        (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(ports=[{"containerPort": "grpc"}]), "grpc"),
        (lambda d: d["spec"].pop("selector"), "selector"),
    ],
)
def test_the_schema_check_catches_broken_objects(mutate, message):
    deployment = find("Deployment", "satgate-authz")
    mutate(deployment)
    with pytest.raises(kubernetes_validate.ValidationError, match=message):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest_and_sets_the_image():
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in KUBERNETES.glob("*.yaml") if p != KUBERNETES / "kustomization.yaml"
    )
    (image,) = kustomization["images"]
    containers = [
        c for d in all_objects() if d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"]
    ]
    ours = [c for c in containers if c["image"] == image["name"]]
    assert {c["name"] for c in ours} == {"authz", "mint"}


@pytest.fixture
def config(tmp_path):
    data = satgate_configmap()
    (tmp_path / "satgate.yaml").write_text(data["satgate.yaml"])
    (tmp_path / "trust-policies.yaml").write_text(data["trust-policies.yaml"])
    return load_config(tmp_path / "satgate.yaml"), load_policies(tmp_path / "trust-policies.yaml")


def test_the_configmap_holds_a_valid_config_and_trust_policies(config):
    settings, policies = config
    assert settings.keyring_group_readable  # the keyring is a Secret volume with fsGroup: 0440
    assert settings.ledger.startswith("redis://satgate-redis.satgate.svc.cluster.local:6379/")
    assert settings.authz.route_table().settings_for("api", "/mcp", "POST", {}).mcp
    (k8s,) = [p for p in policies.policies if p.provider == "kubernetes"]
    assert k8s.ca_file == Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
    assert k8s.bearer_token_file == Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def _port(listen: str) -> int:
    return int(listen.rpartition(":")[2])


def _container(deployment: str) -> dict:
    return find("Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]


def test_services_and_probes_use_the_ports_the_servers_listen_on(config):
    settings, _ = config
    authz, mint = _container("satgate-authz"), _container("satgate-mint")
    authz_ports = {p["name"]: p["containerPort"] for p in authz["ports"]}
    assert authz_ports == {
        "grpc": _port(settings.authz.listen),
        "http-authz": _port(settings.authz.http_listen),
        "http-metrics": _port(settings.authz.metrics_listen),
    }
    assert authz["readinessProbe"]["grpc"] == {
        "port": authz_ports["grpc"],
        "service": "envoy.service.auth.v3.Authorization",
    }
    assert authz["livenessProbe"]["grpc"]["port"] == authz_ports["grpc"]
    mint_ports = {p["name"]: p["containerPort"] for p in mint["ports"]}
    assert mint_ports == {
        "http": _port(settings.mint.listen),
        "grpc": _port(settings.mint.grpc_listen),
        "http-admin": _port(settings.mint.admin_listen),
        "grpc-admin": _port(settings.mint.admin_grpc_listen),
    }
    assert mint["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert mint["livenessProbe"]["grpc"]["port"] == mint_ports["grpc"]
    for service, container in (("satgate-authz", authz), ("satgate-mint", mint), ("satgate-mint-admin", mint)):
        names = {p["name"] for p in container["ports"]}
        assert {p["targetPort"] for p in find("Service", service)["spec"]["ports"]} <= names


def test_servers_mount_what_the_config_names(config):
    settings, _ = config
    for deployment in ("satgate-authz", "satgate-mint"):
        spec = find("Deployment", deployment)["spec"]["template"]["spec"]
        container = spec["containers"][0]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        keyring = volumes[mounts[str(settings.keyring.parent)]]
        assert keyring["secret"]["secretName"] == "satgate-keyring"
        assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsUser"] == 10001
        config_volume = volumes[mounts["/etc/satgate/config"]]
        assert config_volume["configMap"]["name"] == "satgate-config"
        env = {e["name"]: e for e in container["env"]}
        assert env["SATGATE_CONFIG"]["value"] == "/etc/satgate/config/satgate.yaml"
        assert env["SATGATE_LEDGER"]["valueFrom"]["secretKeyRef"] == {
            "name": "satgate-redis",
            "key": "url",
            "optional": True,
        }
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert "/tmp" in mounts and "/var/lib/satgate" in mounts
    assert str(settings.mint.policies) == "/etc/satgate/config/trust-policies.yaml"
    assert not [o for o in all_objects() if o["kind"] == "PersistentVolumeClaim"]  # no pod keeps state of its own
    # the in-cluster issuer is read with the Mint's own token: it must be mounted
    assert find("ServiceAccount", "satgate-mint")["automountServiceAccountToken"] is True


def test_mint_replicas_share_the_postgresql_control_plane_the_db_upgrade_job_migrates(config):
    settings, _ = config
    assert settings.control_plane.startswith("postgresql://") and "sslmode=require" in settings.control_plane
    mint_spec = find("Deployment", "satgate-mint")["spec"]
    assert mint_spec["replicas"] >= 2 and mint_spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert find("PodDisruptionBudget", "satgate-mint")["spec"]["minAvailable"] == 1
    job = find("Job", "satgate-db-upgrade")["spec"]["template"]["spec"]["containers"][0]
    assert job["args"] == ["db", "upgrade"]
    pods = [job] + [
        find("Deployment", d)["spec"]["template"]["spec"]["containers"][0] for d in ("satgate-authz", "satgate-mint")
    ]
    for container in pods:
        env = {e["name"]: e for e in container["env"]}
        assert env["SATGATE_CONTROL_PLANE"]["valueFrom"]["secretKeyRef"] == {
            "name": "satgate-control-plane",
            "key": "url",
        }


def test_only_the_servers_and_the_ledger_init_job_may_reach_redis():
    policy = find("NetworkPolicy", "satgate-redis")
    (rule,) = policy["spec"]["ingress"]
    (expression,) = rule["from"][0]["podSelector"]["matchExpressions"]
    servers = {
        find("Deployment", d)["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
        for d in ("satgate-authz", "satgate-mint")
    }
    job = find("Job", "satgate-ledger-init")["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
    assert set(expression["values"]) == servers | {job}


def test_only_admin_clients_may_reach_the_mints_admin_ports(config):
    settings, _ = config
    policy = find("NetworkPolicy", "satgate-mint")
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "satgate-mint"}
    open_rule, admin_rule = policy["spec"]["ingress"]
    public = {_port(settings.mint.listen), _port(settings.mint.grpc_listen)}
    admin = {_port(settings.mint.admin_listen), _port(settings.mint.admin_grpc_listen)}
    assert "from" not in open_rule and {p["port"] for p in open_rule["ports"]} == public
    assert {p["port"] for p in admin_rule["ports"]} == admin
    assert admin_rule["from"] == [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"satgate.io/admin-client": "true"}}}
    ]
    # the public Service does not expose the admin ports; the admin one exposes only them
    assert {p["port"] for p in find("Service", "satgate-mint")["spec"]["ports"]} == public
    assert {p["port"] for p in find("Service", "satgate-mint-admin")["spec"]["ports"]} == admin


def test_the_ledger_init_job_reaches_the_ledger_the_servers_use():
    job = find("Job", "satgate-ledger-init")["spec"]["template"]["spec"]["containers"][0]
    authz = find("Deployment", "satgate-authz")["spec"]["template"]["spec"]["containers"][0]
    assert job["args"] == ["ledger", "init"]
    ledger_env = [e for e in authz["env"] if e["name"] in ("SATGATE_CONFIG", "SATGATE_LEDGER")]
    assert job["env"] == ledger_env  # the same SATGATE_CONFIG and SATGATE_LEDGER
    config_mount = next(m for m in job["volumeMounts"] if m["name"] == "config")
    assert config_mount["mountPath"] == "/etc/satgate/config"


def test_the_agent_example_projects_a_satgate_audience_token_the_policy_trusts(config):
    _, policies = config
    job = find("Job", "research-bot")
    spec = job["spec"]["template"]["spec"]
    (source,) = spec["volumes"][0]["projected"]["sources"]
    (k8s,) = [p for p in policies.policies if p.provider == "kubernetes"]
    assert source["serviceAccountToken"]["audience"] in k8s.audiences
    rule = k8s.trust_rules[0].match
    assert job["metadata"]["namespace"] == rule.namespace
    assert spec["serviceAccountName"].startswith(str(rule.service_account).rstrip("*"))
    env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
    mount = spec["containers"][0]["volumeMounts"][0]["mountPath"]
    assert env["SATGATE_IDENTITY_FILE"] == f"{mount}/{source['serviceAccountToken']['path']}"
    assert env["SATGATE_MINT_URL"].startswith("http://satgate-mint.satgate.svc.cluster.local:8081")
