"""The pool's waiter path: more tasks than connections, side by side with other clients.

    python perf/waiters.py                          # 8 rounds, uvloop, hyperhttp, pyreqwest,
                                                    #   aiohttp and httpx (about 5 minutes)
    python perf/waiters.py --loops asyncio,uvloop   # both event loops (twice as long)
    python perf/waiters.py --baseline HEAD --libs hyperhttp
                                                    # this tree against hyperhttp at HEAD
    python perf/waiters.py --rounds 3 --duration 2  # a quick look

Plain HTTP/1.1, 200-byte bodies from nginx (one worker, pinned to the last CPU, ``perf/nginx.py``)
on 127.0.0.1. Each client is measured in two configurations, each a child process
(``perf/clients.py``) pinned to CPU 0 with one client object:

- **A**: 64 tasks on a pool capped at 64 connections: every task has a connection of its own.
- **B**: 256 tasks on the same cap: 192 tasks are always waiting for a connection, in the pool's
  queue (for pyreqwest, see below: its queue is a semaphore on in-flight requests).

Each task loops GET + read the whole body + check its length, for ``--duration`` seconds after a
``--warmup``. The figure of interest is B/A: what waiting in the pool costs per request, for
the same 64 connections doing the same work (B/A = 1: waiting is free; below 1: the waiter path
costs CPU the server-bound A does not spend). A round runs every (client, configuration) pair once,
A and B of a client back to back; odd rounds run the pairs in the reverse order of even ones, so
neither configuration nor any client always comes first. Per round, B/A is the ratio of two
measurements made next to each other; the table gives its median over rounds and its lowest and
highest (the noise of the run).

Connections are checked, not assumed: each child counts its established TCP connections to
nginx's port when its timed tasks are done (``/proc/net/tcp``, by the inode of each of its
sockets), and nginx's ``stub_status`` counter of accepted connections, read before and after each
measurement, gives how many it opened in all (warm-up included). Opened <= the cap proves the
client never held more than the cap at once.

``--baseline REV`` adds ``hyperhttp@<short sha>``, the ``hyperhttp/`` package at a git revision
(``perf/baseline.py``), measured like ``hyperhttp`` in the same rounds, and a table of
hyperhttp over it per configuration (median of per-round ratios).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
sys.path.insert(0, str(HERE))

from baseline import (  # noqa: E402
    Baseline,
    paired_rounds,
    parse_baseline,
    summary,
    with_baseline,
)
from bulk import hyperhttp_dir  # noqa: E402
from clients import runs_as  # noqa: E402
from nginx import ensure_nginx, start_server  # noqa: E402

LIBS = ["hyperhttp", "pyreqwest", "aiohttp", "httpx"]
BODY = 200
CONFIGS = ("A", "B")
# How each client's cap is set (perf/clients.py); {n} is --connections.
CAPS = {
    "hyperhttp": "Client(max_connections={n}, max_keepalive_connections={n})",
    "pyreqwest": "ClientBuilder().max_connections({n}).pool_max_idle_per_host({n}): "
    "caps in-flight requests, not connections (see below)",
    "aiohttp": "TCPConnector(limit={n})",
    "httpx": "Limits(max_connections={n}, max_keepalive_connections={n})",
}
PYREQWEST_NOTE = (
    "pyreqwest has no option that caps its connections. ClientBuilder().max_connections(n) is, "
    'in its own documentation, the "maximum number of inflight requests": a tokio Semaphore '
    "each request takes before it is sent (pyreqwest's src/request/connection_limiter.rs), so in "
    "B its surplus tasks wait on that semaphore, not in a connection pool. reqwest's pool "
    "(hyper-util) has no limit on total connections, only pool_max_idle_per_host on idle ones. "
    "Over HTTP/1.1, at most n requests in flight keeps its connections near n, but not by "
    "construction: the columns 'at end' and 'opened' show what it really held."
)


def _available(lib: str) -> bool:
    return importlib.util.find_spec(runs_as(lib)) is not None


def _accepts(status_url: str | None) -> int | None:
    """nginx's count of accepted connections (``stub_status``), this read's own included."""
    if status_url is None:
        return None
    host_port, _, path = status_url.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/" + path)
        text = connection.getresponse().read().decode()
    finally:
        connection.close()
    # Active connections: 1 \n server accepts handled requests \n 12 12 34 \n Reading: ...
    return int(text.splitlines()[2].split()[0])


def _tree_state() -> dict[str, Any]:
    """The commit checked out and whether ``hyperhttp/`` differs from it (uncommitted changes)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPOSITORY), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    changed = git("status", "--porcelain", "--", "hyperhttp").splitlines()
    return {"head": git("log", "-1", "--oneline"), "hyperhttp_changes": changed}


