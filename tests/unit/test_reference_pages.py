"""The site's API reference (docs/reference/) documents every class and function hyperhttp and
hyperhttp.mock export: each has a ``::: hyperhttp.NAME`` (or ``hyperhttp.mock.NAME``)
directive, or lives in ``hyperhttp.exceptions``, whose page renders the whole module."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import hyperhttp
import hyperhttp.mock

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference"


def test_every_exported_class_and_function_has_a_reference_entry() -> None:
    text = "\n".join(page.read_text() for page in sorted(REFERENCE.glob("*.md")))
    directives = set(re.findall(r"^::: (\S+)", text, re.MULTILINE))
    assert "hyperhttp.exceptions" in directives
    missing = []
    for module in (hyperhttp, hyperhttp.mock):
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue  # __version__, the HAS_* flags
            if obj.__module__ == "hyperhttp.exceptions":
                continue
            if {f"hyperhttp.{name}", f"{module.__name__}.{name}"} & directives:
                continue
            missing.append(f"{module.__name__}.{name}")
    assert not missing, f"not in docs/reference/: {missing}"
