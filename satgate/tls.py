"""TLS for the servers (SPEC: Control plane — TLS): a certificate and key, optionally a CA bundle whose client
certificates are required (mTLS); TLS 1.2 or newer; the files reloaded when they change, without a restart —
only as a pair that loads (a certificate written before its key is not taken half-way)."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger("satgate.tls")
Stamp = tuple[tuple[int, int], ...]


class TlsError(ValueError):
    pass


@dataclass(frozen=True)
class TlsFiles:
    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    setting: str = "tls"  # where it is configured, for messages: mint.tls, authz.tls

    @property
    def paths(self) -> tuple[Path, ...]:
        return (self.cert_file, self.key_file) + ((self.client_ca_file,) if self.client_ca_file else ())

    def stamp(self) -> Stamp | None:
        try:
            return tuple(((st := p.stat()).st_mtime_ns, st.st_size) for p in self.paths)
        except OSError:
            return None

    def read(self) -> tuple[bytes, bytes, bytes | None]:
        """(certificate chain, key, client CA bundle) as PEM, once they load as a pair; else TlsError."""
        self.check()
        ca = self.client_ca_file.read_bytes() if self.client_ca_file else None
        return self.cert_file.read_bytes(), self.key_file.read_bytes(), ca

    def check(self) -> None:
        """TlsError naming the setting unless the files load: the key matches the certificate, the CA parses."""
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            probe.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(
                f"{self.setting}: cannot load cert_file {self.cert_file} with key_file {self.key_file} ({_why(exc)})"
            ) from None
        if self.client_ca_file is not None:
            try:
                probe.load_verify_locations(cafile=self.client_ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise TlsError(
                    f"{self.setting}: cannot load client_ca_file {self.client_ca_file} ({_why(exc)})"
                ) from None


def _why(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc) or type(exc).__name__


class ReloadingContext:
    """An SSLContext for asyncio servers (aiohttp, uvicorn) that takes new files: a handshake after a reload uses a
    context built afresh from them — the new certificate, and only the client CAs the file now holds (adding to the
    old context would keep trusting a CA that was removed). The listener keeps the first context, whose SNI
    callback hands each new connection the current one; connections already open keep theirs."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        files.check()
        self.context = self._built()
        self.context.sni_callback = self._current_for  # called for every ClientHello, with or without SNI
        self._current = self.context
        self._stamp = files.stamp()

    def _built(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        context.load_cert_chain(self.files.cert_file, self.files.key_file)
        if self.files.client_ca_file is not None:
            context.load_verify_locations(cafile=self.files.client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def _current_for(self, connection: ssl.SSLObject | ssl.SSLSocket, _name: str | None, _ctx: ssl.SSLContext) -> None:
        if self._current is not self.context:
            connection.context = self._current

    def reload_if_changed(self) -> bool:
        stamp = self.files.stamp()
        if stamp is None or stamp == self._stamp:
            return False
        try:
            self.files.check()
        except TlsError as exc:  # half-written, or wrong: keep serving the last good pair, try again later
            log.warning("tls_reload_deferred", detail=str(exc))
            return False
        self._current = self._built()
        self._stamp = stamp
        log.info("tls_reloaded", setting=self.files.setting, cert_file=str(self.files.cert_file))
        return True

    async def watch(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self.reload_if_changed()
