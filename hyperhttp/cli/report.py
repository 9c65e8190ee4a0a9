"""What ``hyperhttp load`` prints: a progress line while it runs (rich on a terminal, plain lines
otherwise, on stderr so that ``--json -`` keeps stdout clean), then a report and, with
``--json``, the same figures as JSON with the merged histogram encoded."""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any

from .engine import Result

__all__ = ["PERCENTILES", "Progress", "summary", "text_report"]

PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9), ("p99.99", 99.99))


def summary(result: Result, *, plan: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document: requests, duration_s, rps, status, errors, bytes, latency_ms (p50
    ... p99.99, max, mean), and ``histogram`` (HdrHistogram's encoding, to merge runs later)."""
    latency = result.latency
    millis = {name: latency.get_value_at_percentile(p) / 1000 for name, p in PERCENTILES}
    millis["max"] = latency.get_max_value() / 1000
    millis["mean"] = latency.get_mean_value() / 1000
    duration = result.elapsed
    document: dict[str, Any] = {
        "requests": result.requests,
        "duration_s": round(duration, 6),
        "rps": result.requests / duration if duration > 0 else 0.0,
        "status": {str(code): count for code, count in sorted(result.status.items())},
        "errors": dict(sorted(result.errors.items())),
        "bytes": result.bytes,
        "latency_ms": millis,
        "histogram": latency.encode().decode("ascii"),
        "interrupted": result.interrupted,
    }
    if result.rate is not None:
        slip = result.slip
        document["schedule"] = {
            "rate": result.rate,
            "late": result.late,
            "slip_ms": {
                "p50": slip.get_value_at_percentile(50) / 1000,
                "p99": slip.get_value_at_percentile(99) / 1000,
                "max": slip.get_max_value() / 1000,
            },
        }
    if plan is not None:
        document["plan"] = plan
    return document


def text_report(document: dict[str, Any], title: str) -> str:
    lines = [title]
    rps = document["rps"]
    lines.append(
        f"  requests    {document['requests']:,} in {document['duration_s']:.2f} s: "
        f"{rps:,.1f} req/s, {document['bytes']:,} body bytes"
        + ("  (interrupted)" if document["interrupted"] else "")
    )
    status = ", ".join(f"{code}: {count:,}" for code, count in document["status"].items())
    lines.append(f"  status      {status or 'none'}")
    errors = ", ".join(f"{name}: {count:,}" for name, count in document["errors"].items())
    lines.append(f"  errors      {errors or 'none'}")
    latency = document["latency_ms"]
    cells = "  ".join(f"{name} {latency[name]:.3f}" for name in (*dict(PERCENTILES), "max"))
    lines.append(f"  latency ms  {cells}  mean {latency['mean']:.3f}")
    schedule = document.get("schedule")
    if schedule is not None:
        slip = schedule["slip_ms"]
        share = schedule["late"] / document["requests"] * 100 if document["requests"] else 0.0
        lines.append(
            f"  schedule    {schedule['rate']:,.0f} req/s due; {schedule['late']:,} started "
            f"over 1 ms late ({share:.1f}%); slip ms p50 {slip['p50']:.3f}  p99 "
            f"{slip['p99']:.3f}  max {slip['max']:.3f}; latencies count from when each was due"
        )
    return "\n".join(lines)


def write_json(document: dict[str, Any], target: str) -> None:
    text = json.dumps(document, indent=2)
    if target == "-":
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    else:
        with open(target, "w") as handle:
            handle.write(text + "\n")


class Progress:
    """The progress line: requests done, errors, the rate over the last second. A rich status
    line on a terminal; a plain line every second otherwise."""

    def __init__(self, total: int | None, duration: float | None, stream: IO[str] = sys.stderr):
        self._total = total
        self._duration = duration
        self._stream = stream
        self._started = time.monotonic()
        self._last = (self._started, 0)
        self._printed = self._started
        self._live: Any = None
        self._rate = 0.0
        if stream.isatty():
            try:
                from rich.console import Console
                from rich.live import Live

                self._live = Live(
                    "", console=Console(file=stream), refresh_per_second=4, transient=True
                )
                self._live.start()
            except ImportError:  # pragma: no cover - rich is a dependency
                self._live = None

    def __call__(self, done: int, failed: int) -> None:
        now = time.monotonic()
        last_time, last_done = self._last
        if now - last_time >= 0.5:
            self._rate = (done - last_done) / (now - last_time)
            self._last = (now, done)
        elapsed = now - self._started
        goal = ""
        if self._total is not None:
            goal = f"/{self._total:,}"
        elif self._duration is not None:
            goal = f" ({elapsed:.0f}/{self._duration:g} s)"
        line = f"{done:,}{goal} requests, {failed:,} failed, {self._rate:,.0f} req/s"
        if self._live is not None:
            self._live.update(line)
        elif now - self._printed >= 1.0:
            self._printed = now
            print(f"[{elapsed:5.1f} s] {line}", file=self._stream, flush=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
