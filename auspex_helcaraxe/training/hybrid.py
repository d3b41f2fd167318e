"""Experiment: the network's probability and the line contrast of a plot, combined.

    python -m auspex_helcaraxe.training.hybrid --networks DIR [--n-sim 600] [--repeats 20] [--weak-label 0.15] [--json OUT]

The Helcaraxe paper proposes, as future work, a hybrid of the CNN with Icefinder-like features of the
range. Here the feature is the matched-filter z at the range's brightest ice line
(:func:`line_excess.line_z`): ice diffracts only at its lines, while the real clean plots that the
networks flag show no excess there (docs/independent_notes.md). Per observable:

1. **Fit, on the simulator's ground truth only**: a logistic regression of the label on
   (logit p, z) over simulated data sets (seeds ``HYBRID_SEED + k``) and the training-split clean real
   backgrounds with simulated ice (``simulate.add_ice``). Labels as the networks were trained
   (``--weak-label S``: whole rings ≥ S × the local mean also iced).
2. **Threshold on real clean plots**: the rule of ``real_thresholds`` (``pick_threshold``: targets
   0.98 per plot and 0.95 per data set for data it did not see), for the network alone and for the
   combination; leave-one-data-set-out specificity of both.
3. **Score on the independent contamination models** (``independent.contaminate``; held-out
   backgrounds, one draw per family × strength × background, the draws of ``independent --draws 1``):
   detection per data set (any plot flagged) of the network alone, the combination, and the
   published networks at 0.5.

Nothing here changes what the plugin ships; it measures whether the combination is worth building.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..joint import logits
from ..network import load_networks, on_scale, plots_for
from ..reflections import Reflections
from . import data as tdata
from .joint import fit_logistic
from .line_excess import line_z
from .real_thresholds import lodo, pick_threshold
from .train import relabel_weak

HYBRID_SEED = 40_000_000
Z_CLIP = 4.0
ICE_SEED = 40_500_000


def plot_rows(refl: Reflections, networks: dict, truth: dict | None = None, weak_label: float | None = None,
              published: dict | None = None) -> list[dict]:
    """One row per predictable plot: kind, range, p (and p of ``published``), z, label (with ``truth``)."""
    out = []
    for kind, obs in refl.observables.items():
        if kind not in networks or len(obs) == 0:
            continue
        plots = plots_for(obs, networks[kind])
        pred = plots.predictable
        if not pred.any():
            continue
        p = networks[kind].predict(plots.inputs[pred])
        pp = None
        if published and kind in published:
            pp = published[kind].predict(on_scale(plots, obs, published[kind]).inputs[pred])
        for j, r in enumerate(np.array(plots.ranges, dtype=object)[pred]):
            z = line_z(obs, r)
            row: dict[str, Any] = {"kind": kind, "range": r.index, "p": float(p[j]), "z": 0.0 if z is None else z[1]}
            if pp is not None:
                row["p_published"] = float(pp[j])
            if truth is not None:
                t = truth.get(r.index)
                label = np.array([int(t is not None and t.label(kind))])
                if t is not None and weak_label is not None:  # the rule of train --weak-label
                    label = relabel_weak(label, [{"strength": t.strength, "effects": t.effects}], weak_label)[0]
                row["label"] = int(label[0])
                row["strength"] = float(t.strength) if t is not None else 0.0
            out.append(row)
    return out


def training_rows(networks: dict, real_dir: Path, n_sim: int, repeats: int, weak_label: float | None,
                  log=print) -> list[dict]:
    """Simulated data sets and the training backgrounds with simulated ice, with labels."""
    from ..simulate import add_ice, simulate_dataset

    rows = []
    for k in range(n_sim):
        ds = simulate_dataset(HYBRID_SEED + k)
        rows += plot_rows(ds.reflections, networks, ds.truth, weak_label)
    rng = np.random.default_rng(ICE_SEED)
    for _, base in tdata.read_paths(tdata.background_split(real_dir)[0]):
        for _ in range(repeats):
            refl, truth = add_ice(base, np.random.default_rng(rng.integers(2**63)))
            rows += plot_rows(refl, networks, truth, weak_label)
    log(f"  training rows: {len(rows)} ({sum(r['label'] for r in rows)} iced)")
    return rows


class Combination:
    """``sigmoid(intercept + coef · standardised (logit p, clip(z, ±z_clip)))`` per observable.

    ``z_clip``: strong rings reach z of several hundred, so a term linear in z would be set by them;
    clipped at ``Z_CLIP`` (about 3 × the spread of z over clean real ranges, 1.26) the term describes
    the weak end, where it matters (None: unclipped)."""

    def __init__(self, rows: list[dict], z_clip: float | None = None):
        self.models, self.z_clip = {}, z_clip
        for kind in ("I", "F"):
            rs = [r for r in rows if r["kind"] == kind]
            if rs:
                X = np.column_stack([logits([r["p"] for r in rs]), self._z([r["z"] for r in rs])])
                y = np.array([r["label"] for r in rs], float)
                self.models[kind] = fit_logistic(X, y)

    def _z(self, z) -> np.ndarray:
        z = np.asarray(z, float)
        return z if self.z_clip is None else np.clip(z, -self.z_clip, self.z_clip)

    def __call__(self, kind: str, p, z) -> np.ndarray:
        mean, scale, coef, icpt = self.models[kind]
        X = np.column_stack([logits(p), self._z(z)])
        return 1.0 / (1.0 + np.exp(-(icpt + ((X - mean) / scale) @ coef)))

    def describe(self) -> dict:
        return {k: {"mean": m[0].round(4).tolist(), "scale": m[1].round(4).tolist(), "coef": m[2].round(4).tolist(),
                    "intercept": round(m[3], 4)} for k, m in self.models.items()}


def clean_rows(real_dir: Path, networks: dict) -> list[dict]:
    """Every predictable plot of every clean real data set, with its data set."""
    return [{**r, "dataset": row.relpath} for row, refl in tdata.read_real(real_dir, ("clean",))
            for r in plot_rows(refl, networks)]


def independent_rows(real_dir: Path, networks: dict, published: dict, families, strengths, log=print) -> list[dict]:
    """The held-out backgrounds as they are and one draw per family × strength, as ``independent --draws 1``."""
    from .independent import family_draws, held_out_backgrounds

    bases = held_out_backgrounds(real_dir, log)
    out = [{**r, "dataset": name, "family": "clean", "nominal": 0.0}
           for name, base in bases for r in plot_rows(base, networks, published=published)]
    for fi, fam in enumerate(families):
        for st, name, _, dr in family_draws(bases, fi, fam, strengths, draws=1):
            if dr is None:
                continue
            out += [{**r, "dataset": name, "family": fam, "nominal": st}
                    for r in plot_rows(dr.reflections, networks, published=published)
                    if r["range"] in dr.strength.get(r["kind"], {})]  # the plots the ring reaches, as independent scores
    log(f"  independent rows: {len(out)}")
    return out


def run(networks_dir: str, real_dir: Path, n_sim: int = 600, repeats: int = 20, weak_label: float | None = 0.15,
        families=None, strengths=None, z_clip: float | None = Z_CLIP, log=print) -> dict[str, Any]:
    """Fit the combination for the networks in ``networks_dir``, set both thresholds on the real clean
    plots, and score network, combination and published networks on the independent draws."""
    from .independent import FAMILIES, STRENGTHS

    families, strengths = families or FAMILIES, strengths or STRENGTHS
    nets = load_networks(networks_dir)
    published = load_networks(tdata.published_dir_beside(real_dir))
    comb = Combination(training_rows(nets, real_dir, n_sim, repeats, weak_label, log), z_clip)
    clean = clean_rows(real_dir, nets)
    res: dict[str, Any] = {"combination": comb.describe(), "z_clip": z_clip, "real_clean": {}, "thresholds": {}}
    for kind in comb.models:
        rs = [r for r in clean if r["kind"] == kind]
        hyb = comb(kind, [r["p"] for r in rs], [r["z"] for r in rs])
        for name, vals in (("network", [r["p"] for r in rs]), ("combined", hyb)):
            scored = [{**r, "p": float(v)} for r, v in zip(rs, vals)]
            lo = lodo(scored)
            res["thresholds"].setdefault(name, {})[kind] = pick_threshold(scored)
            res["real_clean"].setdefault(name, {})[kind] = {
                "lodo_per_dataset": f"{lo['specificity_per_dataset']['k']}/{lo['specificity_per_dataset']['n']}",
                "lodo_per_plot": f"{lo['specificity_per_plot']['k']}/{lo['specificity_per_plot']['n']}",
                "false_positive_datasets": lo["false_positive_datasets"]}
    ind = independent_rows(real_dir, nets, published, families, strengths, log)
    flags: dict[str, dict] = {"network": defaultdict(bool), "combined": defaultdict(bool), "published": defaultdict(bool)}
    for kind in comb.models:
        rs = [r for r in ind if r["kind"] == kind]
        hyb = comb(kind, [r["p"] for r in rs], [r["z"] for r in rs])
        for r, h in zip(rs, hyb):
            key = (r["family"], r["nominal"], r["dataset"])
            flags["network"][key] |= r["p"] >= res["thresholds"]["network"][kind]
            flags["combined"][key] |= bool(h >= res["thresholds"]["combined"][kind])
            flags["published"][key] |= r.get("p_published", 0.0) >= 0.5
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name, f in flags.items():
        by: dict[tuple, list] = defaultdict(list)
        for (fam, st, _), v in f.items():
            by[(fam, st)].append(v)
        table[name] = {f"{fam} {st:g}": round(float(np.mean(v)), 3) for (fam, st), v in sorted(by.items())}
        table[name]["n_clean"] = len(by[("clean", 0.0)])
    res["per_dataset"] = table
    return res


def _float_or_none(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m auspex_helcaraxe.training.hybrid", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--networks", required=True, metavar="DIR")
    ap.add_argument("--real", default=None)
    ap.add_argument("--n-sim", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--weak-label", type=_float_or_none, default=0.15,
                    help="label rule of the networks (train --weak-label); 'none': visible rings only")
    ap.add_argument("--families", default=None)
    ap.add_argument("--z-clip", type=_float_or_none, default=Z_CLIP,
                    help=f"clip z at ± this before the fit (default {Z_CLIP}; 'none': unclipped)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    real_dir = tdata.require_real_dir(ap, a.real)

    def log(m: str) -> None:
        print(m, file=sys.stderr, flush=True)

    res = run(a.networks, real_dir, a.n_sim, a.repeats, a.weak_label,
              tuple(a.families.split(",")) if a.families else None, z_clip=a.z_clip, log=log)
    print(json.dumps(res, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
