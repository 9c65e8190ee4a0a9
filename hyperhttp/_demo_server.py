"""A small, fast HTTP/1.1 server for ``python -m hyperhttp``: asyncio (uvloop when installed) +
httptools, keep-alive, fixed bodies at ``/bytes/<n>``. It runs in its own process so that it does
not share a core or the GIL with the client being measured.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
from multiprocessing.process import BaseProcess
from typing import Any

import httptools

__all__ = ["start_demo_server"]

_BODIES: dict[bytes, bytes] = {}


def _response_for(path: bytes) -> bytes:
    response = _BODIES.get(path)
    if response is None:
        status, body = b"404 Not Found", b"not found\n"
        if path.startswith(b"/bytes/"):
            try:
                size = int(path[len(b"/bytes/") :])
            except ValueError:
                size = -1
            if 0 <= size <= 64 * 1024 * 1024:
                status, body = b"200 OK", bytes(i % 251 for i in range(size))
        elif path == b"/":
            status, body = b"200 OK", b"hello from the hyperhttp demo server\n"
        response = (
            b"HTTP/1.1 %s\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n"
            b"Server: hyperhttp-demo\r\n\r\n%s" % (status, len(body), body)
        )
        if len(_BODIES) < 64:
            _BODIES[path] = response
    return response


class _ServerProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self._transport: Any = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._transport.close()

    def on_url(self, url: bytes) -> None:
        self._url = url

    def on_message_complete(self) -> None:
        self._transport.write(_response_for(self._url.split(b"?", 1)[0]))
        if not self._parser.should_keep_alive():
            self._transport.close()


def _serve(sock: socket.socket, ready: Any) -> None:
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    cpus = os.cpu_count() or 1
    if cpus > 1 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpus - 1})
    server = loop.run_until_complete(loop.create_server(_ServerProtocol, sock=sock))
    ready.set()
    try:
        loop.run_forever()
    finally:
        server.close()


def start_demo_server() -> tuple[str, BaseProcess]:
    """Start the server on 127.0.0.1 in a child process; return its base URL and the process."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    process = context.Process(target=_serve, args=(sock, ready), daemon=True)
    process.start()
    sock.close()
    if not ready.wait(30):
        process.terminate()
        raise RuntimeError("the demo server did not start")
    return f"http://127.0.0.1:{port}", process