def _tree_digest() -> str:
    """A digest of the ``hyperhttp/`` sources as they are now (the tree may change mid-run)."""
    digest = hashlib.sha256()
    for path in sorted((REPOSITORY / "hyperhttp").rglob("*.py")):
        digest.update(str(path.relative_to(REPOSITORY)).encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:  # removed between the listing and the read
            digest.update(b"<gone>")
    return digest.hexdigest()[:12]


def _measure(
    lib: str,
    config: str,
    loop: str,
    url: str,
    status_url: str | None,
    args: argparse.Namespace,
    baseline: Baseline | None,
) -> dict[str, Any]:
    tasks = args.connections if config == "A" else args.tasks
    command = [
        sys.executable, str(HERE / "clients.py"), "--lib", lib, "--loop", loop,
        "--url", f"{url}/bytes/{BODY}", "--expected", str(BODY), *hyperhttp_dir(lib, baseline),
        "--concurrency", str(tasks), "--max-connections", str(args.connections),
        "--count-connections", "--duration", str(args.duration), "--warmup", str(args.warmup),
    ]  # fmt: skip
    digest = _tree_digest() if lib == "hyperhttp" else None
    before = _accepts(status_url)
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=args.duration * 10 + 60
    )
    after = _accepts(status_url)
    measured: dict[str, Any]
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-3:]
        measured = {"lib": lib, "loop": loop, "failed": " | ".join(line.strip() for line in tail)}
    else:
        measured = json.loads(result.stdout.strip().splitlines()[-1])
    measured.update(config=config, tasks=tasks, cap=args.connections)
    if before is not None and after is not None:
        measured["opened"] = after - before - 1  # the read after is a connection of its own
    if digest is not None:
        measured["tree_digest"] = digest
    return measured


def _connections(runs: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in runs if key in r]
    if not values:
        return "-"
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}-{high}"


def _held(runs: list[dict[str, Any]], cap: int) -> str:
    """Did the client hold at most ``cap`` connections in B? What the counts prove."""
    ends = [r["connections_at_end"] for r in runs if "connections_at_end" in r]
    opened = [r["opened"] for r in runs if "opened" in r]
    if not ends:
        return "-"
    if max(ends) > cap:
        return f"NO: {max(ends)} at end"
    if opened and max(opened) <= cap:
        return "yes"
    if opened:
        return f"at end; opened up to {max(opened)}"
    return "at end (opened: not known)"


