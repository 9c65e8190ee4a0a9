"""A crawl benchmark: hyperhttp, aiohttp and pyreqwest crawl the same farm of sites, one core each.

    python perf/crawl.py                     # 200 sites x 25 pages, 3 interleaved rounds
    python perf/crawl.py --rounds 5 --json perf/results/crawl.json
    python perf/crawl.py --profile           # hyperhttp's crawl alone, under pyinstrument

What crawlers, our first users, do: many origins, a few requests each, pages of tens of KB,
gzip, redirects, 404s, servers that close connections, some TLS with HTTP/2. The farm
(``perf/crawl_farm.py``: ``--sites`` nginx servers on ports of 127.0.0.1, ``--pages`` pages each,
deterministic from ``--seed``) runs on one nginx worker pinned to the last CPU; each crawl is a
child process of this script pinned to CPU 0.

The crawl is the same code for every client, with a small adapter per client (a ``fetch(url)``
that returns the final status and the decoded body, redirects followed by the client): ``--tasks``
(256) workers share a frontier seeded with every site's root; each takes a URL, fetches it (up
to ``--retries`` more times after an exception, each exception counted by type), checks the
status and the body's SHA-256 against the farm's manifest (wrong bodies are counted), pulls the
links out of a 200 page with a regex over ``href="..."`` and queues those not seen before. It
ends when the frontier is empty and every worker idle: the whole farm, the same URLs for every
client (the count is reported and checked against the manifest's).

Clients (all trust only the farm's CA, and a check before the rounds shows each one rejecting a
server its CA did not sign):

- ``hyperhttp``: ``Client(verify=<ca.pem>, http2=True, follow_redirects=True,
  max_connections=256, max_keepalive_connections=256, timeout=30)``, ``get`` + ``aread()``;
- ``aiohttp``: ``ClientSession(connector=TCPConnector(limit=256, ssl=<context with the CA>),
  timeout=ClientTimeout(total=30))``, ``get`` (redirects followed by default) + ``read()``; no
  HTTP/2 in aiohttp, so HTTP/1.1 over TLS;
- ``pyreqwest``: ``ClientBuilder().max_connections(256).pool_max_idle_per_host(256)
  .add_root_certificate_pem(<ca.pem>).http2(True).follow_redirects(True).timeout(30 s)``,
  ``send`` + ``bytes()``. Its ``max_connections`` caps requests in flight, not connections.

Per crawl: URLs fetched over wall time (pages/s), the crawler's CPU time over the crawl
(``getrusage(RUSAGE_SELF)`` in the child: user + system of all its threads, pyreqwest's runtime
included; not nginx's) per URL, peak RSS (VmHWM), wrong bodies, wrong statuses, URLs given up
and exceptions by type; from nginx's access log, the connections the client opened, its HTTP/2
requests and whether the 200s went out gzipped; nginx's own CPU over the crawl. Rounds are
interleaved (every client once per round, in a shuffled order rotated each round) and the table
gives medians.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import heapq
import json
import os
import random
import re
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from crawl_farm import Farm, build_farm, served, start_farm  # noqa: E402
from nginx import ensure_nginx, nginx_modules, terminate  # noqa: E402

LIBS = ["hyperhttp", "aiohttp", "pyreqwest"]
BASES = ["aiohttp", "pyreqwest"]  # the "x <base>" columns
CRAWLER_CPU = 0
LINK = re.compile(rb'href="([^"]+)"')
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

Fetch = Callable[[str], Awaitable[tuple[int, Any]]]  # (final status, body: a bytes-like buffer)
Close = Callable[[], Awaitable[None]]


# The adapters: one client each, redirects followed by the client, the farm's CA trusted.


async def _hyperhttp(ca: str, tasks: int) -> tuple[Fetch, Close]:
    import hyperhttp

    client = hyperhttp.Client(
        verify=ca,
        http2=True,
        follow_redirects=True,
        max_connections=tasks,
        max_keepalive_connections=tasks,
        timeout=30.0,
    )

    async def fetch(url: str) -> tuple[int, Any]:
        response = await client.get(url)
        return response.status_code, await response.aread()

    return fetch, client.aclose


async def _aiohttp(ca: str, tasks: int) -> tuple[Fetch, Close]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=tasks, ssl=ssl.create_default_context(cafile=ca))
    session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))

    async def fetch(url: str) -> tuple[int, Any]:
        async with session.get(url) as response:
            return response.status, await response.read()

    return fetch, session.close


async def _pyreqwest(ca: str, tasks: int) -> tuple[Fetch, Close]:
    from pyreqwest.client import ClientBuilder

    client = (
        ClientBuilder()
        .max_connections(tasks)
        .pool_max_idle_per_host(tasks)
        .add_root_certificate_pem(Path(ca).read_bytes())  # rustls: added to its built-in roots
        .http2(True)  # off by default; on, ALPN offers h2 and http/1.1
        .follow_redirects(True)
        .timeout(timedelta(seconds=30))
        .build()
    )

    async def fetch(url: str) -> tuple[int, Any]:
        response = await client.get(url).build().send()
        return response.status, await response.bytes()  # Bytes: a buffer, no copy

    return fetch, client.close


ADAPTERS: dict[str, Callable[[str, int], Awaitable[tuple[Fetch, Close]]]] = {
    "hyperhttp": _hyperhttp,
    "aiohttp": _aiohttp,
    "pyreqwest": _pyreqwest,
}


# The crawl: the same for every client.


async def crawl(
    fetch: Fetch,
    seeds: list[str],
    manifest: dict[str, tuple[int, str | None]],
    tasks: int,
    retries: int,
) -> dict[str, Any]:
    """Crawl from ``seeds`` until the frontier is empty; what was fetched, and what went wrong."""
    frontier: asyncio.Queue[str] = asyncio.Queue()
    seen = set(seeds)
    for url in seeds:
        frontier.put_nowait(url)
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    samples: dict[str, str] = {}
    wrong = {"bodies": 0, "statuses": 0, "unknown_urls": 0, "failed_urls": 0}

    slowest: list[tuple[float, str]] = []  # a heap of the slowest fetches (seconds, URL)
    timeline: Counter[int] = Counter()  # URLs done per tenth of a second since the start
    began = time.perf_counter()

    async def visit(url: str) -> None:
        for _ in range(retries + 1):
            started = time.perf_counter()
            try:
                status, body = await fetch(url)
                done = time.perf_counter()
                timeline[int((done - began) * 10)] += 1
                if len(slowest) < 5:
                    heapq.heappush(slowest, (done - started, url))
                elif done - started > slowest[0][0]:
                    heapq.heapreplace(slowest, (done - started, url))
                break
            except Exception as exc:
                kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
                errors[kind] += 1
                samples.setdefault(kind, f"{url}: {exc!r}"[:300])
        else:
            wrong["failed_urls"] += 1
            return
        statuses[status] += 1
        expected = manifest.get(url)
        if expected is None:
            wrong["unknown_urls"] += 1
        elif status != expected[0]:
            wrong["statuses"] += 1
        elif expected[1] is not None and hashlib.sha256(body).hexdigest() != expected[1]:
            wrong["bodies"] += 1
        if status == 200:
            for link in LINK.findall(body):
                target = link.decode()
                if target not in seen:
                    seen.add(target)
                    frontier.put_nowait(target)

    async def worker() -> None:
        while True:
            url = await frontier.get()
            try:
                await visit(url)
            finally:
                frontier.task_done()

    workers = [asyncio.ensure_future(worker()) for _ in range(tasks)]
    try:
        await frontier.join()
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return {
        "urls": len(seen),  # every one visited: fetched, or given up after the retries
        "fetched": sum(statuses.values()),
        "statuses": {str(status): n for status, n in sorted(statuses.items())},
        "wrong_bodies": wrong["bodies"],
        "wrong_statuses": wrong["statuses"],
        "unknown_urls": wrong["unknown_urls"],
        "failed_urls": wrong["failed_urls"],
        "errors": dict(errors),
        "error_samples": samples,
        "slowest": sorted(slowest, reverse=True),
        "timeline": [timeline[tick] for tick in range(max(timeline, default=0) + 1)],
    }


# The child: one crawl by one client, pinned to CPU 0; prints one JSON line.


def _peak_rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _cpu_seconds(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def _run_queue_wait() -> float:
    """Seconds this process's threads spent runnable but waiting for the CPU (schedstat's
    run_delay): time another process (the machine is shared) held the crawler's core."""
    total = 0
    for thread in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{thread}/schedstat") as stat:
                total += int(stat.read().split()[1])
        except (OSError, IndexError, ValueError):  # a thread that ended meanwhile
            continue
    return total / 1e9


