"""Data for training and evaluation (no TensorFlow here): the real-data labels, the FIXED split of
the clean real data sets into training backgrounds and held-out evaluation backgrounds, and a disk
cache of simulated training sets.

Split rule (documented in docs/training.md and docs/evaluation.md): the data sets labelled
``clean`` in ``labels.tsv`` are sorted by their path relative to the real-data directory
(e.g. ``auspex/5usx.mtz``); those at even positions (0, 2, 4, …) may be used as training
backgrounds, those at odd positions (1, 3, 5, …) are held out for the semi-synthetic evaluation.
Alternating keeps both halves spread over the same sources. :func:`background_folds` generalises
this to k folds over data sets (the k-fold semi-synthetic evaluation, ``training.kfold``); the fixed
split is its fold 0 of 2.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import pickle
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_CACHE = Path(os.environ.get("HELCARAXE_CACHE", Path.home() / ".cache" / "auspex-helcaraxe"))


def default_real_dir() -> Path | None:
    """``../shared/data/real`` beside the checkout (or ``$HELCARAXE_SHARED/data/real``), if present."""
    env = os.environ.get("HELCARAXE_SHARED")
    root = Path(env) if env else Path(__file__).resolve().parents[3] / "shared"
    d = root / "data" / "real"
    return d if d.is_dir() else None


def real_dir(arg: str | os.PathLike | None = None) -> Path | None:
    """The real-data directory: ``arg`` if given, else :func:`default_real_dir` (None if there is none)."""
    return Path(arg) if arg else default_real_dir()


def require_real_dir(ap: argparse.ArgumentParser, arg: str | os.PathLike | None) -> Path:
    """:func:`real_dir` for a command line that cannot run without it: one-line error and exit 2 if none."""
    d = real_dir(arg)
    if d is None:
        ap.exit(2, "error: no real data directory (--real)\n")
    if not (d / "labels.tsv").is_file():
        ap.exit(2, f"error: {d}: not a real data directory (no labels.tsv)\n")
    return d


def optional_real_dir(ap: argparse.ArgumentParser, arg: str | os.PathLike | None) -> Path | None:
    """:func:`real_dir` for a command line that runs without real data too: the default one or None
    when ``arg`` is not given; one-line error and exit 2 when ``arg`` is not a real data directory."""
    return require_real_dir(ap, arg) if arg else default_real_dir()


def published_dir_beside(real_dir: str | os.PathLike) -> Path | None:
    """The published networks that ship beside the real data (``<shared>/reference/published``), if present."""
    d = Path(real_dir).parents[1] / "reference" / "published"
    return d if d.is_dir() else None


@dataclass(frozen=True)
class RealLabel:
    """One row of ``labels.tsv``: the file, its label and the iced ranges per observable."""

    path: Path
    relpath: str
    label: str  # ice / clean / excised / uncertain / unlabelled
    ice_ranges: dict[str, frozenset[int]] = field(default_factory=dict)
    note: str = ""


def read_labels(real_dir: str | os.PathLike) -> list[RealLabel]:
    """Rows of ``real_dir/labels.tsv`` (``ice_ranges`` parsed from ``I:5,8;F:5,8``)."""
    real_dir = Path(real_dir)
    out = []
    with open(real_dir / "labels.tsv", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            ranges: dict[str, frozenset[int]] = {}
            spec = (row.get("ice_ranges") or "").strip()
            if row["label"] == "ice" and spec:
                for part in spec.split(";"):
                    kind, _, idx = part.partition(":")
                    ranges[kind.strip()] = frozenset(int(i) for i in idx.split(",") if i.strip())
            out.append(RealLabel(real_dir / row["path"], row["path"], row["label"], ranges, row.get("note", "")))
    return out


def _read_or_log(path: str | os.PathLike, name: str, log: Callable[[str], None] | None) -> Any | None:
    """The file's Reflections, or None (logged as ``name``) when it cannot be read."""
    from ..errors import InputError
    from ..readers import read

    try:
        return read(path)
    except InputError as exc:
        if log:
            log(f"  {name}: skipped ({exc})")
        return None


def read_paths(paths, log: Callable[[str], None] | None = None) -> list[tuple[Path, Any]]:
    """``(path, Reflections)`` of the readable files among ``paths``, in order; unreadable ones are
    skipped (and logged)."""
    pairs = ((Path(p), _read_or_log(p, Path(p).name, log)) for p in paths)
    return [(p, refl) for p, refl in pairs if refl is not None]


def read_real(real_dir: str | os.PathLike, labels: tuple[str, ...] | None = None,
              log: Callable[[str], None] | None = None) -> Iterator[tuple[RealLabel, Any]]:
    """``(label row, Reflections)`` of every readable real data set, sorted by path (only the rows
    whose label is in ``labels``, when given); unreadable files are skipped (and logged)."""
    for row in sorted(read_labels(real_dir), key=lambda r: r.relpath):
        if labels is not None and row.label not in labels:
            continue
        refl = _read_or_log(row.path, row.relpath, log)
        if refl is not None:
            yield row, refl


