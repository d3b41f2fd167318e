"""Ice rings in merged data: which rings, how integration goes wrong under them, and the ground
truth (which Auspex ranges show a visible spike)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from ..ice_ranges import ice_ranges
from .ice_lines import ice_lines

PLOT = 80
DISPLACED_FRACTION_OF_HEIGHT = 0.08  # only reflections moved by ≥ 8 % of the plot height count
MIN_AREA_FRACTION = 0.01  # visibly changed blocks must cover ≥ 1 % of the plot
BLOCK = 4  # pixels per block side when comparing the plot with and without ice
MIN_BLOCK_CHANGE = 3  # a block changed visibly: |Δcount| ≥ 3 and ≥ 2.5√(clean + 1)
MIN_STRIP_SHIFT, MIN_STRIP_REFLECTIONS = 0.05, 6  # a window of columns whose points moved as a whole
STRIP_WIDTHS = (1, 2, 4)  # window widths in 4-column strips (4, 8, 16 columns)
STRIP_SE = 3.0  # ... and by this many standard errors of the clean mean

EFFECTS = ("spike", "sigma", "partial", "oversubtracted", "excluded")


@dataclass(frozen=True)
class RangeTruth:
    """Ground truth of one Auspex range of one simulated data set.

    ``iced`` is True when the spike is visible in the plot of either observable (``labels`` gives it
    per observable, the rule is in docs/simulator.md). ``strength`` is the largest ice bias in the range
    in units of the local mean intensity (0 without ice). ``effects`` lists the ice effects present
    in the range, ``hard_negatives`` the non-ice artefacts, ``metrics`` the numbers behind the label.
    """

    index: int
    iced: bool
    labels: dict = field(default_factory=dict)
    strength: float = 0.0
    effects: tuple[str, ...] = ()
    hard_negatives: tuple[str, ...] = ()
    metrics: dict = field(default_factory=dict)

    def label(self, kind: str) -> bool:
        """The label for one observable ("I" or "F")."""
        return bool(self.labels.get(kind, self.iced))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["effects"], d["hard_negatives"] = list(self.effects), list(self.hard_negatives)
        return d


def merged_lines(d_min: float, phases: tuple[str, ...] = ("Ih", "Ic"), ic_fraction: float = 0.0) -> list[dict]:
    """Ice lines reachable at ``d_min``, coincident Ih/Ic lines merged, intensities mixed."""
    out: list[dict] = []
    for line in ice_lines():
        if line.d < d_min or line.phase not in phases:
            continue
        w = (1.0 - ic_fraction) if line.phase == "Ih" else ic_fraction
        if w <= 0:
            continue
        for o in out:
            if abs(o["d"] - line.d) < 0.004:
                o["rel"] += w * line.intensity
                break
        else:
            out.append({"d": line.d, "rel": w * line.intensity})
    top = max((o["rel"] for o in out), default=1.0)
    for o in out:
        o["rel"] /= top
    return out


def draw_rings(rng: np.random.Generator, d_min: float, d_max: float, opt: dict) -> list[dict]:
    """Pick the rings of one iced data set and their parameters (JSON-serialisable dicts).

    ``opt`` may fix: ``mode`` (one/few/all) or ``mode_p`` (their probabilities), ``lines`` (d values), ``strength`` (peak bias of the
    strongest ring in units of the local mean intensity), ``width`` (Gaussian σ of the profile in
    1/d, Å⁻¹), ``fraction`` (share of the observations affected: ice building up during the
    measurement affects the later images only), ``multiplicity`` (mean number of observations merged
    into one reflection), ``sign``, ``excluded``.
    """
    ic_fraction = opt.get("ic_fraction", float(rng.choice([0.0, 0.0, rng.uniform(0, 1), 1.0])))
    lines = [l for l in merged_lines(d_min, ic_fraction=ic_fraction) if l["d"] <= d_max]
    if opt.get("lines") is not None:
        lines = [min(lines or merged_lines(d_min), key=lambda l: abs(l["d"] - d)) | {"d": float(d)} for d in opt["lines"]]
    if not lines:
        return []
    mode = opt.get("mode", str(rng.choice(["one", "few", "all"], p=opt.get("mode_p", [0.25, 0.35, 0.4]))))
    if opt.get("lines") is None:
        rel = np.array([l["rel"] for l in lines])
        if mode == "one":
            lines = [lines[int(rng.choice(len(lines), p=rel / rel.sum()))]]
        elif mode == "few":
            k = int(min(len(lines), rng.integers(2, 7)))
            idx = rng.choice(len(lines), size=k, replace=False, p=rel / rel.sum())
            lines = [lines[i] for i in sorted(idx)]
    strength = float(opt.get("strength", np.exp(rng.uniform(np.log(0.1), np.log(100.0)))))
    gamma = float(rng.uniform(0.0, 0.5))  # how much weaker the weak lines are than the powder pattern
    fraction = opt.get("fraction")
    multiplicity = float(opt.get("multiplicity", np.exp(rng.uniform(np.log(1.5), np.log(10.0)))))
    accumulating = fraction is None and rng.random() < 0.3
    width_scale = float(np.exp(rng.uniform(np.log(0.0006), np.log(0.006))))
    sign = opt.get("sign")
    oversub = sign is None and rng.random() < 0.15
    rings = []
    for l in lines:
        rings.append({
            "d": float(l["d"]),
            "rel": float(l["rel"]),
            "amplitude": strength * float(l["rel"]) ** gamma * float(np.exp(rng.normal(0, 0.3))),
            "width": float(opt.get("width", width_scale * np.exp(rng.normal(0, 0.25)))),
            "shift": float(rng.normal(0, 0.0004)),  # detector distance / wavelength error, in 1/d
            "fraction": float(fraction if fraction is not None else (rng.uniform(0.05, 0.5) if accumulating else rng.uniform(0.6, 1.0))),
            "multiplicity": multiplicity,
            "sign": float(sign if sign is not None else (-rng.uniform(0.2, 0.6) if oversub and rng.random() < 0.7 else 1.0)),
            "sigma_inflation": float(rng.uniform(0.05, 0.6)),
            "excluded": bool(opt.get("excluded", False)),
            "exclude_halfwidth": float(rng.uniform(0.002, 0.012)),
        })
    return rings


MAX_MULTIPLICITY = 16


def merged_share(rng: np.random.Generator, n: int, ring: dict) -> np.ndarray:
    """Per merged reflection, the mean over its observations of (affected × overlap).

    Each reflection is merged from 1 + Poisson(multiplicity − 1) observations (≤ 16); each
    observation is affected with probability ``fraction`` and then carries a log-normal overlap (how
    much of the spot sits on the ring, σ = 0.5). Merging averages them, so high multiplicity gives a
    uniform lift and low multiplicity with partial ice a scatter of hit and missed reflections.
    """
    m = np.minimum(1 + rng.poisson(max(ring.get("multiplicity", 1.0) - 1.0, 0.0), n), MAX_MULTIPLICITY)
    width = int(m.max()) if n else 1
    obs = np.arange(width)[None, :] < m[:, None]
    hit = obs & (rng.random((n, width)) < ring["fraction"])
    overlap = np.exp(rng.normal(0.0, 0.5, (n, width)))
    return (hit * overlap).sum(axis=1) / m


def apply_rings(rng: np.random.Generator, s: np.ndarray, i_obs: np.ndarray, sig: np.ndarray,
                mean_at: Callable[[np.ndarray], np.ndarray], rings: list[dict]):
    """Contaminate intensities. Returns (I, σ, keep): ``keep`` False for reflections the integration
    program excluded. ``mean_at(s)`` is the local mean intensity in the data's units."""
    bias = np.zeros_like(i_obs, dtype=np.float64)
    extra_var = np.zeros_like(bias)
    keep = np.ones(s.shape, bool)
    for r in rings:
        s0 = 1.0 / r["d"] + r["shift"]
        near = np.abs(s - s0) < 6.0 * r["width"]
        if r["excluded"]:
            keep &= np.abs(s - s0) >= r["exclude_halfwidth"]
        idx = np.flatnonzero(near)
        if idx.size == 0:
            continue
        prof = np.exp(-0.5 * ((s[idx] - s0) / r["width"]) ** 2)
        b = r["sign"] * r["amplitude"] * float(mean_at(np.array([s0]))[0]) * prof * merged_share(rng, idx.size, r)
        bias[idx] += b
        extra_var[idx] += (r["sigma_inflation"] * b) ** 2
    noise = np.sqrt(extra_var) * rng.standard_normal(bias.shape)
    return i_obs + bias + noise, np.sqrt(sig * sig + extra_var), keep


