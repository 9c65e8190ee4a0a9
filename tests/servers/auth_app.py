"""An ASGI app (no framework) that checks Basic, Bearer and Digest credentials itself.

The Digest side is written from RFC 7616 independently of ``hyperhttp/_digest.py``: it issues
challenges, parses the answer with its own reader, recomputes the response hash, and checks the
nonce count, so a client bug cannot be mirrored by the server.

Routes:
  /basic                        200 {"user": ...} for user "user" / "pass", else 401 with a challenge
  /bearer                       200 {"token": ...} for "Bearer tok", else 401
  /digest/<algorithm>/<qop>     Digest with that algorithm (MD5, SHA-256, SHA-512-256, each with
                                -sess) and qop: auth, auth-int, none (no qop: RFC 2069; for MD5 the
                                challenge then has no algorithm either) or a list such as
                                "auth-int,auth" (offered in that order). Query options:
                                  stale_after=N  a nonce used N times is answered stale=true
                                  userhash=true  the challenge asks for a hashed username
                                  noise=1        other challenges around the Digest one: a Basic
                                                 field, an unusable Digest one (unknown
                                                 algorithm) first, and a Newauth challenge in
                                                 the same field as the usable one
                                200 {"user", "nc", "qop", "algorithm", "body_length"} or 401.
Users: "user" / "pass" and "Jäsøn Doe" / "Secret, or not?". Every request is logged as
(path, status, reason) in ``log``, so tests count round trips.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs, unquote_to_bytes

from tests.servers.hypercorn_app import serve_lifespan

__all__ = ["AuthApp", "USERS", "REALM"]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

REALM = "hyperhttp-test@127.0.0.1"
USERS = {"user": "pass", "Jäsøn Doe": "Secret, or not?"}
_HASHES = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}
# name = "quoted value" or name = bare-value; the server's own reader, not the client's parser.
_FIELD = re.compile(r'([A-Za-z][A-Za-z0-9*-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass
class _Nonce:
    path: str
    algorithm: str
    offered: list[str]
    opaque: str
    userhash: bool
    last_nc: int = 0
    uses: int = 0


class AuthApp:
    def __init__(self) -> None:
        self.nonces: dict[str, _Nonce] = {}
        self.log: list[tuple[str, int, str]] = []

    def reset(self) -> None:
        self.log.clear()

    def statuses(self) -> list[int]:
        return [status for _, status, _ in self.log]

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers: dict[str, list[str]] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        authorization = headers.get("authorization", [""])[0]
        path: str = scope["path"]
        if path == "/basic":
            status, fields, payload, reason = self._basic(authorization)
        elif path == "/bearer":
            status, fields, payload, reason = self._bearer(authorization)
        elif path.startswith("/digest/"):
            status, fields, payload, reason = self._digest(scope, authorization, bytes(body))
        else:
            status, fields, payload, reason = 404, [], {"error": "not found"}, "no route"
        self.log.append((path, status, reason))
        content = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(content)).encode()),
                    *[(b"www-authenticate", field.encode("utf-8")) for field in fields],
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})

    # -- Basic and Bearer ----------------------------------------------------------------------

    @staticmethod
    def _basic(authorization: str) -> tuple[int, list[str], dict[str, Any], str]:
        challenge = ['Basic realm="basic@test", charset="UTF-8"']
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "basic":
            return 401, challenge, {}, "no credentials"
        try:
            user, _, password = base64.b64decode(credentials, validate=True).partition(b":")
        except ValueError:
            return 401, challenge, {}, "bad base64"
        if (user, password) != (b"user", b"pass"):
            return 401, challenge, {}, "wrong credentials"
        return 200, [], {"user": user.decode()}, "ok"

    @staticmethod
    def _bearer(authorization: str) -> tuple[int, list[str], dict[str, Any], str]:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or token != "tok":
            return 401, ['Bearer realm="bearer@test", error="invalid_token"'], {}, "bad token"
        return 200, [], {"token": token}, "ok"

    # -- Digest --------------------------------------------------------------------------------

    def _challenge(
        self, path: str, algorithm: str, offered: list[str], query: dict[str, str], stale: bool
    ) -> list[str]:
        nonce = base64.b64encode(os.urandom(24)).decode()  # "/", "+" and "=" inside quotes
        opaque = os.urandom(8).hex()
        userhash = query.get("userhash") == "true"
        self.nonces[nonce] = _Nonce(path, algorithm, offered, opaque, userhash)
        parts = [f'realm="{REALM}"']
        if offered:
            parts.append(f'qop="{", ".join(offered)}"')
        if offered or algorithm != "MD5":
            parts.append(f"algorithm={algorithm}")
        parts += [f'nonce="{nonce}"', f'opaque="{opaque}"', "charset=UTF-8"]
        if userhash:
            parts.append("userhash=true")
        if stale:
            parts.append("stale=TRUE")
        field = "Digest " + ", ".join(parts)
        if query.get("noise") != "1":
            return [field]
        return [
            'Basic realm="noise, with a comma"',
            f'Digest realm="{REALM}", qop="auth", algorithm=UNKNOWN-ALG, nonce="unusable"',
            'Newauth realm="apps", type=1, title="Login to \\"apps\\"", ' + field,
        ]

    def _digest(
        self, scope: dict[str, Any], authorization: str, body: bytes
    ) -> tuple[int, list[str], dict[str, Any], str]:
        path: str = scope["path"]
        _, _, algorithm, qop_segment = path.split("/", 3)
        offered = [] if qop_segment == "none" else qop_segment.split(",")
        raw_query: str = scope["query_string"].decode("ascii")
        query = {key: values[0] for key, values in parse_qs(raw_query).items()}
        uri = f"{path}?{raw_query}" if raw_query else path

        def refuse(reason: str, stale: bool = False) -> tuple[int, list[str], dict[str, Any], str]:
            return 401, self._challenge(path, algorithm, offered, query, stale), {}, reason

        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != "digest":
            return refuse("no credentials")
        fields: dict[str, str] = {}
        for match in _FIELD.finditer(rest):
            quoted, bare = match.group(2), match.group(3)
            value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
            fields.setdefault(match.group(1).lower(), value)
        nonce = fields.get("nonce", "")
        state = self.nonces.get(nonce)
        if state is None or state.path != path:
            return refuse("unknown nonce")
        if fields.get("realm") != REALM or fields.get("uri") != uri:
            return refuse(f"realm or uri mismatch: {fields.get('uri')!r} != {uri!r}")
        if fields.get("opaque") != state.opaque:
            return refuse("opaque not echoed")
        if fields.get("algorithm", "MD5").upper() != algorithm.upper():
            return refuse("algorithm mismatch")
        session = algorithm.upper().endswith("-SESS")
        hash_name = _HASHES[algorithm.upper().removesuffix("-SESS")]

        def h(data: str | bytes) -> str:
            if isinstance(data, str):
                data = data.encode("utf-8")
            return hashlib.new(hash_name, data).hexdigest()

        user = self._digest_user(fields, state, h)
        if user is None:
            return refuse("unknown user")
        qop = fields.get("qop")
        cnonce = fields.get("cnonce", "")
        nc_text = fields.get("nc", "")
        if offered:
            if qop not in offered or not cnonce or not re.fullmatch(r"[0-9a-fA-F]{8}", nc_text):
                return refuse(f"qop, nc or cnonce missing or not offered: {qop!r}")
            nc = int(nc_text, 16)
        else:
            if qop is not None or nc_text:
                return refuse("qop or nc sent to a challenge without qop")
            if session and not cnonce:
                return refuse("-sess needs a cnonce")
            nc = state.last_nc + 1
        ha1 = h(f"{user}:{REALM}:{USERS[user]}")
        if session:
            ha1 = h(f"{ha1}:{nonce}:{cnonce}")
        a2 = f"{scope['method']}:{uri}"
        if qop == "auth-int":
            a2 += ":" + h(body)
        if qop:
            expected = h(f"{ha1}:{nonce}:{nc_text}:{cnonce}:{qop}:{h(a2)}")
        else:
            expected = h(f"{ha1}:{nonce}:{h(a2)}")
        if not hmac.compare_digest(expected, fields.get("response", "")):
            return refuse("wrong response hash")
        if nc <= state.last_nc:
            return refuse(f"nc {nc} not above {state.last_nc}: a replay")
        stale_after = int(query.get("stale_after", "0"))
        if stale_after and state.uses >= stale_after:
            del self.nonces[nonce]
            return refuse("stale nonce", stale=True)
        state.last_nc = nc
        state.uses += 1
        payload = {
            "user": user,
            "nc": nc,
            "qop": qop,
            "algorithm": fields.get("algorithm"),
            "body_length": len(body),
        }
        return 200, [], payload, "ok"

    @staticmethod
    def _digest_user(fields: dict[str, str], state: _Nonce, h: Callable[[str], str]) -> str | None:
        """The user named by ``username``, its hash (userhash) or ``username*`` (RFC 8187)."""
        if "username*" in fields:
            if "username" in fields:
                return None  # RFC 7616 section 3.4: one or the other
            charset, _, encoded = fields["username*"].partition("''")
            if charset.upper() != "UTF-8":
                return None
            name = unquote_to_bytes(encoded).decode("utf-8")
        else:
            name = fields.get("username", "")
        if state.userhash and fields.get("userhash") == "true":
            return next((user for user in USERS if h(f"{user}:{REALM}") == name), None)
        return name if name in USERS else None
