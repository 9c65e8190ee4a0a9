"""The load generator's engine: one event loop, one Client, a plan, a result.

Closed model (the default): ``connections`` tasks, each sending its next request when its last
response has been read, as wrk does. Open model (``rate``): request ``i`` is due at
``start + i / rate`` whatever happened before (a constant schedule), ``connections`` tasks take
the requests in order, and a request's latency is measured from when it was due, not from when
a free connection could send it: a stalled server then shows in the percentiles for every request
it held up, not just for the one it was answering (coordinated omission, which wrk2 corrects the
same way). How late requests started (``slip``) is reported beside.

Latencies go into an HDR histogram (microseconds, 3 significant digits, up to an hour), which is
encoded into the result so that the results of many workers merge exactly (``Result.merge``):
percentiles are never averaged.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from .. import Client
from .._timeout import Timeout

__all__ = ["Plan", "Result", "new_histogram", "run_plan"]

_LOWEST_US = 1
_HIGHEST_US = 3_600_000_000  # an hour
_DIGITS = 3
_LATE_US = 1000
_VERBS = frozenset(
    {"GET", "HEAD", "OPTIONS", "DELETE", "POST", "PUT", "PATCH"}
)  # a request that started more than this after it was due is counted late


def new_histogram() -> HdrHistogram:
    return HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)


@dataclass
class Plan:
    """What one worker does. ``requests`` (a count) or ``duration`` (seconds) ends the run, or
    both, whichever comes first; neither means until stopped. ``rate`` (requests/s) selects the
    open model; ``offset`` (seconds) shifts this worker's schedule so that workers interleave."""

    url: str
    method: str = "GET"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    connections: int = 64
    requests: int | None = None
    duration: float | None = None
    rate: float | None = None
    offset: float = 0.0
    http2: bool = False
    timeout: float | None = 30.0
    insecure: bool = False
    cacert: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Plan:
        data = dict(data)
        data["headers"] = [tuple(pair) for pair in data.get("headers", [])]
        return cls(**data)


