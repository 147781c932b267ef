"""Keyring: the master keys tenant root keys are derived from (SPEC: Tokens / Keys)."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import re
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

log = structlog.get_logger("satgate.keyring")
KID_RE = re.compile(r"[a-z0-9-]{1,32}")
MIN_KEY_BYTES = 32
_HKDF_SALT = b"satgate-v1"


class KeyringError(ValueError):
    """The keyring file is missing, unreadable, too permissive or malformed."""


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class Keyring:
    active_kid: str
    keys: dict[str, bytes]

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyringError("keyring: 'keys' is empty")
        for kid, key in self.keys.items():
            if not KID_RE.fullmatch(kid):
                raise KeyringError(f"keyring: kid {kid!r} must match [a-z0-9-]{{1,32}}")
            if len(key) < MIN_KEY_BYTES:
                raise KeyringError(f"keyring: key {kid!r} is {len(key)} bytes, needs >= {MIN_KEY_BYTES}")
        if self.active_kid not in self.keys:
            raise KeyringError(f"keyring: active_kid {self.active_kid!r} is not in 'keys'")

    def has_kid(self, kid: str) -> bool:
        return kid in self.keys

    def tenant_root_key(self, tenant: str, kid: str) -> bytes:
        """HKDF-SHA256(ikm=keys[kid], salt="satgate-v1", info="tenant:"+tenant). Raises KeyError for unknown kid."""
        return derive_tenant_root_key(self.keys[kid], tenant)

    def seal_key(self, tenant: str, kid: str) -> bytes:
        """HKDF-SHA256(ikm=keys[kid], salt="satgate-v1", info="seal:"+tenant): the issuer seal's key (SPEC v2.1)."""
        return derive_seal_key(self.keys[kid], tenant)

    def audit_checkpoint_key(self, kid: str) -> bytes:
        """HKDF-SHA256(ikm=keys[kid], salt="satgate-v1", info="audit:checkpoint"): signs what audit pruning removed
        (no tenant's key: the info prefix differs from "tenant:" and "seal:")."""
        return _hkdf(self.keys[kid], b"audit:checkpoint")

    def refund_key(self, kid: str) -> bytes:
        """HKDF-SHA256(ikm=keys[kid], salt="satgate-v1", info="authz:refund"): signs the refund claims the authz
        server puts in Envoy's access-log metadata, so an access-log entry can refund only a debit it made."""
        return _hkdf(self.keys[kid], b"authz:refund")

    def console_csrf_key(self, kid: str) -> bytes:
        """HKDF-SHA256(ikm=keys[kid], salt="satgate-v1", info="console:csrf"): binds the console's form tokens to
        the signed-in credential (no tenant's key: another info prefix)."""
        return _hkdf(self.keys[kid], b"console:csrf")

    def to_json(self) -> str:
        return json.dumps(
            {"active_kid": self.active_kid, "keys": {k: _b64url_encode(v) for k, v in self.keys.items()}},
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KeyringError(f"keyring: not valid JSON ({exc})") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), dict):
            raise KeyringError("keyring: expected an object with 'active_kid' and 'keys'")
        if not isinstance(doc.get("active_kid"), str):
            raise KeyringError("keyring: 'active_kid' must be a string")
        keys: dict[str, bytes] = {}
        for kid, encoded in doc["keys"].items():
            if not isinstance(encoded, str):
                raise KeyringError(f"keyring: keys.{kid} must be a base64url string")
            try:
                keys[kid] = _b64url_decode(encoded)
            except ValueError as exc:
                raise KeyringError(f"keyring: keys.{kid} is not base64url ({exc})") from exc
        return cls(active_kid=doc["active_kid"], keys=keys)

    @classmethod
    def generate(cls, kid: str = "k1") -> Keyring:
        return cls(active_kid=kid, keys={kid: secrets.token_bytes(32)})


def _hkdf(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=info).derive(master)


