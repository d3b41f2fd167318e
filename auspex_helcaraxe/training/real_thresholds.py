"""Network thresholds chosen on real clean plots, cross-validated over real data sets.

    python -m auspex_helcaraxe.training.real_thresholds [--json OUT]

For each observable: every predictable plot of every ``clean`` real data set (labels.tsv) through the
shipped network. The rule: the smallest t ≥ 0.5 that flags at most :func:`allowed_false_positives`
of the clean plots and of the clean data sets (a data set is a false positive when any of its plots is
flagged). That allowance is the finite-sample (conformal) one: a threshold just above the (k+1)-th highest
of n exchangeable clean scores is reached by a new clean one with probability ≤ (k+1)/(n+1), so
k = ⌊(1 − target)(n + 1)⌋ − 1 keeps a *new* data set's specificity ≥ 0.98 per plot and ≥ 0.95 per data
set. (Allowing (1 − target)·n in-sample meets the targets only on the data that chose t: 41/44 held out.)
Leave-one-data-set-out: each data set is judged at the threshold the rule picks on the *other* data
sets. Reported: the pooled held-out specificity per plot and per data set, the false positive rate
per range, and the threshold the same rule picks on all data sets (what a card would carry).
Sensitivity costs are measured by ``--sensitivity`` on simulated and semi-synthetic data
(simulator-only evidence). ``--controls``: the probabilities are discounted by ice-free control
windows (``controls.py``) with a baseline estimated on the same clean data sets, and in
leave-one-data-set-out on the other data sets only, like the threshold.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..controls import AGGREGATES, baseline_of, discount, score
from ..network import OBSERVABLES, Network, load_networks, plots_for
from . import data as tdata
from .metrics import proportion
from .options import per_kind

PLOT_TARGET = 0.98
DATASET_TARGET = 0.95
FLOOR = 0.5


def clean_plots(real_dir: Path, networks=None, controls: bool = False) -> dict[str, list[dict]]:
    """``{kind: [{"dataset", "range", "n", "p", "p_network", "controls", "training_background"}]}`` for every
    clean real plot; ``p`` is the detector's probability (discounted by control windows when the card
    has a baseline), ``controls`` the probabilities of the plot's control windows, scored for every
    plot when ``controls`` or when the card has a baseline (empty otherwise)."""
    networks = networks or load_networks(None)
    train_bg = {str(p) for p in tdata.background_split(real_dir)[0]}
    out: dict[str, list[dict]] = {"I": [], "F": []}
    for row, refl in tdata.read_real(real_dir, ("clean",)):
        for kind, obs in refl.observables.items():
            if kind not in networks or kind not in out:
                continue
            plots = plots_for(obs, networks[kind])
            pred = plots.predictable
            if not pred.any():
                continue
            windows = controls or networks[kind].card.control_baseline is not None
            s = score(obs, plots, networks[kind], controls=windows)
            for k in np.flatnonzero(pred):
                out[kind].append({"dataset": row.relpath, "range": plots.ranges[k].index,
                                  "n": int(plots.n_in_range[k]), "p": float(s.p[k]),
                                  "p_network": float(s.network[k]), "controls": s.controls[k].tolist(),
                                  "training_background": str(row.path) in train_bg})
    return out


def rebaselined(rows: list[dict], baseline: float | None = None, aggregate: str = "mean") -> tuple[list[dict], float]:
    """``rows`` with ``p`` discounted by a control baseline (default: :func:`controls.baseline_of` the
    rows' own control windows; windows pooled by ``aggregate``), and that baseline."""
    b = baseline_of([r["controls"] for r in rows]) if baseline is None else baseline
    p = discount(np.array([r["p_network"] for r in rows]), [np.array(r["controls"]) for r in rows], b, aggregate)
    return [{**r, "p": float(v)} for r, v in zip(rows, p)], b


def allowed_false_positives(n: int, target: float) -> int:
    """Flags among ``n`` clean items that keep a new item's specificity ≥ ``target`` (0 when n is too small)."""
    return max(0, math.floor((1 - target) * (n + 1) + 1e-9) - 1)


def pick_threshold(rows: list[dict], plot_target: float = PLOT_TARGET, dataset_target: float = DATASET_TARGET,
                   floor: float = FLOOR) -> float:
    """The smallest t ≥ floor flagging at most the allowed clean plots and data sets of ``rows``."""
    if not rows:
        return floor
    p = np.array([r["p"] for r in rows])
    ds = np.array([r["dataset"] for r in rows])
    max_plots = allowed_false_positives(len(p), plot_target)
    max_sets = allowed_false_positives(len(set(ds)), dataset_target)
    for t in np.unique(np.concatenate([[floor], p[p >= floor] + 1e-6])):
        flagged = p >= t
        if flagged.sum() <= max_plots and len(set(ds[flagged])) <= max_sets:
            return float(min(t, 0.999))
    return 0.999


def lodo(rows: list[dict], aggregate: str = "mean") -> dict:
    """Leave-one-data-set-out thresholds and the pooled held-out result. Rows with control windows
    get their control baseline, too, from the other data sets each time (:func:`rebaselined`)."""
    controls = any(r.get("controls") for r in rows)
    datasets = sorted({r["dataset"] for r in rows})
    flags, thresholds, fp_sets = [], {}, []
    per_range: dict[int, list[bool]] = defaultdict(list)
    for d in datasets:
        others = [r for r in rows if r["dataset"] != d]
        held = [r for r in rows if r["dataset"] == d]
        if controls:
            others, b = rebaselined(others, aggregate=aggregate)
            held, _ = rebaselined(held, b, aggregate)
        t = pick_threshold(others)
        thresholds[d] = round(t, 4)
        f = [r["p"] >= t for r in held]
        flags += f
        for r, x in zip(held, f):
            per_range[r["range"]].append(x)
        if any(f):
            fp_sets.append(d)
    n_plots, fp = len(flags), int(sum(flags))
    return {
        "plots": n_plots, "datasets": len(datasets),
        "specificity_per_plot": proportion(n_plots - fp, n_plots),
        "specificity_per_dataset": proportion(len(datasets) - len(fp_sets), len(datasets)),
        "false_positive_datasets": fp_sets,
        "fp_rate_per_range": {k: proportion(int(sum(v)), len(v)) for k, v in sorted(per_range.items())},
        "thresholds": {"min": min(thresholds.values()), "max": max(thresholds.values()),
                       "median": float(np.median(list(thresholds.values())))},
    }


def at_threshold(rows: list[dict], t: float) -> dict:
    datasets = sorted({r["dataset"] for r in rows})
    f = [r["p"] >= t for r in rows]
    bad = sorted({r["dataset"] for r, x in zip(rows, f) if x})
    return {"threshold": t, "specificity_per_plot": proportion(len(f) - sum(f), len(f)),
            "specificity_per_dataset": proportion(len(datasets) - len(bad), len(datasets)),
            "false_positive_datasets": bad,
            "false_positive_plots": [(r["dataset"], r["range"], round(r["p"], 3)) for r, x in zip(rows, f) if x]}


def sensitivity_cost(alternatives: dict[str, dict[str, float]], real_dir: Path, n_sim: int = 300,
                     networks=None) -> dict:
    """Sensitivity (and specificity) per observable on simulated test data sets (``evaluate.TEST_SEED``)
    and the semi-synthetic held-out set at each set of thresholds in ``alternatives``
    (``{"card": {"I": .61, "F": .70}, ...}``), overall and for weak ice (strength 0.15–0.6×).
    Simulator-only evidence."""
    from itertools import chain

    from . import evaluate as ev

    items = chain(ev.simulated_items(n_sim), ev.semi_synthetic_items(real_dir, ice_seeds=3))
    nets = networks or load_networks(None)
    rows = ev.collect(items, {"ours": nets}, icefinder=False)
    prob, lab, kind, strength = rows.prob["ours"], rows.label, rows.kind, rows.strength
    cat = np.array(rows.category)
    out = {}
    for name, thr in alternatives.items():
        res = {}
        for k in (k for k in ("I", "F") if k in thr and k in nets):  # a directory may hold one observable
            for part, sel in (("simulated", cat == "simulated"), ("semi-synthetic", np.char.startswith(cat.astype(str), "semi") | np.char.startswith(cat.astype(str), "real"))):
                m = (kind == k) & np.isfinite(prob) & np.isfinite(lab) & sel
                f = prob >= thr[k]
                pos, neg = m & (lab == 1), m & (lab == 0)
                weak = pos & (strength >= 0.15) & (strength < 0.6)
                res[f"{k} {part}"] = {"sensitivity": proportion(int((f & pos).sum()), int(pos.sum())),
                                      "weak_0.15-0.6": proportion(int((f & weak).sum()), int(weak.sum())),
                                      "specificity": proportion(int((~f & neg).sum()), int(neg.sum())),
                                      **_ice_free_datasets(rows, (kind == k) & np.isfinite(prob) & sel,
                                                           thr[k], nets[k].card.pair_threshold,
                                                           nets[k].card.pair_steps)}
        out[name] = res
    return out


def pair_result(rows: list[dict], t2: float, steps=None) -> dict:
    """The pair rule (``pairs.py``) at ``t2`` (by plot size with ``steps``) on clean plots: the data sets
    it flags (at least two plots at ``p`` ≥ their t₂) and, per data set, its second-highest margin
    ``p − t₂`` + t2 (the rule flags a data set when that reaches t2; without steps it is the
    second-highest ``p``), highest first. ``p`` must have every control window applied
    (``clean_plots`` with ``controls``), as the runtime applies them before the rule decides."""
    from ..pairs import thresholds

    own = np.broadcast_to(thresholds(t2, steps, np.array([r["n"] for r in rows])), (len(rows),))
    by: dict[str, list[float]] = defaultdict(list)
    for r, t in zip(rows, own):
        by[r["dataset"]]  # every data set counts, also one without a plot that may pair
        if np.isfinite(t):  # inf: the plot never counts
            by[r["dataset"]].append(r["p"] - t + t2)
    second = sorted(((sorted(v)[-2], d) for d, v in by.items() if len(v) >= 2), reverse=True)
    flagged = [d for v, d in second if v >= t2]
    return {"pair_threshold": t2, "pair_steps": [list(x) for x in steps] if steps else None, "datasets": len(by),
            "specificity_per_dataset": proportion(len(by) - len(flagged), len(by)),
            "flagged_datasets": flagged, "highest_second_p": [(d, round(v, 4)) for v, d in second[:5]]}


def dense_result(rows: list[dict], step: tuple[int, float]) -> dict:
    """The dense step ``[n, t]`` (``network.flag_thresholds``) on clean plots: the data sets it flags (a
    plot of ≥ n reflections at ``p`` ≥ t) and the highest ``p`` of such plots (five, highest first).
    ``p`` as the rows carry it (with ``--controls``, every window applied, as the runtime applies them
    before such a plot is flagged)."""
    n_min, t = step
    large = sorted(((r["p"], r["dataset"], r["range"], r["n"]) for r in rows if r["n"] >= n_min), reverse=True)
    return {"dense_threshold": [int(n_min), float(t)], "plots": len(large),
            "flagged_datasets": sorted({d for p, d, _, _ in large if p >= t}),
            "highest_p": [(d, k, n, round(p, 4)) for p, d, k, n in large[:5]]}


def summed_totals(rows: list[dict], rule: tuple[int, int], baseline: float, aggregate: str = "mean") -> dict[str, float]:
    """S of the summed-evidence rule (``pairs.py``; ``rule`` = (min_n, top_k)) per data set of ``rows``
    (clean plots with every control window scored, ``clean_plots`` with ``controls``)."""
    from ..pairs import summed_excess, top_plots, window_discount

    min_n, top_k = rule
    by: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by[r["dataset"]].append(r)
    out = {}
    for d, rs in by.items():
        p = np.array([r["p_network"] for r in rs])
        counts = np.array([r["n"] for r in rs]) >= min_n
        top = top_plots(p, counts, top_k)
        disc = window_discount([r["controls"] for r in rs], top, baseline, aggregate)
        out[d] = float(summed_excess(p, counts, baseline, disc).sum())
    return out


def summed_result(rows: list[dict], rule: tuple[int, int, float, bool], aggregate: str = "mean") -> dict:
    """The summed-evidence rule on clean plots, ``rule`` = (min_n, top_k, value, margin): s = value, or
    with ``margin`` s = value × the largest S of the clean data sets. Leave-one-data-set-out: each data set
    judged with the baseline (and, with ``margin``, s) from the others only, as :func:`lodo`."""
    min_n, top_k, value, margin = rule
    _, b = rebaselined(rows, aggregate=aggregate)
    totals = summed_totals(rows, (min_n, top_k), b, aggregate)
    flagged = []
    for d in sorted(totals):
        others = [r for r in rows if r["dataset"] != d]
        _, b_d = rebaselined(others, aggregate=aggregate)
        t = summed_totals(others, (min_n, top_k), b_d, aggregate)
        held = summed_totals([r for r in rows if r["dataset"] == d], (min_n, top_k), b_d, aggregate)[d]
        if held >= (value * max(t.values(), default=0.0) if margin else value):
            flagged.append(d)
    s = value * max(totals.values(), default=0.0) if margin else value
    return {"summed_evidence": [int(min_n), int(top_k), math.ceil(s * 1e4) / 1e4], "margin": value if margin else None,
            "highest": [(d, round(v, 4)) for d, v in sorted(totals.items(), key=lambda x: -x[1])[:5]],
            "flagged_datasets": sorted(d for d, v in totals.items() if v >= s),
            "lodo_flagged_datasets": flagged,
            "lodo_specificity_per_dataset": proportion(len(totals) - len(flagged), len(totals))}


def _ice_free_datasets(rows, m: np.ndarray, threshold: float, t2: float | None, steps=None) -> dict:
    """Per data set, on the data sets whose plots in ``m`` carry no simulated ice at all: the share not
    flagged at ``threshold`` and, when ``t2`` is set, not flagged by the threshold or the pair rule
    (``pairs.py``: at least two plots at p ≥ their t₂, by plot size with ``steps``; ``collect``
    applies every control window)."""
    from ..pairs import reaching, thresholds

    p, ds = rows.prob["ours"], rows.dataset
    free = [d for d in np.unique(ds[m]) if np.all(rows.strength[m & (ds == d)] == 0)]
    alone = pair = 0
    for d in free:
        sel = m & (ds == d)
        q = p[sel]
        alone += bool(np.any(q >= threshold))
        pair += bool(np.any(q >= threshold)
                     or (t2 is not None and len(reaching(q, thresholds(t2, steps, rows.n_reflections[sel])))))
    out = {"ice_free_datasets_specificity": proportion(len(free) - alone, len(free))}
    if t2 is not None:
        out["ice_free_datasets_specificity_with_pair"] = proportion(len(free) - pair, len(free))
    return out


def card_block(res: dict, command: str) -> dict:
    """``metrics.real_clean`` of one observable's model card from its result in :func:`main`."""
    def prop(x: dict) -> dict:
        if not x["n"]:
            return {"value": None, "k": 0, "n": 0, "ci95": None}
        return {"value": round(x["value"], 4), "k": x["k"], "n": x["n"], "ci95": [round(x["lo"], 4), round(x["hi"], 4)]}

    card, half, lo = res["at_card"], res["at_0.5"], res["lodo"]
    return {
        "command": command,
        "data": ("every predictable plot of the 'clean' real data sets of ../shared/data/real/labels.tsv ('clean' = the "
                 "published networks flag no range; not all checked by eye)"),
        "at_card_threshold": {"threshold": card["threshold"],
                              "specificity_per_plot": prop(card["specificity_per_plot"]),
                              "specificity_per_dataset": prop(card["specificity_per_dataset"]),
                              "held_out_backgrounds_only_per_plot": prop(res["held_out_only_at_card"]["specificity_per_plot"]),
                              "false_positive_plots": card["false_positive_plots"]},
        "at_0.5": {"specificity_per_plot": prop(half["specificity_per_plot"]),
                   "specificity_per_dataset": prop(half["specificity_per_dataset"]),
                   "false_positive_plots": half["false_positive_plots"]},
        "leave_one_dataset_out_min_threshold": {
            "rule": (f"smallest t >= {FLOOR} flagging at most floor((1 - target)(n + 1)) - 1 of the other data sets' "
                     f"n clean plots (target {PLOT_TARGET}) and data sets (target {DATASET_TARGET})"),
            "thresholds": lo["thresholds"],
            "specificity_per_plot": prop(lo["specificity_per_plot"]),
            "specificity_per_dataset": prop(lo["specificity_per_dataset"]),
            "false_positive_datasets": lo["false_positive_datasets"],
            "fp_per_range": {str(k): f"{v['k']}/{v['n']}" for k, v in lo["fp_rate_per_range"].items()}},
        "all_data_threshold": round(res["all_data_threshold"], 4),
    }


def _p(x: dict) -> str:
    return "–" if not x["n"] else f"{x['value']:.3f} [{x['lo']:.3f}, {x['hi']:.3f}] ({x['k']}/{x['n']})"


def _per_kind(ap: argparse.ArgumentParser, option: str, text: str, convert, usage: str,
              needs: tuple[object, str] | None = None) -> dict:
    """:func:`options.per_kind` of ``text``; a malformed item or an observable other than I and F ends
    the command with ``option: usage`` (exit 2), and so does a value given without the option it
    ``needs`` (its parsed value, its name)."""
    try:
        values = per_kind(text, convert)
    except ValueError:
        ap.error(f"{option}: {usage} (KIND: I or F)")
    if values and needs is not None and not needs[0]:
        ap.error(f"{option}: only with {needs[1]}")
    return values


def _steps(v: str) -> tuple[tuple[int, float], ...]:
    return tuple((int(n), float(t)) for n, t in (step.split(":") for step in v.split("/")))


def _n_and_t(v: str) -> tuple[int, float]:
    n, t = v.split(":")
    return int(n), float(t)


def _summed_rule(v: str) -> tuple[int, int, float, bool]:
    n, top, m = v.split(":")
    return int(n), int(top), float(m.removeprefix("x")), m.startswith("x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m auspex_helcaraxe.training.real_thresholds")
    ap.add_argument("--real", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--networks", default=None, metavar="DIR", help="networks to judge (default: the shipped ones)")
    ap.add_argument("--cards", default=None, metavar="DIR",
                    help="write the results into the model cards in DIR (metrics.real_clean; other keys of "
                         "that block, such as the threshold decision, are kept)")
    ap.add_argument("--set-threshold", nargs="?", const="I,F", default="", metavar="KINDS",
                    help="make the rule's threshold on all clean data sets the decision threshold of these "
                         "observables' networks (default both; with --cards: written into the cards; every "
                         "result of those observables is then at that threshold)")
    ap.add_argument("--controls", action="store_true",
                    help="discount by ice-free control windows (controls.py) with a baseline estimated on the "
                         "clean data sets (re-estimated without the held-out data set in LODO); with --cards "
                         "the baseline is written into the cards as control_baseline")
    ap.add_argument("--aggregate", default="", metavar="AGG|KIND=AGG[,KIND=AGG]",
                    help=f"with --controls: pool a range's control windows by this ({', '.join(sorted(AGGREGATES))}; "
                         "one for both observables or per observable, e.g. I=mean,F=min; default: each card's "
                         "control_aggregate); with --cards it is written into the cards")
    ap.add_argument("--pair", default="", metavar="KIND=T2[,KIND=T2]",
                    help="with --controls: judge the pair rule (pairs.py) at T2 for these observables; with "
                         "--cards T2 is written into their cards as pair_threshold")
    ap.add_argument("--pair-steps", default="", metavar="KIND=N:T2/N:T2/...",
                    help="with --pair: t2 by plot size (pairs.py), e.g. I=400:0.25/200:0.30/0:0.45 (largest minimum "
                         "first, its t2 that of --pair); with --cards written into the cards as pair_steps")
    ap.add_argument("--sparse-threshold", default="", metavar="KIND=N:T[,KIND=N:T]",
                    help="with --cards: write sparse_threshold [N, T] into these observables' cards (a plot of fewer "
                         "than N reflections flags alone only at p >= max(threshold, T); network.flag_thresholds). "
                         "Fixed beforehand, not chosen here; the numbers above are at the card threshold for every "
                         "plot (the sparse step can only remove flags)")
    ap.add_argument("--dense-threshold", default="", metavar="KIND=N:T[,KIND=N:T]",
                    help="with --cards: write dense_threshold [N, T] into these observables' cards (a plot of at least "
                         "N reflections flags alone from p >= min(threshold, T); network.flag_thresholds). Fixed "
                         "beforehand, not chosen here; the clean data sets it would flag are reported")
    ap.add_argument("--summed", default="", metavar="KIND=N:K:S",
                    help="with --controls: the summed-evidence rule (pairs.py) over plots of >= N reflections, D from "
                         "the windows of the top K, at sum S (xM: M x the largest S of the clean data sets); its "
                         "clean and LODO results are reported; with --cards written into the cards as "
                         "summed_evidence, e.g. I=500:1:1.5 or I=300:2:x1.25")
    ap.add_argument("--sensitivity", type=int, default=0, metavar="N_SIM",
                    help="also measure the sensitivity cost on N_SIM simulated + the semi-synthetic data sets")
    args = ap.parse_args(argv)
    set_kinds = {k.strip() for k in args.set_threshold.split(",") if k.strip()}
    pair_t = _per_kind(ap, "--pair", args.pair, float, "KIND=T2, e.g. I=0.25", (args.controls, "--controls"))
    pair_steps = _per_kind(ap, "--pair-steps", args.pair_steps, _steps,
                           "KIND=N:T2/N:T2/..., e.g. I=400:0.25/200:0.30/0:0.45")
    if set(pair_steps) - set(pair_t) or any(s[0][1] != pair_t[k] for k, s in pair_steps.items()):
        ap.error("--pair-steps: only for observables given to --pair, the first step's t2 being theirs")
    sparse = _per_kind(ap, "--sparse-threshold", args.sparse_threshold, _n_and_t,
                       "KIND=N:T, e.g. F=200:0.7,I=150:0.7", (args.cards, "--cards"))
    dense = _per_kind(ap, "--dense-threshold", args.dense_threshold, _n_and_t, "KIND=N:T, e.g. I=800:0.35",
                      (args.cards, "--cards"))
    summed = _per_kind(ap, "--summed", args.summed, _summed_rule,
                       "KIND=N:K:S or KIND=N:K:xM, e.g. I=500:1:1.5 or I=300:2:x1.25", (args.controls, "--controls"))
    try:
        aggregates = per_kind(args.aggregate, str, both=True)
    except ValueError:
        aggregates = None
    if aggregates is None or set(aggregates.values()) - set(AGGREGATES):
        ap.error(f"--aggregate: {', '.join(sorted(AGGREGATES))}, for both observables or as KIND=AGG, e.g. I=mean,F=min")
    if set_kinds - set(OBSERVABLES):
        ap.error("--set-threshold: the observables are I and/or F")
    real_dir = tdata.require_real_dir(ap, args.real)
    nets = load_networks(args.networks)
    if aggregates or pair_t:  # judged (and, with --cards, written) as if the cards said so
        nets = {k: Network(n.path, replace(n.card, control_aggregate=aggregates.get(k, n.card.control_aggregate),
                                           pair_threshold=pair_t.get(k, n.card.pair_threshold),
                                           pair_steps=pair_steps.get(k, n.card.pair_steps if k not in pair_t else None)))
                for k, n in nets.items()}
    rows = {k: v for k, v in clean_plots(real_dir, nets, args.controls).items() if v}
    out = {}
    baselines = {}
    for kind in rows:  # a directory may hold one observable
        aggregate = nets[kind].card.control_aggregate
        if args.controls:
            rows[kind], baselines[kind] = rebaselined(rows[kind], aggregate=aggregate)
            print(f"{kind}: control baseline {baselines[kind]:.4f} (median of the clean control windows)")
        rs = rows[kind]
        card_t = pick_threshold(rs) if kind in set_kinds else nets[kind].card.threshold
        res = {"card_threshold": card_t, "at_card": at_threshold(rs, card_t), "at_0.5": at_threshold(rs, 0.5),
               "lodo": lodo(rs, aggregate), "all_data_threshold": pick_threshold(rs),
               "held_out_only_at_card": at_threshold([r for r in rs if not r["training_background"]], card_t)}
        out[kind] = res
        lo = res["lodo"]
        print(f"{kind}: {lo['plots']} clean plots in {lo['datasets']} data sets")
        for name in ("at_0.5", "at_card", "held_out_only_at_card"):
            a = res[name]
            print(f"  {name:22s} t={a['threshold']:.3f} spec/plot {_p(a['specificity_per_plot'])}  "
                  f"spec/data set {_p(a['specificity_per_dataset'])}  FP {a['false_positive_plots']}")
        print(f"  LODO                   t in [{lo['thresholds']['min']:.3f}, {lo['thresholds']['max']:.3f}] "
              f"spec/plot {_p(lo['specificity_per_plot'])}  spec/data set {_p(lo['specificity_per_dataset'])}  "
              f"FP data sets {lo['false_positive_datasets']}")
        fpr = {k: f"{v['k']}/{v['n']}" for k, v in lo["fp_rate_per_range"].items()}
        print(f"  LODO FP per range: {fpr}")
        print(f"  threshold by the same rule on all clean data sets: {res['all_data_threshold']:.3f}")
        if kind in pair_t:
            res["pair"] = pr = pair_result(rs, pair_t[kind], pair_steps.get(kind))
            print(f"  pair rule at {pr['pair_threshold']} (steps {pr['pair_steps']}): spec/data set {_p(pr['specificity_per_dataset'])}  "
                  f"flagged {pr['flagged_datasets']}  highest second p {pr['highest_second_p']}")
        if kind in dense:
            res["dense"] = dr = dense_result(rs, dense[kind])
            print(f"  dense threshold {dr['dense_threshold']}: flagged {dr['flagged_datasets']}  "
                  f"highest p of a plot that large {dr['highest_p']}")
        if kind in summed:
            res["summed"] = sr = summed_result(rs, summed[kind], aggregate)
            print(f"  summed evidence {sr['summed_evidence']} (margin {sr['margin']}): highest S {sr['highest']}  "
                  f"flagged {sr['flagged_datasets']}  "
                  f"LODO spec/data set {_p(sr['lodo_specificity_per_dataset'])}  flagged {sr['lodo_flagged_datasets']}")
    if args.sensitivity:
        alts = {"card": {k: out[k]["card_threshold"] for k in out},
                "real-clean rule": {k: out[k]["all_data_threshold"] for k in out},
                "0.5": {k: 0.5 for k in nets}}
        cost = sensitivity_cost(alts, real_dir, args.sensitivity, nets)
        out["sensitivity_cost"] = cost
        for name, res in cost.items():
            print(f"{name}: {alts[name]}")
            for part, m in res.items():
                print(f"  {part:18s} sens {_p(m['sensitivity'])}  weak {_p(m['weak_0.15-0.6'])}  spec {_p(m['specificity'])}  "
                      f"ice-free data sets {_p(m['ice_free_datasets_specificity'])}"
                      + (f", with the pair rule {_p(m['ice_free_datasets_specificity_with_pair'])}"
                         if "ice_free_datasets_specificity_with_pair" in m else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float) + "\n")
    if args.cards:
        from .cards import (set_control_baselines, set_pair_thresholds, set_size_thresholds, set_summed_evidence,
                            set_thresholds, update_metrics)

        command = "python -m auspex_helcaraxe.training.real_thresholds " + " ".join(argv if argv is not None else sys.argv[1:])
        sha = {k: n.card.sha256 for k, n in nets.items()}
        blocks = {k: card_block(out[k], command.strip()) for k in rows}
        if args.controls:
            set_control_baselines(args.cards, baselines, sha, aggregates)
            for k, b in blocks.items():
                b["control_baseline"] = (f"{baselines[k]:.4f}, the median control-window probability of these clean "
                                         f"data sets, written into the card by this command")
        if set_kinds:
            set_thresholds(args.cards, {k: out[k]["card_threshold"] for k in rows if k in set_kinds}, sha)
            for k, b in blocks.items():
                if k not in set_kinds:
                    continue
                b["threshold_decision"] = (f"card threshold set by this command: the rule above on all clean data sets "
                                           f"({out[k]['card_threshold']:.4f}; it was {nets[k].card.threshold} before)")
        if pair_t:
            set_pair_thresholds(args.cards, {k: t for k, t in pair_t.items() if k in rows}, sha,
                                {k: pair_steps.get(k) for k in pair_t if k in rows})
            for k in pair_t:
                if k in blocks:
                    pr = out[k]["pair"]
                    blocks[k]["pair_rule"] = {
                        "pair_threshold": pr["pair_threshold"], "pair_steps": pr["pair_steps"],
                        "flagged_datasets": pr["flagged_datasets"],
                        "specificity_per_dataset": f"{pr['specificity_per_dataset']['k']}/{pr['specificity_per_dataset']['n']}",
                        "highest_second_p": pr["highest_second_p"],
                        "note": "fixed before its test (docs/independent_notes.md), not chosen by this command"}
        if summed:
            set_summed_evidence(args.cards, {k: out[k]["summed"]["summed_evidence"] for k in summed if k in rows}, sha)
            for k in summed:
                if k in blocks:
                    sr = out[k]["summed"]
                    blocks[k]["summed_evidence"] = {
                        "summed_evidence": sr["summed_evidence"], "margin": sr["margin"], "highest_S": sr["highest"],
                        "flagged_datasets": sr["flagged_datasets"],
                        "lodo_flagged_datasets": sr["lodo_flagged_datasets"],
                        "lodo_specificity_per_dataset": f"{sr['lodo_specificity_per_dataset']['k']}/{sr['lodo_specificity_per_dataset']['n']}",
                        "note": ("min_n, top_k and s (or its margin over the largest S) fixed before its test "
                                 "(docs/independent_notes.md), not chosen by this command")}
        if sparse:
            set_size_thresholds(args.cards, "sparse_threshold", {k: v for k, v in sparse.items() if k in rows}, sha)
            for k in sparse:
                if k in blocks:
                    blocks[k]["sparse_threshold"] = (f"{list(sparse[k])} written into the card by this command (given "
                                                     "to it, not chosen by it; docs/independent_notes.md); the numbers "
                                                     "of this block are at the card threshold for every plot")
        if dense:
            set_size_thresholds(args.cards, "dense_threshold", {k: v for k, v in dense.items() if k in rows}, sha)
            for k in dense:
                if k in blocks:
                    blocks[k]["dense_threshold"] = {
                        **out[k]["dense"],
                        "note": ("written into the card by this command (given to it, not chosen by it; "
                                 "docs/independent_notes.md); the other numbers of this block are at the card "
                                 "threshold for every plot")}
        for path in update_metrics(args.cards, "real_clean", blocks, sha256=sha, merge=True):
            print(f"wrote metrics.real_clean into {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
