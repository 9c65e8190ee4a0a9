"""Digest access authentication (RFC 7616) as an auth flow, and the parser of
``WWW-Authenticate`` challenges (RFC 9110 section 11.6.1) it answers."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from typing import Generator, Iterable
from urllib.parse import quote

from ._auth import Auth, _utf8
from ._models import Response
from ._request import Request
from .exceptions import LocalProtocolError, StreamConsumed

__all__ = ["Challenge", "DigestAuth", "DigestChallenge", "digest_authorization", "parse_challenges"]

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
