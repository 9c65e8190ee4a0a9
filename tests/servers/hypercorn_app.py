"""hypercorn serving a small ASGI app in a background thread, for tests against a real server.

Routes:
  /echo            method, path, query, headers and body of the request, as JSON
  /bytes/<n>       n deterministic bytes with Content-Length
  /chunked/<n>     n deterministic bytes streamed in pieces (no Content-Length: chunked framing)
  /hash            sha256 (crc32 with ?digest=crc32) and length of the request body, streamed,
                   and its framing fields
  /multipart-size  the same as /hash (for a large multipart body, which is not parsed)
  /multipart       each part of a multipart/form-data body: fields, length, sha256
  /compressed/<codings>/<n>  pattern(n) with the codings applied in order, in 4 KiB pieces
  /gzip-bomb       10 GiB of zeros as about 10 MB of gzip
  /status/<code>   an empty response with that status
  /redirect/<code>?to=<location>  a redirect with that status to that Location
  /chain/<code>/<n>  n redirects with that status, then /echo (/chain/<code>/loop: to itself)
  /set-cookie?c=<value>&c=...  a Set-Cookie field for each c
  /charset/<name>  "héllo wörld €" (or what the charset can carry) encoded in <name>
The app records every client (host, port) it sees, which is one per TCP connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import ssl
import threading
from typing import Any, Awaitable, Callable

from hypercorn.asyncio import serve
from hypercorn.config import Config

__all__ = ["HypercornServer", "pattern", "serve_lifespan"]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def pattern(size: int) -> bytes:
    """Deterministic, non-repeating-looking bytes for body checks: byte i is (7i + i // 251) % 256.

    That sequence repeats every 251 * 128 bytes (block q of 251 bytes is (222q + 7r) % 256, and
    222q % 256 repeats every 128 blocks), so one period is built once and repeated: a 50 MB body
    takes milliseconds, not seconds."""
    return pattern_slice(0, size)


def pattern_slice(offset: int, size: int) -> bytes:
    """``pattern(offset + size)[offset:]``, without building what comes before ``offset``."""
    start = offset % len(_PERIOD)
    repeats = (start + size) // len(_PERIOD) + 1
    return (_PERIOD * repeats)[start : start + size]


_PERIOD = bytes((i * 7 + i // 251) % 256 for i in range(251 * 128))


TEXT = "héllo wörld €"


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """Answer hypercorn's startup and shutdown messages (ASGI lifespan)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class App:
    def __init__(self) -> None:
        self.clients: set[tuple[str, int]] = set()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        client = scope.get("client")
        if client:
            self.clients.add(tuple(client))  # type: ignore[arg-type]
        path: str = scope["path"]
        if path in ("/hash", "/multipart-size"):  # streamed: any size, constant memory
            import zlib

            fast = scope["query_string"] == b"digest=crc32"  # for GiB bodies: crc32, not sha256
            digest = hashlib.sha256()
            crc = 0
            length = 0
            async for piece in _body_pieces(receive):
                if fast:
                    crc = zlib.crc32(piece, crc)
                else:
                    digest.update(piece)
                length += len(piece)
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            payload = {
                "sha256": None if fast else digest.hexdigest(),
                "crc32": crc if fast else None,
                "length": length,
                "content-length": headers.get("content-length"),
                "transfer-encoding": headers.get("transfer-encoding"),
                "content-type": headers.get("content-type"),
            }
            await _respond(send, 200, json.dumps(payload).encode(), b"application/json")
            return
        received = bytearray()
        async for piece in _body_pieces(receive):
            received += piece
        body = bytes(received)
        if path.startswith("/redirect/"):  # /redirect/<code>?to=<location>
            from urllib.parse import parse_qs

            target = parse_qs(scope["query_string"].decode())["to"][0]
            await send(
                {
                    "type": "http.response.start",
                    "status": int(path[10:]),
                    "headers": [(b"location", target.encode()), (b"content-length", b"9")],
                }
            )
            await send({"type": "http.response.body", "body": b"redirect!"})
            return
        if path.startswith("/chain/"):  # /chain/<code>/<n>: n more redirects, then /echo
            code, _, left = path[7:].partition("/")
            if left == "loop":
                location = path  # itself, for ever
            else:
                location = f"/chain/{code}/{int(left) - 1}" if int(left) > 0 else "/echo"
            await send(
                {
                    "type": "http.response.start",
                    "status": int(code),
                    "headers": [(b"location", location.encode()), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        if path.startswith("/set-cookie"):  # each ?c=<Set-Cookie value> becomes a Set-Cookie field
            from urllib.parse import parse_qs

            values = parse_qs(scope["query_string"].decode()).get("c", [])
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"set-cookie", v.encode()) for v in values]
                    + [(b"content-length", b"2")],
                }
            )
            await send({"type": "http.response.body", "body": b"ok"})
            return
        if path == "/multipart":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            parts = parse_multipart(headers.get("content-type", ""), body)
            payload = {
                "parts": parts,
                "content-length": headers.get("content-length"),
                "transfer-encoding": headers.get("transfer-encoding"),
            }
            await _respond(send, 200, json.dumps(payload).encode(), b"application/json")
        elif path.startswith("/compressed/"):
            codings, _, size = path[12:].rpartition("/")
            data = pattern(int(size))
            for coding in codings.split(","):
                data = compress(coding, data)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (
                            b"content-encoding",
                            codings.replace("rawdeflate", "deflate").replace(",", ", ").encode(),
                        )
                    ],
                }
            )
            for start in range(0, len(data), 4096):  # in pieces, as a server streams it
                await send(
                    {
                        "type": "http.response.body",
                        "body": data[start : start + 4096],
                        "more_body": True,
                    }
                )
            await send({"type": "http.response.body", "body": b""})
        elif path == "/gzip-bomb":
            # 10 GiB of zeros as gzip, about 10 MB on the wire: one compressed MiB repeated.
            first, block = _bomb_blocks()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-encoding", b"gzip")],
                }
            )
            await send({"type": "http.response.body", "body": first, "more_body": True})
            for _ in range(10 * 1024 // 64):
                await send({"type": "http.response.body", "body": block * 64, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path == "/echo" or path.startswith("/echo/"):
            payload = {
                "method": scope["method"],
                "path": path,
                "query": scope["query_string"].decode(),
                "headers": [
                    [k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]
                ],
                "body": body.decode("latin-1"),
            }
            await _respond(send, 200, json.dumps(payload).encode(), b"application/json")
        elif path.startswith("/bytes/"):
            await _respond(send, 200, pattern(int(path[7:])), b"application/octet-stream")
        elif path.startswith("/chunked/"):
            data = pattern(int(path[9:]))
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for start in range(0, len(data), 1000):
                await send(
                    {
                        "type": "http.response.body",
                        "body": data[start : start + 1000],
                        "more_body": True,
                    }
                )
            await send({"type": "http.response.body", "body": b""})
        elif path.startswith("/status/"):
            await _respond(send, int(path[8:]), b"", b"text/plain")
        elif path.startswith("/charset/"):
            charset = path[9:]
            text = TEXT if charset != "latin-1" else "héllo wörld"
            content_type = f"text/plain; charset={charset}".encode()
            await _respond(send, 200, text.encode(charset), content_type)
        else:
            await _respond(send, 404, b"not found", b"text/plain")


async def _body_pieces(receive: Receive) -> Any:
    while True:
        message = await receive()
        piece = message.get("body", b"")
        if piece:
            yield piece
        if not message.get("more_body"):
            return


def compress(coding: str, data: bytes) -> bytes:
    import gzip
    import zlib

    if coding == "gzip":
        return gzip.compress(data)
    if coding == "deflate":
        return zlib.compress(data)
    if coding == "rawdeflate":  # what some servers send as "deflate"
        compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        return compressor.compress(data) + compressor.flush()
    if coding == "br":
        import brotli

        return brotli.compress(data)  # type: ignore[no-any-return]
    if coding == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(data)
    return data


_BOMB: tuple[bytes, bytes] | None = None


def _bomb_blocks() -> tuple[bytes, bytes]:
    """A gzip stream's first MiB of zeros, and one more MiB as a block that can repeat."""
    global _BOMB
    if _BOMB is None:
        import zlib

        zeros = bytes(1 << 20)
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
        block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
        _BOMB = (first, block)
    return _BOMB


def parse_multipart(content_type: str, body: bytes) -> list[dict[str, Any]]:
    """A strict little multipart/form-data reader: each part's fields, size and sha256."""
    boundary = None
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip('"').encode()
    if boundary is None:
        raise ValueError(f"no boundary in {content_type!r}")
    delimiter = b"--" + boundary
    if not body.startswith(delimiter + b"\r\n") or not body.endswith(delimiter + b"--\r\n"):
        raise ValueError("body does not start and end with the boundary")
    parts = []
    for raw in body[len(delimiter) + 2 : -(len(delimiter) + 4)].split(
        b"\r\n" + delimiter + b"\r\n"
    ):
        head, sep, content = raw.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("a part without a blank line after its fields")
        fields = {}
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b": ")
            fields[name.decode("ascii").lower()] = value.decode("utf-8")
        if content.endswith(b"\r\n"):  # the last part keeps the CRLF before the closing line
            content = content[:-2]
        parts.append(
            {
                "disposition": fields.get("content-disposition"),
                "content-type": fields.get("content-type"),
                "length": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
                "text": content.decode("utf-8", "replace") if len(content) < 200 else None,
            }
        )
    return parts


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class HypercornServer:
    """hypercorn on 127.0.0.1:<free port>, in a thread with its own asyncio loop.

    With ``certfile``/``keyfile`` it serves TLS (ALPN h2 and http/1.1); with ``ca_certs`` too it
    requires a client certificate signed by that CA. Plain HTTP also takes HTTP/2 with prior
    knowledge (h2c); ``h2_max_streams`` is its SETTINGS_MAX_CONCURRENT_STREAMS.
    """

    def __init__(
        self,
        certfile: str | None = None,
        keyfile: str | None = None,
        ca_certs: str | None = None,
        app: Any = None,
        h2_max_streams: int = 100,
    ) -> None:
        self.app = app if app is not None else App()
        self.certfile = certfile
        self.keyfile = keyfile
        self.ca_certs = ca_certs
        self.h2_max_streams = h2_max_streams
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.url = f"{'https' if certfile else 'http'}://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._shutdown: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> HypercornServer:
        self._thread.start()
        if not self._started.wait(15):
            raise RuntimeError("hypercorn did not start")
        for _ in range(300):  # bounded: wait until it accepts connections
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return self
            except OSError:
                threading.Event().wait(0.01)
        raise RuntimeError("hypercorn is not accepting connections")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        config = Config()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.accesslog = None
        config.errorlog = None
        config.keep_alive_timeout = 30
        config.h2_max_concurrent_streams = self.h2_max_streams
        if self.certfile is not None:
            config.certfile = self.certfile
            config.keyfile = self.keyfile
            if self.ca_certs is not None:
                config.ca_certs = self.ca_certs
                config.verify_mode = ssl.CERT_REQUIRED
        self._shutdown = asyncio.Event()
        self._started.set()
        self._loop.run_until_complete(
            serve(self.app, config, shutdown_trigger=self._shutdown.wait)  # type: ignore[arg-type]
        )

    def connections(self) -> int:
        """How many TCP connections the server has seen (distinct client ports)."""
        return len(self.app.clients)

    def reset_connections(self) -> None:
        self.app.clients.clear()

    def stop(self) -> None:
        if self._shutdown is not None:
            self._loop.call_soon_threadsafe(self._shutdown.set)
        self._thread.join(10)


def main() -> None:
    """Serve in this process until stdin closes (a server whose memory is not the test's)."""
    import sys

    server = HypercornServer().start()
    print(server.port, flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
