"""Timeout: four phases (connect, read, write, pool), each a number of seconds or None (disabled)."""

from __future__ import annotations

from typing import Any, Union

__all__ = ["Timeout", "TimeoutTypes"]

_UNSET: Any = object()


class Timeout:
    """Per-phase timeouts.

    ``Timeout(5.0)`` sets all four phases; ``Timeout(5.0, connect=1.0)`` overrides one of them;
    ``Timeout(connect=1.0)`` leaves the others disabled (None). Each is a number of seconds, or
    None for no limit.

    :param timeout: the default for every phase; a ``Timeout`` is copied (the phases given
        beside it are then ignored).
    :param connect: the time to resolve, connect and finish the TLS handshake.
    :param read: the time to wait for the response head and for each piece of the body.
    :param write: the time to wait for the socket to take more of the request.
    :param pool: the time to wait for a connection from the pool.
    :raises TypeError: when a phase is not a number or None.
    :raises ValueError: when a phase is negative.
    """

    __slots__ = ("connect", "read", "write", "pool")

    connect: float | None
    read: float | None
    write: float | None
    pool: float | None

    def __init__(
        self,
        timeout: float | None = None,
        *,
        connect: float | None = _UNSET,
        read: float | None = _UNSET,
        write: float | None = _UNSET,
        pool: float | None = _UNSET,
    ) -> None:
        if isinstance(timeout, Timeout):
            self.connect, self.read, self.write, self.pool = (
                timeout.connect,
                timeout.read,
                timeout.write,
                timeout.pool,
            )
            return
        self.connect = _phase(timeout if connect is _UNSET else connect, "connect")
        self.read = _phase(timeout if read is _UNSET else read, "read")
        self.write = _phase(timeout if write is _UNSET else write, "write")
        self.pool = _phase(timeout if pool is _UNSET else pool, "pool")

    def as_dict(self) -> dict[str, float | None]:
        """Return the four phases by name: connect, read, write and pool."""
        return {"connect": self.connect, "read": self.read, "write": self.write, "pool": self.pool}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timeout) and self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash((self.connect, self.read, self.write, self.pool))

    def __repr__(self) -> str:
        phases = self.as_dict()
        if len(set(phases.values())) == 1:
            return f"Timeout(timeout={self.connect})"
        return "Timeout(" + ", ".join(f"{k}={v}" for k, v in phases.items()) + ")"


def _phase(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"timeout {name} must be a number of seconds or None, not {value!r}")
    if value < 0:
        raise ValueError(f"timeout {name} must not be negative, got {value!r}")
    return float(value)


TimeoutTypes = Union[float, int, None, Timeout]


def to_timeout(value: TimeoutTypes) -> Timeout:
    return value if isinstance(value, Timeout) else Timeout(value)
