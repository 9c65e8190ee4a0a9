"""Side-by-side HTTP/1.1 benchmark: hyperhttp, aiohttp, httpx, pyreqwest and a raw ceiling client.

    python perf/run.py                 # 3 rounds x {http, https} x {200b, 10k, 1m} x {asyncio, uvloop}
                                       #   x 5 clients
    python perf/run.py --quick         # 1 round, http and https, 200b and 10k, uvloop only
    python perf/run.py --scenario https  # only HTTP/1.1 over TLS
    python perf/run.py --scenario upload,download  # bulk transfers over one connection (perf/bulk.py)
    python perf/run.py --scenario h2   # HTTP/2 over TLS, 200 B, 64 streams: hyperhttp, 2.1.0,
                                       #   httpx, pyreqwest and two h2-library ceilings
    python perf/run.py --baseline HEAD~3 --libs hyperhttp
                                       # this tree's hyperhttp against its code at HEAD~3, in
                                       #   the same rounds (perf/baseline.py)

One server for the whole run (nginx with one worker when installed, pinned to the last CPU), plain
HTTP on one port and, for the https scenario, the same paths over TLS on another, with a
certificate from a CA made by trustme for this run; every client verifies against that CA, and
before the https rounds each client is shown to reject a server its CA did not sign. Every
measurement is its own child process pinned to CPU 0, so each client has a core and its own RSS.
Rounds are interleaved (every client once per round, in a shuffled order) and the table shows the
median over rounds, so drift on a shared machine hits every client alike. Ratios compare clients
within this one run only.

The h2 scenario (only when named) is the same with HTTP/2 over TLS on a third port of the same
nginx: each client offers h2 by ALPN, must get HTTP/2 on every response (nginx's log shows the
protocol of each connection), and the tables add the connections each client opened and the
issue's targets (hyperhttp >= 2.5x hyperhttp 2.1.0 and >= 5x httpx).

``--baseline REV`` adds ``hyperhttp@<short sha>``, the hyperhttp package at that git revision, to
every scenario, and a last table of hyperhttp over it (the median of per-round ratios): an honest
before/after for a change, from one interleaved run.
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

from baseline import Baseline, baseline_table, parse_baseline, with_baseline  # noqa: E402
from bulk import BULK_SCENARIOS, ensure_legacy, hyperhttp_dir, run_bulk  # noqa: E402
from nginx import SIZES, ensure_nginx, make_certificates, start_server  # noqa: E402

LIBS = ["hyperhttp", "aiohttp", "httpx", "pyreqwest", "ceiling"]
H2_LIBS = ["hyperhttp", "hyperhttp-2.1.0", "httpx", "pyreqwest", "h2-ceiling", "h2-ceiling-default"]
SCENARIOS = ["http", "https"]  # the default set; h2 and BULK_SCENARIOS only when asked for
REQUEST_SCENARIOS = [*SCENARIOS, "h2"]
TLS_SCENARIOS = ["https", "h2"]  # verification checked, connections logged by nginx
H2_SIZES = ["200b"]  # the h2 scenario's default; --sizes sets every scenario's
BASES = {"http": ["aiohttp", "ceiling"], "https": ["aiohttp", "ceiling"],
         "h2": ["hyperhttp-2.1.0", "httpx", "h2-ceiling"]}  # fmt: skip  # the "x <base>" columns
H2_TARGETS = {"hyperhttp-2.1.0": 2.5, "httpx": 5.0}  # the issue: hyperhttp >= that many x each


def _available(lib: str) -> bool:
    module = {
        "ceiling": "httptools",
        "h2-ceiling": "h2",
        "h2-ceiling-default": "h2",
        "hyperhttp-2.1.0": "h2",  # itself installed by the harness (perf/bulk.py)
    }.get(lib, lib)
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _client(
    lib: str, loop: str, url: str, expected: int, http2: bool, baseline: Baseline | None
) -> list[str]:
    """The command line of one ``perf/clients.py`` child (HTTP/2 clients with ``http2``)."""
    command = [
        sys.executable, str(HERE / "clients.py"), "--lib", lib, "--loop", loop, "--url", url,
        "--expected", str(expected), *hyperhttp_dir(lib, baseline),
    ]  # fmt: skip
    if http2:
        command.append("--http2")
    return command


def _measure(
    lib: str,
    loop: str,
    url: str,
    size: int,
    args: argparse.Namespace,
    ca: str | None = None,
    http2: bool = False,
    baseline: Baseline | None = None,
) -> dict[str, Any]:
    command = _client(lib, loop, url, size, http2, baseline) + [
        "--concurrency", str(args.concurrency), "--duration", str(args.duration),
        "--warmup", str(args.warmup),
    ]  # fmt: skip
    if ca:
        command += ["--ca", ca]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=args.duration * 10 + 60
    )
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-3:]
        return {"lib": lib, "loop": loop, "failed": " | ".join(line.strip() for line in tail)}
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def _verify_check(
    lib: str,
    loop: str,
    url: str,
    ca: str,
    other_ca: str,
    http2: bool = False,
    baseline: Baseline | None = None,
) -> dict[str, Any]:
    """Does the client accept the server under ``ca`` and reject it under ``other_ca``?"""
    command = _client(lib, loop, url, 0, http2, baseline)
    command += ["--ca", ca, "--verify-check", other_ca]
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

    A line is ``<connection> <protocol> <cipher> <group> <reused: r or .>`` (h2.log: with the
    HTTP protocol, ``HTTP/2.0`` or ``HTTP/1.1``, before the TLS protocol); the connection number
    is dropped.
    """
    time.sleep(0.05)  # nginx writes the line when the first request completes: long done here
    with open(tls_log, "rb") as log:
        log.seek(offset)
        text = log.read().decode()
    return [line.split(" ", 1)[1] for line in text.splitlines() if " " in line]


