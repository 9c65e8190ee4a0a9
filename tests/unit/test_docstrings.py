"""The public API has docstrings: every exported name, and every public method and property
defined in hyperhttp, starts with a one-line summary ending with a period.

A ``:param name:`` field must name a parameter of the signature (the docs build fails
otherwise); a class documents its ``__init__``'s parameters.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import pytest

import hyperhttp
import hyperhttp.mock

_PARAM = re.compile(r"^\s*:param\s+(?:[^\s:]+\s+)?(\w+):", re.MULTILINE)


def _exported() -> dict[str, Any]:
    """The documented objects exported by ``hyperhttp`` and ``hyperhttp.mock``, by name.

    Plain values (``__version__``, the ``HAS_*`` flags) and type aliases have no docstrings of
    their own and are left out.
    """
    found: dict[str, Any] = {}
    for module in (hyperhttp, hyperhttp.mock):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                found.setdefault(f"{module.__name__}.{name}", obj)
    return found


def _own(klass: type) -> bool:
    return klass.__module__.startswith("hyperhttp")


def _members(cls: type) -> Iterator[tuple[str, Any]]:
    """The public methods and properties of ``cls`` defined in hyperhttp (its own or a
    hyperhttp base's), each once, with the class that defines it."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not _own(klass):
            continue
        for name, value in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if not (isinstance(value, property) or inspect.isroutine(value)):
                continue
            seen.add(name)
            yield f"{klass.__module__}.{klass.__qualname__}.{name}", value


def _targets() -> list[tuple[str, Any]]:
    targets: dict[str, Any] = {}
    for name, obj in _exported().items():
        targets.setdefault(name, obj)
        if inspect.isclass(obj):
            for qualname, member in _members(obj):
                targets.setdefault(qualname, member)
    return sorted(targets.items())


TARGETS = _targets()


def _doc(obj: Any) -> str:
    """The object's own docstring, cleaned: not one inherited from a base, which the API
    reference does not show either."""
    raw = (obj.fget if isinstance(obj, property) else obj).__doc__
    return inspect.cleandoc(raw) if raw else ""


def _signature(obj: Any) -> inspect.Signature | None:
    """The signature whose parameters a docstring documents: a class's is its ``__init__``'s."""
    func = obj.fget if isinstance(obj, property) else obj
    if inspect.isclass(func) and not str(getattr(func.__init__, "__module__", "")).startswith(
        "hyperhttp"
    ):
        return None  # object's or an exception's ``__init__``: no parameters to document
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        return None


def test_the_walk_finds_the_api() -> None:
    names = {name for name, _ in TARGETS}
    for expected in (
        "hyperhttp.Client",
        "hyperhttp._client.Client.request",
        "hyperhttp._client.Client.is_closed",
        "hyperhttp._models.Response.aread",
        "hyperhttp._headers.Headers.get",
        "hyperhttp.ConnectError",
        "hyperhttp.mock.Route",
        "hyperhttp._router.Router.get",
    ):
        assert expected in names
    # Inherited from the standard library, not hyperhttp's to document.
    assert "hyperhttp._headers.Headers.setdefault" not in names
    assert "hyperhttp.exceptions.HyperHTTPError.with_traceback" not in names


@pytest.mark.parametrize(("name", "obj"), TARGETS, ids=[name for name, _ in TARGETS])
def test_docstring_has_a_summary_line(name: str, obj: Any) -> None:
    doc = _doc(obj)
    assert doc, f"{name} has no docstring of its own"
    first = doc.splitlines()[0].strip()
    assert first, f"{name}: the docstring's first line is empty"
    assert first.endswith("."), f"{name}: the summary line does not end with a period: {first!r}"


@pytest.mark.parametrize(("name", "obj"), TARGETS, ids=[name for name, _ in TARGETS])
def test_documented_parameters_exist(name: str, obj: Any) -> None:
    documented = _PARAM.findall(_doc(obj))
    if not documented:
        return
    signature = _signature(obj)
    assert signature is not None, f"{name} documents parameters but has no signature"
    unknown = [param for param in documented if param not in signature.parameters]
    assert not unknown, f"{name} documents parameters it does not have: {unknown}"
    assert len(documented) == len(set(documented)), f"{name} documents a parameter twice"
