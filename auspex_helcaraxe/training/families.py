"""The simulator's contamination families: their definitions (one table, used by the per-family
evaluation and by leave-one-family-out training) and detection per family.

    python -m auspex_helcaraxe.training.families [--n-sim 150] [--json OUT] [--networks DIR ...]

Each family forces one of the simulator's ice effects (``simulate.ice.draw_rings`` options) on
clean simulated data sets (test seeds) and on the held-out clean real data sets (semi-synthetic), at
strengths drawn log-uniformly in 0.15–0.6× (weak) and 0.6–10× (moderate/strong) of the local mean
intensity. Reported per family and observable: sensitivity on the iced plots (simulator ground truth)
and the worst family; with ``--networks`` several network directories are scored on the same draws,
with their specificity on the clean plots of the same bases. These families all come from this
project's simulator: the numbers are simulator-only evidence. Leave-one-family-out retraining
(:func:`excluding`, ``train --exclude-family``): docs/evaluation.md, "Leave-one-family-out retraining
(reduced budget)".
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..controls import score
from ..errors import InputError
from ..network import flag_thresholds, load_networks, on_scale
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
# A drawn ring (``simulate.ice.draw_rings``) is partial when fewer than this share of its observations
# carry the ice: the rule of ``simulate.ice.ring_strength_in_range`` (effect "partial").
PARTIAL_FRACTION = 0.55
# Which drawn rings belong to each family. oversubtracted, partial and excluded are attributes of a ring
# (negative sign; fraction < 0.55; shell removed) and may combine in one ring, which then belongs to each
# of them; spike is the ring with none of them (positive bias on all observations, shell kept).
MEMBER: dict[str, Callable[[dict], bool]] = {
    "spike": lambda r: r["sign"] > 0 and r["fraction"] >= PARTIAL_FRACTION and not r["excluded"],
    "oversubtracted": lambda r: r["sign"] < 0,
    "partial": lambda r: r["fraction"] < PARTIAL_FRACTION,
    "excluded": lambda r: bool(r["excluded"]),
}
MAX_REDRAWS = 1000


def ring_families(ring: dict) -> set[str]:
    """The families one drawn ring belongs to (:data:`MEMBER`)."""
    return {f for f, member in MEMBER.items() if member(ring)}


@contextmanager
def excluding(family: str | None) -> Iterator[None]:
    """While active, the simulator draws no ring of ``family`` (None: nothing changes).

    The rings of each iced data set (simulated or semi-synthetic) are redrawn, from the same
    generator, until none belongs to the family: the simulator's own distribution conditioned on "no
    ring of the family" (after :data:`MAX_REDRAWS` draws the family's rings are dropped). Whether a
    data set has ice at all is drawn before and is unchanged. For ``excluded`` the option
    ``excluded=False`` is also set in the data set's ring options, which keeps ``simulate_dataset``
    from marking shells excluded after the drawing (the only place excluded shells come from).
    ``simulate/`` itself is not changed (its source fingerprint keys the training-set cache and is in
    the model cards), so the shared ``draw_rings`` is swapped in ``simulate.dataset`` and
    ``simulate.semi`` for the duration.
    """
    if family is None:
        yield
        return
    if family not in MEMBER:
        raise ValueError(f"unknown family {family!r} (one of {', '.join(MEMBER)})")
    from ..simulate import dataset, ice, semi

    member, original = MEMBER[family], (dataset.draw_rings, semi.draw_rings)

    def draw(rng, d_min, d_max, opt):
        if family == "excluded":
            opt["excluded"] = False
        for _ in range(MAX_REDRAWS):
            rings = ice.draw_rings(rng, d_min, d_max, opt)
            if not any(member(r) for r in rings):
                return rings
        return [r for r in rings if not member(r)]

    dataset.draw_rings = semi.draw_rings = draw
    try:
        yield
    finally:
        dataset.draw_rings, semi.draw_rings = original


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


def _predictable(obs) -> tuple[np.ndarray, Any] | None:
    """(ranges, scorer) of the predictable plots of one observable, None if it has none: the plots
    are made once, and ``scorer(network)`` gives that network's decision probability on each of them
    (``controls.score``: discounted by control windows when its card has a baseline) and each plot's
    threshold for a flag (``network.flag_thresholds``: its card's, raised for sparse plots)."""
    if len(obs.d) == 0:
        return None
    plots = make_plots(obs)  # for the ranges; each network scores the plots on its own scale
    pred = plots.predictable
    if not pred.any():
        return None

    def scorer(net) -> tuple[np.ndarray, np.ndarray]:
        return score(obs, on_scale(plots, obs, net), net).p[pred], flag_thresholds(net.card, plots.n_in_range[pred])

    return np.array(plots.ranges, dtype=object)[pred], scorer


def evaluate_families(n_sim: int = 150, real_dir: Path | None = None, seed: int = SEED,
                      networks: str | Path | None = None) -> dict:
    """Sensitivity per family, band, observable and set of the networks in ``networks`` (default: the
    shipped ones), the worst family, and the specificity on the clean plots of the same bases."""
    return evaluate_families_many([networks], n_sim, real_dir, seed)[networks]


def evaluate_families_many(network_dirs: list, n_sim: int = 150, real_dir: Path | None = None,
                           seed: int = SEED) -> dict:
    """:func:`evaluate_families` for several network directories on the same draws (one per key)."""
    from ..simulate import add_ice

    runs = {d: load_networks(d) for d in network_dirs}
    rng = np.random.default_rng(seed)
    out: dict = {d: {} for d in runs}
    bases = list(_bases(n_sim, real_dir))
    clean: dict = {d: {} for d in runs}
    for cat, base in bases:
        for kind, obs in base.observables.items():
            plots = _predictable(obs)
            if plots is None:
                continue
            for d, nets in runs.items():
                if kind not in nets:
                    continue
                p, t = plots[1](nets[kind])
                k, n = clean[d].get(f"{kind} {cat}", (0, 0))
                clean[d][f"{kind} {cat}"] = (k + int(np.sum(p < t)), n + len(p))
    for fam, opts in FAMILIES.items():
        for band, (lo, hi) in BANDS.items():
            hits: dict = {d: {} for d in runs}
            for cat, base in bases:
                strength = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
                try:
                    refl, truth = add_ice(base, np.random.default_rng(rng.integers(2**63)), strength=strength, **opts)
                except (InputError, ValueError):
                    continue
                for kind, obs in refl.observables.items():
                    plots = _predictable(obs)
                    if plots is None:
                        continue
                    for d, nets in runs.items():
                        if kind not in nets:
                            continue
                        for r, v, tv in zip(plots[0], *plots[1](nets[kind])):
                            t = truth.get(r.index)
                            if t is None or not t.label(kind):
                                continue
                            k, n = hits[d].get((cat, kind), (0, 0))
                            hits[d][(cat, kind)] = (k + int(v >= tv), n + 1)
            for d in runs:
                for (cat, kind), (k, n) in hits[d].items():
                    out[d].setdefault(fam, {}).setdefault(band, {})[f"{kind} {cat}"] = proportion(k, n)
    res = {}
    for d in runs:
        fams = out[d]
        worst = {}
        for band in BANDS:
            for key in sorted({k for f in fams.values() for k in f.get(band, {})}):
                vals = [(fams[f][band][key]["value"], f) for f in fams if key in fams[f].get(band, {}) and fams[f][band][key]["n"] >= 10]
                if vals:
                    v, f = min(vals)
                    worst[f"{band} {key}"] = {"family": f, "sensitivity": round(v, 3)}
        res[d] = {"families": fams, "worst": worst,
                  "specificity_clean": {key: proportion(k, n) for key, (k, n) in sorted(clean[d].items())}}
    return res


def _print(res: dict) -> None:
    for fam, bands in res["families"].items():
        for band, parts in bands.items():
            cells = "  ".join(f"{k}: {v['value']:.2f} ({v['k']}/{v['n']})" for k, v in sorted(parts.items()))
            print(f"{fam:15s} {band:14s} {cells}")
    print("worst family per band / observable / set:")
    for k, v in sorted(res["worst"].items()):
        print(f"  {k:40s} {v['family']:15s} {v['sensitivity']:.2f}")
    print("specificity on the clean plots of the same bases: " + "  ".join(
        f"{k}: {v['value']:.3f} ({v['k']}/{v['n']})" for k, v in res["specificity_clean"].items()))


def lofo_summary(runs: dict, baseline: str, excluded: dict[str, str], kind: str | None = None,
                 min_plots: int = 10) -> dict:
    """Leave-one-family-out from :func:`evaluate_families_many` results: for each directory in
    ``excluded`` (directory → the family it was trained without), its sensitivity on that family
    against ``baseline``'s (trained with every family), per band / observable / set with at least
    ``min_plots`` iced plots (only observable ``kind`` if given), and the worst drop of them all."""
    rows = []
    for d, fam in excluded.items():
        res = runs[d]
        for band, cells in res["families"].get(fam, {}).items():
            for key, without in cells.items():
                base = runs[baseline]["families"].get(fam, {}).get(band, {}).get(key)
                if base is None or without["n"] < min_plots or (kind and not key.startswith(kind + " ")):
                    continue
                rows.append({"family": fam, "band": band, "set": key, "n": without["n"],
                             "baseline": round(base["value"], 3), "without": round(without["value"], 3),
                             "change": round(without["value"] - base["value"], 3)})
    worst = min(rows, key=lambda r: r["change"]) if rows else None
    return {"rows": rows, "worst": worst}


def _excluded_family(directory: str) -> str | None:
    fams = {load_networks(directory)[k].card.extra.get("training", {}).get("exclude_family") for k in ("I", "F")}
    if len(fams) != 1:
        raise InputError(f"{directory}: the I and F cards exclude different families ({sorted(map(str, fams))})")
    return fams.pop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m auspex_helcaraxe.training.families")
    ap.add_argument("--n-sim", type=int, default=150)
    ap.add_argument("--real", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--networks", nargs="+", default=None, metavar="DIR",
                    help="network directories (default: the shipped ones); several are scored on the same draws "
                         "and the JSON then maps each directory to its result")
    ap.add_argument("--lofo", action="store_true",
                    help="leave-one-family-out: the first --networks directory is the baseline (all families), each "
                         "other one was trained with train --exclude-family (read from its cards)")
    ap.add_argument("--cards", default=None, metavar="DIR",
                    help="with --lofo: write the summary into the model cards in DIR (metrics.leave_one_family_out; "
                         "the cards of the networks the recipe shipped, not of the networks scored)")
    args = ap.parse_args(argv)
    if args.lofo and (not args.networks or len(args.networks) < 2):
        ap.error("--lofo needs a baseline directory and at least one directory trained without a family")
    if args.cards and not args.lofo:
        ap.error("--cards needs --lofo")
    real_dir = tdata.optional_real_dir(ap, args.real)
    dirs = args.networks or [None]
    runs = evaluate_families_many(dirs, args.n_sim, real_dir)
    for d, res in runs.items():
        if len(dirs) > 1:
            print(f"== {d}")
        _print(res)
    out = runs[dirs[0]] if len(dirs) == 1 else {"runs": runs}
    if args.lofo:
        excluded = {d: _excluded_family(d) for d in dirs[1:]}
        summary = lofo_summary(runs, dirs[0], excluded)
        out["leave_one_family_out"] = summary
        print("leave-one-family-out (sensitivity on the family left out: baseline -> without it):")
        for r in summary["rows"]:
            print(f"  {r['family']:15s} {r['band']:14s} {r['set']:20s} {r['baseline']:.2f} -> {r['without']:.2f} "
                  f"({r['change']:+.2f}, n={r['n']})")
        if summary["worst"]:
            w = summary["worst"]
            print(f"worst: {w['family']} {w['band']} {w['set']} {w['change']:+.2f}")
        if args.cards:
            from .cards import update_metrics

            command = "python -m auspex_helcaraxe.training.families " + " ".join(argv if argv is not None else sys.argv[1:])
            blocks = {k: {"command": command.strip(), "baseline": str(dirs[0]), "without": excluded,
                          "note": ("networks of the shipped recipe trained with and without each family, each at its "
                                   "own card threshold, scored on the same forced-family draws; not the shipped files"),
                          **lofo_summary(runs, dirs[0], excluded, kind=k)} for k in ("I", "F")}
            for path in update_metrics(args.cards, "leave_one_family_out", blocks):
                print(f"wrote metrics.leave_one_family_out into {path}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
