"""Connections through a proxy: ``ProxyConnector``, which the Client uses when a proxy applies.

Which proxy a request takes is decided in net/proxy.py and is part of its origin's pool key; the
pool hands the connector that origin (``endpoint.proxy``). Three routes:

- ``http://`` URL, HTTP proxy: a connection to the proxy (TLS to it for an ``https://`` proxy)
  that sends each request in absolute form (proto/h1_forward.py). HTTP/1.1 only.
- ``https://`` URL, HTTP proxy: ``CONNECT host:port`` to the proxy (RFC 9110 section 9.3.6),
  then TLS with the origin inside the tunnel, and HTTP/2 when ALPN picks it.
- SOCKS4/4a/5/5h: python-socks does the handshake on a socket to the proxy; TLS, ALPN and the
  wire format then go on as for a direct connection. For ``socks5://`` and ``socks4://`` the
  name is resolved here (our resolver and its cache), for ``socks5h://`` and ``socks4a://`` by
  the proxy.

The proxy's credentials go to the proxy only (Proxy-Authorization on CONNECT or on each forwarded
request, or the SOCKS handshake) and appear in no message: errors name the proxy by ``safe``.
A proxy that cannot be reached is a ConnectError naming it, one that refuses is a ProxyError with
its status (407 included), and the whole set-up is bounded by the connect timeout.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any, Protocol

from ..exceptions import ConnectError, ConnectTimeout, DNSError, ProxyError
from ..proto.base import Callback, Connection
from ..proto.h1_forward import ForwardingH1Connection
from .connect import deadline, on_socket, open_socket, start_tls
from .connector import DirectConnector, Endpoint, Negotiator
from .proxy import ProxyURL

__all__ = ["ProxyConnector"]

_MAX_HEAD = 64 * 1024  # the most a proxy's answer to CONNECT may take


class ProxiedEndpoint(Endpoint, Protocol):
    proxy: ProxyURL | None


class ProxyConnector(DirectConnector):
    """A DirectConnector that also connects through proxies (see the module).

    ``proxy_ssl_context`` is for TLS with an ``https://`` proxy itself: it offers only
    http/1.1 through ALPN, since HTTP/1.1 is what is spoken to the proxy."""

    def __init__(self, *, proxy_ssl_context: ssl.SSLContext | None = None, **options: Any) -> None:
        super().__init__(**options)
        self._proxy_ssl_context = proxy_ssl_context

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
        proxy: ProxyURL | None = getattr(endpoint, "proxy", None)
        if proxy is None:
            return await super().connect(
                endpoint,
                http2=http2,
                timeout=timeout,
                on_idle=on_idle,
                on_lost=on_lost,
                phases=phases,
            )
        loop = asyncio.get_running_loop()
        budget = self.budget(timeout)
        ends = None if budget is None else loop.time() + budget

        def left() -> float | None:
            return None if ends is None else max(ends - loop.time(), 0.001)

        via = f" through {proxy.safe}"
        h1, h2 = self.factories(endpoint, on_idle, on_lost)
        if proxy.is_socks:
            sock = await self._socks(proxy, endpoint, left)
            ssl_context = self.origin_context() if endpoint.tls else None
            factory: Any
            if ssl_context is not None:
                factory = lambda: Negotiator(h1, h2 if http2 else None)  # noqa: E731
            else:
                factory = h2 if http2 else h1
            _, protocol = await on_socket(
                factory,
                sock,
                endpoint.host,
                endpoint.port,
                ssl_context=ssl_context,
                timeout=left(),
                phases=phases,
            )
            return self.chosen(protocol, endpoint, via)
        sock = await open_socket(
            proxy.host,
            proxy.port,
            resolver=self.resolver,
            timeout=left(),
            happy_eyeballs_delay=self.happy_eyeballs_delay,
            phases=phases,
            what="proxy ",
        )
        proxy_context = self._proxy_context() if proxy.is_secure else None
        buffer, limits, timed = self._buffer, self._limits, self.timed

        def forwarding() -> ForwardingH1Connection:
            return ForwardingH1Connection(
                loop,
                buffer,
                on_idle,
                on_lost,
                limits,
                timed,
                authorization=proxy.authorization,
                proxy=f"proxy {proxy.safe}",
            )

        # http:// URLs: HTTP/1.1 to the proxy, absolute-form targets; https://: a tunnel.
        transport, protocol = await on_socket(
            _Tunnel if endpoint.tls else forwarding,
            sock,
            proxy.host,
            proxy.port,
            ssl_context=proxy_context,
            timeout=left(),
            what="proxy ",
        )
        if not isinstance(protocol, _Tunnel):
            return self.chosen(protocol, endpoint, via)
        await protocol.establish(proxy, endpoint.host, endpoint.port, left())
        negotiator = Negotiator(h1, h2 if http2 else None)
        await start_tls(
            transport,
            negotiator,
            endpoint.host,
            endpoint.port,
            ssl_context=self.origin_context(),
            timeout=left(),
            phases=phases,
        )
        return self.chosen(negotiator, endpoint, via)

    def _proxy_context(self) -> ssl.SSLContext:
        if self._proxy_ssl_context is None:
            from .tls import create_ssl_context

            self._proxy_ssl_context = create_ssl_context()
        return self._proxy_ssl_context

    async def _socks(self, proxy: ProxyURL, endpoint: Endpoint, left: Any) -> socket.socket:
        """A socket to ``endpoint`` through the SOCKS ``proxy``, its handshake done."""
        try:
            from python_socks import ProxyConnectionError, ProxyTimeoutError, ProxyType
            from python_socks import ProxyError as SocksError
            from python_socks.async_.asyncio import Proxy
        except ImportError:  # pragma: no cover - the test extra installs it
            raise ProxyError(
                f"{proxy.safe}: SOCKS proxies need python-socks (pip install 'hyperhttp[socks]')"
            ) from None
        kind = ProxyType.SOCKS5 if proxy.scheme.startswith("socks5") else ProxyType.SOCKS4
        with deadline(left(), f"timed out connecting to proxy {proxy.safe}"):
            proxy_ip = await self._address(proxy.host, proxy.port, "proxy ")
            target = endpoint.host
            if not proxy.rdns:  # resolved here, by our resolver and its cache
                target = await self._address(
                    endpoint.host, endpoint.port, "", ipv4=kind is ProxyType.SOCKS4
                )
        client = Proxy(
            kind,
            proxy_ip,
            proxy.port,
            username=proxy.username or None,
            password=proxy.password or None,
            rdns=proxy.rdns,
            loop=asyncio.get_running_loop(),
        )
        where = f"{endpoint.host}:{endpoint.port}"
        try:
            return await client.connect(target, endpoint.port, timeout=left())
        except ProxyTimeoutError:
            raise ConnectTimeout(
                f"timed out connecting to {where} through proxy {proxy.safe}"
            ) from None
        except ProxyConnectionError as exc:
            reason = exc.strerror or str(exc.args[-1] if exc.args else exc)
            raise ConnectError(f"could not connect to proxy {proxy.safe} ({reason})") from None
        except SocksError as exc:
            raise ProxyError(
                f"SOCKS proxy {proxy.safe} refused the connection to {where}: {exc}"
            ) from None
        except OSError as exc:
            raise ConnectError(
                f"could not connect to {where} through proxy {proxy.safe}: {exc}"
            ) from None

    async def _address(self, host: str, port: int, what: str, ipv4: bool = False) -> str:
        try:
            addresses = await self.resolver.resolve(host, port)
        except OSError as exc:
            raise DNSError(f"could not resolve {what}{host!r}: {exc}") from exc
        for family, sockaddr in addresses:
            if not ipv4 or family == socket.AF_INET:
                return str(sockaddr[0])
        raise DNSError(f"could not resolve {what}{host!r} to an IPv4 address (SOCKS4 needs one)")


class _Tunnel(asyncio.Protocol):
    """The connection to an HTTP proxy until its answer to CONNECT: the response head."""

    def __init__(self) -> None:
        self._head: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._received = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._head.done():
            self._received += data  # nothing may follow the head before our TLS begins
            return
        self._received += data
        end = self._received.find(b"\r\n\r\n")
        if end >= 0:
            head, self._received = self._received[:end], self._received[end + 4 :]
            self._head.set_result(head)
        elif len(self._received) > _MAX_HEAD:
            self._head.set_exception(
                ProxyError(f"the proxy's answer to CONNECT is over {_MAX_HEAD} bytes")
            )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._head.done():
            self._head.set_exception(ProxyError("the proxy closed the connection"))

    async def establish(self, proxy: ProxyURL, host: str, port: int, timeout: float | None) -> None:
        """Send CONNECT and wait for a 2xx; ProxyError (with ``status_code``) otherwise."""
        transport = self.transport
        assert transport is not None
        authority = (f"[{host}]" if ":" in host else host) + f":{port}"
        lines = [b"CONNECT %s HTTP/1.1" % authority.encode("ascii")]
        lines.append(b"Host: %s" % authority.encode("ascii"))
        if proxy.authorization is not None:
            lines.append(b"Proxy-Authorization: %s" % proxy.authorization)
        transport.write(b"\r\n".join(lines) + b"\r\n\r\n")
        try:
            with deadline(timeout, f"timed out waiting for proxy {proxy.safe} to open a tunnel"):
                head = await self._head
        except ProxyError as exc:
            transport.abort()
            raise ProxyError(f"proxy {proxy.safe}, CONNECT {authority}: {exc}") from None
        except BaseException:
            transport.abort()
            raise
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if not (status_line.startswith("HTTP/1.") and 200 <= status < 300):
            transport.abort()
            raise ProxyError(
                f"proxy {proxy.safe} refused CONNECT {authority}: {status_line!r}",
                status_code=status or None,
            )
        if self._received:
            transport.abort()
            raise ProxyError(f"proxy {proxy.safe} sent data into the tunnel before TLS began")
