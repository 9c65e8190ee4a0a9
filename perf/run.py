"""Side-by-side HTTP/1.1 benchmark: hyperhttp, aiohttp, httpx, pyreqwest and a raw ceiling client.

    python perf/run.py                 # 3 rounds x {http, https} x {200b, 10k, 1m} x {asyncio, uvloop}
                                       #   x 5 clients
    python perf/run.py --quick         # 1 round, http and https, 200b and 10k, uvloop only
    python perf/run.py --scenario https  # only HTTP/1.1 over TLS
    python perf/run.py --scenario upload,download  # bulk transfers over one connection (perf/bulk.py)

One server for the whole run (nginx with one worker when installed, pinned to the last CPU), plain
HTTP on one port and, for the https scenario, the same paths over TLS on another, with a
certificate from a CA made by trustme for this run; every client verifies against that CA, and
before the https rounds each client is shown to reject a server its CA did not sign. Every
measurement is its own child process pinned to CPU 0, so each client has a core and its own RSS.
Rounds are interleaved (every client once per round, in a shuffled order) and the table shows the
median over rounds, so drift on a shared machine hits every client alike. Ratios compare clients
within this one run only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bulk import BULK_SCENARIOS, run_bulk  # noqa: E402
from nginx import SIZES, ensure_nginx, make_certificates, start_server  # noqa: E402

LIBS = ["hyperhttp", "aiohttp", "httpx", "pyreqwest", "ceiling"]
SCENARIOS = ["http", "https"]  # the default set; BULK_SCENARIOS only when asked for


def _available(lib: str) -> bool:
    module = {"ceiling": "httptools"}.get(lib, lib)
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _measure(
    lib: str, loop: str, url: str, size: int, args: argparse.Namespace, ca: str | None = None
) -> dict[str, Any]:
    command = [
        sys.executable, str(HERE / "clients.py"), "--lib", lib, "--loop", loop, "--url", url,
        "--expected", str(size), "--concurrency", str(args.concurrency),
        "--duration", str(args.duration), "--warmup", str(args.warmup),
    ]  # fmt: skip
    if ca:
        command += ["--ca", ca]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=args.duration * 10 + 60
    )
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-3:]
        return {"lib": lib, "loop": loop, "failed": " | ".join(tail)}
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def _verify_check(lib: str, loop: str, url: str, ca: str, other_ca: str) -> dict[str, Any]:
    """Does the client accept the server under ``ca`` and reject it under ``other_ca``?"""
    command = [
        sys.executable, str(HERE / "clients.py"), "--lib", lib, "--loop", loop, "--url", url,
        "--expected", "0", "--ca", ca, "--verify-check", other_ca,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        return {"lib": lib, "verifies": False, "trusted_ca": f"failed: {tail}", "other_ca": "-"}
    outcome: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return outcome


def _tls_log_size(tls_log: Path | None) -> int:
    try:
        return tls_log.stat().st_size if tls_log is not None else 0
    except FileNotFoundError:
        return 0


def _tls_connections(tls_log: Path, offset: int) -> list[str]:
    """nginx's lines for the TLS connections opened since ``offset`` (one line per connection).

    A line is ``<connection> <protocol> <cipher> <group> <reused: r or .>``; the connection
    number is dropped.
    """
    time.sleep(0.05)  # nginx writes the line when the first request completes: long done here
    with open(tls_log, "rb") as log:
        log.seek(offset)
        text = log.read().decode()
    return [line.split(" ", 1)[1] for line in text.splitlines() if " " in line]


def _tls_table(results: list[dict[str, Any]], libs: list[str]) -> str:
    """Per client, over all its https measurements: handshakes and what they negotiated."""
    lines = [
        "**https: TLS connections per measurement (from nginx's log)**\n",
        "| client | measurements | connections: min / median / max | timed requests per "
        "connection (median) | negotiated (connections) | resumed |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for lib in libs:
        runs = [r for r in results if r["scenario"] == "https" and r["lib"] == lib
                and "tls_connections" in r]  # fmt: skip
        if not runs:
            continue
        counts = [len(r["tls_connections"]) for r in runs]
        negotiated: Counter[str] = Counter()
        resumed = 0
        for r in runs:
            for line in r["tls_connections"]:
                params, _, reused = line.rpartition(" ")
                negotiated[params] += 1
                resumed += reused == "r"
        per_connection = statistics.median(
            (r["requests"] / len(r["tls_connections"])) if r["tls_connections"] else 0 for r in runs
        )
        lines.append(
            f"| {lib} | {len(runs)} | {min(counts)} / {statistics.median(counts):g} / "
            f"{max(counts)} | {per_connection:,.0f} | "
            + "; ".join(f"{params} ({n})" for params, n in negotiated.most_common())
            + f" | {resumed} |"
        )
    return "\n".join(lines)


def _table(
    results: list[dict[str, Any]], scenario: str, loop: str, sizes: list[str], libs: list[str]
) -> str:
    lines = [
        f"**{scenario}, {loop}**\n",
        "| body | client | req/s | p50 ms | p99 ms | peak RSS MiB | x aiohttp | x ceiling | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        medians: dict[str, dict[str, float]] = {}
        for lib in libs:
            runs = [r for r in results if r["scenario"] == scenario and r["loop"] == loop
                    and r["size"] == size and r["lib"] == lib and "failed" not in r]  # fmt: skip
            if runs:
                medians[lib] = {
                    "rps": statistics.median(r["rps"] for r in runs),
                    "p50": statistics.median(r["p50_ms"] for r in runs),
                    "p99": statistics.median(r["p99_ms"] for r in runs),
                    "rss": max(r["rss_mib"] for r in runs),
                    "errors": sum(r["errors"] for r in runs),
                }
        base = medians.get("aiohttp", {}).get("rps")
        ceiling = medians.get("ceiling", {}).get("rps")
        for lib in libs:
            m = medians.get(lib)
            if m is None:
                lines.append(f"| {size} | {lib} | failed | | | | | | |")
                continue
            vs_aiohttp = f"{m['rps'] / base:.2f}" if base else "-"
            vs_ceiling = f"{m['rps'] / ceiling:.2f}" if ceiling else "-"
            lines.append(
                f"| {size} | {lib} | {m['rps']:,.0f} | {m['p50']:.2f} | {m['p99']:.2f} | "
                f"{m['rss']:.0f} | {vs_aiohttp} | {vs_ceiling} | {int(m['errors'])} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 round, 200b and 10k, uvloop, 2 s (both scenarios)"
    )
    parser.add_argument(
        "--scenario",
        default=",".join(SCENARIOS),
        help="comma-separated: http (plain HTTP/1.1), https (HTTP/1.1 over TLS), upload (a "
        "multipart file upload), download (a streamed download); default http,https",
    )
    parser.add_argument(
        "--rounds", type=int, help="default 3 (http, https) and 5 (upload, download); --quick: 1"
    )
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--libs",
        help=f"default {','.join(LIBS)}; upload and download have their own sets (perf/bulk.py)",
    )
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument(
        "--url",
        help="base URL of a running server serving /bytes/<n>; its scheme is the one scenario "
        "run (an https URL needs --ca)",
    )
    parser.add_argument(
        "--ca", help="with an https --url: PEM of the CA that signed its certificate"
    )
    parser.add_argument("--no-nginx", action="store_true", help="use the built-in server")
    parser.add_argument("--upload-mib", type=int, default=100, help="upload: the file's size")
    parser.add_argument("--download-mib", type=int, default=1024, help="download: body size")
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.sizes, args.loops = 1, 2.0, "200b,10k", "uvloop"
    bulk_rounds = args.rounds if args.rounds is not None else 5
    args.rounds = args.rounds if args.rounds is not None else 3
    chosen_libs = [lib for lib in args.libs.split(",") if lib] if args.libs else None
    libs = [lib for lib in (chosen_libs or LIBS) if lib in LIBS]
    skipped = [lib for lib in libs if not _available(lib)]
    libs = [lib for lib in libs if lib not in skipped]
    sizes = args.sizes.split(",")
    loops = args.loops.split(",")
    scenarios = [s for s in args.scenario.split(",") if s]
    unknown = [s for s in scenarios if s not in SCENARIOS + BULK_SCENARIOS]
    if unknown or not scenarios:
        parser.error(
            f"--scenario: {','.join(unknown) or 'none given'}; "
            f"choose from {', '.join(SCENARIOS + BULK_SCENARIOS)}"
        )
    bulk = [s for s in BULK_SCENARIOS if s in scenarios]
    scenarios = [s for s in scenarios if s in SCENARIOS]
    if args.url:
        if bulk:
            parser.error("--url is for http and https; upload and download start their own servers")
        scenarios = ["https" if args.url.startswith("https://") else "http"]
        if scenarios == ["https"] and not args.ca:
            parser.error("an https --url needs --ca (every client verifies the server)")
    results: list[dict[str, Any]] = []
    if scenarios:
        results += _run_requests(args, scenarios, libs, skipped, sizes, loops)
    if bulk:
        if not scenarios:
            print(f"command: python {' '.join(sys.argv)}")
        if not args.no_nginx and "download" in bulk:
            ensure_nginx()
        results += run_bulk(args, bulk, chosen_libs, loops, bulk_rounds)
    out = Path(args.json) if args.json else HERE / "results" / f"run-{int(time.time())}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"raw results: {out}")
    return 0


def _run_requests(
    args: argparse.Namespace,
    scenarios: list[str],
    libs: list[str],
    skipped: list[str],
    sizes: list[str],
    loops: list[str],
) -> list[dict[str, Any]]:
    """The http and https scenarios: many small requests; print their tables, return results."""
    notes = []
    if "https" in scenarios:
        try:
            import trustme  # noqa: F401
        except ImportError:
            scenarios.remove("https")
            notes.append("https skipped: trustme is not installed (pip install -e '.[perf]')")
            if not scenarios:
                print(notes[0], file=sys.stderr)
                raise SystemExit(1) from None

    stop = None
    urls: dict[str, str] = {}
    ca: str | None = None
    tls_log: Path | None = None
    tls_description = ""
    if args.url:
        urls[scenarios[0]], server = args.url.rstrip("/"), "given by --url"
        ca = args.ca
    else:
        if not args.no_nginx:
            ensure_nginx()
        started = start_server(prefer_nginx=not args.no_nginx, tls="https" in scenarios)
        stop, server = started.stop, started.description
        urls["http"] = started.http_url
        if started.https_url:
            urls["https"] = started.https_url
            ca, tls_log, tls_description = started.ca_file, started.tls_log, started.tls_description
    print(f"command: python {' '.join(sys.argv)}")
    where = ", ".join(f"{s} at {urls[s]}" for s in scenarios)
    print(f"server: {server}; {where}; clients pinned to CPU 0, server to the last CPU")
    if "https" in scenarios:
        print(
            f"https: HTTP/1.1 over TLS ({tls_description or 'server given by --url'}); "
            f"every client trusts only the CA in {ca}"
        )
    print(
        f"{args.rounds} rounds x {len(scenarios)} scenarios x {len(sizes)} sizes x {len(loops)} "
        f"loops x {len(libs)} clients, {args.duration:g} s each after {args.warmup:g} s warm-up, "
        f"{args.concurrency} concurrent tasks"
    )
    if skipped:
        print(f"skipped (not installed): {', '.join(skipped)}")
    for note in notes:
        print(note)
    results: list[dict[str, Any]] = []
    clients = {"http": libs, "https": libs[:]}  # https: only the clients that pass the check
    trusted = {"http": None, "https": ca}
    checks_dir = None
    try:
        if "https" in scenarios and ca is not None:
            checks_dir = Path(tempfile.mkdtemp(prefix="hyperhttp-perf-check-"))
            other_ca = str(make_certificates(checks_dir)["other_ca"])
            for lib, loop in itertools.product(libs, loops):
                check = _verify_check(lib, loop, f"{urls['https']}/bytes/200", ca, other_ca)
                verdict = "verifies" if check["verifies"] else "DOES NOT VERIFY: left out"
                print(
                    f"https check {lib:>10} {loop:>7}: {verdict} (trusting the run's CA: "
                    f"{check['trusted_ca']}; trusting another CA: {check['other_ca'][:90]})"
                )
                if not check["verifies"] and lib in clients["https"]:
                    clients["https"].remove(lib)
        for round_number in range(args.rounds):
            for scenario, size, loop in itertools.product(scenarios, sizes, loops):
                order = clients[scenario][:]
                random.shuffle(order)
                for lib in order:
                    url = f"{urls[scenario]}/bytes/{SIZES[size]}"
                    logged = tls_log if scenario == "https" else None
                    offset = _tls_log_size(logged)
                    result = _measure(lib, loop, url, SIZES[size], args, trusted[scenario])
                    result.update(scenario=scenario, size=size, round=round_number)
                    if logged is not None and "failed" not in result:
                        result["tls_connections"] = _tls_connections(logged, offset)
                    results.append(result)
                    status = result.get("failed") or f"{result['rps']:,.0f} req/s"
                    print(
                        f"  round {round_number + 1} {scenario:>5} {size:>5} {loop:>7} "
                        f"{lib:>10}: {status}",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        if stop is not None:
            stop()
        if checks_dir is not None:
            shutil.rmtree(checks_dir, ignore_errors=True)
    print()
    for scenario, loop in itertools.product(scenarios, loops):
        print(_table(results, scenario, loop, sizes, clients[scenario]))
        print()
    if "https" in scenarios and tls_log is not None:
        print(_tls_table(results, clients["https"]))
        print()
    return results


if __name__ == "__main__":
    raise SystemExit(main())
