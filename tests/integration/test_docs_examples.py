"""Every Python block in README.md and docs/ runs in the test suite.

A block is marked ``<!-- example: NAME -->``. This module checks that every block is marked and
that each name is run by some test, and runs the ones no other module does: a whole program
(``asyncio.run(main())``) in a thread of its own, anything else as the body of a coroutine. In
the examples, ``http://127.0.0.1:8080`` (the address a reader's own server would have) becomes a
scripted server's, which answers the paths they use.
"""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.servers.faults import Conn, respond

ROOT = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(r"(?:<!-- example: (\S+) -->\n)?```python\n(.*?)```", re.S)
PLACEHOLDER = "http://127.0.0.1:8080"

# Run by other modules: tests/integration/test_guide_examples.py (the guide's), test_proxies.py
# (the proxies example) and tests/unit/test_testing_guide.py (docs/testing.md's, in pytester).
ELSEWHERE = {
    "docs/guide/retries.md": {"retries", "breakers"},
    "docs/guide/logging.md": {"timings"},
    "docs/guide/requests.md": {"multipart"},
    "docs/guide/proxies.md": {"proxies"},
    "docs/testing.md": {"transport", "response", "stack", "router", "fixture"},
}
HERE = {
    "README.md": {"readme"},
    "docs/index.md": {"quickstart"},
    "docs/guide/index.md": {"intro"},
    "docs/guide/requests.md": {"upload"},
    "docs/guide/connecting.md": {"resolver"},
}


def blocks() -> dict[str, list[tuple[str | None, str]]]:
    found = {}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        found[str(path.relative_to(ROOT))] = _BLOCK.findall(path.read_text())
    return found


def example(page: str, name: str) -> str:
    return next(code for marked, code in blocks()[page] if marked == name)


def test_every_python_block_is_an_example_some_test_runs() -> None:
    for page, found in blocks().items():
        names = [name for name, _ in found]
        assert all(names), f"{page}: a Python block without <!-- example: NAME -->"
        run = ELSEWHERE.get(page, set()) | HERE.get(page, set())
        assert set(names) <= run, f"{page}: examples no test runs: {set(names) - run}"
        assert len(names) == len(set(names)), f"{page}: a name used twice"


def _server(conn: Conn) -> None:
    while (request := conn.read_request()) is not None:
        target = request.split(b" ")[1]
        if target.startswith(b"/users"):
            body = json.dumps({"page": int(target.rsplit(b"=", 1)[1]), "users": ["ada"]})
            conn.send(respond(body=body.encode(), headers=("Content-Type: application/json",)))
        elif target == b"/large.bin":
            conn.send(respond(body=bytes(200_000)))
        elif target == b"/upload":
            ok = b"multipart/form-data" in request and b"%PDF-1.7 quarterly" in request
            conn.send(respond("200 OK" if ok else "400 Bad Request", body=b"stored"))
        else:
            conn.send(respond("404 Not Found"))


def _program(code: str, printed: list[str]) -> None:
    """A whole program, run where there is no event loop yet (it calls asyncio.run)."""
    scope: dict[str, Any] = {"print": lambda *args: printed.append(" ".join(map(str, args)))}
    exec(compile(code, "<example>", "exec"), scope)


async def _body(code: str) -> None:
    source = "async def __example():\n" + textwrap.indent(code, "    ")
    scope: dict[str, Any] = {}
    exec(compile(source, "<example>", "exec"), scope)
    await scope["__example"]()


@pytest.mark.parametrize(
    ("page", "name", "expected"),
    [
        ("README.md", "readme", ["200 {'page': 2, 'users': ['ada']}"]),
        ("docs/index.md", "quickstart", ["200 {'page': 2, 'users': ['ada']}"]),
        ("docs/guide/index.md", "intro", ["{'page': 2, 'users': ['ada']}"]),
    ],
)
async def test_whole_program_examples(scripted, page: str, name: str, expected: list[str]) -> None:
    server = scripted(_server)
    printed: list[str] = []
    code = example(page, name).replace(PLACEHOLDER, server.url)
    await asyncio.to_thread(_program, code, printed)
    assert printed == expected


async def test_the_upload_example(scripted, tmp_path: Path, monkeypatch) -> None:
    server = scripted(_server)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.7 quarterly")
    # The example raises for a 400, which the server answers unless the file arrived in a part.
    await _body(example("docs/guide/requests.md", "upload").replace(PLACEHOLDER, server.url))
    (upload,) = server.requests
    assert b'name="avatar"; filename="me.png"' in upload and b'filename="report.pdf"' in upload


async def test_the_resolver_example() -> None:
    await _body(
        example("docs/guide/connecting.md", "resolver")
    )  # builds it; asks nothing of 10.0.0.53
