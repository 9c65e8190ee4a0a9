"""The proxies of tests/servers/proxies.py work, checked with raw sockets (not hyperhttp).

pproxy is spoken to by hand (HTTP, SOCKS5 per RFC 1928/1929, SOCKS4), RecordingProxy records what
it receives and forwards; both reach hypercorn or scripted servers on 127.0.0.1. Some tests pin
pproxy quirks that proxy tests of the client must allow for.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import ssl
import struct
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.conftest import PROXY_PASSWORD, PROXY_USER, Certs
from tests.servers.faults import Conn, ScriptedServer, respond
from tests.servers.hypercorn_app import HypercornServer, pattern
from tests.servers.proxies import PproxyServer, RecordingProxy, basic_credentials

AUTH = basic_credentials(PROXY_USER, PROXY_PASSWORD)


class Wire:
    """A blocking client socket (5 s timeout on every read) with a read buffer."""

    def __init__(self, sock: socket.socket) -> None:
        sock.settimeout(5)
        self.sock = sock
        self.buffer = b""

    @classmethod
    def to(cls, port: int) -> Wire:
        return cls(socket.create_connection(("127.0.0.1", port), timeout=5))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bytes:
        data = self.sock.recv(65536)
        self.buffer += data
        return data

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise EOFError(f"closed after {self.buffer!r}")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def until(self, delimiter: bytes) -> bytes:
        while delimiter not in self.buffer:
            if not self._fill():
                raise EOFError(f"closed after {self.buffer!r}")
        end = self.buffer.index(delimiter) + len(delimiter)
        data, self.buffer = self.buffer[:end], self.buffer[end:]
        return data

    def at_most(self, size: int) -> bytes:
        """``size`` bytes, or fewer if the other side closes first."""
        while len(self.buffer) < size and self._fill():
            pass
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def rest(self) -> bytes:
        """Everything until the other side closes."""
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data

    def response(self, method: str = "GET") -> tuple[bytes, bytes]:
        """One response: its head (through the blank line) and its de-chunked body."""
        head = self.until(b"\r\n\r\n")
        lower = head.lower()
        if method == "HEAD" or head.startswith((b"HTTP/1.1 1", b"HTTP/1.1 204", b"HTTP/1.1 304")):
            return head, b""
        if b"\r\ntransfer-encoding: chunked" in lower:
            body = b""
            while size := int(self.until(b"\r\n").split(b";")[0], 16):
                body += self.exactly(size + 2)[:-2]
            while self.until(b"\r\n") != b"\r\n":  # trailer fields, then the blank line
                pass
            return head, body
        if b"\r\ncontent-length:" in lower:
            length = int(lower.split(b"\r\ncontent-length:")[1].split(b"\r\n")[0])
            return head, self.exactly(length)
        return head, self.rest()

    def wrap(self, context: ssl.SSLContext, name: str = "127.0.0.1") -> Wire:
        """TLS over this socket (nothing may be buffered)."""
        assert not self.buffer
        return Wire(context.wrap_socket(self.sock, server_hostname=name))

    def close(self) -> None:
        self.sock.close()


def get(target: str, host: str, *fields: str, method: str = "GET", body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *fields]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def echoed(body: bytes) -> dict[str, Any]:
    """hypercorn's /echo answer, with its header names lower-cased into a dict."""
    payload: dict[str, Any] = json.loads(body)
    payload["fields"] = {name.lower(): value for name, value in payload["headers"]}
    return payload


def context_trusting(ca_path: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_path)


# -- pproxy: HTTP ------------------------------------------------------------------------------


def test_pproxy_http_forwards_an_absolute_form_request(
    pproxy_http: PproxyServer, hypercorn: HypercornServer
) -> None:
    assert pproxy_http.url == f"http://127.0.0.1:{pproxy_http.port}"
    wire = Wire.to(pproxy_http.port)
    authority = f"127.0.0.1:{hypercorn.port}"
    wire.send(get(f"http://{authority}/echo?x=1", authority))
    head, body = wire.response()
    assert head.startswith(b"HTTP/1.1 200 ")
    payload = echoed(body)
    assert (payload["path"], payload["query"]) == ("/echo", "x=1")
    wire.close()


