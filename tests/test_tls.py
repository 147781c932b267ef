"""satgate.tls: TLS 1.2 at least, client certificates required with a CA bundle, reloads only a pair that loads,
and a bad file is one line naming the setting."""

import asyncio
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


async def _handshake(port: int, pki, client_cert: bytes, client_key: bytes, tmp_path) -> bool:
    """A real TLS client presenting `client_cert`: True when the server took it (answered after the handshake)."""
    cert, key = tmp_path / "c.crt", tmp_path / "c.key"
    cert.write_bytes(client_cert)
    key.write_bytes(client_key)
    client = ssl.create_default_context(cafile=str(pki["ca_for_client"]))
    client.check_hostname = False
    client.load_cert_chain(str(cert), str(key))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        answer = await asyncio.wait_for(reader.read(2), 5)
        writer.close()
        return answer == b"ok"
    except (ssl.SSLError, ConnectionError):
        return False


async def test_a_client_ca_removed_by_a_reload_is_distrusted_at_once(tmp_path):
    """The CA bundle rotated from CA1 to CA2: a client certificate of CA1 is refused from the next handshake on
    (a reload that only added CAs to the old context kept trusting it)."""
    old_ca, new_ca = Ca.create("old CA"), Ca.create("new CA")
    pki = write_pki(tmp_path / "pki", old_ca)
    pki["ca_for_client"] = pki["ca"].with_name("server-ca.crt")
    pki["ca_for_client"].write_bytes(old_ca.pem)  # the server's own certificate stays old CA's
    reloading = ReloadingContext(files(pki))

    async def answer(_reader, writer):
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=reloading.context)
    port = server.sockets[0].getsockname()[1]
    try:
        old_client, new_client = old_ca.issue("envoy", client=True), new_ca.issue("envoy", client=True)
        assert await _handshake(port, pki, *old_client, tmp_path)
        assert not await _handshake(port, pki, *new_client, tmp_path)
        pki["ca"].write_bytes(new_ca.pem)  # the rotation: only the new CA
        assert reloading.reload_if_changed()
        assert not await _handshake(port, pki, *old_client, tmp_path)
        assert await _handshake(port, pki, *new_client, tmp_path)
    finally:
        server.close()
        await server.wait_closed()
