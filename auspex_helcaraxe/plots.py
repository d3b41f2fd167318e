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
from functools import lru_cache

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
EXCISED_RELATIVE_COMPLETENESS = 0.25  # emptiest window holds < 25 % of the reflections expected there ...
EXCISED_MIN_EXPECTED = 20.0  # ... and >= 20 were expected (fewer: sparse data, not a cut)
TABLE_STEP = 1e-4  # Å; cell size of the lookup table that preselects reflections near the ranges


def _linear(v: np.ndarray) -> np.ndarray:
    return v


def _signed_sqrt(v: np.ndarray) -> np.ndarray:
    return (np.sign(v) * np.sqrt(np.abs(v))).astype(v.dtype, copy=False)


# The observable's scale on the plot's y axis (a network's card field ``plot_scale``): "linear" is the
# published pipeline; "signed_sqrt" puts intensities on an amplitude-like scale, sign(I)·√|I|, before
# the percentiles and the histogram (monotone, so the same reflections fill the same columns).
PLOT_SCALES = {"linear": _linear, "signed_sqrt": _signed_sqrt}


@dataclass(frozen=True)
class RangePlots:
    """The Helcaraxe plots of one observable, one entry per covered range (in Auspex order)."""

    kind: str
    ranges: tuple[IceRange, ...]
    counts: np.ndarray  # (n, 80, 80) float32 histogram counts, rotated as published
    y_limits: np.ndarray  # (n, 2) observation-axis limits
    n_in_range: np.ndarray  # (n,) observations inside each range
    relative_completeness: np.ndarray  # (n,) emptiest window: observed / expected reflections; NaN unless blank
    expected_in_gap: np.ndarray  # (n,) reflections the emptiest window should hold; NaN unless blank
    blank_reason: tuple[str | None, ...]  # why a plot is nonpredictable; None if predictable
    scale: str = "linear"  # PLOT_SCALES: the observable's scale on the y axis (y_limits are on it)

    @property
    def predictable(self) -> np.ndarray:
        return np.array([r is None for r in self.blank_reason], dtype=bool)

    @property
    def inputs(self) -> np.ndarray:
        """Network inputs, (n, 80, 80, 1) float32, standardised per image."""
        return standardise(self.counts)[..., None]

    def excised(self) -> np.ndarray:
        """Blank ranges whose reflections are missing relative to the neighbouring shells."""
        with np.errstate(invalid="ignore"):
            return (~self.predictable & (self.relative_completeness < EXCISED_RELATIVE_COMPLETENESS)
                    & (self.expected_in_gap >= EXCISED_MIN_EXPECTED))


def covered_ranges(d_min: float, ranges: tuple[IceRange, ...] | None = None) -> tuple[IceRange, ...]:
    """Ranges the published pipeline plots for data reaching ``d_min`` Å."""
    return tuple(r for r in (ranges or ice_ranges()) if r.covered_by(d_min))


