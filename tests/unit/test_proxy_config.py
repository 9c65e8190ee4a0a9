"""Proxy URLs, proxy routes, NO_PROXY and the environment: pure policy, no sockets."""

from __future__ import annotations

import copy
import pickle

import pytest

from hyperhttp._url import URL
from hyperhttp.exceptions import InvalidURL
from hyperhttp.net.proxy import (
    ProxyRoutes,
    ProxyURL,
    no_proxy_matches,
    parse_no_proxy,
    ssl_paths_from_env,
)

USER = "zyxuser"
SECRET = "qwpassword"
WITH_AUTH = f"http://{USER}:{SECRET}@proxy.corp:3128"


def parts(proxy: ProxyURL) -> tuple[object, ...]:
    return (proxy.scheme, proxy.host, proxy.port, proxy.username, proxy.password)


def route(routes: ProxyRoutes | None, url: str) -> ProxyURL | None:
    assert routes is not None
    return routes.proxy_for(URL(url))


# -- ProxyURL parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://proxy.corp", ("http", "proxy.corp", 80, None, None)),
        ("https://proxy.corp", ("https", "proxy.corp", 443, None, None)),
        ("socks4://proxy.corp", ("socks4", "proxy.corp", 1080, None, None)),
        ("socks4a://proxy.corp", ("socks4a", "proxy.corp", 1080, None, None)),
        ("socks5://proxy.corp", ("socks5", "proxy.corp", 1080, None, None)),
        ("socks5h://proxy.corp", ("socks5h", "proxy.corp", 1080, None, None)),
        ("http://proxy.corp:3128", ("http", "proxy.corp", 3128, None, None)),
        ("HTTPS://Proxy.Corp:8443/", ("https", "proxy.corp", 8443, None, None)),
        ("SOCKS5H://proxy.corp:9050", ("socks5h", "proxy.corp", 9050, None, None)),
        ("http://[::1]:3128", ("http", "::1", 3128, None, None)),
        ("http://[2001:DB8::1]", ("http", "2001:db8::1", 80, None, None)),
        ("  http://proxy.corp:3128  ", ("http", "proxy.corp", 3128, None, None)),
    ],
)
def test_schemes_and_default_ports(value: str, expected: tuple[object, ...]) -> None:
    assert parts(ProxyURL.from_url(value)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:3128", ("http", "127.0.0.1", 3128, None, None)),
        ("proxy.corp:8080", ("http", "proxy.corp", 8080, None, None)),
        ("proxy.corp", ("http", "proxy.corp", 80, None, None)),
        ("[::1]:3128", ("http", "::1", 3128, None, None)),
        ("alice:pw@proxy.corp:8080", ("http", "proxy.corp", 8080, "alice", "pw")),
    ],
)
def test_a_url_without_scheme_is_an_http_proxy(value: str, expected: tuple[object, ...]) -> None:
    assert parts(ProxyURL.from_url(value)) == expected


def test_credentials_are_percent_decoded() -> None:
    proxy = ProxyURL.from_url("http://user%40corp:p%3Ass@proxy.corp:3128")
    assert (proxy.username, proxy.password) == ("user@corp", "p:ss")
    assert proxy.has_auth is True


def test_credentials_shapes() -> None:
    assert parts(ProxyURL.from_url("http://alice@p")) == ("http", "p", 80, "alice", None)
    assert parts(ProxyURL.from_url("http://alice:@p")) == ("http", "p", 80, "alice", "")
    assert parts(ProxyURL.from_url("http://@p")) == ("http", "p", 80, None, None)
    assert ProxyURL.from_url("http://@p").has_auth is False
    assert ProxyURL.from_url("http://p").has_auth is False


def test_from_url_returns_a_proxy_url_as_it_is() -> None:
    proxy = ProxyURL("http", "p", 3128)
    assert ProxyURL.from_url(proxy) is proxy


