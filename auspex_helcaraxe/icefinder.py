"""The AUSPEX Icefinder score (Thorn et al. 2017), as the published Python AUSPEX computes it.

For one observable (I or F) the reflections are binned in 0.001 Å⁻¹ steps of 1/d; each bin's
standardised mean m = mean/σ (population σ) is compared with a robust, Gaussian-weighted estimate
from the neighbouring bins outside the ice ranges; score = (m − estimate)·√n. A bin inside an ice
range with |score| ≥ cutoff flags that range. Step by step (numbers refer to the specification in
``shared/reference/ICEFINDER.md``):

1. bins of 1/d, per bin n, mean 1/d² and m;   2. in-ice bins (mean 1/d² strictly inside a range);
3. windows of ±5 bin positions;                4. robust range of m in the window;
5. Gaussian-weighted estimate;                 6. fill the ends and the gaps;
7. score;                                      8. flags.

Everything is vectorised over reflections and bins. For parity with the published code the bin
numbers and the mean 1/d² are computed in float32 (as the published code does from gemmi's float32
d-spacings), the Gaussian weights are float32 as well, and all sums follow numpy's own pairwise
order (:func:`_segment_sums`): the per-bin arrays and scores match the published ones bit for bit
here (float32 ``exp`` may differ by an ulp on other CPUs; the parity test allows 1e-6).

Where we differ from the published code: it raises ``IndexError`` when the estimate has no gap to
interpolate in step 6 (it indexes the first gap without checking there is one); that happens on
data sets where every window keeps five usable bins, e.g. 3ifx-sf.cif (3.56 Å) and
brap_pk_6A_scaled2.mtz (6.0 Å, no bin in ice). Such data are valid and are scored here (the host
refuses brap for another reason: it reaches no ice range). ``score`` raises :class:`InputError`
only when no bin at all can be estimated (fewer than five usable bins in every window).
Note: ICEFINDER.md describes the last five windows as "shifted"; the published code (and its
reference values) clip them like the first five, which is what we do.

This module knows nothing about networks or plugins; :mod:`.detectors.icefinder` wraps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Sequence

import numpy as np

from .errors import InputError
from .ice_ranges import IceRange, ice_ranges
from .reflections import Observable

BIN_WIDTH = 0.001  # Å⁻¹, in 1/d
HALF_WINDOW = 5  # bin positions either side
MIN_WINDOW = 5  # usable positions a window needs for an estimate
DEFAULT_CUTOFF = 5.0

_INV_SQRT_2PI = 0.3989422804014327


@dataclass(frozen=True)
class IcefinderScore:
    """Per-bin Icefinder arrays for one observable (positions in increasing 1/d) and the verdicts.

    ``bins``: bin numbers floor((1/d)/0.001); ``count``: reflections per bin; ``mean_inv_d2``: mean
    1/d² (Å⁻², float32 as published); ``stdmean``: mean/σ of the observations (NaN when σ = 0);
    ``estimate``: the expected ``stdmean`` from the neighbours; ``score``: (stdmean − estimate)·√n;
    ``in_ice``: bin lies inside an ice range; ``flagged_ranges``: 1-based indices of the ranges
    holding a bin with |score| ≥ ``cutoff``.
    """

    bins: np.ndarray
    count: np.ndarray
    mean_inv_d2: np.ndarray
    stdmean: np.ndarray
    estimate: np.ndarray
    score: np.ndarray
    in_ice: np.ndarray
    flagged_ranges: list[int] = field(default_factory=list)
    cutoff: float = DEFAULT_CUTOFF

    @property
    def flagged(self) -> np.ndarray:
        """Per-bin flags: in ice and |score| ≥ cutoff (NaN scores never flag)."""
        with np.errstate(invalid="ignore"):
            return self.in_ice & (np.abs(self.score) >= self.cutoff)

    def bins_in(self, ice_range: IceRange) -> np.ndarray:
        """Boolean mask of the in-ice bins whose mean 1/d² lies within ``ice_range`` (inclusive)."""
        x = self.mean_inv_d2
        return self.in_ice & (x >= ice_range.inv_d2_low) & (x <= ice_range.inv_d2_high)


def score(
    observable: Observable,
    ranges: Sequence[IceRange] | None = None,
    cutoff: float = DEFAULT_CUTOFF,
) -> IcefinderScore:
    """The Icefinder score of one observable (steps 1–8 of the published method).

    ``ranges`` defaults to the 25 Auspex ice ranges. Raises :class:`InputError` when no bin can be
    estimated (too few bins outside the ice ranges, e.g. an empty observable); the published code
    fails there with an IndexError.
    """
    ranges = tuple(ice_ranges() if ranges is None else ranges)
    d = np.asarray(observable.d, dtype=np.float32)
    values = np.asarray(observable.values)
    if values.dtype.kind != "f":
        values = values.astype(np.float64)
    d_low, d_high = (d.min(), d.max()) if d.size else (np.float32(np.nan), np.float32(np.nan))
    if not (d_low > 0 and np.isfinite(d_high) and np.isfinite(values.sum())):  # else all rows are usable
        keep = np.isfinite(d) & (d > 0) & np.isfinite(values)
        d, values = d[keep], values[keep]
        if d.size == 0:
            raise InputError(f"Icefinder: no {observable.kind} observations to bin")
        d_low, d_high = d.min(), d.max()

    # 1. Bins (float32 like the published code), each bin in file order behind a zero slot
    # (_bin_layout), so that np.add.reduceat sums every bin exactly as numpy sums it on its own.
    bin_float = np.divide(np.float32(1.0), d)
    bin_float /= np.float32(BIN_WIDTH)
    np.floor(bin_float, out=bin_float)
    first_bin = np.floor((np.float32(1.0) / d_high) / np.float32(BIN_WIDTH))  # bins fall as d grows
    gather, seg, count, bins = _bin_layout(bin_float, int(first_bin))
    inv_d2 = np.multiply(d, d)
    np.divide(np.float32(1.0), inv_d2, out=inv_d2)
    inv_d2 = inv_d2[gather]
    inv_d2[seg] = 0.0
    obs = values[gather].astype(np.float64, copy=False)
    obs[seg] = 0.0
    present = count > 0  # bin numbers without reflections: sums over their padding slot only
    filled = np.where(present, count, 1)
    mean_inv_d2 = (np.add.reduceat(inv_d2, seg) / filled).astype(np.float32)
    obs_mean = np.add.reduceat(obs, seg) / filled
    obs -= np.repeat(obs_mean, count + 1)
    obs[seg] = 0.0
    obs *= obs
    variance = np.add.reduceat(obs, seg) / filled
    if not present.all():
        bins, count = bins[present], count[present]
        mean_inv_d2, obs_mean, variance = mean_inv_d2[present], obs_mean[present], variance[present]
    with np.errstate(invalid="ignore", divide="ignore"):
        stdmean = np.where(variance > 0, obs_mean / np.sqrt(variance), np.nan)

    # 2. Ice bins: mean 1/d² strictly inside a range.
    low, high = _bounds(ranges)
    x = mean_inv_d2.astype(np.float64)
    inside = (x[:, None] > low) & (x[:, None] < high)
    in_ice = inside.any(axis=1)

    estimate = _estimate(mean_inv_d2, stdmean, in_ice)
    if not np.isfinite(estimate).any():
        raise InputError(
            f"Icefinder: too few resolution bins outside the ice rings to estimate the {observable.kind} "
            f"background ({bins.size} bins of {BIN_WIDTH} Å⁻¹, {int((~in_ice & np.isfinite(stdmean)).sum())} "
            f"usable; a window needs {MIN_WINDOW})"
        )
    estimate = _fill(estimate, stdmean)
    score_ = (stdmean - estimate) * np.sqrt(count)

    # 8. Flags.
    with np.errstate(invalid="ignore"):
        flagged_bins = in_ice & (np.abs(score_) >= cutoff)
    fx = x[flagged_bins]
    hit = ((fx[:, None] >= low) & (fx[:, None] <= high)).any(axis=0)
    flagged_ranges = [r.index for r, h in zip(ranges, hit) if h]
    return IcefinderScore(
        bins=bins,
        count=count,
        mean_inv_d2=mean_inv_d2,
        stdmean=stdmean,
        estimate=estimate,
        score=score_,
        in_ice=in_ice,
        flagged_ranges=flagged_ranges,
        cutoff=float(cutoff),
    )


@lru_cache(maxsize=16)
def _windows(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Step 3: (n, 11) member positions and a mask of the real members (read-only, cached).

    Position i sees i−5 … i+5, clipped at both ends (0 … i+5 for the first five, i−5 … n−1 for
    the last five). The published code builds the last five as ``arange(n − 11 + j, n)`` for
    j = 1 … 5, which is the same clipped window (ICEFINDER.md calls it "shifted"; the reference
    values agree with clipping, see ``tests/test_icefinder.py``).
    """
    width = 2 * HALF_WINDOW + 1
    i = np.arange(n)
    first = np.maximum(i - HALF_WINDOW, 0)
    members = first[:, None] + np.arange(width)
    real = members <= np.minimum(i + HALF_WINDOW, n - 1)[:, None]
    members = np.minimum(members, n - 1)
    members.flags.writeable = False
    real.flags.writeable = False
    return members, real


