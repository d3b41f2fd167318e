"""Simulated ice on top of an existing (real, ice-free) merged data set."""

from __future__ import annotations

import numpy as np

from ..ice_ranges import ice_ranges
from ..reflections import Observable, Reflections
from . import wilson
from .dataset import _local_mean, _rng, range_truth
from .ice import RangeTruth, apply_rings, draw_rings

ICE_OPTIONS = ("mode", "mode_p", "lines", "strength", "width", "fraction", "multiplicity", "sign", "excluded", "ic_fraction")


def add_ice(reflections: Reflections, seed: int | np.random.Generator = 0, **overrides) -> tuple[Reflections, dict[int, RangeTruth]]:
    """Add simulated ice rings to every observable of ``reflections`` (same model as the simulator).

    Intensities get the ring bias, noise and sigma inflation directly; amplitudes are converted to
    I = F², contaminated, and converted back by French–Wilson (only the affected reflections change).
    Reflections the integration would have excluded are dropped. ``overrides``: the ring options of
    :func:`ice.draw_rings` (mode, mode_p, lines, strength, width, fraction, multiplicity, sign, excluded,
    ic_fraction).
    Returns the new reflections (same order, source + "+ice") and the ground truth per covered range.
    """
    unknown = set(overrides) - set(ICE_OPTIONS)
    if unknown:
        raise TypeError(f"unknown ice options: {', '.join(sorted(unknown))}")
    rng = _rng(seed)
    d_all = np.concatenate([o.d for o in reflections.observables.values()])
    rings = draw_rings(rng, float(d_all.min()), float(d_all.max()), dict(overrides))
    observables, clean = {}, {}
    for kind, obs in reflections.observables.items():
        d = obs.d.astype(np.float64)
        s = 1.0 / d
        v, sg = obs.values.astype(np.float64), obs.sigmas.astype(np.float64)
        ones = np.ones_like(s)
        if kind == "I":
            est = _local_mean(s, v, ones)
            new_i, new_s, keep = apply_rings(rng, s, v, sg, est, rings)
            new_v = new_i
        else:
            i_f, s_if = v * v, 2.0 * np.abs(v) * sg
            est = _local_mean(s, i_f, ones)
            new_i, new_si, keep = apply_rings(rng, s, i_f, s_if, est, rings)
            changed = new_i != i_f
            new_v, new_s = v.copy(), sg.copy()
            if changed.any():
                f, sf = wilson.french_wilson(new_i[changed], new_si[changed], est(s[changed]), np.zeros(int(changed.sum()), bool))
                new_v[changed], new_s[changed] = f, np.maximum(sf, sg[changed])
        new_v = new_v.astype(np.float32)
        new_s = new_s.astype(np.float32)
        ok = keep & (new_v != 0) & (new_s > 0) & np.isfinite(new_v)
        observables[kind] = Observable(kind=kind, columns=obs.columns, d=obs.d[ok], values=new_v[ok], sigmas=new_s[ok])
        clean[kind] = obs.values[ok]
    out = Reflections(source=reflections.source + "+ice", space_group=reflections.space_group, cell=reflections.cell,
                      n_reflections=reflections.n_reflections, observables=observables)
    return out, range_truth(out, clean, rings)


def vary_background(reflections: Reflections, seed: int | np.random.Generator = 0, *,
                    keep: tuple[float, float] = (0.25, 1.0), p_subsample: float = 0.7,
                    jitter: float = 0.5, p_cut: float = 0.4, cut_margin: float = 0.02) -> Reflections:
    """Another plausible measurement of the same clean crystal, for training backgrounds.

    With probability ``p_cut`` the data are cut at a resolution inside one of the ice ranges they
    cover (± ``cut_margin`` Å; uniform over those ranges): users cut their data anywhere, and a
    cut-off inside a range leaves its plot with empty columns on the high-resolution side, which
    a network can take for an excluded ring (the real clean F false positives of the weak-label
    candidates sat on such edges; docs/independent_notes.md).

    With probability ``p_subsample`` a random fraction of the reflections (log-uniform in ``keep``;
    a less complete or smaller data set, hence sparser plots) is kept, and every value gets extra
    Gaussian noise of ``u`` × its sigma, ``u`` uniform in [0, ``jitter``] (a noisier measurement;
    sigmas inflated to match; amplitudes that would turn ≤ 0 are dropped, as the filter would).
    The same subset of reflection positions is kept in every observable of equal length.
    """
    rng = _rng(seed)
    d_cut = 0.0
    if rng.random() < p_cut:
        d_all = np.concatenate([o.d for o in reflections.observables.values()])
        lo = float(d_all.min())
        covered = [r for r in ice_ranges() if r.d_max > lo]
        if covered:
            r = covered[int(rng.integers(len(covered)))]
            d_cut = float(rng.uniform(max(r.d_min - cut_margin, lo), r.d_max + cut_margin))
    frac = float(np.exp(rng.uniform(np.log(keep[0]), np.log(keep[1])))) if rng.random() < p_subsample else 1.0
    u = float(rng.uniform(0.0, jitter))
    masks: dict[int, np.ndarray] = {}
    observables = {}
    for kind, obs in reflections.observables.items():
        n = len(obs)
        if n not in masks:
            masks[n] = rng.random(n) < frac
        v = obs.values.astype(np.float64) + u * obs.sigmas * rng.standard_normal(n)
        sg = obs.sigmas.astype(np.float64) * np.sqrt(1.0 + u * u)
        ok = masks[n] & (v != 0) & (obs.d >= d_cut) & ((v > 0) if kind == "F" else True)
        observables[kind] = Observable(kind=kind, columns=obs.columns, d=obs.d[ok], values=v[ok].astype(np.float32),
                                       sigmas=sg[ok].astype(np.float32),
                                       hkl=None if obs.hkl is None else obs.hkl[ok])
    return Reflections(source=reflections.source + "+varied", space_group=reflections.space_group,
                       cell=reflections.cell, n_reflections=reflections.n_reflections, observables=observables)