def test_constructor_normalises_and_validates() -> None:
    proxy = ProxyURL("HTTP", "[::1]", 3128, "u", "p", raw="http://u:p@[::1]:3128")
    assert parts(proxy) == ("http", "::1", 3128, "u", "p")
    with pytest.raises(InvalidURL, match="'ftp'"):
        ProxyURL("ftp", "p", 21)
    with pytest.raises(InvalidURL, match="port"):
        ProxyURL("http", "p", 0)
    with pytest.raises(InvalidURL, match="port"):
        ProxyURL("http", "p", 65536)
    with pytest.raises(InvalidURL, match="host"):
        ProxyURL("http", "", 80)


@pytest.mark.parametrize(
    ("scheme", "secure", "socks", "rdns"),
    [
        ("http", False, False, False),
        ("https", True, False, False),
        ("socks4", False, True, False),
        ("socks4a", False, True, True),
        ("socks5", False, True, False),
        ("socks5h", False, True, True),
    ],
)
def test_scheme_properties(scheme: str, secure: bool, socks: bool, rdns: bool) -> None:
    proxy = ProxyURL.from_url(f"{scheme}://p:1")
    assert (proxy.is_secure, proxy.is_socks, proxy.rdns) == (secure, socks, rdns)


def test_authority_brackets_ipv6() -> None:
    assert ProxyURL.from_url("http://[::1]:3128").authority == "[::1]:3128"
    assert ProxyURL.from_url("http://127.0.0.1").authority == "127.0.0.1:80"
    assert ProxyURL.from_url("socks5://p").authority == "p:1080"


def test_authorization_is_basic_over_utf8() -> None:
    # RFC 7617 section 2's example: Aladdin / open sesame.
    proxy = ProxyURL.from_url("http://Aladdin:open%20sesame@p:3128")
    assert proxy.authorization == b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    # Section 2.1: UTF-8 ("test" / "123£").
    assert ProxyURL("https", "p", 1, "test", "123\u00a3").authorization == b"Basic dGVzdDoxMjPCow=="
    assert ProxyURL.from_url("http://alice@p").authorization == b"Basic YWxpY2U6"  # "alice:"


def test_no_authorization_without_credentials_or_for_socks() -> None:
    assert ProxyURL.from_url("http://p:3128").authorization is None
    assert ProxyURL.from_url("socks5://u:p@p").authorization is None
    assert ProxyURL.from_url("socks5://u:p@p").has_auth is True


@pytest.mark.parametrize(
    "value",
    [
        f"ftp://{USER}:{SECRET}@proxy.corp:21",
        f"{USER}:{SECRET}@ftp://proxy.corp",
        f"http://{USER}:{SECRET}@proxy.corp:3128/path",
        f"http://{USER}:{SECRET}@proxy.corp:3128/?q=1",
        f"http://{USER}:{SECRET}@proxy.corp:3128/#frag",
        f"http://{USER}:{SECRET}@proxy.corp:99999",
        f"http://{USER}:{SECRET}@proxy.corp:0",
        f"http://{USER}:{SECRET}@proxy.corp:port",
        f"http://{USER}:{SECRET}/x@proxy.corp:3128",  # "/" unencoded in the password
        f"http://{USER}:{SECRET}@",
        f"http://{USER}:{SECRET}@proxy.corp:3128\n/",
        f"http://{USER}:{SECRET}@proxy.corp\t:3128",
        f"http://{USER}:{SECRET}@prox y.corp:3128",
        f"http://{USER}:{SECRET}@[::1:3128",
    ],
)
def test_invalid_proxy_urls_never_show_credentials(value: str) -> None:
    with pytest.raises(InvalidURL) as caught:
        ProxyURL.from_url(value)
    assert USER not in str(caught.value)
    assert SECRET not in str(caught.value)


def test_invalid_scheme_is_named() -> None:
    with pytest.raises(InvalidURL, match="unsupported proxy scheme 'ftp'"):
        ProxyURL.from_url(f"ftp://{USER}:{SECRET}@proxy.corp:21")
    with pytest.raises(InvalidURL, match="unsupported proxy scheme 'socks6'"):
        ProxyURL.from_url("socks6://proxy.corp")


