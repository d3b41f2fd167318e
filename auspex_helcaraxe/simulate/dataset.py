"""Simulated merged data sets: crystal → Wilson intensities → measurement → artefacts → F by
French–Wilson, returned exactly as ``readers.read`` would return them, with ground truth."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..ice_ranges import ice_ranges
from ..reflections import Observable, Reflections
from . import crystal, wilson
from .ice import RangeTruth, apply_rings, draw_rings, ring_strength_in_range, visibility

HARD_NEGATIVES = ("scale_step", "thin_band", "omit_range", "truncate_inside", "sparse", "outliers", "smooth_bump")
DEFAULT_MAX_REFLECTIONS = 60000
SIGMA_BIN = 400  # reflections per shell for the French–Wilson mean-intensity estimate


@dataclass(frozen=True)
class SimulatedDataset:
    """One simulated merged data set.

    ``reflections`` is what :func:`readers.read` returns for the MTZ written by :func:`write_mtz`;
    ``truth`` maps each covered Auspex range (1..25) to its :class:`RangeTruth`; ``params`` holds
    everything drawn (JSON-serialisable); ``miller`` the hkl of the rows; ``columns`` the row arrays
    (IMEAN, SIGIMEAN, F, SIGF; float32) before the reader's filter; ``clean`` the observables as they
    would be without ice (aligned with ``reflections.observables[kind].values``).
    """

    reflections: Reflections
    truth: dict[int, RangeTruth]
    params: dict
    miller: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    clean: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def iced_ranges(self) -> list[int]:
        return sorted(i for i, t in self.truth.items() if t.iced)


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _log_uniform(rng, lo, hi) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def draw_params(rng: np.random.Generator, overrides: dict[str, Any]) -> dict:
    """Every random choice of one data set (``overrides`` replaces any of them)."""
    o = dict(overrides)
    p: dict[str, Any] = {}

    def take(key, make):
        p[key] = o.pop(key) if key in o else make()
        return p[key]

    take("name", lambda: "sim")
    sg = take("space_group", lambda: crystal.draw_space_group(rng))
    take("cell", lambda: crystal.draw_cell(rng, sg))
    d_min = take("d_min", lambda: float(np.clip(np.exp(rng.normal(np.log(1.9), 0.28)), 0.9, 3.9)))
    take("d_max", lambda: float(rng.uniform(20.0, 60.0)))
    take("max_reflections", lambda: DEFAULT_MAX_REFLECTIONS)
    take("b_factor", lambda: float(np.clip(8.0 * d_min**2 * np.exp(rng.normal(0, 0.3)), 5.0, 80.0)))
    take("scale", lambda: _log_uniform(rng, 10.0, 1e5))
    take("curve", lambda: {"dip": float(rng.uniform(0.4, 1.4)), "bump": float(rng.uniform(0.3, 1.0)),
                           "dip_d": float(rng.uniform(5.5, 6.8)), "bump_d": float(rng.uniform(3.8, 4.5)),
                           "low_res": float(rng.uniform(0.5, 2.0))})
    take("intensity_scatter", lambda: float(rng.uniform(0.0, 0.4)) if rng.random() < 0.25 else 0.0)
    take("isig_edge", lambda: _log_uniform(rng, 1.1, 3.6))
    take("bg_slope", lambda: float(rng.uniform(-0.3, 0.05)))
    take("gain", lambda: _log_uniform(rng, 0.0005, 0.02))
    take("error_floor", lambda: float(rng.uniform(0.02, 0.07)))
    take("intensity_processing", lambda: str(rng.choice(["measured", "reject_negative", "from_amplitudes"], p=[0.8, 0.08, 0.12])))
    take("completeness", lambda: float(rng.uniform(0.85, 1.0)))
    take("missing_cone_deg", lambda: float(rng.uniform(5, 30)) if rng.random() < 0.35 else 0.0)
    take("missing_cone_axis", lambda: crystal.random_unit_vector(rng).tolist())
    take("outer_shell_start_d", lambda: float(d_min * rng.uniform(1.0, 1.25)))
    take("outer_completeness", lambda: float(rng.uniform(0.4, 1.0)))
    if take("anisotropic", lambda: bool(rng.random() < 0.3)):
        db = rng.uniform(-1, 1, 3) * rng.uniform(5, 30)
        q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
        take("aniso_b", lambda: (db - db.mean()).tolist())
        take("aniso_axes", lambda: q.tolist())
    # Hard negatives: non-ice artefacts in (or near) ice ranges.
    take("hard_negatives", lambda: [str(k) for k in rng.choice(HARD_NEGATIVES, size=rng.integers(1, 3), replace=False)]
         if rng.random() < 0.4 else [])
    covered = [r for r in ice_ranges() if r.d_max >= d_min]
    hn = {}
    for kind in p["hard_negatives"]:
        r = covered[int(rng.integers(len(covered)))] if covered else ice_ranges()[0]
        if kind == "scale_step":
            hn[kind] = {"d": float(rng.uniform(r.d_min, r.d_max)), "factor": float(rng.choice([-1, 1]) * rng.uniform(0.15, 0.5))}
        elif kind in ("thin_band", "omit_range"):
            w = (r.d_max - r.d_min) * (rng.uniform(0.1, 0.6) if kind == "thin_band" else rng.uniform(0.2, 1.5))
            c = float(rng.uniform(r.d_min, r.d_max))
            hn[kind] = {"d_low": c - w / 2, "d_high": c + w / 2, "keep": float(rng.uniform(0.1, 0.6)) if kind == "thin_band" else 0.0}
        elif kind == "truncate_inside":
            hn[kind] = {"d": float(rng.uniform(r.d_min, r.d_max))}
        elif kind == "sparse":
            hn[kind] = {"n": int(np.exp(rng.uniform(np.log(300), np.log(4000))))}
        elif kind == "outliers":
            hn[kind] = {"fraction": _log_uniform(rng, 0.0005, 0.01), "factor": _log_uniform(rng, 3, 30)}
        elif kind == "smooth_bump":
            hn[kind] = {"d": float(rng.uniform(r.d_min, r.d_max)), "width": float(rng.uniform(0.015, 0.05)),
                        "ln_amp": float(rng.choice([-1, 1]) * rng.uniform(0.3, 1.0))}
    take("hard_negative_params", lambda: hn)
    ice_opt = o.pop("ice", {})
    if ice_opt is False:
        ice_opt = {"probability": 0.0}
    present = take("iced", lambda: bool(rng.random() < ice_opt.get("probability", 0.6)))
    take("ice_rings", lambda: draw_rings(rng, d_min, p["d_max"], ice_opt) if present else [])
    if present and "excluded" not in ice_opt and rng.random() < 0.08:
        for ring in p["ice_rings"]:
            ring["excluded"] = bool(rng.random() < 0.7)
    if o:
        raise TypeError(f"unknown simulation parameters: {', '.join(sorted(o))}")
    return p


def _local_mean(s: np.ndarray, i_obs: np.ndarray, eps: np.ndarray):
    """Mean intensity per resolution shell estimated from the data (as truncate does), as a function.

    Shells of ~400 reflections in s; a shell whose mean is not positive falls back to 10⁻³ of its
    mean |I| (pure noise), so that the log-interpolation stays defined.
    """
    order = np.argsort(s)
    n_bins = max(1, s.size // SIGMA_BIN)
    starts = (np.arange(n_bins) * s.size) // n_bins
    counts = np.diff(np.append(starts, s.size))
    z = (i_obs / eps)[order]
    centres = np.add.reduceat(s[order], starts) / counts
    means = np.add.reduceat(z, starts) / counts
    floor = 1e-3 * np.add.reduceat(np.abs(z), starts) / counts + 1e-30
    log_means = np.log(np.maximum(means, floor))
    return lambda x: np.exp(np.interp(x, centres, log_means))


def simulate_dataset(seed: int | np.random.Generator = 0, **overrides) -> SimulatedDataset:
    """Simulate one merged data set with ground truth (see docs/simulator.md for the model).

    ``overrides`` fix any entry of ``params`` instead of drawing it, e.g. ``space_group="P 21 21 21"``,
    ``cell=(a, b, c, α, β, γ)``, ``d_min``, ``d_max``, ``b_factor``, ``scale``, ``isig_edge``,
    ``max_reflections``, ``anisotropic=False``, ``missing_cone_deg=0``, ``intensity_processing``
    ("measured", "reject_negative", "from_amplitudes"), ``hard_negatives=[...]`` (kinds of
    :data:`HARD_NEGATIVES`; with ``hard_negative_params={}`` for none), ``iced`` (bool), ``name``.
    ``ice`` passes ring options: ``False`` (no ice) or a dict with ``probability`` (of ice in the data
    set, default 0.6) and any of :func:`ice.draw_rings`' options (``mode``, ``mode_p``, ``lines``,
    ``strength``, ``width``, ``fraction``, ``multiplicity``, ``sign``, ``excluded``, ``ic_fraction``).
    Unknown keywords raise ``TypeError``.
    """
    rng = _rng(seed)
    p = draw_params(rng, overrides)
    hm, cell, d_min, d_max = p["space_group"], tuple(p["cell"]), p["d_min"], p["d_max"]
    cap = int(p["max_reflections"])
    hn = p["hard_negative_params"]
    if "sparse" in hn:
        cap = min(cap, hn["sparse"]["n"])
    # Very large unit cells: shrink the cell so that generating the unique set stays cheap; the set is
    # then thinned uniformly to the cap (as a lower completeness would).
    n_exp = crystal.expected_count(cell, hm, d_min, d_max)
    if n_exp > 3 * cap:
        f = (3 * cap / n_exp) ** (1 / 3)
        cell = tuple(x * f for x in cell[:3]) + tuple(cell[3:])
        p["cell_shrunk_by"] = float(f)
    cell = tuple(round(float(x), 4) for x in cell)  # as an MTZ header stores it (text, 4 decimals)
    p["cell"] = list(cell)
    hkl, uc = crystal.miller_set(cell, hm, d_min, d_max)
    if hkl.shape[0] > cap:
        hkl = hkl[np.sort(rng.choice(hkl.shape[0], cap, replace=False))]
    s_cart = crystal.reciprocal_cartesian(hkl, uc)
    s = np.sqrt((s_cart * s_cart).sum(1))
    keep = crystal.completeness_mask(rng, s_cart, s, p)
    if "truncate_inside" in hn:
        keep &= s <= 1.0 / hn["truncate_inside"]["d"]
    for kind in ("thin_band", "omit_range"):
        if kind in hn:
            band = (s >= 1.0 / hn[kind]["d_high"]) & (s <= 1.0 / hn[kind]["d_low"])
            keep &= ~band | (rng.random(s.shape) < hn[kind]["keep"])
    hkl, s_cart, s = hkl[keep], s_cart[keep], s[keep]
    centric, eps = crystal.symmetry_factors(hkl, hm)

    curve = dict(p["curve"])
    sigma_iso = wilson.mean_intensity(s, p["b_factor"], p["scale"], **curve)
    if "smooth_bump" in hn:
        b = hn["smooth_bump"]
        sigma_iso = sigma_iso * np.exp(b["ln_amp"] * np.exp(-0.5 * ((s - 1 / b["d"]) / b["width"]) ** 2))
    sigma = sigma_iso * crystal.anisotropy_factor(s_cart, p) * eps
    if p["intensity_scatter"] > 0:  # non-Wilson variation of the local mean (tNCS, domains, disorder)
        sigma = sigma * np.exp(p["intensity_scatter"] * rng.standard_normal(s.shape) - 0.5 * p["intensity_scatter"] ** 2)
    i_true = wilson.wilson_intensities(rng, sigma, centric)
    sigma_edge = float(wilson.mean_intensity(np.array([1.0 / d_min]), p["b_factor"], p["scale"], **curve)[0])
    sig = wilson.measurement_error(rng, i_true, sigma_iso, sigma_edge, p["isig_edge"], p["gain"], p["error_floor"], p["bg_slope"])
    i_clean = i_true + sig * rng.standard_normal(s.shape)
    if "scale_step" in hn:
        st = hn["scale_step"]
        f = 1.0 + st["factor"] * (s > 1.0 / st["d"])
        i_clean, sig = i_clean * f, sig * f
    if "outliers" in hn:
        o = hn["outliers"]
        hit = rng.random(s.shape) < o["fraction"]
        i_clean = np.where(hit, np.abs(i_clean) * o["factor"] + sigma, i_clean)

    mean_at = lambda x: wilson.mean_intensity(x, p["b_factor"], p["scale"], **curve)
    if p["ice_rings"]:
        i_ice, sig_ice, kept = apply_rings(rng, s, i_clean, sig, mean_at, p["ice_rings"])
        hkl, s, eps, centric, sigma = hkl[kept], s[kept], eps[kept], centric[kept], sigma[kept]
        i_clean, sig_clean, i_ice, sig_ice = i_clean[kept], sig[kept], i_ice[kept], sig_ice[kept]
    else:
        i_ice, sig_clean, sig_ice = i_clean, sig, sig

    # French–Wilson with the mean intensity estimated from the (contaminated) data, as truncate does.
    est = _local_mean(s, i_ice, eps)
    sigma_fw = est(s) * eps
    f_ice, sf_ice = wilson.french_wilson(i_ice, sig_ice, sigma_fw, centric)
    changed = i_ice != i_clean
    f_clean, sf_clean = f_ice.copy(), sf_ice.copy()
    if changed.any():
        f_clean[changed], sf_clean[changed] = wilson.french_wilson(i_clean[changed], sig_clean[changed], sigma_fw[changed], centric[changed])

    # How the deposited intensities were processed: as measured (negative values kept), rejected when
    # not positive (some older pipelines), or replaced by the French–Wilson posterior ⟨J⟩ = F² + σF²
    # (intensities written back from amplitudes: all positive).
    if p["intensity_processing"] == "reject_negative":
        ok = i_ice > 0
        hkl, i_ice, sig_ice, f_ice, sf_ice, i_clean, f_clean = (a[ok] for a in (hkl, i_ice, sig_ice, f_ice, sf_ice, i_clean, f_clean))
    elif p["intensity_processing"] == "from_amplitudes":
        i_ice, sig_ice = f_ice * f_ice + sf_ice * sf_ice, 2.0 * f_ice * sf_ice
        i_clean = f_clean * f_clean + sf_clean * sf_clean

    columns = {
        "IMEAN": i_ice.astype(np.float32), "SIGIMEAN": sig_ice.astype(np.float32),
        "F": f_ice.astype(np.float32), "SIGF": sf_ice.astype(np.float32),
    }
    d = _d_array(uc, hkl)
    source = f"simulated:{p['name']}"
    refl, kept_rows = _reflections(source, hm, cell, hkl.shape[0], d, columns)
    clean = {"I": i_clean.astype(np.float32), "F": f_clean.astype(np.float32)}
    clean = {k: clean[k][kept_rows[k]] for k in refl.observables}
    truth = range_truth(refl, clean, p["ice_rings"], p["hard_negative_params"])
    params = _jsonable(p | {"n_rows": int(hkl.shape[0])})
    return SimulatedDataset(reflections=refl, truth=truth, params=params, miller=hkl.astype(np.int32), columns=columns, clean=clean)


def _d_array(uc, hkl: np.ndarray) -> np.ndarray:
    """d as gemmi's ``Mtz.make_d_array`` computes it (float32), so that reading back matches."""
    return uc.calculate_d_array(hkl).astype(np.float32)