class GarbageCollections:
    """The cyclic garbage collector's passes during the crawl: how many, the objects they freed
    (reference cycles the client left behind) and the CPU time they took."""

    def __init__(self) -> None:
        self.passes: Counter[int] = Counter()
        self.collected = 0
        self.cpu_s = 0.0
        self.longest_s = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()
            return
        spent = time.thread_time() - self._started
        self.passes[info["generation"]] += 1
        self.collected += info["collected"]
        self.cpu_s += spent
        self.longest_s = max(self.longest_s, spent)

    def report(self) -> dict[str, Any]:
        return {
            "passes": {str(g): n for g, n in sorted(self.passes.items())},
            "collected": self.collected,
            "cpu_s": self.cpu_s,
            "longest_s": self.longest_s,
        }


async def _measure(
    lib: str, spec: dict[str, Any], tasks: int, retries: int, profiler: Any = None
) -> dict[str, Any]:
    fetch, close = await ADAPTERS[lib](spec["ca"], tasks)
    # tuples, and the JSON's lists dropped: fewer objects for the garbage collector to walk
    manifest = {url: (status, digest) for url, (status, digest) in spec.pop("manifest").items()}
    collections = GarbageCollections()
    gc.callbacks.append(collections)
    waited = _run_queue_wait()
    before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    if profiler is not None:
        profiler.start()
    try:
        result = await crawl(fetch, spec["seeds"], manifest, tasks, retries)
    finally:
        if profiler is not None:
            profiler.stop()
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    waited = _run_queue_wait() - waited
    threads = len(os.listdir("/proc/self/task"))
    gc.callbacks.remove(collections)
    await close()
    result.update(
        lib=lib,
        wall_s=wall,
        cpu_s=_cpu_seconds(after) - _cpu_seconds(before),
        user_s=after.ru_utime - before.ru_utime,
        system_s=after.ru_stime - before.ru_stime,
        rss_mib=_peak_rss_mib(),
        run_queue_wait_s=waited,
        threads=threads,
        gc=collections.report(),
    )
    return result