def test_pproxy_http_auth_answers_407_without_credentials(
    pproxy_http_auth: PproxyServer, hypercorn: HypercornServer
) -> None:
    wire = Wire.to(pproxy_http_auth.port)
    authority = f"127.0.0.1:{hypercorn.port}"
    wire.send(get(f"http://{authority}/echo", authority))
    head, _ = wire.response()  # no Content-Length: pproxy closes after its 407
    assert head.startswith(b"HTTP/1.1 407 ")
    assert b'\r\nProxy-Authenticate: Basic realm="simple"' in head
    wire.close()


def test_pproxy_http_auth_forwards_with_credentials_and_strips_them(
    pproxy_http_auth: PproxyServer, hypercorn: HypercornServer
) -> None:
    assert pproxy_http_auth.url == (
        f"http://proxyuser:proxy%20pass%3Aword@127.0.0.1:{pproxy_http_auth.port}"
    )
    wire = Wire.to(pproxy_http_auth.port)
    authority = f"127.0.0.1:{hypercorn.port}"
    wire.send(get(f"http://{authority}/echo", authority, f"Proxy-Authorization: {AUTH}"))
    head, body = wire.response()
    assert head.startswith(b"HTTP/1.1 200 ")
    assert "proxy-authorization" not in echoed(body)["fields"]
    wire.close()


def test_pproxy_http_auth_is_asked_again_on_every_connection(
    pproxy_http_auth: PproxyServer, hypercorn: HypercornServer
) -> None:
    """pproxy would otherwise let every later connection from 127.0.0.1 in (``--auth=-1``)."""
    authority = f"127.0.0.1:{hypercorn.port}"
    first = Wire.to(pproxy_http_auth.port)
    first.send(get(f"http://{authority}/echo", authority, f"Proxy-Authorization: {AUTH}"))
    assert first.response()[0].startswith(b"HTTP/1.1 200 ")
    second = Wire.to(pproxy_http_auth.port)
    second.send(get(f"http://{authority}/echo", authority))
    assert second.response()[0].startswith(b"HTTP/1.1 407 ")
    first.close()
    second.close()


def test_pproxy_reads_proxy_authorization_only_with_that_exact_spelling(
    pproxy_http_auth: PproxyServer, hypercorn: HypercornServer
) -> None:
    """A pproxy quirk: field names are case-insensitive (RFC 9110), but pproxy's lookup is not."""
    authority = f"127.0.0.1:{hypercorn.port}"
    wire = Wire.to(pproxy_http_auth.port)
    wire.send(get(f"http://{authority}/echo", authority, f"proxy-authorization: {AUTH}"))
    assert wire.response()[0].startswith(b"HTTP/1.1 407 ")
    wire.close()


