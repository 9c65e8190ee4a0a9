"""Proxies end to end: pproxy (a real proxy: HTTP forwarding, CONNECT, SOCKS4/5) and our
RecordingProxy (which records exactly what it was sent), in front of hypercorn.

Credentials in these tests are distinctive (``proxy pass:word``), and every message, repr, log
line and stats key is checked for them."""

from __future__ import annotations

import base64
import logging
import socket
from typing import Any, Callable

import pytest

import hyperhttp
from hyperhttp import Client, ProxyError, ProxyURL
from hyperhttp.net.dns import AiodnsResolver, Resolver
from tests.integration.conftest import PROXY_PASSWORD, PROXY_USER, Certs
from tests.servers.hypercorn_app import HypercornServer, pattern
from tests.servers.proxies import PproxyServer, RecordingProxy

SECRET_WORDS = ("proxy pass:word", "proxy%20pass", "proxyuser", "cHJveHl1c2Vy")  # b64 of user


def with_credentials(url: str, user: str = PROXY_USER, password: str = PROXY_PASSWORD) -> str:
    scheme, _, rest = url.partition("://")
    quoted = password.replace("%", "%25").replace(" ", "%20").replace(":", "%3A")
    return f"{scheme}://{user}:{quoted}@{rest}"


def basic(user: str = PROXY_USER, password: str = PROXY_PASSWORD) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


def assert_no_secret(text: str) -> None:
    for word in SECRET_WORDS:
        assert word not in text, f"{word!r} leaked into {text!r}"


async def echo(client: Client, url: str, **kwargs: Any) -> dict[str, Any]:
    response = await client.get(url, **kwargs)
    await response.aread()
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def echoed_headers(result: dict[str, Any]) -> dict[str, str]:
    return {name.lower(): value for name, value in result["headers"]}


# -- HTTP proxies: forwarding for http://, CONNECT for https:// ------------------------------


async def test_http_urls_go_in_absolute_form_and_reuse_the_proxy_connection(
    recording_proxy: Callable[..., RecordingProxy], hypercorn: HypercornServer
) -> None:
    proxy = recording_proxy()
    async with Client(proxies=proxy.url) as client:
        for _ in range(2):
            result = await echo(client, f"{hypercorn.url}/echo?x=1")
            assert (result["path"], result["query"]) == ("/echo", "x=1")
        stats = client.get_pool_stats()
    authority = hypercorn.url.split("://")[1]
    assert proxy.heads[0].startswith(
        f"GET http://{authority}/echo?x=1 HTTP/1.1\r\nHost: {authority}\r\n".encode()
    )
    assert len(proxy.heads) == 2 and proxy.accepted == 1  # one connection to the proxy
    assert proxy.forwarded[0].startswith(b"GET /echo?x=1 HTTP/1.1\r\n")
    assert list(stats) == [f"{hypercorn.url} via {proxy.url}"]
    assert stats[f"{hypercorn.url} via {proxy.url}"]["requests"] == 2


async def test_proxy_credentials_reach_the_proxy_only(
    recording_proxy: Callable[..., RecordingProxy],
    hypercorn: HypercornServer,
    hypercorn_tls: HypercornServer,
    certs: Certs,
) -> None:
    proxy = recording_proxy(require_auth=(PROXY_USER, PROXY_PASSWORD))
    async with Client(proxies=with_credentials(proxy.url), verify=certs.ca_path) as client:
        forwarded = await echo(client, f"{hypercorn.url}/echo")
        tunnelled = await echo(client, f"{hypercorn_tls.url}/echo")
    field = b"Proxy-Authorization: " + basic() + b"\r\n"
    assert all(field in head for head in proxy.heads)
    authority = hypercorn_tls.url.split("://")[1].encode()
    connect = [head for head in proxy.heads if head.startswith(b"CONNECT")]
    assert connect == [b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (authority, authority, field)]
    assert "proxy-authorization" not in echoed_headers(forwarded)
    assert "proxy-authorization" not in echoed_headers(tunnelled)
    assert all(b"proxy-authorization" not in head.lower() for head in proxy.forwarded)