async def _reject_check(lib: str, spec: dict[str, Any], attempts: int = 3) -> dict[str, str]:
    """A TLS root trusting the farm's CA (must work), then trusting another CA (must fail).

    Each is tried up to ``attempts`` times, a fresh client each time, until it succeeds: a
    transient failure is not taken for a rejection (failures before a success are reported)."""
    url = next(seed for seed in spec["seeds"] if seed.startswith("https://"))
    outcome = {}
    for key, ca in (("trusted_ca", spec["ca"]), ("other_ca", spec["other_ca"])):
        failures: list[str] = []
        for _ in range(attempts):
            fetch, close = await ADAPTERS[lib](ca, 1)
            try:
                status, body = await fetch(url)
                outcome[key] = f"ok: {status}, {len(body)} bytes" + (
                    f" (after {len(failures)} failures: {failures[0]})" if failures else ""
                )
                break
            except Exception as exc:
                failures.append(f"error: {type(exc).__name__}: {exc}"[:160])
            finally:
                await close()
        else:
            outcome[key] = failures[-1]
    return outcome


def _loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.SelectorEventLoop()


def child(args: argparse.Namespace) -> None:
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {CRAWLER_CPU})  # before any thread starts: all of them inherit it
    spec = json.loads(Path(args.spec).read_text())
    loop = _loop(args.loop)
    if args.reject_check:
        print(json.dumps(loop.run_until_complete(_reject_check(args.child, spec))))
        return
    profiler = None
    if args.profile_out:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
    result = loop.run_until_complete(_measure(args.child, spec, args.tasks, args.retries, profiler))
    result["loop"] = args.loop
    if args.child == "hyperhttp":
        import hyperhttp

        result["module"] = str(Path(hyperhttp.__file__).parent)
    if profiler is not None:
        _write_profile(profiler, Path(args.profile_out), result)
    print(json.dumps(result))


