"""Ice rings in merged data: which rings, how integration goes wrong under them, and the ground
truth (which Auspex ranges show a visible spike)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from ..ice_ranges import ice_ranges
from .ice_lines import ice_lines

PLOT = 80
DISPLACED_FRACTION_OF_HEIGHT = 0.15  # |shift| ≥ this × clean plot height → a displaced reflection
MIN_AREA_FRACTION = 0.01  # displaced reflections must change ≥ 1 % of the plot's pixels
MIN_CONTRAST = 0.25  # ... and be ≥ 25 % of the reflections in the columns they occupy
MIN_DISPLACED = 8

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

    ``opt`` may fix: ``mode`` (one/few/all), ``lines`` (d values), ``strength`` (peak bias of the
    strongest ring in units of the local mean intensity), ``width`` (Gaussian σ of the profile in
    1/d, Å⁻¹), ``fraction`` (share of reflections affected), ``sign``, ``excluded``.
    """
    ic_fraction = opt.get("ic_fraction", float(rng.choice([0.0, 0.0, rng.uniform(0, 1), 1.0])))
    lines = [l for l in merged_lines(d_min, ic_fraction=ic_fraction) if l["d"] <= d_max]
    if opt.get("lines") is not None:
        lines = [min(lines or merged_lines(d_min), key=lambda l: abs(l["d"] - d)) | {"d": float(d)} for d in opt["lines"]]
    if not lines:
        return []
    mode = opt.get("mode", str(rng.choice(["one", "few", "all"], p=[0.35, 0.35, 0.3])))
    if opt.get("lines") is None:
        rel = np.array([l["rel"] for l in lines])
        if mode == "one":
            lines = [lines[int(rng.choice(len(lines), p=rel / rel.sum()))]]
        elif mode == "few":
            k = int(min(len(lines), rng.integers(2, 5)))
            idx = rng.choice(len(lines), size=k, replace=False, p=rel / rel.sum())
            lines = [lines[i] for i in sorted(idx)]
    strength = float(opt.get("strength", np.exp(rng.uniform(np.log(0.03), np.log(40.0)))))
    gamma = float(rng.uniform(0.2, 0.8))  # how much weaker the weak lines are than the powder pattern
    fraction = opt.get("fraction")
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
            "sign": float(sign if sign is not None else (-rng.uniform(0.2, 0.6) if oversub and rng.random() < 0.7 else 1.0)),
            "sigma_inflation": float(rng.uniform(0.05, 0.6)),
            "excluded": bool(opt.get("excluded", False)),
            "exclude_halfwidth": float(rng.uniform(0.002, 0.012)),
        })
    return rings


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
        hit = rng.random(idx.size) < r["fraction"]
        overlap = np.exp(rng.normal(0.0, 0.5, idx.size))  # how much of the spot sits on the ring
        b = r["sign"] * r["amplitude"] * float(mean_at(np.array([s0]))[0]) * prof * overlap * hit
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
    """Numbers behind the label of one range: displaced reflections, changed pixels, contrast.

    ``d``, ``clean``, ``iced``: the range's reflections (same reflections, before/after ice);
    ``y_limits``: the iced plot's observation axis (percentiles as in the plots).
    """
    if d.size == 0:
        return {"displaced": 0, "area": 0, "contrast": 0.0, "visible": False}
    c_lo, c_hi = np.percentile(clean, (0.5, 95.0))
    height = max(c_hi - c_lo, 1e-12)
    shift = iced - clean
    disp = np.abs(shift) >= DISPLACED_FRACTION_OF_HEIGHT * height
    n_disp = int(disp.sum())
    if n_disp == 0:
        return {"displaced": 0, "area": 0, "contrast": 0.0, "visible": False}
    xb = np.clip(((d - lo) / (hi - lo) * PLOT).astype(np.int64), 0, PLOT - 1)
    y0, y1 = y_limits
    yh = max(y1 - y0, 1e-12)

    def pix(v):
        yb = np.floor((v - y0) / yh * PLOT).astype(np.int64)
        ok = (yb >= 0) & (yb < PLOT)
        return np.bincount(xb[disp][ok] * PLOT + yb[ok], minlength=PLOT * PLOT)

    area = int(np.count_nonzero(pix(iced[disp]) != pix(clean[disp])))
    cols = np.zeros(PLOT, bool)
    cols[xb[disp]] = True
    contrast = n_disp / max(int(cols[xb].sum()), 1)
    visible = n_disp >= MIN_DISPLACED and area >= MIN_AREA_FRACTION * PLOT * PLOT and contrast >= MIN_CONTRAST
    return {"displaced": n_disp, "area": area, "contrast": float(contrast), "visible": bool(visible)}


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
