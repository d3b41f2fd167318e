"""Helpers shared by the benchmark scripts: timing, and a baseline checkout to time against."""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def baseline_worktree(ref: str) -> Iterator[Path]:
    """A detached ``git worktree`` of ``ref`` in a temporary directory (removed afterwards), for
    A/B runs of this tree against ``ref`` with ``PYTHONPATH`` set to each tree."""
    with tempfile.TemporaryDirectory(prefix="helcaraxe-baseline-") as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), ref], check=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


def median_time(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def real_files(real_dir: Path) -> list[Path]:
    """The merged real data sets under ``real_dir`` (``../shared/data/real``), sorted."""
    return sorted(p for p in real_dir.glob("*/*") if p.suffix in (".mtz", ".cif", ".ent") and "unmerged" not in str(p))