def _summary(
    results: list[dict[str, Any]], loop: str, libs: list[str], args: argparse.Namespace
) -> str:
    n, tasks = args.connections, args.tasks
    lines = [
        f"**waiter path, {loop}: A = {n} tasks on {n} connections, B = {tasks} tasks on {n} "
        f"connections; {BODY} B over plain HTTP/1.1**\n",
        "| client | A req/s | B req/s | B/A (median) | B/A lowest / highest | rounds | "
        "connections at end A / B | opened per measurement A / B | B held <= "
        f"{n} | errors A / B |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    failures: dict[str, str] = {}
    for lib in libs:
        runs = {
            config: [
                r
                for r in results
                if r["loop"] == loop and r["lib"] == lib and r["config"] == config
            ]  # fmt: skip
            for config in CONFIGS
        }
        ok = {config: [r for r in runs[config] if "failed" not in r] for config in CONFIGS}
        for config in CONFIGS:
            for r in runs[config]:
                if "failed" in r:
                    failures.setdefault(f"{lib} {config}", r["failed"])
        pairs = paired_rounds(
            [{**r, "lib": r["config"]} for config in CONFIGS for r in ok[config]], "B", "A", "rps"
        )
        ratios = [b / a for b, a in pairs]
        medians = [
            f"{statistics.median(r['rps'] for r in ok[config]):,.0f}" if ok[config] else "failed"
            for config in CONFIGS
        ]
        ratio = f"{statistics.median(ratios):.2f}" if ratios else "-"
        spread = f"{min(ratios):.2f} / {max(ratios):.2f}" if ratios else "-"
        errors = " / ".join(str(sum(r["errors"] for r in ok[config])) for config in CONFIGS)
        lines.append(
            f"| {lib} | {medians[0]} | {medians[1]} | {ratio} | {spread} | {len(ratios)} | "
            f"{_connections(ok['A'], 'connections_at_end')} / "
            f"{_connections(ok['B'], 'connections_at_end')} | "
            f"{_connections(ok['A'], 'opened')} / {_connections(ok['B'], 'opened')} | "
            f"{_held(ok['B'], n)} | {errors} |"
        )
    if failures:
        lines += ["", *(f"- {what} failed: {why[-300:]}" for what, why in failures.items())]
    return "\n".join(lines)


def _baseline_summary(results: list[dict[str, Any]], loops: list[str], baseline: Baseline) -> str:
    base = baseline.name
    lines = [
        f"**hyperhttp (this working tree) x {base} ({baseline.revision}): median of the "
        "per-round ratios**\n",
        f"| loop | configuration | hyperhttp req/s | {base} req/s | x {base} | "
        "lowest / highest | rounds |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for loop in loops:
        for config in CONFIGS:
            runs = [r for r in results if r["loop"] == loop and r["config"] == config]
            pairs = paired_rounds(runs, "hyperhttp", base, "rps")
            if not pairs:
                lines.append(f"| {loop} | {config} | | | - | | 0 |")
                continue
            current, before, ratio, lowest, highest, rounds = summary(pairs)
            lines.append(
                f"| {loop} | {config} | {current:,.0f} | {before:,.0f} | {ratio:.2f} | "
                f"{lowest:.2f} / {highest:.2f} | {rounds} |"
            )
    return "\n".join(lines)


def _round_line(round_results: list[dict[str, Any]], loop: str, lib: str) -> str:
    cells = []
    figures: dict[str, float] = {}
    for config in CONFIGS:
        r = next(
            (r for r in round_results if r["loop"] == loop and r["lib"] == lib
             and r["config"] == config),
            None,
        )  # fmt: skip
        if r is None or "failed" in r:
            cells.append(f"{config} failed")
            continue
        figures[config] = r["rps"]
        held = r.get("connections_at_end", "?")
        opened = r.get("opened", "?")
        cells.append(
            f"{config} {r['rps']:>7,.0f} req/s ({held} conns at end, {opened} opened, "
            f"{r['errors']} errors)"
        )
    ratio = f"B/A {figures['B'] / figures['A']:.2f}" if len(figures) == 2 else "B/A -"
    return f"  {loop:>7} {lib:>18}: " + "; ".join(cells) + f"; {ratio}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--connections", type=int, default=64, help="every client's cap (A and B)")
    parser.add_argument("--tasks", type=int, default=256, help="B's tasks (A has --connections)")
    parser.add_argument("--loops", default="uvloop", help="asyncio, uvloop or both (comma)")
    parser.add_argument("--libs", default=",".join(LIBS), help=f"default {','.join(LIBS)}")
    parser.add_argument(
        "--baseline", metavar="REV", help="also measure hyperhttp at this git revision"
    )
    parser.add_argument("--no-nginx", action="store_true", help="use the built-in server")
    parser.add_argument("--json", metavar="FILE", help="also write the raw results here")
    args = parser.parse_args()
    loops = [loop for loop in args.loops.split(",") if loop]
    if not loops or any(loop not in ("asyncio", "uvloop") for loop in loops):
        parser.error("--loops: asyncio, uvloop or both")
    if args.tasks <= args.connections:
        parser.error("--tasks must be more than --connections: B is about tasks that wait")
    chosen = [lib for lib in args.libs.split(",") if lib]
    unknown = [lib for lib in chosen if lib not in LIBS]
    if unknown:
        parser.error(f"--libs: {','.join(unknown)}; choose from {','.join(LIBS)}")
    baseline = parse_baseline(parser, args.baseline)
    skipped = [lib for lib in chosen if not _available(lib)]
    libs = with_baseline([lib for lib in chosen if lib not in skipped], baseline)
    if not libs:
        parser.error("no client to measure")

    if not args.no_nginx:
        ensure_nginx()
    server = start_server(prefer_nginx=not args.no_nginx, status=True)
    tree = _tree_state()
    n = args.connections
    print(f"command: python {' '.join(sys.argv)}")
    changes = len(tree["hyperhttp_changes"])
    print(
        f"tree: {tree['head'][:80]}; hyperhttp/ "
        + (
            f"has uncommitted changes ({changes} paths)"
            if changes
            else "has no uncommitted changes"
        )
    )
    if baseline is not None:
        print(baseline.describe())
    print(
        f"server: {server.description} at {server.http_url}, pinned to the last CPU; clients "
        f"pinned to CPU 0; GET /bytes/{BODY}, plain HTTP/1.1"
    )
    print(
        f"A = {n} tasks, B = {args.tasks} tasks ({args.tasks - n} always waiting), on one client "
        f"capped at {n} connections; {args.rounds} rounds x {len(loops)} loops x {len(libs)} "
        f"clients x 2, {args.duration:g} s each after {args.warmup:g} s warm-up"
    )
    print(
        "connections: 'at end' = the client's established connections to nginx when its timed "
        "tasks are done (/proc/net/tcp by socket inode); 'opened' = connections nginx accepted "
        "during the measurement, warm-up included ("
        + ("stub_status)" if server.status_url else "not known without nginx)")
    )
    for lib in libs:
        print(f"  {lib}: {CAPS[runs_as(lib)].format(n=n)}")
    if "pyreqwest" in libs:
        print(f"note: {PYREQWEST_NOTE}")
    if skipped:
        print(f"skipped (not installed): {', '.join(skipped)}")
    pairs = [(loop, lib, config) for loop in loops for lib in libs for config in CONFIGS]
    results: list[dict[str, Any]] = []
    try:
        for round_number in range(args.rounds):
            order = pairs if round_number % 2 == 0 else pairs[::-1]
            round_results = []
            for loop, lib, config in order:
                result = _measure(
                    lib, config, loop, server.http_url, server.status_url, args, baseline
                )
                result.update(round=round_number, loop=loop)
                round_results.append(result)
                status = result.get("failed") or f"{result['rps']:,.0f} req/s"
                print(
                    f"  round {round_number + 1} {loop:>7} {lib:>18} {config}: {status}",
                    file=sys.stderr,
                    flush=True,
                )
            results += round_results
            direction = "forward" if round_number % 2 == 0 else "reversed"
            print(f"round {round_number + 1} ({direction} order):")
            for loop in loops:
                for lib in libs:
                    print(_round_line(round_results, loop, lib))
            sys.stdout.flush()
    finally:
        server.stop()
    after = _tree_state()
    print()
    for loop in loops:
        print(_summary(results, loop, libs, args))
        print()
    if baseline is not None:
        print(_baseline_summary(results, loops, baseline))
        print()
    digests = sorted({r["tree_digest"] for r in results if "tree_digest" in r})
    if len(digests) > 1 or after != tree:
        print(
            f"warning: hyperhttp/ changed during the run ({len(digests)} distinct states of its "
            "sources measured): this tree's figures mix them"
        )
    if "pyreqwest" in libs:
        print(f"note: {PYREQWEST_NOTE}")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(
                {
                    "command": sys.argv,
                    "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "tree": tree,
                    "tree_after": after,
                    "hyperhttp_digests": digests,
                    "server": server.description,
                    "connections": n,
                    "tasks": {"A": n, "B": args.tasks},
                    "body": BODY,
                    "duration": args.duration,
                    "warmup": args.warmup,
                    "loops": loops,
                    "libs": libs,
                    "caps": {lib: CAPS[runs_as(lib)].format(n=n) for lib in libs},
                    "baseline": baseline.sha if baseline is not None else None,
                    "results": results,
                },
                indent=1,
            )
        )
        print(f"raw results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
