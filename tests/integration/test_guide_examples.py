"""The guide's examples, run as written against local servers.

A block under ``<!-- example: NAME -->`` in the guide (docs/guide/) runs here as the body of a coroutine,
with ``BASE`` (a scripted server) and ``REFUSING`` (a loopback port nothing listens on) defined.
"""

from __future__ import annotations

import logging
import re
import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.servers.faults import Conn, respond

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide"
_EXAMPLE = re.compile(r"<!-- example: (\S+) -->\n```python\n(.*?)```", re.S)


def examples() -> dict[str, str]:
    """The guide's examples by name, from all its pages."""
    found: dict[str, str] = {}
    for page in sorted(GUIDE.glob("*.md")):
        found.update(_EXAMPLE.findall(page.read_text()))
    return found


def test_the_guide_has_the_examples_run_here() -> None:
    assert {"retries", "breakers", "timings", "multipart"} <= set(examples())


def _routes(conn: Conn) -> None:
    flaky = 0
    while (request := conn.read_request()) is not None:
        path = request.split(b" ")[1]
        if path == b"/flaky":
            flaky += 1
            ok = flaky % 2 == 0
        else:
            ok = path != b"/down"
        conn.send(respond(body=b"ok") if ok else respond("503 Service Unavailable"))


def _refusing() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.2", 0))
        return f"http://127.0.0.2:{sock.getsockname()[1]}/"


async def _run(code: str, **names: Any) -> None:
    source = "async def __example():\n" + textwrap.indent(code, "    ")
    scope: dict[str, Any] = dict(names)
    exec(compile(source, "docs/guide", "exec"), scope)
    await scope["__example"]()


@pytest.mark.parametrize("name", ["retries", "breakers", "timings", "multipart"])
async def test_guide_example(scripted, name: str, tmp_path: Path) -> None:
    server = scripted(_routes)
    logger = logging.getLogger("hyperhttp")
    level = logger.level
    try:
        await _run(examples()[name], BASE=server.url, REFUSING=_refusing(), TMP=str(tmp_path))
    finally:
        logger.setLevel(level)  # an example may change it