# --profile: where hyperhttp's crawl spends its time.


def _group(frame: Any) -> str:
    """The module a profiled frame's own time is charged to.

    C functions (pyinstrument's ``<built-in>`` frames) go to what they are: zlib, hashlib and re
    (the driver's checks), OpenSSL's reads and writes; any other is charged to its caller.
    """
    path, name = frame.file_path or "", frame.function
    if path == "<built-in>":
        caller = _group(frame.parent) if frame.parent is not None else "?"
        if "ecompress" in name:  # zlib or isal: decompress, Decompress.decompress, .flush
            return "zlib (C inflate: zlib or isal)"
        if "sha256" in name or name.startswith("HASH."):
            return "hashlib (C: the driver's body check)"
        if name.startswith("Pattern."):
            return "re (C: the driver's link extraction)"
        if name.startswith(("_SSLSocket.", "SSLObject.", "MemoryBIO.")) or caller == "ssl":
            return "ssl"
        return caller
    if "/hyperhttp/" in path:
        return "hyperhttp/" + path.rsplit("/hyperhttp/", 1)[1]
    if path.endswith("perf/crawl.py"):
        return "driver (perf/crawl.py)" if name != "child" else "event loop (uvloop, in C)"
    if path.endswith(("/ssl.py", "/sslproto.py")):
        return "ssl"
    if "/site-packages/" in path:
        return path.rsplit("/site-packages/", 1)[1].split("/", 1)[0]
    if "/asyncio/" in path:
        return "asyncio"
    return "stdlib: " + path.rsplit("/", 1)[-1] if "/lib/python" in path else path or name


def _short_path(path: str) -> str:
    """A source file's path from the repository, site-packages or the standard library."""
    repository = f"{HERE.parent}/"
    if path.startswith(repository):
        return path[len(repository) :]
    if "/site-packages/" in path:
        return path.rsplit("/site-packages/", 1)[1]
    if "/lib/python3." in path:
        return path.rsplit("/lib/python3.", 1)[1].split("/", 1)[-1]
    return path


def _profile_tables(root: Any, total: float, top: int = 30) -> str:
    """Own time by module group, then the ``top`` functions by own time."""
    groups: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    stack = [root]
    while stack:
        frame = stack.pop()
        stack.extend(frame.children)
        if frame.is_synthetic:
            continue
        own = frame.total_self_time
        group = _group(frame)
        groups[group] += own
        if frame.file_path == "<built-in>":
            where = f"<built-in>, called from {frame.parent.function if frame.parent else '?'}"
        else:
            where = f"{_short_path(frame.file_path or '')}:{frame.line_no}"
        functions[f"`{frame.function}` ({where}) [{group}]"] += own
    hyperhttp = sum(t for g, t in groups.items() if g.startswith("hyperhttp/"))
    lines = [
        f"profiled {total:.2f} s of the crawl; hyperhttp/* own time in all: {hyperhttp:.2f} s "
        f"({hyperhttp / total:.0%})",
        "",
        "| where (own time) | s | share |",
        "|---|---:|---:|",
    ]
    lines += [f"| {g} | {t:.2f} | {t / total:.1%} |" for g, t in groups.most_common() if t > 0]
    lines += ["", f"top {top} functions by own time:", "", "| function | s | share |",
              "|---|---:|---:|"]  # fmt: skip
    lines += [f"| {f} | {t:.3f} | {t / total:.1%} |" for f, t in functions.most_common(top)]
    return "\n".join(lines)


