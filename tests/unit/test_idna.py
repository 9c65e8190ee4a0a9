"""International host names: IDNA 2008 with UTS 46 mapping, non-transitional, as browsers do.

The stdlib's "idna" codec is IDNA 2003, which maps "ß" to "ss": ``faß.de`` would become
``fass.de``, another domain. ASCII hosts never go through the mapping at all.
"""

from __future__ import annotations

import pytest

import hyperhttp
from hyperhttp import URL, Client, Request
from hyperhttp.mock import MockResponse, MockTransport


@pytest.mark.parametrize(
    ("host", "a_label"),
    [
        ("faß.de", "xn--fa-hia.de"),  # non-transitional: ß is a letter of its own, not "ss"
        ("bücher.example", "xn--bcher-kva.example"),
        ("ÉXAMPLE.com", "xn--xample-9ua.com"),  # the mapping lower-cases
        ("例え。jp", "xn--r8jz45g.jp"),  # ideographic full stop as the separator
        ("bücher．example", "xn--bcher-kva.example"),  # full-width full stop
        ("ΟΔΟΣ-1.gr", "xn---1-k9b7bby.gr"),  # UTS 46 maps Σ to σ, where str.lower gives ς
        ("faß.de.", "xn--fa-hia.de."),  # a trailing dot is kept, as for ASCII hosts
        ("xn--fa-hia.bücher.de", "xn--fa-hia.xn--bcher-kva.de"),
    ],
)
def test_an_international_host_becomes_its_a_label(host: str, a_label: str) -> None:
    url = URL(f"http://{host}/path?q=1")
    assert url.host == a_label
    assert url.host_header == a_label.encode("ascii")
    assert str(url) == f"http://{a_label}/path?q=1"


def test_the_a_label_is_in_the_netloc_with_userinfo_and_port() -> None:
    url = URL("https://user:secret@Straße.de:8443/x")
    assert url.host == "xn--strae-oqa.de"
    assert url.host_header == b"xn--strae-oqa.de:8443"
    assert url.netloc == "user:secret@xn--strae-oqa.de:8443"
    assert url.origin == ("https", "xn--strae-oqa.de", 8443)


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("😀.com", "U+1F600"),  # emoji: disallowed in IDNA 2008
        ("bücher_x.de", "U+005F"),  # "_" is not a letter, digit or hyphen
        ("-bücher.de", "hyphen"),  # no leading hyphen
        ("bücher-.de", "hyphen"),  # nor a trailing one
        ("bü--cher.de", "hyphens in 3rd and 4th position"),
        ("\u0627\u0031b\u00fc.de", "right-to-left"),  # bidi rule: no "b" in an RTL label
        ("a..bücher.de", "Empty Label"),
        ("ü" * 64 + ".de", "too long"),  # a label over 63 octets
        ("xn--zz.bücher.de", "Invalid A-label"),  # not valid Punycode
    ],
)
def test_a_host_idna_2008_refuses_is_an_invalid_url_naming_it(host: str, reason: str) -> None:
    with pytest.raises(hyperhttp.InvalidURL) as caught:
        URL(f"http://{host}/")
    assert repr(host) in str(caught.value)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://Example.COM/", "example.com"),
        ("http://xn--zz.example/", "xn--zz.example"),  # not checked: ASCII stays as written
        ("http://under_score.example/", "under_score.example"),
        ("http://a..b/", "a..b"),
    ],
)
def test_an_ascii_host_is_never_mapped(url: str, host: str) -> None:
    assert URL(url).host == host


async def test_a_request_carries_the_a_label_in_its_url_and_host_field() -> None:
    seen: list[Request] = []

    def handler(request: Request) -> MockResponse:
        seen.append(request)
        return MockResponse(200)

    async with Client(transport=MockTransport(handler)) as client:
        response = await client.get("http://Straße.de/weg?q=ü")
        assert response.status_code == 200
    (request,) = seen
    assert request.url.host == "xn--strae-oqa.de"
    assert request.headers["host"] == "xn--strae-oqa.de"
    assert request.url.target == b"/weg?q=%C3%BC"
