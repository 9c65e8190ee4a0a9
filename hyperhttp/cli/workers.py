"""Running a plan on many event loops: worker processes on this machine, or Ray actors spread over
a cluster. The plan is split (``split``): connections, request count and rate shared out, each
worker's schedule shifted so that their requests interleave; each worker returns its Result with
its histograms encoded, and the parent merges them exactly (``Result.merge``).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from multiprocessing.connection import Connection
from typing import Any, Callable

from .engine import Counters, Plan, Result, run_plan

__all__ = ["run_here", "run_processes", "run_ray", "split"]

Progress = Callable[[int, int], None]  # (requests done, failed) so far, across workers


def split(plan: Plan, workers: int) -> list[Plan]:
    """``plan`` shared out among ``workers`` (at most one per connection)."""
    workers = max(1, min(workers, plan.connections))
    shares = []
    for index in range(workers):
        share = Plan.from_wire(plan.to_wire())
        share.connections = _part(plan.connections, workers, index)
        if plan.requests is not None:
            share.requests = _part(plan.requests, workers, index)
        if plan.rate is not None:
            share.rate = plan.rate / workers
            share.offset = plan.offset + index / plan.rate  # worker k takes every k-th slot
        shares.append(share)
    return [share for share in shares if share.requests != 0]


def _part(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        return asyncio.new_event_loop()


class _SharedCounters:
    """A worker's counts in shared memory, which the parent reads for its progress line."""

    def __init__(self, done: Any, failed: Any) -> None:
        self._done = done
        self._failed = failed

    def add(self, failed: bool) -> None:
        self._done.value += 1
        if failed:
            self._failed.value += 1


def run_here(
    plan: Plan, counters: Any = None, progress: Progress | None = None, stopped: Any = None
) -> Result:
    """Run ``plan`` on a new loop in this process; SIGINT (Ctrl-C) ends it early, with the
    results so far, or, given ``stopped`` (an object with ``is_set()``, a worker process's
    multiprocessing Event), that being set. ``progress`` is called four times a second."""
    loop = _new_loop()
    watcher = None
    try:
        stop = asyncio.Event()
        if stopped is not None:
            watcher = loop.create_task(_watch(stopped, stop))
        else:
            try:
                loop.add_signal_handler(signal.SIGINT, stop.set)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                pass
        if progress is None:
            return loop.run_until_complete(run_plan(plan, counters, stop))
        counted = counters if counters is not None else Counters()
        return loop.run_until_complete(_reporting(plan, counted, stop, progress))
    finally:
        if watcher is not None:
            watcher.cancel()
            loop.run_until_complete(asyncio.gather(watcher, return_exceptions=True))
        loop.close()


async def _watch(stopped: Any, stop: asyncio.Event) -> None:
    """Set ``stop`` once ``stopped`` (set by another process) is: looked at 20 times a second."""
    while not stop.is_set():
        if stopped.is_set():
            stop.set()
            return
        await asyncio.sleep(0.05)


async def _reporting(
    plan: Plan, counters: Counters, stop: asyncio.Event, progress: Progress
) -> Result:
    run = asyncio.ensure_future(run_plan(plan, counters, stop))
    while not run.done():
        await asyncio.wait([run], timeout=0.25)
        progress(counters.done, counters.failed)
    return run.result()


def _process_main(
    wire: dict[str, Any], go: Any, stopped: Any, done: Any, failed: Any, pipe: Connection
) -> None:
    # Ctrl-C reaches every process of the terminal's group; the parent alone takes it and sets
    # ``stopped``, which a worker sees whenever it comes: before its loop runs, or after.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    go.wait()
    try:
        result = run_here(Plan.from_wire(wire), _SharedCounters(done, failed), stopped=stopped)
        pipe.send(result.to_wire())
    finally:
        pipe.close()


def run_processes(plans: list[Plan], progress: Progress | None = None) -> list[Result]:
    """Each plan in a process of its own (spawned, one event loop each); they all start
    together. Ctrl-C in the parent stops every worker, which still reports what it measured."""
    context = multiprocessing.get_context("spawn")
    go, stopped = context.Event(), context.Event()
    workers = []
    for plan in plans:
        done, failed = context.Value("q", 0, lock=False), context.Value("q", 0, lock=False)
        receive, send = context.Pipe(duplex=False)
        process = context.Process(
            target=_process_main,
            args=(plan.to_wire(), go, stopped, done, failed, send),
            daemon=True,
        )
        process.start()
        send.close()
        workers.append((process, receive, done, failed))
    go.set()
    results: list[Result] = []
    pending = list(workers)
    try:
        while pending:
            for worker in list(pending):
                if worker[1].poll(0.25 / len(pending)):
                    results.append(Result.from_wire(worker[1].recv()))
                    pending.remove(worker)
                elif not worker[0].is_alive() and not worker[1].poll():
                    pending.remove(worker)
                    raise RuntimeError(f"a load worker died (exit code {worker[0].exitcode})")
            if progress is not None:
                progress(sum(w[2].value for w in workers), sum(w[3].value for w in workers))
    except KeyboardInterrupt:
        stopped.set()
        for worker in pending:
            try:
                if worker[1].poll(30):
                    results.append(Result.from_wire(worker[1].recv()))
            except EOFError:  # it ended without a report (interrupted as it started)
                continue
        for result in results:
            result.interrupted = True
    finally:
        for process, *_ in workers:
            process.join(5)
            if process.is_alive():  # pragma: no cover
                process.kill()
    return results


