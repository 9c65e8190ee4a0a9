"""The cookie jar's RFC 6265 rules, with hand-made requests and responses (no network)."""

from __future__ import annotations

import pytest

import hyperhttp
from hyperhttp import Cookies, Request, Response
from hyperhttp import _cookie_jar as cookie_jar
from hyperhttp._cookie_jar import CookieJar, default_path, parse_cookie_date
from hyperhttp._url import URL


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


# -- the public suffix list (RFC 6265 5.3 step 5) ----------------------------------------------


@pytest.mark.parametrize(
    ("host", "suffix"),
    [("example.com", "com"), ("shop.example.co.uk", "co.uk"), ("alice.github.io", "github.io")],
)
def test_a_domain_that_is_a_public_suffix_is_refused(host: str, suffix: str) -> None:
    cookies = Cookies()
    store(cookies, f"http://{host}/", f"wide=1; Domain={suffix}", f"dotted=1; Domain=.{suffix}")
    assert "wide" not in cookies and "dotted" not in cookies
    assert sent(cookies, f"http://other.{suffix}/") is None


def test_a_registrable_domain_under_a_multi_label_suffix_is_shared() -> None:
    cookies = Cookies()
    store(cookies, "http://shop.example.co.uk/", "site=1; Domain=example.co.uk")
    assert sent(cookies, "http://blog.example.co.uk/") == "site=1"
    assert sent(cookies, "http://example.co.uk/") == "site=1"
    assert sent(cookies, "http://other.co.uk/") is None


def test_github_io_users_do_not_share_cookies() -> None:
    cookies = Cookies()
    store(cookies, "https://alice.github.io/", "mine=1", "pages=1; Domain=github.io")
    assert sent(cookies, "https://alice.github.io/") == "mine=1"
    assert sent(cookies, "https://bob.github.io/") is None


@pytest.mark.parametrize("suffix", ["github.io", "co.uk"])
def test_a_public_suffix_host_may_set_its_own_domain_host_only(suffix: str) -> None:
    cookies = Cookies()
    store(cookies, f"http://{suffix}/", f"own=1; Domain={suffix}")
    assert sent(cookies, f"http://{suffix}/") == "own=1"
    assert sent(cookies, f"http://sub.{suffix}/") is None  # host-only, not for the whole suffix
    (cookie,) = cookies.jar
    assert cookie.host_only and cookie.domain == suffix


# -- IP addresses ------------------------------------------------------------------------------


def test_an_ip_host_takes_a_domain_equal_to_itself_only() -> None:
    cookies = Cookies()
    store(cookies, "http://127.0.0.1/", "exact=1; Domain=127.0.0.1", "part=1; Domain=0.0.1")
    assert "part" not in cookies
    assert sent(cookies, "http://127.0.0.1/") == "exact=1"
    (cookie,) = cookies.jar
    assert cookie.host_only
    assert sent(cookies, "http://10.127.0.0.1/") is None  # not a domain match for addresses
    cookies.set("byhand", "1", domain="0.0.1")
    assert sent(cookies, "http://127.0.0.1/") == "exact=1"  # an address has no parent domains


def test_ip_cookies_stay_with_their_address() -> None:
    cookies = Cookies()
    store(cookies, "http://[::1]:8080/", "six=1")
    store(cookies, "http://10.0.0.1/", "four=1")
    assert sent(cookies, "http://[::1]/") == "six=1"
    assert sent(cookies, "http://10.0.0.1/") == "four=1"
    assert sent(cookies, "http://0.0.1/") is None and sent(cookies, "http://1/") is None


# -- Secure -------------------------------------------------------------------------------------


def test_secure_cookies_are_sent_over_https_only() -> None:
    cookies = Cookies()
    store(cookies, "https://h.test/", "tls=1; Secure")
    store(cookies, "http://h.test/", "plain=1; Secure")  # refused: set over http (RFC 6265bis)
    assert sent(cookies, "http://h.test/") is None
    assert sent(cookies, "https://h.test/") == "tls=1"


