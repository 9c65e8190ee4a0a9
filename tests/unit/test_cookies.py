"""The cookie jar's RFC 6265 rules, with hand-made requests and responses (no network)."""

from __future__ import annotations

import pytest

from hyperhttp import Cookies, Request, Response


def store(cookies: Cookies, url: str, *values: str) -> None:
    request = Request("GET", url)
    response = Response(200, headers=[(b"Set-Cookie", v.encode()) for v in values], request=request)
    cookies.extract(response, request, list(values))


def sent(cookies: Cookies, url: str) -> str | None:
    return cookies.header_for(Request("GET", url))


def test_domain_rules_host_only_and_bare_tld() -> None:
    cookies = Cookies()
    store(
        cookies, "http://example.com/", "host=1", "dom=2; Domain=example.com", "tld=3; Domain=com"
    )
    assert "tld" not in cookies  # a bare top-level domain is refused
    assert sent(cookies, "http://example.com/") in ("host=1; dom=2", "dom=2; host=1")
    assert sent(cookies, "http://www.example.com/") == "dom=2"  # host-only stays home
    assert sent(cookies, "http://example.org/") is None
    store(cookies, "http://example.com/", "other=1; Domain=example.org")  # not its domain
    assert "other" not in cookies


def test_path_default_and_matching() -> None:
    cookies = Cookies()
    store(cookies, "http://h.test/docs/page", "defaulted=1", "root=2; Path=/")
    assert sent(cookies, "http://h.test/docs/other") in (
        "defaulted=1; root=2",
        "root=2; defaulted=1",
    )
    assert sent(cookies, "http://h.test/") == "root=2"
    assert sent(cookies, "http://h.test/docsmore") == "root=2"  # /docs does not match /docsmore


def test_expiry_secure_and_attributes_kept() -> None:
    cookies = Cookies()
    store(cookies, "https://h.test/", "s=1; Secure; HttpOnly; SameSite=Lax", "gone=1")
    store(cookies, "https://h.test/", "gone=x; Max-Age=0")
    assert sent(cookies, "https://h.test/") == "s=1"
    assert sent(cookies, "http://h.test/") is None
    (cookie,) = list(cookies.jar)
    assert cookie.secure and cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite") == "Lax"


def test_the_dict_like_interface() -> None:
    cookies = Cookies({"a": "1", "b": "2"})
    assert len(cookies) == 2 and "a" in cookies and sorted(cookies) == ["a", "b"]
    assert cookies == {"a": "1", "b": "2"}
    assert sent(cookies, "http://any.test/x") in ("a=1; b=2", "b=2; a=1")
    cookies["a"] = "one"
    assert cookies["a"] == "one" and cookies.get("missing", "d") == "d"
    cookies.set("a", "scoped", domain="only.test")
    with pytest.raises(KeyError, match="several"):
        cookies.get("a")
    assert cookies.get("a", domain="only.test") == "scoped"
    del cookies["b"]
    assert "b" not in cookies
    with pytest.raises(KeyError):
        del cookies["b"]
    cookies.clear(domain="only.test")
    assert cookies.items() == [("a", "one")]
    cookies.clear()
    assert not cookies and sent(cookies, "http://any.test/") is None


def test_a_dotless_host_gets_its_own_domain_cookies_back() -> None:
    cookies = Cookies()
    store(cookies, "http://localhost:8080/", "hostonly=1", "domain=2; Domain=localhost")
    value = sent(cookies, "http://localhost:8080/x")
    assert value is not None and sorted(value.split("; ")) == ["domain=2", "hostonly=1"]
    assert sent(cookies, "http://127.0.0.1:8080/x") is None


async def test_set_cookie_from_a_transport_with_text_headers() -> None:
    """A Transport (a mock) may build its Response from (str, str) pairs."""
    import hyperhttp

    class Mock(hyperhttp.Transport):
        async def handle_async_request(self, request: Request) -> Response:
            return Response(200, headers=[("Set-Cookie", "mock=1; Path=/")], request=request)

        async def aclose(self) -> None:
            pass

        def get_stats(self) -> dict[str, dict[str, int]]:
            return {}

    async with hyperhttp.Client(transport=Mock()) as client:
        await client.get("http://mock.test/")
        assert client.cookies["mock"] == "1"
