"""Fit and validate the I+F combiner (``auspex_helcaraxe.joint``) on the simulator's ground truth.

One seeded command::

    python -m auspex_helcaraxe.training.joint --out resources/helcaraxe_joint.json

Data (all through the plugin host, exactly as at runtime: the shipped networks + Icefinder):

- training: simulated data sets (seeds ``JOINT_SEED + k``) and the training-split clean real data
  sets with both I and F (``data.background_split``), each as it is and with simulated ice
  (``simulate.add_ice``) many times;
- validation (never used for fitting or for the threshold): simulated data sets with other seeds and
  the held-out clean real data sets with both I and F, as they are and with simulated ice;
- real: every clean real data set with both I and F as it is (specificity), and how often I and F
  disagree on every real data set with both, and what the joint verdict does with each disagreement.

Labels: a range is iced when the simulator's spike is visible in the plot of I or of F
(``RangeTruth.iced``); with ``--weak-label S`` also when a whole ring reaches it at ≥ S × the local
mean (``train.relabel_weak``, the rule of networks trained with the same option). ``--networks DIR``
fits the combiner to other networks than the shipped ones. Numbers from simulated / semi-synthetic
data rest on the simulator only.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..host import Host
from ..joint import FEATURES, Model, features
from ..network import load_networks
from ..results import PREDICTED, AnalysisOptions
from . import data as tdata
from .metrics import binary_metrics, compact

JOINT_SEED = 30_000_000  # simulated training data sets: JOINT_SEED + k; validation: JOINT_SEED + 10**6 + k
ICE_SEED = 30_500_000
TARGET_SPECIFICITY = 0.98
L2 = 1e-2


def _rows_of(analysis, truth, group: str, category: str) -> list[dict]:
    hel_i, hel_f = analysis.result("helcaraxe", "I"), analysis.result("helcaraxe", "F")
    ice_i, ice_f = analysis.result("icefinder", "I"), analysis.result("icefinder", "F")
    if hel_i is None or hel_f is None:
        return []
    out = []
    for ri in hel_i.ranges:
        rf = hel_f.range(ri.index)
        if rf is None or ri.status != PREDICTED or rf.status != PREDICTED:
            continue
        si = ice_i.range(ri.index).value if ice_i is not None and ice_i.range(ri.index) else None
        sf = ice_f.range(ri.index).value if ice_f is not None and ice_f.range(ri.index) else None
        ok = si is not None and sf is not None and math.isfinite(si) and math.isfinite(sf)
        t = truth.get(ri.index) if truth is not None else None
        out.append({
            "group": group, "category": category, "range": ri.index,
            "label": (float(t.iced) if t is not None else 0.0) if truth is not None else math.nan,
            "strength": float(t.strength) if t is not None else 0.0,
            "effects": list(t.effects) if t is not None else [],
            "p_I": float(ri.value), "p_F": float(rf.value), "flag_I": bool(ri.flagged), "flag_F": bool(rf.flagged),
            "ice_I": float(si) if ok else math.nan, "ice_F": float(sf) if ok else math.nan,
        })
    return out


def collect(n_sim: int, sim_seed: int, backgrounds: list, repeats: int, ice_seed: int, host: Host,
            category: str, log=print, opts: AnalysisOptions | None = None) -> list[dict]:
    """Rows (one per range predicted in both I and F) of ``n_sim`` simulated data sets and of each
    background as it is and ``repeats`` times with simulated ice (networks of ``opts``, default
    the shipped ones)."""
    from ..simulate import add_ice, simulate_dataset

    rows: list[dict] = []
    opts = opts or AnalysisOptions()
    for k in range(n_sim):
        ds = simulate_dataset(sim_seed + k)
        if not {"I", "F"} <= set(ds.reflections.observables):
            continue
        try:
            a = host.analyse(ds.reflections, "both", opts)
        except InputError:
            continue
        rows += _rows_of(a, ds.truth, f"sim{sim_seed + k}", "simulated " + category)
    rng = np.random.default_rng(ice_seed)
    for base in backgrounds:
        rows += _rows_of(host.analyse(base, "both", opts), {}, base.name, "real clean " + category)
        for j in range(repeats):
            refl, truth = add_ice(base, np.random.default_rng(rng.integers(2**63)))
            try:
                a = host.analyse(refl, "both", opts)
            except InputError:
                continue
            rows += _rows_of(a, truth, f"{base.name}+ice{j}", "semi-synthetic " + category)
    log(f"  {category}: {len(rows)} ranges predicted in both I and F")
    return rows


def design(rows: list[dict], feature_set: str) -> tuple[np.ndarray, np.ndarray]:
    names = FEATURES[feature_set]
    use_ice = feature_set == "networks+icefinder"
    keep = [r for r in rows if not use_ice or (math.isfinite(r["ice_I"]) and math.isfinite(r["ice_F"]))]
    X = np.array([[features(r["p_I"], r["p_F"], r["ice_I"] if use_ice else None, r["ice_F"] if use_ice else None)[f]
                   for f in names] for r in keep], float).reshape(-1, len(names))
    return X, np.array([r["label"] for r in keep], float)


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = L2, iters: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Standardised L2 logistic regression by Newton's method: (mean, scale, coef, intercept)."""
    mean, scale = X.mean(0), X.std(0)
    scale[scale == 0] = 1.0
    Z = np.hstack([np.ones((len(X), 1)), (X - mean) / scale])
    w = np.zeros(Z.shape[1])
    reg = np.full(Z.shape[1], l2 * len(X))
    reg[0] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(Z @ w)))
        g = Z.T @ (p - y) + reg * w
        H = (Z * (p * (1 - p))[:, None]).T @ Z + np.diag(reg) + 1e-9 * np.eye(Z.shape[1])
        step = np.linalg.solve(H, g)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return mean, scale, w[1:], float(w[0])