def run_ray(
    plans: list[Plan],
    address: str,
    progress: Progress | None = None,
    *,
    placement_timeout: float = 120.0,
) -> list[Result]:
    """Each plan on a Ray actor, spread over the cluster's nodes (``address``: a Ray address or
    "auto"); the same worker code as a process runs in each actor, and the results merge the same.

    Each actor asks for one CPU (one event loop per core, as with processes) and every one must be
    running before any starts, or the first would finish before the last began. A cluster that
    cannot place them all within ``placement_timeout`` seconds (too few CPUs for ``--workers``)
    ends the command with a message: Ray would otherwise keep the rest pending forever. The actor
    class travels by reference, so every node needs hyperhttp installed. Worker output is not
    forwarded (``log_to_driver=False``): Ray prints it on this process's stdout, where
    ``--json -`` writes its document. The connection is closed at the end (``ray.shutdown()``),
    which ends this job's actors but never the cluster.
    """
    import importlib

    try:  # as Any: Ray is optional, and its stubs type a handle's methods as plain functions
        ray: Any = importlib.import_module("ray")
    except ImportError:
        raise SystemExit("--ray needs Ray: pip install 'hyperhttp[ray]'") from None
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    try:
        actor_class = ray.remote(_LoadActor).options(
            num_cpus=1, max_concurrency=2, scheduling_strategy="SPREAD"
        )
        actors = [actor_class.remote() for _ in plans]
        ready = [each.ready.remote() for each in actors]
        placed, _ = ray.wait(ready, num_returns=len(ready), timeout=placement_timeout)
        if len(placed) < len(ready):
            cpus = ray.cluster_resources().get("CPU", 0.0)
            raise SystemExit(
                f"hyperhttp load: only {len(placed)} of {len(ready)} Ray actors started within "
                f"{placement_timeout:g} s; each needs a CPU and the cluster has {cpus:g}: "
                "ask for fewer --workers"
            )
        ray.get(ready)  # an actor that could not start (hyperhttp missing on its node) says why
        running = [
            each.run.remote(plan.to_wire()) for each, plan in zip(actors, plans, strict=True)
        ]
        try:
            pending = running
            while pending:
                _, pending = ray.wait(pending, num_returns=len(pending), timeout=0.25)
                if progress is not None:
                    counts = ray.get([each.progress.remote() for each in actors])
                    progress(sum(done for done, _ in counts), sum(failed for _, failed in counts))
        except KeyboardInterrupt:
            ray.get([each.stop.remote() for each in actors])
        return [Result.from_wire(wire) for wire in ray.get(running)]
    except ray.exceptions.RayActorError as exc:
        raise RuntimeError(f"a load worker (Ray actor) died: {exc}") from exc
    finally:
        ray.shutdown()


class _LoadActor:
    """A Ray actor running one worker's plan. It has two threads (``max_concurrency=2``): ``run``
    holds one for the whole run, so that ``progress`` and ``stop`` can still be answered.

    The loop and the stop event are made with the actor, so that ``stop`` always has a loop to
    hand the event to (``call_soon_threadsafe``, as the event belongs to the running loop):
    before the run, which then ends at once; during it; after it, when there is nothing to stop.
    """

    def __init__(self) -> None:
        self._counters = Counters()
        self._loop = _new_loop()
        self._stopping = asyncio.Event()

    def ready(self) -> bool:
        return True

    def run(self, wire: dict[str, Any]) -> dict[str, Any]:
        """Run the plan (a ``Plan.to_wire()`` dict) and return its ``Result.to_wire()``."""
        plan = Plan.from_wire(wire)
        try:
            result = self._loop.run_until_complete(run_plan(plan, self._counters, self._stopping))
        finally:
            self._loop.close()
        return result.to_wire()

    def progress(self) -> tuple[int, int]:
        """Requests done and failed so far (read from the other thread: plain ints, no lock)."""
        return self._counters.done, self._counters.failed

    def stop(self) -> None:
        """End the run early; requests in flight are finished and counted."""
        try:
            self._loop.call_soon_threadsafe(self._stopping.set)
        except RuntimeError:  # the loop is closed: the run is over
            pass
