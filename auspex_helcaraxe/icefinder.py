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
_PW_BLOCK = 128  # numpy's PW_BLOCKSIZE: pairwise summation splits above this many elements


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
    values = np.asarray(observable.values, dtype=np.float64)
    keep = np.isfinite(d) & (d > 0) & np.isfinite(values)
    d, values = d[keep], values[keep]
    if d.size == 0:
        raise InputError(f"Icefinder: no {observable.kind} observations to bin")

    # 1. Bins (float32 like the published code), sorted stably so each bin keeps file order.
    bin_numbers = np.floor((np.float32(1.0) / d) / np.float32(BIN_WIDTH)).astype(np.int64)
    # Bin numbers are below 65536 for any d > 0.016 Å: uint16 makes numpy's stable sort a radix sort.
    small = bin_numbers.min() >= 0 and bin_numbers.max() < 2**16
    order = np.argsort(bin_numbers.astype(np.uint16) if small else bin_numbers, kind="stable")
    sorted_bins = bin_numbers[order]
    starts = np.flatnonzero(np.r_[True, sorted_bins[1:] != sorted_bins[:-1]])
    bins = sorted_bins[starts]
    count = np.diff(np.r_[starts, sorted_bins.size])
    inv_d2 = (np.float32(1.0) / d**2)[order]
    mean_inv_d2 = (_segment_sums(inv_d2, starts, count) / count).astype(np.float32)
    obs = values[order]
    obs_mean = _segment_sums(obs, starts, count) / count
    deviation = obs - np.repeat(obs_mean, count)
    variance = _segment_sums(deviation * deviation, starts, count) / count
    with np.errstate(invalid="ignore", divide="ignore"):
        stdmean = np.where(variance > 0, obs_mean / np.sqrt(variance), np.nan)

    # 2. Ice bins: mean 1/d² strictly inside a range.
    low = np.array([r.inv_d2_low for r in ranges])
    high = np.array([r.inv_d2_high for r in ranges])
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


def _windows(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Step 3: (n, 11) member positions and a mask of the real members.

    Position i sees i−5 … i+5, clipped at both ends (0 … i+5 for the first five, i−5 … n−1 for
    the last five). The published code builds the last five as ``arange(n − 11 + j, n)`` for
    j = 1 … 5, which is the same clipped window (ICEFINDER.md calls it "shifted"; the reference
    values agree with clipping, see ``tests/test_icefinder.py``).
    """
    width = 2 * HALF_WINDOW + 1
    i = np.arange(n)
    first = np.maximum(i - HALF_WINDOW, 0)
    members = first[:, None] + np.arange(width)
    return np.minimum(members, n - 1), members <= np.minimum(i + HALF_WINDOW, n - 1)[:, None]


def _estimate(x: np.ndarray, m: np.ndarray, in_ice: np.ndarray) -> np.ndarray:
    """Steps 3–5: the robust Gaussian-weighted estimate of ``m`` per position (NaN where none).

    ``x`` is the float32 mean 1/d² per bin. The Gaussian weights are computed in float32 and the
    sums are taken over each window's usable members in order with numpy's summation, as the
    published code does, so the estimates agree to the last bit on the same CPU.
    """
    n = m.size
    width = 2 * HALF_WINDOW + 1
    members, real = _windows(n)
    usable = real & np.isfinite(m[members]) & ~in_ice[members]
    # Usable members first, in window order (the published code drops the others before summing).
    members = np.take_along_axis(members, np.argsort(~usable, axis=1, kind="stable"), axis=1)
    k = usable.sum(axis=1)
    usable = np.arange(width) < k[:, None]
    mw = np.where(usable, m[members], np.nan)

    # 4. Robust range from the sorted usable values (NaN sorts last).
    ordered = np.sort(mw, axis=1)
    rows = np.arange(n)
    kk = np.maximum(k - 1, 0)
    lower = ordered[rows, np.ceil(0.25 * kk).astype(np.int64)]
    upper = ordered[rows, np.floor(0.75 * kk).astype(np.int64)]
    with np.errstate(invalid="ignore"):
        in_range = usable & (mw >= lower[:, None]) & (mw <= upper[:, None])

    # 5. Gaussian weights (float32) at bin i's mean 1/d², centred on each member's.
    width_inv_d = np.float32(BIN_WIDTH)
    root = np.sqrt(x) + width_inv_d
    sd = (root * root - x) * np.float32(HALF_WINDOW) / np.float32(2.0)
    z = (x[:, None] - x[members]) / sd[:, None]
    density = (np.float32(_INV_SQRT_2PI) / sd)[:, None] * np.exp(np.float32(-0.5) * z * z)
    weight = np.where(in_range, density, np.float32(0.0))
    starts = rows * width
    total = _segment_sums(weight.ravel(), starts, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = weight / total[:, None]
        products = np.where(usable, mw * ratio, 0.0)
    est = _segment_sums(products.ravel(), starts, k)
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


def _segment_sums(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sums of consecutive segments of ``values``, added in the order numpy's ``sum`` uses.

    numpy sums a contiguous array pairwise (8 interleaved accumulators per block of ≤128 elements,
    halves above that), so ``values[s:s+n].sum()`` can differ from a plain running sum in the last
    bit. Reproducing it keeps our float32 bin means bit-identical to the published ones, without a
    Python loop over bins (the loops below run at most 16 + 7 times per recursion level).
    """
    dtype = values.dtype
    out = np.empty(starts.size, dtype=dtype)
    big = lengths > _PW_BLOCK
    small = ~big
    out[small] = _leaf_sums(values, starts[small], lengths[small])
    if big.any():
        n = lengths[big]
        half = n // 2
        half -= half % 8
        out[big] = _segment_sums(values, starts[big], half) + _segment_sums(values, starts[big] + half, n - half)
    return out


def _leaf_sums(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """numpy's pairwise sum of segments of at most 128 elements.

    Each segment is scattered into a zero-padded row: its first ``n - n % 8`` elements (n ≥ 8) go
    to 8 lanes summed block by block, the rest is added one by one. Adding the padding zeros is
    exact, so one vectorised pass serves segments of every length.
    """
    size = starts.size
    blocked = np.where(lengths >= 8, lengths - lengths % 8, 0)
    n_blocks = int(blocked.max(initial=0)) // 8
    n_extra = int((lengths - blocked).max(initial=0))
    row = np.repeat(np.arange(size), lengths)
    pos = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    taken = values[np.repeat(starts, lengths) + pos]
    in_blocks = pos < blocked[row]
    blocks = np.zeros((size, max(n_blocks, 1) * 8), dtype=values.dtype)
    blocks[row[in_blocks], pos[in_blocks]] = taken[in_blocks]
    extra = np.zeros((size, max(n_extra, 1)), dtype=values.dtype)
    rest = ~in_blocks
    extra[row[rest], pos[rest] - blocked[row[rest]]] = taken[rest]
    lanes = blocks[:, :8].copy()
    for block in range(1, n_blocks):
        lanes += blocks[:, 8 * block : 8 * block + 8]
    total = ((lanes[:, 0] + lanes[:, 1]) + (lanes[:, 2] + lanes[:, 3])) + (
        (lanes[:, 4] + lanes[:, 5]) + (lanes[:, 6] + lanes[:, 7])
    )
    for k in range(n_extra):
        total += extra[:, k]
    return total