@dataclass
class Result:
    """What a worker measured: latencies (and, in the open model, how late requests started)
    in HDR histograms, statuses, errors by exception type, body bytes, and elapsed seconds."""

    latency: HdrHistogram = field(default_factory=new_histogram)
    slip: HdrHistogram = field(default_factory=new_histogram)
    status: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    bytes: int = 0
    elapsed: float = 0.0
    rate: float | None = None
    late: int = 0
    interrupted: bool = False

    @property
    def requests(self) -> int:
        return sum(self.status.values()) + sum(self.errors.values())

    def to_wire(self) -> dict[str, Any]:
        """A plain dict (for a pipe or a Ray object), the histograms encoded."""
        return {
            "latency": self.latency.encode().decode("ascii"),
            "slip": self.slip.encode().decode("ascii"),
            "status": {str(k): v for k, v in self.status.items()},
            "errors": dict(self.errors),
            "bytes": self.bytes,
            "elapsed": self.elapsed,
            "rate": self.rate,
            "late": self.late,
            "interrupted": self.interrupted,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Result:
        return cls(
            latency=HdrHistogram.decode(data["latency"].encode("ascii")),
            slip=HdrHistogram.decode(data["slip"].encode("ascii")),
            status=Counter({int(k): v for k, v in data["status"].items()}),
            errors=Counter(data["errors"]),
            bytes=data["bytes"],
            elapsed=data["elapsed"],
            rate=data["rate"],
            late=data["late"],
            interrupted=data["interrupted"],
        )

    @classmethod
    def merge(cls, results: list[Result]) -> Result:
        """One result for workers that ran side by side: histograms added bucket by bucket,
        counts summed, the elapsed time the longest, the rates summed."""
        merged = cls()
        for result in results:
            merged.latency.add(result.latency)
            merged.slip.add(result.slip)
            merged.status.update(result.status)
            merged.errors.update(result.errors)
            merged.bytes += result.bytes
            merged.elapsed = max(merged.elapsed, result.elapsed)
            merged.late += result.late
            merged.interrupted |= result.interrupted
            if result.rate is not None:
                merged.rate = (merged.rate or 0.0) + result.rate
        return merged


class Counters:
    """Completed requests and errors so far, for a progress line (a worker process shares
    them with its parent through ``multiprocessing`` values: see workers.py)."""

    def __init__(self) -> None:
        self.done = 0
        self.failed = 0

    def add(self, failed: bool) -> None:
        self.done += 1
        if failed:
            self.failed += 1


def _client(plan: Plan) -> Client:
    verify: bool | str = True
    if plan.insecure:
        verify = False
    elif plan.cacert:
        verify = plan.cacert
    ssl_context = None
    if plan.insecure:  # no InsecureRequestWarning on every run of a load test
        ssl_context = ssl.create_default_context()
        ssl_context.check_hostname = False
        ssl_context.verify_mode = ssl.CERT_NONE
        ssl_context.set_alpn_protocols(["h2", "http/1.1"] if plan.http2 else ["http/1.1"])
    return Client(
        http2=plan.http2,
        verify=verify if ssl_context is None else True,
        ssl_context=ssl_context,
        timeout=Timeout(plan.timeout),
        max_connections=plan.connections,
        max_keepalive_connections=plan.connections,
        trust_env=False,
    )


async def run_plan(
    plan: Plan,
    counters: Any = None,
    stop: asyncio.Event | None = None,
) -> Result:
    """Run ``plan`` on the running loop. ``counters`` (with ``add(failed)``) sees each request
    end; setting ``stop`` ends the run early (in-flight requests are finished)."""
    result = Result(rate=plan.rate)
    latency, slip = result.latency, result.slip
    status, errors = result.status, result.errors
    stop = stop if stop is not None else asyncio.Event()
    note: Callable[[bool], None] = counters.add if counters is not None else (lambda _: None)
    method, url, body = plan.method, plan.url, plan.body
    headers = plan.headers or None
    perf_counter = time.perf_counter
    loop = asyncio.get_running_loop()
    budget = plan.requests
    taken = 0  # requests started (or due, in the open model)
    async with _client(plan) as client:
        started = perf_counter()
        ends = None if plan.duration is None else started + plan.duration
        rate = plan.rate
        interval = 1.0 / rate if rate else 0.0
        first_due = started + plan.offset

        verb = None  # a plain GET (the usual load test) takes the Client's shortest path
        if headers is None and body is None and method in _VERBS:
            verb = getattr(client, method.lower())

        async def one(since: float) -> None:
            try:
                if verb is not None:
                    response = await verb(url)
                else:
                    response = await client.request(method, url, headers=headers, content=body)
                data = await response.aread()
            except Exception as exc:  # every failure is counted by type, and the run goes on
                errors[type(exc).__name__] += 1
                note(True)
                return
            latency.record_value(max(int((perf_counter() - since) * 1e6), _LOWEST_US))
            status[response.status_code] += 1
            result.bytes += len(data)
            note(response.status_code >= 400)

        async def closed() -> None:
            nonlocal taken
            while not stop.is_set():
                if budget is not None and taken >= budget:
                    return
                now = perf_counter()
                if ends is not None and now >= ends:
                    return
                taken += 1
                await one(now)

        async def scheduled() -> None:
            nonlocal taken
            while not stop.is_set():
                if budget is not None and taken >= budget:
                    return
                due = first_due + taken * interval
                if ends is not None and due >= ends:
                    return
                taken += 1
                wait = due - perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                    if stop.is_set():
                        return
                late = perf_counter() - due
                if late > 0:
                    slip.record_value(max(int(late * 1e6), _LOWEST_US))
                    if late * 1e6 > _LATE_US:
                        result.late += 1
                await one(due)

        task = scheduled if rate else closed
        workers = [loop.create_task(task()) for _ in range(plan.connections)]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
        result.elapsed = perf_counter() - started
    result.interrupted = stop.is_set()
    return result