def test_pproxy_http_connect_then_http_inside_the_tunnel(
    pproxy_http: PproxyServer, hypercorn: HypercornServer
) -> None:
    wire = Wire.to(pproxy_http.port)
    authority = f"127.0.0.1:{hypercorn.port}"
    wire.send(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
    head = wire.until(b"\r\n\r\n")
    assert head == b"HTTP/1.1 200 Connection established\r\nConnection: close\r\n\r\n"
    for path in ("/echo", "/bytes/1000"):  # the tunnel is a plain TCP stream: keep-alive works
        wire.send(get(path, authority))
        head, body = wire.response()
        assert head.startswith(b"HTTP/1.1 200 ")
    assert body == pattern(1000)
    wire.close()


def test_pproxy_http_connect_with_credentials(
    pproxy_http_auth: PproxyServer, hypercorn: HypercornServer
) -> None:
    wire = Wire.to(pproxy_http_auth.port)
    authority = f"127.0.0.1:{hypercorn.port}"
    wire.send(
        f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
        f"Proxy-Authorization: {AUTH}\r\n\r\n".encode()
    )
    assert wire.until(b"\r\n\r\n").startswith(b"HTTP/1.1 200 ")
    wire.send(get("/echo", authority))
    assert wire.response()[0].startswith(b"HTTP/1.1 200 ")
    wire.close()


def test_pproxy_connect_to_a_closed_port_closes_without_an_answer(
    pproxy_http: PproxyServer, closed_port: int
) -> None:
    """A pproxy quirk: no 502, the connection just ends."""
    wire = Wire.to(pproxy_http.port)
    wire.send(f"CONNECT 127.0.0.1:{closed_port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert wire.rest() == b""
    wire.close()


def test_pproxy_https_forwards_for_a_client_trusting_the_ca(
    pproxy_https: PproxyServer, hypercorn: HypercornServer, certs: Certs
) -> None:
    assert pproxy_https.url == f"https://127.0.0.1:{pproxy_https.port}"
    wire = Wire.to(pproxy_https.port).wrap(context_trusting(certs.ca_path))
    authority = f"127.0.0.1:{hypercorn.port}"
    wire.send(get(f"http://{authority}/echo", authority))
    head, body = wire.response()
    assert head.startswith(b"HTTP/1.1 200 ") and echoed(body)["path"] == "/echo"
    wire.close()


# -- pproxy: SOCKS -----------------------------------------------------------------------------


def socks5_greet(wire: Wire, methods: bytes = b"\x00") -> bytes:
    """RFC 1928 section 3: version, methods offered; the proxy answers version and its choice."""
    wire.send(b"\x05" + bytes([len(methods)]) + methods)
    return wire.exactly(2)


def socks5_connect(wire: Wire, host: str, port: int) -> bytes:
    """RFC 1928 section 4: CONNECT to an IPv4 address (ATYP 1) or a name (ATYP 3)."""
    if host.replace(".", "").isdigit():
        address = b"\x01" + socket.inet_aton(host)
    else:
        address = b"\x03" + bytes([len(host)]) + host.encode("ascii")
    wire.send(b"\x05\x01\x00" + address + struct.pack("!H", port))
    reply = wire.exactly(4)  # VER REP RSV ATYP, then BND.ADDR and BND.PORT
    if reply[3] == 3:  # a name, after its length
        reply += wire.exactly(1)
    return reply + wire.exactly({1: 4, 4: 16}.get(reply[3], reply[-1]) + 2)


def socks5_login(wire: Wire, user: str, password: str) -> bytes:
    """RFC 1929: version 1, the user name and the password, each with its length."""
    name, secret = user.encode(), password.encode()
    wire.send(b"\x01" + bytes([len(name)]) + name + bytes([len(secret)]) + secret)
    return wire.at_most(2)  # VER STATUS; or nothing if the proxy just closes


def assert_http_through(wire: Wire, hypercorn: HypercornServer) -> None:
    wire.send(get("/echo", f"127.0.0.1:{hypercorn.port}"))
    head, body = wire.response()
    assert head.startswith(b"HTTP/1.1 200 ") and echoed(body)["path"] == "/echo"


def test_pproxy_socks5_to_an_ipv4_address(
    pproxy_socks5: PproxyServer, hypercorn: HypercornServer
) -> None:
    assert pproxy_socks5.url == f"socks5://127.0.0.1:{pproxy_socks5.port}"
    wire = Wire.to(pproxy_socks5.port)
    assert socks5_greet(wire) == b"\x05\x00"
    reply = socks5_connect(wire, "127.0.0.1", hypercorn.port)
    assert reply[:2] == b"\x05\x00"
    assert_http_through(wire, hypercorn)
    wire.close()


def test_pproxy_socks5_resolves_localhost_itself(
    pproxy_socks5: PproxyServer, hypercorn: HypercornServer
) -> None:
    """socks5h: the name goes to the proxy (ATYP 3), which resolves it (and tries each address:
    hypercorn is on 127.0.0.1 only, whatever order localhost resolves in)."""
    wire = Wire.to(pproxy_socks5.port)
    assert socks5_greet(wire) == b"\x05\x00"
    reply = socks5_connect(wire, "localhost", hypercorn.port)
    # pproxy echoes the requested address as BND.ADDR.
    assert reply == b"\x05\x00\x00\x03\x09localhost" + struct.pack("!H", hypercorn.port)
    assert_http_through(wire, hypercorn)
    wire.close()


def test_pproxy_socks5_grants_before_it_connects(
    pproxy_socks5: PproxyServer, closed_port: int
) -> None:
    """A pproxy quirk: success (REP 0) comes first; a refused target then just closes."""
    wire = Wire.to(pproxy_socks5.port)
    assert socks5_greet(wire) == b"\x05\x00"
    assert socks5_connect(wire, "127.0.0.1", closed_port)[:2] == b"\x05\x00"
    assert wire.rest() == b""
    wire.close()


def test_pproxy_socks5_auth_with_the_right_password(
    pproxy_socks5_auth: PproxyServer, hypercorn: HypercornServer
) -> None:
    assert pproxy_socks5_auth.url == (
        f"socks5://proxyuser:proxy%20pass%3Aword@127.0.0.1:{pproxy_socks5_auth.port}"
    )
    wire = Wire.to(pproxy_socks5_auth.port)
    assert socks5_greet(wire, b"\x00\x02") == b"\x05\x02"  # username/password chosen
    assert socks5_login(wire, PROXY_USER, PROXY_PASSWORD) == b"\x01\x00"
    assert socks5_connect(wire, "127.0.0.1", hypercorn.port)[:2] == b"\x05\x00"
    assert_http_through(wire, hypercorn)
    wire.close()


def test_pproxy_socks5_auth_refuses_a_wrong_password(pproxy_socks5_auth: PproxyServer) -> None:
    """RFC 1929 wants a non-zero status before the close; pproxy sends nothing and closes."""
    wire = Wire.to(pproxy_socks5_auth.port)
    assert socks5_greet(wire, b"\x02") == b"\x05\x02"
    assert socks5_login(wire, PROXY_USER, "wrong") == b""
    wire.close()


def test_pproxy_socks5_auth_refuses_a_client_without_credentials(
    pproxy_socks5_auth: PproxyServer,
) -> None:
    """RFC 1928 wants method X'FF' before the close; pproxy sends nothing and closes."""
    wire = Wire.to(pproxy_socks5_auth.port)
    wire.send(b"\x05\x01\x00")
    assert wire.rest() == b""
    wire.close()


def test_pproxy_socks4_to_an_ipv4_address(
    pproxy_socks4: PproxyServer, hypercorn: HypercornServer
) -> None:
    assert pproxy_socks4.url == f"socks4://127.0.0.1:{pproxy_socks4.port}"
    wire = Wire.to(pproxy_socks4.port)
    # VN 4, CD 1 (CONNECT), DSTPORT, DSTIP, USERID, NUL
    port = struct.pack("!H", hypercorn.port)
    wire.send(b"\x04\x01" + port + socket.inet_aton("127.0.0.1") + b"test\x00")
    reply = wire.exactly(8)
    assert reply[:2] == b"\x00\x5a"  # VN 0, CD 90: granted
    assert_http_through(wire, hypercorn)
    wire.close()


# -- RecordingProxy ----------------------------------------------------------------------------

Proxies = Callable[..., RecordingProxy]


def connect_head(authority: str, *fields: str) -> bytes:
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}", *fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def test_recording_proxy_records_a_connect_exactly_and_tunnels(
    recording_proxy: Proxies, hypercorn: HypercornServer
) -> None:
    proxy = recording_proxy()
    assert proxy.url == f"http://127.0.0.1:{proxy.port}"
    authority = f"127.0.0.1:{hypercorn.port}"
    request = connect_head(authority, "User-Agent: raw/1", "Proxy-Connection: keep-alive")
    wire = Wire.to(proxy.port)
    wire.send(request)
    assert wire.until(b"\r\n\r\n") == b"HTTP/1.1 200 Connection established\r\n\r\n"
    assert_http_through(wire, hypercorn)
    assert_http_through(wire, hypercorn)
    assert proxy.heads == [request]  # what travels inside the tunnel is not a head to it
    assert proxy.forwarded == []
    assert (proxy.accepted, proxy.upstream_connections) == (1, 1)
    wire.close()


