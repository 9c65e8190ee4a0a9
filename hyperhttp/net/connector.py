"""Connectors: what the pool is given to open a connection to an origin.

A connector resolves the name, races the connects (Happy Eyeballs), does TLS, chooses the wire
format (ALPN for https, prior knowledge for http) and returns a connected protocol behind the
``Connection`` interface of proto/base.py. The pool knows no more than that interface, so a
connector through a proxy, or a fake one in a test, slots in where ``DirectConnector`` is.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from functools import partial
from typing import Any, Callable, Protocol

from ..exceptions import TLSError
from ..proto.base import Callback, Connection, HeadLimits
from ..proto.h1 import H1Connection
from ..proto.h2 import H2Connection
from .connect import open_connection
from .dns import AiodnsResolver, Resolver
from .tls import create_ssl_context

__all__ = ["Connector", "DirectConnector", "Endpoint", "Negotiator"]

_RECEIVE_BUFFER = 256 * 1024
logger = logging.getLogger("hyperhttp")


class Endpoint(Protocol):
    """Where to connect: a host, a port, and whether TLS goes on top."""

    host: str
    port: int
    tls: bool


class Connector(Protocol):
    async def connect(
        self,
        endpoint: Endpoint,
        *,
        http2: bool,
        timeout: float | None,
        on_idle: Callback,
        on_lost: Callback,
        phases: dict[str, float] | None = None,
    ) -> Connection:
        """A connection to ``endpoint``. ``phases``, when given, gets the seconds that "dns",
        "connect" and "tls" took. ``http2``: HTTP/2 may be spoken (offered through ALPN
        over TLS, spoken from the start without). The connection calls ``on_idle`` when it can
        take a request again, ``on_lost`` when it never will (see proto/base.py). Raises
        ConnectError, ConnectTimeout, DNSError or TLSError."""
        ...

    def close(self) -> None:
        """Release what the connector holds (not the connections it made)."""
        ...


class Negotiator(asyncio.BaseProtocol):
    """Stands in for the connection until TLS is up, then hands the transport to the protocol
    that ALPN chose: ``make_h2()`` for "h2" (when given), ``make_h1()`` for "http/1.1" or none.
    Anything else is refused: the transport is aborted and ``refused`` names what was chosen."""

    def __init__(
        self, make_h1: Callable[[], Any], make_h2: Callable[[], Any] | None = None
    ) -> None:
        self._make_h1 = make_h1
        self._make_h2 = make_h2
        self.protocol: Any = None
        self.refused: str | None = None
        self.tls_version: str | None = None  # what the handshake agreed, for the log

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if ssl_object is not None:
            self.tls_version = ssl_object.version()
        if alpn == "h2" and self._make_h2 is not None:
            protocol = self._make_h2()
        elif not alpn or alpn == "http/1.1":
            protocol = self._make_h1()
        else:
            self.refused = alpn
            transport.abort()  # type: ignore[attr-defined]
            return
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        self.protocol = protocol

    def connection_lost(self, exc: Exception | None) -> None:
        if self.protocol is not None:
            self.protocol.connection_lost(exc)


def _implements(h1: H1Connection, h2: H2Connection) -> tuple[Connection, Connection]:
    """Never called: mypy checks here that both wire formats implement ``Connection``."""
    return h1, h2


class DirectConnector:
    """Connects straight to the origin: resolve, Happy Eyeballs, TLS, ALPN."""

    def __init__(
        self,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float | None = 10.0,
        happy_eyeballs_delay: float = 0.25,
        limits: HeadLimits | None = None,
        timed: bool = False,
    ) -> None:
        self.timed = timed  # connections keep the stamps of response timings
        self.resolver: Resolver = resolver if resolver is not None else AiodnsResolver()
        # A resolver passed in may be shared with other pools: not ours to close.
        self._owns_resolver = resolver is None
        self._ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        self.happy_eyeballs_delay = happy_eyeballs_delay
        self._limits = limits if limits is not None else HeadLimits()
        # One receive buffer for every connection: reads are handed on synchronously.
        self._buffer = memoryview(bytearray(_RECEIVE_BUFFER))

    async def connect(
        self,
        endpoint: Endpoint,
        *,
        http2: bool,
        timeout: float | None,
        on_idle: Callback,
        on_lost: Callback,
        phases: dict[str, float] | None = None,
    ) -> Connection:
        factory: Callable[[], Any]
        if endpoint.tls:
            ssl_context = self.origin_context()
            h1, h2 = self.factories(endpoint, on_idle, on_lost)
            factory = partial(Negotiator, h1, h2 if http2 else None)
        else:  # the one protocol spoken: no more objects made per connection than needed
            ssl_context = None
            if http2:
                factory = self.factories(endpoint, on_idle, on_lost)[1]
            else:
                factory = partial(
                    H1Connection,
                    asyncio.get_running_loop(),
                    self._buffer,
                    on_idle,
                    on_lost,
                    self._limits,
                    self.timed,
                )
        protocol = await open_connection(
            factory,
            endpoint.host,
            endpoint.port,
            resolver=self.resolver,
            ssl_context=ssl_context,
            timeout=self.budget(timeout),
            happy_eyeballs_delay=self.happy_eyeballs_delay,
            phases=phases,
        )
        return self.chosen(protocol, endpoint)

    # -- what a connector through a proxy shares ------------------------------------------------

    def budget(self, timeout: float | None) -> float | None:
        """The time a new connection may take: the pool's timeout or connect_timeout, the less."""
        own = self.connect_timeout
        if timeout is None or (own is not None and own < timeout):
            return own
        return timeout

    def origin_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = create_ssl_context()
        return self._ssl_context

    def factories(
        self, endpoint: Endpoint, on_idle: Callback, on_lost: Callback
    ) -> tuple[Callable[[], H1Connection], Callable[[], H2Connection]]:
        """The two wire formats' protocols for a connection to ``endpoint``."""
        loop = asyncio.get_running_loop()
        timed = self.timed
        buffer, limits = self._buffer, self._limits
        scheme = b"https" if endpoint.tls else b"http"

        def h1() -> H1Connection:
            return H1Connection(loop, buffer, on_idle, on_lost, limits, timed)

        def h2() -> H2Connection:
            return H2Connection(loop, buffer, on_idle, on_lost, limits, scheme, timed)

        return h1, h2

    def chosen(self, protocol: Any, endpoint: Endpoint, via: str = "") -> Connection:
        """The connection ``protocol`` is, or (a Negotiator) the one ALPN chose; TLSError when
        ALPN chose what hyperhttp cannot speak. ``via`` names a proxy, for the log."""
        if isinstance(protocol, Negotiator):
            chosen = protocol.protocol
            if chosen is None:
                host = endpoint.host if ":" not in endpoint.host else f"[{endpoint.host}]"
                raise TLSError(
                    f"{host}:{endpoint.port} negotiated {protocol.refused!r} through ALPN, "
                    "which hyperhttp cannot speak"
                    + (" with HTTP/2 off" if protocol.refused == "h2" else "")
                )
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "connected to %s:%d%s over %s, %s",
                    endpoint.host,
                    endpoint.port,
                    via,
                    protocol.tls_version,
                    chosen.http_version,
                )
            return chosen  # type: ignore[no-any-return]
        connection: Connection = protocol
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "connected to %s:%d%s, %s",
                endpoint.host,
                endpoint.port,
                via,
                connection.http_version,
            )
        return connection

    def close(self) -> None:
        close = getattr(self.resolver, "close", None)
        if close is not None and self._owns_resolver:
            close()
