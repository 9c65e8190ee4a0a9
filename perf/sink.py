"""The upload scenario's server: reads each request body as fast as it can, discards it, answers 200.

    python perf/sink.py --port 8000 [--cpu N]

Plain blocking sockets, one thread per connection, keep-alive, 127.0.0.1 only; pinned to the last
CPU (or ``--cpu``) like nginx. httptools parses each request head. A ``Content-Length`` body is
then read with ``recv_into`` into one reused 1 MiB buffer and only counted (never more than the
declared length is read, so the next request on the connection is untouched); a chunked body is
fed to httptools, which decodes the chunks, and the decoded bytes are counted. ``Expect:
100-continue`` is answered. No pipelining: the clients measured send one request at a time.

The answer is a JSON object: the connection's number (1, 2, ... in order of accept), the body's
framing, the declared and the received byte count, and for a ``multipart/form-data`` body its parts
(name, filename, content type, size; the value of a small part) as seen from the body's first and
last 64 KiB, kept on the side while counting: enough to check a client sent one whole file part
without ever holding the body. Any GET of ``/bytes/<n>`` is answered with ``n`` bytes (Content-
Length, a 1 MiB random block repeated): the download scenario's server when nginx is missing.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import socket
import sys
import threading
from typing import Any

import httptools

BUFFER = 1 << 20
WINDOW = 64 * 1024  # bytes of the body kept at each end for the multipart check
MAX_HEAD = 64 * 1024


class _Head:
    """httptools callbacks for one request head (and, when chunked, its body)."""

    def __init__(self) -> None:
        self.url = b""
        self.headers: dict[bytes, bytes] = {}
        self.headers_done = False
        self.complete = False
        self.received = 0
        self.first = bytearray()
        self.last: collections.deque[bytes] = collections.deque()
        self.last_size = 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:  # chunked bodies only (see _serve)
        self.received += len(body)
        if len(self.first) < WINDOW:
            self.first += body[: WINDOW - len(self.first)]
        self.last.append(body)
        self.last_size += len(body)
        while self.last_size - len(self.last[0]) >= WINDOW:
            self.last_size -= len(self.last.popleft())

    def on_message_complete(self) -> None:
        self.complete = True


def multipart_parts(
    content_type: str, total: int, first: bytes, last: bytes
) -> dict[str, Any] | None:
    """The parts of a multipart body of ``total`` bytes seen through its first and last bytes.

    ``first`` is the body's first bytes, ``last`` its last ones (they may overlap). A delimiter
    is ``--boundary`` at offset 0 or ``\\r\\n--boundary`` anywhere; a part's size is the distance
    from the end of its header block to the next delimiter, so a part is measured exactly as long
    as its header block and the next delimiter each fall within one of the two windows.
    """
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None or not content_type.lower().startswith("multipart/"):
        return None
    boundary = match.group(1).encode()
    last_at = total - len(last)

    def window(start: int, end: int) -> bytes | None:
        """Body bytes [start, end) when one window holds them all."""
        if 0 <= start <= end <= len(first):
            return first[start:end]
        if last_at <= start <= end <= total:
            return last[start - last_at : end - last_at]
        return None

    def seen_from(start: int, most: int) -> bytes | None:
        """Up to ``most`` body bytes from ``start``, as far as the window holding it goes."""
        if 0 <= start < len(first):
            return first[start : start + most]
        if last_at <= start < total:
            return last[start - last_at : start - last_at + most]
        return None

    delimiter = b"\r\n--" + boundary
    found: set[int] = set()  # offset of the delimiter's "--"
    if first.startswith(b"--" + boundary):
        found.add(0)
    for data, base in ((first, 0), (last, last_at)):
        at = data.find(delimiter)
        while at >= 0:
            found.add(base + at + 2)
            at = data.find(delimiter, at + 1)
    offsets = sorted(found)
    parts: list[dict[str, Any]] = []
    closed = False
    epilogue = None
    for index, at in enumerate(offsets):
        after = at + 2 + len(boundary)
        marker = window(after, after + 2)
        if marker == b"--":
            closed = True
            epilogue = total - (after + 2)
            break
        if marker != b"\r\n":
            parts.append({"error": f"bad delimiter line at {at}"})
            continue
        head_window = seen_from(after + 2, 8192)
        end = head_window.find(b"\r\n\r\n") if head_window is not None else -1
        if head_window is None or end < 0:
            parts.append({"error": f"part headers at {after + 2} not seen"})
            continue
        part: dict[str, Any] = {}
        for line in head_window[:end].split(b"\r\n"):
            name, _, value = line.partition(b":")
            value_s = value.strip().decode("latin-1")
            if name.strip().lower() == b"content-disposition":
                for key in ("name", "filename"):
                    found_value = re.search(rf'(?:^|;)\s*{key}="((?:[^"\\]|\\.)*)"', value_s)
                    if found_value:
                        part[key] = found_value.group(1)
            elif name.strip().lower() == b"content-type":
                part["content_type"] = value_s
        content_at = after + 2 + end + 4
        if index + 1 < len(offsets):
            part["size"] = offsets[index + 1] - 2 - content_at
            if part["size"] <= 256:
                value_bytes = window(content_at, content_at + part["size"])
                if value_bytes is not None:
                    part["value"] = value_bytes.decode("latin-1")
        else:
            part["size"] = None  # its end was not seen
        parts.append(part)
    return {"parts": parts, "closed": closed, "epilogue": epilogue}


def _answer(connection: socket.socket, status: str, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    connection.sendall(head + body)


def _send_bytes(connection: socket.socket, size: int, block: memoryview) -> None:
    connection.sendall(
        f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {size}\r\n\r\n".encode()
    )
    while size > 0:
        piece = block[: min(size, len(block))]
        connection.sendall(piece)
        size -= len(piece)


def _serve(connection: socket.socket, number: int, block: memoryview) -> None:
    buffer = bytearray(BUFFER)
    view = memoryview(buffer)
    pending = b""  # bytes read past the head of the request being parsed
    requests = 0
    with connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            while b"\r\n\r\n" not in pending:  # the head
                if len(pending) > MAX_HEAD:
                    return
                n = connection.recv_into(buffer)
                if n == 0:
                    return
                pending += view[:n]
            head_end = pending.index(b"\r\n\r\n") + 4
            state = _Head()
            parser = httptools.HttpRequestParser(state)
            try:
                parser.feed_data(pending[:head_end])
            except httptools.HttpParserError as exc:
                _answer(connection, "400 Bad Request", {"error": str(exc)})
                return
            pending = pending[head_end:]
            requests += 1
            method = parser.get_method().decode()
            headers = state.headers
            if headers.get(b"expect", b"").lower() == b"100-continue":
                connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
            declared = int(headers[b"content-length"]) if b"content-length" in headers else None
            first = bytearray()
            last = b""
            if chunked:
                framing = "chunked"
                parser.feed_data(pending)
                pending = b""
                while not state.complete:
                    n = connection.recv_into(buffer)
                    if n == 0:
                        return
                    parser.feed_data(view[:n])
                received = state.received
                first = state.first
                last = b"".join(state.last)[-WINDOW:]
            elif declared:
                framing = "content-length"
                taken = pending[:declared]
                pending = pending[declared:]
                received = len(taken)
                first += taken[:WINDOW]
                tail_from = declared - WINDOW  # body offsets from here on go to ``last``
                tail = bytearray(taken[max(0, tail_from) :])
                while received < declared:
                    n = connection.recv_into(buffer, min(BUFFER, declared - received))
                    if n == 0:
                        return
                    if len(first) < WINDOW:
                        first += view[: min(n, WINDOW - len(first))]
                    if received + n > tail_from:
                        tail += view[max(0, tail_from - received) : n]
                    received += n
                last = bytes(tail[-WINDOW:])
            else:
                framing = "none"
                received = 0
            if method == "GET" and state.url.startswith(b"/bytes/"):
                try:
                    size = int(state.url[len(b"/bytes/") :])
                except ValueError:
                    _answer(connection, "404 Not Found", {"error": "bad size"})
                    continue
                _send_bytes(connection, size, block)
                continue
            content_type = headers.get(b"content-type", b"").decode("latin-1")
            _answer(
                connection,
                "200 OK",
                {
                    "connection": number,
                    "request": requests,
                    "method": method,
                    "framing": framing,
                    "content_length": declared,
                    "received": received,
                    "multipart": multipart_parts(content_type, received, bytes(first), last),
                },
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cpu", type=int, help="pin to this CPU (default: the last one)")
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    if hasattr(os, "sched_setaffinity") and (cpus > 1 or args.cpu is not None):
        os.sched_setaffinity(0, {cpus - 1 if args.cpu is None else args.cpu})
    block = memoryview(os.urandom(BUFFER))
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.port))
    listener.listen(128)
    print("ready", flush=True)
    number = 0
    while True:
        connection, _ = listener.accept()
        number += 1
        threading.Thread(target=_serve, args=(connection, number, block), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