async def test_https_through_connect_speaks_http2_inside_the_tunnel(
    pproxy_http: PproxyServer, hypercorn_tls: HypercornServer, certs: Certs
) -> None:
    async with Client(proxies=pproxy_http.url, verify=certs.ca_path, http2=True) as client:
        responses = [await client.get(f"{hypercorn_tls.url}/bytes/{n}") for n in (10, 70_000)]
        for response, n in zip(responses, (10, 70_000), strict=True):
            assert response.http_version == "HTTP/2"
            assert await response.aread() == pattern(n)
        stats = client.get_pool_stats()[f"{hypercorn_tls.url} via {pproxy_http.url}"]
    assert (stats["connections"], stats["requests"]) == (1, 2)


async def test_pproxy_forwards_http_urls(
    pproxy_http: PproxyServer, hypercorn: HypercornServer
) -> None:
    async with Client(proxies=pproxy_http.url) as client:
        result = await echo(client, f"{hypercorn.url}/echo?via=pproxy")
    assert result["query"] == "via=pproxy"


@pytest.mark.parametrize("target", ["http", "https"])
async def test_pproxy_with_credentials_accepts_them_and_refuses_without(
    pproxy_http_auth: PproxyServer,
    hypercorn: HypercornServer,
    hypercorn_tls: HypercornServer,
    certs: Certs,
    target: str,
) -> None:
    url = f"{(hypercorn if target == 'http' else hypercorn_tls).url}/bytes/5"
    async with Client(proxies=pproxy_http_auth.url, verify=certs.ca_path) as client:
        assert await (await client.get(url)).aread() == pattern(5)
    bare = pproxy_http_auth.url.replace(pproxy_http_auth.url.split("@")[0] + "@", "http://")
    async with Client(proxies=bare, verify=certs.ca_path) as client:
        with pytest.raises(ProxyError) as refused:
            await client.get(url)
    assert refused.value.status_code == 407
    assert "407" in str(refused.value)


async def test_a_407_to_connect_or_to_a_forwarded_request_is_a_proxy_error(
    recording_proxy: Callable[..., RecordingProxy],
    hypercorn: HypercornServer,
    hypercorn_tls: HypercornServer,
    certs: Certs,
) -> None:
    proxy = recording_proxy(require_auth=(PROXY_USER, PROXY_PASSWORD))
    wrong = with_credentials(proxy.url, password="not it")
    async with Client(proxies=wrong, verify=certs.ca_path) as client:
        for url in (f"{hypercorn_tls.url}/echo", f"{hypercorn.url}/echo"):
            with pytest.raises(ProxyError) as refused:
                await client.get(url)
            assert refused.value.status_code == 407
            assert_no_secret(str(refused.value))
            assert "not it" not in str(refused.value)
        stats = client.get_pool_stats()[f"{hypercorn.url} via {proxy.url}"]
        assert stats["in_use"] == 0  # the refused request holds nothing


async def test_a_refused_connect_is_a_proxy_error_with_its_status(
    recording_proxy: Callable[..., RecordingProxy], hypercorn_tls: HypercornServer, certs: Certs
) -> None:
    proxy = recording_proxy(refuse_connect="403 Forbidden")
    async with Client(proxies=proxy.url, verify=certs.ca_path) as client:
        with pytest.raises(ProxyError, match="403 Forbidden") as refused:
            await client.get(f"{hypercorn_tls.url}/echo")
    assert refused.value.status_code == 403


async def test_a_proxy_that_is_down_is_a_connect_error_naming_it(
    closed_port: int, hypercorn: HypercornServer
) -> None:
    proxy = f"http://{PROXY_USER}:secret@127.0.0.1:{closed_port}"
    async with Client(proxies=proxy) as client:
        with pytest.raises(hyperhttp.ConnectError) as failed:
            await client.get(f"{hypercorn.url}/echo")
    message = str(failed.value)
    assert f"proxy 127.0.0.1:{closed_port}" in message
    assert "secret" not in message and PROXY_USER not in message