def background_folds(real_dir: str | os.PathLike, n_folds: int = 2, fold: int = 0) -> tuple[list[Path], list[Path]]:
    """(training backgrounds, test backgrounds) of fold ``fold`` of ``n_folds``, by data set.

    The clean real data sets, sorted by relative path, are dealt out in turn: position ``i`` is a
    test background of fold ``(i - 1) % n_folds`` and a training background of every other fold. So
    each clean data set is a test background exactly once, never in the training part of the fold
    that scores it, and with ``n_folds=2`` fold 0 is the historical fixed split (even positions
    train, odd positions held out: the shipped networks) and fold 1 its mirror image.
    """
    if n_folds < 2 or not 0 <= fold < n_folds:
        raise ValueError(f"fold {fold} of {n_folds}: need n_folds >= 2 and 0 <= fold < n_folds")
    clean = sorted((r for r in read_labels(real_dir) if r.label == "clean"), key=lambda r: r.relpath)
    test = [(k - 1) % n_folds == fold for k in range(len(clean))]
    return [r.path for r, t in zip(clean, test) if not t], [r.path for r, t in zip(clean, test) if t]


def background_split(real_dir: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """(training backgrounds, held-out backgrounds) of the shipped networks: fold 0 of 2 of
    :func:`background_folds` (sorted by relative path; even positions train, odd positions held out)."""
    return background_folds(real_dir, 2, 0)


def git_state() -> dict[str, Any]:
    """The checkout's commit and whether ``auspex_helcaraxe/simulate`` has uncommitted changes
    (empty when not in a git checkout)."""
    import subprocess

    root = Path(str(resources.files("auspex_helcaraxe"))).parent
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "auspex_helcaraxe/simulate"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": commit, "simulate_uncommitted_changes": bool(dirty)}


def utc_now() -> str:
    """The date of a run as generated documents write it."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def generated_by(module: str, res: dict[str, Any]) -> str:
    """Opening words of a generated section: the run's own ``date``, never the rendering time as if
    it were the run's (a JSON of an older run may lack the date)."""
    if res.get("date"):
        return f"Generated by `{module}` on {res['date']} "
    return f"Rendered by `{module}` on {utc_now()} from a run whose JSON does not record its date "


ONEDNN_ISA = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


def cpu_state() -> dict[str, Any]:
    """What may change TensorFlow's numerics between machines with the same versions: the CPU, the
    instruction sets oneDNN chooses its kernels by, and ``TF_ENABLE_ONEDNN_OPTS`` (unset: on)."""
    import platform

    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    return {"cpu": model, "isa": [f for f in ONEDNN_ISA if f in flags], "cpu_count": os.cpu_count(),
            "onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset")}


def simulator_fingerprint() -> str:
    """sha256 over the simulator's source files: a cached training set is stale when it changes."""
    h = hashlib.sha256()
    root = Path(str(resources.files("auspex_helcaraxe"))) / "simulate"
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def cached(
    make: Callable[..., tuple],
    key: dict[str, Any],
    cache_dir: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any, dict]:
    """``make(**key)`` → (X, y, groups, meta, info), stored once under ``cache_dir`` by a hash of
    ``key`` and the simulator's fingerprint, and read from there afterwards. ``info`` holds the
    simulator fingerprint the set was made with and the cache directory."""
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE
    ident = {**{k: (sorted(map(str, v)) if isinstance(v, (list, tuple)) else v) for k, v in key.items()},
             "simulator": simulator_fingerprint()}
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:20]
    d = cache / f"set_{digest}"
    if (d / "done").exists():
        if log:
            log(f"cached training set {d}")
        X = np.load(d / "X.npy", mmap_mode="r")
        with open(d / "meta.pkl", "rb") as fh:
            meta = pickle.load(fh)
        info = {"simulator": ident["simulator"], "cache": str(d), "cached": True}
        return np.asarray(X), np.load(d / "y.npy"), np.load(d / "groups.npy"), meta, info
    X, y, groups, meta = make(**key)
    d.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=d))
    np.save(tmp / "X.npy", np.asarray(X, np.float32))
    np.save(tmp / "y.npy", np.asarray(y))
    np.save(tmp / "groups.npy", np.asarray(groups))
    with open(tmp / "meta.pkl", "wb") as fh:
        pickle.dump(meta, fh)
    for name in ("X.npy", "y.npy", "groups.npy", "meta.pkl"):
        os.replace(tmp / name, d / name)
    tmp.rmdir()
    (d / "key.json").write_text(json.dumps(ident, indent=1, default=str))
    (d / "done").touch()
    return X, y, groups, meta, {"simulator": ident["simulator"], "cache": str(d), "cached": False}


def split_by_group(groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (train, validation): whole groups (simulated data sets) go to validation."""
    uniq = np.unique(groups)
    rng = np.random.default_rng(seed)
    n_val = max(1, round(fraction * uniq.size)) if uniq.size > 1 else 0
    val_groups = rng.permutation(uniq)[:n_val]
    val = np.isin(groups, val_groups)
    return ~val, val
