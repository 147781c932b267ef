"""satgate.tls: TLS 1.2 at least, client certificates required with a CA bundle, reloads only a pair that loads,
and a bad file is one line naming the setting."""

import ssl

import pytest

from satgate.tls import ReloadingContext, TlsError, TlsFiles
from tests.tls_certs import Ca, write_pki


def files(pki, *, mtls=True) -> TlsFiles:
    return TlsFiles(pki["server_cert"], pki["server_key"], pki["ca"] if mtls else None, setting="authz.tls")


def test_context_refuses_below_tls_1_2_and_requires_client_certificates(tmp_path):
    pki = write_pki(tmp_path)
    context = ReloadingContext(files(pki)).context
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert ReloadingContext(files(pki, mtls=False)).context.verify_mode == ssl.CERT_NONE


def test_reload_takes_only_a_matching_pair(tmp_path):
    ca = Ca.create()
    pki = write_pki(tmp_path, ca)
    reloading = ReloadingContext(files(pki))
    cert, key = ca.issue("satgate-authz")
    pki["server_cert"].write_bytes(cert)  # the key not yet: a mismatched pair is not taken
    assert reloading.reload_if_changed() is False
    pki["server_key"].write_bytes(key)
    assert reloading.reload_if_changed() is True
    assert reloading.reload_if_changed() is False  # unchanged since


@pytest.mark.parametrize("broken", ["server_key", "ca"])
def test_a_bad_file_is_one_line_naming_the_setting(tmp_path, broken):
    pki = write_pki(tmp_path)
    pki[broken].write_text("not PEM")
    with pytest.raises(TlsError) as refused:
        files(pki).check()
    message = str(refused.value)
    assert message.startswith("authz.tls: cannot load ") and "\n" not in message
    assert ("client_ca_file" in message) == (broken == "ca")