KINDS = {"I": ("IMEAN", "SIGIMEAN"), "F": ("F", "SIGF")}


def _reflections(source: str, hm: str, cell, n_rows: int, d: np.ndarray, columns: dict) -> tuple[Reflections, dict]:
    import gemmi

    observables, kept_rows = {}, {}
    for kind, (v, sg) in KINDS.items():
        values, sigmas = columns[v], columns[sg]
        keep = (values != 0) & (sigmas > 0) & np.isfinite(values)
        kept_rows[kind] = np.flatnonzero(keep)
        observables[kind] = Observable(kind=kind, columns=(v, sg), d=d[keep], values=values[keep], sigmas=sigmas[keep])
    refl = Reflections(source=source, space_group=gemmi.SpaceGroup(hm).hm, cell=tuple(float(x) for x in cell),
                       n_reflections=int(n_rows), observables=observables)
    return refl, kept_rows


def range_truth(refl: Reflections, clean: dict[str, np.ndarray], rings: list[dict], hn: dict | None = None) -> dict[int, RangeTruth]:
    """Ground truth per covered range: the label per observable from the visibility of the
    contamination (``clean[kind]``: the observable without ice, aligned with ``refl``'s arrays)."""
    hn = hn or {}
    out = {}
    data_d_min = refl.d_min
    for r in ice_ranges():
        if not r.covered_by(data_d_min):
            continue
        lo_s, hi_s = 1.0 / r.d_max, 1.0 / r.d_min
        strength, effects = ring_strength_in_range(rings, lo_s, hi_s)
        labels, metrics = {}, {}
        for kind, obs in refl.observables.items():
            sel = (obs.d >= r.d_min) & (obs.d <= r.d_max)
            if not strength or not sel.any():
                labels[kind] = False
                continue
            iced_v = obs.values[sel].astype(np.float64)
            clean_v = clean[kind][sel].astype(np.float64)
            y = tuple(np.percentile(iced_v, (0.5, 95.0)))
            m = visibility(obs.d[sel].astype(np.float64), clean_v, iced_v, r.d_min, r.d_max, y)
            labels[kind] = m.pop("visible")
            metrics[kind] = m
        negs = tuple(k for k, v in hn.items() if _touches(k, v, r))
        out[r.index] = RangeTruth(index=r.index, iced=any(labels.values()), labels=labels, strength=strength,
                                  effects=effects, hard_negatives=negs, metrics=metrics)
    return out