def make_plots(obs: Observable, ranges: tuple[IceRange, ...] | None = None, scale: str = "linear") -> RangePlots:
    """Build the Helcaraxe plots of every range covered by ``obs`` (no copy of ``obs``' arrays).

    ``scale``: the y axis of :data:`PLOT_SCALES` (a network's ``card.plot_scale``); only the
    observations inside the ranges are transformed. Which plots are predictable does not depend on it.
    """
    if scale not in PLOT_SCALES:
        raise ValueError(f"unknown plot scale {scale!r} (one of {', '.join(PLOT_SCALES)})")
    transform = PLOT_SCALES[scale]
    d, values = obs.d, obs.values
    data_d_min = obs.d_min
    covered = covered_ranges(data_d_min, ranges)
    n = len(covered)
    if n == 0:
        empty = np.zeros((0, PLOT_SIZE, PLOT_SIZE), np.float32)
        return RangePlots(obs.kind, (), empty, np.zeros((0, 2)), np.zeros(0, int), np.zeros(0), np.zeros(0), (), scale)
    tables = _tables(covered)

    # 1. Which reflections lie in a range, and in which d column of its plot: a lookup table on d
    #    names the one range a reflection can belong to (ranges are far apart compared with a table
    #    cell); the exact test d_min <= d <= d_max is part of the column binning.
    near = np.take(tables.cell_range, (d * np.float32(1.0 / TABLE_STEP)).astype(np.int32), mode="clip")
    idx = np.flatnonzero(near >= 0)
    range_of = near[idx].astype(np.intp)  # position in `covered`
    xb = _bin_index(d[idx], tables.x_edges, range_of)
    inside = xb >= 0
    idx, xb, range_of = idx[inside], xb[inside], range_of[inside]
    vals = transform(values[idx])

    # 2. Per-range percentiles (numpy's linear method, vectorised over ranges) from one sort of
    #    (range, value) keys.
    sorted_range, sorted_vals = _sort_by_range_then_value(range_of, vals)
    starts = np.searchsorted(sorted_range, np.arange(n + 1))
    n_in_range = np.diff(starts)
    lo, hi = _grouped_percentiles(sorted_vals, starts, Y_PERCENTILES)
    partial = [k for k, r in enumerate(covered) if r.partially_covered_by(data_d_min)]
    for k in partial:  # published quirk: the file's last observation joins a partially covered range
        subset = np.append(sorted_vals[starts[k] : starts[k + 1]], transform(values[-1:]))
        lo[k], hi[k] = np.percentile(subset, Y_PERCENTILES)
    empty = n_in_range == 0
    if empty.any():
        lo[empty], hi[empty] = 0.0, np.percentile(transform(values), EMPTY_RANGE_PERCENTILE)
    same = lo == hi  # numpy.histogram widens a degenerate range by ±0.5
    lo[same] -= 0.5
    hi[same] += 0.5

    # 3. All histograms in one bincount.
    step = (hi - lo) / PLOT_SIZE
    y_edges = np.arange(PLOT_SIZE + 1)[None, :] * step[:, None] + lo[:, None]  # numpy.linspace, row-wise
    y_edges[:, -1] = hi
    yb = _bin_index(vals, y_edges, range_of)
    ok = yb >= 0
    per_column = np.bincount(range_of * PLOT_SIZE + xb, minlength=n * PLOT_SIZE).reshape(n, PLOT_SIZE)
    # Counted straight into the published orientation (histogram2d rotated 90° counter-clockwise):
    # row = observation bin from high to low, column = d bin from d_min to d_max.
    flat = (range_of[ok] * PLOT_SIZE + (PLOT_SIZE - 1 - yb[ok])) * PLOT_SIZE + xb[ok]
    counts = np.bincount(flat, minlength=n * PLOT_SIZE * PLOT_SIZE).astype(np.float32).reshape(n, PLOT_SIZE, PLOT_SIZE)

    # 4. Nonpredictable plots: some 10-column window (nearly) empty. Is it a cut? Compare the
    #    emptiest window with the reflections the neighbouring shells say it should hold.
    cum = np.concatenate([np.zeros((n, 1), per_column.dtype), np.cumsum(per_column, axis=1)], axis=1)
    starts_w = np.arange(0, PLOT_SIZE - WINDOW_COLUMNS + 1, WINDOW_STEP)
    in_window = cum[:, starts_w + WINDOW_COLUMNS] - cum[:, starts_w]
    blank = in_window <= BLANK_WINDOW_MEAN * WINDOW_COLUMNS * PLOT_SIZE
    reasons: list[str | None] = [None] * n
    completeness, expected = np.full(n, np.nan), np.full(n, np.nan)
    for k in np.flatnonzero(blank.any(axis=1)):
        r = covered[k]
        if k in partial:
            reasons[k] = f"range only partly covered: data end at {data_d_min:.3f} Å"
            continue
        j = int(np.argmin(in_window[k]))
        width = (r.d_max - r.d_min) / PLOT_SIZE
        a, b = r.d_min + starts_w[j] * width, r.d_min + (starts_w[j] + WINDOW_COLUMNS) * width
        observed = int(in_window[k, j])
        expected[k] = _neighbour_density(d, r, data_d_min) * (1.0 / a**3 - 1.0 / b**3)
        completeness[k] = observed / expected[k] if expected[k] > 0 else np.nan
        reasons[k] = (f"blank plot: d {a:.3f}–{b:.3f} Å holds {observed} reflections "
                      f"({expected[k]:.0f} expected from the neighbouring shells)")
    return RangePlots(
        kind=obs.kind,
        ranges=covered,
        counts=counts,
        y_limits=np.column_stack([lo, hi]),
        n_in_range=n_in_range,
        relative_completeness=completeness,
        expected_in_gap=expected,
        blank_reason=tuple(reasons),
        scale=scale,
    )


def straightforward_counts(obs: Observable) -> np.ndarray:
    """The published algorithm as plain code: per covered range, masks and one ``numpy.histogram2d``
    over all reflections. The executable specification :func:`make_plots` is tested against, and the
    baseline the benchmarks time it against."""
    out = []
    for r in covered_ranges(obs.d_min):
        subset = obs.values[(obs.d >= r.d_min) & (obs.d <= r.d_max)]
        if r.partially_covered_by(obs.d_min):
            subset = np.append(subset, obs.values[-1])
        limits = np.percentile(subset, Y_PERCENTILES) if subset.size else (0, np.percentile(obs.values, EMPTY_RANGE_PERCENTILE))
        h, _, _ = np.histogram2d(obs.d, obs.values, bins=PLOT_SIZE, range=[[r.d_min, r.d_max], list(limits)])
        out.append(np.rot90(h))
    return np.array(out, dtype=np.float32).reshape(-1, PLOT_SIZE, PLOT_SIZE)


def standardise(counts: np.ndarray) -> np.ndarray:
    """Per-image standardisation of the published pipeline: (x − mean) / max(std, 1/80)."""
    c = counts.astype(np.float64)
    mean = c.mean(axis=(-2, -1), keepdims=True)
    std = np.maximum(c.std(axis=(-2, -1), keepdims=True), MIN_STD)
    return ((c - mean) / std).astype(np.float32)


