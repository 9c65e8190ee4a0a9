"""Opening a connection: resolve, race TCP connects (Happy Eyeballs v2), then TLS on the winner.

RFC 8305: the resolved addresses are interleaved by family, starting with the family of the first
(most preferred) one. Attempts start one at a time: the next starts ``happy_eyeballs_delay``
seconds after the previous one, or at once when an attempt fails. The first TCP connection to
succeed wins; the others are cancelled and their sockets closed. The connect timeout bounds name
resolution and the whole race (ConnectTimeout), and what is left of it bounds the TLS handshake
(TLSHandshakeTimeout). When every attempt fails, one ConnectError names each address and reason.

Every failure is mapped here, at the boundary where it arises, to ConnectError, ConnectTimeout,
DNSError or TLSError.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from functools import partial
from time import perf_counter
from typing import Any, Callable, Coroutine, TypeVar

from ..exceptions import ConnectError, ConnectTimeout, DNSError, TLSError, TLSHandshakeTimeout
from .dns import Address, Resolver

__all__ = ["deadline", "interleave", "on_socket", "open_connection", "open_socket", "start_tls"]

P = TypeVar("P", bound=asyncio.BaseProtocol)


class deadline:
    """Cancel the current task when ``timeout`` seconds pass; turn that into ``exc_type``.

    A ``loop.call_later`` timer handle around one phase: no extra task, and it composes with an
    outer cancellation (which is re-raised untouched).
    """

    __slots__ = ("_timeout", "_message", "_exc_type", "_handle", "_task", "expired")

    def __init__(
        self,
        timeout: float | None,
        message: str | Callable[[], str],
        exc_type: type[Exception] = ConnectTimeout,
    ) -> None:
        self._timeout = timeout
        self._message = message
        self._exc_type = exc_type
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[object] | None = None
        self.expired = False

    def __enter__(self) -> deadline:
        if self._timeout is not None:
            self._task = asyncio.current_task()
            self._handle = asyncio.get_running_loop().call_later(self._timeout, self._expire)
        return self

    def _expire(self) -> None:
        self.expired = True
        if self._task is not None:
            self._task.cancel()

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self.expired and isinstance(exc, asyncio.CancelledError):
            uncancel = getattr(self._task, "uncancel", None)
            if uncancel is not None:
                uncancel()
            message = self._message
            raise self._exc_type(message if isinstance(message, str) else message()) from None


def interleave(addresses: list[Address]) -> list[Address]:
    """Alternate address families, starting with the family of the first address (RFC 8305 4)."""
    if len(addresses) < 2:
        return addresses
    first = addresses[0][0]
    preferred = [a for a in addresses if a[0] == first]
    others = [a for a in addresses if a[0] != first]
    if not others:
        return addresses
    result: list[Address] = []
    for i in range(max(len(preferred), len(others))):
        if i < len(preferred):
            result.append(preferred[i])
        if i < len(others):
            result.append(others[i])
    return result


def _label(address: Address) -> str:
    ip, port = address[1][0], address[1][1]
    return f"[{ip}]:{port}" if address[0] == socket.AF_INET6 else f"{ip}:{port}"


async def _connect_socket(loop: asyncio.AbstractEventLoop, address: Address) -> socket.socket:
    """A non-blocking connect to a resolved address. Not ``loop.sock_connect``: uvloop's hands
    every address, literal IPs included, to getaddrinfo on libuv's thread pool first, which cost
    a crawler (a connection per page) about 6% of its CPU."""
    family, sockaddr = address
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.connect(sockaddr)
        except (BlockingIOError, InterruptedError):
            writable: asyncio.Future[None] = loop.create_future()
            fd = sock.fileno()
            loop.add_writer(fd, _set_done, writable)
            try:
                await writable
            finally:
                loop.remove_writer(fd)
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                raise OSError(error, os.strerror(error)) from None
    except BaseException:
        sock.close()
        raise
    return sock


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _close_result(task: asyncio.Task[socket.socket]) -> None:
    if not task.cancelled() and task.exception() is None:
        task.result().close()


async def _race(
    loop: asyncio.AbstractEventLoop,
    addresses: list[Address],
    delay: float,
    attempts: list[tuple[str, str]],
) -> socket.socket | None:
    """Staggered connects; the winning socket, or None when every attempt failed."""
    if len(addresses) == 1:  # nothing to race: no task
        try:
            return await _connect_socket(loop, addresses[0])
        except OSError as exc:
            attempts.append((_label(addresses[0]), _reason(exc)))
            return None
    pending: set[asyncio.Task[socket.socket]] = set()
    labels: dict[asyncio.Task[socket.socket], str] = {}
    queue = list(reversed(addresses))
    winner: socket.socket | None = None
    try:
        while True:
            if queue:
                address = queue.pop()
                task = loop.create_task(_connect_socket(loop, address))
                labels[task] = _label(address)
                pending.add(task)
            if not pending:
                return None
            done, pending = await asyncio.wait(
                pending,
                timeout=delay if queue else None,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in done:
                failure = task.exception()
                if failure is None:
                    if winner is None:
                        winner = task.result()
                    else:
                        task.result().close()
                else:
                    attempts.append((labels[task], _reason(failure)))
            if winner is not None:
                return winner
    finally:
        for task in pending:
            task.cancel()  # a connect that completes anyway closes its socket
            task.add_done_callback(_close_result)
        if winner is None:
            # Cancelled from outside: the attempts still running are recorded as such.
            attempts.extend((labels[task], "cancelled") for task in pending)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        if exc.errno:  # asyncio's message is "Connect call failed (address)": name the errno
            return os.strerror(exc.errno)
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__


async def open_socket(
    host: str,
    port: int,
    *,
    resolver: Resolver,
    timeout: float | None,
    happy_eyeballs_delay: float = 0.25,
    phases: dict[str, float] | None = None,
    what: str = "",
) -> socket.socket:
    """A connected TCP socket to ``host:port``: resolved, then raced (Happy Eyeballs).

    ``what`` prefixes the name in error messages ("proxy " for a proxy). ``phases``, when
    given, gets the seconds "dns" and "connect" took."""
    loop = asyncio.get_running_loop()
    mark = perf_counter()
    attempts: list[tuple[str, str]] = []
    where = what + _where(host, port)
    with deadline(timeout, f"timed out connecting to {where} after {timeout}s"):
        addresses = await _resolve(resolver, host, port, what)
        if phases is not None:
            now = perf_counter()
            phases["dns"], mark = now - mark, now
        sock = await _race(loop, interleave(addresses), happy_eyeballs_delay, attempts)
        if phases is not None:
            phases["connect"] = perf_counter() - mark
    if sock is None:
        raise _connect_error(where, attempts)
    return sock


async def _resolve(resolver: Resolver, host: str, port: int, what: str) -> list[Address]:
    try:
        addresses = await resolver.resolve(host, port)
    except OSError as exc:  # a plugged-in resolver that did not map its own errors
        raise DNSError(f"could not resolve {what}{host!r}: {exc}") from exc
    if not addresses:
        raise DNSError(f"could not resolve {what}{host!r}: the resolver returned no addresses")
    return addresses


def _connect_error(where: str, attempts: list[tuple[str, str]]) -> ConnectError:
    detail = "; ".join(f"{label}: {reason}" for label, reason in attempts)
    return ConnectError(f"could not connect to {where} ({detail})", attempts)


async def _open_plain(
    protocol_factory: Callable[[], P],
    host: str,
    port: int,
    resolver: Resolver,
    timeout: float | None,
    happy_eyeballs_delay: float,
) -> P:
    """``open_connection`` without TLS or timings. A name with one address (a crawler's usual
    case, and every literal IP) is connected by the event loop itself, in one call: uvloop
    does it in C, with no socket object, future, writer callback or second timer of ours,
    which halves the CPU a connection costs (about 60 to 25 us on loopback). Several addresses
    are raced as ``open_socket`` does."""
    loop = asyncio.get_running_loop()
    with deadline(timeout, partial(_timed_out, host, port, timeout)):
        cached = getattr(resolver, "cached", None)
        addresses = cached(host, port) if cached is not None else None
        if addresses is None:
            addresses = await _resolve(resolver, host, port, "")
        if len(addresses) == 1:
            family, sockaddr = addresses[0]
            try:
                _, protocol = await loop.create_connection(
                    protocol_factory, sockaddr[0], sockaddr[1], family=family
                )
            except OSError as exc:
                attempt = (_label(addresses[0]), _reason(exc))
                raise _connect_error(_where(host, port), [attempt]) from None
            return protocol
        attempts: list[tuple[str, str]] = []
        sock = await _race(loop, interleave(addresses), happy_eyeballs_delay, attempts)
    if sock is None:
        raise _connect_error(_where(host, port), attempts)
    _, protocol = await on_socket(
        protocol_factory, sock, host, port, ssl_context=None, timeout=None
    )
    return protocol


async def on_socket(
    protocol_factory: Callable[[], P],
    sock: socket.socket,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None,
    timeout: float | None,
    phases: dict[str, float] | None = None,
    what: str = "",
) -> tuple[asyncio.Transport, P]:
    """``protocol_factory``'s protocol on the connected ``sock``, after a TLS handshake with
    ``host`` when ``ssl_context`` is given (bounded by ``timeout``: TLSHandshakeTimeout). The
    socket is closed on failure. ``phases``, when given, gets the seconds "tls" took."""
    loop = asyncio.get_running_loop()
    mark = perf_counter()
    where = what + _where(host, port)
    try:
        with deadline(
            timeout,
            f"TLS handshake with {where} timed out after {timeout}s",
            TLSHandshakeTimeout,
        ):
            transport, protocol = await loop.create_connection(
                protocol_factory,
                sock=sock,
                ssl=ssl_context,
                server_hostname=host if ssl_context is not None else None,
                # asyncio's own handshake timer is only a backstop behind the deadline above.
                ssl_handshake_timeout=None if ssl_context is None else (timeout or 60.0) + 1.0,
            )
    except BaseException as exc:
        sock.close()
        raise _mapped(exc, where, tls=ssl_context is not None) from exc
    if phases is not None and ssl_context is not None:
        phases["tls"] = perf_counter() - mark
    return transport, protocol


async def start_tls(
    transport: asyncio.Transport,
    protocol: asyncio.BaseProtocol,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext,
    timeout: float | None,
    phases: dict[str, float] | None = None,
) -> asyncio.Transport:
    """TLS with ``host`` on an open transport (inside a proxy's tunnel), for ``protocol``,
    which is then told ``connection_made``. The transport is closed on failure."""
    loop = asyncio.get_running_loop()
    mark = perf_counter()
    where = _where(host, port)
    try:
        with deadline(
            timeout,
            f"TLS handshake with {where} timed out after {timeout}s",
            TLSHandshakeTimeout,
        ):
            secured = await loop.start_tls(
                transport,
                protocol,
                ssl_context,
                server_hostname=host,
                ssl_handshake_timeout=(timeout or 60.0) + 1.0,
            )
    except BaseException as exc:
        transport.abort()
        raise _mapped(exc, where, tls=True) from exc
    if secured is None:  # the transport closed during the handshake
        raise TLSError(f"TLS handshake with {where} failed: the connection was closed")
    if phases is not None:
        phases["tls"] = perf_counter() - mark
    protocol.connection_made(secured)
    return secured


def _timed_out(host: str, port: int, timeout: float | None) -> str:
    return f"timed out connecting to {_where(host, port)} after {timeout}s"


def _where(host: str, port: int) -> str:
    return f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"


def _mapped(exc: BaseException, where: str, *, tls: bool) -> BaseException:
    """The hyperhttp error for a failure of the connect or TLS step (others pass as they are)."""
    if isinstance(exc, ssl.SSLError):  # includes certificate verification failures
        return TLSError(f"TLS handshake with {where} failed: {_ssl_reason(exc)}")
    if not isinstance(exc, (OSError, asyncio.TimeoutError)):
        return exc
    if not tls:
        return ConnectError(f"could not connect to {where}: {_reason(exc)}")
    return TLSError(f"TLS handshake with {where} failed: {_reason(exc)}")


def open_connection(
    protocol_factory: Callable[[], P],
    host: str,
    port: int,
    *,
    resolver: Resolver,
    ssl_context: ssl.SSLContext | None,
    timeout: float | None,
    happy_eyeballs_delay: float = 0.25,
    phases: dict[str, float] | None = None,
) -> Coroutine[Any, Any, P]:
    """Connect to ``host:port``: awaited, the protocol instance bound to the new transport.

    ``phases``, when given, gets the seconds each phase took: "dns", "connect" and "tls"."""
    if ssl_context is None and phases is None:  # (no coroutine of its own around that one)
        return _open_plain(protocol_factory, host, port, resolver, timeout, happy_eyeballs_delay)
    return _open_in_steps(
        protocol_factory, host, port, resolver, ssl_context, timeout, happy_eyeballs_delay, phases
    )


async def _open_in_steps(
    protocol_factory: Callable[[], P],
    host: str,
    port: int,
    resolver: Resolver,
    ssl_context: ssl.SSLContext | None,
    timeout: float | None,
    happy_eyeballs_delay: float,
    phases: dict[str, float] | None,
) -> P:
    """A socket (``open_socket``), then TLS on it (``on_socket``), each phase timed apart."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    sock = await open_socket(
        host,
        port,
        resolver=resolver,
        timeout=timeout,
        happy_eyeballs_delay=happy_eyeballs_delay,
        phases=phases,
    )
    remaining = None if timeout is None else max(timeout - (loop.time() - started), 0.001)
    _, protocol = await on_socket(
        protocol_factory,
        sock,
        host,
        port,
        ssl_context=ssl_context,
        timeout=remaining,
        phases=phases,
    )
    return protocol


def _ssl_reason(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or str(exc)
    return exc.reason or str(exc)