# -- limits and eviction (RFC 6265 5.3 and 6.1) ------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(cookie_jar, "time", fake)
    return fake


def names(jar: CookieJar) -> list[str]:
    return sorted(cookie.name for cookie in jar)


def test_the_per_domain_limit_evicts_the_least_recently_used(clock: FakeClock) -> None:
    jar = CookieJar(max_cookies_per_domain=3)
    jar.extract(URL("http://a.example.com/"), ["a=1; Path=/a", "b=1; Path=/b"])
    jar.extract(URL("http://b.example.com/"), ["c=1; Path=/c; Domain=example.com"])
    assert jar.header_for(URL("http://a.example.com/a")) == "a=1"  # a is now the most recent
    jar.extract(URL("http://c.example.com/"), ["d=1"])  # the fourth cookie of example.com
    assert names(jar) == ["a", "c", "d"]  # b: the least recently used of the site
    jar.extract(URL("http://other.test/"), ["e=1", "f=1", "g=1"])  # another site, its own count
    assert names(jar) == ["a", "c", "d", "e", "f", "g"]


def test_the_per_domain_limit_evicts_the_expired_first(clock: FakeClock) -> None:
    jar = CookieJar(max_cookies_per_domain=3)
    jar.extract(URL("http://example.com/"), ["old=1", "brief=1; Max-Age=10", "new=1"])
    assert jar.header_for(URL("http://example.com/")) is not None  # all three used now
    clock.now += 11
    jar.extract(URL("http://example.com/"), ["newest=1"])
    assert names(jar) == ["new", "newest", "old"]


def test_the_total_limit_evicts_expired_then_least_recently_used(clock: FakeClock) -> None:
    jar = CookieJar(max_cookies=3)
    for site in ("one", "two", "three"):
        jar.extract(URL(f"http://{site}.test/"), [f"{site}=1"])
    jar.header_for(URL("http://one.test/"))
    jar.extract(URL("http://four.test/"), ["four=1"])
    assert names(jar) == ["four", "one", "three"]  # two: used least recently
    jar.extract(URL("http://five.test/"), ["five=1; Max-Age=5"])
    assert names(jar) == ["five", "four", "one"]  # three went
    jar.header_for(URL("http://one.test/"))  # least recent first: four, five, one
    clock.now += 6
    jar.extract(URL("http://six.test/"), ["six=1"])
    assert names(jar) == ["four", "one", "six"]  # five, expired, before four
    assert len(jar) == 3


def test_the_limits_hold_under_a_crawl() -> None:
    jar = CookieJar(max_cookies=100, max_cookies_per_domain=5)
    for n in range(1000):
        jar.extract(URL(f"http://host{n % 7}.site{n % 40}.test/"), [f"c{n}=1", f"d{n}=2"])
        assert len(jar) <= 100
    per_site: dict[str, int] = {}
    for cookie in jar:
        per_site[cookie.site] = per_site.get(cookie.site, 0) + 1
    assert len(jar) == 100 and max(per_site.values()) <= 5


def test_oversized_cookies_are_ignored() -> None:
    cookies = Cookies()
    store(cookies, "http://h.test/", "n=" + "v" * 4095, "o=" + "v" * 4096)
    assert "n" in cookies and "o" not in cookies
    store(cookies, "http://h.test/", "n=" + "x" * 5000)  # ignored: the old one stays
    assert cookies["n"] == "v" * 4095


# -- expiry --------------------------------------------------------------------------------------


PAST = "Wed, 21 Oct 2015 07:28:00 GMT"
FUTURE = "Fri, 01 Jan 2100 00:00:00 GMT"


