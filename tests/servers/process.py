"""A server in its own process, and this process's memory: for tests that measure the client's
memory, which an in-process server's would muddle."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

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