def _write_profile(profiler: Any, directory: Path, result: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    session = profiler.last_session
    root = session.root_frame(trim_stem=False)
    summary = _profile_tables(root, root.time if root is not None else 0.0)
    header = (
        f"hyperhttp crawl under pyinstrument ({result['loop']}): {result['urls']} URLs in "
        f"{result['wall_s']:.2f} s ({result['urls'] / result['wall_s']:,.0f} pages/s under the "
        f"profiler), CPU {result['cpu_s']:.2f} s, wrong bodies {result['wrong_bodies']}, "
        f"errors {sum(result['errors'].values())}"
    )
    (directory / "summary.md").write_text(header + "\n\n" + summary + "\n")
    tree = profiler.output_text(unicode=False, color=False, show_all=False)
    (directory / "tree.txt").write_text(tree)
    (directory / "profile.html").write_text(profiler.output_html())


# The parent: the farm, nginx, the rounds, the tables.


def _proc_cpu(pid: int) -> float:
    """A process's user + system CPU seconds so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _run_child(lib: str, args: argparse.Namespace, spec: Path, *extra: str) -> dict[str, Any]:
    command = [
        sys.executable, str(HERE / "crawl.py"), "--child", lib, "--spec", str(spec),
        "--tasks", str(args.tasks), "--retries", str(args.retries), "--loop", args.loop, *extra,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        return {"lib": lib, "failed": tail[-500:] or f"exit status {result.returncode}"}
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def _measure_one(
    lib: str, args: argparse.Namespace, spec: Path, farm: Farm, nginx_pid: int
) -> dict[str, Any]:
    """One crawl; the child's own figures plus its whole process's CPU and nginx's view."""
    log = farm.root / "access.log"
    offset = log.stat().st_size if log.exists() else 0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    nginx_before = _proc_cpu(nginx_pid)
    result = _run_child(lib, args, spec)
    nginx_after = _proc_cpu(nginx_pid)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["process_cpu_s"] = _cpu_seconds(after) - _cpu_seconds(usage)
    result["nginx_cpu_s"] = nginx_after - nginx_before
    time.sleep(0.05)  # nginx logs a request when it completes: long done, but be sure
    result["nginx"] = served(log, offset)
    return result


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _summaries(results: list[dict[str, Any]], libs: list[str]) -> dict[str, dict[str, Any]]:
    summaries = {}
    for lib in libs:
        runs = [r for r in results if r["lib"] == lib and "failed" not in r]
        if not runs:
            continue
        errors: Counter[str] = Counter()
        for r in runs:
            errors.update(r["errors"])
        summaries[lib] = {
            "runs": len(runs),
            "urls": sorted({r["urls"] for r in runs}),
            "pages_per_s": _median([r["urls"] / r["wall_s"] for r in runs]),
            "cpu_ms_per_page": _median([r["cpu_s"] / r["urls"] * 1000 for r in runs]),
            "rss_mib": max(r["rss_mib"] for r in runs),
            "wrong_bodies": sum(r["wrong_bodies"] for r in runs),
            "wrong_statuses": sum(r["wrong_statuses"] + r["unknown_urls"] for r in runs),
            "failed_urls": sum(r["failed_urls"] for r in runs),
            "errors": errors,
            "wall_s": _median([r["wall_s"] for r in runs]),
            "cpu_s": _median([r["cpu_s"] for r in runs]),
            "cpu_share": _median([r["cpu_s"] / r["wall_s"] for r in runs]),
            "run_queue_wait_s": _median([r["run_queue_wait_s"] for r in runs]),
            "gc_cpu_s": _median([r["gc"]["cpu_s"] for r in runs]),
            "gc_collected": _median([r["gc"]["collected"] for r in runs]),
            "process_cpu_s": _median([r["process_cpu_s"] for r in runs]),
            "nginx_share": _median([r["nginx_cpu_s"] / r["wall_s"] for r in runs]),
            "connections": _median([r["nginx"]["connections"] for r in runs]),
            "http2_connections": _median([r["nginx"]["http2_connections"] for r in runs]),
            "requests": _median([r["nginx"]["requests"] for r in runs]),
            "http2": _median([r["nginx"]["protocols"].get("HTTP/2.0", 0) for r in runs]),
            "gzipped": _median([r["nginx"]["ok_gzipped"] / max(1, r["nginx"]["ok"]) for r in runs]),
        }
    return summaries


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}" if base else "-"