async def test_an_https_proxy_gets_tls_itself_for_both_routes(
    recording_proxy_tls: RecordingProxy,
    hypercorn: HypercornServer,
    hypercorn_tls: HypercornServer,
    certs: Certs,
) -> None:
    async with Client(proxies=recording_proxy_tls.url, verify=certs.ca_path) as client:
        forwarded = await echo(client, f"{hypercorn.url}/echo")
        tunnelled = await client.get(f"{hypercorn_tls.url}/bytes/100")  # TLS inside TLS
        assert await tunnelled.aread() == pattern(100)
    assert forwarded["path"] == "/echo"
    assert [head.split(b" ", 1)[0] for head in recording_proxy_tls.heads] == [b"GET", b"CONNECT"]


async def test_pooled_apart_from_direct_and_from_other_proxies(
    recording_proxy: Callable[..., RecordingProxy], hypercorn: HypercornServer
) -> None:
    first, second = recording_proxy(), recording_proxy()
    routes = {f"http://127.0.0.1:{hypercorn.port}": first.url, "all": second.url}
    async with Client(proxies=routes) as client:
        await echo(client, f"{hypercorn.url}/echo")  # its own route: the first proxy
        await echo(client, f"http://localhost:{hypercorn.port}/echo")  # "all": the second
        keys = set(client.get_pool_stats())
    async with Client() as direct:
        await echo(direct, f"{hypercorn.url}/echo")
        assert list(direct.get_pool_stats()) == [hypercorn.url]
    assert keys == {
        f"{hypercorn.url} via {first.url}",
        f"http://localhost:{hypercorn.port} via {second.url}",
    }
    assert (len(first.heads), len(second.heads)) == (1, 1)


async def test_none_in_the_mapping_sends_that_scheme_direct(
    recording_proxy: Callable[..., RecordingProxy], hypercorn: HypercornServer
) -> None:
    proxy = recording_proxy()
    async with Client(proxies={"http": None, "all": proxy.url}) as client:
        await echo(client, f"{hypercorn.url}/echo")
    assert proxy.heads == []


# -- SOCKS -----------------------------------------------------------------------------------


class RecordingResolver(Resolver):
    def __init__(self) -> None:
        self.inner = AiodnsResolver()
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int) -> list[Any]:
        self.asked.append(host)
        return await self.inner.resolve(host, port)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("fixture", ["pproxy_socks5", "pproxy_socks5_auth", "pproxy_socks4"])
async def test_socks_to_http_and_https(
    request: pytest.FixtureRequest,
    fixture: str,
    hypercorn: HypercornServer,
    hypercorn_tls: HypercornServer,
    certs: Certs,
) -> None:
    proxy: PproxyServer = request.getfixturevalue(fixture)
    async with Client(proxies=proxy.url, verify=certs.ca_path) as client:
        assert (await echo(client, f"{hypercorn.url}/echo"))["path"] == "/echo"
        response = await client.get(f"{hypercorn_tls.url}/bytes/7")
        assert response.http_version == "HTTP/2"  # ALPN through the SOCKS tunnel
        assert await response.aread() == pattern(7)
        assert_no_secret(" ".join(client.get_pool_stats()))


async def test_socks5_with_a_wrong_password_is_refused(
    pproxy_socks5_auth: PproxyServer, hypercorn: HypercornServer
) -> None:
    wrong = pproxy_socks5_auth.url.replace("proxy%20pass%3Aword", "wrong")
    async with Client(proxies=wrong) as client:
        with pytest.raises(ProxyError) as refused:
            await client.get(f"{hypercorn.url}/echo")
    assert_no_secret(str(refused.value))
    assert "wrong" not in str(refused.value)


@pytest.mark.parametrize(("scheme", "we_resolve"), [("socks5h", False), ("socks5", True)])
async def test_socks5h_lets_the_proxy_resolve_socks5_resolves_here(
    pproxy_socks5: PproxyServer, hypercorn: HypercornServer, scheme: str, we_resolve: bool
) -> None:
    resolver = RecordingResolver()
    proxy = pproxy_socks5.url.replace("socks5://", f"{scheme}://")
    async with Client(proxies=proxy, resolver=resolver) as client:
        result = await echo(client, f"http://localhost:{hypercorn.port}/echo")
    resolver.close()
    assert echoed_headers(result)["host"] == f"localhost:{hypercorn.port}"
    assert ("localhost" in resolver.asked) is we_resolve