def _tls_table(results: list[dict[str, Any]], libs: list[str], scenario: str = "https") -> str:
    """Per client, over all its measurements of ``scenario``: handshakes and what they negotiated.

    h2: failed measurements too (a client that got HTTP/1.1 shows it in "negotiated").
    """
    lines = [
        f"**{scenario}: TLS connections per measurement (from nginx's log)**\n",
        "| client | measurements | connections: min / median / max | timed requests per "
        "connection (median) | negotiated (connections) | resumed |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for lib in libs:
        runs = [r for r in results if r["scenario"] == scenario and r["lib"] == lib
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
            (r.get("requests", 0) / len(r["tls_connections"])) if r["tls_connections"] else 0
            for r in runs
        )
        lines.append(
            f"| {lib} | {len(runs)} | {min(counts)} / {statistics.median(counts):g} / "
            f"{max(counts)} | {per_connection:,.0f} | "
            + "; ".join(f"{params} ({n})" for params, n in negotiated.most_common())
            + f" | {resumed} |"
        )
    return "\n".join(lines)


def _medians(
    results: list[dict[str, Any]], scenario: str, loop: str, size: str, libs: list[str]
) -> dict[str, dict[str, float]]:
    """Per client with a measurement that did not fail: median req/s, p50, p99 over rounds."""
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
    return medians


def _table(
    results: list[dict[str, Any]],
    scenario: str,
    loop: str,
    sizes: list[str],
    libs: list[str],
    left_out: dict[str, str] | None = None,
) -> str:
    """Medians per size and client; ``left_out``: clients not measured, and why."""
    bases = BASES[scenario]
    lines = [
        f"**{scenario}, {loop}**\n",
        "| body | client | req/s | p50 ms | p99 ms | peak RSS MiB | "
        + "".join(f"x {base} | " for base in bases)
        + "errors |",
        "|---|---|---:|---:|---:|---:|" + "---:|" * len(bases) + "---:|",
    ]
    failures: dict[str, str] = {}
    for size in sizes:
        medians = _medians(results, scenario, loop, size, libs)
        for lib in libs:
            m = medians.get(lib)
            if m is None:
                failed = [r["failed"] for r in results if r["scenario"] == scenario and
                          r["loop"] == loop and r["size"] == size and r["lib"] == lib]  # fmt: skip
                label = "not HTTP/2" if any("not HTTP/2" in f for f in failed) else "failed"
                if lib in (left_out or {}):
                    label, failed = "left out", [(left_out or {})[lib]]
                failures.setdefault(lib, failed[0] if failed else "not measured")
                lines.append(f"| {size} | {lib} | {label} | | | | " + "| " * len(bases) + "|")
                continue
            ratios = "".join(
                f"{m['rps'] / medians[base]['rps']:.2f} | " if base in medians else "- | "
                for base in bases
            )
            lines.append(
                f"| {size} | {lib} | {m['rps']:,.0f} | {m['p50']:.2f} | {m['p99']:.2f} | "
                f"{m['rss']:.0f} | {ratios}{int(m['errors'])} |"
            )
    if failures:
        lines += ["", *(f"- {lib} failed: {why[-300:]}" for lib, why in failures.items())]
    return "\n".join(lines)


def _targets_table(
    results: list[dict[str, Any]], loops: list[str], sizes: list[str], libs: list[str]
) -> str:
    """The issue's h2 targets: hyperhttp's req/s over each other client's, in this one run."""
    lines = [
        "**h2: the issue's targets (hyperhttp >= "
        + " and >= ".join(f"{ratio:g}x {lib}" for lib, ratio in H2_TARGETS.items())
        + ", medians of this run)**\n",
        "| loop | body | " + "".join(f"hyperhttp / {lib} | " for lib in H2_TARGETS) + "met |",
        "|---|---|" + "---:|" * len(H2_TARGETS) + "---|",
    ]
    for loop, size in itertools.product(loops, sizes):
        medians = _medians(results, "h2", loop, size, libs)
        ratios = {
            lib: medians["hyperhttp"]["rps"] / medians[lib]["rps"]
            for lib in H2_TARGETS
            if "hyperhttp" in medians and lib in medians
        }
        cells = "".join(f"{ratios[lib]:.2f} | " if lib in ratios else "- | " for lib in H2_TARGETS)
        if len(ratios) < len(H2_TARGETS):
            met = "no: hyperhttp failed" if "hyperhttp" not in medians else "not measured"
        else:
            met = "yes" if all(ratios[lib] >= H2_TARGETS[lib] for lib in H2_TARGETS) else "no"
        lines.append(f"| {loop} | {size} | {cells}{met} |")
    return "\n".join(lines)


def _not_http2(lines: list[str]) -> str | None:
    """Why a measurement whose nginx log lines are ``lines`` did not (only) speak HTTP/2."""
    other = Counter(line.split(" ", 1)[0] for line in lines if not line.startswith("HTTP/2.0 "))
    if not other:
        return None
    seen = ", ".join(f"{protocol} on {n}" for protocol, n in other.items())
    return f"not HTTP/2: nginx saw {seen} of {len(lines)} connections"


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
        help="comma-separated: http (plain HTTP/1.1), https (HTTP/1.1 over TLS), h2 (HTTP/2 over "
        "TLS), upload (a multipart file upload), download (a streamed download); default "
        "http,https",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="default 3 (http, https, h2) and 5 (upload, download); --quick: 1",
    )
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--libs",
        help=f"default {','.join(LIBS)}; h2: {','.join(H2_LIBS)}; upload and download have "
        "their own sets (perf/bulk.py); --baseline's client is added to whichever are chosen",
    )
    parser.add_argument(
        "--sizes", help=f"default {','.join(SIZES)}; h2: {','.join(H2_SIZES)}; given: all of them"
    )
    parser.add_argument("--loops", default="asyncio,uvloop")
    parser.add_argument(
        "--url",
        help="base URL of a running server serving /bytes/<n>; its scheme is the one scenario "
        "run (an https URL needs --ca), unless --scenario h2 (an https URL speaking HTTP/2)",
    )
    parser.add_argument(
        "--ca", help="with an https --url: PEM of the CA that signed its certificate"
    )
    parser.add_argument("--no-nginx", action="store_true", help="use the built-in server")
    parser.add_argument("--upload-mib", type=int, default=100, help="upload: the file's size")
    parser.add_argument("--download-mib", type=int, default=1024, help="download: body size")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also measure hyperhttp at this git revision (HEAD, HEAD~3, a sha), as "
        "hyperhttp@<short sha>, in every scenario and the same rounds; see perf/baseline.py",
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.sizes, args.loops = 1, 2.0, "200b,10k", "uvloop"
    bulk_rounds = args.rounds if args.rounds is not None else 5
    args.rounds = args.rounds if args.rounds is not None else 3
    chosen_libs = [lib for lib in args.libs.split(",") if lib] if args.libs else None
    loops = args.loops.split(",")
    scenarios = [s for s in args.scenario.split(",") if s]
    unknown = [s for s in scenarios if s not in REQUEST_SCENARIOS + BULK_SCENARIOS]
    if unknown or not scenarios:
        parser.error(
            f"--scenario: {','.join(unknown) or 'none given'}; "
            f"choose from {', '.join(REQUEST_SCENARIOS + BULK_SCENARIOS)}"
        )
    bulk = [s for s in BULK_SCENARIOS if s in scenarios]
    scenarios = [s for s in scenarios if s in REQUEST_SCENARIOS]
    if args.url:
        if bulk:
            parser.error(
                "--url is for http, https and h2; upload and download start their own servers"
            )
        scheme = "https" if args.url.startswith("https://") else "http"
        if scenarios != ["h2"]:
            scenarios = [scheme]
        elif scheme != "https":
            parser.error("--scenario h2 needs an https --url")
        if scheme == "https" and not args.ca:
            parser.error("an https --url needs --ca (every client verifies the server)")
    baseline = parse_baseline(parser, args.baseline)
    libs: dict[str, list[str]] = {}
    sizes: dict[str, list[str]] = {}
    skipped: set[str] = set()
    for scenario in scenarios:
        every = H2_LIBS if scenario == "h2" else LIBS
        libs[scenario] = [lib for lib in (chosen_libs or every) if lib in every]
        skipped.update(lib for lib in libs[scenario] if not _available(lib))
        libs[scenario] = [lib for lib in libs[scenario] if lib not in skipped]
        libs[scenario] = with_baseline(libs[scenario], baseline)  # no module to check
        default_sizes = H2_SIZES if scenario == "h2" else list(SIZES)
        sizes[scenario] = args.sizes.split(",") if args.sizes else default_sizes
    results: list[dict[str, Any]] = []
    if baseline is not None:
        print(baseline.describe())
    if scenarios:
        results += _run_requests(args, scenarios, libs, sorted(skipped), sizes, loops, baseline)
    if bulk:
        if not scenarios:
            print(f"command: python {' '.join(sys.argv)}")
        if not args.no_nginx and "download" in bulk:
            ensure_nginx()
        results += run_bulk(args, bulk, chosen_libs, loops, bulk_rounds, baseline)
    if baseline is not None:
        print(baseline_table(results, baseline))
        print()
    out = Path(args.json) if args.json else HERE / "results" / f"run-{int(time.time())}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"raw results: {out}")
    return 0


