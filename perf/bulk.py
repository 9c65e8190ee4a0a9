"""The bulk scenarios of ``perf/run.py``: one big upload, one big download, over one connection.

    python perf/run.py --scenario upload     # 100 MiB multipart file upload to perf/sink.py
    python perf/run.py --scenario download   # 1 GiB streamed GET from nginx

**upload**: a 100 MiB file of random bytes is written to a temp directory; each client posts it
as the one file part of a ``multipart/form-data`` body to ``perf/sink.py`` (its own process,
pinned to the last CPU), which reads the body as fast as it can, counts it and answers with what
it saw; every answer is checked (whole body read, one file part of the file's size). Clients:
``hyperhttp`` (this repository, ``files={"file": Path(...)}``), ``hyperhttp+data`` (the same
plus ``data={"user": "alice"}``), ``hyperhttp-2.1.0`` (the release on PyPI, same call),
``aiohttp`` (``FormData`` with the open file), ``httpx`` (``files={"file": open(...)}``) and
``ceiling`` (raw asyncio writing the multipart framing and the file by hand).

**download**: nginx (one worker, pinned to the last CPU) serves a 1 GiB file of random bytes
written at start-up, through one 4 MiB buffer rather than sendfile (steadier and faster here:
see ``perf/nginx.py``); without nginx, ``perf/sink.py`` serves the same number of bytes from
memory. Each client streams the body and counts it: ``hyperhttp`` and
``hyperhttp-2.1.0`` ``aiter_bytes()``, ``aiohttp`` ``content.iter_chunked(64 KiB)``, ``httpx``
``aiter_bytes()``, and two ceilings: a raw ``asyncio.Protocol`` counting what ``data_received``
gets, and an ``asyncio.BufferedProtocol`` reading into one reused 256 KiB buffer.

Each measurement is ``perf/transfer.py`` in its own child process pinned to CPU 0 (one untimed
warm-up transfer, then the timed ones, on one client and one connection); rounds are
interleaved, each client once per round in a shuffled order, and the tables show medians. With
``--baseline REV`` both scenarios add ``hyperhttp@<short sha>`` (``perf/baseline.py``).
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
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from baseline import Baseline, with_baseline
from clients import LEGACY, LEGACY_VERSION
from nginx import (
    _free_port,
    _server_cpu,
    nginx_binary,
    start_server,
    terminate,
    wait_accepting,
    write_random,
)

HERE = Path(__file__).resolve().parent
MiB = 1024 * 1024
BULK_SCENARIOS = ["upload", "download"]
UPLOAD_LIBS = ["hyperhttp", "hyperhttp+data", "hyperhttp-2.1.0", "aiohttp", "httpx", "ceiling"]
UPLOAD_OTHERS = ["hyperhttp-2.1.0", "aiohttp", "httpx"]  # "best other" is the fastest of these
DOWNLOAD_LIBS = ["hyperhttp", "hyperhttp-2.1.0", "aiohttp", "httpx", "ceiling", "ceiling-buffered"]
CEILINGS = ["ceiling", "ceiling-buffered"]  # the download's ceiling is the faster of the two
UPLOAD_REPEAT = 10  # timed uploads per measurement (after one warm-up upload)
DOWNLOAD_REPEAT = 5  # timed downloads per measurement (after a 1 MiB warm-up GET)
WARMUP_BYTES = MiB
LEGACY_DIR = HERE / ".cache" / f"hyperhttp-{LEGACY_VERSION}"  # gitignored (perf/.gitignore)


def install_legacy() -> tuple[Path | None, str]:
    """hyperhttp 2.1.0 from PyPI in a directory of its own; (that directory, or None, and why).

    ``pip install --no-deps --target`` keeps it away from the virtualenv, where the repository's
    own hyperhttp is installed under the same name; its requirements (without extras) that the
    virtualenv lacks go into the same directory.
    """
    marker = LEGACY_DIR / f"hyperhttp-{LEGACY_VERSION}.dist-info" / "METADATA"
    if marker.exists():
        return LEGACY_DIR, f"cached in {LEGACY_DIR}"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "install"]
    LEGACY_DIR.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="staging-", dir=LEGACY_DIR.parent))
    try:
        result = subprocess.run(
            [*pip, "--no-deps", "--target", str(staging), f"hyperhttp=={LEGACY_VERSION}"],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if result.returncode != 0:
            return None, "pip failed: " + " | ".join(result.stderr.strip().splitlines()[-2:])
        missing = []
        installed = staging / f"hyperhttp-{LEGACY_VERSION}.dist-info" / "METADATA"
        for line in installed.read_text().splitlines():
            if not line.startswith("Requires-Dist:") or "extra ==" in line:
                continue
            requirement = line.split(":", 1)[1].split(";")[0].strip()
            name = requirement.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip()
            try:
                metadata.version(name)
            except metadata.PackageNotFoundError:
                missing.append(requirement)
        if missing:
            result = subprocess.run(
                [*pip, "--target", str(staging), *missing],
                capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            if result.returncode != 0:
                return None, "pip failed on " + ", ".join(missing)
        shutil.rmtree(LEGACY_DIR, ignore_errors=True)
        staging.rename(LEGACY_DIR)
        extra = f" (and {', '.join(missing)})" if missing else ""
        return LEGACY_DIR, f"installed from PyPI into {LEGACY_DIR}{extra}"
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def ensure_legacy(chosen: dict[str, list[str]], scenarios: list[str], notes: list[str]) -> None:
    """Install 2.1.0 when a client of ``scenarios`` needs it; when that fails, drop those clients.

    ``chosen`` maps a scenario to its clients and is changed in place; ``notes`` gets a line.
    """
    if any(lib.startswith("hyperhttp-2.1.0") for s in scenarios for lib in chosen[s]):
        where, why = install_legacy()
        notes.append(f"hyperhttp {LEGACY_VERSION}: {why}")
        if where is None:
            for scenario in scenarios:
                chosen[scenario] = [
                    lib for lib in chosen[scenario] if not lib.startswith("hyperhttp-2.1.0")
                ]


def hyperhttp_dir(lib: str, baseline: Baseline | None) -> list[str]:
    """The child's ``--hyperhttp-dir`` when ``lib`` must not import the repository's hyperhttp."""
    if lib.startswith(LEGACY):
        return ["--hyperhttp-dir", str(LEGACY_DIR)]
    if baseline is not None and lib == baseline.name:
        return ["--hyperhttp-dir", str(baseline.directory)]
    return []


def start_sink() -> tuple[str, Callable[[], None]]:
    """``perf/sink.py`` on a free port of 127.0.0.1, pinned to the last CPU; (base URL, stop)."""
    port = _free_port()
    process = subprocess.Popen(
        [*_server_cpu(), sys.executable, str(HERE / "sink.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
    )
    wait_accepting(port, process)

    return f"http://127.0.0.1:{port}", lambda: terminate(process)


def _available(lib: str) -> bool:
    module = {"aiohttp": "aiohttp", "httpx": "httpx"}.get(lib)
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _measure(
    scenario: str, lib: str, loop: str, options: list[str], baseline: Baseline | None
) -> dict[str, Any]:
    command = [
        sys.executable, str(HERE / "transfer.py"), "--mode", scenario, "--lib", lib,
        "--loop", loop, *options, *hyperhttp_dir(lib, baseline),
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return {"lib": lib, "loop": loop, "failed": "timed out after 600 s"}
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-3:]
        return {"lib": lib, "loop": loop, "failed": " / ".join(tail)}
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def _medians(results: list[dict[str, Any]], scenario: str, loop: str, lib: str) -> dict[str, Any]:
    runs = [
        r for r in results if r["scenario"] == scenario and r["loop"] == loop and r["lib"] == lib
    ]
    good = [r for r in runs if "mib_s" in r]
    if not good:
        reason = next((r.get("skipped") or r.get("failed") for r in runs), "not run")
        return {"missing": ("skipped: " if runs and "skipped" in runs[0] else "failed: ") + reason}
    speeds = [r["mib_s"] for r in good]
    return {
        "mib_s": statistics.median(speeds),
        "low": min(speeds),
        "high": max(speeds),
        "rss": max(r["rss_mib"] for r in good),
        "rss_before": statistics.median(r["rss_before_mib"] for r in good),
        "cpu": statistics.median(r["cpu_s_per_gib"] for r in good),
        "rounds": f"{len(good)}/{len(runs)}",
        "framing": ",".join(sorted({r.get("framing", "") for r in good} - {""})),
        "connections": max(r.get("connections", 1) for r in good),
    }


def _upload_table(results: list[dict[str, Any]], loop: str, libs: list[str], mib: int) -> str:
    rows = {lib: _medians(results, "upload", loop, lib) for lib in libs}
    others = {lib: rows[lib]["mib_s"] for lib in UPLOAD_OTHERS if "mib_s" in rows.get(lib, {})}
    best = max(others, key=lambda lib: others[lib]) if others else None
    lines = [
        f"**upload, {loop}: one {mib} MiB file part, multipart/form-data, one connection**\n",
        "| client | MiB/s | lowest / highest | x best other | CPU s/GiB | peak RSS MiB "
        "| RSS before MiB | framing | connections | rounds |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for lib in libs:
        m = rows[lib]
        if "missing" in m:
            lines.append(f"| {lib} | {m['missing'][:150]} | | | | | | | | |")
            continue
        ratio = f"{m['mib_s'] / others[best]:.2f}" if best else "-"
        lines.append(
            f"| {lib} | {m['mib_s']:,.0f} | {m['low']:,.0f} / {m['high']:,.0f} | {ratio} "
            f"| {m['cpu']:.2f} | {m['rss']:.0f} | {m['rss_before']:.0f} | {m['framing']} "
            f"| {m['connections']} | {m['rounds']} |"
        )
    if best:
        for lib in ("hyperhttp", "hyperhttp+data"):
            if "mib_s" in rows.get(lib, {}):
                lines.append(
                    f"\n{lib} x best other ({best}, {others[best]:,.0f} MiB/s): "
                    f"{rows[lib]['mib_s'] / others[best]:.2f} (target: >= 1.5)"
                )
    return "\n".join(lines)


def _download_table(results: list[dict[str, Any]], loop: str, libs: list[str], mib: int) -> str:
    rows = {lib: _medians(results, "download", loop, lib) for lib in libs}
    ceilings = {lib: rows[lib]["mib_s"] for lib in CEILINGS if "mib_s" in rows.get(lib, {})}
    ceiling = max(ceilings, key=lambda lib: ceilings[lib]) if ceilings else None
    lines = [
        f"**download, {loop}: {mib} MiB streamed over one connection**\n",
        "| client | MiB/s | lowest / highest | x ceiling | CPU s/GiB | peak RSS MiB "
        "| RSS before MiB | rounds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lib in libs:
        m = rows[lib]
        if "missing" in m:
            lines.append(f"| {lib} | {m['missing'][:150]} | | | | | | |")
            continue
        ratio = f"{m['mib_s'] / ceilings[ceiling]:.2f}" if ceiling else "-"
        lines.append(
            f"| {lib} | {m['mib_s']:,.0f} | {m['low']:,.0f} / {m['high']:,.0f} | {ratio} "
            f"| {m['cpu']:.2f} | {m['rss']:.0f} | {m['rss_before']:.0f} | {m['rounds']} |"
        )
    if ceiling and "mib_s" in rows.get("hyperhttp", {}):
        m = rows["hyperhttp"]
        lines.append(
            f"\nhyperhttp: {m['mib_s'] / ceilings[ceiling]:.2f} of the ceiling ({ceiling}, "
            f"{ceilings[ceiling]:,.0f} MiB/s), peak RSS {m['rss']:.0f} MiB "
            "(targets: >= 0.90, peak RSS under 64 MB = 61 MiB)"
        )
    return "\n".join(lines)


def run_bulk(
    args: argparse.Namespace,
    scenarios: list[str],
    libs: list[str] | None,
    loops: list[str],
    rounds: int,
    baseline: Baseline | None = None,
) -> list[dict[str, Any]]:
    """Run the upload and/or download rounds, print their tables, return the raw results.

    ``baseline``: hyperhttp at an earlier revision, measured beside ``hyperhttp`` in both.
    """
    chosen = {
        "upload": [lib for lib in UPLOAD_LIBS if libs is None or lib in libs],
        "download": [lib for lib in DOWNLOAD_LIBS if libs is None or lib in libs],
    }
    if libs is not None:  # clients named with --libs that are not in the default sets
        chosen["upload"] += [lib for lib in libs if lib == "hyperhttp-2.1.0+data"]
    notes = []
    for scenario in scenarios:
        for lib in [lib for lib in chosen[scenario] if not _available(lib)]:
            chosen[scenario].remove(lib)
            notes.append(f"{scenario}: {lib} skipped (not installed)")
    ensure_legacy(chosen, scenarios, notes)
    chosen = {scenario: with_baseline(names, baseline) for scenario, names in chosen.items()}
    root = Path(tempfile.mkdtemp(prefix="hyperhttp-perf-bulk-"))
    stops: list[Callable[[], None]] = []
    options: dict[str, list[str]] = {}
    results: list[dict[str, Any]] = []
    upload_mib, download_mib = args.upload_mib, args.download_mib
    try:
        header = []
        if "upload" in scenarios:
            upload_file = root / "upload.bin"
            write_random(upload_file, upload_mib * MiB)
            sink_url, stop = start_sink()
            stops.append(stop)
            options["upload"] = [
                "--url", f"{sink_url}/upload", "--file", str(upload_file),
                "--repeat", str(UPLOAD_REPEAT),
            ]  # fmt: skip
            header.append(
                f"upload: {upload_mib} MiB file (random bytes) in {root}, perf/sink.py at "
                f"{sink_url}; one warm-up + {UPLOAD_REPEAT} timed uploads per measurement"
            )
        if "download" in scenarios:
            size = download_mib * MiB
            if nginx_binary() is not None and not args.no_nginx:
                server = start_server(prefer_nginx=True, extra_sizes=(size,))
                base, description = server.http_url, server.description + ", 4 MiB buffer"
                stops.append(server.stop)
            else:
                base, stop = start_sink()
                description = "perf/sink.py from memory (nginx not installed)"
                stops.append(stop)
            options["download"] = [
                "--url", f"{base}/bytes/{size}", "--expected", str(size),
                "--warmup-url", f"{base}/bytes/{WARMUP_BYTES}", "--repeat", str(DOWNLOAD_REPEAT),
            ]  # fmt: skip
            header.append(
                f"download: {download_mib} MiB (random bytes) from {description} at {base}; "
                f"a {WARMUP_BYTES // MiB} MiB warm-up GET + {DOWNLOAD_REPEAT} timed downloads "
                "per measurement"
            )
        for line in header + notes:
            print(line)
        print(
            f"{rounds} rounds x {' + '.join(f'{len(chosen[s])} {s}' for s in scenarios)} "
            f"clients x {len(loops)} loops; clients pinned to CPU 0, servers to the last CPU",
            flush=True,
        )
        for round_number in range(rounds):
            for scenario, loop in itertools.product(scenarios, loops):
                order = chosen[scenario][:]
                random.shuffle(order)
                for lib in order:
                    result = _measure(scenario, lib, loop, options[scenario], baseline)
                    result.update(scenario=scenario, loop=loop, round=round_number)
                    results.append(result)
                    if "mib_s" in result:
                        status = f"{result['mib_s']:,.0f} MiB/s, peak RSS {result['rss_mib']:.0f}"
                    else:
                        status = result.get("skipped") or result.get("failed", "?")
                    print(
                        f"  round {round_number + 1} {scenario:>8} {loop:>7} {lib:>16}: {status}",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        for stop in stops:
            stop()
        shutil.rmtree(root, ignore_errors=True)
    print()
    for scenario, loop in itertools.product(scenarios, loops):
        if scenario == "upload":
            print(_upload_table(results, loop, chosen["upload"], upload_mib))
        else:
            print(_download_table(results, loop, chosen["download"], download_mib))
        print()
    return results
