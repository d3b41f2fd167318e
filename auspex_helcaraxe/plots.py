"""Helcaraxe plots: one 80×80 histogram of the observable against d per covered ice range.

Reproduces the published pipeline exactly (see the parity tests): per range, y limits are the
0.5th and 95th percentiles of the observations in the range, x spans the range in d, the
``numpy.histogram2d`` counts are rotated 90° counter-clockwise (rows: observation value from high to
low; columns: d from the range's d_min to its d_max) and standardised per image.

All ranges of a data set are binned in one vectorised pass (one ``bincount`` for all plots); the
only Python loop runs over the (at most 25) ranges, never over reflections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ice_ranges import IceRange, ice_ranges
from .reflections import Observable

PLOT_SIZE = 80
WINDOW_COLUMNS = 10
WINDOW_STEP = 5
BLANK_WINDOW_MEAN = 0.005  # a 10-column window with mean count <= this makes a plot nonpredictable
Y_PERCENTILES = (0.5, 95.0)
EMPTY_RANGE_PERCENTILE = 90.0
MIN_STD = 1.0 / PLOT_SIZE
EXCISED_RELATIVE_COMPLETENESS = 0.5


@dataclass(frozen=True)
class RangePlots:
    """The Helcaraxe plots of one observable, one entry per covered range (in Auspex order)."""

    kind: str
    ranges: tuple[IceRange, ...]
    counts: np.ndarray  # (n, 80, 80) float32 histogram counts, rotated as published
    y_limits: np.ndarray  # (n, 2) observation-axis limits
    n_in_range: np.ndarray  # (n,) observations inside each range
    relative_completeness: np.ndarray  # (n,) reflection density in the range / in its neighbour shells
    blank_reason: tuple[str | None, ...]  # why a plot is nonpredictable; None if predictable

    @property
    def predictable(self) -> np.ndarray:
        return np.array([r is None for r in self.blank_reason], dtype=bool)

    @property
    def inputs(self) -> np.ndarray:
        """Network inputs, (n, 80, 80, 1) float32, standardised per image."""
        return standardise(self.counts)[..., None]

    def excised(self) -> np.ndarray:
        """Blank ranges whose reflections are missing relative to the neighbouring shells."""
        return ~self.predictable & (self.relative_completeness < EXCISED_RELATIVE_COMPLETENESS)


def covered_ranges(d_min: float, ranges: tuple[IceRange, ...] | None = None) -> tuple[IceRange, ...]:
    """Ranges the published pipeline plots for data reaching ``d_min`` Å."""
    return tuple(r for r in (ranges or ice_ranges()) if r.covered_by(d_min))


def make_plots(obs: Observable, ranges: tuple[IceRange, ...] | None = None) -> RangePlots:
    """Build the Helcaraxe plots of every range covered by ``obs`` (no copy of ``obs``' arrays)."""
    d, values = obs.d, obs.values
    data_d_min = obs.d_min
    covered = covered_ranges(data_d_min, ranges)
    n = len(covered)
    if n == 0:
        empty = np.zeros((0, PLOT_SIZE, PLOT_SIZE), np.float32)
        return RangePlots(obs.kind, (), empty, np.zeros((0, 2)), np.zeros(0, int), np.zeros(0), ())

    # Assign each reflection to the covered range holding it (ranges are disjoint and ordered).
    # Boundaries sorted increasingly in d: [d_min_25, d_max_25, ..., d_min_1, d_max_1].
    lows = np.array([r.d_min for r in covered])
    highs = np.array([r.d_max for r in covered])
    bounds = np.column_stack([lows, highs])[::-1].ravel()
    pos = np.searchsorted(bounds, d, side="left")  # d == d_min of a range -> inside
    on_upper = np.zeros(d.shape, bool)
    odd = (pos % 2 == 0) & (pos > 0)
    on_upper[odd] = d[odd] == bounds[pos[odd] - 1]  # d == d_max of a range -> inside too
    inside = (pos % 2 == 1) | on_upper
    idx = np.flatnonzero(inside)
    slot = np.where(on_upper[idx], pos[idx] - 1, pos[idx]) // 2  # 0 = highest-resolution range
    range_of = (n - 1) - slot  # position in `covered`
    group = np.argsort(range_of, kind="stable")
    idx, range_of = idx[group], range_of[group]
    starts = np.searchsorted(range_of, np.arange(n + 1))

    y_limits = []
    fallback = None
    for k, r in enumerate(covered):
        subset = values[idx[starts[k] : starts[k + 1]]]
        if r.partially_covered_by(data_d_min):
            subset = np.append(subset, values[-1])  # published quirk: last observation appended
        if subset.size:
            lo, hi = np.percentile(subset, Y_PERCENTILES)
        else:
            if fallback is None:
                fallback = np.percentile(values, EMPTY_RANGE_PERCENTILE)
            lo, hi = 0, fallback
        y_limits.append(_outer_edges(lo, hi))

    x_edges = np.stack([np.linspace(r.d_min, r.d_max, PLOT_SIZE + 1) for r in covered])
    y_edges = np.stack([np.linspace(lo, hi, PLOT_SIZE + 1) for lo, hi in y_limits])
    xb = _bin_index(d[idx], x_edges, range_of)
    yb = _bin_index(values[idx], y_edges, range_of)
    ok = (xb >= 0) & (yb >= 0)
    flat = (range_of[ok] * PLOT_SIZE + xb[ok]) * PLOT_SIZE + yb[ok]
    hist = np.bincount(flat, minlength=n * PLOT_SIZE * PLOT_SIZE).reshape(n, PLOT_SIZE, PLOT_SIZE)
    counts = np.rot90(hist, k=1, axes=(1, 2)).astype(np.float32)

    n_in_range = np.diff(starts)
    return RangePlots(
        kind=obs.kind,
        ranges=covered,
        counts=np.ascontiguousarray(counts),
        y_limits=np.array([[float(a), float(b)] for a, b in y_limits]),
        n_in_range=n_in_range,
        relative_completeness=_relative_completeness(obs, covered, n_in_range),
        blank_reason=tuple(_blank_reason(c, r, data_d_min) for c, r in zip(hist, covered)),
    )


def standardise(counts: np.ndarray) -> np.ndarray:
    """Per-image standardisation of the published pipeline: (x − mean) / max(std, 1/80)."""
    c = counts.astype(np.float64)
    mean = c.mean(axis=(-2, -1), keepdims=True)
    std = np.maximum(c.std(axis=(-2, -1), keepdims=True), MIN_STD)
    return ((c - mean) / std).astype(np.float32)


def _outer_edges(lo, hi):
    """numpy.histogram's handling of a degenerate range (identical limits)."""
    if lo == hi:
        return lo - 0.5, hi + 0.5
    return lo, hi


def _bin_index(sample: np.ndarray, edges: np.ndarray, row: np.ndarray) -> np.ndarray:
    """0-based bin of each sample in its own row of ``edges``, −1 outside; numpy.histogramdd rules.

    Equivalent to ``searchsorted(edges[row], sample, side='right')`` with the last edge inclusive,
    computed for all rows at once: an arithmetic first guess corrected against the real edges.
    """
    nb = edges.shape[1] - 1
    first, last = edges[row, 0], edges[row, -1]
    s = sample.astype(np.result_type(sample.dtype, edges.dtype))
    with np.errstate(invalid="ignore", divide="ignore"):
        guess = np.floor((s - first) / (last - first) * nb)
    k = np.clip(np.nan_to_num(guess, nan=-1), -1, nb).astype(np.intp) + 1  # number of edges <= s
    for _ in range(2):
        k = np.where((k > 0) & (edges[row, np.maximum(k - 1, 0)] > s), k - 1, k)
        k = np.where((k <= nb) & (edges[row, np.minimum(k, nb)] <= s), k + 1, k)
    k = np.where(s == last, k - 1, k)  # last edge inclusive
    b = k - 1
    return np.where((b >= 0) & (b < nb) & ~np.isnan(s), b, -1)


def _blank_reason(hist: np.ndarray, r: IceRange, data_d_min: float) -> str | None:
    """Why a plot is nonpredictable (a 10-column window nearly empty), or None."""
    per_column = hist.sum(axis=1)  # hist is (x = d bins, y); columns of the rotated plot
    cells = WINDOW_COLUMNS * PLOT_SIZE
    for start in range(0, PLOT_SIZE - WINDOW_COLUMNS + 1, WINDOW_STEP):
        if per_column[start : start + WINDOW_COLUMNS].sum() <= BLANK_WINDOW_MEAN * cells:
            width = (r.d_max - r.d_min) / PLOT_SIZE
            lo, hi = r.d_min + start * width, r.d_min + (start + WINDOW_COLUMNS) * width
            if r.partially_covered_by(data_d_min):
                return f"range only partly covered: data end at {data_d_min:.3f} Å"
            return f"blank plot: d {lo:.3f}–{hi:.3f} Å holds almost no reflections"
    return None


def _relative_completeness(obs: Observable, covered: tuple[IceRange, ...], n_in_range: np.ndarray) -> np.ndarray:
    """Reflections per reciprocal volume in each range relative to its two neighbouring shells.

    Merged data fill reciprocal space uniformly, so the count per unit of 1/d³ is flat; ice rings cut
    out during integration show up as a density far below the shells on either side. The
    neighbours are shells as wide (in 1/d³) as the range itself, clipped to the data's limits.
    """
    sd = obs.sorted_d
    d_lo_data, d_hi_data = float(sd[0]), float(sd[-1])
    out = np.ones(len(covered))
    for k, r in enumerate(covered):
        a, b = 1.0 / r.d_max**3, 1.0 / min(r.d_min, d_hi_data) ** 3
        b_in = 1.0 / max(r.d_min, d_lo_data) ** 3
        vol_in = b_in - a
        width = b - a
        below = (max(a - width, 1.0 / d_hi_data**3), a)
        above = (b_in, min(b_in + width, 1.0 / d_lo_data**3))
        counts, vols = 0, 0.0
        for lo3, hi3 in (below, above):
            if hi3 > lo3:
                d_hi, d_lo = lo3 ** (-1 / 3), hi3 ** (-1 / 3)
                counts += np.searchsorted(sd, d_hi, "right") - np.searchsorted(sd, d_lo, "left")
                vols += hi3 - lo3
        if vols > 0 and counts > 0 and vol_in > 0:
            out[k] = (n_in_range[k] / vol_in) / (counts / vols)
    return out
