"""Name resolution: a TTL-bounded cache with negative caching and coalescing, on aiodns (c-ares).

``Resolver`` is the interface the pool uses; plug in any object with an async ``resolve``.
``CachingResolver`` holds the policy (cache bounded in entries, record TTL capped by ``max_ttl``,
NXDOMAIN/no-data remembered for ``negative_ttl``, concurrent lookups of one name sharing one query,
IP literals never resolved, names in the hosts file answered from it, in its order) and leaves
the lookup itself to a subclass. ``AiodnsResolver`` looks names up with c-ares: no thread pool, and
the addresses sorted by RFC 6724 destination selection, which Happy Eyeballs then interleaves by
family. ``SystemResolver`` asks the C library's ``getaddrinfo`` in a thread instead, for machines
whose names come from nsswitch sources c-ares does not read (LDAP, mDNS, NIS, systemd-resolved's
own).

c-ares keeps a query cache of its own (record TTLs up to an hour) that pycares cannot switch off.
So that an expired entry here (by its TTL, the ``max_ttl`` cap or the negative TTL) is really asked
again, its refresh goes to a fresh c-ares channel, which has nothing cached; a channel costs about
0.1 ms, once per name per TTL. First lookups share one long-lived channel.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import socket
import time
from collections import OrderedDict
from typing import Any, Callable, Protocol

from ..exceptions import DNSError

__all__ = [
    "Resolver",
    "CachingResolver",
    "AiodnsResolver",
    "SystemResolver",
    "HostsFile",
    "Address",
    "literal_address",
]

Address = tuple[int, tuple[str, int]]  # (family, (ip, port))


class Resolver(Protocol):
    """Turns a host name into addresses to connect to, in preference order.

    A protocol: any object with this ``resolve`` coroutine can be the Client's ``resolver``.
    """

    async def resolve(self, host: str, port: int) -> list[Address]:
        """Return ``(family, (ip, port))`` for each address of ``host``, best first.

        :param host: the host name or IP literal.
        :param port: the port, put into each address.
        :raises DNSError: when the name cannot be resolved.
        """
        ...


def literal_address(host: str, port: int) -> list[Address] | None:
    """The address itself when ``host`` is an IP literal, else None."""
    if not host or (host[0] not in "0123456789" and ":" not in host):
        return None  # a name: skip the parse
    family = _literal_family(host)
    return None if family is None else [(family, (host, port))]


@functools.lru_cache(maxsize=1024)
def _literal_family(host: str) -> int | None:
    """The address family of an IP literal (None: not one); remembered, as a crawler connects
    to the same few thousand addresses again and again (ipaddress takes microseconds)."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return socket.AF_INET6 if ip.version == 6 else socket.AF_INET