def test_a_path_is_refused_and_shown_when_there_are_no_credentials() -> None:
    with pytest.raises(InvalidURL, match="'http://proxy.corp:3128/path'"):
        ProxyURL.from_url("http://proxy.corp:3128/path")


def test_empty_and_non_string_values() -> None:
    with pytest.raises(InvalidURL, match="empty"):
        ProxyURL.from_url("  ")
    with pytest.raises(TypeError):
        ProxyURL.from_url(3128)  # type: ignore[arg-type]


# -- never showing credentials, equality -------------------------------------------------------


def test_repr_str_and_safe_never_show_credentials() -> None:
    proxy = ProxyURL.from_url(WITH_AUTH)
    assert proxy.safe == "http://proxy.corp:3128"
    assert str(proxy) == "http://proxy.corp:3128"
    assert repr(proxy) == "ProxyURL('http://proxy.corp:3128', with credentials)"
    for text in (proxy.safe, str(proxy), repr(proxy), repr([proxy]), f"{proxy}"):
        assert USER not in text
        assert SECRET not in text


def test_repr_without_credentials() -> None:
    assert repr(ProxyURL.from_url("http://127.0.0.1:8080")) == "ProxyURL('http://127.0.0.1:8080')"
    assert repr(ProxyURL.from_url("https://[::1]")) == "ProxyURL('https://[::1]:443')"


def test_raw_is_not_kept() -> None:
    proxy = ProxyURL("http", "p", 1, USER, SECRET, raw=f"http://{USER}:{SECRET}@p:1")
    assert not hasattr(proxy, "raw")
    assert SECRET not in repr(proxy)


def test_equality_and_hash_over_scheme_host_port_and_credentials() -> None:
    a = ProxyURL.from_url("http://u:p@proxy.corp:3128")
    b = ProxyURL("HTTP", "PROXY.corp", 3128, "u", "p")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a != ProxyURL.from_url("http://u:other@proxy.corp:3128")
    assert a != ProxyURL.from_url("http://proxy.corp:3128")
    assert a != ProxyURL.from_url("https://u:p@proxy.corp:3128")
    assert a != ProxyURL.from_url("http://u:p@proxy.corp:3129")
    assert a != "http://u:p@proxy.corp:3128"
    assert ProxyURL.from_url("http://p") == ProxyURL.from_url("p:80")


def test_immutable_and_copyable() -> None:
    proxy = ProxyURL.from_url("http://u:p@proxy.corp:3128")
    with pytest.raises(AttributeError):
        proxy.port = 1
    with pytest.raises(AttributeError):
        del proxy.host
    assert copy.copy(proxy) == proxy
    assert copy.deepcopy(proxy) == proxy
    assert pickle.loads(pickle.dumps(proxy)) == proxy


# -- routes from proxies= ----------------------------------------------------------------------


def test_a_string_routes_every_request() -> None:
    routes = ProxyRoutes.build("http://p:3128", trust_env=False)
    expected = ProxyURL("http", "p", 3128)
    assert route(routes, "http://example.com/") == expected
    assert route(routes, "https://example.com/") == expected


def test_a_proxy_url_routes_every_request() -> None:
    proxy = ProxyURL("socks5h", "p", 9050)
    routes = ProxyRoutes.build(proxy, trust_env=False)
    assert route(routes, "https://example.com/") is proxy


def test_scheme_keys_and_all() -> None:
    routes = ProxyRoutes.build({"http": "http://h:1", "all": "http://a:1"}, trust_env=False)
    assert route(routes, "http://example.com/") == ProxyURL("http", "h", 1)
    assert route(routes, "https://example.com/") == ProxyURL("http", "a", 1)


