"""``perf/run.py --baseline REV``: hyperhttp at an earlier git revision, measured beside this tree's.

The machine is shared and noisy, so a before/after figure is only honest when both sides run in
the same interleaved rounds. ``export_baseline`` writes the ``hyperhttp/`` package at REV (pure
Python: ``git archive``, no build) into ``perf/.cache/baseline-<full sha>/`` (gitignored; reused
when there), and the run adds a client ``hyperhttp@<short sha>`` beside ``hyperhttp`` to every
scenario: the same client code (``clients.runs_as``), importing hyperhttp from that directory
only (``clients.use_hyperhttp_from``, passed as ``--hyperhttp-dir``). ``baseline_table`` then
gives hyperhttp over the baseline as the median of each round's ratio.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import tarfile
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clients import BASELINE

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent
CACHE = HERE / ".cache"  # gitignored (perf/.gitignore)
PACKAGE = "hyperhttp"
FIGURES = {"rps": "req/s", "mib_s": "MiB/s"}  # request scenarios, bulk scenarios


@dataclass(frozen=True)
class Baseline:
    """hyperhttp at ``revision`` (as given), the commit ``sha``, exported into ``directory``."""

    revision: str
    sha: str
    short: str
    directory: Path
    how: str  # "exported" or "cached"

    @property
    def name(self) -> str:
        return f"{BASELINE}{self.short}"

    def describe(self) -> str:
        return (
            f"baseline: {self.name} = {self.revision} ({self.sha}), hyperhttp/ {self.how} in "
            f"{self.directory}; measured beside hyperhttp (this working tree) in every round"
        )


def _git(*args: str) -> bytes:
    result = subprocess.run(["git", "-C", str(REPOSITORY), *args], capture_output=True, timeout=120)
    if result.returncode != 0:
        why = result.stderr.decode(errors="replace").strip() or f"git {args[0]} failed"
        raise ValueError(why)
    return result.stdout


def export_baseline(revision: str) -> Baseline:
    """The package at ``revision``, exported once per commit (a commit never changes).

    Raises ``ValueError`` (git's message) for a revision that is not a commit, or has no
    ``hyperhttp/`` package.
    """
    sha = _git("rev-parse", "--verify", f"{revision}^{{commit}}").decode().strip()
    short = _git("rev-parse", "--short", sha).decode().strip()
    directory = CACHE / f"baseline-{sha}"
    exported = directory / PACKAGE / "__init__.py"
    if exported.is_file():
        return Baseline(revision, sha, short, directory, "cached")
    try:
        _git("cat-file", "-e", f"{sha}:{PACKAGE}/__init__.py")
    except ValueError:
        raise ValueError(f"{revision} ({short}) has no {PACKAGE}/ package") from None
    archive = _git("archive", "--format=tar", sha, f"{PACKAGE}/")
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="staging-", dir=CACHE))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(staging, filter="data")
        try:
            staging.rename(directory)  # whole or not at all
        except OSError:  # another run exported it meanwhile
            if not exported.is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Baseline(revision, sha, short, directory, "exported")


def with_baseline(libs: list[str], baseline: Baseline | None) -> list[str]:
    """``libs`` with the baseline right after ``hyperhttp`` (first when hyperhttp is not there)."""
    if baseline is None or baseline.name in libs:
        return libs
    at = libs.index("hyperhttp") + 1 if "hyperhttp" in libs else 0
    return [*libs[:at], baseline.name, *libs[at:]]


def paired_rounds(
    runs: list[dict[str, Any]], lib: str, base: str, key: str
) -> list[tuple[float, float]]:
    """(``lib``'s ``key``, ``base``'s) for each round in which both were measured and passed.

    ``runs``: the results of one table cell (a scenario, a loop, a body size).
    """
    rounds: dict[int, dict[str, float]] = defaultdict(dict)
    for r in runs:
        if key in r and "failed" not in r:
            rounds[r["round"]][r["lib"]] = r[key]
    return [
        (figures[lib], figures[base])
        for _, figures in sorted(rounds.items())
        if lib in figures and base in figures and figures[base]
    ]


def summary(pairs: list[tuple[float, float]]) -> tuple[float, float, float, float, float, int]:
    """Of per-round (current, before) pairs: each side's median, the median ratio, the lowest
    and highest ratio, and the number of rounds."""
    ratios = [current / before for current, before in pairs]
    current, before = (statistics.median(side) for side in zip(*pairs, strict=True))
    return current, before, statistics.median(ratios), min(ratios), max(ratios), len(ratios)


def parse_baseline(parser: argparse.ArgumentParser, revision: str | None) -> Baseline | None:
    """``--baseline REV`` exported, or a usage error naming what is wrong with it."""
    if not revision:
        return None
    try:
        return export_baseline(revision)
    except ValueError as exc:
        parser.error(f"--baseline {revision}: {exc}")


def baseline_table(results: list[dict[str, Any]], baseline: Baseline) -> str:
    """hyperhttp over the baseline per scenario, loop and size: the median of per-round ratios.

    A round's two figures come from measurements close in time, in the same shuffled round, so
    their ratio cancels most of the machine's drift; the median over rounds drops an odd one.
    The two figures shown are medians over those same rounds.
    """
    base = baseline.name
    lines = [
        f"**hyperhttp (this working tree) x {base} ({baseline.revision}): median of the "
        "per-round ratios**\n",
        f"| scenario | loop | body | hyperhttp | {base} | x {base} | lowest / highest | rounds |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    cells: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        cells[(r["scenario"], r["loop"], r.get("size", "-"))].append(r)
    for (scenario, loop, size), runs in cells.items():
        if not any(r["lib"] == base for r in runs):
            continue
        key = "mib_s" if any("mib_s" in r for r in runs) else "rps"
        pairs = paired_rounds(runs, "hyperhttp", base, key)
        if not pairs:
            lines.append(f"| {scenario} | {loop} | {size} | | | - | | 0 |")
            continue
        current, before, ratio, lowest, highest, rounds = summary(pairs)
        lines.append(
            f"| {scenario} | {loop} | {size} | {current:,.0f} {FIGURES[key]} | "
            f"{before:,.0f} {FIGURES[key]} | {ratio:.2f} | {lowest:.2f} / {highest:.2f} | "
            f"{rounds} |"
        )
    return "\n".join(lines)