def _tables(summaries: dict[str, dict[str, Any]], libs: list[str], expected: int) -> str:
    bases = [b for b in BASES if b in libs]
    lines = [
        "| client | URLs per crawl | pages/s | "
        + "".join(f"x {b} | " for b in bases)
        + "CPU ms/page | "
        + "".join(f"x {b} | " for b in bases)
        + "peak RSS MiB | wrong bodies | wrong status | failed URLs | errors |",
        "|---|---:|---:|" + "---:|" * len(bases) + "---:|" + "---:|" * len(bases) + "---:|" * 5,
    ]
    for lib in libs:
        s = summaries.get(lib)
        if s is None:
            lines.append(f"| {lib} | failed |" + " |" * (9 + 2 * len(bases)))
            continue
        urls = "-".join(str(n) for n in (s["urls"][0], s["urls"][-1]) if len(s["urls"]) > 1)
        urls = urls or str(s["urls"][0])
        speed = "".join(
            f"{_ratio(s['pages_per_s'], summaries.get(b, {}).get('pages_per_s'))} | " for b in bases
        )
        cpu = "".join(
            f"{_ratio(s['cpu_ms_per_page'], summaries.get(b, {}).get('cpu_ms_per_page'))} | "
            for b in bases
        )
        lines.append(
            f"| {lib} | {urls} | {s['pages_per_s']:,.0f} | {speed}{s['cpu_ms_per_page']:.3f} | "
            f"{cpu}{s['rss_mib']:.0f} | {s['wrong_bodies']} | {s['wrong_statuses']} | "
            f"{s['failed_urls']} | {sum(s['errors'].values())} |"
        )
    lines += [
        "",
        "**Per crawl** (medians over rounds). CPU/wall: the crawler's CPU over the crawl's wall "
        "time; waited: its threads runnable while another process held the core (the machine "
        "is shared); GC: the cyclic collector's CPU time and the objects it freed; process CPU: "
        "the whole child, start-up and imports included; from nginx's log: requests, "
        "connections the client opened (HTTP/2 ones in brackets), 200s sent gzipped; nginx "
        "CPU over the crawl's wall time\n",
        "| client | crawl s | CPU s | CPU/wall | waited s | GC s (objects freed) | process CPU s "
        "| requests | connections (h2) | HTTP/2 requests | 200s gzipped | nginx CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lib in libs:
        s = summaries.get(lib)
        if s is not None:
            lines.append(
                f"| {lib} | {s['wall_s']:.2f} | {s['cpu_s']:.2f} | {s['cpu_share']:.0%} | "
                f"{s['run_queue_wait_s']:.2f} | {s['gc_cpu_s']:.2f} ({s['gc_collected']:,.0f}) | "
                f"{s['process_cpu_s']:.2f} | {s['requests']:.0f} | {s['connections']:.0f} "
                f"({s['http2_connections']:.0f}) | {s['http2']:.0f} | {s['gzipped']:.0%} | "
                f"{s['nginx_share']:.0%} |"
            )
    counts = {n for s in summaries.values() for n in s["urls"]}
    same = counts == {expected}
    lines += ["", f"URLs per crawl: {'identical for every client and round' if same else 'DIFFER'}"
              f" ({', '.join(map(str, sorted(counts)))}; the farm's manifest: {expected})"]  # fmt: skip
    for lib in libs:
        s = summaries.get(lib)
        if s is not None and s["errors"]:
            kinds = ", ".join(f"{kind} x{n}" for kind, n in s["errors"].most_common())
            lines.append(f"- {lib} exceptions over {s['runs']} rounds: {kinds}")
    return "\n".join(lines)


def _tree_state() -> str:
    """The commit, and whether hyperhttp/ differs from it (the figures are this tree's)."""

    def git(*arguments: str) -> str:
        run = subprocess.run(["git", *arguments], cwd=HERE.parent, capture_output=True, text=True)
        return run.stdout.strip()

    changed = git("status", "--porcelain", "--", "hyperhttp")
    return f"{git('rev-parse', '--short', 'HEAD') or 'unknown commit'}" + (
        f", hyperhttp/ with uncommitted changes ({len(changed.splitlines())} files)"
        if changed
        else ", hyperhttp/ as committed"
    )


def _available(lib: str) -> bool:
    try:
        __import__(lib)
    except ImportError:
        return False
    return True


def _write_spec(farm: Farm) -> Path:
    """What a child needs: seeds, manifest and CAs, in the farm's directory."""
    spec = farm.root / "crawl.json"
    spec.write_text(
        json.dumps(
            {
                "seeds": farm.seeds,
                "manifest": farm.manifest,
                "ca": farm.ca_file,
                "other_ca": farm.other_ca_file,
            }
        )
    )
    return spec


def _profile(args: argparse.Namespace, spec: Path) -> None:
    out = Path(args.profile_dir)
    result = _run_child("hyperhttp", args, spec, "--profile-out", str(out))
    if "failed" in result:
        raise SystemExit(f"the profiled crawl failed: {result['failed']}")
    print((out / "summary.md").read_text())
    print(f"written: {out / 'summary.md'}, {out / 'tree.txt'} (pyinstrument's call tree), "
          f"{out / 'profile.html'}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sites", type=int, default=200, help="origins (nginx servers)")
    parser.add_argument("--pages", type=int, default=25, help="pages per site, its root included")
    parser.add_argument("--seed", type=int, default=1, help="the farm's shape and content")
    parser.add_argument("--tasks", type=int, default=256, help="concurrent crawl tasks")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--retries", type=int, default=2, help="more attempts after an exception")
    parser.add_argument("--libs", default=",".join(LIBS))
    parser.add_argument("--loop", default="uvloop", choices=["asyncio", "uvloop"])
    parser.add_argument("--timeout", type=float, default=600, help="seconds per crawl, at most")
    parser.add_argument("--json", help="write the settings and every crawl here")
    parser.add_argument(
        "--profile", action="store_true", help="only hyperhttp's crawl, under pyinstrument"
    )
    parser.add_argument("--profile-dir", default=str(HERE / "results" / "crawl-profile"))
    parser.add_argument("--child", choices=LIBS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--reject-check", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    binary = ensure_nginx()
    if binary is None:
        print("the crawl needs nginx (Debian's: apt-get install nginx)", file=sys.stderr)
        return 1
    modules = nginx_modules(binary)
    for module in ("http_ssl_module", "http_v2_module", "http_gzip_static_module"):
        if f"--with-{module}" not in modules:
            print(f"this nginx has no {module}: the farm needs it", file=sys.stderr)
            return 1
    libs = [lib for lib in args.libs.split(",") if lib]
    if args.profile:
        libs = ["hyperhttp"]
    missing = [lib for lib in libs if lib not in LIBS or not _available(lib)]
    libs = [lib for lib in libs if lib not in missing]
    cpus = os.cpu_count() or 1
    tree = _tree_state()
    directory = Path(tempfile.mkdtemp(prefix="hyperhttp-crawl-"))
    started = time.perf_counter()
    try:
        farm = build_farm(directory, args.sites, args.pages, args.seed)
        spec = _write_spec(farm)
        built = time.perf_counter() - started
        nginx = start_farm(farm, binary, cpus - 1)
        try:
            print(f"command: python {' '.join(sys.argv)}")
            print(f"tree: {tree}")
            print(f"farm: {farm.describe()} (built in {built:.1f} s)")
            print(
                f"server: {modules.splitlines()[0].split(': ')[-1]}, one worker on CPU {cpus - 1}; "
                f"crawler: one child process per crawl on CPU {CRAWLER_CPU}, {args.loop}, "
                f"{args.tasks} tasks, {args.retries} retries after an exception"
            )
            if missing:
                print(f"left out (not installed or unknown): {', '.join(missing)}")
            if args.profile:
                _profile(args, spec)
                return 0
            results = _rounds(args, libs, spec, farm, nginx.pid)
        finally:
            terminate(nginx)
        summaries = _summaries(results, libs)
        print()
        print(
            f"**Crawl of {farm.expected} URLs, {args.rounds} rounds, medians** (x columns: "
            "pages/s over the other's, higher is faster; CPU per page over the other's, lower "
            "is cheaper)\n"
        )
        print(_tables(summaries, libs, farm.expected))
        for r in results:
            if "failed" in r:
                print(f"- round {r['round'] + 1} {r['lib']} failed: {r['failed']}")
        print(f"\nruntime: {time.perf_counter() - started:.0f} s")
        if args.json:
            out = Path(args.json)
            out.parent.mkdir(parents=True, exist_ok=True)
            settings = {k: v for k, v in vars(args).items() if v is not None}
            record = {"settings": settings, "tree": tree, "farm": farm.describe()}
            out.write_text(json.dumps({**record, "results": results}, indent=1))
            print(f"raw results: {out}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


def _rounds(
    args: argparse.Namespace, libs: list[str], spec: Path, farm: Farm, nginx_pid: int
) -> list[dict[str, Any]]:
    """The verification check, then every client once per round: a shuffled order, rotated by
    one place each round, so that no client is always first or always after the same one."""
    for lib in libs[:]:
        check = _run_child(lib, args, spec, "--reject-check")
        verifies = check.get("trusted_ca", "").startswith("ok") and check.get(
            "other_ca", ""
        ).startswith("error")
        print(
            f"TLS check {lib:>9}: {'verifies' if verifies else 'DOES NOT VERIFY: left out'} "
            f"(trusting the farm's CA: {check.get('trusted_ca', check.get('failed'))}; "
            f"trusting another CA: {check.get('other_ca', '-')[:100]})"
        )
        if not verifies:
            libs.remove(lib)
    results = []
    shuffled = random.sample(libs, len(libs))
    for round_number in range(args.rounds):
        turn = round_number % max(1, len(shuffled))  # each client first once per len(libs) rounds
        for lib in shuffled[turn:] + shuffled[:turn]:
            result = _measure_one(lib, args, spec, farm, nginx_pid)
            result["round"] = round_number
            results.append(result)
            status = result.get("failed") or (
                f"{result['urls']} URLs in {result['wall_s']:.2f} s, "
                f"{result['urls'] / result['wall_s']:,.0f} pages/s, CPU {result['cpu_s']:.2f} s, "
                f"wrong bodies {result['wrong_bodies']}, errors {sum(result['errors'].values())}"
            )
            print(f"  round {round_number + 1} {lib:>9}: {status}", file=sys.stderr, flush=True)
    return results


if __name__ == "__main__":
    raise SystemExit(main())