def _touches(kind: str, v: dict, r) -> bool:
    if kind in ("scale_step", "truncate_inside", "smooth_bump"):
        return r.d_min <= v["d"] <= r.d_max
    if kind in ("thin_band", "omit_range"):
        return v["d_low"] <= r.d_max and v["d_high"] >= r.d_min
    return True  # sparse, outliers: the whole data set


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def demo_dataset(seed: int = 2022) -> SimulatedDataset:
    """Small deterministic demo: P2₁2₁2₁, d_min 1.6 Å, one clear Ih (110) ring at 2.249 Å (range 5)."""
    return simulate_dataset(
        seed, name=f"demo-{seed}", space_group="P 21 21 21", cell=(46.0, 57.0, 68.0, 90.0, 90.0, 90.0), d_min=1.6,
        d_max=40.0, b_factor=18.0, scale=2000.0, isig_edge=2.0, completeness=0.97, missing_cone_deg=0.0,
        outer_completeness=0.9, anisotropic=False, hard_negatives=[], hard_negative_params={}, iced=True,
        intensity_processing="measured", intensity_scatter=0.0,
        ice={"lines": [2.249], "strength": 4.0, "width": 0.0025, "fraction": 0.9, "sign": 1.0, "excluded": False,
             "mode": "one"},
    )


def write_mtz(dataset: SimulatedDataset, path: str | os.PathLike) -> Path:
    """Write the data set as a merged MTZ (H K L IMEAN SIGIMEAN F SIGF) with gemmi."""
    import gemmi

    refl = dataset.reflections
    mtz = gemmi.Mtz(with_base=True)
    mtz.title = refl.source
    mtz.spacegroup = gemmi.SpaceGroup(dataset.params["space_group"])
    mtz.set_cell_for_all(gemmi.UnitCell(*refl.cell))
    mtz.add_dataset("simulated").wavelength = 1.0
    for label, typ in (("IMEAN", "J"), ("SIGIMEAN", "Q"), ("F", "F"), ("SIGF", "Q")):
        mtz.add_column(label, typ)
    c = dataset.columns
    data = np.column_stack([dataset.miller.astype(np.float32)] + [c[k] for k in ("IMEAN", "SIGIMEAN", "F", "SIGF")])
    mtz.set_data(data.astype(np.float32))
    mtz.set_cell_for_all(gemmi.UnitCell(*refl.cell))
    path = Path(path)
    mtz.write_to_file(str(path))
    return path
