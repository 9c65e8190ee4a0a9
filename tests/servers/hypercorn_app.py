"""hypercorn serving a small ASGI app in a background thread, for tests against a real server.

Routes:
  /echo            method, path, query, headers and body of the request, as JSON
  /bytes/<n>       n deterministic bytes with Content-Length
  /chunked/<n>     n deterministic bytes streamed in pieces (no Content-Length: chunked framing)
  /hash            sha256 and length of the request body
  /status/<code>   an empty response with that status
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

__all__ = ["HypercornServer", "pattern"]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def pattern(size: int) -> bytes:
    """Deterministic, non-repeating-looking bytes for body checks."""
    return bytes((i * 7 + i // 251) % 256 for i in range(size))


TEXT = "héllo wörld €"


class App:
    def __init__(self) -> None:
        self.clients: set[tuple[str, int]] = set()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        client = scope.get("client")
        if client:
            self.clients.add(tuple(client))  # type: ignore[arg-type]
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path: str = scope["path"]
        if path == "/echo":
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
        elif path == "/hash":
            payload = {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body)}
            await _respond(send, 200, json.dumps(payload).encode(), b"application/json")
        elif path.startswith("/status/"):
            await _respond(send, int(path[8:]), b"", b"text/plain")
        elif path.startswith("/charset/"):
            charset = path[9:]
            text = TEXT if charset != "latin-1" else "héllo wörld"
            content_type = f"text/plain; charset={charset}".encode()
            await _respond(send, 200, text.encode(charset), content_type)
        else:
            await _respond(send, 404, b"not found", b"text/plain")


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
    requires a client certificate signed by that CA.
    """

    def __init__(
        self,
        certfile: str | None = None,
        keyfile: str | None = None,
        ca_certs: str | None = None,
    ) -> None:
        self.app = App()
        self.certfile = certfile
        self.keyfile = keyfile
        self.ca_certs = ca_certs
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
