"""Every Envoy config we ship must pass `envoy --mode validate` as shipped, and as the stack renders it."""

import subprocess
from pathlib import Path

import pytest

from satgate_dev import envoy_config

SHIPPED = sorted((Path(__file__).parents[2] / "envoy").glob("*.yaml"))


def validate(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [envoy_config.find_envoy(), "--mode", "validate", "-c", str(config), "--use-dynamic-base-id"],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("config", SHIPPED, ids=lambda p: p.name)
def test_shipped_config_validates(config):
    result = validate(config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout + result.stderr


def test_something_is_shipped():
    assert envoy_config.SHIPPED_CONFIG in SHIPPED


def test_rendered_config_validates(tmp_path):
    doc = envoy_config.render(
        listen=("127.0.0.1", 18080),
        admin=("127.0.0.1", 19901),
        clusters={"satgate_authz": ("127.0.0.1", 19191), "upstream": ("127.0.0.1", 18000)},
    )
    path = envoy_config.write_rendered(tmp_path / "envoy.yaml", doc)
    result = validate(path)
    assert result.returncode == 0, result.stderr


def test_shipped_config_keeps_the_safety_settings():
    import yaml

    doc = yaml.safe_load(envoy_config.SHIPPED_CONFIG.read_text())
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    authz = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.ext_authz")["typed_config"]
    assert authz["failure_mode_allow"] is False
    assert authz["status_on_error"]["code"] == "ServiceUnavailable"
    assert hcm["normalize_path"] is True and hcm["merge_slashes"] is True


def test_junk_config_is_rejected_by_validate(tmp_path):
    """The validate test itself can fail: a config with an unknown field does not pass."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        envoy_config.SHIPPED_CONFIG.read_text().replace(
            "failure_mode_allow: false", "failure_mode_allow: false\n              bogus_field: 1"
        )
    )
    result = validate(bad)
    assert result.returncode != 0


UNIX_SOCKET_VARIANT = Path(__file__).parents[2] / "envoy" / "variants" / "authz-over-unix-socket.yaml"


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_the_unix_socket_variant_validates_in_both_shipped_configs(tmp_path, transport):
    """The variant's two keys, put into the satgate_authz cluster as its comment says, give a valid config."""
    import yaml

    doc = yaml.safe_load(envoy_config.SHIPPED_CONFIGS[transport].read_text())
    cluster = next(c for c in doc["static_resources"]["clusters"] if c["name"] == "satgate_authz")
    cluster.update(yaml.safe_load(UNIX_SOCKET_VARIANT.read_text()))
    path = envoy_config.write_rendered(tmp_path / "envoy.yaml", doc)
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["pipe"]


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_the_mtls_variant_validates_in_both_shipped_configs(tmp_path, transport):
    """Its transport_socket on the satgate_authz cluster, with real files at its paths, gives a valid config."""
    import yaml

    from tests.tls_certs import write_pki

    pki = write_pki(tmp_path / "tls")
    doc = yaml.safe_load(envoy_config.SHIPPED_CONFIGS[transport].read_text())
    envoy_config.use_authz_mtls(
        doc, {"ca": pki["ca"], "cert": pki["client_cert"], "key": pki["client_key"]}, http1=transport == "http"
    )
    result = validate(envoy_config.write_rendered(tmp_path / "envoy.yaml", doc))
    assert result.returncode == 0, result.stdout + result.stderr
