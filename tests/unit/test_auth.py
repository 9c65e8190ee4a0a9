"""Auth flows, challenge parsing and Digest hashes, fed requests and responses built by hand."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Generator, Iterator

import pytest

import hyperhttp
from hyperhttp._auth import Auth, BasicAuth, BearerAuth, FunctionAuth, to_auth, url_auth
from hyperhttp._digest import DigestAuth, DigestChallenge, digest_authorization, parse_challenges
from hyperhttp._models import Response
from hyperhttp._request import Request

# -- helpers --------------------------------------------------------------------------------------


def fields(authorization: str) -> dict[str, str]:
    """The parameters of a Digest Authorization value (quotes removed, escapes undone)."""
    assert authorization.startswith("Digest ")
    found = {}
    for match in re.finditer(r'([\w*-]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))', authorization[7:]):
        quoted = match.group(2)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else match.group(3)
        found[match.group(1)] = value
    return found


def challenge_response(*values: str, status: int = 401) -> Response:
    return Response(status, headers=[("WWW-Authenticate", value) for value in values])


def run(flow: Generator[Request, Response, None], *responses: Response) -> list[Request]:
    """Drive a sync flow: the requests it yields, each answered with the next response."""
    return [request for request, _ in run_seen(flow, *responses)]


def run_seen(
    flow: Generator[Request, Response, None], *responses: Response
) -> list[tuple[Request, str | None]]:
    """Like ``run``, with the Authorization each request had when it was yielded (a flow may
    yield the same request twice, changed)."""
    request = next(flow)
    sent = [(request, request.headers.get("authorization"))]
    for response in responses:
        try:
            request = flow.send(response)
        except StopIteration:
            break
        sent.append((request, request.headers.get("authorization")))
    return sent


def nc_of(authorization: str | None) -> str | None:
    return None if authorization is None else fields(authorization)["nc"]


def only(request: Request) -> list[str]:
    return request.headers.get_list("authorization")


OK = Response(200)

# -- Basic, Bearer, functions, shorthands ---------------------------------------------------------


def test_basic_header_is_base64_of_user_colon_password() -> None:
    request = Request("GET", "http://example.org/")
    [sent] = run(BasicAuth("Aladdin", "open sesame").auth_flow(request))
    assert sent is request
    assert only(sent) == ["Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="]  # RFC 7617 section 2


def test_basic_encodes_text_as_utf8_and_sends_bytes_as_given() -> None:
    [sent] = run(BasicAuth("Jäsøn", "pässword").auth_flow(Request("GET", "http://h/")))
    assert only(sent) == ["Basic " + base64.b64encode("Jäsøn:pässword".encode()).decode()]
    [sent] = run(BasicAuth(b"l\xe4tin", b"pw").auth_flow(Request("GET", "http://h/")))
    assert only(sent) == ["Basic " + base64.b64encode(b"l\xe4tin:pw").decode()]


def test_basic_replaces_an_authorization_already_there() -> None:
    request = Request("GET", "http://h/", headers={"Authorization": "Bearer old"})
    [sent] = run(BasicAuth("u", "p").auth_flow(request))
    assert only(sent) == ["Basic dTpw"]


def test_basic_refuses_a_colon_in_the_user_id() -> None:
    with pytest.raises(ValueError, match="':'"):
        BasicAuth("a:b", "p")


def test_basic_repr_hides_the_password() -> None:
    assert "secret" not in repr(BasicAuth("u", "secret"))


def test_bearer_header_and_token_validation() -> None:
    [sent] = run(BearerAuth("abc.DEF-_~+/=").auth_flow(Request("GET", "http://h/")))
    assert only(sent) == ["Bearer abc.DEF-_~+/="]
    for bad in ("", "two words", "line\r\nX-Injected: 1", "tök"):
        with pytest.raises(ValueError):
            BearerAuth(bad)
    with pytest.raises(TypeError):
        BearerAuth(b"bytes")  # type: ignore[arg-type]


def test_function_auth_may_change_the_request_or_return_another() -> None:
    def add_header(request: Request) -> Request:
        request.headers["X-Signed"] = "yes"
        return request

    [sent] = run(FunctionAuth(add_header).auth_flow(Request("GET", "http://h/")))
    assert sent.headers["x-signed"] == "yes"
    other = Request("GET", "http://other/")
    [sent] = run(FunctionAuth(lambda request: other).auth_flow(Request("GET", "http://h/")))
    assert sent is other


def test_function_auth_must_return_a_request_and_be_sync() -> None:
    with pytest.raises(TypeError, match="return the request"):
        run(FunctionAuth(lambda request: None).auth_flow(Request("GET", "http://h/")))  # type: ignore[arg-type,return-value]

    async def sign(request: Request) -> Request:
        return request

    with pytest.raises(TypeError, match="async"):
        run(FunctionAuth(sign).auth_flow(Request("GET", "http://h/")))  # type: ignore[arg-type]


def test_to_auth_shorthands() -> None:
    assert to_auth(None) is None
    digest = DigestAuth("u", "p")
    assert to_auth(digest) is digest
    basic = to_auth(("u", "p"))
    assert isinstance(basic, BasicAuth)
    [sent] = run(basic.auth_flow(Request("GET", "http://h/")))
    assert only(sent) == ["Basic dTpw"]

    def sign(request: Request) -> Request:
        return request

    function = to_auth(sign)
    assert isinstance(function, FunctionAuth) and function.func is sign
    for bad in ("user:pass", ["u", "p"], ("u", "p", "x"), 42):
        with pytest.raises(TypeError):
            to_auth(bad)  # type: ignore[arg-type]


def test_url_auth_takes_percent_decoded_userinfo() -> None:
    auth = url_auth(hyperhttp.URL("http://us%40er:p%3Aw%20d@example.org/"))
    assert auth is not None
    [sent] = run(auth.auth_flow(Request("GET", "http://example.org/")))
    assert only(sent) == ["Basic " + base64.b64encode(b"us@er:p:w d").decode()]
    from_text = url_auth("http://j%C3%A4s:@example.org/")
    assert from_text is not None and from_text.username == "jäs"
    raw = url_auth("http://%FF:pw@example.org/")  # not UTF-8: the bytes as they are
    assert raw is not None and raw.username == b"\xff"
    assert url_auth(hyperhttp.URL("http://example.org/")) is None
    assert url_auth("http://example.org/") is None


async def test_the_default_async_flow_drives_the_sync_one() -> None:
    class TwoStep(Auth):
        def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
            request.headers["X-Step"] = "1"
            response = yield request
            request.headers["X-Step"] = f"2 after {response.status_code}"
            yield request

    flow = TwoStep().async_auth_flow(Request("GET", "http://h/"))
    first = await flow.__anext__()
    assert first.headers["x-step"] == "1"
    second = await flow.asend(Response(401))
    assert second.headers["x-step"] == "2 after 401"
    with pytest.raises(StopAsyncIteration):
        await flow.asend(OK)


# -- challenge parsing -----------------------------------------------------------------------------


def test_challenges_with_quoted_commas_and_escapes() -> None:
    [challenge] = parse_challenges(
        [r'Digest realm="a, b", nonce="q\"uo\\te", opaque=bare/value==, qop="auth,auth-int"']
    )
    assert challenge.scheme == "digest"
    assert challenge.params == {
        "realm": "a, b",
        "nonce": 'q"uo\\te',
        "opaque": "bare/value==",
        "qop": "auth,auth-int",
    }


def test_several_challenges_in_one_field_and_across_fields() -> None:
    challenges = parse_challenges(
        [
            r'Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple"',
            "Negotiate, Basic YWxhZGRpbjpvcGVuc2VzYW1l==,  , Digest REALM=x,Nonce=y",
        ]
    )
    assert [c.scheme for c in challenges] == ["newauth", "basic", "negotiate", "basic", "digest"]
    assert challenges[0].params == {"realm": "apps", "type": "1", "title": 'Login to "apps"'}
    assert challenges[1].params == {"realm": "simple"}
    assert challenges[2].params == {} and challenges[2].token68 is None
    assert challenges[3].token68 == "YWxhZGRpbjpvcGVuc2VzYW1l=="
    assert challenges[4].params == {"realm": "x", "nonce": "y"}


def test_challenge_parameters_with_spaces_around_equals_and_repeats() -> None:
    [challenge] = parse_challenges(['DIGEST realm = "r" , nonce= "n", realm="second"'])
    assert challenge.scheme == "digest"
    assert challenge.params == {"realm": "r", "nonce": "n"}  # the first of a repeated name wins


def test_malformed_elements_are_skipped_not_fatal() -> None:
    challenges = parse_challenges(
        [
            '=oops, Digest realm="r"junk, nonce="n", ="x", qop=auth',
            'orphan="before any scheme"',
            'Basic realm="unterminated',
            "",
        ]
    )
    assert [c.scheme for c in challenges] == ["digest", "basic"]
    assert challenges[0].params == {"nonce": "n", "qop": "auth"}
    assert challenges[1].params == {}


def test_digest_challenge_choice_of_algorithm_and_qop() -> None:
    def digest(value: str) -> DigestChallenge | None:
        return DigestChallenge.from_challenge(parse_challenges([value])[0])

    chosen = digest('Digest realm="r", nonce="n", qop="auth-int, auth", algorithm=sha-256-SESS')
    assert chosen is not None
    assert (chosen.qop, chosen.hash_name, chosen.session) == ("auth", "sha256", True)
    only_int = digest('Digest realm="r", nonce="n", qop="auth-int"')
    assert only_int is not None and only_int.qop == "auth-int" and only_int.hash_name == "md5"
    rfc2069 = digest('Digest realm="r", nonce="n"')
    assert rfc2069 is not None and rfc2069.qop is None and rfc2069.algorithm is None
    stale = digest('Digest realm="r", nonce="n", stale=TRUE, userhash="true"')
    assert stale is not None and stale.stale and stale.userhash
    assert digest('Digest realm="r", nonce="n", algorithm=SHA-1') is None
    assert digest('Digest realm="r", nonce="n", qop="auth-conf"') is None
    assert digest('Digest realm="r"') is None
    assert digest('Basic realm="r", nonce="n"') is None


# -- Digest hashes ---------------------------------------------------------------------------------

RFC_USER = "Mufasa"
RFC_PASSWORD = "Circle of Life"
RFC_REALM = "http-auth@example.org"
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_URI = "/dir/index.html"
# The response values printed in RFC 7616 section 3.9.1.
RFC_RESPONSES = {
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
}


def formula(name: str, method: str, uri: str, nc: str, qop: str | None = None) -> str:
    """RFC 7616 section 3.4.1 spelled out with hashlib, independently of hyperhttp."""

    def h(text: str) -> str:
        return hashlib.new(name, text.encode()).hexdigest()

    ha1 = h(f"{RFC_USER}:{RFC_REALM}:{RFC_PASSWORD}")
    ha2 = h(f"{method}:{uri}")
    if qop is None:
        return h(f"{ha1}:{RFC_NONCE}:{ha2}")
    return h(f"{ha1}:{RFC_NONCE}:{nc}:{RFC_CNONCE}:{qop}:{ha2}")


def rfc_challenge(algorithm: str) -> DigestChallenge:
    [challenge] = parse_challenges(
        [
            f'Digest realm="{RFC_REALM}", qop="auth, auth-int", algorithm={algorithm}, '
            f'nonce="{RFC_NONCE}", opaque="{RFC_OPAQUE}"'
        ]
    )
    digest = DigestChallenge.from_challenge(challenge)
    assert digest is not None
    return digest


@pytest.mark.parametrize(("algorithm", "hash_name"), [("SHA-256", "sha256"), ("MD5", "md5")])
def test_digest_response_of_the_rfc_7616_example(algorithm: str, hash_name: str) -> None:
    value = digest_authorization(
        rfc_challenge(algorithm),
        RFC_USER,
        RFC_PASSWORD,
        "GET",
        RFC_URI,
        nc=1,
        cnonce=RFC_CNONCE,
    )
    sent = fields(value)
    assert sent["response"] == RFC_RESPONSES[algorithm]
    assert sent["response"] == formula(hash_name, "GET", RFC_URI, "00000001", "auth")
    assert sent == {
        "username": RFC_USER,
        "realm": RFC_REALM,
        "uri": RFC_URI,
        "algorithm": algorithm,
        "nonce": RFC_NONCE,
        "nc": "00000001",
        "cnonce": RFC_CNONCE,
        "qop": "auth",
        "response": RFC_RESPONSES[algorithm],
        "opaque": RFC_OPAQUE,
    }
    # algorithm, qop and nc are never quoted (RFC 7616 section 3.4)
    assert "algorithm=" + algorithm in value and "qop=auth," in value and "nc=00000001," in value


def test_digest_without_qop_is_rfc_2069() -> None:
    challenge = DigestChallenge(RFC_REALM, RFC_NONCE)
    sent = fields(
        digest_authorization(challenge, RFC_USER, RFC_PASSWORD, "GET", RFC_URI, nc=1, cnonce="c")
    )
    assert sent["response"] == formula("md5", "GET", RFC_URI, "")
    assert not {"qop", "nc", "cnonce", "algorithm", "opaque"} & set(sent)


@pytest.mark.parametrize(
    ("algorithm", "name"), [("MD5-sess", "md5"), ("SHA-512-256-sess", "sha512_256")]
)
def test_digest_sess_with_auth_int(algorithm: str, name: str) -> None:
    if name not in hashlib.algorithms_available:
        pytest.skip(f"hashlib has no {name}")
    body = b'{"a": 1}'
    challenge = DigestChallenge("r", "n", algorithm=algorithm, qop="auth-int")
    sent = fields(
        digest_authorization(challenge, "u", "p", "PUT", "/x?y=1", nc=10, cnonce="c", body=body)
    )

    def h(data: bytes) -> str:
        return hashlib.new(name, data).hexdigest()

    ha1 = h(f"{h(b'u:r:p')}:n:c".encode())
    ha2 = h(f"PUT:/x?y=1:{h(body)}".encode())
    assert sent["response"] == h(f"{ha1}:n:0000000a:c:auth-int:{ha2}".encode())
    assert (sent["algorithm"], sent["qop"], sent["nc"]) == (algorithm, "auth-int", "0000000a")


def test_digest_sess_without_qop_still_sends_its_cnonce() -> None:
    challenge = DigestChallenge("r", "n", algorithm="MD5-sess")
    sent = fields(digest_authorization(challenge, "u", "p", "GET", "/", nc=1, cnonce="c"))
    assert sent["cnonce"] == "c" and "nc" not in sent and "qop" not in sent


def test_digest_userhash_hashes_the_username_field_only() -> None:
    challenge = DigestChallenge("r", "n", algorithm="SHA-256", qop="auth", userhash=True)
    sent = fields(digest_authorization(challenge, "Jäsøn Doe", "p", "GET", "/", nc=1, cnonce="c"))
    sha = hashlib.sha256
    assert sent["username"] == sha("Jäsøn Doe:r".encode()).hexdigest()
    assert sent["userhash"] == "true" and "username*" not in sent
    ha1 = sha("Jäsøn Doe:r:p".encode()).hexdigest()
    ha2 = sha(b"GET:/").hexdigest()
    assert sent["response"] == sha(f"{ha1}:n:00000001:c:auth:{ha2}".encode()).hexdigest()


def test_digest_non_ascii_username_goes_as_username_star() -> None:
    challenge = DigestChallenge("r", "n", qop="auth")
    sent = fields(digest_authorization(challenge, "Jäsøn Doe", "p", "GET", "/", nc=1, cnonce="c"))
    assert "username" not in sent
    assert sent["username*"] == "UTF-8''J%C3%A4s%C3%B8n%20Doe"  # RFC 7616 section 3.9.2


def test_digest_quotes_and_backslashes_are_escaped() -> None:
    challenge = DigestChallenge('re"alm', "n", qop="auth")
    value = digest_authorization(challenge, 'a"b\\c', "p", "GET", "/", nc=1, cnonce="c")
    assert 'username="a\\"b\\\\c"' in value and 'realm="re\\"alm"' in value
    assert fields(value)["username"] == 'a"b\\c'


# -- the Digest flow -------------------------------------------------------------------------------

CHALLENGE = 'Digest realm="r", nonce="{nonce}", qop="auth", algorithm=SHA-256, opaque="o"'


def digest_401(nonce: str = "n1", extra: str = "") -> Response:
    return challenge_response(CHALLENGE.format(nonce=nonce) + extra)


def test_digest_flow_answers_a_401_once() -> None:
    auth = DigestAuth("u", "p")
    sent = run_seen(auth.auth_flow(Request("GET", "http://h/a?b=1")), digest_401(), OK)
    assert len(sent) == 2 and sent[0][1] is None
    assert only(sent[1][0]) == [sent[1][1]]
    answer = fields(sent[1][1] or "")
    assert (answer["uri"], answer["nc"], answer["opaque"]) == ("/a?b=1", "00000001", "o")


def test_digest_flow_without_a_401_or_without_a_usable_challenge_ends() -> None:
    auth = DigestAuth("u", "p")
    assert len(run(auth.auth_flow(Request("GET", "http://h/")), OK, OK)) == 1
    basic_only = challenge_response('Basic realm="r"')
    assert len(run(auth.auth_flow(Request("GET", "http://h/")), basic_only, OK)) == 1
    unknown = challenge_response('Digest realm="r", nonce="n", algorithm=SHA-1')
    assert len(run(auth.auth_flow(Request("GET", "http://h/")), unknown, OK)) == 1


def test_digest_flow_returns_a_second_401_without_another_retry() -> None:
    auth = DigestAuth("u", "wrong")
    sent = run(auth.auth_flow(Request("GET", "http://h/")), digest_401(), digest_401(), OK)
    assert len(sent) == 2


def test_digest_nc_rises_across_requests_and_resets_on_a_new_nonce() -> None:
    auth = DigestAuth("u", "p")
    run(auth.auth_flow(Request("GET", "http://h/")), digest_401(), OK)

    def next_nc(*responses: Response, url: str = "http://h/other") -> list[str | None]:
        return [
            nc_of(seen) for _, seen in run_seen(auth.auth_flow(Request("GET", url)), *responses)
        ]

    assert next_nc(OK) == ["00000002"]  # authorised up front
    assert next_nc(OK) == ["00000003"]
    assert next_nc(digest_401("n2"), OK) == ["00000004", "00000001"]  # new nonce: count again
    assert next_nc(OK) == ["00000002"]
    assert next_nc(digest_401("n2", ", stale=true"), OK) == ["00000003", "00000001"]
    assert next_nc(OK, url="http://elsewhere/") == [None]  # another origin: not up front
    assert next_nc(OK, url="https://h/") == [None]


def test_digest_same_nonce_again_keeps_counting() -> None:
    auth = DigestAuth("u", "p")
    run(auth.auth_flow(Request("GET", "http://h/")), digest_401(), OK)
    sent = run_seen(auth.auth_flow(Request("GET", "http://h/")), digest_401(), OK)
    assert [nc_of(seen) for _, seen in sent] == ["00000002", "00000003"]


def test_digest_auth_int_hashes_the_body_and_refuses_a_stream() -> None:
    auth = DigestAuth("u", "p")
    auth_int = challenge_response('Digest realm="r", nonce="n", qop="auth-int"')
    sent = run(auth.auth_flow(Request("POST", "http://h/", content=b"body")), auth_int, OK)
    assert fields(sent[1].headers["authorization"])["qop"] == "auth-int"

    def pieces() -> Iterator[bytes]:
        yield b"streamed"

    with pytest.raises(hyperhttp.LocalProtocolError, match="auth-int"):
        run(
            DigestAuth("u", "p").auth_flow(Request("POST", "http://h/", content=pieces())), auth_int
        )
    with pytest.raises(hyperhttp.LocalProtocolError, match="auth-int"):  # known up front
        run(auth.auth_flow(Request("POST", "http://h/", content=pieces())))


def test_digest_refuses_to_resend_a_consumed_stream() -> None:
    def pieces() -> Iterator[bytes]:
        yield b"streamed"

    request = Request("POST", "http://h/", content=pieces())
    with pytest.raises(hyperhttp.StreamConsumed, match="cannot be sent again"):
        run(DigestAuth("u", "p").auth_flow(request), digest_401())


def test_digest_picks_the_first_usable_of_several_fields() -> None:
    response = challenge_response(
        'Basic realm="r"',
        'Digest realm="r", nonce="bad", algorithm=UNKNOWN',
        'Newauth x=1, Digest realm="r", nonce="good", qop=auth, algorithm=MD5-sess',
        'Digest realm="r", nonce="later"',
    )
    sent = run(DigestAuth("u", "p").auth_flow(Request("GET", "http://h/")), response, OK)
    answer = fields(sent[1].headers["authorization"])
    assert (answer["nonce"], answer["algorithm"]) == ("good", "MD5-sess")
