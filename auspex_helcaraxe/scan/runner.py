"""Running a survey: discovery, resume, a process pool or a Dask cluster, one writer, a report."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sys
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..errors import InputError
from ..results import AnalysisOptions
from .discovery import discover
from .store import ScanConfig, Store
from .worker import Job, analyse_file, failed_record, get_host, init_pool_worker, init_worker, one_line, ping

class WorkerStartError(RuntimeError):
    """The worker processes die before they can analyse anything (not the fault of a data set)."""


CRASH_REASON = "the worker process died while analysing this file (crash in native code, or killed)"


@dataclass
class ScanReport:
    """What a scan did: counts over the data sets found, and this run's failures (file, reason)."""

    db: Path
    config: str
    found: int = 0
    done: int = 0  # analysed and stored by this run
    failed: int = 0  # stored as failed by this run
    skipped: int = 0  # already in the store (or the same content under another name)
    skipped_in_run: int = 0  # of those: analysed by this run, then found to duplicate stored content
    failures: list[tuple[str, str]] = field(default_factory=list)
    wall_s: float = 0.0
    first_result_s: float | None = None  # start-up: from the call until the first data set was stored

    @property
    def rate(self) -> float:
        """Data sets analysed (done + failed) per second of wall time."""
        n = self.done + self.failed
        return n / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def steady_rate(self) -> float:
        """Data sets per second after the first one was stored (start-up excluded)."""
        n = self.done + self.failed + self.skipped_in_run - 1
        span = self.wall_s - (self.first_result_s or 0.0)
        return n / span if n > 0 and span > 0 else self.rate

    def failure_table(self) -> str:
        """The failures as a two-column text table (file, one-line reason)."""
        if not self.failures:
            return ""
        width = min(max(len(f) for f, _ in self.failures), 80)
        lines = [f"{'file':<{width}}  reason", f"{'-' * width}  {'-' * 6}"]
        lines += [f"{f:<{width}}  {r}" for f, r in self.failures]
        return "\n".join(lines)

    def summary_line(self) -> str:
        rate = f", {self.rate:.2f} data sets/s" if self.done + self.failed else ""
        return (
            f"{self.found} data sets: {self.done} analysed, {self.failed} failed, {self.skipped} already done "
            f"({self.wall_s:.1f} s{rate}) -> {self.db}"
        )


def scan_config(detectors: str | Sequence[str], options: AnalysisOptions, plugins: tuple[str, ...] = ()) -> ScanConfig:
    """Resolve the detector choice and the networks (in this process) into a :class:`ScanConfig`."""
    host = get_host(plugins)
    names = tuple(d.name for d in host.select(detectors))
    networks: dict[str, dict[str, Any]] = {}
    combiner = None
    if "helcaraxe" in names:
        from ..joint import load_combiner
        from ..network import load_networks

        for kind, net in load_networks(options.networks).items():
            networks[kind] = {"name": net.card.name, "version": net.card.version, "sha256": net.card.sha256,
                              "threshold": net.card.threshold, "control_baseline": net.card.control_baseline,
                              "control_aggregate": net.card.control_aggregate, "pair_threshold": net.card.pair_threshold,
                              "pair_steps": net.card.pair_steps_list}
        card = load_combiner(options.extra.get("joint"))  # the card Analysis uses for the verdict
        if card is not None:
            combiner = hashlib.sha256(Path(card.path).read_bytes()).hexdigest()
    return ScanConfig(
        detectors=names,
        networks=networks,
        threshold=options.threshold if "helcaraxe" in names else None,
        icefinder_cutoff=options.icefinder_cutoff if "icefinder" in names else None,
        combiner=combiner,
    )


def _todo(files: list[str], store: Store, config: str) -> tuple[list[str], int]:
    """Files still to analyse, and how many are already done (same path, size and mtime as a file
    whose content sha256 is finished under ``config``)."""
    done = store.done(config)
    known = store.known_files()
    todo, skipped = [], 0
    for path in files:
        k = known.get(path)
        if k is not None and k[2] in done:
            try:
                st = os.stat(path)
            except OSError:
                st = None
            if st is not None and (st.st_size, st.st_mtime_ns) == (k[0], k[1]):
                skipped += 1
                continue
        todo.append(path)
    return todo, skipped


def _run_serial(files: list[str], job: Job) -> Iterator[dict[str, Any]]:
    init_worker(replace(job, network_threads=None))  # this process's networks are shared: leave them
    for path in files:
        yield analyse_file(path, job)