def test_recording_proxy_connect_tunnel_ends_when_the_origin_closes(
    recording_proxy: Proxies, scripted: Callable[..., ScriptedServer]
) -> None:
    def script(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\n\r\nuntil close")
        conn.close()

    origin = scripted(script)
    proxy = recording_proxy()
    wire = Wire.to(proxy.port)
    wire.send(connect_head(f"127.0.0.1:{origin.port}"))
    wire.until(b"\r\n\r\n")
    wire.send(get("/", "x"))
    assert wire.response() == (b"HTTP/1.1 200 OK\r\n\r\n", b"until close")
    wire.close()


def test_recording_proxy_answers_407_to_a_connect_without_credentials(
    recording_proxy: Proxies, hypercorn: HypercornServer
) -> None:
    proxy = recording_proxy(require_auth=(PROXY_USER, PROXY_PASSWORD))
    authority = f"127.0.0.1:{hypercorn.port}"
    wire = Wire.to(proxy.port)
    wire.send(connect_head(authority))
    assert wire.rest() == (
        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
        b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n'
    )
    wire.close()
    wrong = Wire.to(proxy.port)
    wrong.send(connect_head(authority, f"Proxy-Authorization: {basic_credentials('a', 'b')}"))
    assert wrong.response()[0].startswith(b"HTTP/1.1 407 ")
    wrong.close()
    right = Wire.to(proxy.port)
    right.send(connect_head(authority, f"proxy-authorization: {AUTH}"))  # any case will do
    assert right.until(b"\r\n\r\n") == b"HTTP/1.1 200 Connection established\r\n\r\n"
    assert_http_through(right, hypercorn)
    right.close()
    assert proxy.upstream_connections == 1


def test_recording_proxy_refuses_connect_when_told_to(
    recording_proxy: Proxies, hypercorn: HypercornServer
) -> None:
    proxy = recording_proxy(refuse_connect="403 Forbidden")
    wire = Wire.to(proxy.port)
    wire.send(connect_head(f"127.0.0.1:{hypercorn.port}"))
    assert wire.rest() == b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
    assert proxy.upstream_connections == 0
    wire.close()


@pytest.mark.parametrize("target", ["example.com:443", "10.0.0.1:80", "127.0.0.2:80"])
def test_recording_proxy_reaches_nothing_but_loopback(
    recording_proxy: Proxies, target: str
) -> None:
    proxy = recording_proxy()
    wire = Wire.to(proxy.port)
    wire.send(connect_head(target))
    assert wire.rest().startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    wire.close()
    forwarding = Wire.to(proxy.port)
    forwarding.send(get(f"http://{target}/", target))
    assert forwarding.rest().startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    forwarding.close()
    assert proxy.upstream_connections == 0


def test_recording_proxy_connect_to_a_closed_port_is_502(
    recording_proxy: Proxies, closed_port: int
) -> None:
    proxy = recording_proxy()
    wire = Wire.to(proxy.port)
    wire.send(connect_head(f"localhost:{closed_port}"))
    assert wire.rest().startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    wire.close()


def test_recording_proxy_forwards_in_origin_form_without_proxy_authorization(
    recording_proxy: Proxies, hypercorn: HypercornServer
) -> None:
    proxy = recording_proxy(require_auth=(PROXY_USER, PROXY_PASSWORD))
    authority = f"127.0.0.1:{hypercorn.port}"
    request = get(
        f"http://{authority}/echo?q=1&r=two",
        authority,
        "X-Test: kept",
        f"Proxy-Authorization: {AUTH}",
        "Proxy-Connection: keep-alive",
    )
    wire = Wire.to(proxy.port)
    wire.send(request)
    head, body = wire.response()
    assert head.startswith(b"HTTP/1.1 200 ")
    assert proxy.heads == [request]
    assert proxy.forwarded == [
        (
            f"GET /echo?q=1&r=two HTTP/1.1\r\nHost: {authority}\r\nX-Test: kept\r\n"
            "Proxy-Connection: keep-alive\r\n\r\n"
        ).encode()
    ]
    payload = echoed(body)
    assert (payload["path"], payload["query"]) == ("/echo", "q=1&r=two")
    assert "proxy-authorization" not in payload["fields"]
    assert payload["fields"]["x-test"] == "kept"
    wire.close()


def test_recording_proxy_407_to_a_forwarded_request_keeps_the_connection(
    recording_proxy: Proxies, hypercorn: HypercornServer
) -> None:
    proxy = recording_proxy(require_auth=(PROXY_USER, PROXY_PASSWORD))
    authority = f"127.0.0.1:{hypercorn.port}"
    wire = Wire.to(proxy.port)
    wire.send(get(f"http://{authority}/echo", authority, method="POST", body=b"dropped"))
    head, _ = wire.response()
    assert head.startswith(b"HTTP/1.1 407 ")
    assert proxy.forwarded == []
    wire.send(get(f"http://{authority}/echo", authority, f"Proxy-Authorization: {AUTH}"))
    head, body = wire.response()
    assert head.startswith(b"HTTP/1.1 200 ") and echoed(body)["body"] == ""
    assert proxy.accepted == 1 and len(proxy.forwarded) == 1
    wire.close()


def test_recording_proxy_keeps_both_connections_alive_across_framings(
    recording_proxy: Proxies, hypercorn: HypercornServer
) -> None:
    """Content-Length and chunked bodies both ways, HEAD, then a second origin: one client
    connection throughout, one origin connection per origin."""
    proxy = recording_proxy()
    authority = f"127.0.0.1:{hypercorn.port}"
    base = f"http://{authority}"
    wire = Wire.to(proxy.port)
    wire.send(get(f"{base}/echo", authority, method="POST", body=b"with a length"))
    assert echoed(wire.response()[1])["body"] == "with a length"
    wire.send(
        get(f"{base}/echo", authority, "Transfer-Encoding: chunked", method="POST")
        + b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"
    )
    assert echoed(wire.response()[1])["body"] == "hello world"
    wire.send(get(f"{base}/chunked/5000", authority))
    head, body = wire.response()
    assert b"transfer-encoding: chunked" in head.lower() and body == pattern(5000)
    wire.send(get(f"{base}/bytes/10", authority, method="HEAD"))
    head, body = wire.response("HEAD")
    assert b"content-length: 10" in head.lower() and body == b""
    wire.send(get(f"{base}/bytes/70000", authority))
    assert wire.response()[1] == pattern(70000)
    assert (proxy.accepted, proxy.upstream_connections, len(proxy.forwarded)) == (1, 1, 5)
    via_localhost = f"localhost:{hypercorn.port}"
    wire.send(get(f"http://{via_localhost}/echo", via_localhost))
    assert echoed(wire.response()[1])["fields"]["host"] == via_localhost
    assert (proxy.accepted, proxy.upstream_connections) == (1, 2)
    wire.close()


def test_recording_proxy_relays_a_close_delimited_response_then_closes(
    recording_proxy: Proxies, scripted: Callable[..., ScriptedServer]
) -> None:
    def script(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\n\r\nto the end")
        conn.close()

    origin = scripted(script)
    proxy = recording_proxy()
    wire = Wire.to(proxy.port)
    wire.send(get(f"{origin.url}/", f"127.0.0.1:{origin.port}"))
    assert wire.rest() == b"HTTP/1.1 200 OK\r\n\r\nto the end"
    wire.close()


def test_recording_proxy_reopens_the_origin_after_connection_close(
    recording_proxy: Proxies, scripted: Callable[..., ScriptedServer]
) -> None:
    def script(conn: Conn) -> None:
        conn.read_request()
        conn.send(respond(body=b"once", headers=("Connection: close",)))
        conn.close()

    origin = scripted(script)
    proxy = recording_proxy()
    wire = Wire.to(proxy.port)
    for _ in range(2):
        wire.send(get(f"{origin.url}/", f"127.0.0.1:{origin.port}"))
        assert wire.response()[1] == b"once"
    assert (proxy.accepted, origin.accepted) == (1, 2)
    wire.close()


def test_recording_proxy_relays_100_continue(
    recording_proxy: Proxies, scripted: Callable[..., ScriptedServer]
) -> None:
    def script(conn: Conn) -> None:
        conn.read_head()
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = conn.sock.recv(4, socket.MSG_WAITALL)  # the client sends it after the 100
        conn.send(respond(body=b"got " + body))

    origin = scripted(script)
    proxy = recording_proxy()
    wire = Wire.to(proxy.port)
    wire.send(
        get(
            f"{origin.url}/",
            f"127.0.0.1:{origin.port}",
            "Expect: 100-continue",
            "Content-Length: 4",
            method="PUT",
        )
    )
    assert wire.until(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    wire.send(b"data")
    assert wire.response()[1] == b"got data"
    wire.close()


def test_recording_proxy_over_tls_for_a_client_trusting_the_ca(
    recording_proxy_tls: RecordingProxy, hypercorn: HypercornServer, certs: Certs
) -> None:
    proxy = recording_proxy_tls
    assert proxy.url == f"https://127.0.0.1:{proxy.port}" and proxy.ca_path == certs.ca_path
    context = context_trusting(certs.ca_path)
    authority = f"127.0.0.1:{hypercorn.port}"
    tunnel = Wire.to(proxy.port).wrap(context)
    tunnel.send(connect_head(authority))
    assert tunnel.until(b"\r\n\r\n") == b"HTTP/1.1 200 Connection established\r\n\r\n"
    assert_http_through(tunnel, hypercorn)
    tunnel.close()
    forwarding = Wire.to(proxy.port).wrap(context, name="localhost")
    forwarding.send(get(f"http://{authority}/bytes/70000", authority))
    assert forwarding.response()[1] == pattern(70000)
    forwarding.close()
    untrusting = Wire.to(proxy.port)
    with pytest.raises(ssl.SSLCertVerificationError):
        untrusting.wrap(context_trusting(certs.other_ca_path))
    untrusting.close()
    assert proxy.errors == []


async def test_recording_proxy_over_tls_carries_tls_to_the_origin(
    recording_proxy_tls: RecordingProxy, hypercorn_tls: HypercornServer, certs: Certs
) -> None:
    """TLS inside TLS: an https origin through the https proxy (asyncio streams, start_tls)."""
    if sys.version_info < (3, 11):
        pytest.skip("StreamWriter.start_tls is new in Python 3.11")
    context = context_trusting(certs.ca_path)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", recording_proxy_tls.port, ssl=context
    )
    authority = f"127.0.0.1:{hypercorn_tls.port}"
    writer.write(connect_head(authority))
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 200 Connection established\r\n\r\n"
    await writer.start_tls(context, server_hostname="127.0.0.1")
    writer.write(get("/bytes/1000", authority, "Connection: close"))
    response = await asyncio.wait_for(reader.read(), 5)
    assert response.startswith(b"HTTP/1.1 200 ") and response.endswith(pattern(1000))
    writer.close()


def test_basic_credentials_keep_spaces_and_colons() -> None:
    value = basic_credentials(PROXY_USER, PROXY_PASSWORD)
    assert base64.b64decode(value.removeprefix("Basic ")) == b"proxyuser:proxy pass:word"