def threshold_for(prob: np.ndarray, y: np.ndarray, target: float = TARGET_SPECIFICITY, floor: float = 0.5) -> float:
    """The smallest threshold ≥ ``floor`` whose specificity on the negatives reaches ``target``."""
    neg = np.sort(prob[y == 0])
    if neg.size == 0:
        return floor
    k = int(math.ceil(target * neg.size)) - 1
    t = float(neg[min(k, neg.size - 1)]) + 1e-6
    return max(floor, min(t, 0.999))


def _metrics(rows: list[dict], flags: np.ndarray) -> dict:
    y = np.array([r["label"] for r in rows])
    ok = np.isfinite(y)
    return compact(binary_metrics(y[ok].astype(bool), flags[ok]))


def compare(rows: list[dict], model_by_set: dict[str, Model]) -> dict[str, dict]:
    """Joint vs OR vs AND vs I alone vs F alone on the same ranges (per range)."""
    if not rows:
        return {}
    pj = joint_probability(rows, model_by_set)
    thr = np.array([model_by_set[_set_of(r, model_by_set)].threshold for r in rows])
    fi = np.array([r["flag_I"] for r in rows])
    ff = np.array([r["flag_F"] for r in rows])
    return {"joint": _metrics(rows, pj >= thr), "or": _metrics(rows, fi | ff), "and": _metrics(rows, fi & ff),
            "I_alone": _metrics(rows, fi), "F_alone": _metrics(rows, ff)}


def _set_of(r: dict, models: dict[str, Model]) -> str:
    if "networks+icefinder" in models and math.isfinite(r["ice_I"]) and math.isfinite(r["ice_F"]):
        return "networks+icefinder"
    return "networks"


def joint_probability(rows: list[dict], models: dict[str, Model]) -> np.ndarray:
    out = np.empty(len(rows))
    for k, r in enumerate(rows):
        name = _set_of(r, models)
        ice = name == "networks+icefinder"
        out[k] = models[name].predict_one(features(r["p_I"], r["p_F"], r["ice_I"] if ice else None, r["ice_F"] if ice else None))
    return out