def test_host_key_beats_scheme_key_beats_all() -> None:
    routes = ProxyRoutes.build(
        {
            "all": "http://all:1",
            "https": "http://scheme:1",
            "https://example.com": "http://host:1",
            "https://example.com:8443": "http://hostport:1",
            "all://example.org": "http://allhost:1",
        },
        trust_env=False,
    )
    assert route(routes, "https://example.com:8443/") == ProxyURL("http", "hostport", 1)
    assert route(routes, "https://example.com/") == ProxyURL("http", "host", 1)
    assert route(routes, "https://example.com:9000/") == ProxyURL("http", "host", 1)
    assert route(routes, "https://other.com/") == ProxyURL("http", "scheme", 1)
    assert route(routes, "http://example.com/") == ProxyURL("http", "all", 1)
    assert route(routes, "http://example.org/") == ProxyURL("http", "allhost", 1)
    assert route(routes, "https://example.org/") == ProxyURL("http", "allhost", 1)
    assert route(routes, "https://sub.example.com/") == ProxyURL("http", "scheme", 1)


def test_scheme_host_key_beats_all_host_key() -> None:
    routes = ProxyRoutes.build(
        {
            "all://example.com": "http://allhost:1",
            "all://example.com:8443": "http://allhostport:1",
            "http://example.com": "http://host:1",
        },
        trust_env=False,
    )
    assert route(routes, "http://example.com/") == ProxyURL("http", "host", 1)
    assert route(routes, "http://example.com:8443/") == ProxyURL("http", "host", 1)
    assert route(routes, "https://example.com/") == ProxyURL("http", "allhost", 1)
    assert route(routes, "https://example.com:8443/") == ProxyURL("http", "allhostport", 1)
    assert route(routes, "https://other.com/") is None


def test_host_port_key_compares_the_effective_port() -> None:
    routes = ProxyRoutes.build({"http://example.com:80": "http://p:1"}, trust_env=False)
    assert route(routes, "http://example.com/") == ProxyURL("http", "p", 1)
    assert route(routes, "http://example.com:80/") == ProxyURL("http", "p", 1)
    assert route(routes, "http://example.com:8080/") is None


def test_ipv6_host_key() -> None:
    routes = ProxyRoutes.build({"http://[::1]:8080": "http://p:1"}, trust_env=False)
    assert route(routes, "http://[::1]:8080/") == ProxyURL("http", "p", 1)
    assert route(routes, "http://[::1]:8081/") is None


def test_none_disables_a_key_without_falling_through() -> None:
    routes = ProxyRoutes.build(
        {"all": "http://all:1", "https": None, "http://example.com": None},
        trust_env=False,
    )
    assert route(routes, "https://example.com/") is None
    assert route(routes, "http://example.com/") is None
    assert route(routes, "http://other.com/") == ProxyURL("http", "all", 1)


def test_httpx_style_scheme_keys() -> None:
    routes = ProxyRoutes.build({"http://": "http://h:1", "all://": "http://a:1"}, trust_env=False)
    assert route(routes, "http://example.com/") == ProxyURL("http", "h", 1)
    assert route(routes, "https://example.com/") == ProxyURL("http", "a", 1)


@pytest.mark.parametrize(
    "key",
    [
        "ftp",
        "socks5",
        "ftp://example.com",
        "http://example.com/path",
        "http://example.com:port",
        "http://u:p@example.com",
        "*.example.com",
        "http://*.example.com",
        "http://[::1",
        "",
    ],
)
def test_unknown_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="'http', 'https', 'all'"):
        ProxyRoutes.build({key: "http://p:1"}, trust_env=False)


def test_a_route_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="repeats"):
        ProxyRoutes.build({"http": "http://a:1", "HTTP://": "http://b:1"}, trust_env=False)


def test_a_bad_value_names_its_key_but_not_its_credentials() -> None:
    with pytest.raises(InvalidURL) as caught:
        ProxyRoutes.build({"https": f"ftp://{USER}:{SECRET}@p"}, trust_env=False)
    message = str(caught.value)
    assert "proxies['https']" in message
    assert "'ftp'" in message
    assert USER not in message and SECRET not in message


def test_wrong_types() -> None:
    with pytest.raises(TypeError):
        ProxyRoutes.build(3128, trust_env=False)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ProxyRoutes.build({1: "http://p:1"}, trust_env=False)  # type: ignore[dict-item]


def test_explicit_proxies_ignore_the_environment() -> None:
    environ = {"https_proxy": "http://env:1", "no_proxy": "*"}
    routes = ProxyRoutes.build({"http": "http://p:1"}, trust_env=True, environ=environ)
    assert route(routes, "http://example.com/") == ProxyURL("http", "p", 1)
    assert route(routes, "https://example.com/") is None