def _run_requests(
    args: argparse.Namespace,
    scenarios: list[str],
    libs: dict[str, list[str]],
    skipped: list[str],
    sizes: dict[str, list[str]],
    loops: list[str],
    baseline: Baseline | None = None,
) -> list[dict[str, Any]]:
    """The http, https and h2 scenarios: many small requests; print their tables, return results.

    ``libs`` and ``sizes``: each scenario's clients and body sizes; ``baseline``: the one of
    them that imports hyperhttp at an earlier revision.
    """
    notes = []
    tls = [s for s in scenarios if s in TLS_SCENARIOS]
    if tls:
        try:
            import trustme  # noqa: F401
        except ImportError:
            scenarios = [s for s in scenarios if s not in tls]
            notes.append(
                f"{' and '.join(tls)} skipped: trustme is not installed (pip install -e '.[perf]')"
            )
            if not scenarios:
                print(notes[0], file=sys.stderr)
                raise SystemExit(1) from None
    if "h2" in scenarios:
        ensure_legacy(libs, ["h2"], notes)

    stop = None
    urls: dict[str, str] = {}
    ca: str | None = None
    logs: dict[str, Path | None] = {}  # nginx's log of TLS connections, per TLS scenario
    descriptions: dict[str, str] = {}
    if args.url:
        urls[scenarios[0]], server = args.url.rstrip("/"), "given by --url"
        ca = args.ca
    else:
        if not args.no_nginx:
            ensure_nginx()
        started = start_server(
            prefer_nginx=not args.no_nginx, tls="https" in scenarios, h2="h2" in scenarios
        )
        stop, server = started.stop, started.description
        urls["http"], ca = started.http_url, started.ca_file
        if started.https_url:
            urls["https"] = started.https_url
            logs["https"], descriptions["https"] = started.tls_log, started.tls_description
        if started.h2_url:
            urls["h2"] = started.h2_url
            logs["h2"], descriptions["h2"] = started.h2_log, started.h2_description
        elif "h2" in scenarios:
            scenarios = [s for s in scenarios if s != "h2"]
            notes.append("h2 skipped: it needs nginx (the demo server has no HTTP/2)")
            if not scenarios:
                stop()
                print(notes[-1], file=sys.stderr)
                raise SystemExit(1)
    print(f"command: python {' '.join(sys.argv)}")
    where = ", ".join(f"{s} at {urls[s]}" for s in scenarios)
    print(f"server: {server}; {where}; clients pinned to CPU 0, server to the last CPU")
    for scenario, protocol in (("https", "HTTP/1.1"), ("h2", "HTTP/2")):
        if scenario in scenarios:
            print(
                f"{scenario}: {protocol} over TLS "
                f"({descriptions.get(scenario) or 'server given by --url'}); "
                f"every client trusts only the CA in {ca}"
            )
    if "h2" in scenarios:
        print(
            "h2: every client offers h2 by ALPN and must get HTTP/2 on every response (checked "
            "by the client, and on every connection in nginx's log unless --url): else 'not "
            "HTTP/2', no figure"
        )
    shape = ", ".join(f"{s}: {len(sizes[s])} sizes x {len(libs[s])} clients" for s in scenarios)
    print(
        f"{args.rounds} rounds x {len(loops)} loops x ({shape}), {args.duration:g} s each after "
        f"{args.warmup:g} s warm-up, {args.concurrency} concurrent tasks"
    )
    if skipped:
        print(f"skipped (not installed): {', '.join(skipped)}")
    for note in notes:
        print(note)
    results: list[dict[str, Any]] = []
    clients = {s: libs[s][:] for s in scenarios}  # TLS: only the clients that pass the check
    left_out: dict[str, dict[str, str]] = {s: {} for s in scenarios}
    trusted = {s: ca if s in TLS_SCENARIOS else None for s in scenarios}
    checks_dir = None
    try:
        checked = [s for s in scenarios if s in TLS_SCENARIOS]
        if checked and ca is not None:
            checks_dir = Path(tempfile.mkdtemp(prefix="hyperhttp-perf-check-"))
            other_ca = str(make_certificates(checks_dir)["other_ca"])
            for scenario in checked:
                for lib, loop in itertools.product(libs[scenario], loops):
                    check = _verify_check(
                        lib, loop, f"{urls[scenario]}/bytes/200", ca, other_ca, scenario == "h2",
                        baseline,
                    )  # fmt: skip
                    verdict = "verifies" if check["verifies"] else "DOES NOT VERIFY: left out"
                    print(
                        f"{scenario} check {lib:>10} {loop:>7}: {verdict} (trusting the run's "
                        f"CA: {check['trusted_ca']}; trusting another CA: "
                        f"{check['other_ca'][:90]})"
                    )
                    if not check["verifies"] and lib in clients[scenario]:
                        clients[scenario].remove(lib)
                        left_out[scenario][lib] = (
                            f"left out by the verification check on {loop} (trusting the "
                            f"run's CA: {check['trusted_ca']})"
                        )
        for round_number in range(args.rounds):
            for scenario in scenarios:
                for size, loop in itertools.product(sizes[scenario], loops):
                    order = clients[scenario][:]
                    random.shuffle(order)
                    for lib in order:
                        url = f"{urls[scenario]}/bytes/{SIZES[size]}"
                        logged = logs.get(scenario)
                        offset = _tls_log_size(logged)
                        result = _measure(
                            lib, loop, url, SIZES[size], args, trusted[scenario],
                            scenario == "h2", baseline,
                        )  # fmt: skip
                        result.update(scenario=scenario, size=size, round=round_number)
                        if logged is not None and ("failed" not in result or scenario == "h2"):
                            result["tls_connections"] = _tls_connections(logged, offset)
                        if scenario == "h2" and "failed" not in result:
                            wrong = _not_http2(result.get("tls_connections", []))
                            if wrong:
                                result["failed"] = wrong
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
        print(_table(results, scenario, loop, sizes[scenario], libs[scenario], left_out[scenario]))
        print()
    for scenario in scenarios:
        if logs.get(scenario) is not None:
            print(_tls_table(results, clients[scenario], scenario))
            print()
    if "h2" in scenarios and "hyperhttp" in libs["h2"]:
        print(_targets_table(results, loops, sizes["h2"], libs["h2"]))
        print()
    return results


if __name__ == "__main__":
    raise SystemExit(main())