@functools.lru_cache(maxsize=65536)  # one HKDF per (key, tenant), not per request
def derive_tenant_root_key(master: bytes, tenant: str) -> bytes:
    return _hkdf(master, b"tenant:" + tenant.encode())


@functools.lru_cache(maxsize=65536)
def derive_seal_key(master: bytes, tenant: str) -> bytes:
    return _hkdf(master, b"seal:" + tenant.encode())


def load_keyring(path: str | os.PathLike[str], *, group_readable: bool = False) -> Keyring:
    """Load a keyring file, refusing one that group or others can read (it holds every tenant's root).

    group_readable admits group read (never write, never others): a Kubernetes Secret volume with an fsGroup is
    0440, owned by root and readable by the pod's group, and there is no way to hand it to a non-root owner."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError as exc:
        raise KeyringError(f"keyring: file {p} does not exist (create it with 'satgate keys init')") from exc
    forbidden = stat.S_IRWXO | (stat.S_IWGRP | stat.S_IXGRP if group_readable else stat.S_IRWXG)
    if st.st_mode & forbidden:
        wanted = "0600 or 0440" if group_readable else "0600"
        raise KeyringError(f"keyring: {p} has mode {stat.S_IMODE(st.st_mode):o}; it must be {wanted} (chmod 600 {p})")
    return Keyring.from_json(p.read_text())


def write_keyring(path: str | os.PathLike[str], keyring: Keyring) -> None:
    """Write atomically with mode 0600 from the first byte (never world-readable, even briefly)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(keyring.to_json())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, p)


def load_or_create_keyring(path: str | os.PathLike[str]) -> tuple[Keyring, bool]:
    """Returns (keyring, created)."""
    if Path(path).exists():
        return load_keyring(path), False
    keyring = Keyring.generate()
    write_keyring(path, keyring)
    return keyring, True


class KeyringFile:
    """The keyring as a file that may change under a running server: rotation (new active kid) and retirement
    (kid removed) apply without a restart. A broken edit keeps the last good keyring."""

    def __init__(self, path: str | os.PathLike[str], *, group_readable: bool = False) -> None:
        self.path = Path(path)
        self._group_readable = group_readable
        self.current = load_keyring(self.path, group_readable=group_readable)
        self._stamp = self._file_stamp()
        self._listeners: list[Callable[[Keyring], None]] = []

    def _file_stamp(self) -> tuple[float, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime, st.st_size, st.st_ino)

    def on_change(self, listener: Callable[[Keyring], None]) -> None:
        self._listeners.append(listener)

    def reload_if_changed(self) -> bool:
        stamp = self._file_stamp()
        if stamp is None or stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self.current = load_keyring(self.path, group_readable=self._group_readable)
        except KeyringError as exc:
            log.error("keyring_reload_failed", detail=str(exc))
            return False
        log.info("keyring_reloaded", active_kid=self.current.active_kid, kids=sorted(self.current.keys))
        for listener in self._listeners:
            listener(self.current)
        return True

    async def watch(self, interval: float = 2.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self.reload_if_changed()


def rotate(keyring: Keyring, kid: str | None = None) -> Keyring:
    """A new key that becomes active; the old ones keep verifying until retired."""
    new_kid = kid or next(f"k{n}" for n in range(len(keyring.keys) + 1, 10_000) if f"k{n}" not in keyring.keys)
    if new_kid in keyring.keys:
        raise KeyringError(f"keyring: kid {new_kid!r} already exists")
    return Keyring(active_kid=new_kid, keys={**keyring.keys, new_kid: secrets.token_bytes(32)})


def retire(keyring: Keyring, kid: str) -> Keyring:
    """Tokens of `kid` stop verifying (unknown_key) once servers reload."""
    if kid not in keyring.keys:
        raise KeyringError(f"keyring: no kid {kid!r}")
    if kid == keyring.active_kid:
        raise KeyringError(f"keyring: {kid!r} is active; rotate to a new key before retiring it")
    return Keyring(active_kid=keyring.active_kid, keys={k: v for k, v in keyring.keys.items() if k != kid})