def _run_pool(files: list[str], job: Job, workers: int) -> Iterator[dict[str, Any]]:
    """Records from a pool of ``workers`` processes. When a worker dies, the pool is rebuilt and the
    data sets that were in flight are retried one at a time; the one that kills a worker alone is
    reported as failed (no sha256: a later scan tries it again)."""
    ctx = multiprocessing.get_context("spawn")
    pending = deque(files)
    suspects: deque[str] = deque()
    window = 2 * workers
    while pending or suspects:
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_pool_worker, initargs=(job,))
        try:
            pool.submit(ping).result()
        except BrokenProcessPool:
            pool.shutdown(wait=False, cancel_futures=True)
            raise WorkerStartError(
                "the scan's worker processes die on start-up (a script calling run_scan with workers > 0 needs "
                "an `if __name__ == '__main__':` guard; workers=0 runs in this process)"
            ) from None
        in_flight: dict[Any, str] = {}
        isolated: str | None = None  # a suspect running alone
        lost: list[str] = []
        broken = False  # a worker died between two submissions: submit no more to this pool

        def submit(path: str) -> bool:
            try:
                in_flight[pool.submit(analyse_file, path, job)] = path
                return True
            except BrokenProcessPool:
                return False

        try:
            while pending or suspects or in_flight:
                if isolated is None and not broken:
                    if suspects:
                        if not in_flight:
                            isolated = suspects.popleft()
                            if not submit(isolated):
                                suspects.appendleft(isolated)
                                isolated, broken = None, True
                    else:
                        while pending and len(in_flight) < window:
                            path = pending.popleft()
                            if not submit(path):  # never ran: back to the front
                                pending.appendleft(path)
                                broken = True
                                break
                if not in_flight:  # only after a broken submission: a new pool takes the rest
                    break
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for fut in finished:
                    path = in_flight.pop(fut)
                    try:
                        record = fut.result()
                    except BrokenProcessPool:
                        lost.append(path)
                        continue
                    if path == isolated:
                        isolated = None
                    yield record
                if lost:
                    lost.extend(in_flight.values())
                    break
        finally:  # on Ctrl-C or an error too: queued data sets are dropped, running ones finish
            pool.shutdown(wait=False, cancel_futures=True)
        if lost and lost == [isolated]:
            yield failed_record(isolated, CRASH_REASON)
        else:
            suspects.extend(lost)


def _run_dask(files: list[str], job: Job, scheduler) -> Iterator[dict[str, Any]]:
    """Records from a Dask distributed cluster (``scheduler``: an address or a ``Client``).
    The files must be readable by the workers under the same paths (a shared file system)."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise InputError("Dask scans need dask.distributed: pip install 'auspex-helcaraxe[dask]'") from None
    from .dask_plugin import WarmUp

    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler, timeout="30s") if own else scheduler
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot connect to the Dask scheduler {scheduler} ({one_line(exc)})") from None
    try:
        client.register_plugin(WarmUp(job), name=WarmUp.name)
        window = 4 * max(1, sum(client.nthreads().values()))
        it = iter(files)
        futures: dict[Any, str] = {}
        queue = as_completed()

        def submit(path: str) -> None:
            key = f"helcaraxe-scan-{os.urandom(8).hex()}"
            fut = client.submit(analyse_file, path, job, pure=False, key=key)
            futures[fut] = path
            queue.add(fut)

        for path in islice(it, window):
            submit(path)
        for fut in queue:
            path = futures.pop(fut)
            try:
                record = fut.result()
            except Exception as exc:  # KilledWorker and the like: the task never answered
                record = failed_record(path, f"Dask task failed: {one_line(exc)}")
            fut.release()
            yield record
            nxt = next(it, None)
            if nxt is not None:
                submit(nxt)
    finally:
        if own:
            client.close()


def run_scan(
    paths: Iterable[str | os.PathLike],
    db: str | os.PathLike,
    workers: int = 1,
    dask_scheduler: Any = None,
    detectors: str | Sequence[str] = "both",
    options: AnalysisOptions | None = None,
    progress: bool = True,
    retry_failed: bool = False,
    plugins: Sequence[str] = (),
) -> ScanReport:
    """Analyse every data set under ``paths`` into the results store ``db``; resumable.

    ``workers``: processes on this machine (0: in this process, no crash isolation);
    ``dask_scheduler``: a Dask scheduler address (``tcp://host:8786``) or ``distributed.Client`` to run
    on instead. Data sets already stored under the same configuration (content sha256, networks,
    detectors, threshold) are skipped; failed ones too unless ``retry_failed``. Bad data sets are
    recorded as failed (see :meth:`ScanReport.failure_table`), never raised. ``plugins`` are extra
    detector plugin modules to register on each worker's host.
    """
    t0 = time.perf_counter()
    options = options or AnalysisOptions()
    plugins = tuple(plugins)
    files = discover(paths)
    config = scan_config(detectors, options, plugins)
    job = Job(detectors=config.detectors, options=options, plugins=plugins)
    with Store(db) as store:
        key = store.register(config)
        if retry_failed:
            store.forget_failed(key)
        todo, skipped = _todo(files, store, key)
        report = ScanReport(db=Path(db), config=key, found=len(files), skipped=skipped)
        if dask_scheduler is not None:
            records = _run_dask(todo, job, dask_scheduler)
        elif workers <= 0:
            records = _run_serial(todo, job)
        else:
            records = _run_pool(todo, job, min(workers, max(1, len(todo))))
        bar = _progress(len(todo), progress, skipped)
        try:
            for record in records:
                if report.first_result_s is None:
                    report.first_result_s = time.perf_counter() - t0
                if not store.write(record, config):
                    report.skipped += 1
                    report.skipped_in_run += 1
                elif record["status"] == "ok":
                    report.done += 1
                else:
                    report.failed += 1
                    report.failures.append((record["file"], record["error"] or ""))
                if bar is not None:
                    bar.update(1)
                    if report.failed:
                        bar.set_postfix(failed=report.failed, refresh=False)
        finally:
            if hasattr(records, "close"):
                records.close()
            if bar is not None:
                bar.close()
    report.wall_s = time.perf_counter() - t0
    return report


def _progress(total: int, enabled: bool, skipped: int):
    if not enabled or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(
        total=total, unit="data set", desc="helcaraxe scan" + (f" ({skipped} already done)" if skipped else ""),
        file=sys.stderr, dynamic_ncols=True, smoothing=0.05,
    )
