"""DNS resolution and Happy Eyeballs connection (RFC 8305), timed separately.

Job: turn a host name or IP literal into a connected ``Stream`` and say which address
won. Rule: ``dns_failed`` and ``connect_failed`` are decided here; deadlines are the
caller's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from asyncio.staggered import staggered_race
from collections.abc import Awaitable, Callable
from functools import lru_cache, partial

from pop3watch.errors import ConfigError, ConnectFailed, DnsFailed
from pop3watch.probe.settings import IpFamily
from pop3watch.probe.stream import Stream, stream_class

#: RFC 8305 "Connection Attempt Delay": start the next address after 250 ms.
ATTEMPT_DELAY_S = 0.25

_FAMILIES = {
    IpFamily.AUTO: socket.AF_UNSPEC,
    IpFamily.V4: socket.AF_INET,
    IpFamily.V6: socket.AF_INET6,
}


def _interleave(addresses: list[tuple[int, str]]) -> list[str]:
    """Alternate address families, starting with the resolver's first choice (RFC 8305 4)."""
    if not addresses:
        return []
    first = addresses[0][0]
    primary = [ip for fam, ip in addresses if fam == first]
    secondary = [ip for fam, ip in addresses if fam != first]
    out: list[str] = []
    for i in range(max(len(primary), len(secondary))):
        out.extend(x[i] for x in (primary, secondary) if i < len(x))
    return out


@lru_cache(maxsize=4096)
def ip_version(host: str) -> int | None:
    """4 or 6 for an IP literal, None for a name (cached: parsing costs microseconds)."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).version
    except ValueError:
        return None


def ip_literal(host: str, family: IpFamily) -> list[str] | None:
    """``[host]`` when it is an IP literal, None for a name: the answer ``resolve`` gives
    without an await, for callers that check thousands of literals a second."""
    literal = ip_version(host)
    if literal is None:
        return None
    if (family is IpFamily.V4 and literal != 4) or (family is IpFamily.V6 and literal != 6):
        raise ConfigError(f"ip_family {family.value} does not match address {host}")
    return [host]


async def resolve(host: str, port: int, family: IpFamily) -> list[str]:
    """Addresses to try, best first. IP literals skip DNS entirely."""
    literal = ip_literal(host, family)
    if literal is not None:
        return literal
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(
            host, port, family=_FAMILIES[family], type=socket.SOCK_STREAM
        )
    except socket.gaierror as exc:
        raise DnsFailed(f"{host}: {exc.strerror or exc}") from None
    except UnicodeError:
        raise DnsFailed(f"{host}: not a valid host name") from None
    seen: dict[str, int] = {}
    for fam, _type, _proto, _canon, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), int(fam))
    if not seen:
        raise DnsFailed(f"{host}: no addresses")
    return _interleave([(fam, ip) for ip, fam in seen.items()])


def describe_os_error(exc: BaseException) -> str:
    """``Connection refused`` rather than asyncio's ``Connect call failed ('1.2.3.4', 1)``."""
    errno = getattr(exc, "errno", None)
    if isinstance(errno, int) and errno > 0:
        return os.strerror(errno)
    return str(getattr(exc, "strerror", None) or exc or type(exc).__name__)


async def open_stream(addresses: list[str], port: int) -> Stream:
    """Connect to the first address that answers (``Stream.address`` says which)."""
    kind = stream_class()
    if len(addresses) == 1:
        try:
            return await kind.connect(addresses[0], port)
        except OSError as exc:
            raise ConnectFailed(f"{addresses[0]} port {port}: {describe_os_error(exc)}") from None
    attempts: list[Callable[[], Awaitable[Stream]]] = [
        partial(kind.connect, ip, port) for ip in addresses
    ]
    winner, _index, errors = await staggered_race(attempts, ATTEMPT_DELAY_S)
    if winner is None:
        reasons = "; ".join(
            f"{ip}: {getattr(err, 'strerror', None) or err}"
            for ip, err in zip(addresses, errors, strict=False)
            if err
        )
        raise ConnectFailed(f"port {port}: {reasons or 'no address answered'}")
    stream: Stream = winner
    return stream
