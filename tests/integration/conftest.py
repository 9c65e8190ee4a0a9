"""Integration fixtures: real servers on 127.0.0.1, and every async test on both event loops."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import uvloop

import hyperhttp
from tests.servers.auth_app import AuthApp
from tests.servers.dns import DNSServer
from tests.servers.faults import Script, ScriptedServer
from tests.servers.hypercorn_app import HypercornServer


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Any]:
    """Users run both loops and they differ in buffering, TLS and error details: test both."""
    return {"asyncio": asyncio.SelectorEventLoop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(scope="session")
def hypercorn() -> Iterator[HypercornServer]:
    server = HypercornServer().start()
    yield server
    server.stop()


@pytest.fixture
def scripted() -> Iterator[Callable[[Script], ScriptedServer]]:
    """Start scripted servers for one test; they are all stopped when it ends."""
    servers: list[ScriptedServer] = []

    def start(script: Script) -> ScriptedServer:
        server = ScriptedServer(script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def dns_server() -> Iterator[DNSServer]:
    """A DNS server on 127.0.0.1 answering from a table the test fills, counting queries."""
    server = DNSServer()
    yield server
    server.close()


class Certs:
    """A trustme CA with a server certificate (localhost, 127.0.0.1, ::1) and a client one."""

    def __init__(self, directory: Path) -> None:
        import trustme

        self.ca = trustme.CA()
        self.ca_path = str(directory / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_path)
        server = self.ca.issue_cert("localhost", "127.0.0.1", "::1")
        self.server_cert = str(directory / "server.pem")
        self.server_key = str(directory / "server.key")
        server.cert_chain_pems[0].write_to_path(self.server_cert)
        for extra in server.cert_chain_pems[1:]:
            extra.write_to_path(self.server_cert, append=True)
        server.private_key_pem.write_to_path(self.server_key)
        client = self.ca.issue_cert("client@hyperhttp.test")
        self.client_cert = str(directory / "client.pem")
        self.client_key = str(directory / "client.key")
        self.client_combined = str(directory / "client-combined.pem")
        client.cert_chain_pems[0].write_to_path(self.client_cert)
        client.private_key_pem.write_to_path(self.client_key)
        client.private_key_and_cert_chain_pem.write_to_path(self.client_combined)
        named = self.ca.issue_cert("localhost")  # no IP address among its names
        self.name_only_cert = str(directory / "name-only.pem")
        self.name_only_key = str(directory / "name-only.key")
        named.cert_chain_pems[0].write_to_path(self.name_only_cert)
        named.private_key_pem.write_to_path(self.name_only_key)
        other = trustme.CA()
        self.other_ca_path = str(directory / "other-ca.pem")
        other.cert_pem.write_to_path(self.other_ca_path)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def hypercorn_tls(certs: Certs) -> Iterator[HypercornServer]:
    """hypercorn over TLS (ALPN h2 and http/1.1) with a certificate from ``certs.ca``."""
    server = HypercornServer(certs.server_cert, certs.server_key).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def hypercorn_h2(certs: Certs) -> Iterator[HypercornServer]:
    """hypercorn over TLS allowing 250 concurrent HTTP/2 streams per connection."""
    server = HypercornServer(certs.server_cert, certs.server_key, h2_max_streams=250).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def hypercorn_mtls(certs: Certs) -> Iterator[HypercornServer]:
    """hypercorn over TLS that requires a client certificate signed by ``certs.ca``."""
    server = HypercornServer(certs.server_cert, certs.server_key, certs.ca_path).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def auth_server() -> Iterator[HypercornServer]:
    """hypercorn serving AuthApp: Basic, Bearer and Digest checked by the server itself."""
    server = HypercornServer(app=AuthApp()).start()
    yield server
    server.stop()


@pytest.fixture
def app(auth_server: HypercornServer) -> AuthApp:
    app = auth_server.app
    assert isinstance(app, AuthApp)
    app.reset()
    return app


@contextlib.asynccontextmanager
async def kept_busy(client: hyperhttp.Client, url: str, tasks: int) -> AsyncIterator[None]:
    """While the block runs, ``tasks`` tasks request ``url`` (reading each body) without pause:
    an origin that always has requests queued, beside which a test makes its own."""
    stop = asyncio.Event()

    async def busy() -> None:
        while not stop.is_set():
            await (await client.get(url)).aread()

    workers = [asyncio.ensure_future(busy()) for _ in range(tasks)]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*workers)


def crlf_on_bad_path(request: hyperhttp.Request) -> None:
    """A request hook that sets a field with CR LF on requests to /bad: the request is refused
    when it is sent, after the hooks ran (what a hook, an auth flow or a cookie may do)."""
    if request.url.path == "/bad":
        request.headers["X-Injected"] = "a\r\nEvil: 1"


# -- proxies (tests/servers/proxies.py) ---------------------------------------------------------
# Imported here, not at the top, so that this section can be appended on its own.
from tests.servers.proxies import PproxyServer, RecordingProxy  # noqa: E402

PROXY_USER = "proxyuser"
PROXY_PASSWORD = "proxy pass:word"  # a space and a colon: both must survive every encoding


def _pproxy(scheme: str, auth: bool = False, **options: Any) -> Iterator[PproxyServer]:
    server = PproxyServer(scheme, (PROXY_USER, PROXY_PASSWORD) if auth else None, **options)
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def pproxy_http() -> Iterator[PproxyServer]:
    """pproxy as an HTTP proxy: absolute-form forwarding and CONNECT, no credentials."""
    yield from _pproxy("http")


@pytest.fixture(scope="session")
def pproxy_http_auth() -> Iterator[PproxyServer]:
    """pproxy as an HTTP proxy answering 407 without Basic PROXY_USER:PROXY_PASSWORD."""
    yield from _pproxy("http", auth=True)


@pytest.fixture(scope="session")
def pproxy_https(certs: Certs) -> Iterator[PproxyServer]:
    """pproxy as an HTTP proxy over TLS (an https:// proxy), certificate from ``certs.ca``."""
    yield from _pproxy("http", tls=(certs.server_cert, certs.server_key))


@pytest.fixture(scope="session")
def pproxy_socks5() -> Iterator[PproxyServer]:
    """pproxy as a SOCKS5 proxy without authentication."""
    yield from _pproxy("socks5")


@pytest.fixture(scope="session")
def pproxy_socks5_auth() -> Iterator[PproxyServer]:
    """pproxy as a SOCKS5 proxy requiring RFC 1929 PROXY_USER / PROXY_PASSWORD."""
    yield from _pproxy("socks5", auth=True)


@pytest.fixture(scope="session")
def pproxy_socks4() -> Iterator[PproxyServer]:
    """pproxy as a SOCKS4 proxy (IPv4 addresses only: pproxy does not read SOCKS4a names)."""
    yield from _pproxy("socks4")


@pytest.fixture
def recording_proxy() -> Iterator[Callable[..., RecordingProxy]]:
    """Start RecordingProxy(require_auth=, refuse_connect=, tls=, ca_path=) for one test; they
    are all stopped when it ends."""
    proxies: list[RecordingProxy] = []

    def start(**options: Any) -> RecordingProxy:
        proxy = RecordingProxy(**options)
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()
    assert not [proxy.errors for proxy in proxies if proxy.errors], "RecordingProxy failed"


@pytest.fixture
def recording_proxy_tls(certs: Certs) -> Iterator[RecordingProxy]:
    """RecordingProxy over TLS (https://127.0.0.1:PORT) with the session's ``certs`` server
    certificate; its ``ca_path`` is ``certs.ca_path``."""
    proxy = RecordingProxy(tls=(certs.server_cert, certs.server_key), ca_path=certs.ca_path)
    yield proxy
    proxy.stop()
    assert not proxy.errors, "RecordingProxy failed"