class HostsFile:
    """Names from a hosts file (``/etc/hosts``), read again when it changes (its mtime is looked
    at no more than once a second). Unreadable or missing: no names."""

    def __init__(self, path: str = "/etc/hosts", clock: Callable[[], float] = time.monotonic):
        self.path = path
        self._clock = clock
        self._checked: float | None = None
        self._stamp: tuple[int, int] | None = None
        self._names: dict[str, list[tuple[int, str]]] = {}

    def lookup(self, name: str) -> list[tuple[int, str]] | None:
        now = self._clock()
        if self._checked is None or now - self._checked >= 1.0:
            self._checked = now
            self._reload()
        return self._names.get(name)

    def _reload(self) -> None:
        try:
            stat = os.stat(self.path)
        except OSError:
            self._stamp, self._names = None, {}
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        names: dict[str, list[tuple[int, str]]] = {}
        try:
            with open(self.path, encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    fields = line.split("#", 1)[0].split()
                    if len(fields) < 2:
                        continue
                    literal = literal_address(fields[0].split("%", 1)[0], 0)
                    if literal is None:
                        continue
                    entry = (literal[0][0], literal[0][1][0])
                    for alias in fields[1:]:
                        found = names.setdefault(alias.lower().rstrip("."), [])
                        if entry not in found:
                            found.append(entry)
        except OSError:
            return
        self._stamp, self._names = stamp, names


class _Entry:
    __slots__ = ("expires", "addresses", "error")

    def __init__(self, expires: float, addresses: list[tuple[int, str]], error: str | None = None):
        self.expires = expires
        self.addresses = addresses
        self.error = error  # set for a negative entry


class CachingResolver:
    """The cache, negative cache and coalescing around a ``lookup`` a subclass provides.

    ``lookup(host, fresh)`` returns ``(addresses, ttl)`` with addresses as ``(family, ip)`` in
    preference order; an empty list means the name does not exist or has no addresses (cached for
    ``negative_ttl``). Any other failure raises DNSError and is not cached. ``fresh`` asks the
    lookup to bypass caches below this one.

    :param max_entries: the most names cached; the least recently used leaves first.
    :param max_ttl: the longest time an answer is cached, in seconds, whatever its TTL.
    :param negative_ttl: seconds a name without addresses is remembered (0: not at all).
    :param clock: a monotonic clock in seconds (tests pass a fake one).
    :param hosts_file: the hosts file answered from first; None for none.
    :raises ValueError: when ``max_entries`` is below 1.
    """

    def __init__(
        self,
        *,
        max_entries: int = 4096,
        max_ttl: float = 300.0,
        negative_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        hosts_file: str | None = "/etc/hosts",
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        self.negative_ttl = negative_ttl
        self._clock = clock
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[list[tuple[int, str]]]] = {}
        self.lookups = 0  # lookups that reached ``lookup`` (cache misses after coalescing)
        self._hosts = HostsFile(hosts_file, clock) if hosts_file else None

    async def lookup(self, host: str, fresh: bool) -> tuple[list[tuple[int, str]], float]:
        """Look ``host`` up: ``(addresses, ttl)``, each address ``(family, ip)``, best first.

        A subclass provides it; an empty list means the name has no addresses.

        :param host: the host name, lower case, without a trailing dot.
        :param fresh: bypass the caches below this one (the name's cached answer expired).
        :raises NotImplementedError: in this base class.
        """
        raise NotImplementedError

    def cached(self, host: str, port: int) -> list[Address] | None:
        """Return the addresses ``resolve`` would return at once, without a coroutine.

        Those are an IP literal, the hosts file, or a fresh answer in the cache; None when
        ``resolve`` would have to wait (or raise). A connect asks this first: most of a
        crawler's connects are answered here.

        :param host: the host name or IP literal.
        :param port: the port, put into each address.
        """
        literal = literal_address(host, port)
        if literal is not None:
            return literal
        key = host.lower().rstrip(".")
        hosts = self._hosts
        if hosts is not None and key:
            listed = hosts.lookup(key)
            if listed is not None:
                return [(family, (ip, port)) for family, ip in listed]
        entry = self._cache.get(key)
        if entry is None or entry.error is not None or entry.expires <= self._clock():
            return None
        self._cache.move_to_end(key)
        return [(family, (ip, port)) for family, ip in entry.addresses]

    async def resolve(self, host: str, port: int) -> list[Address]:
        """Return ``(family, (ip, port))`` for each address of ``host``, best first.

        Concurrent calls for one name share one lookup.

        :param host: the host name or IP literal.
        :param port: the port, put into each address.
        :raises DNSError: when the name is empty, has no addresses (also from the negative
            cache), or the lookup fails.
        """
        answer = self.cached(host, port)  # an IP literal, the hosts file, a fresh answer
        if answer is not None:
            return answer
        key = host.lower().rstrip(".")
        if not key:
            raise DNSError("cannot resolve an empty host name")
        cache = self._cache
        entry = cache.get(key)
        fresh = False
        if entry is not None:  # an expired answer, or a negative one (a fresh one was cached's)
            if entry.expires > self._clock():
                cache.move_to_end(key)
                assert entry.error is not None
                raise DNSError(entry.error)
            del cache[key]
            fresh = True  # asked before: caches below may still hold the expired answer
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(self._fill(key, fresh))
            self._inflight[key] = future
            future.add_done_callback(functools.partial(self._settled, key))
        # Shielded: a caller that gives up (its connect timeout) leaves the query to the others.
        addresses = await asyncio.shield(future)
        return [(family, (ip, port)) for family, ip in addresses]

    def _settled(self, key: str, future: asyncio.Future[Any]) -> None:
        if self._inflight.get(key) is future:
            del self._inflight[key]
        if not future.cancelled():
            future.exception()  # retrieved here, so no "never retrieved" warning if all gave up

    async def _fill(self, key: str, fresh: bool) -> list[tuple[int, str]]:
        self.lookups += 1
        addresses, ttl = await self.lookup(key, fresh)
        now = self._clock()
        if not addresses:
            message = f"could not resolve {key!r}: no such name, or no A/AAAA records"
            if self.negative_ttl > 0:
                self._store(key, _Entry(now + self.negative_ttl, [], message))
            raise DNSError(message)
        if ttl > 0 and self.max_ttl > 0:
            self._store(key, _Entry(now + min(ttl, self.max_ttl), addresses))
        return addresses

    def _store(self, key: str, entry: _Entry) -> None:
        cache = self._cache
        cache[key] = entry
        cache.move_to_end(key)
        while len(cache) > self.max_entries:
            cache.popitem(last=False)

    def clear(self) -> None:
        """Forget every cached answer."""
        self._cache.clear()

    def close(self) -> None:
        """Cancel the lookups in flight; the cache is kept."""
        for future in self._inflight.values():
            future.cancel()
        self._inflight.clear()


# c-ares status codes that mean "this name has no addresses" (cacheable, RFC 2308).
_NOT_FOUND = {1, 4}  # ARES_ENODATA, ARES_ENOTFOUND


class AiodnsResolver(CachingResolver):
    """Resolve with c-ares through aiodns; the channel is created on first use, in the running loop.

    ``nameservers`` ("ip" or "ip:port") replaces the system's; ``timeout`` and ``tries`` are
    c-ares's per-query settings. The cache settings are those of ``CachingResolver``.

    :param nameservers: the name servers to ask, as ``"ip"`` or ``"ip:port"``; None for the
        system's.
    :param timeout: c-ares's timeout per query, in seconds; None for its default.
    :param tries: c-ares's tries per query; None for its default.
    :param max_entries: as ``CachingResolver`` takes it.
    :param max_ttl: as ``CachingResolver`` takes it.
    :param negative_ttl: as ``CachingResolver`` takes it.
    :param clock: as ``CachingResolver`` takes it.
    :param hosts_file: as ``CachingResolver`` takes it.
    :raises ValueError: when ``max_entries`` is below 1.
    """

    def __init__(
        self,
        nameservers: list[str] | None = None,
        *,
        timeout: float | None = None,
        tries: int | None = None,
        max_entries: int = 4096,
        max_ttl: float = 300.0,
        negative_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        hosts_file: str | None = "/etc/hosts",
    ) -> None:
        super().__init__(
            max_entries=max_entries,
            max_ttl=max_ttl,
            negative_ttl=negative_ttl,
            clock=clock,
            hosts_file=hosts_file,
        )
        self._nameservers = nameservers
        self._options: dict[str, Any] = {}
        if timeout is not None:
            self._options["timeout"] = timeout
        if tries is not None:
            self._options["tries"] = tries
        self._channel: Any = None

    def _new_channel(self) -> Any:
        import aiodns

        return aiodns.DNSResolver(nameservers=self._nameservers, **self._options)

    async def lookup(self, host: str, fresh: bool) -> tuple[list[tuple[int, str]], float]:
        """Look ``host`` up with c-ares; ``fresh`` uses a new channel, which has nothing cached.

        :param host: the host name.
        :param fresh: bypass c-ares's own cache.
        :raises DNSError: when the query fails other than for a name without addresses.
        """
        import aiodns

        if self._channel is None:
            self._channel = self._new_channel()
        channel = self._channel
        if fresh:
            channel = self._new_channel()  # c-ares's own cache would answer from memory
        try:
            result = await channel.getaddrinfo(
                host, family=socket.AF_UNSPEC, port=None, type=socket.SOCK_STREAM
            )
        except aiodns.error.DNSError as exc:
            code = exc.args[0] if exc.args else None
            if code in _NOT_FOUND:
                return [], 0.0
            reason = exc.args[1] if len(exc.args) > 1 else str(exc)
            raise DNSError(f"could not resolve {host!r}: {reason}") from None
        finally:
            if channel is not self._channel:
                _close_channel(channel)
        addresses: list[tuple[int, str]] = []
        seen = set()
        ttl: float | None = None
        for node in result.nodes:
            ip = node.addr[0]
            if isinstance(ip, bytes):
                ip = ip.decode("ascii")
            ttl = node.ttl if ttl is None else min(ttl, node.ttl)
            if ip not in seen:
                seen.add(ip)
                addresses.append((int(node.family), ip))
        return addresses, float(ttl or 0)

    def close(self) -> None:
        """Cancel the lookups in flight and close the c-ares channel."""
        super().close()
        channel = self._channel
        self._channel = None
        if channel is not None:
            _close_channel(channel)


# getaddrinfo errors that mean "this name has no addresses" (cacheable, RFC 2308); EAI_NODATA
# and EAI_ADDRFAMILY are glibc's and absent elsewhere.
_GAI_NOT_FOUND = {
    code
    for code in (
        socket.EAI_NONAME,
        getattr(socket, "EAI_NODATA", None),
        getattr(socket, "EAI_ADDRFAMILY", None),
    )
    if code is not None
}


class SystemResolver(CachingResolver):
    """Resolve with the system's ``getaddrinfo``, run in the loop's default thread pool.

    For machines where the name service switch matters (``/etc/nsswitch.conf``: LDAP, mDNS, NIS,
    a VPN's split DNS): the C library answers exactly as it does for every other program, hosts
    file included, in its RFC 6724 order. The price is a thread per lookup in flight, which the
    cache and the coalescing of ``CachingResolver`` keep to one per name per ``ttl``.

    ``getaddrinfo`` gives no record TTL, so answers are kept for ``ttl`` seconds (0: not kept;
    concurrent lookups are still shared). A name that does not exist is remembered for
    ``negative_ttl``. The hosts file is the C library's to read: ``hosts_file`` is off unless given.

    :param ttl: seconds an answer is kept (capped by ``max_ttl``; 0: not kept).
    :param max_entries: as ``CachingResolver`` takes it.
    :param max_ttl: as ``CachingResolver`` takes it.
    :param negative_ttl: as ``CachingResolver`` takes it.
    :param clock: as ``CachingResolver`` takes it.
    :param hosts_file: as ``CachingResolver`` takes it; None (the default) leaves it to the C
        library.
    :raises ValueError: when ``ttl`` is negative or ``max_entries`` is below 1.
    """

    def __init__(
        self,
        *,
        ttl: float = 60.0,
        max_entries: int = 4096,
        max_ttl: float = 300.0,
        negative_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        hosts_file: str | None = None,
    ) -> None:
        if ttl < 0:
            raise ValueError("ttl must not be negative")
        super().__init__(
            max_entries=max_entries,
            max_ttl=max_ttl,
            negative_ttl=negative_ttl,
            clock=clock,
            hosts_file=hosts_file,
        )
        self.ttl = ttl

    async def lookup(self, host: str, fresh: bool) -> tuple[list[tuple[int, str]], float]:
        """Look ``host`` up with ``getaddrinfo`` in the loop's default thread pool.

        :param host: the host name.
        :param fresh: ignored: any cache below this one is the system's.
        :raises DNSError: when ``getaddrinfo`` fails other than for a name without addresses.
        """
        # ``fresh`` has nothing to bypass: any cache below (nscd, systemd-resolved) is the system's.
        loop = asyncio.get_running_loop()
        try:
            result = await loop.getaddrinfo(
                host, None, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            if exc.errno in _GAI_NOT_FOUND:
                return [], 0.0
            raise DNSError(f"could not resolve {host!r}: {exc.strerror or exc}") from None
        except (OSError, UnicodeError) as exc:  # EAI_SYSTEM; a label the codec refuses
            raise DNSError(f"could not resolve {host!r}: {exc}") from None
        addresses: list[tuple[int, str]] = []
        seen = set()
        for family, _, _, _, sockaddr in result:
            ip = sockaddr[0]
            if family in (socket.AF_INET, socket.AF_INET6) and isinstance(ip, str):
                if ip not in seen:
                    seen.add(ip)
                    addresses.append((int(family), ip))
        return addresses, self.ttl


def _close_channel(channel: Any) -> None:
    result = channel.close()
    if asyncio.iscoroutine(result):  # aiodns >= 3.3: close() is a coroutine that never suspends
        try:
            result.send(None)
        except StopIteration:
            return
        result.close()