@dataclass(frozen=True)
class _Tables:
    """Static data for a set of covered ranges: the range lookup table on d and the x edges."""

    cell_range: np.ndarray  # int8 per TABLE_STEP cell of d: position of the range near it, or -1
    x_edges: np.ndarray  # (n, 81) numpy.linspace(d_min, d_max, 81) per range


@lru_cache(maxsize=64)
def _tables(covered: tuple[IceRange, ...]) -> _Tables:
    top = max(r.d_max for r in covered)
    cell_range = np.full(int(top / TABLE_STEP) + 3, -1, np.int8)
    for k, r in enumerate(covered):  # one cell of margin each side absorbs float32 rounding of d / TABLE_STEP
        cell_range[max(int(r.d_min / TABLE_STEP) - 1, 0) : int(r.d_max / TABLE_STEP) + 2] = k
    x_edges = np.stack([np.linspace(r.d_min, r.d_max, PLOT_SIZE + 1) for r in covered])
    return _Tables(cell_range, x_edges)


def _sort_by_range_then_value(range_of: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort float32 values by (range, value) with one sort of uint64 keys (no argsort)."""
    bits = np.ascontiguousarray(vals, dtype=np.float32).view(np.uint32)
    negative = bits >> np.uint32(31) == 1
    sortable = np.where(negative, ~bits, bits | np.uint32(0x80000000))  # IEEE order as unsigned ints
    keys = np.sort((range_of.astype(np.uint64) << np.uint64(32)) | sortable.astype(np.uint64))
    low = (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    restored = np.where(low >> np.uint32(31) == 1, low & np.uint32(0x7FFFFFFF), ~low)
    return (keys >> np.uint64(32)).astype(np.intp), restored.view(np.float32)


def _grouped_percentiles(sorted_vals: np.ndarray, starts: np.ndarray, q: tuple[float, float]):
    """numpy.percentile (linear method) of each group of ``sorted_vals`` (sorted within groups).

    Reproduces numpy's arithmetic exactly (float32 differences, float64 interpolation weights), so the
    limits — and hence the histograms — equal the published ones. Empty groups give NaN.
    """
    count = np.diff(starts)
    if sorted_vals.size == 0:
        return np.full(count.size, np.nan), np.full(count.size, np.nan)
    out = []
    for quantile in q:
        virtual = (count - 1) * (np.float64(quantile) / 100.0)
        prev = np.floor(virtual)
        above = virtual >= count - 1
        gamma = np.where(above, virtual + 1.0, virtual - prev)  # numpy: previous index becomes -1
        prev_i = np.where(above, count - 1, prev).astype(np.intp)
        next_i = np.where(above, count - 1, prev + 1).astype(np.intp)
        safe = count > 0
        a = np.where(safe, sorted_vals[np.where(safe, starts[:-1] + prev_i, 0)], np.nan).astype(sorted_vals.dtype)
        b = np.where(safe, sorted_vals[np.where(safe, starts[:-1] + next_i, 0)], np.nan).astype(sorted_vals.dtype)
        diff = b - a
        res = np.add(a, diff * gamma)
        res = np.where(gamma >= 0.5, b - diff * (1 - gamma), res)
        out.append(res.astype(np.float64))
    return out[0], out[1]


def _bin_index(sample: np.ndarray, edges: np.ndarray, row: np.ndarray) -> np.ndarray:
    """0-based bin of each (finite) sample in its own row of ``edges``, −1 outside.

    The rules of numpy.histogramdd: ``searchsorted(edges[row], sample, side='right') - 1`` with the
    last edge inclusive, for all rows at once — an arithmetic guess (off by at most one bin)
    corrected by comparing with the real edges.
    """
    nb = edges.shape[1] - 1
    flat = edges.ravel()
    base = row * (nb + 1)
    first, last = flat[base], flat[base + nb]
    s = sample.astype(np.float64)
    guess = (s - first) * (nb / (last - first))
    np.floor(guess, out=guess)
    np.clip(guess, 0, nb - 1, out=guess)
    b = guess.astype(np.intp)
    at = base + b
    b += (s >= flat[at + 1]).view(np.int8) - (s < flat[at]).view(np.int8)
    b[s == last] = nb - 1  # the last edge is inclusive
    b[(s < first) | (s > last)] = -1
    return b


def _neighbour_density(d: np.ndarray, r: IceRange, data_d_min: float) -> float:
    """Reflections per unit of 1/d³ in the two shells next to a range (each as wide in 1/d³ as the
    range, clipped to the data). Merged data fill reciprocal space uniformly, so this is what the
    range should hold; ice rings cut out during integration leave far fewer."""
    d_max_data = float(d.max())
    a, b = 1.0 / r.d_max**3, 1.0 / r.d_min**3
    width = b - a
    shells = [(max(a - width, 1.0 / d_max_data**3), a), (b, min(b + width, 1.0 / data_d_min**3))]
    count, volume = 0, 0.0
    for lo3, hi3 in shells:
        if hi3 > lo3:
            count += int(np.count_nonzero((d > hi3 ** (-1 / 3)) & (d < lo3 ** (-1 / 3))))
            volume += hi3 - lo3
    return count / volume if volume > 0 else float("nan")
