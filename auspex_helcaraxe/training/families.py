"""Detection per contamination family (the current networks; no retraining).

    python -m auspex_helcaraxe.training.families [--n-sim 150] [--json OUT]

Each family forces one of the simulator's ice effects (``simulate.ice.draw_rings`` options) on
clean simulated data sets (test seeds) and on the held-out clean real data sets (semi-synthetic), at
strengths drawn log-uniformly in 0.15–0.6× (weak) and 0.6–10× (moderate/strong) of the local mean
intensity. Reported per family and observable: sensitivity on the iced plots (simulator ground truth)
and the worst family. These families all come from this project's simulator: the numbers are
simulator-only evidence, and leave-one-family-out *retraining* is not done here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..network import load_networks
from ..plots import make_plots
from ..readers import read
from . import data as tdata
from .metrics import proportion

FAMILIES = {
    # positive bias from ring pixels integrated into the spots, whole ring, all observations
    "spike": {"sign": 1.0, "fraction": 1.0},
    # ring in the background region: background over-estimated, intensities pulled down
    "oversubtracted": {"sign": -0.4, "fraction": 1.0},
    # only a subset of observations affected (ice building up late, partial / anisotropic ring)
    "partial": {"sign": 1.0, "fraction": 0.2},
    # ring shell excluded by integration (reflections removed), bias on the remaining edges
    "excluded": {"sign": 1.0, "excluded": True},
}
SEED = 40_000_000
BANDS = {"weak 0.15-0.6": (0.15, 0.6), "0.6-10": (0.6, 10.0)}


def _bases(n_sim: int, real_dir: Path | None):
    from ..simulate import simulate_dataset

    for k in range(n_sim):
        yield "simulated", simulate_dataset(SEED + k, ice=False, hard_negatives=[], hard_negative_params={}).reflections
    if real_dir is not None:
        for p in tdata.background_split(real_dir)[1]:
            try:
                yield "semi-synthetic", read(p)
            except InputError:
                continue


def evaluate_families(n_sim: int = 150, real_dir: Path | None = None, seed: int = SEED) -> dict:
    from ..simulate import add_ice

    nets = load_networks(None)
    rng = np.random.default_rng(seed)
    out: dict = {}
    bases = list(_bases(n_sim, real_dir))
    for fam, opts in FAMILIES.items():
        for band, (lo, hi) in BANDS.items():
            hits: dict = {}
            for cat, base in bases:
                strength = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
                try:
                    refl, truth = add_ice(base, np.random.default_rng(rng.integers(2**63)), strength=strength, **opts)
                except (InputError, ValueError):
                    continue
                for kind, obs in refl.observables.items():
                    if kind not in nets or len(obs.d) == 0:
                        continue
                    plots = make_plots(obs)
                    pred = plots.predictable
                    if not pred.any():
                        continue
                    p = nets[kind].predict(plots.inputs[pred])
                    for r, v in zip(np.array(plots.ranges, dtype=object)[pred], p):
                        t = truth.get(r.index)
                        if t is None or not t.label(kind):
                            continue
                        k, n = hits.get((cat, kind), (0, 0))
                        hits[(cat, kind)] = (k + int(v >= nets[kind].card.threshold), n + 1)
            for (cat, kind), (k, n) in hits.items():
                out.setdefault(fam, {}).setdefault(band, {})[f"{kind} {cat}"] = proportion(k, n)
    worst = {}
    for band in BANDS:
        for key in {k for f in out.values() for k in f.get(band, {})}:
            vals = [(out[f][band][key]["value"], f) for f in out if key in out[f].get(band, {}) and out[f][band][key]["n"] >= 10]
            if vals:
                v, f = min(vals)
                worst[f"{band} {key}"] = {"family": f, "sensitivity": round(v, 3)}
    return {"families": out, "worst": worst}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m auspex_helcaraxe.training.families")
    ap.add_argument("--n-sim", type=int, default=150)
    ap.add_argument("--real", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    real_dir = Path(args.real) if args.real else tdata.default_real_dir()
    res = evaluate_families(args.n_sim, real_dir)
    for fam, bands in res["families"].items():
        for band, parts in bands.items():
            cells = "  ".join(f"{k}: {v['value']:.2f} ({v['k']}/{v['n']})" for k, v in sorted(parts.items()))
            print(f"{fam:15s} {band:14s} {cells}")
    print("worst family per band / observable / set:")
    for k, v in sorted(res["worst"].items()):
        print(f"  {k:40s} {v['family']:15s} {v['sensitivity']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
