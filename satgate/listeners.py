"""Port ownership: a server refuses an address another process holds, instead of silently sharing it.

gRPC workers share their port with SO_REUSEPORT, and the kernel lets any process of the same user join such a
group: a second server started on the same address (say with another ledger) would get half the connections, and
budgets would stop being exact. So before anything binds, `claim` binds the address *without* SO_REUSEPORT, which
fails while any socket listens there, whoever owns it. Our workers set SO_REUSEPORT only after their supervisor's
claim succeeded, and any later server of ours fails its own claim on their sockets.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from collections.abc import Iterator

UNIX_PREFIX = "unix:"


def _claim_unix(setting: str, address: str) -> None:
    """A socket file another server answers on is taken; one nobody answers on (a crash left it) is removed."""
    path = address.removeprefix(UNIX_PREFIX)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if not os.path.isdir(os.path.dirname(path) or "/"):
            raise OSError(
                f"{setting}: the directory of {path} does not exist; create it, or set {setting} to another path"
            ) from None
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(f"{setting}: {path} exists and is not a socket; remove it, or set {setting} to another path")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)  # stale: nothing listens there any more
        return
    finally:
        probe.close()
    raise AddressInUse(
        f"{setting}: {address} is already in use by another process; stop that process, or set {setting} to "
        "another path"
    )


def release(address: str) -> None:
    """After the server stopped: its socket file goes (a TCP port needs nothing)."""
    if address.startswith(UNIX_PREFIX):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address.removeprefix(UNIX_PREFIX))


class AddressInUse(OSError):
    """The message is one line naming the setting, the address and the fix."""


def _bind_target(address: str) -> tuple[socket.AddressFamily, str, int]:
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "*"):  # noqa: S104 - the wildcard of a listen setting, probed only
        return socket.AF_INET, "", int(port)
    return (socket.AF_INET6 if ":" in host else socket.AF_INET), host, int(port)


def claim(setting: str, address: str) -> None:
    """Raise unless `address` (host:port or unix:/path, as the setting wrote it) is free on this host right now."""
    if address.startswith(UNIX_PREFIX):
        _claim_unix(setting, address)
        return
    family, host, port = _bind_target(address)
    if port == 0:
        return  # the kernel picks a free one
    probe = socket.socket(family, socket.SOCK_STREAM)
    # SO_REUSEADDR: connections of a previous run in TIME_WAIT do not count; on Linux a listening socket still does
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUse(
                f"{setting}: {address} is already in use by another process; stop that process, or set {setting} "
                "to a free address"
            ) from None
        raise OSError(
            f"{setting}: cannot listen on {address} ({exc.strerror}); set {setting} to an address of this host"
        ) from None
    finally:
        probe.close()


@contextlib.contextmanager
def private_sockets(address: str, mode: int) -> Iterator[None]:
    """Around creating a unix: listener: the file exists with no more than `mode` allows from its first instant
    (a umask of 0 would make it 0777 until a chmod), then exactly `mode`. A TCP address: nothing to do."""
    if not address.startswith(UNIX_PREFIX):
        yield
        return
    previous = os.umask(0o777 & ~mode)
    try:
        yield
    finally:
        os.umask(previous)
    os.chmod(address.removeprefix(UNIX_PREFIX), mode)