def range_of(d: np.ndarray) -> np.ndarray:
    """Auspex range index (1..25) holding each d, 0 outside all ranges."""
    rs = ice_ranges()
    out = np.zeros(d.shape, np.int64)
    for r in rs:
        out[(d >= r.d_min) & (d <= r.d_max)] = r.index
    return out


def visibility(d: np.ndarray, clean: np.ndarray, iced: np.ndarray, lo: float, hi: float, y_limits: tuple[float, float]) -> dict:
    """Is the ice visible in one range's plot? The numbers behind the label.

    ``d``, ``clean``, ``iced``: the range's reflections before and after the ice (same reflections);
    ``lo``, ``hi``: the range in d; ``y_limits``: the iced plot's observation axis. A shift common
    to the whole range (the median shift) is removed first: the frame moves with it, so the eye
    cannot see it (and the strips' shifts are taken relative to their median). Both versions are
    binned in the iced plot's frame on a grid of 4×4-pixel blocks. Only reflections the ice moved
    by ≥ 8 % of the plot height count (small shifts are invisible); a block has changed visibly when
    those moves changed its count by ≥ 3 and by ≥ 2.5√(clean count + 1) (beyond the graininess an
    eye compares with). A window of 4, 8 or 16 columns whose points moved as a whole (mean height,
    out-of-frame points at the edge, relative to the median 4-column strip, shifted by ≥ 5 % of the
    plot height and ≥ 3 standard errors of the clean mean; ≥ 6 reflections) counts as changed in
    full. The spike is visible when the changed blocks cover ≥ 1 % of the
    plot area.
    """
    out = {"displaced": 0, "area": 0, "excess": 0, "visible": False}
    if d.size == 0:
        return out
    y0, y1 = y_limits
    yh = max(y1 - y0, 1e-12)
    # A shift common to the whole range moves the plot's frame with it and is invisible: remove it.
    common = float(np.median(iced - clean))
    clean = clean + common
    disp = np.abs(iced - clean) >= DISPLACED_FRACTION_OF_HEIGHT * yh
    out["displaced"] = int(disp.sum())
    if not disp.any():
        return out
    xb = np.clip(((d - lo) / (hi - lo) * PLOT).astype(np.int64), 0, PLOT - 1) // BLOCK
    nb = PLOT // BLOCK

    def blocks(v, sel):
        yb = np.floor((v[sel] - y0) / yh * PLOT)
        ok = (yb >= 0) & (yb < PLOT)
        return np.bincount(xb[sel][ok] * nb + yb[ok].astype(np.int64) // BLOCK, minlength=nb * nb)

    c = blocks(clean, np.ones(d.shape, bool))
    change = blocks(iced, disp) - blocks(clean, disp)
    diff = np.abs(change)
    changed = (diff >= MIN_BLOCK_CHANGE) & (diff >= 2.5 * np.sqrt(c + 1.0))
    # Windows of 4, 8 and 16 columns whose distribution moved as a whole (the spike's shape: points
    # lifted into the empty upper part, a hump of the bulk, or a gap left by points pushed out of the
    # frame): mean height shift (out-of-frame points clipped to the edge) relative to the median
    # 4-column strip ≥ 5 % of the height and ≥ 3 standard errors of the clean mean.
    yc = np.clip((clean - y0) / yh, -0.02, 1.02)
    yi = np.clip((iced - y0) / yh, -0.02, 1.02)
    sums = np.stack([np.bincount(xb, w, nb) for w in (np.ones_like(yc), yc, yc * yc, yi)])
    n0 = np.maximum(sums[0], 1)
    base = (sums[3] - sums[1]) / n0
    full = sums[0] >= MIN_STRIP_REFLECTIONS
    common = float(np.median(base[full])) if full.any() else 0.0
    moved = np.zeros(nb, bool)
    best = 0.0
    for width in STRIP_WIDTHS:
        win = np.stack([np.convolve(a, np.ones(width), "valid") for a in sums])
        n_w = np.maximum(win[0], 1)
        mean_c = win[1] / n_w
        sd_c = np.sqrt(np.maximum(win[2] / n_w - mean_c * mean_c, 1e-4))
        shift = (win[3] - win[1]) / n_w - common
        hit = (win[0] >= MIN_STRIP_REFLECTIONS) & (np.abs(shift) >= MIN_STRIP_SHIFT) & (np.abs(shift) >= STRIP_SE * sd_c / np.sqrt(n_w))
        best = max(best, float(np.abs(shift[win[0] >= MIN_STRIP_REFLECTIONS]).max(initial=0.0)))
        for k in np.flatnonzero(hit):
            moved[k : k + width] = True
    out["strip_shift"] = best
    changed = changed.reshape(nb, nb) | moved[:, None]
    out["area"] = int(changed.sum()) * BLOCK * BLOCK
    out["excess"] = int(diff[changed.ravel()].sum())
    out["visible"] = bool(out["area"] >= MIN_AREA_FRACTION * PLOT * PLOT)
    return out


def ring_strength_in_range(rings: list[dict], lo_s: float, hi_s: float) -> tuple[float, tuple[str, ...]]:
    """Largest ring amplitude reaching the range [lo_s, hi_s] (in 1/d) and the effects present."""
    strength, effects = 0.0, set()
    for r in rings:
        s0 = 1.0 / r["d"] + r["shift"]
        dist = 0.0 if lo_s <= s0 <= hi_s else min(abs(s0 - lo_s), abs(s0 - hi_s))
        reach = np.exp(-0.5 * (dist / r["width"]) ** 2)
        if r["excluded"] and (lo_s - r["exclude_halfwidth"] <= s0 <= hi_s + r["exclude_halfwidth"]):
            effects.add("excluded")
        if reach < 1e-3:
            continue
        amp = r["amplitude"] * reach * abs(r["sign"])
        strength = max(strength, amp)
        effects.add("oversubtracted" if r["sign"] < 0 else "spike")
        effects.add("sigma")
        if r["fraction"] < 0.55:
            effects.add("partial")
    return float(strength), tuple(e for e in EFFECTS if e in effects)
