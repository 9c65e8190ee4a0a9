"""Authentication: Basic, Bearer, Digest, and any function of a request, as flows.

An auth is a generator that yields requests and is sent the responses to them: it yields the
request it was given (with credentials added), sees the response, and may yield the request once
more (Digest answering a challenge). The Client drives the flow and returns the last response, so
an auth never touches a connection and is tested by feeding it responses built by hand.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import re
import secrets
import threading
from typing import AsyncGenerator, Callable, Generator, Iterable, Tuple, Union
from urllib.parse import quote, unquote_to_bytes, urlsplit

from ._models import Response
from ._request import Request
from ._url import URL
from .exceptions import LocalProtocolError, StreamConsumed

__all__ = [
    "Auth",
    "AuthTypes",
    "BasicAuth",
    "BearerAuth",
    "DigestAuth",
    "FunctionAuth",
    "Challenge",
    "DigestChallenge",
    "digest_authorization",
    "parse_challenges",
    "to_auth",
    "url_auth",
]


class Auth:
    """Base class. Subclasses override ``auth_flow`` (a sync generator) or ``async_auth_flow``.

    The flow yields a request, is sent its response, and either yields the next request or ends;
    the last response is the one the caller gets. ``requires_response_body``: the Client reads each
    response's body before handing it to the flow (for schemes that look at the body).
    """

    requires_response_body: bool = False

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Yield the requests to send, receiving each one's response; this base sends ``request``.

        :param request: the request to authenticate; changing it in place is allowed.
        """
        yield request

    async def async_auth_flow(self, request: Request) -> AsyncGenerator[Request, Response]:
        """Drive ``auth_flow``: yield its requests, send it the responses.

        Override it instead of ``auth_flow`` for a flow that must await something.

        :param request: the request to authenticate.
        """
        flow = self.auth_flow(request)
        try:
            request = next(flow)
            while True:
                response = yield request
                try:
                    request = flow.send(response)
                except StopIteration:
                    return
        finally:
            flow.close()