# -- the environment ---------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("variable", "target"),
    [
        ("HTTP_PROXY", "http"),
        ("http_proxy", "http"),
        ("HTTPS_PROXY", "https"),
        ("https_proxy", "https"),
        ("ALL_PROXY", "http"),
        ("all_proxy", "https"),
    ],
)
async def test_each_proxy_variable_is_honoured_and_trust_env_false_ignores_it(
    clean_env: pytest.MonkeyPatch,
    recording_proxy: Callable[..., RecordingProxy],
    hypercorn: HypercornServer,
    hypercorn_tls: HypercornServer,
    certs: Certs,
    variable: str,
    target: str,
) -> None:
    proxy = recording_proxy()
    clean_env.setenv(variable, proxy.url)
    url = f"{(hypercorn if target == 'http' else hypercorn_tls).url}/echo"
    async with Client(verify=certs.ca_path) as client:
        await echo(client, url)
    assert len(proxy.heads) == 1
    async with Client(verify=certs.ca_path, trust_env=False) as client:
        await echo(client, url)
    assert len(proxy.heads) == 1  # not through the proxy this time


@pytest.mark.parametrize(
    "no_proxy",
    ["*", "127.0.0.1", "127.0.0.0/8", "localhost,127.0.0.1", ".0.0.1", "PORT", "example.com"],
)
async def test_no_proxy_sends_matching_hosts_direct(
    clean_env: pytest.MonkeyPatch,
    recording_proxy: Callable[..., RecordingProxy],
    hypercorn: HypercornServer,
    no_proxy: str,
) -> None:
    proxy = recording_proxy()
    clean_env.setenv("HTTP_PROXY", proxy.url)
    clean_env.setenv("NO_PROXY", no_proxy.replace("PORT", f"127.0.0.1:{hypercorn.port}"))
    async with Client() as client:
        await echo(client, f"{hypercorn.url}/echo")
    through_proxy = no_proxy in (".0.0.1", "example.com")  # neither matches 127.0.0.1
    assert len(proxy.heads) == (1 if through_proxy else 0)


@pytest.mark.parametrize(
    ("no_proxy", "direct"),
    [
        ("localhost", True),
        (".localhost", True),
        ("LOCALHOST", True),
        ("localhost:PORT", True),
        ("localhost:1", False),
        ("host", False),  # a suffix of the name, not a domain of it
        ("127.0.0.1", False),  # an address never matches a name (nothing is resolved)
    ],
)
async def test_no_proxy_names_domains_and_ports(
    clean_env: pytest.MonkeyPatch,
    recording_proxy: Callable[..., RecordingProxy],
    hypercorn: HypercornServer,
    no_proxy: str,
    direct: bool,
) -> None:
    proxy = recording_proxy()
    clean_env.setenv("http_proxy", proxy.url)
    clean_env.setenv("no_proxy", no_proxy.replace("PORT", str(hypercorn.port)))
    async with Client() as client:
        await echo(client, f"http://localhost:{hypercorn.port}/echo")
    assert len(proxy.heads) == (0 if direct else 1)


async def test_explicit_proxies_ignore_the_environment(
    clean_env: pytest.MonkeyPatch,
    recording_proxy: Callable[..., RecordingProxy],
    hypercorn: HypercornServer,
) -> None:
    from_env, given = recording_proxy(), recording_proxy()
    clean_env.setenv("HTTP_PROXY", from_env.url)
    async with Client(proxies=given.url) as client:
        await echo(client, f"{hypercorn.url}/echo")
    assert (len(from_env.heads), len(given.heads)) == (0, 1)


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "SSL_CERT_DIR"])
async def test_ssl_cert_variables_are_trusted_when_verify_is_left_alone(
    clean_env: pytest.MonkeyPatch,
    hypercorn_tls: HypercornServer,
    certs: Certs,
    tmp_path: Any,
    variable: str,
) -> None:
    if variable == "SSL_CERT_FILE":
        clean_env.setenv(variable, certs.ca_path)
    else:  # a hashed directory, as OpenSSL reads it
        import shutil
        import subprocess

        shutil.copy(certs.ca_path, tmp_path / "ca.pem")
        subprocess.run(["openssl", "rehash", str(tmp_path)], check=True, capture_output=True)
        clean_env.setenv(variable, str(tmp_path))
    async with Client() as client:
        assert (await client.get(f"{hypercorn_tls.url}/bytes/3")).status_code == 200
    async with Client(trust_env=False) as client:
        with pytest.raises(hyperhttp.TLSError):
            await client.get(f"{hypercorn_tls.url}/bytes/3")