def test_max_age_wins_over_expires_in_either_order(clock: FakeClock) -> None:
    jar = CookieJar()
    url = URL("http://h.test/")
    jar.extract(
        url,
        [
            f"a=1; Max-Age=100; Expires={PAST}",
            f"b=1; Expires={PAST}; Max-Age=100",
            f"c=1; Max-Age=0; Expires={FUTURE}",
            f"d=1; Max-Age=-5; Expires={FUTURE}",
            f"e=1; Max-Age=soon; Expires={FUTURE}",  # not a Max-Age: Expires stands
            "f=1; Max-Age=50; Max-Age=200",  # the last one
        ],
    )
    expiries = {cookie.name: cookie.expires for cookie in jar}
    assert expiries == {
        "a": clock.now + 100,
        "b": clock.now + 100,
        "e": parse_cookie_date(FUTURE),
        "f": clock.now + 200,
    }
    clock.now += 150
    assert jar.header_for(url) == "e=1; f=1"
    assert names(jar) == ["e", "f"]


def test_an_expired_cookie_deletes_its_namesake() -> None:
    cookies = Cookies()
    store(cookies, "http://h.test/", "a=1", "b=1", "c=1")
    store(cookies, "http://h.test/", "a=; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "b=x; Max-Age=0")
    assert cookies.items() == [("c", "1")]


@pytest.mark.parametrize(
    "text",
    [
        "Wed, 21 Oct 2015 07:28:00 GMT",  # RFC 1123
        "Wednesday, 21-Oct-15 07:28:00 GMT",  # RFC 850
        "Wed Oct 21 07:28:00 2015",  # asctime
        "Wed, 21-Oct-2015 07:28:00 GMT",  # Netscape's
        "21 oct 2015 7:28:0",
    ],
)
def test_cookie_dates_in_their_several_formats(text: str) -> None:
    assert parse_cookie_date(text) == 1445412480.0


def test_two_digit_years_and_invalid_dates() -> None:
    assert parse_cookie_date("01 Jan 70 00:00:00") == 0.0
    assert parse_cookie_date("01 Jan 69 00:00:00") == parse_cookie_date("01 Jan 2069 00:00:00")
    for text in (
        "",
        "tomorrow",
        "31 Jun 2015 00:00:00",
        "01 Jan 2015 24:00:00",
        "01 Jan 1600 0:0:0",
    ):
        assert parse_cookie_date(text) is None


def test_an_unparsable_expires_leaves_a_session_cookie() -> None:
    jar = CookieJar()
    jar.extract(URL("http://h.test/"), ["s=1; Expires=someday"])
    (cookie,) = jar
    assert cookie.expires is None


# -- parsing and paths ---------------------------------------------------------------------------


def test_set_cookie_parsing_rules() -> None:
    jar = CookieJar()
    jar.extract(
        URL("https://h.test/"),
        ["noequals", "=nameless", ' spaced = "quoted value" ; PATH=/ ; sEcUrE', "e=; Domain="],
    )
    cookies = {cookie.name: cookie for cookie in jar}
    assert sorted(cookies) == ["e", "spaced"]
    assert cookies["spaced"].value == '"quoted value"' and cookies["spaced"].secure
    assert cookies["e"].value == "" and cookies["e"].host_only  # an empty Domain is ignored


@pytest.mark.parametrize(
    ("request_path", "expected"),
    [("/docs/page", "/docs"), ("/docs/", "/docs"), ("/page", "/"), ("/", "/"), ("", "/")],
)
def test_the_default_path(request_path: str, expected: str) -> None:
    assert default_path(request_path) == expected


def test_path_matching_and_the_longest_path_first() -> None:
    cookies = Cookies()
    store(
        cookies,
        "http://h.test/",
        "root=1; Path=/",
        "docs=1; Path=/docs",
        "slash=1; Path=/docs/",
        "bad=1; Path=docs",  # not a path: the default one, "/"
    )
    assert sent(cookies, "http://h.test/docs/api/x") == "slash=1; docs=1; root=1; bad=1"
    assert sent(cookies, "http://h.test/docs") == "docs=1; root=1; bad=1"
    assert sent(cookies, "http://h.test/docsmore") == "root=1; bad=1"
    assert sent(cookies, "http://h.test/?docs") == "root=1; bad=1"


def test_host_only_and_domain_cookies_of_one_name_coexist() -> None:
    cookies = Cookies()
    store(cookies, "http://example.com/", "id=host", "id=domain; Domain=example.com")
    assert sent(cookies, "http://example.com/") == "id=host; id=domain"  # by creation
    assert sent(cookies, "http://www.example.com/") == "id=domain"
    store(cookies, "http://example.com/", "id=host2")  # replaces the host-only one in place
    assert sent(cookies, "http://example.com/") == "id=host2; id=domain"
    with pytest.raises(KeyError, match="several"):
        cookies.get("id", domain="example.com")


def test_the_user_api_takes_domains_with_or_without_the_dot() -> None:
    cookies = Cookies()
    store(cookies, "http://www.example.com/", "d=1; Domain=.example.com")
    assert cookies.get("d", domain=".example.com") == "1" == cookies.get("d", domain="example.com")
    cookies.set("u", "1", domain=".Example.COM")
    assert sent(cookies, "http://a.example.com/") == "d=1; u=1"
    cookies.delete("d", domain=".example.com")
    cookies.clear(domain="missing.test")  # nothing to clear is not an error
    assert cookies.items() == [("u", "1")]
    copy = Cookies()
    copy.update(cookies)
    copy.set("u", "2", domain="example.com")
    assert cookies["u"] == "1" and copy["u"] == "2"


# -- the index: a request looks at its own site's cookies only --------------------------------


def filled(sites: int) -> CookieJar:
    jar = CookieJar(max_cookies=10 * sites + 10)
    for n in range(sites):
        jar.extract(
            URL(f"https://www.site{n}.example/"), [f"s{n}=1", f"t{n}=2; Domain=site{n}.example"]
        )
    jar.extract(URL("https://shop.target.example/"), ["a=1", "b=2; Domain=target.example"])
    return jar


def test_a_request_examines_a_bounded_number_of_cookies() -> None:
    looked: list[int] = []
    for sites in (10, 10_000):
        jar = filled(sites)
        before = jar.examined
        assert jar.header_for(URL("https://shop.target.example/x")) == "a=1; b=2"
        looked.append(jar.examined - before)
        before = jar.examined
        assert jar.header_for(URL("https://deep.down.target.example/")) == "b=2"
        assert jar.examined - before == 2  # the site's two cookies, by way of parent domains
        before = jar.examined
        assert jar.header_for(URL("https://unknown.example/")) is None
        assert jar.examined == before
    assert looked == [2, 2]


def test_every_host_cookies_are_examined_beside_the_site() -> None:
    cookies = Cookies({"everywhere": "1"})
    store(cookies, "http://h.test/", "here=1")
    before = cookies.jar.examined
    assert sent(cookies, "http://h.test/") == "everywhere=1; here=1"
    assert cookies.jar.examined - before == 2


# -- through the Client --------------------------------------------------------------------------


async def test_a_crawl_across_github_io_keeps_each_users_cookies() -> None:
    from hyperhttp.mock import MockResponse, MockTransport, Router

    router = (
        Router()
        .get(
            "https://alice.github.io/",
            MockResponse(
                headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "all=1; Domain=github.io")]
            ),
        )
        .get(
            "https://bob.github.io/",
            lambda request: MockResponse(text=request.headers.get("cookie", "-")),
        )
    )
    transport = MockTransport(router)
    async with hyperhttp.Client(transport=transport) as client:
        await client.get("https://alice.github.io/")
        response = await client.get("https://bob.github.io/")
        assert await response.aread() == b"-"
        assert list(client.cookies) == ["a"]
