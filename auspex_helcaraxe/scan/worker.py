"""What runs in a worker process (process pool or Dask worker): one data set in, one plain record out.

The host (and through ``network.load_networks`` the networks) is created once per process and
reused for every data set that process analyses. Nothing here touches the results store.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..host import Analysis
from ..results import AnalysisOptions

_HOSTS: dict[tuple[str, ...], Any] = {}


@dataclass(frozen=True)
class Job:
    """Everything a worker needs besides the file path (small and picklable)."""

    detectors: tuple[str, ...]
    options: AnalysisOptions = field(default_factory=AnalysisOptions)
    plugins: tuple[str, ...] = ()  # extra plugin modules ("package.module") to register on the host
    network_threads: int | None = 1  # TFLite threads per worker process (None: network.auto_threads)


def get_host(plugins: tuple[str, ...] = ()):
    """This process's :class:`~auspex_helcaraxe.host.Host` (created on first use, then reused)."""
    host = _HOSTS.get(plugins)
    if host is None:
        from ..host import Host

        host = Host(plugins=[importlib.import_module(name) for name in plugins])
        _HOSTS[plugins] = host
    return host


def init_worker(job: Job) -> None:
    """Worker set-up: build the host and load the networks before the first data set."""
    get_host(job.plugins)
    if "helcaraxe" in job.detectors:
        from ..network import load_networks, set_num_threads

        if job.network_threads is not None:
            # Two processes on two cores with the runtime's default threading took 2.6x longer per
            # prediction than with one thread each (0.37-0.39 s vs 0.145 s per batch of 25 plots).
            set_num_threads(job.network_threads)
        load_networks(job.options.networks)


def ping() -> int:
    """A no-op task: proves that a worker process started and initialised."""
    return os.getpid()


def init_pool_worker(job: Job) -> None:
    """Process-pool initializer: ignore Ctrl-C (the parent handles it and stops the pool), then
    :func:`init_worker`."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    init_worker(job)


def read_and_hash(path: str) -> tuple[bytes, str, int, int]:
    """(content, sha256 of it, size, mtime_ns) of ``path``, read once (the reader parses the same
    bytes); InputError when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            data = fh.read()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a reflection file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return data, hashlib.sha256(data).hexdigest(), st.st_size, st.st_mtime_ns


def file_sha256(path: str) -> tuple[str, int, int]:
    """(sha256 of the content, size, mtime_ns) of ``path``; InputError when it cannot be read."""
    return read_and_hash(path)[1:]


def file_sha256_streamed(path: str) -> str:
    """sha256 of ``path`` read in 1 MiB chunks (the hashing before issue 11; benchmark baseline)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def one_line(exc: BaseException) -> str:
    """A one-line reason: InputError messages as they are, anything else prefixed with its type."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(exc, InputError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def analyse_file(path: str, job: Job) -> dict[str, Any]:
    """Hash, read and analyse one data set; never raises for a bad data set (status ``failed``).

    Returns a plain dict: file, sha256, size, mtime_ns, status, error, n_reflections, d_min,
    space_group, observables, iced, flagged_ranges, results (detector, observable, network, ranges
    as (index, d_max, d_min, status, value, flagged) tuples), timings (seconds) and worker.
    """
    t0 = time.perf_counter()
    record: dict[str, Any] = {
        "file": path, "sha256": None, "size": None, "mtime_ns": None, "status": "failed", "error": None,
        "n_reflections": None, "d_min": None, "space_group": None, "observables": None,
        "iced": None, "flagged_ranges": None, "results": [], "timings": {},
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
    timings = record["timings"]
    try:
        old = bool(os.environ.get("HELCARAXE_SCAN_OLD_READ"))  # benchmark only: the path before issue 11
        if old:
            data, record["sha256"] = None, file_sha256_streamed(path)
            st = os.stat(path)
            record["size"], record["mtime_ns"] = st.st_size, st.st_mtime_ns
        else:
            data, record["sha256"], record["size"], record["mtime_ns"] = read_and_hash(path)
        t1 = time.perf_counter()
        timings["hash"] = t1 - t0
        from ..readers import read

        reflections = read(path, data=data)
        del data
        t2 = time.perf_counter()
        timings["read"] = t2 - t1
        record["n_reflections"] = reflections.n_reflections
        record["d_min"] = reflections.d_min
        record["space_group"] = reflections.space_group
        record["observables"] = ",".join(reflections.observables)
        host = get_host(job.plugins)
        results = []
        for name in job.detectors:  # one detector at a time, to know where the time goes
            t = time.perf_counter()
            results.extend(host.analyse(reflections, detectors=[name], options=job.options).results)
            timings[name] = time.perf_counter() - t
        verdict = Analysis(reflections, tuple(results), job.options)  # the host's verdict rule
        record["iced"] = verdict.iced
        record["flagged_ranges"] = verdict.flagged_ranges
        record["results"] = [
            {
                "detector": r.detector,
                "observable": r.observable,
                "network": (r.info or {}).get("network"),
                "ranges": [
                    (rr.index, rr.d_max, rr.d_min, rr.status, None if rr.value is None else float(rr.value),
                     bool(rr.flagged))
                    for rr in r.ranges
                ],
            }
            for r in results
        ]
        record["status"] = "ok"
    except Exception as exc:  # a bad data set (or a detector bug) is recorded, never raised
        record["error"] = one_line(exc)
    timings["total"] = time.perf_counter() - t0
    return record


def failed_record(path: str, reason: str) -> dict[str, Any]:
    """The record of a data set whose worker never answered (crashed, killed): no sha256, so a
    later scan tries it again."""
    return {
        "file": path, "sha256": None, "size": None, "mtime_ns": None, "status": "failed", "error": reason,
        "n_reflections": None, "d_min": None, "space_group": None, "observables": None, "iced": None,
        "flagged_ranges": None, "results": [], "timings": {}, "worker": None,
    }

