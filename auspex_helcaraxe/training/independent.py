"""Independent contamination models and their evaluation (issue 9).

    python -m auspex_helcaraxe.training.independent [--draws 3] [--json OUT] [--md docs/evaluation.md] [--notes docs/independent_notes.md]

A second model of ice contamination, written from the physics of integration, scaling and merging
and deliberately sharing **no code** with :mod:`auspex_helcaraxe.simulate` (a test checks the
imports of this module). Contamination is injected into the held-out clean real data sets
(odd positions of :func:`data.background_split`, never seen in training) and the same plots are
scored by our networks, the published networks and Icefinder.

Families (physics and citations in docs/simulator.md, "Independent contamination models"):

``summation``   hexagonal ice Ih lines integrated by summation with a local background annulus:
                the ring in the peak region adds intensity, in the background region it is
                over-subtracted; the bias is the convolution of the ring profile with the
                (peak − scaled background) footprint and changes sign with the radial offset.
``growing``     ice forming during the experiment: only images after t0 carry the ring (growing
                linearly); each reflection's m observations are merged by inverse-variance mean
                after rejecting outliers > 4σ from the median; bias depends on multiplicity,
                sigma is inflated by the spread.
``overload``    very bright Ih rings: reflections on the ring core are rejected (overloaded /
                excluded, a gap), those on the wings are profile-fitted with part of the ring's
                Lorentzian tail absorbed (positive edge bias).
``cubic``       stacking-free cubic ice Ic (Fd-3m) lines, summation integration.
``amorphous``   low-density amorphous ice: one broad diffuse ring near 3.7 Å, summation
                integration (most of it is subtracted with the background; residual ∝ curvature,
                plus photon noise).

Strength of a plot = max |noise-free bias| over the reflections in the range / mean |I| of the clean
reflections in the range, computed in intensity (F² for amplitudes), as the issue defines it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..ice_ranges import IceRange, ice_ranges
from ..reflections import Observable, Reflections
from . import data as tdata

SEED = 90_000_009
STRENGTHS = (0.15, 0.3, 0.6, 1.0, 2.0, 4.0)
FAMILIES = ("summation", "growing", "overload", "cubic", "amorphous")
ICEFINDER_CUTOFF = 5.0  # as evaluate.py (AnalysisOptions default used there)

# ----------------------------------------------------------------------------- ice diffraction lines

# Hexagonal ice Ih, P6_3/mmc, ~100 K (Röttger, Endriss, Ihringer, Doyle & Kuhs 1994, Acta Cryst. B50,
# 644): a = 4.4975 Å, c = 7.3224 Å; O at 4f (1/3, 2/3, z), z = 1/16 (ideal tetrahedral).
IH_A, IH_C, IH_Z = 4.4975, 7.3224, 1.0 / 16.0
# Cubic ice Ic, Fd-3m (Dowell & Rinfret 1960, Nature 188, 1144; Kuhs, Bliss & Finney 1987,
# J. Phys. Colloq. 48, C1-631): a = 6.358 Å, O on the diamond sites.
IC_A = 6.358
# Low-density amorphous ice: first diffraction peak Q ≈ 1.69–1.71 Å⁻¹ (Bowron et al. 2006,
# J. Chem. Phys. 125, 194502; Moreau et al. 2021, Acta Cryst. D77, 540): d = 2π/Q ≈ 3.67–3.72 Å.
LDA_Q = (1.69, 1.71)
LDA_FWHM_S = (0.012, 0.03)  # Å⁻¹ in s = 1/d (FWHM in Q ≈ 0.08–0.19 Å⁻¹)

# Oxygen form factor (International Tables Vol. C, Table 6.1.1.4: a1..a4, b1..b4, c)
_OA = np.array([3.0485, 2.2868, 1.5463, 0.8670])
_OB = np.array([13.2771, 5.7011, 0.3239, 32.9089])
_OC = 0.2508
ICE_B = 2.0  # Å², Debye–Waller of ice at 100 K (order of magnitude)
WAVELENGTH = 1.0  # Å (only for the Lorentz–polarisation factor)


def _f_oxygen(s: np.ndarray) -> np.ndarray:
    x = (np.asarray(s, float) / 2.0) ** 2  # (sin θ / λ)² = (s/2)²
    return (_OA[None, :] * np.exp(-_OB[None, :] * x[:, None])).sum(1) + _OC


def _powder(s: np.ndarray, f2_mult: np.ndarray) -> np.ndarray:
    """Ring brightness per unit detector area (arbitrary units): m|F|² · DW · Lp / circumference."""
    sin_t = np.clip(s * WAVELENGTH / 2.0, 1e-6, 0.999)
    t = np.arcsin(sin_t)
    lp = (1 + np.cos(2 * t) ** 2) / (sin_t**2 * np.cos(t))
    return f2_mult * np.exp(-ICE_B * s * s / 2.0) * lp / np.sin(2 * t)


def _group_lines(s: np.ndarray, w: np.ndarray, tol: float = 2e-5) -> list[tuple[float, float]]:
    order = np.argsort(s)
    s, w = s[order], w[order]
    out: list[list[float]] = []
    for si, wi in zip(s, w):
        if out and si - out[-1][0] < tol:
            out[-1][1] += wi
        else:
            out.append([si, wi])
    return [(a, b) for a, b in out]


def ih_lines(d_min: float = 0.9) -> list[tuple[float, float]]:
    """(d in Å, relative brightness, strongest = 1) of the Ih powder lines with d ≥ d_min."""
    r = np.arange(-8, 9)
    h, k, l = (a.ravel() for a in np.meshgrid(r, r, r, indexing="ij"))
    s2 = 4.0 / 3.0 * (h * h + h * k + k * k) / IH_A**2 + l * l / IH_C**2
    keep = (s2 > 0) & (s2 <= 1 / d_min**2)
    h, k, l, s = h[keep], k[keep], l[keep], np.sqrt(s2[keep])
    sites = np.array([[1 / 3, 2 / 3, IH_Z], [2 / 3, 1 / 3, IH_Z + 0.5], [2 / 3, 1 / 3, -IH_Z], [1 / 3, 2 / 3, 0.5 - IH_Z]])
    ph = 2j * np.pi * (h[:, None] * sites[None, :, 0] + k[:, None] * sites[None, :, 1] + l[:, None] * sites[None, :, 2])
    f2 = np.abs(_f_oxygen(s) * np.exp(ph).sum(1)) ** 2  # every (hkl) counted once: multiplicity implicit
    lines = [(1 / a, b) for a, b in _group_lines(s, _powder(s, f2)) if b > 1e-6 * f2.max()]
    top = max(b for _, b in lines)
    return [(d, b / top) for d, b in sorted(lines, reverse=True) if b / top > 0.005]


def ic_lines(d_min: float = 0.9) -> list[tuple[float, float]]:
    """(d, relative brightness) of the Ic lines, normalised so the Ic (111) line has the brightness
    of an Ih line of the same total scattering (strongest Ic line = 1)."""
    r = np.arange(-8, 9)
    h, k, l = (a.ravel() for a in np.meshgrid(r, r, r, indexing="ij"))
    s2 = (h * h + k * k + l * l) / IC_A**2
    keep = (s2 > 0) & (s2 <= 1 / d_min**2)
    h, k, l, s = h[keep], k[keep], l[keep], np.sqrt(s2[keep])
    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    sites = np.concatenate([fcc, fcc + 0.25])
    ph = 2j * np.pi * (h[:, None] * sites[None, :, 0] + k[:, None] * sites[None, :, 1] + l[:, None] * sites[None, :, 2])
    f2 = np.abs(_f_oxygen(s) * np.exp(ph).sum(1)) ** 2
    lines = [(1 / a, b) for a, b in _group_lines(s, _powder(s, f2)) if b > 1e-6 * f2.max()]
    top = max(b for _, b in lines)
    return [(d, b / top) for d, b in sorted(lines, reverse=True) if b / top > 0.005]


# ----------------------------------------------------------------------------- integration kernels


def pseudo_voigt(u: np.ndarray, fwhm: float, eta: float) -> np.ndarray:
    """Ring profile across the ring (u in Å⁻¹ of s), peak value 1."""
    hw = fwhm / 2.0
    gauss = np.exp(-math.log(2.0) * (u / hw) ** 2)
    lor = 1.0 / (1.0 + (u / hw) ** 2)
    return (1 - eta) * gauss + eta * lor


@dataclass(frozen=True)
class Kernel:
    """Summation-integration response to a ring of unit peak brightness per unit area, as a function
    of the radial offset δ = s_reflection − s_ring: ``bias`` (peak minus scaled background) and
    ``var`` (ring counts entering the variance: peak + (A_p/A_b)² background), tabulated."""

    delta: np.ndarray
    bias: np.ndarray
    var: np.ndarray

    def __call__(self, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.interp(d, self.delta, self.bias, left=0.0, right=0.0),
                np.interp(d, self.delta, self.var, left=0.0, right=0.0))

    @property
    def reach(self) -> float:
        return float(self.delta[-1])


def summation_kernel(fwhm: float, eta: float, r_peak: float, r_in: float, r_out: float, n: int = 801) -> Kernel:
    """Peak region a disc of radius r_peak, background the annulus r_in–r_out (all in Å⁻¹ of s; the
    ring is locally a straight band across the spot). bias(δ) = [∫g(δ+x) h_p(x) dx − (A_p/A_b)
    ∫g(δ+x) h_b(x) dx] / A_p with h the chord lengths; = 1 when the ring fills the peak region only."""
    reach = r_out + 8.0 * fwhm * (1.0 + 4.0 * eta)
    x = np.linspace(-r_out, r_out, 601)
    dx = x[1] - x[0]
    hp = 2 * np.sqrt(np.clip(r_peak**2 - x * x, 0, None))
    hb = 2 * np.sqrt(np.clip(r_out**2 - x * x, 0, None)) - 2 * np.sqrt(np.clip(r_in**2 - x * x, 0, None))
    ap, ab = math.pi * r_peak**2, math.pi * (r_out**2 - r_in**2)
    wb, wv = hp - (ap / ab) * hb, hp + (ap / ab) ** 2 * hb
    delta = np.linspace(-reach, reach, n)
    g = pseudo_voigt(delta[:, None] + x[None, :], fwhm, eta)
    bias = (g * wb[None, :]).sum(1) * dx / ap
    var = (g * wv[None, :]).sum(1) * dx / ap
    return _sym(delta, bias, var)


def _sym(delta: np.ndarray, bias: np.ndarray, var: np.ndarray) -> Kernel:
    # the kernel is even in δ; keep it tabulated on the full axis but query with |δ|
    half = delta >= 0
    return Kernel(delta[half], bias[half], var[half])


# ----------------------------------------------------------------------------- contamination


@dataclass
class Draw:
    """One realisation of a family on one data set: what changed per observable."""

    family: str
    nominal: float
    params: dict[str, Any]
    reflections: Reflections
    strength: dict[str, dict[int, float]] = field(default_factory=dict)  # kind -> range -> realised strength
    reachable: bool = True


def _as_intensity(kind: str, v: np.ndarray, sg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if kind == "I":
        return v.astype(np.float64), sg.astype(np.float64)
    f = v.astype(np.float64)
    return f * f, 2.0 * np.abs(f) * sg.astype(np.float64)


def _amplitude(i: np.ndarray, si: np.ndarray) -> np.ndarray:
    """A smooth F from I (≈ √I for I ≫ σ, ≈ √(σ/√2) for I ≤ 0; a French–Wilson-like floor)."""
    return np.sqrt((i + np.sqrt(i * i + 2.0 * si * si)) / 2.0)


def _gain(i: np.ndarray, si: np.ndarray) -> float:
    """Variance per unit intensity of the data (photon-counting gain, σ² ≈ gain·I for strong data)."""
    strong = i > 3 * si
    if strong.sum() < 20:
        return float(np.median(si * si / np.maximum(np.abs(i), si)))
    return float(np.median(si[strong] ** 2 / i[strong]))


def _range_of(d: np.ndarray, ranges: tuple[IceRange, ...]) -> np.ndarray:
    out = np.full(d.size, -1, int)
    for r in ranges:
        out[(d >= r.d_min) & (d <= r.d_max)] = r.index
    return out


def _line_set(family: str, rng: np.random.Generator) -> tuple[list[tuple[float, float]], dict[str, Any]]:
    """Ring positions (s = 1/d) and relative brightness for one draw, plus profile parameters."""
    if family in ("summation", "growing", "overload"):
        base = ih_lines()
    elif family == "cubic":
        base = ic_lines()
    elif family == "amorphous":
        q = rng.uniform(*LDA_Q)
        return [(q / (2 * math.pi), 1.0)], {"fwhm": float(np.exp(rng.uniform(*np.log(LDA_FWHM_S)))),
                                          "eta": float(rng.uniform(0.0, 0.3)), "d_lda": 2 * math.pi / q}
    else:
        raise ValueError(family)
    # thermal expansion / temperature: lattice ±0.15 %; texture (preferred orientation of ice
    # crystallites) modulates each line's brightness log-normally (σ = 0.3).
    scale = 1.0 + rng.uniform(-0.0015, 0.0015)
    lines = [(1.0 / (d * scale), w * float(np.exp(rng.normal(0, 0.3)))) for d, w in base]
    # Scherrer: crystallite size L = 200–2000 Å → FWHM in s ≈ 0.9/L; plus beam/detector broadening.
    size = float(np.exp(rng.uniform(np.log(200.0), np.log(2000.0))))
    fwhm = math.hypot(0.9 / size, rng.uniform(2e-4, 8e-4))
    eta = float(rng.uniform(0.3, 0.7)) if family == "overload" else float(rng.uniform(0.0, 0.3))
    return lines, {"fwhm": fwhm, "eta": eta, "crystallite_A": size, "lattice_scale": scale}


def _geometry(rng: np.random.Generator) -> dict[str, float]:
    # pixel 75–172 µm at 100–400 mm, λ ≈ 1 Å → 1 px ≈ 2–8 × 10⁻⁴ Å⁻¹; spot radius 1.5–4 px,
    # background annulus from r_p + 1 px to 2–3.5 r_p (DIALS-/MOSFLM-like local background).
    px = float(np.exp(rng.uniform(np.log(2e-4), np.log(8e-4))))
    rp = px * rng.uniform(1.5, 4.0)
    return {"pixel": px, "r_peak": rp, "r_in": rp + px, "r_out": max(rp * rng.uniform(2.0, 3.5), rp + 2.5 * px)}


def _profile(lines, s: np.ndarray, kern_fn) -> tuple[np.ndarray, np.ndarray]:
    """Sum over lines of brightness × kernel(|s − s_line|): (bias, variance counts) per unit amplitude."""
    b = np.zeros_like(s)
    v = np.zeros_like(s)
    for (sl, w), kern in zip(lines, kern_fn):
        dd = np.abs(s - sl)
        near = dd < kern.reach
        if near.any():
            kb, kv = kern(dd[near])
            b[near] += w * kb
            v[near] += w * kv
    return b, v


class _Observation:
    """Per observable: clean intensity-space arrays and helpers."""

    def __init__(self, kind: str, obs: Observable, ranges: tuple[IceRange, ...]):
        self.kind, self.obs = kind, obs
        self.d = obs.d.astype(np.float64)
        self.s = 1.0 / self.d
        self.i, self.si = _as_intensity(kind, obs.values, obs.sigmas)
        self.rng_idx = _range_of(self.d, ranges)
        self.gain = _gain(self.i, self.si)
        self.local = {r.index: float(np.mean(np.abs(self.i[self.rng_idx == r.index]))) for r in ranges
                      if np.any(self.rng_idx == r.index)}

    def strengths(self, bias: np.ndarray, keep: np.ndarray) -> dict[int, float]:
        out = {}
        for idx, m in self.local.items():
            sel = (self.rng_idx == idx) & keep
            if sel.any() and m > 0:
                v = float(np.max(np.abs(bias[sel]))) / m
                if v > 0:
                    out[idx] = v
        return out


def _merge(x: np.ndarray, sx: np.ndarray, valid: np.ndarray, m: np.ndarray,
           reject: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-variance mean of the ``m`` valid observations per row after rejecting those > ``reject``
    σ from the median (rows with m ≥ 3 only); σ of the mean = max(internal 1/√Σw, external
    spread), as scaling programs report it."""
    xs = np.sort(np.where(valid, x, np.inf), axis=1)
    r = np.arange(x.shape[0])
    med = 0.5 * (xs[r, (m - 1) // 2] + xs[r, m // 2])
    ok = valid & ((np.abs(x - med[:, None]) <= reject * sx) | (m < 3)[:, None])
    ok |= valid & (ok.sum(1) == 0)[:, None]  # never reject everything
    w = np.where(ok, 1.0 / (sx * sx), 0.0)
    sw = w.sum(1)
    xo = np.where(ok, x, 0.0)
    mean = (w * xo).sum(1) / sw
    n = ok.sum(1)
    ext = np.sqrt(np.where(n > 1, (w * (xo - mean[:, None]) ** 2).sum(1) / np.maximum(n - 1, 1) / sw, 0.0))
    return mean, np.maximum(1.0 / np.sqrt(sw), ext)


def contaminate(reflections: Reflections, family: str, strength: float, seed: int | np.random.Generator,
                ranges: tuple[IceRange, ...] | None = None) -> Draw:
    """Inject one draw of ``family`` into ``reflections`` at nominal ``strength``: per observable, the
    most strongly contaminated covered range has max |noise-free bias| / mean |I| = ``strength`` in
    its shell; the other lines follow their relative brightness (so every plot has strength ≤
    ``strength``). Deterministic for a given seed."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}")
    rng = np.random.default_rng(seed)
    ranges = ranges or ice_ranges()
    lines, prof = _line_set(family, rng)
    geo = _geometry(rng)
    params: dict[str, Any] = {**prof, **geo}
    kern = summation_kernel(prof["fwhm"], prof["eta"], geo["r_peak"], geo["r_in"], geo["r_out"])
    if family == "overload":
        # profile fitting: the wings of the ring under the spot are partly fitted as spot intensity
        absorb = float(rng.uniform(0.2, 0.8))
        core = float(rng.uniform(0.6, 1.2)) * (prof["fwhm"] / 2 + geo["r_peak"])
        saturate = float(rng.uniform(0.2, 0.6))  # lines brighter than this × the brightest saturate
        params.update(absorb=absorb, core_halfwidth=core, saturate=saturate)
        delta = np.linspace(0.0, core + 12 * prof["fwhm"] * (1 + 4 * prof["eta"]), 801)
        g = pseudo_voigt(delta, prof["fwhm"], prof["eta"])
        kern = Kernel(delta, np.where(delta >= core, absorb * g, 0.0), np.where(delta >= core, absorb * g, 0.0))
    if family == "growing":
        params.update(multiplicity=float(np.exp(rng.uniform(np.log(2.0), np.log(12.0)))),
                      t0=float(rng.uniform(0.2, 0.9)))
    kinds = [k for k in ("I", "F") if k in reflections.observables and len(reflections.observables[k])]
    obs = {k: _Observation(k, reflections.observables[k], ranges) for k in kinds}
    # the strongest contaminated plot of each observable gets the requested strength; the other
    # lines follow their relative brightness (weaker relative to the local mean, or stronger where
    # the protein's mean intensity has fallen off: they are then scaled down with the whole pattern)
    covered = set().union(*[set(o.local) for o in obs.values()]) if obs else set()
    r_by = {r.index: r for r in ranges}
    if not any(any(r_by[i].d_min - 0.02 <= 1 / sl <= r_by[i].d_max + 0.02 for i in covered) for sl, _ in lines):
        raise InputError("no ice line of this family near a covered range")
    rel = list(lines)
    if family == "overload":
        top = max(w for _, w in rel)
        rel = [(sl, w / top) for sl, w in rel if w / top >= params["saturate"]]
    new_obs: dict[str, Observable] = {}
    strengths: dict[str, dict[int, float]] = {}
    reachable = True
    for kind, o in obs.items():
        unit_b, unit_v = _profile(rel, o.s, [kern] * len(rel))
        keep = np.ones(o.s.size, bool)
        if family == "overload":
            for sl, _ in rel:
                keep &= np.abs(o.s - sl) >= params["core_halfwidth"]
        in_rng = (o.rng_idx > 0) & keep & (unit_b != 0)
        if not in_rng.any():
            new_obs[kind] = o.obs
            continue
        loc = np.array([o.local.get(i, np.inf) for i in range(len(ranges) + 1)])
        if family == "growing":
            expected, realised, new_si, ok = _growing(o, unit_b, unit_v, params, strength, loc, in_rng, rng)
            reachable &= ok
        else:
            unit_st = np.abs(unit_b[in_rng]) / loc[o.rng_idx[in_rng]]
            amp = strength / float(np.max(unit_st))
            expected = amp * unit_b
            extra_var = o.gain * amp * unit_v
            realised = expected + rng.normal(0.0, 1.0, o.s.size) * np.sqrt(extra_var)
            new_si = np.sqrt(o.si * o.si + extra_var)
            params.setdefault("amplitude_over_max_local", {})[kind] = amp / max(o.local.values())
        touched = (expected != 0) & keep
        strengths[kind] = o.strengths(np.where(keep, expected, 0.0), keep)
        new_i = o.i + np.where(touched, realised, 0.0)
        new_si = np.where(touched, new_si, o.si)
        if kind == "I":
            v, sg = new_i, new_si
        else:
            f_old = o.obs.values.astype(np.float64)
            v = f_old + np.where(touched, _amplitude(new_i, new_si) - _amplitude(o.i, o.si), 0.0)
            v = np.where(touched, np.maximum(v, 1e-3 * np.abs(f_old).mean()), f_old)
            sg = np.where(touched, np.maximum(new_si / (2 * np.maximum(v, 1e-6)), o.obs.sigmas), o.obs.sigmas)
        v32, s32 = v.astype(np.float32), sg.astype(np.float32)
        ok = keep & np.isfinite(v32) & (v32 != 0) & (s32 > 0)
        v32 = np.where(touched, v32, o.obs.values)  # untouched reflections bit-identical
        s32 = np.where(touched, s32, o.obs.sigmas)
        hkl = None if o.obs.hkl is None else o.obs.hkl[ok].copy()
        new_obs[kind] = Observable(kind=kind, columns=o.obs.columns, d=o.obs.d[ok].copy(), values=v32[ok],
                                   sigmas=s32[ok], hkl=hkl)
    out = Reflections(source=reflections.source + f"+{family}", space_group=reflections.space_group,
                      cell=reflections.cell, n_reflections=sum(len(x) for x in new_obs.values()) // max(len(new_obs), 1),
                      observables={**reflections.observables, **new_obs})
    return Draw(family, strength, params, out, strengths, reachable)


def _growing(o: _Observation, unit_b, unit_v, params, strength, loc, in_rng, rng):
    """Ice on the images after t0 only (brightness growing linearly to 1 at the end): per reflection
    m ~ 1 + Poisson(M − 1) observations at random times, merged with outlier rejection. The per-image
    amplitude is found on a log grid + bisection so that the noise-free merged bias reaches
    ``strength`` in the strongest plot; rejection can make a strength unreachable (then the largest
    reached is used and the draw marked)."""
    aff = np.flatnonzero(unit_b != 0)
    n = aff.size
    mmax = 24
    m = np.minimum(1 + rng.poisson(params["multiplicity"] - 1.0, n), mmax)
    valid = np.arange(mmax)[None, :] < m[:, None]
    t = rng.uniform(0, 1, (n, mmax))
    g = np.clip((t - params["t0"]) / (1 - params["t0"]), 0, 1)
    s_obs = np.broadcast_to((o.si[aff] * np.sqrt(m))[:, None], (n, mmax))
    z = rng.normal(0, 1, (n, mmax))
    z2 = rng.normal(0, 1, (n, mmax))
    b1, v1 = unit_b[aff][:, None] * g, unit_v[aff][:, None] * g
    base_mean, base_sig = _merge(z * s_obs, s_obs, valid, m)
    sel = in_rng[aff]
    loc_sel = loc[o.rng_idx[aff][sel]]
    bs, vs, ss, vals, ms = b1[sel], v1[sel], s_obs[sel], valid[sel], m[sel]

    def st_for(amp):
        sx = np.sqrt(ss**2 + o.gain * amp * vs)
        e, _ = _merge(amp * bs, sx, vals, ms)
        return float(np.max(np.abs(e) / loc_sel))

    grid = float(np.min(loc_sel)) * np.exp(np.linspace(np.log(0.02), np.log(3000.0), 28))
    best_amp, best_st, lo = grid[-1], -1.0, None
    for k, amp in enumerate(grid):
        st = st_for(amp)
        if st > best_st:
            best_amp, best_st = amp, st
        if st >= strength:
            lo, hi = (grid[k - 1] if k else amp / 10), amp
            break
    if lo is not None:
        for _ in range(12):
            mid = math.sqrt(lo * hi)
            if st_for(mid) >= strength:
                hi = mid
            else:
                lo = mid
        amp = hi
    else:
        amp = best_amp
    sx = np.sqrt(s_obs**2 + o.gain * amp * v1)
    e, _ = _merge(amp * b1, sx, valid, m)
    noisy = amp * b1 + z * s_obs + z2 * np.sqrt(np.maximum(sx**2 - s_obs**2, 0))
    mean1, sig1 = _merge(noisy, sx, valid, m)
    expected = np.zeros_like(o.s)
    realised = np.zeros_like(o.s)
    new_si = o.si.copy()
    expected[aff] = e
    realised[aff] = mean1 - base_mean
    new_si[aff] = o.si[aff] * sig1 / base_sig
    params["per_image_amplitude_over_min_local"] = amp / float(np.min(loc_sel))
    return expected, realised, new_si, lo is not None


# ----------------------------------------------------------------------------- evaluation


def _edges(levels=STRENGTHS) -> np.ndarray:
    lv = np.asarray(levels, float)
    mids = np.sqrt(lv[:-1] * lv[1:])
    return np.concatenate([[lv[0] / math.sqrt(2)], mids, [lv[-1] * math.sqrt(2)]])


def held_out_backgrounds(real_dir: Path, log=None) -> list[tuple[str, Reflections]]:
    """``(name, reflections)`` of the readable held-out clean real data sets (``data.background_split``)."""
    return [(p.name, refl) for p, refl in tdata.read_paths(tdata.background_split(real_dir)[1], log)]


def family_draws(bases: list[tuple[str, Reflections]], family_index: int, family: str, strengths=STRENGTHS,
                 draws: int = 3, seed: int = SEED):
    """The seeded draws of one family over ``bases``: ``(nominal, background name, draw index, Draw)``,
    the Draw None where no line of the family reaches a covered range. Every evaluation of these
    models takes its draws from here, so the same arguments give the same draws."""
    for si, st in enumerate(strengths):
        for bi, (name, base) in enumerate(bases):
            for j in range(draws):
                try:
                    dr = contaminate(base, family, st, np.random.default_rng([seed, family_index, si, bi, j]))
                except InputError:
                    dr = None
                yield st, name, j, dr


def evaluate_independent(real_dir: Path | None = None, draws: int = 3, seed: int = SEED,
                         families=FAMILIES, strengths=STRENGTHS, log=None,
                         networks: str | None = None, joint: str | None = None) -> dict[str, Any]:
    """Score every detector on the clean held-out backgrounds and on ``draws`` contaminated copies
    per family × strength; also the product's data-set verdict (``host.Analysis.iced``: the joint
    I+F rule where it applies) with our networks from ``networks`` and the combiner card ``joint``
    (default: the shipped ones; a combiner fitted on other networks is not applied)."""
    from ..controls import discount_by_card, predictable_controls
    from ..host import Host
    from ..icefinder import score as icefinder_score
    from ..network import plots_by_scale, row_thresholds, scale_of
    from ..results import AnalysisOptions
    from .evaluate import contenders_from

    log = log or (lambda m: print(m, file=sys.stderr, flush=True))
    real_dir = tdata.real_dir(real_dir)
    if real_dir is None:
        raise InputError("no real data directory")
    contenders = contenders_from(networks, tdata.published_dir_beside(real_dir))  # networks None: shipped
    t_start = time.time()
    bases = held_out_backgrounds(real_dir, log)

    def ice_flags(refl: Reflections) -> dict[str, set[int]]:
        out = {}
        for kind, o in refl.observables.items():
            try:
                out[kind] = set(icefinder_score(o, cutoff=ICEFINDER_CUTOFF).flagged_ranges)
            except InputError:
                out[kind] = set()
        return out

    host = Host()
    options = AnalysisOptions(networks=networks, extra={"joint": joint} if joint else {})
    verdicts: list[dict[str, Any]] = []  # one per data set (clean or contaminated draw)

    def add_verdict(refl: Reflections, meta: dict) -> None:
        def iced(r: Reflections) -> tuple[bool, list[str]]:
            try:
                analysis = host.analyse(r, "both", options)
                return analysis.iced, sorted({v["by"] for v in analysis.decision().values()})
            except InputError:
                return False, []

        flag, by = iced(refl)
        entry = {**meta, "iced": bool(flag), "by": by, "observables": sorted(refl.observables)}
        if {"I", "F"} <= set(refl.observables):  # the same data set as a file with only I / only F
            entry["iced_only"] = {k: bool(iced(replace(refl, observables={k: refl.observables[k]}))[0])
                                  for k in ("I", "F")}
        verdicts.append(entry)

    # rows: one per scored plot
    rows: list[dict[str, Any]] = []
    pending: dict[str, list[int]] = {"I": [], "F": []}  # rows of predictable plots, per observable
    pending_x: dict[str, dict[str, list[np.ndarray]]] = {"I": {}, "F": {}}  # their inputs, per plot scale
    controls = {c: {"I": [], "F": []} for c in contenders}  # per pending plot, for cards with a control baseline

    def add_plots(refl: Reflections, meta: dict, select: dict[str, dict[int, float]] | None):
        flags = ice_flags(refl)
        for kind, o in refl.observables.items():
            if kind not in ("I", "F") or len(o) == 0:
                continue
            by_scale = plots_by_scale(o, [nets.get(kind) for nets in contenders.values()])
            plots = by_scale["linear"]  # ranges, sizes and predictability are the same on every scale
            pred = plots.predictable
            excised = plots.excised()
            inputs = None
            keep = np.zeros(len(plots.ranges), bool)
            for k, r in enumerate(plots.ranges):
                if select is not None:
                    st = select.get(kind, {}).get(r.index)
                    if st is None:
                        continue
                else:
                    st = 0.0
                row = {**meta, "kind": kind, "range": r.index, "strength": st, "predictable": bool(pred[k]),
                       "n": int(plots.n_in_range[k]),
                       "excised": bool(excised[k]), "Icefinder": bool(pred[k]) and r.index in flags.get(kind, set())}
                rows.append(row)
                if pred[k]:
                    if inputs is None:
                        inputs = {s: p.inputs for s, p in by_scale.items()}  # standardised once per observable
                    pending[kind].append(len(rows) - 1)
                    for s, x in inputs.items():
                        pending_x[kind].setdefault(s, []).append(x[k].copy())
                    keep[k] = True
            for c, nets in contenders.items():
                per_plot = predictable_controls(o, plots, nets[kind]) if kind in nets else None
                if per_plot is not None:
                    controls[c][kind] += [v for v, ok in zip(per_plot, keep[pred]) if ok]

    for name, base in bases:
        add_plots(base, {"dataset": name, "family": "clean", "nominal": 0.0, "draw": -1}, None)
        add_verdict(base, {"dataset": name, "family": "clean", "nominal": 0.0, "draw": -1})
    n_draws = n_unreach = n_fail = 0
    for fi, fam in enumerate(families):
        t0 = time.time()
        for st, name, j, dr in family_draws(bases, fi, fam, strengths, draws, seed):
            if dr is None:
                n_fail += 1
                continue
            n_draws += 1
            n_unreach += int(not dr.reachable)
            add_plots(dr.reflections, {"dataset": name, "family": fam, "nominal": st, "draw": j}, dr.strength)
            add_verdict(dr.reflections, {"dataset": name, "family": fam, "nominal": st, "draw": j})
        log(f"  {fam}: {time.time() - t0:.0f} s, {len(rows)} rows so far")
    # network predictions, batched
    probs = {c: np.full(len(rows), np.nan) for c in contenders}
    raw = np.full(len(rows), np.nan)  # ours before the control-window discount
    for kind in ("I", "F"):
        if not pending[kind]:
            continue
        idx = np.array(pending[kind])
        xs = {s: np.stack(v) for s, v in pending_x.pop(kind).items()}
        for c, nets in contenders.items():
            if kind in nets:
                x = xs[scale_of(nets[kind])]
                p = np.concatenate([nets[kind].predict(x[i : i + 256]) for i in range(0, len(x), 256)])
                probs[c][idx] = discount_by_card(p, controls[c][kind], nets[kind].card)
                if c == "ours":
                    raw[idx] = p
        log(f"  predicted {len(idx)} {kind} plots")
    kinds, sizes = np.array([r["kind"] for r in rows]), np.array([r["n"] for r in rows])
    thr = {c: {k: n.card.threshold for k, n in nets.items()} for c, nets in contenders.items()}
    per_plot = {c: row_thresholds(nets, kinds, sizes) for c, nets in contenders.items()}  # raised for sparse plots

    def at_least(p: np.ndarray, t) -> np.ndarray:
        return ~np.isnan(p) & (np.nan_to_num(p, nan=-1.0) >= t)

    detectors = {c: at_least(probs[c], per_plot[c]) for c in contenders}
    detectors["ours@0.5"] = at_least(probs["ours"], 0.5)
    detectors[NO_WINDOWS] = at_least(raw, per_plot["ours"])
    detectors["Icefinder"] = np.array([r["Icefinder"] for r in rows])
    table = {"dataset": [r["dataset"] for r in rows], "family": [r["family"] for r in rows],
             "kind": [r["kind"] for r in rows], "range": [r["range"] for r in rows],
             "strength": [r["strength"] for r in rows], "nominal": [r["nominal"] for r in rows],
             "draw": [r["draw"] for r in rows], "predictable": [r["predictable"] for r in rows],
             "excised": [r["excised"] for r in rows],
             "flags": {d: v.tolist() for d, v in detectors.items()},
             "prob": {c: [None if np.isnan(x) else round(float(x), 5) for x in v] for c, v in probs.items()},
             "verdict": verdicts}
    meta = {"thresholds": thr, "draws": draws, "seed": seed, "n_datasets": len(bases), "n_draws": n_draws,
            "n_unreachable": n_unreach, "n_no_line_in_range": n_fail,
            "sha256": {c: {k: n.card.sha256 for k, n in nets.items()} for c, nets in contenders.items()}}
    res = summarise(table, meta, families, strengths)
    res["wall_s"] = time.time() - t_start
    res["date"] = tdata.utc_now()
    res["rows"] = table
    return res


BOOTSTRAP = 300
NO_WINDOWS = "ours, no windows"  # our networks at their card thresholds without the control-window discount
VERDICT = "ours verdict"  # the data-set verdict of the product (joint I+F rule where it applies)


def summarise(table: dict[str, Any], meta: dict[str, Any], families=FAMILIES, strengths=STRENGTHS,
              bootstrap: int = BOOTSTRAP, seed: int = 0) -> dict[str, Any]:
    """All tables from the per-plot rows: specificity on the clean backgrounds, detection per
    affected plot (by the plot's own strength bin) and per data set (by nominal strength), S50 with
    a bootstrap over data sets (95 % percentile interval; ours vs published paired), worst family."""
    from .metrics import proportion, strength_at_half

    detectors = {d: np.asarray(v, bool) for d, v in table["flags"].items()}
    names = list(detectors)

    fam_a = np.asarray(table["family"])
    kind_a = np.asarray(table["kind"])
    pred_a = np.asarray(table["predictable"], bool)
    st_a = np.asarray(table["strength"], float)
    ds_a = np.asarray(table["dataset"])
    nom_a = np.asarray(table["nominal"], float)
    draw_a = np.asarray(table["draw"], int)
    exc_a = np.asarray(table.get("excised", [False] * len(fam_a)), bool)
    edges = _edges(strengths)
    bin_a = np.digitize(st_a, edges) - 1  # 0..5 inside, -1 / 6 outside

    res: dict[str, Any] = {**meta, "strengths": list(strengths), "edges": edges.tolist(), "detectors": names,
                           "families": list(families), "per_plot": {}, "per_dataset": {}, "s50": {},
                           "s50_ci": {}, "s50_ours_better": {}, "nonpredictable": {}, "excised": {},
                           "specificity": {}}
    all_ids = np.unique(ds_a)
    ds_code = np.searchsorted(all_ids, ds_a)
    boot = np.random.default_rng(seed).integers(0, all_ids.size, (bootstrap, all_ids.size))
    # weight of each data set in each bootstrap replicate
    wts = np.stack([np.bincount(b, minlength=all_ids.size) for b in boot]) if bootstrap else np.zeros((0, all_ids.size))
    # specificity on the unmodified backgrounds
    clean = fam_a == "clean"
    for kind in ("all", "I", "F"):
        m = clean & pred_a & ((kind_a == kind) if kind != "all" else True)
        res["specificity"].setdefault("per plot", {})[kind] = {d: proportion(int(np.sum(m & ~detectors[d])), int(m.sum())) for d in names}
    ids = np.unique(ds_a[clean])
    res["specificity"]["per data set"] = {d: proportion(int(sum(not np.any(detectors[d][clean & pred_a & (ds_a == i)]) for i in ids)), len(ids))
                                         for d in names}
    clean_flag = {d: {i: bool(np.any(detectors[d][clean & pred_a & (ds_a == i)])) for i in ids} for d in names}
    for fam in families:
        for kind in ("I", "F"):
            m = (fam_a == fam) & (kind_a == kind)
            if not m.any():
                continue
            key = f"{fam} {kind}"
            inb = m & (bin_a >= 0) & (bin_a < len(strengths))
            res["nonpredictable"][key] = proportion(int(np.sum(inb & ~pred_a)), int(np.sum(inb)))
            res["excised"][key] = proportion(int(np.sum(inb & ~pred_a & exc_a)), int(np.sum(inb & ~pred_a)))
            for d in names:
                cells = []
                for b in range(len(strengths)):
                    mm = m & pred_a & (bin_a == b)
                    cells.append(proportion(int(np.sum(detectors[d][mm])), int(mm.sum())))
                res["per_plot"].setdefault(key, {})[d] = cells
                curve = {"centre": np.asarray(strengths, float),
                         "rate": np.array([c["value"] if c["n"] >= 5 else np.nan for c in cells])}
                res["s50"].setdefault(key, {})[d] = strength_at_half(curve)
                # bootstrap over data sets
                sel = m & pred_a & (bin_a >= 0) & (bin_a < len(strengths))
                code, bb, ff = ds_code[sel], bin_a[sel], detectors[d][sel]
                nb = len(strengths)
                n_mat = np.zeros((all_ids.size, nb))
                k_mat = np.zeros((all_ids.size, nb))
                np.add.at(n_mat, (code, bb), 1)
                np.add.at(k_mat, (code, bb), ff.astype(float))
                nn, kk = wts @ n_mat, wts @ k_mat
                vals = []
                for i in range(len(wts)):
                    with np.errstate(invalid="ignore", divide="ignore"):
                        rate = np.where(nn[i] >= 5, kk[i] / np.maximum(nn[i], 1), np.nan)
                    v = strength_at_half({"centre": np.asarray(strengths, float), "rate": rate})
                    vals.append(math.inf if math.isnan(v) else v)
                res.setdefault("_boot", {}).setdefault(key, {})[d] = np.array(vals)
                if vals:
                    lo, hi = np.percentile(np.minimum(vals, 1e9), [2.5, 97.5])
                    res["s50_ci"].setdefault(key, {})[d] = [float(x) if x < 1e8 else math.inf for x in (lo, hi)]
        # per data set: the draw flagged when any plot of the contaminated data set is flagged
        # (unaffected plots are identical to the clean ones and reuse their verdicts)
        for d in names:
            cells = []
            for st in strengths:
                m = (fam_a == fam) & (nom_a == st)
                keys = sorted({(a, b) for a, b in zip(ds_a[m], draw_a[m])})
                k = 0
                for a, b in keys:
                    mm = m & (ds_a == a) & (draw_a == b) & pred_a
                    k += int(np.any(detectors[d][mm]) or clean_flag[d].get(a, False))
                cells.append(proportion(k, len(keys)))
            res["per_dataset"].setdefault(fam, {})[d] = cells
    verdicts = table.get("verdict") or []
    if verdicts:  # the product's one verdict per data set (host.Analysis.iced), ours only
        v_fam = np.array([v["family"] for v in verdicts])
        v_nom = np.array([v["nominal"] for v in verdicts], float)
        v_ice = np.array([v["iced"] for v in verdicts], bool)
        m = v_fam == "clean"
        res["specificity"]["per data set"][VERDICT] = proportion(int(np.sum(m & ~v_ice)), int(m.sum()))
        for fam in families:
            if fam in res["per_dataset"]:
                res["per_dataset"][fam][VERDICT] = [
                    proportion(int(np.sum(v_ice[(v_fam == fam) & (v_nom == st)])), int(np.sum((v_fam == fam) & (v_nom == st))))
                    for st in strengths]
        res["one_observable"] = _one_observable(verdicts, table, detectors, families, strengths)
    res["auc"] = _rank_aucs(table, families, strengths, fam_a, kind_a, pred_a, bin_a)
    worst: dict[str, Any] = {}
    for d in names:
        for kind in ("I", "F"):
            cand = [(res["s50"][f"{f} {kind}"][d], f) for f in families if f"{f} {kind}" in res["s50"]]
            if cand:
                def badness(x):
                    v, f = x
                    det = np.nanmean([c["value"] for c in res["per_plot"][f"{f} {kind}"][d] if c["n"]])
                    return (math.inf if math.isnan(v) else v, -det)
                v, f = max(cand, key=badness)
                worst[f"{d} {kind}"] = {"family": f, "s50": v}
    res["worst"] = worst
    for key, bd in res.pop("_boot", {}).items():
        if "ours" in bd and "published" in bd and len(bd["ours"]):
            res["s50_ours_better"][key] = float(np.mean(bd["ours"] < bd["published"]) + 0.5 * np.mean(bd["ours"] == bd["published"]))
    res["n_plots_scored"] = int(pred_a.sum())
    return res


def _rank_aucs(table, families, strengths, fam_a, kind_a, pred_a, bin_a) -> dict[str, dict[str, list]]:
    """Threshold-free comparison per family, observable and strength bin: for each network,
    P(p of an affected plot > p of a clean held-out plot of the same observable) (``rank_auc``;
    None where < 5 affected plots). Separates how well a network ranks weak ice above clean data
    from where its card puts the threshold."""
    from .metrics import rank_auc

    out: dict[str, dict[str, list]] = {}
    for c, pv in table.get("prob", {}).items():
        p = np.array([np.nan if x is None else x for x in pv], float)
        for fam in families:
            for kind in ("I", "F"):
                neg = p[(fam_a == "clean") & (kind_a == kind) & pred_a]
                m = (fam_a == fam) & (kind_a == kind) & pred_a
                if not m.any() or neg.size == 0:
                    continue
                cells = []
                for b in range(len(strengths)):
                    pos = p[m & (bin_a == b)]
                    cells.append(round(rank_auc(pos, neg), 4) if pos.size >= 5 else None)
                out.setdefault(f"{fam} {kind}", {})[c] = cells
    return out


def card_metrics(res: dict[str, Any], detector: str = "ours") -> dict[str, dict[str, Any]]:
    """What a model card carries from this evaluation, per observable: S50 per family (with its 95 %
    bootstrap interval), detection per plot at each strength, the worst family, and the specificity on
    the unmodified held-out backgrounds. Only ``detector``'s own numbers (the published networks' are
    in docs/evaluation.md)."""
    out: dict[str, dict[str, Any]] = {}
    for kind in ("I", "F"):
        keys = [f for f in res["families"] if f"{f} {kind}" in res["s50"]]
        if not keys:
            continue
        worst = res.get("worst", {}).get(f"{detector} {kind}")
        out[kind] = {
            "command": res.get("command", ""),
            "data": (f"{len(res['families'])} contamination families written without the simulator's code "
                     f"(docs/simulator.md, 'Independent contamination models'), injected into {res['n_datasets']} "
                     f"held-out clean real data sets x {res['draws']} draws; strength = peak bias / local mean |I|"),
            "strengths": res["strengths"],
            "s50": {f: _finite(res["s50"][f"{f} {kind}"][detector]) for f in keys},
            "s50_ci95": {f: [_finite(x) for x in res.get("s50_ci", {}).get(f"{f} {kind}", {}).get(detector, [])]
                         for f in keys},
            "detection_per_plot": {f: [c["value"] if c["n"] else None for c in res["per_plot"][f"{f} {kind}"][detector]]
                                   for f in keys},
            "worst_family": None if worst is None else {"family": worst["family"], "s50": _finite(worst["s50"])},
            "specificity_clean_per_plot": res["specificity"]["per plot"][kind][detector],
            "specificity_clean_per_dataset": res["specificity"]["per data set"][detector],
        }
    return out


def _finite(x: float) -> float | str | None:
    """JSON-safe: NaN (never reached 50 %) -> None, inf -> "inf"."""
    x = float(x)
    return None if math.isnan(x) else ("inf" if math.isinf(x) else round(x, 4))


# ----------------------------------------------------------------------------- report

MD_BEGIN = "<!-- independent:begin -->"
MD_END = "<!-- independent:end -->"
SECTION_HEAD = "## Independent contamination models (not our simulator)"


def _cell(p: dict) -> str:
    return "–" if not p["n"] else f"{p['value']:.2f} ({p['k']}/{p['n']})"


def _s50(v: float, ci=None, first: float = STRENGTHS[0], last: float = STRENGTHS[-1]) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        s = f"> {last:g}"
    elif v <= first:
        s = f"≤ {first:g}"
    else:
        s = f"{v:.2g}"
    if ci is not None:
        lo, hi = ci
        f = lambda x: f"> {last:g}" if not math.isfinite(x) else (f"≤ {first:g}" if x <= first else f"{x:.2g}")
        s += f" [{f(lo)}, {f(hi)}]"
    return s


def markdown(res: dict[str, Any], command: str = "", notes: str = "") -> str:
    st = res["strengths"]
    names = res["detectors"]
    md = [SECTION_HEAD, "",
          MD_BEGIN.replace("begin", "generated-note"), "",
          (tdata.generated_by("auspex_helcaraxe.training.independent", res)
           + f"(seed {res['seed']}, {res['draws']} draws per family × strength × data set; wall time "
           f"{res['wall_s'] / 60:.1f} min on a shared 2-core machine). Command: `{command}`."), "",
          ("The contamination model is `auspex_helcaraxe/training/independent.py`, written from the physics of "
           "integration and merging without any code from `auspex_helcaraxe.simulate` (a test checks its imports); "
           "the families are described in [simulator.md](simulator.md#independent-contamination-models). "
           f"Backgrounds: the {res['n_datasets']} held-out clean real data sets (odd positions of "
           "`training.data.background_split`, never used in training). All three detectors score exactly the same "
           "plots; only plots the contamination touched are scored (untouched plots are bit-identical to the clean "
           "ones). Strength of a plot = max |noise-free bias| of its range / mean |I| of the clean reflections in the "
           "range (F² for amplitudes); plots are binned by their own strength (bins around "
           + ", ".join(f"{x:g}" for x in st) + ", edges at the geometric midpoints). Shipped thresholds: "
           + "; ".join(f"{c} " + ", ".join(f"{k} {v:g}" for k, v in sorted(t.items())) for c, t in res["thresholds"].items())
           + f"; `ours@0.5` = ours at 0.5"
           + (f"; `{NO_WINDOWS}` = ours at its thresholds without the control windows' discount (what the windows "
              "cost or save)" if NO_WINDOWS in names else "")
           + f"; Icefinder |score| ≥ {ICEFINDER_CUTOFF:g}. "
           f"{res['n_draws']} draws ({res['n_unreachable']} `growing` draws could not reach their strength because "
           f"rejection removed the ice; {res['n_no_line_in_range']} skipped: no line of the family in a covered range); "
           f"{res['n_plots_scored']} predictable plots scored."), ""]
    if notes:
        md += [notes.strip(), ""]
    md += ["### Specificity on the unmodified held-out backgrounds", "",
           "| unit | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for kind, row in res["specificity"]["per plot"].items():
        md.append(f"| plots ({kind}) | " + " | ".join(_cell(row[d]) for d in names) + " |")
    md.append("| data sets | " + " | ".join(_cell(res["specificity"]["per data set"][d]) for d in names) + " |")
    if VERDICT in res["specificity"]["per data set"]:
        md += ["", f"Data sets not iced by the product's verdict (`{VERDICT}`: `host.Analysis.iced`, the joint I+F "
               "rule where both observables were predicted, else each observable's deciding detector): "
               + _cell(res["specificity"]["per data set"][VERDICT]) + "."]
    md += ["", "### Strength at 50 % detection (per plot, log-interpolated; lower is better)", "",
           (f"Brackets: 95 % percentile interval from {BOOTSTRAP} bootstrap resamples of the data sets; "
            "*P(ours < published)*: fraction of resamples in which our S50 is lower (better) than the "
            "published networks' (0.5 = no difference). `> 4`: 50 % never reached in the bins; `≤ 0.15`: "
            "already reached in the weakest bin."), "",
           "| family | obs. | " + " | ".join(names) + " | P(ours < published) | affected plots nonpredictable | of those reported excised |",
           "|---|---|" + "---|" * (len(names) + 3)]
    for key in res["s50"]:
        fam, kind = key.split()
        md.append(f"| {fam} | {kind} | " + " | ".join(_s50(res["s50"][key][d], res.get("s50_ci", {}).get(key, {}).get(d)) for d in names)
                  + f" | {res.get('s50_ours_better', {}).get(key, float('nan')):.2f} | {_cell(res['nonpredictable'][key])}"
                  + f" | {_cell(res['excised'][key]) if key in res.get('excised', {}) else '–'} |")
    md += ["", "Worst family per detector (highest S50; ties by mean detection):", ""]
    for k, v in res["worst"].items():
        md.append(f"- {k}: **{v['family']}** (S50 {_s50(v['s50'])})")
    md += ["", "### Detection per affected plot, by strength bin", "",
           "| family | obs. | detector | " + " | ".join(f"{x:g}" for x in st) + " |", "|---|---|---|" + "---|" * len(st)]
    for key, per in res["per_plot"].items():
        fam, kind = key.split()
        for d in names:
            md.append(f"| {fam} | {kind} | {d} | " + " | ".join(_cell(c) for c in per[d]) + " |")
    if res.get("auc"):
        nets = sorted({c for per in res["auc"].values() for c in per}, key=lambda c: (c != "ours", c))
        md += ["", "### Threshold-free: ranking of affected plots above clean ones (AUC), by strength bin", "",
               ("P(a network's p for an affected plot > its p for a clean held-out plot of the same observable); "
                "1 = every affected plot ranked above every clean one, 0.5 = no better than chance; `–`: < 5 plots. "
                "It shows whether a gap in detection is the network's or its threshold's."), "",
               "| family | obs. | network | " + " | ".join(f"{x:g}" for x in st) + " |", "|---|---|---|" + "---|" * len(st)]
        for key, per in res["auc"].items():
            fam, kind = key.split()
            for c in nets:
                if c in per:
                    md.append(f"| {fam} | {kind} | {c} | " + " | ".join("–" if a is None else f"{a:.3f}" for a in per[c]) + " |")
    md += ["", "### Detection per data set (any plot flagged), by nominal strength", "",
           "| family | detector | " + " | ".join(f"{x:g}" for x in st) + " |", "|---|---|" + "---|" * len(st)]
    for fam, per in res["per_dataset"].items():
        for d in names + ([VERDICT] if VERDICT in per else []):
            md.append(f"| {fam} | {d} | " + " | ".join(_cell(c) for c in per[d]) + " |")
    one = res.get("one_observable") or {}
    if one:
        spec = one["specificity"]
        n = one.get("n_datasets") or {}
        counts = "; ".join(f"{k}: {n[k]['all']} data sets, {n[k]['both']} of them with I and F"
                           for k in ("I", "F") if k in n)
        md += ["", "### Files with only I or only F", "",
               ("Every held-out data set that carries the observable, as a file with only it: those with I and F "
                "judged again on each observable alone, those with one observable as they are (`ours verdict`: "
                "`host.Analysis.iced` on that observable alone: no joint rule; `published`: any of its plots of "
                f"that observable flagged){' (' + counts + ')' if counts else ''}. Clean held-out, not flagged: "
                + "; ".join(f"{k} {_cell(spec[k][VERDICT])} ours, {_cell(spec[k]['published'])} published" for k in ("I", "F"))
                + "."), "",
               "| family | obs. | detector | " + " | ".join(f"{x:g}" for x in st) + " |", "|---|---|---|" + "---|" * len(st)]
        for kind in ("I", "F"):
            for fam, per in one[kind].items():
                for d in ("published", VERDICT):
                    md.append(f"| {fam} | {kind} only | {d} | " + " | ".join(_cell(c) for c in per[d]) + " |")
    md.append("")
    md[2] = MD_BEGIN
    md.append(MD_END)
    return "\n".join(md) + "\n"


def _one_observable(verdicts: list[dict], table: dict[str, Any], detectors: dict[str, np.ndarray],
                    families, strengths) -> dict[str, Any]:
    """Every held-out data set that carries an observable, as a file with only that observable: the
    data sets with I and F judged again on each alone (``iced_only``), those with one observable as
    they are (``iced``); against the published networks' flags on that observable's plots (a draw's
    untouched plots reuse the clean data set's flags). Rows of runs before ``observables`` was recorded
    per verdict count the data sets with I and F only."""
    from .metrics import proportion

    if not any("iced_only" in v for v in verdicts) or "published" not in detectors:
        return {}
    out: dict[str, Any] = {}
    for kind in ("I", "F"):
        files, ours, pub_flag = _as_one_observable(verdicts, table, detectors, kind)
        clean = [v for v in files if v["family"] == "clean"]
        out.setdefault("specificity", {})[kind] = {
            VERDICT: proportion(sum(not ours(v) for v in clean), len(clean)),
            "published": proportion(sum(not pub_flag(v) for v in clean), len(clean))}
        out.setdefault("n_datasets", {})[kind] = {"both": sum("iced_only" in v for v in clean), "all": len(clean)}
        for fam in families:
            rows = {VERDICT: [], "published": []}
            for st in strengths:
                sel = [v for v in files if v["family"] == fam and v["nominal"] == st]
                rows[VERDICT].append(proportion(sum(ours(v) for v in sel), len(sel)))
                rows["published"].append(proportion(sum(pub_flag(v) for v in sel), len(sel)))
            out.setdefault(kind, {})[fam] = rows
    return out


def _as_one_observable(verdicts: list[dict], table: dict[str, Any], detectors: dict[str, np.ndarray], kind: str):
    """The verdicts of the files with only ``kind`` (:func:`_one_observable`), and two predicates on
    such a verdict: the product's verdict and the published networks' flag on that observable."""
    key_a = list(zip(table["dataset"], table["family"], table["nominal"], table["draw"]))
    kind_a, pred_a = np.asarray(table["kind"]), np.asarray(table["predictable"], bool)
    flagged = {key_a[i] for i in np.flatnonzero(detectors["published"] & pred_a & (kind_a == kind))}

    def ours(v: dict) -> bool:
        return v["iced_only"][kind] if "iced_only" in v else v["iced"]

    def pub_flag(v: dict) -> bool:
        own = (v["dataset"], v["family"], v["nominal"], v["draw"])
        return own in flagged or (v["dataset"], "clean", 0.0, -1) in flagged

    return [v for v in verdicts if "iced_only" in v or v.get("observables") == [kind]], ours, pub_flag


SIZE_EDGES = (400, 800, 2000)  # plot sizes (reflections) of the diagnosis by size


def diagnose(rows: dict[str, Any], real_dir: Path, weakest: float = 0.6) -> str:
    """Markdown: where the product wins and loses weak ice (0 < strength ≤ ``weakest``) against the
    published networks on a saved run's ``rows``: intensity-only files by background, and weak plots
    of each observable (overload left out: its plots are mostly blank) flagged by ``ours`` (the network
    per plot, discounted, at its card's thresholds) and ``published``, by the plot's size in its clean
    background."""
    from ..plots import make_plots

    detectors = {d: np.asarray(v, bool) for d, v in rows["flags"].items()}
    files, ours, pub_flag = _as_one_observable(rows["verdict"], rows, detectors, "I")
    weak = [v for v in files if v["family"] != "clean" and 0 < v["nominal"] <= weakest]
    out = [f"Intensity-only files, strengths ≤ {weakest}×: detected by ours / published", "",
           "| background | files | ours | published |", "|---|---|---|---|"]
    for name in sorted({v["dataset"] for v in weak}):
        sel = [v for v in weak if v["dataset"] == name]
        out.append(f"| `{name}` | {len(sel)} | {sum(map(ours, sel))} | {sum(map(pub_flag, sel))} |")
    sizes = {}
    for name, refl in held_out_backgrounds(real_dir):
        for kind, o in refl.observables.items():
            plots = make_plots(o)
            sizes.update({(name, kind, r.index): int(n) for r, n in zip(plots.ranges, plots.n_in_range)})
    n_a = np.array([sizes.get(k, 0) for k in zip(rows["dataset"], rows["kind"], rows["range"])])
    st_a, fam_a = np.asarray(rows["strength"], float), np.asarray(rows["family"])
    base = np.asarray(rows["predictable"], bool) & (st_a > 0) & (st_a <= weakest) & (fam_a != "overload")
    bins = np.digitize(n_a, SIZE_EDGES)
    labels = ([f"< {SIZE_EDGES[0]}"] + [f"{a}–{b}" for a, b in zip(SIZE_EDGES, SIZE_EDGES[1:])]
              + [f"≥ {SIZE_EDGES[-1]}"])
    out += ["", f"Weak plots (0 < strength ≤ {weakest}×, no overload) flagged per plot, by the plot's size in "
            "its clean background: ours / published (plots)", "", "| observable | " + " | ".join(labels) + " |",
            "|---|" + "---|" * len(labels)]
    for kind in ("I", "F"):
        cells = []
        for b in range(len(labels)):
            m = base & (np.asarray(rows["kind"]) == kind) & (bins == b)
            cells.append(f"{detectors['ours'][m].mean():.2f} / {detectors['published'][m].mean():.2f} ({int(m.sum())})"
                         if m.any() else "–")
        out.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def write_section(md_path: Path, section: str) -> None:
    """Replace the generated section in ``md_path`` (between the markers, heading included) or append it."""
    from .evaluate import replace_block

    replace_block(md_path, section, SECTION_HEAD, MD_END)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m auspex_helcaraxe.training.independent", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", default=None)
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--json", default=None)
    ap.add_argument("--md", default=None, help="write the generated section into this Markdown file")
    ap.add_argument("--notes", default=None, help="hand-written summary inserted at the top of the section")
    ap.add_argument("--from-json", default=None, help="re-render a saved --json result instead of evaluating")
    ap.add_argument("--networks", default=None, help="our networks from this directory (default: the shipped ones)")
    ap.add_argument("--joint", default=None, metavar="CARD",
                    help="I+F combiner card for the product's verdict (default: the shipped one; 'none': no joint rule)")
    ap.add_argument("--cards", default=None, metavar="DIR",
                    help="write our networks' numbers into their model cards in DIR (metrics.independent_model)")
    ap.add_argument("--diagnose", action="store_true",
                    help="with --from-json: print where the product wins and loses weak ice (by background, by plot "
                         "size; needs the real data for the plot sizes) instead of the section")
    a = ap.parse_args(argv)
    if a.diagnose:
        if not a.from_json:
            ap.error("--diagnose needs --from-json")
        print(diagnose(json.loads(Path(a.from_json).read_text())["rows"], tdata.require_real_dir(ap, a.real)))
        return 0
    if a.from_json:
        saved = json.loads(Path(a.from_json).read_text())
        res = summarise(saved["rows"], {k: saved[k] for k in ("thresholds", "draws", "seed", "n_datasets", "n_draws",
                                                               "n_unreachable", "n_no_line_in_range", "sha256")
                                        if k in saved},
                        tuple(saved["families"]), tuple(saved["strengths"]))
        res.update(wall_s=saved["wall_s"], rows=saved["rows"], **{k: saved[k] for k in ("date",) if k in saved})
        cmd = saved.get("command", "")
    else:
        real_dir = tdata.require_real_dir(ap, a.real)
        res = evaluate_independent(real_dir, a.draws, a.seed, tuple(a.families.split(",")), networks=a.networks,
                                   joint=a.joint)
        cmd = "python -m auspex_helcaraxe.training.independent " + " ".join(argv if argv is not None else sys.argv[1:])
        res["command"] = cmd.strip()
    notes = Path(a.notes).read_text() if a.notes else ""
    text = markdown(res, cmd.strip(), notes)
    print(text)
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=_json_default) + "\n")
    if a.md:
        write_section(Path(a.md), text)
    if a.cards:
        from .cards import update_metrics

        for path in update_metrics(a.cards, "independent_model", card_metrics(res),
                                   sha256=res.get("sha256", {}).get("ours")):
            print(f"wrote metrics.independent_model into {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