@pytest.mark.parametrize("proxies", [{}, {"http": None}, {"all": None, "https://x.com": None}])
def test_build_is_none_when_every_route_is_direct(proxies: dict[str, None]) -> None:
    assert ProxyRoutes.build(proxies, trust_env=True, environ={"http_proxy": "p:1"}) is None


def test_secure_when_some_route_uses_an_https_proxy() -> None:
    plain = ProxyRoutes.build({"all": "http://p:1", "https": "socks5://s"}, trust_env=False)
    assert plain is not None and plain.secure is False
    tls = ProxyRoutes.build({"http": "http://p:1", "all://x.com": "https://s"}, trust_env=False)
    assert tls is not None and tls.secure is True


# -- routes from the environment ---------------------------------------------------------------


def test_build_is_none_without_proxies_or_environment() -> None:
    assert ProxyRoutes.build(None, trust_env=True, environ={}) is None
    assert ProxyRoutes.build(None, trust_env=True, environ={"PATH": "/bin"}) is None


def test_build_is_none_without_trust_env() -> None:
    environ = {"HTTP_PROXY": "http://p:1", "ALL_PROXY": "http://p:1", "https_proxy": "p:1"}
    assert ProxyRoutes.build(None, trust_env=False, environ=environ) is None


def test_build_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("REQUEST_METHOD", raising=False)
    monkeypatch.setenv("https_proxy", "http://fromenv:1")
    monkeypatch.setenv("HTTPS_PROXY", "http://fromenv:1")
    routes = ProxyRoutes.build(None, trust_env=True)
    assert route(routes, "https://example.com/") == ProxyURL("http", "fromenv", 1)


@pytest.mark.parametrize("name", ["http_proxy", "HTTP_PROXY"])
def test_http_proxy_variable(name: str) -> None:
    routes = ProxyRoutes.build(None, trust_env=True, environ={name: "http://p:1"})
    assert route(routes, "http://example.com/") == ProxyURL("http", "p", 1)
    assert route(routes, "https://example.com/") is None


@pytest.mark.parametrize("name", ["https_proxy", "HTTPS_PROXY"])
def test_https_proxy_variable(name: str) -> None:
    routes = ProxyRoutes.build(None, trust_env=True, environ={name: "http://p:1"})
    assert route(routes, "https://example.com/") == ProxyURL("http", "p", 1)
    assert route(routes, "http://example.com/") is None


@pytest.mark.parametrize("name", ["all_proxy", "ALL_PROXY"])
def test_all_proxy_variable(name: str) -> None:
    routes = ProxyRoutes.build(None, trust_env=True, environ={name: "socks5h://p:1"})
    assert route(routes, "http://example.com/") == ProxyURL("socks5h", "p", 1)
    assert route(routes, "https://example.com/") == ProxyURL("socks5h", "p", 1)


def test_scheme_variables_beat_all_proxy() -> None:
    environ = {"http_proxy": "http://h:1", "HTTPS_PROXY": "http://s:1", "all_proxy": "http://a:1"}
    routes = ProxyRoutes.build(None, trust_env=True, environ=environ)
    assert route(routes, "http://example.com/") == ProxyURL("http", "h", 1)
    assert route(routes, "https://example.com/") == ProxyURL("http", "s", 1)


@pytest.mark.parametrize("name", ["http", "https", "all"])
def test_lower_case_wins_over_upper_case(name: str) -> None:
    environ = {f"{name}_proxy": "http://lower:1", f"{name.upper()}_PROXY": "http://upper:1"}
    routes = ProxyRoutes.build(None, trust_env=True, environ=environ)
    assert route(routes, "https://example.com/" if name == "https" else "http://example.com/") == (
        ProxyURL("http", "lower", 1)
    )


