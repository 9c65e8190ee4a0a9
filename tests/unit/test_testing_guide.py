"""docs/testing.md's examples, each a test module, run as written in an inner pytest session."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
_EXAMPLE = re.compile(r"<!-- example: (\S+) -->\n```python\n(.*?)```", re.S)
EXAMPLES = dict(_EXAMPLE.findall(GUIDE.read_text()))


def test_the_guide_has_its_examples() -> None:
    assert set(EXAMPLES) == {"transport", "response", "stack", "router", "fixture"}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_guide_example(pytester: pytest.Pytester, name: str) -> None:
    code = EXAMPLES[name]
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(**{f"test_{name}": code})
    result = pytester.runpytest("-p", "no:cacheprovider")
    tests = len(re.findall(r"^async def test_|^def test_", code, re.M))
    result.assert_outcomes(passed=tests)