# -- credentials are never shown -----------------------------------------------------------------


async def test_credentials_appear_in_no_repr_message_log_or_stats_key(
    recording_proxy: Callable[..., RecordingProxy],
    hypercorn: HypercornServer,
    hypercorn_tls: HypercornServer,
    certs: Certs,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = recording_proxy(require_auth=(PROXY_USER, PROXY_PASSWORD))
    url = with_credentials(proxy.url)
    parsed = ProxyURL.from_url(url)
    shown = [repr(parsed), str(parsed), parsed.safe]
    caplog.set_level(logging.DEBUG, logger="hyperhttp")
    async with Client(proxies=url, verify=certs.ca_path) as client:
        await echo(client, f"{hypercorn.url}/echo")
        await echo(client, f"{hypercorn_tls.url}/echo")
        shown += list(client.get_pool_stats())
    async with Client(proxies=with_credentials(proxy.url, password="wrong")) as client:
        with pytest.raises(ProxyError) as refused:
            await client.get(f"{hypercorn_tls.url}/echo")
        shown.append(str(refused.value))
    shown += [record.getMessage() for record in caplog.records]
    assert any("through" in line and proxy.url in line for line in shown)  # the log names it
    for text in shown:
        assert_no_secret(text)
        assert "wrong" not in text


async def test_an_unknown_proxy_scheme_is_refused_without_showing_credentials() -> None:
    with pytest.raises(hyperhttp.InvalidURL) as refused:
        Client(proxies=f"ftp://{PROXY_USER}:secret@127.0.0.1:21")
    assert "secret" not in str(refused.value) and PROXY_USER not in str(refused.value)


def test_socket_module_is_not_patched() -> None:
    assert socket.socket.__module__ == "socket"  # python-socks works on real sockets


async def test_the_guides_proxies_example(
    clean_env: pytest.MonkeyPatch,
    recording_proxy: Callable[..., RecordingProxy],
    hypercorn: HypercornServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.integration.test_guide_examples import _run, examples

    proxy = recording_proxy()
    await _run(examples()["proxies"], PROXY=proxy.url, PORT=hypercorn.port)
    assert len(proxy.heads) == 1 and b"127.0.0.1" in proxy.heads[0]
    printed = capsys.readouterr().out
    assert f"via {proxy.url}" in printed and f"'http://localhost:{hypercorn.port}'" in printed


# -- proxies that misbehave --------------------------------------------------------------------


def _answers_connect_with(data: bytes | None) -> Callable[[Any], None]:
    def script(conn: Any) -> None:
        if conn.read_head() is None:
            return
        if data is None:
            conn.stall()  # never answers
        else:
            conn.send(data)
            conn.close()

    return script


async def test_a_proxy_that_never_answers_connect_times_out(
    scripted: Callable[..., Any], hypercorn_tls: HypercornServer
) -> None:
    proxy = scripted(_answers_connect_with(None))
    async with Client(proxies=proxy.url, connect_timeout=0.2) as client:
        with pytest.raises(hyperhttp.ConnectTimeout, match="tunnel"):
            await client.get(f"{hypercorn_tls.url}/echo")
        assert client.get_pool_stats()[f"{hypercorn_tls.url} via {proxy.url}"]["connections"] == 0


@pytest.mark.parametrize(
    "answer",
    [b"SSH-2.0-OpenSSH_9.0\r\n\r\n", b"HTTP/1.1 200 OK\r\n", b"HTTP/1.1 200 OK\r\n\r\nearly"],
    ids=["not-http", "closed-mid-head", "data-before-tls"],
)
async def test_a_proxy_answering_connect_wrongly_is_a_proxy_error(
    scripted: Callable[..., Any], hypercorn_tls: HypercornServer, answer: bytes
) -> None:
    proxy = scripted(_answers_connect_with(answer))
    async with Client(proxies=proxy.url) as client:
        with pytest.raises(ProxyError):
            await client.get(f"{hypercorn_tls.url}/echo")