def _utf8(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


class BasicAuth(Auth):
    """``Authorization: Basic base64(user ":" password)`` on every request (RFC 7617).

    Text is encoded as UTF-8 (RFC 7617 section 2.1, ``charset="UTF-8"``); bytes are sent as given.
    A user-id with a colon cannot be told apart from the password, so it is refused.

    :param username: the user-id.
    :param password: the password.
    :raises ValueError: when ``username`` holds a colon.
    """

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        user = _utf8(username)
        if b":" in user:
            raise ValueError("a Basic auth user-id cannot contain ':' (RFC 7617 section 2)")
        self.username = username
        credentials = base64.b64encode(user + b":" + _utf8(password)).decode("ascii")
        self._header = f"Basic {credentials}"

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Set the Authorization field of ``request`` and send it.

        :param request: the request to authenticate.
        """
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=***)"


class BearerAuth(Auth):
    """``Authorization: Bearer <token>`` on every request (RFC 6750 section 2.1).

    :param token: the token: printable ASCII, without spaces.
    :raises TypeError: when ``token`` is not a str.
    :raises ValueError: when ``token`` is empty or holds a space or a character that is not
        printable ASCII.
    """

    def __init__(self, token: str) -> None:
        if not isinstance(token, str):
            raise TypeError(f"a bearer token must be a str, not {type(token).__name__}")
        if not token or not all("!" <= c <= "~" for c in token):
            raise ValueError("a bearer token must be non-empty printable ASCII without spaces")
        self._header = f"Bearer {token}"

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Set the Authorization field of ``request`` and send it.

        :param request: the request to authenticate.
        """
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(token=***)"


class FunctionAuth(Auth):
    """A plain function ``request -> request`` as an auth.

    The function may change the request in place (headers are live) or return another one.
    Async functions need an Auth subclass overriding ``async_auth_flow``.

    :param func: the function, called with each request; it returns the request to send.
    """

    def __init__(self, func: Callable[[Request], Request]) -> None:
        self.func = func

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Send what the function returns for ``request``.

        :param request: the request to authenticate.
        :raises TypeError: when the function is async, or returns something other than a
            Request.
        """
        result = self.func(request)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()  # never awaited, on purpose: no RuntimeWarning
            raise TypeError(
                f"auth function {self.func!r} is async; subclass hyperhttp.Auth and override "
                "async_auth_flow instead"
            )
        if not isinstance(result, Request):
            raise TypeError(
                f"auth function {self.func!r} returned {type(result).__name__}, not the Request "
                "(return the request, changed or new)"
            )
        yield result


AuthTypes = Union[
    Auth, Tuple[Union[str, bytes], Union[str, bytes]], Callable[[Request], Request], None
]


def to_auth(value: AuthTypes) -> Auth | None:
    """``auth=`` shorthands: None, an Auth, a ``(username, password)`` tuple (Basic) or a callable."""
    if value is None:
        return None
    if isinstance(value, Auth):
        return value
    if isinstance(value, tuple):
        if len(value) != 2:
            raise TypeError(f"an auth tuple is (username, password), not {len(value)} items")
        return BasicAuth(value[0], value[1])
    if callable(value):
        return FunctionAuth(value)
    raise TypeError(
        "auth must be an Auth, a (username, password) tuple or a callable, "
        f"not {type(value).__name__}"
    )


def url_auth(url: URL | str) -> BasicAuth | None:
    """Basic credentials from a URL's userinfo (``http://user:pass@host/``), percent-decoded.

    ``URL`` keeps userinfo as written, still percent-encoded, so it is decoded here (to text when it
    is UTF-8, else the bytes are kept). A ``str`` is split as it is: use it when the URL has been
    through a ``URL`` round trip, which re-encodes the userinfo. None when there is no userinfo.
    """
    if isinstance(url, URL):
        username, password = url.username, url.password
    else:
        split = urlsplit(url)
        username, password = split.username or "", split.password or ""
    if not username and not password:
        return None
    return BasicAuth(_percent_decoded(username), _percent_decoded(password))


def _percent_decoded(value: str) -> str | bytes:
    raw = unquote_to_bytes(value)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


# -- challenges (RFC 9110 section 11.6.1) ---------------------------------------------------------

_TCHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_WHITESPACE = " \t"


class Challenge:
    """One challenge from ``WWW-Authenticate``: its scheme (lower-cased), its parameters (names
    lower-cased, values unquoted; the first of a repeated name wins) or its token68."""

    __slots__ = ("scheme", "params", "token68")

    def __init__(
        self, scheme: str, params: dict[str, str] | None = None, token68: str | None = None
    ) -> None:
        self.scheme = scheme.lower()
        self.params = params if params is not None else {}
        self.token68 = token68

    def __repr__(self) -> str:
        return f"Challenge({self.scheme!r}, {self.params!r}, token68={self.token68!r})"


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """Every challenge in these field values, in order.

    ``#challenge`` lists share the comma with their parameters, so a new challenge is recognised by
    a token that is not followed by ``=``. Quoted strings keep their commas and lose their escapes.
    An element that does not parse is skipped up to the next comma instead of failing the field:
    one odd challenge must not hide the Digest one beside it.
    """
    challenges: list[Challenge] = []
    for value in values:
        _parse_field(value, challenges)
    return challenges


def _parse_field(text: str, out: list[Challenge]) -> None:
    current: Challenge | None = None
    end = len(text)
    pos = 0
    while True:
        while pos < end and (text[pos] in _WHITESPACE or text[pos] == ","):
            pos += 1
        if pos >= end:
            return
        start = pos
        while pos < end and text[pos] in _TCHARS:
            pos += 1
        if pos == start:
            pos = _next_element(text, pos)
            continue
        name = text[start:pos]
        pos = _skip_whitespace(text, pos)
        if pos < end and text[pos] == "=":
            value, pos = _param_value(text, _skip_whitespace(text, pos + 1))
            pos = _skip_whitespace(text, pos)
            if value is None or current is None or (pos < end and text[pos] != ","):
                pos = _next_element(text, pos)
                continue
            current.params.setdefault(name.lower(), value)
            continue
        current = Challenge(name)
        out.append(current)
        match = _TOKEN68.match(text, pos)
        if match is not None:
            after = _skip_whitespace(text, match.end())
            if after >= end or text[after] == ",":
                current.token68 = match.group()
                pos = after


def _skip_whitespace(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WHITESPACE:
        pos += 1
    return pos


def _param_value(text: str, pos: int) -> tuple[str | None, int]:
    """A quoted-string (unescaped) or a bare value at ``pos``, and where it ends.

    Bare values are taken up to a comma or whitespace, not only token characters: servers send
    nonces with ``/`` and ``=`` unquoted."""
    end = len(text)
    if pos < end and text[pos] == '"':
        chars: list[str] = []
        pos += 1
        while pos < end:
            char = text[pos]
            if char == "\\" and pos + 1 < end:
                chars.append(text[pos + 1])
                pos += 2
            elif char == '"':
                return "".join(chars), pos + 1
            else:
                chars.append(char)
                pos += 1
        return None, end  # unterminated
    start = pos
    while pos < end and text[pos] != "," and text[pos] not in _WHITESPACE:
        pos += 1
    return (text[start:pos] if pos > start else None), pos


def _next_element(text: str, pos: int) -> int:
    """The position of the next comma outside a quoted string (or the end)."""
    quoted = False
    end = len(text)
    while pos < end:
        char = text[pos]
        if quoted and char == "\\":
            pos += 1
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            return pos
        pos += 1
    return end


# -- Digest (RFC 7616, and RFC 2617 / RFC 2069 servers) -------------------------------------------

_DIGEST_HASHES = {"MD5": "md5", "SHA-256": "sha256"}
if "sha512_256" in hashlib.algorithms_available:
    _DIGEST_HASHES["SHA-512-256"] = "sha512_256"
# RFC 8187 attr-char, less ALPHA / DIGIT and what ``quote`` always keeps.
_ATTR_CHARS = "!#$&+^`|"


class DigestChallenge:
    """The parts of a Digest challenge a response is computed from, with the qop chosen."""

    __slots__ = (
        "realm",
        "nonce",
        "opaque",
        "algorithm",
        "hash_name",
        "session",
        "qop",
        "userhash",
        "stale",
    )

    def __init__(
        self,
        realm: str,
        nonce: str,
        *,
        opaque: str | None = None,
        algorithm: str | None = None,
        qop: str | None = None,
        userhash: bool = False,
        stale: bool = False,
    ) -> None:
        name = (algorithm or "MD5").upper()
        self.session = name.endswith("-SESS")
        hash_name = _DIGEST_HASHES.get(name[:-5] if self.session else name)
        if hash_name is None:
            raise ValueError(f"unsupported Digest algorithm {algorithm!r}")
        if qop not in (None, "auth", "auth-int"):
            raise ValueError(f"unsupported Digest qop {qop!r}")
        self.hash_name = hash_name
        self.realm = realm
        self.nonce = nonce
        self.opaque = opaque
        self.algorithm = algorithm
        self.qop = qop
        self.userhash = userhash
        self.stale = stale

    @classmethod
    def from_challenge(cls, challenge: Challenge) -> DigestChallenge | None:
        """The challenge if this client can answer it: a known algorithm, a nonce, and no qop
        (RFC 2069) or one that offers ``auth`` (preferred: it needs no body) or ``auth-int``."""
        params = challenge.params
        nonce = params.get("nonce")
        if challenge.scheme != "digest" or nonce is None:
            return None
        qop: str | None = None
        offered = params.get("qop")
        if offered is not None:
            options = {option.strip().lower() for option in offered.split(",")}
            if "auth" in options:
                qop = "auth"
            elif "auth-int" in options:
                qop = "auth-int"
            else:
                return None
        try:
            return cls(
                params.get("realm", ""),
                nonce,
                opaque=params.get("opaque"),
                algorithm=params.get("algorithm"),
                qop=qop,
                userhash=params.get("userhash", "").lower() == "true",
                stale=params.get("stale", "").lower() == "true",
            )
        except ValueError:
            return None

    def hash(self, data: bytes) -> str:
        return hashlib.new(self.hash_name, data).hexdigest()


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _username_field(challenge: DigestChallenge, username: bytes) -> str:
    """``username="..."``, its hash (RFC 7616 section 3.4.4), or ``username*`` (RFC 8187) for a
    name that a quoted-string cannot carry as plain ASCII."""
    if challenge.userhash:
        hashed = challenge.hash(username + b":" + challenge.realm.encode("utf-8"))
        return f'username="{hashed}"'
    if all(0x20 <= byte < 0x7F for byte in username):
        return "username=" + _quoted(username.decode("ascii"))
    try:
        username.decode("utf-8")
        charset = "UTF-8"
    except UnicodeDecodeError:
        charset = "ISO-8859-1"
    return f"username*={charset}''{quote(username, safe=_ATTR_CHARS)}"


def digest_authorization(
    challenge: DigestChallenge,
    username: str | bytes,
    password: str | bytes,
    method: str,
    uri: str,
    *,
    nc: int,
    cnonce: str,
    body: bytes = b"",
) -> str:
    """The ``Authorization`` value answering ``challenge`` (RFC 7616 section 3.4).

    ``A1 = user:realm:password`` (``-sess``: ``H(A1):nonce:cnonce``), ``A2 = method:uri``
    (``auth-int``: ``:H(body)`` appended), and ``response = H(H(A1):nonce:nc:cnonce:qop:H(A2))``,
    or ``H(H(A1):nonce:H(A2))`` without a qop (RFC 2069). Text is UTF-8. With ``userhash`` only
    the ``username`` field is hashed; A1 keeps the name itself.
    """
    user = _utf8(username)
    hash_ = challenge.hash
    nonce = challenge.nonce
    qop = challenge.qop
    nc_value = f"{nc:08x}"
    ha1 = hash_(b":".join((user, challenge.realm.encode("utf-8"), _utf8(password))))
    if challenge.session:
        ha1 = hash_(f"{ha1}:{nonce}:{cnonce}".encode())
    a2 = f"{method}:{uri}"
    if qop == "auth-int":
        a2 = f"{a2}:{hash_(body)}"
    ha2 = hash_(a2.encode())
    if qop is None:
        response = hash_(f"{ha1}:{nonce}:{ha2}".encode())
    else:
        response = hash_(f"{ha1}:{nonce}:{nc_value}:{cnonce}:{qop}:{ha2}".encode())
    fields = [
        _username_field(challenge, user),
        "realm=" + _quoted(challenge.realm),
        "nonce=" + _quoted(nonce),
        "uri=" + _quoted(uri),
        f'response="{response}"',
    ]
    if challenge.algorithm is not None:
        fields.append(f"algorithm={challenge.algorithm}")
    if challenge.opaque is not None:
        fields.append("opaque=" + _quoted(challenge.opaque))
    if qop is not None:
        fields += [f"qop={qop}", f"nc={nc_value}", "cnonce=" + _quoted(cnonce)]
    elif challenge.session:
        # RFC 2617 forbids cnonce without qop, but a -sess A1 cannot be computed without one.
        fields.append("cnonce=" + _quoted(cnonce))
    if challenge.userhash:
        fields.append("userhash=true")
    return "Digest " + ", ".join(fields)


class DigestAuth(Auth):
    """HTTP Digest (RFC 7616; RFC 2617 and RFC 2069 servers too).

    A request goes out bare; on a 401 with a Digest challenge it is sent once more with the answer.
    The challenge is kept: later requests to the same origin are authorised up front, the nonce
    count (``nc``) rising per nonce across requests, so they need no 401 round trip. A new nonce or
    ``stale=true`` starts the count again. One retry per request at most: a second 401 is the
    caller's answer (wrong credentials must not loop).

    Algorithms: MD5, SHA-256 and SHA-512-256 (when hashlib has it), each also ``-sess``; the first
    challenge this client can answer wins (RFC 7616 section 3.7: servers list their preference
    first). ``auth-int`` hashes the body, so it needs the body in memory: a streamed body raises
    LocalProtocolError. A streamed body that cannot be sent again raises StreamConsumed rather
    than going out empty with the retry.

    :param username: the user name.
    :param password: the password.
    """

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        self.username = username
        self._username = _utf8(username)
        self._password = _utf8(password)
        self._lock = threading.Lock()
        # The last challenge answered, the origin it came from, and the last nc sent with it.
        self._origin: tuple[str, str, int] | None = None
        self._challenge: DigestChallenge | None = None
        self._nc = 0

    def auth_flow(self, request: Request) -> Generator[Request, Response, None]:
        """Send ``request``, authorised up front when a challenge of its origin is kept.

        On a 401 with a Digest challenge it can answer, send it once more, authorised.

        :param request: the request to authenticate.
        :raises LocalProtocolError: when the challenge asks for ``qop=auth-int`` and the body is
            a stream.
        :raises StreamConsumed: when the request must be sent again and its body was a one-shot
            stream.
        """
        origin = request.url.origin
        with self._lock:
            challenge = self._challenge if self._origin == origin else None
        if challenge is not None:
            self._authorize(request, challenge, _body(request, challenge))
        response = yield request
        if response.status_code != 401:
            return
        challenge = self._pick(response)
        if challenge is None:
            return
        body = _body(request, challenge)
        if request.stream is not None and not request.replayable:
            raise StreamConsumed(
                "cannot answer the Digest challenge: the request body was a stream that cannot be "
                "sent again (pass bytes, a file path or a seekable file instead)"
            )
        with self._lock:
            kept = self._challenge
            if (
                kept is None
                or self._origin != origin
                or kept.nonce != challenge.nonce
                or challenge.stale
            ):
                self._nc = 0
            self._origin = origin
            self._challenge = challenge
        self._authorize(request, challenge, body)
        yield request

    @staticmethod
    def _pick(response: Response) -> DigestChallenge | None:
        for challenge in parse_challenges(response.headers.get_list("www-authenticate")):
            digest = DigestChallenge.from_challenge(challenge)
            if digest is not None:
                return digest
        return None

    def _authorize(self, request: Request, challenge: DigestChallenge, body: bytes) -> None:
        with self._lock:
            kept = self._challenge
            if kept is not None and kept.nonce == challenge.nonce:
                self._nc += 1
                nc = self._nc
            else:  # replaced meanwhile by another nonce: this one is counted no further
                nc = 1
        request.headers["Authorization"] = digest_authorization(
            challenge,
            self._username,
            self._password,
            request.method,
            request.url.target.decode("ascii"),
            nc=nc,
            cnonce=secrets.token_hex(16),
            body=body,
        )

    def __repr__(self) -> str:
        return f"DigestAuth(username={self.username!r}, password=***)"


def _body(request: Request, challenge: DigestChallenge) -> bytes:
    """The body bytes ``auth-int`` hashes (RFC 7616 section 3.4.3: the message body)."""
    if challenge.qop != "auth-int":
        return b""
    if request.stream is not None:
        raise LocalProtocolError(
            "the server asks for Digest qop=auth-int, which hashes the request body, but the body "
            "is a stream: pass it as bytes"
        )
    return bytes(request.content) if request.content is not None else b""
