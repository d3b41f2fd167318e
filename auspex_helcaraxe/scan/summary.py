"""Survey figures from a results store: fraction of iced data sets, the ranges hit most and, with
metadata, the fraction iced per deposition year (the paper's Fig. 8). Matplotlib (Agg) only here."""

from __future__ import annotations

import csv
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from ..errors import InputError
from .store import Store

ID_COLUMNS = ("id", "pdb_id", "entry_id", "entry", "pdb", "structure_id", "pdbid")
YEAR_COLUMNS = ("deposition_year", "year", "deposition year", "deposit_year", "initial_deposition_year")
DATE_COLUMNS = ("deposition_date", "date", "deposition date", "initial_deposition_date")


def _figure(width: float = 7.0, height: float = 4.0):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _write_csv(path: Path, header: list[str], rows) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def read_metadata(path: str | os.PathLike) -> dict[str, int]:
    """Entry id (lower case) → deposition year from a CSV with an id column (``id``, ``pdb_id``, …)
    and a year (``deposition_year``, ``year``) or date (``deposition_date``) column."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            fields = {f.strip().lower(): f for f in reader.fieldnames or ()}
            id_col = next((fields[c] for c in ID_COLUMNS if c in fields), None)
            year_col = next((fields[c] for c in YEAR_COLUMNS if c in fields), None)
            date_col = None if year_col else next((fields[c] for c in DATE_COLUMNS if c in fields), None)
            if id_col is None or (year_col is None and date_col is None):
                raise InputError(
                    f"{path}: metadata CSV needs an id column ({', '.join(ID_COLUMNS[:3])}) and a deposition "
                    f"year or date column (found: {', '.join(reader.fieldnames or ()) or 'none'})"
                )
            years: dict[str, int] = {}
            for row in reader:
                text = (row.get(year_col or date_col) or "").strip()
                m = re.search(r"\d{4}", text)
                ident = (row.get(id_col) or "").strip().lower()
                if ident and m:
                    years[ident] = int(m.group(0))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the metadata CSV ({exc.strerror or exc})") from None
    return years


def summary(
    db: str | os.PathLike, out_dir: str | os.PathLike, metadata_csv: str | os.PathLike | None = None,
    config: str | None = None, fmt: str = "png",
) -> list[Path]:
    """Draw the survey figures (and the numbers behind them as CSV) into ``out_dir``.

    Uses the data sets of ``config`` (default: the configuration of the latest stored data set).
    Returns the written paths: ``fraction_iced``, ``ranges_hit`` and, with ``metadata_csv``,
    ``iced_by_year`` (figure + CSV each).
    """
    if not Path(db).is_file():
        raise InputError(f"{db}: no such results store")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with Store(db) as store:
        config = config or store.latest_config()
        if config is None:
            raise InputError(f"{db}: the results store holds no data sets")
        counts = dict(store.query(
            "SELECT status, COUNT(*) FROM datasets WHERE config=? GROUP BY status", (config,)).fetchall())
        n_ok, n_failed = counts.get("ok", 0), counts.get("failed", 0)
        datasets = store.query(
            "SELECT id, entry_id, iced FROM datasets WHERE config=? AND status='ok'", (config,)).fetchall()
        per_obs = store.flagged_by_observable(config)
        per_range = store.flagged_by_range(config)
    n_iced = sum(1 for _, _, iced in datasets if iced)
    written = [*_fraction_iced(out, fmt, n_ok, n_failed, n_iced, per_obs), *_ranges_hit(out, fmt, per_range)]
    if metadata_csv is not None:
        written += _by_year(out, fmt, datasets, read_metadata(metadata_csv))
    return written


def _fraction_iced(out: Path, fmt: str, n_ok: int, n_failed: int, n_iced: int, per_obs) -> list[Path]:
    labels = ["any detector"] + [f"{det} {obs}" for det, obs, _, _ in per_obs]
    totals = [n_ok] + [n for _, _, n, _ in per_obs]
    hits = [n_iced] + [k for _, _, _, k in per_obs]
    fractions = [k / n if n else 0.0 for k, n in zip(hits, totals)]
    fig = _figure(7.0, 1.2 + 0.45 * len(labels))
    ax = fig.add_subplot()
    y = range(len(labels))[::-1]
    ax.barh(list(y), fractions, color=["#1f4e79"] + ["#6fa8dc"] * (len(labels) - 1))
    for yi, f, k, n in zip(y, fractions, hits, totals):
        ax.text(f, yi, f" {f:.1%} ({k}/{n})", va="center", fontsize=9)
    ax.set_yticks(list(y), labels)
    ax.set_xlim(0, min(1.0, max(fractions + [0.05]) * 1.35))
    ax.set_xlabel("fraction of data sets with at least one flagged ice range")
    ax.set_title(f"Ice in {n_ok} data sets" + (f" ({n_failed} could not be analysed)" if n_failed else ""))
    path = out / f"fraction_iced.{fmt}"
    fig.savefig(path, dpi=120)
    rows = [(label, n, k, round(f, 6)) for label, n, k, f in zip(labels, totals, hits, fractions)]
    return [path, _write_csv(out / "fraction_iced.csv", ["result", "n_assessed", "n_iced", "fraction"], rows)]


def _ranges_hit(out: Path, fmt: str, per_range) -> list[Path]:
    by_detector: dict[str, dict[int, tuple]] = defaultdict(dict)
    for det, idx, d_max, d_min, n, k in per_range:
        by_detector[det][idx] = (d_max, d_min, n, k)
    fig = _figure(9.0, 4.0)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(by_detector))
    ticks: dict[int, str] = {}
    for j, (det, ranges) in enumerate(sorted(by_detector.items())):
        idx = sorted(ranges)
        ax.bar([i - 0.4 + width * (j + 0.5) for i in idx], [ranges[i][3] / ranges[i][2] for i in idx], width,
               label=det)
        for i in idx:
            ticks[i] = f"{i}\n{ranges[i][0]:.2f}"
    ax.set_xticks(sorted(ticks), [ticks[i] for i in sorted(ticks)], fontsize=7)
    ax.set_xlabel("ice range (index, d_max in Å)")
    ax.set_ylabel("fraction of assessed data sets flagged")
    ax.set_title("Which ice ranges are hit most")
    if by_detector:
        ax.legend()
    path = out / f"ranges_hit.{fmt}"
    fig.savefig(path, dpi=120)
    rows = [(det, i, r[0], r[1], r[2], r[3], round(r[3] / r[2], 6) if r[2] else 0.0)
            for det, ranges in sorted(by_detector.items()) for i, r in sorted(ranges.items())]
    return [path, _write_csv(out / "ranges_hit.csv",
                             ["detector", "range", "d_max", "d_min", "n_assessed", "n_flagged", "fraction"], rows)]


def count_by_year(rows: Iterable[tuple[str, Any]], years: dict[str, int]) -> tuple[list[tuple[int, int, int]], int]:
    """``(year, data sets, iced)`` per deposition year, in year order, from ``(entry id, iced)`` rows,
    and how many rows have no year in ``years``."""
    n: dict[int, int] = defaultdict(int)
    k: dict[int, int] = defaultdict(int)
    unmatched = 0
    for ident, iced in rows:
        year = years.get(ident)
        if year is None:
            unmatched += 1
            continue
        n[year] += 1
        k[year] += int(bool(iced))
    return [(y, n[y], k[y]) for y in sorted(n)], unmatched


def _by_year(out: Path, fmt: str, datasets, years: dict[str, int]) -> list[Path]:
    counts, unmatched = count_by_year(((ident, iced) for _, ident, iced in datasets), years)
    xs = [y for y, _, _ in counts]
    fig = _figure(8.0, 4.0)
    ax = fig.add_subplot()
    ax.bar(xs, [i / m for _, m, i in counts], color="#1f4e79", label="fraction iced")
    ax.set_xlabel("deposition year")
    ax.set_ylabel("fraction of data sets with ice rings")
    ax2 = ax.twinx()
    ax2.plot(xs, [m for _, m, _ in counts], color="#e69138", marker="o", ms=3, label="data sets")
    ax2.set_ylabel("data sets analysed")
    ax2.set_ylim(bottom=0)
    ax.set_title("Ice rings by deposition year" + (f" ({unmatched} data sets without metadata)" if unmatched else ""))
    path = out / f"iced_by_year.{fmt}"
    fig.savefig(path, dpi=120)
    rows = [(y, m, i, round(i / m, 6)) for y, m, i in counts]
    return [path, _write_csv(out / "iced_by_year.csv", ["year", "n_datasets", "n_iced", "fraction"], rows)]