def test_lower_case_no_proxy_wins_over_upper_case() -> None:
    environ = {"all_proxy": "http://p:1", "no_proxy": "a.com", "NO_PROXY": "b.com"}
    routes = ProxyRoutes.build(None, trust_env=True, environ=environ)
    assert route(routes, "http://a.com/") is None
    assert route(routes, "http://b.com/") == ProxyURL("http", "p", 1)


def test_empty_values_count_as_unset() -> None:
    environ = {"http_proxy": "", "HTTP_PROXY": "http://upper:1", "https_proxy": "  "}
    routes = ProxyRoutes.build(None, trust_env=True, environ=environ)
    assert route(routes, "http://example.com/") == ProxyURL("http", "upper", 1)
    assert route(routes, "https://example.com/") is None
    environ = {"http_proxy": "", "HTTPS_PROXY": "", "all_proxy": "", "NO_PROXY": ""}
    assert ProxyRoutes.build(None, trust_env=True, environ=environ) is None
    environ = {"all_proxy": "http://p:1", "no_proxy": "", "NO_PROXY": "example.com"}
    routes = ProxyRoutes.build(None, trust_env=True, environ=environ)
    assert route(routes, "http://example.com/") is None


def test_cgi_context_ignores_upper_case_http_proxy_only() -> None:
    # httpoxy: a CGI server turns a request's "Proxy:" header into HTTP_PROXY.
    environ = {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://attacker:1"}
    assert ProxyRoutes.build(None, trust_env=True, environ=environ) is None
    environ = {"REQUEST_METHOD": "GET", "http_proxy": "http://lower:1"}
    routes = ProxyRoutes.build(None, trust_env=True, environ=environ)
    assert route(routes, "http://example.com/") == ProxyURL("http", "lower", 1)
    environ = {
        "REQUEST_METHOD": "GET",
        "HTTP_PROXY": "http://attacker:1",
        "HTTPS_PROXY": "http://s:1",
        "ALL_PROXY": "http://a:1",
    }
    routes = ProxyRoutes.build(None, trust_env=True, environ=environ)
    assert route(routes, "http://example.com/") == ProxyURL("http", "a", 1)
    assert route(routes, "https://example.com/") == ProxyURL("http", "s", 1)


def test_outside_cgi_upper_case_http_proxy_is_read() -> None:
    routes = ProxyRoutes.build(None, trust_env=True, environ={"HTTP_PROXY": "http://p:1"})
    assert route(routes, "http://example.com/") == ProxyURL("http", "p", 1)


def test_no_proxy_applies_to_environment_proxies() -> None:
    environ = {"all_proxy": "http://p:1", "NO_PROXY": "internal.corp, 10.0.0.0/8"}
    routes = ProxyRoutes.build(None, trust_env=True, environ=environ)
    assert route(routes, "https://api.internal.corp/") is None
    assert route(routes, "http://10.1.2.3/") is None
    assert route(routes, "http://example.com/") == ProxyURL("http", "p", 1)


def test_no_proxy_star_means_no_routes() -> None:
    environ = {"all_proxy": "http://p:1", "no_proxy": "*"}
    assert ProxyRoutes.build(None, trust_env=True, environ=environ) is None


def test_a_bad_environment_proxy_names_its_variable_not_its_credentials() -> None:
    environ = {"HTTPS_PROXY": f"ftp://{USER}:{SECRET}@p"}
    with pytest.raises(InvalidURL) as caught:
        ProxyRoutes.build(None, trust_env=True, environ=environ)
    message = str(caught.value)
    assert "HTTPS_PROXY" in message
    assert USER not in message and SECRET not in message


# -- NO_PROXY matching ---------------------------------------------------------------------------


def test_parse_no_proxy_splits_on_commas_and_whitespace() -> None:
    assert parse_no_proxy("a.com,B.com  c.com ,\t, d.com\n") == ["a.com", "b.com", "c.com", "d.com"]
    assert parse_no_proxy("") == []
    assert parse_no_proxy(" , ,") == []


def test_star_matches_everything() -> None:
    assert no_proxy_matches("example.com", 443, ["*"]) is True
    assert no_proxy_matches("10.0.0.1", 80, ["other.com", "*"]) is True


def test_no_entries_match_nothing() -> None:
    assert no_proxy_matches("example.com", 443, []) is False


@pytest.mark.parametrize("entry", ["example.com", ".example.com", "*.example.com", "EXAMPLE.COM"])
def test_a_name_matches_itself_and_its_subdomains(entry: str) -> None:
    assert no_proxy_matches("example.com", 443, [entry]) is True
    assert no_proxy_matches("sub.example.com", 443, [entry]) is True
    assert no_proxy_matches("a.b.example.com", 80, [entry]) is True
    assert no_proxy_matches("notexample.com", 443, [entry]) is False
    assert no_proxy_matches("example.com.evil", 443, [entry]) is False
    assert no_proxy_matches("example.org", 443, [entry]) is False


def test_names_are_case_insensitive_and_ignore_a_final_dot() -> None:
    assert no_proxy_matches("Sub.Example.COM", 443, ["example.com"]) is True
    assert no_proxy_matches("example.com.", 443, ["example.com"]) is True
    assert no_proxy_matches("example.com", 443, ["example.com."]) is True


def test_ipv4_address() -> None:
    assert no_proxy_matches("192.168.1.5", 80, ["192.168.1.5"]) is True
    assert no_proxy_matches("192.168.1.50", 80, ["192.168.1.5"]) is False
    assert no_proxy_matches("10.1.2.3", 80, ["2.3"]) is False  # a name never matches an address


@pytest.mark.parametrize("entry", ["::1", "[::1]", "0:0::1", "[0:0:0:0:0:0:0:1]"])
def test_ipv6_address_with_or_without_brackets(entry: str) -> None:
    assert no_proxy_matches("::1", 443, [entry]) is True
    assert no_proxy_matches("[::1]", 443, [entry]) is True
    assert no_proxy_matches("::2", 443, [entry]) is False


def test_cidr_v4() -> None:
    assert no_proxy_matches("10.1.2.3", 80, ["10.0.0.0/8"]) is True
    assert no_proxy_matches("11.1.2.3", 80, ["10.0.0.0/8"]) is False
    assert no_proxy_matches("192.168.1.77", 80, ["192.168.1.1/24"]) is True  # host bits allowed


def test_cidr_v6() -> None:
    assert no_proxy_matches("fd12::1", 443, ["fd00::/8"]) is True
    assert no_proxy_matches("fe80::1", 443, ["fd00::/8"]) is False
    assert no_proxy_matches("2001:db8::5", 443, ["[2001:db8::]/32"]) is True


def test_cidr_never_matches_another_family_or_a_name() -> None:
    assert no_proxy_matches("::ffff:10.0.0.1", 80, ["10.0.0.0/8"]) is False
    assert no_proxy_matches("10.0.0.1", 80, ["::/0"]) is False
    assert no_proxy_matches("localhost", 80, ["127.0.0.0/8"]) is False
    assert no_proxy_matches("10.example.com", 80, ["10.0.0.0/8"]) is False


def test_host_port_entries_match_that_port_only() -> None:
    assert no_proxy_matches("example.com", 8080, ["example.com:8080"]) is True
    assert no_proxy_matches("sub.example.com", 8080, ["example.com:8080"]) is True
    assert no_proxy_matches("example.com", 443, ["example.com:8080"]) is False
    assert no_proxy_matches("10.0.0.1", 8080, ["10.0.0.1:8080"]) is True
    assert no_proxy_matches("10.0.0.1", 80, ["10.0.0.1:8080"]) is False
    assert no_proxy_matches("::1", 8080, ["[::1]:8080"]) is True
    assert no_proxy_matches("::1", 8081, ["[::1]:8080"]) is False


def test_host_port_against_the_effective_port_in_routes() -> None:
    environ = {"all_proxy": "http://p:1", "no_proxy": "example.com:443"}
    routes = ProxyRoutes.build(None, trust_env=True, environ=environ)
    assert route(routes, "https://example.com/") is None
    assert route(routes, "http://example.com/") == ProxyURL("http", "p", 1)
    assert route(routes, "https://example.com:8443/") == ProxyURL("http", "p", 1)


@pytest.mark.parametrize(
    "entry",
    [
        "example.com:port",
        "example.com:0",
        "example.com:99999",
        ":8080",
        "[::1",
        "[::1]x",
        "[::1]:",
        "10.0.0.0/33",
        "fd00::/200",
        "10.0.0.0/x",
        "exa*mple.com",
        "example.com/path",
        ".",
        "*.",
        "a:b:c",
    ],
)
def test_malformed_entries_are_ignored(entry: str) -> None:
    for host in ("example.com", "10.0.0.1", "::1", "fd00::1"):
        assert no_proxy_matches(host, 8080, [entry]) is False
    assert no_proxy_matches("example.com", 8080, [entry, "example.com"]) is True


def test_malformed_entries_in_the_environment_are_not_fatal() -> None:
    environ = {"all_proxy": "http://p:1", "no_proxy": "[::1, 10.0.0.0/99, ok.com"}
    routes = ProxyRoutes.build(None, trust_env=True, environ=environ)
    assert route(routes, "http://ok.com/") is None
    assert route(routes, "http://example.com/") == ProxyURL("http", "p", 1)


# -- pool keys -------------------------------------------------------------------------------------


def test_key_is_the_origin_when_direct() -> None:
    routes = ProxyRoutes.build({"https": "http://p:1"}, trust_env=False)
    assert routes is not None
    url = URL("http://example.com/")
    assert routes.key(url) == ("http", "example.com", 80)
    assert routes.key(url) is url.origin


def test_key_holds_the_proxy_when_proxied() -> None:
    routes = ProxyRoutes.build({"https": "http://u:p@proxy:1"}, trust_env=False)
    assert routes is not None
    key = routes.key(URL("https://example.com/a"))
    assert key == ("https", "example.com", 443, ProxyURL("http", "proxy", 1, "u", "p"))
    assert routes.key(URL("https://example.com/b?x=1")) is key


def test_keys_differ_by_credentials() -> None:
    one = ProxyRoutes.build("http://u:a@p:1", trust_env=False)
    two = ProxyRoutes.build("http://u:b@p:1", trust_env=False)
    assert one is not None and two is not None
    url = URL("https://example.com/")
    assert one.key(url) != two.key(url)


def test_key_cache_stays_bounded() -> None:
    routes = ProxyRoutes.build("http://p:1", trust_env=False)
    assert routes is not None
    first = routes.key(URL("http://h0.example/"))
    for number in range(1, 5000):
        routes.key(URL(f"http://h{number}.example/"))
    assert len(routes._keys) <= 4096
    again = routes.key(URL("http://h0.example/"))
    assert again == first
    assert again is not first  # h0 was dropped when the cache was cleared, and computed again


# -- SSL_CERT_FILE / SSL_CERT_DIR ----------------------------------------------------------------


def test_ssl_paths_from_env() -> None:
    assert ssl_paths_from_env({}) == (None, None)
    assert ssl_paths_from_env({"SSL_CERT_FILE": "/etc/ca.pem"}) == ("/etc/ca.pem", None)
    assert ssl_paths_from_env({"SSL_CERT_DIR": "/etc/certs"}) == (None, "/etc/certs")
    both = {"SSL_CERT_FILE": "/etc/ca.pem", "SSL_CERT_DIR": "/etc/certs"}
    assert ssl_paths_from_env(both) == ("/etc/ca.pem", "/etc/certs")
    assert ssl_paths_from_env({"SSL_CERT_FILE": "", "SSL_CERT_DIR": ""}) == (None, None)


def test_ssl_paths_from_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", "/tmp/ca.pem")
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    assert ssl_paths_from_env() == ("/tmp/ca.pem", None)


def test_international_proxy_hosts_and_no_proxy_entries_use_idna_2008() -> None:
    assert ProxyURL.from_url("http://faß.corp:3128").host == "xn--fa-hia.corp"
    assert no_proxy_matches("xn--fa-hia.de", 443, parse_no_proxy("faß.de"))
    assert not no_proxy_matches("fass.de", 443, parse_no_proxy("faß.de"))  # IDNA 2003's answer