def _with_both(paths) -> list:
    return [refl for _, refl in tdata.read_paths(paths) if {"I", "F"} <= set(refl.observables)]


def relabel(rows: list[dict], weak_label: float) -> list[dict]:
    """Rows with whole rings of strength ≥ ``weak_label`` also labelled iced (``train.relabel_weak``)."""
    from .train import relabel_weak

    y = np.array([r["label"] for r in rows], float)
    ok = np.isfinite(y)
    new, _ = relabel_weak(np.where(ok, y, 0.0), rows, weak_label)
    return [{**r, "label": float(v)} if k else r for r, v, k in zip(rows, new, ok)]


def disagreements(real_dir: Path, models: dict[str, Model], host: Host,
                  opts: AnalysisOptions | None = None) -> list[dict]:
    """Every range of every real data set with I and F where the I and F networks disagree (one
    flags, the other does not), with what the joint rule decides."""
    out = []
    for row, refl in tdata.read_real(real_dir):
        if not {"I", "F"} <= set(refl.observables):
            continue
        rows = _rows_of(host.analyse(refl, "both", opts or AnalysisOptions()), None, row.relpath, row.label)
        if not rows:
            continue
        pj = joint_probability(rows, models)
        for r, p in zip(rows, pj):
            thr = models[_set_of(r, models)].threshold
            out.append({"file": row.relpath, "label": row.label, "range": r["range"], "p_I": round(r["p_I"], 3),
                        "p_F": round(r["p_F"], 3), "flag_I": r["flag_I"], "flag_F": r["flag_F"],
                        "p_joint": round(float(p), 3), "joint": bool(p >= thr),
                        "labelled_ice": r["range"] in row.ice_ranges.get("I", frozenset()) | row.ice_ranges.get("F", frozenset())})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m auspex_helcaraxe.training.joint", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="resources/helcaraxe_joint.json")
    ap.add_argument("--real", default=None, help="real data directory (default ../shared/data/real)")
    ap.add_argument("--n-sim", type=int, default=1200)
    ap.add_argument("--n-val", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=25, help="simulated-ice copies of each real background")
    ap.add_argument("--report", default=None, help="also write the disagreement table (JSON) here")
    ap.add_argument("--networks", default=None, metavar="DIR", help="the networks to combine (default: the shipped ones)")
    ap.add_argument("--weak-label", type=float, default=None, metavar="S",
                    help="also label iced the ranges a whole ring reaches at >= S x the local mean (as train --weak-label)")
    args = ap.parse_args(argv)
    # every range's control windows scored and applied: the combiner is fitted on the full decision
    # probabilities (the runtime scores windows only where a decision can depend on them: same flags)
    opts = AnalysisOptions(networks=args.networks, extra={"controls": "all"})
    t0 = time.time()
    real_dir = tdata.optional_real_dir(ap, args.real)
    host = Host()
    train_bg, held_bg = ([], [])
    if real_dir is not None:
        tr, he = tdata.background_split(real_dir)
        train_bg, held_bg = _with_both(tr), _with_both(he)
    print(f"real backgrounds with I and F: training {[b.name for b in train_bg]}, held out {[b.name for b in held_bg]}")
    train = collect(args.n_sim, JOINT_SEED, train_bg, args.repeats, ICE_SEED, host, "(training)", opts=opts)
    val = collect(args.n_val, JOINT_SEED + 10**6, held_bg, args.repeats, ICE_SEED + 1, host, "(validation)", opts=opts)
    label = "range iced when the simulator's spike is visible in the plot of I or of F (RangeTruth.iced)"
    if args.weak_label is not None:
        train, val = relabel(train, args.weak_label), relabel(val, args.weak_label)
        label += f", or a whole ring (spike or over-subtraction, not partial) reaches it at >= {args.weak_label} x the local mean"
    models: dict[str, Model] = {}
    targets: dict[str, float] = {}
    for fs in FEATURES:
        X, y = design(train, fs)
        mean, scale, coef, b = fit_logistic(X, y)
        m = Model(FEATURES[fs], mean, scale, coef, b, 0.5)
        # at least as specific on the training ranges as the OR of the two single-observable flags
        # (and ≥ TARGET_SPECIFICITY): the joint rule may then only win sensitivity, not lose specificity
        keep = [r for r in train if fs == "networks" or (math.isfinite(r["ice_I"]) and math.isfinite(r["ice_F"]))]
        or_flag = np.array([r["flag_I"] or r["flag_F"] for r in keep])
        or_spec = float(1 - or_flag[y == 0].mean())
        target = max(TARGET_SPECIFICITY, or_spec)
        thr = threshold_for(m.predict(X), y, target, floor=0.05)
        targets[fs] = round(target, 4)
        models[fs] = Model(FEATURES[fs], mean, scale, coef, b, thr)
        print(f"  {fs}: coef {np.round(coef, 3).tolist()} intercept {b:.3f} threshold {thr:.3f} (n={len(y)}, iced {int(y.sum())})")

    def split(rows, word):
        return [r for r in rows if r["category"].startswith(word)]

    metrics = {
        "training": compare(train, models),
        "validation_simulated": compare(split(val, "simulated"), models),
        "validation_semi_synthetic": compare(split(val, "semi"), models),
        "validation_real_clean_held_out": compare(split(val, "real clean"), models),
        "training_real_clean": compare(split(train, "real clean"), models),
    }
    dis = disagreements(real_dir, models, host, opts) if real_dir is not None else []
    n_dis = [d for d in dis if d["flag_I"] != d["flag_F"]]
    nets = load_networks(args.networks)
    card = {
        "name": "helcaraxe_joint",
        "kind": "logistic regression combining the I and F network probabilities (+ Icefinder scores) per ice range",
        "version": "for networks " + nets["F"].card.version,
        "models": {k: m.to_dict() for k, m in models.items()},
        "networks": {k: n.card.sha256 for k, n in nets.items()},
        "label": label,
        "training_data": (f"{args.n_sim} simulated data sets (seeds {JOINT_SEED}+k) and {len(train_bg)} training-split clean "
                          f"real data sets with I and F, as they are and {args.repeats}x with simulated ice "
                          f"(seed {ICE_SEED}): {len(train)} ranges predicted in both I and F, "
                          f"{int(sum(r['label'] for r in train))} iced; networks: "
                          + (f"{args.networks}" if args.networks else "the shipped ones") + " at their card thresholds"),
        "threshold_rule": (f"smallest >= 0.05 whose training specificity reaches max({TARGET_SPECIFICITY}, the training "
                           f"specificity of OR-ing the two single-observable flags): {targets}"),
        "validation_data": (f"{args.n_val} simulated data sets (seeds {JOINT_SEED + 10**6}+k) and held-out clean real "
                            f"data sets {[b.name for b in held_bg]} as they are and {args.repeats}x with simulated ice"),
        "metrics": metrics,
        "real_data_sets_with_I_and_F": {
            "ranges_predicted_in_both": len(dis), "I_F_disagree": len(n_dis),
            "disagreements": n_dis,
        },
        "note": "simulated and semi-synthetic numbers rest on this project's simulator only",
        "command": "python -m auspex_helcaraxe.training.joint " + " ".join(argv if argv is not None else sys.argv[1:]),
        "wall_time_s": round(time.time() - t0, 1),
    }
    Path(args.out).write_text(json.dumps(card, indent=1) + "\n")
    if args.report:
        Path(args.report).write_text(json.dumps(dis, indent=1) + "\n")
    for k, v in metrics.items():
        for name, m in v.items():
            print(f"  {k:32s} {name:8s} sens {m.get('sensitivity')} spec {m.get('specificity')} (n={m.get('n')}, pos {m.get('positives')})")
    print(f"real I+F ranges: {len(dis)}, I/F disagree: {len(n_dis)}")
    for d in n_dis:
        print("   ", d)
    print(f"wrote {args.out} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
