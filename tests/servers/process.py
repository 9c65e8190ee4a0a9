"""A server in its own process, and this process's memory: for tests that measure the client's
memory, which an in-process server's would muddle."""

from __future__ import annotations

import asyncio
import pathlib
import subprocess
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[2]


def rss() -> int:
    """This process's resident set size, in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")  # pragma: no cover


@contextmanager
def hypercorn_process() -> Iterator[str]:
    """hypercorn (tests/servers/hypercorn_app.py, plain HTTP and h2c) in a child process; its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.servers.hypercorn_app"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdout is not None and process.stdin is not None
    try:
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stdin.close()
        process.wait(10)


@dataclass
class SlowRead:
    """What ``read_slowly`` saw."""

    read: int = 0
    crc32: int = 0
    chunks: int = 0
    peak_buffered: int = 0  # the most that had arrived and was not read yet
    peak_rss: int = 0


async def read_slowly(response: Any, pause: float = 0.002) -> SlowRead:
    """Read a response's raw body slower than loopback delivers it: a pause after each chunk,
    then the bytes that arrived meanwhile and wait unread are measured (the most there can be)."""
    stream = response._stream  # its BodyStream: what arrived (received) vs what was read
    seen = SlowRead()
    async for chunk in response.aiter_raw():
        seen.read += len(chunk)
        seen.chunks += 1
        seen.crc32 = zlib.crc32(chunk, seen.crc32)
        await asyncio.sleep(pause)  # being slow is the point, not a synchronisation
        seen.peak_buffered = max(seen.peak_buffered, stream.received - seen.read)
        seen.peak_rss = max(seen.peak_rss, rss())
    return seen
