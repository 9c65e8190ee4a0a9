"""Name resolution on aiodns (c-ares): no thread pool, and /etc/hosts honoured by c-ares itself.

Literal IPv4 and IPv6 addresses are never resolved. The cache, negative caching and coalescing of
concurrent lookups belong to the network-layer work; this module keeps the interface they plug into.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Protocol

from ..exceptions import DNSError

__all__ = ["Resolver", "AiodnsResolver", "Address"]

Address = tuple[int, tuple[str, int]]  # (family, (ip, port))


class Resolver(Protocol):
    """Turns a host name into addresses to connect to, in preference order."""

    async def resolve(self, host: str, port: int) -> list[Address]: ...


def literal_address(host: str, port: int) -> list[Address] | None:
    """The address itself when ``host`` is an IP literal, else None."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    return [(family, (host, port))]


class AiodnsResolver:
    """Resolve with c-ares through aiodns; the channel is created on first use, in the running loop."""

    def __init__(self, nameservers: list[str] | None = None) -> None:
        self._nameservers = nameservers
        self._resolver: object | None = None

    async def resolve(self, host: str, port: int) -> list[Address]:
        literal = literal_address(host, port)
        if literal is not None:
            return literal
        import aiodns

        if self._resolver is None:
            self._resolver = aiodns.DNSResolver(nameservers=self._nameservers)
        resolver: aiodns.DNSResolver = self._resolver  # type: ignore[assignment]
        try:
            result = await resolver.getaddrinfo(
                host, family=socket.AF_UNSPEC, port=port, type=socket.SOCK_STREAM
            )
        except aiodns.error.DNSError as exc:
            reason = exc.args[1] if len(exc.args) > 1 else str(exc)
            raise DNSError(f"could not resolve {host!r}: {reason}") from None
        addresses: list[Address] = []
        seen = set()
        for node in result.nodes:
            ip = node.addr[0].decode("ascii") if isinstance(node.addr[0], bytes) else node.addr[0]
            if ip not in seen:
                seen.add(ip)
                addresses.append((node.family, (ip, port)))
        if not addresses:
            raise DNSError(f"could not resolve {host!r}: no addresses")
        return addresses

    def close(self) -> None:
        resolver = self._resolver
        self._resolver = None
        if resolver is not None:
            close = getattr(resolver, "close", None)
            if close is not None:
                result = close()
                if hasattr(result, "close"):  # aiodns >= 3.3 returns a coroutine
                    result.close()