@lru_cache(maxsize=8)
def _bounds(ranges: tuple[IceRange, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Low and high 1/d² of ``ranges`` as float64 arrays (read-only, cached)."""
    low = np.array([r.inv_d2_low for r in ranges], dtype=np.float64)
    high = np.array([r.inv_d2_high for r in ranges], dtype=np.float64)
    low.flags.writeable = False
    high.flags.writeable = False
    return low, high


def _estimate(x: np.ndarray, m: np.ndarray, in_ice: np.ndarray) -> np.ndarray:
    """Steps 3–5: the robust Gaussian-weighted estimate of ``m`` per position (NaN where none).

    ``x`` is the float32 mean 1/d² per bin. The Gaussian weights are computed in float32 and the
    sums are taken over each window's usable members in order with numpy's summation, as the
    published code does, so the estimates agree to the last bit on the same CPU. All windows are
    handled as one (n, 11) matrix; the usable members of all windows, taken row by row, are
    consecutive segments of one flat array (:func:`_consecutive_sums`).
    """
    n = m.size
    members, real = _windows(n)
    good = np.isfinite(m) & ~in_ice
    usable = real & good[members]
    k = np.count_nonzero(usable, axis=1)
    mw = m[members]

    # 4. Robust range from the sorted usable values (the others are NaN and sort last).
    ordered = np.sort(np.where(usable, mw, np.nan), axis=1)
    rows = np.arange(n)
    kk = np.maximum(k - 1, 0)
    lower = ordered[rows, np.ceil(0.25 * kk).astype(np.intp)]
    upper = ordered[rows, np.floor(0.75 * kk).astype(np.intp)]
    with np.errstate(invalid="ignore"):
        in_range = usable & (mw >= lower[:, None]) & (mw <= upper[:, None])

    # 5. Gaussian weights (float32) at bin i's mean 1/d², centred on each member's.
    root = np.sqrt(x) + np.float32(BIN_WIDTH)
    sd = (root * root - x) * np.float32(HALF_WINDOW) / np.float32(2.0)
    z = (x[:, None] - x[members]) / sd[:, None]
    z *= z
    z *= np.float32(-0.5)
    density = (np.float32(_INV_SQRT_2PI) / sd)[:, None] * np.exp(z, out=z)
    weight = np.where(in_range, density, np.float32(0.0))
    total = _consecutive_sums(weight[usable], k)
    with np.errstate(invalid="ignore", divide="ignore"):
        products = mw * (weight / total[:, None])
    est = _consecutive_sums(products[usable], k)
    ok = (k >= MIN_WINDOW) & np.isfinite(m) & (total != 0)
    return np.where(ok, est, np.nan)


def _fill(estimate: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Step 6: extend the estimate to the ends (the published 'a+1' quirk) and bridge gaps."""
    est = estimate.copy()
    size = est.size
    finite = np.flatnonzero(np.isfinite(est))
    a, b = finite[0], finite[-1]
    est[:a] = est[min(a + 1, size - 1)]  # sic: a+1, not a
    est[b + 1 :] = est[b]
    # Runs of NaN estimates over finite m: linear interpolation in position between the
    # estimates just before and just after the run (NaN stays NaN; the published code takes the
    # value "before" a run at position 0 from the last bin, which we keep).
    gap = np.isnan(est) & np.isfinite(m)
    if gap.any():
        run_start = gap & ~np.r_[False, gap[:-1]]
        run_id = np.cumsum(run_start) - 1
        before = np.flatnonzero(run_start) - 1
        after = np.minimum(np.flatnonzero(gap & ~np.r_[gap[1:], False]) + 1, size - 1)
        y0, y1 = est[before], est[after]  # before = -1 wraps to the last bin, as published
        step = (y1 - y0) / (after - before)
        r = run_id[gap]
        est[gap] = (np.flatnonzero(gap) - before[r]) * step[r] + y0[r]
    return est


def _bin_layout(bin_float: np.ndarray, first_bin: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group reflections by bin, each bin in file order, for exact per-bin sums.

    ``bin_float``: integer-valued bin numbers (float32), none below ``first_bin``. Returns
    ``gather``, ``seg`` and ``count`` for every bin number from ``first_bin`` to the highest (empty
    ones included): ``a[gather]`` lists bin after bin, each as one padding slot (``gather`` = -1,
    to be set to 0) followed by the bin's reflections in file order; ``seg`` is where each bin's
    padding slot lies. With the slots zeroed, ``np.add.reduceat(a[gather], seg)`` adds each bin
    exactly as ``a[bin].sum()`` does (see :func:`_consecutive_sums`).

    Bin offset and position + 1 are packed into one unsigned integer per reflection, plus one entry
    with position 0 per bin number for its padding slot, so a plain ``np.sort`` (SIMD quicksort;
    the keys are unique) does the work of the much slower stable ``argsort``.
    """
    n = bin_float.size
    if first_bin:
        bin_float = bin_float - np.float32(first_bin)
    n_bins = int(bin_float.max()) + 1
    position_bits = n.bit_length()  # positions 1 … n, 0 for the padding entries
    key_bits = n_bins.bit_length() if n_bins < 2**24 else 64
    if key_bits + position_bits > 64:  # d-spacings below 6e-5 Å (float32 offsets inexact): no packing
        numbers = bin_float.astype(np.int64)
        order = np.argsort(numbers, kind="stable")
        sorted_bins = numbers[order]
        starts = np.flatnonzero(np.r_[True, sorted_bins[1:] != sorted_bins[:-1]])
        count = np.diff(np.r_[starts, n])
        gather = np.full(n + starts.size, -1, dtype=np.intp)
        gather[np.arange(n) + np.repeat(np.arange(1, starts.size + 1), count)] = order
        return gather, starts + np.arange(starts.size), count, sorted_bins[starts] + first_bin
    utype = np.uint32 if key_bits + position_bits <= 32 else np.uint64
    shift = utype(position_bits)
    packed = np.empty(n + n_bins, dtype=utype)
    packed[:n] = bin_float
    packed[:n] <<= shift
    packed[:n] |= np.arange(1, n + 1, dtype=utype)
    pads = np.arange(n_bins, dtype=utype) << shift
    packed[n:] = pads
    packed.sort()
    seg = np.searchsorted(packed, pads)
    packed &= utype((1 << position_bits) - 1)
    gather = np.subtract(packed, 1, dtype=np.intp)  # the padding entries become -1
    count = np.diff(seg, append=packed.size) - 1
    return gather, seg, count, np.arange(first_bin, first_bin + n_bins, dtype=np.int64)


def _consecutive_sums(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sums of consecutive segments of ``values`` (lengths ``lengths``, in order, covering it all),
    each added exactly as ``segment.sum()`` does; empty segments sum to 0.

    numpy sums a contiguous array pairwise (8 interleaved accumulators per block of ≤128 elements,
    halves above that), so a plain running sum can differ in the last bit. ``np.add.reduceat``
    adds a segment as ``first + pairwise(rest)``; copied behind one exact zero each, the segments
    come out as ``0 + pairwise(segment)``, i.e. ``segment.sum()``.
    """
    size = lengths.size
    if size == 0:
        return np.zeros(0, dtype=values.dtype)
    seg = np.empty(size, dtype=np.intp)
    seg[0] = 0
    np.cumsum(lengths[:-1] + 1, out=seg[1:])
    padded = np.zeros(values.size + size, dtype=values.dtype)
    data = np.ones(padded.size, dtype=bool)
    data[seg] = False
    padded[data] = values
    return np.add.reduceat(padded, seg)


def _segment_sums(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sums of the segments ``values[s:s+n]``, each added exactly as ``values[s:s+n].sum()`` does."""
    lengths = np.asarray(lengths, dtype=np.intp)
    first = np.cumsum(lengths) - lengths
    source = np.arange(int(lengths.sum())) + np.repeat(np.asarray(starts, dtype=np.intp) - first, lengths)
    return _consecutive_sums(values[source], lengths)
