"""k-fold semi-synthetic evaluation over the clean real data sets (no TensorFlow).

Every clean real data set of ``labels.tsv`` is a test background exactly once: fold ``f`` of
``training.data.background_folds`` scores its test part (each data set as it is, all ranges
negative, and ``ice_seeds`` times with simulated ice from ``simulate.add_ice``) with *our networks
of fold f* — trained with that fold's other part as backgrounds (``train --fold f``), so never on
the data sets they score — and, on exactly the same plots, with the published networks and
Icefinder. Fold 0 of 2 is the fixed split of the shipped networks (``resources/``) and uses the same
ice seed as ``evaluate``'s set (2), so it repeats those plots; fold ``f`` draws its ice from
``ICE_SEED + f``.

Reported per observable (I, F), pooled over the folds and per fold (with the worst fold): plot and
data-set sensitivity / specificity, the false-positive rate per ice range on the clean backgrounds as
they are, the detection rate against ice strength (bins of the ring's bias relative to the local mean
intensity) and the strength at 50 % detection (S50, log-interpolated between bin centres).

``python -m auspex_helcaraxe.training.kfold --networks resources /tmp/kfold1/net`` (one network
directory per fold, in fold order) writes the section into ``docs/evaluation.md`` between markers
that ``evaluate()`` keeps, and the figure ``docs/kfold_detection_vs_strength.png``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..ice_ranges import ice_ranges
from . import data as tdata
from .evaluate import (
    ICE_SEED,
    Rows,
    _bin,
    _draw_curves,
    _known,
    collect,
    contenders_from,
    overall,
    per_dataset,
    put_block,
    semi_synthetic_items,
    strength_curves,
)
from .metrics import fmt, proportion, strength_at_half

# Strength bins (ring bias / local mean intensity); edges include 0.15, 0.3, 0.6, 1, 2, 4.
KFOLD_EDGES = np.array([0.0, 0.05, 0.15, 0.3, 0.6, 1.0, 2.0, 4.0, 10.0, 1e9])
CLEAN = "real clean (held out)"  # category of the backgrounds as they are (semi_synthetic_items)
METRICS = ("plot sens.", "plot spec.", "data-set sens.", "data-set spec.", "clean FP rate", "S50")
MIN_BIN = 10  # bins with fewer plots are left out of S50 (one or two plots would decide it)
LOWER_IS_WORSE = {"plot sens.", "plot spec.", "data-set sens.", "data-set spec."}


def run_folds(
    fold_networks: list[str | os.PathLike],
    real_dir: str | os.PathLike,
    published_dir: str | os.PathLike | None,
    ice_seeds: int = 6,
    seed: int = ICE_SEED,
    icefinder: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[Rows]:
    """Rows of each fold's test backgrounds, scored by that fold's networks (``ours``), the
    published networks and Icefinder. ``fold_networks[f]``: our networks of fold f."""
    n_folds = len(fold_networks)
    out = []
    for f, nets in enumerate(fold_networks):
        _, test = tdata.background_folds(real_dir, n_folds, f)
        if log:
            log(f"fold {f}: {len(test)} test backgrounds, ours = {nets}")
        rows = collect(semi_synthetic_items(real_dir, ice_seeds, seed + f, log, backgrounds=test),
                       contenders_from(nets, published_dir), icefinder, log=log)
        out.append(rows)
    return out


def clean_fp_per_range(rows: Rows, kind: str) -> dict[int, dict[str, dict]]:
    """Per ice range: flagged / predictable plots of ``kind`` on the clean backgrounds as they are."""
    m = _known(rows, (rows.category == CLEAN) & (rows.kind == kind))
    out = {}
    for r in ice_ranges():
        mr = m & (rows.range == r.index)
        if np.any(mr):
            out[r.index] = {name: proportion(int(np.sum(f[mr])), int(np.sum(mr))) for name, f in rows.flagged.items()}
    return out


def s50(curve: dict[str, np.ndarray], min_n: int = MIN_BIN) -> float:
    """Strength at 50 % detection (``metrics.strength_at_half``) over bins with ≥ ``min_n`` plots."""
    return strength_at_half(dict(curve, rate=np.where(curve["n"] >= min_n, curve["rate"], np.nan)))


def summarise(rows: Rows, kind: str) -> dict[str, dict[str, Any]]:
    """Per contender, for one observable: the metrics of ``METRICS`` (proportion dicts; S50 a float)
    and the detection curve."""
    km = rows.kind == kind
    plot, ds = overall(rows, km), per_dataset(rows, km)
    clean = overall(rows, km & (rows.category == CLEAN))
    curves = strength_curves(rows, KFOLD_EDGES, km)
    out = {}
    for name in rows.flagged:
        sp = clean[name]["specificity"]
        fp = proportion(sp["n"] - sp["k"], sp["n"])
        out[name] = {"plot sens.": plot[name]["sensitivity"], "plot spec.": plot[name]["specificity"],
                     "data-set sens.": ds[name]["sensitivity"], "data-set spec.": ds[name]["specificity"],
                     "clean FP rate": fp, "S50": s50(curves[name]["curve"]), "curve": curves[name]["curve"]}
    return out


def _value(v: Any) -> float:
    return v if isinstance(v, float) else v["value"]


def worst_fold(per_fold: list[dict[str, dict[str, Any]]], name: str, metric: str) -> tuple[int, Any]:
    """(fold, value) of the worst fold for one contender and metric (nan S50 = never reaches 50 %:
    worst)."""
    vals = [_value(s[name][metric]) for s in per_fold]
    key = [(-math.inf if math.isnan(v) else v) if metric in LOWER_IS_WORSE else (math.inf if math.isnan(v) else v)
           for v in vals]
    f = int(np.argmin(key)) if metric in LOWER_IS_WORSE else int(np.argmax(key))
    return f, per_fold[f][name][metric]


def _cell(v: Any, full: bool = True) -> str:
    if isinstance(v, float):
        return "never" if math.isnan(v) else f"{v:.2f}"
    if not v["n"]:
        return "–"
    return fmt(v) if full else f"{v['value']:.3f} ({v['k']}/{v['n']})"


def kfold_evaluate(
    fold_networks: list[str | os.PathLike],
    out_md: str | os.PathLike | None = "docs/evaluation.md",
    figure: str | os.PathLike | None = None,
    *,
    real_dir: str | os.PathLike | None = None,
    published_dir: str | os.PathLike | None = None,
    ice_seeds: int = 6,
    icefinder: bool = True,
    notes: str | os.PathLike | None = None,
    kinds: tuple[str, ...] = ("F", "I"),
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the k-fold semi-synthetic evaluation (``len(fold_networks)`` folds) and write its section
    into ``out_md`` (between the k-fold markers; ``evaluate()`` keeps them) and the figure
    (default ``<out_md dir>/kfold_detection_vs_strength.png``). ``notes``: a Markdown file inserted
    after the fold list (hand-written: budgets, commands, reading). ``kinds``: the observables
    reported (e.g. ``("F",)`` while a fold's I network is still training). Returns the metrics and rows."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t0 = time.time()
    real_dir = tdata.real_dir(real_dir)
    if real_dir is None:
        raise FileNotFoundError("no real data directory (../shared/data/real)")
    if published_dir is None:
        published_dir = tdata.published_dir_beside(real_dir)
    n_folds = len(fold_networks)
    folds = run_folds(fold_networks, real_dir, published_dir, ice_seeds, icefinder=icefinder, log=log)
    pooled = Rows.concat(folds)
    names = list(pooled.flagged)
    kinds = [k for k in ("F", "I") if k in kinds and np.any(pooled.kind == k)]
    summ = {k: {"pooled": summarise(pooled, k), "folds": [summarise(r, k) for r in folds]} for k in kinds}
    fp_range = {k: clean_fp_per_range(pooled, k) for k in kinds}

    out_md = Path(out_md) if out_md is not None else None
    fig = Path(figure) if figure is not None else (out_md.parent if out_md else Path(".")) / "kfold_detection_vs_strength.png"
    curves = {}
    for k in kinds:
        cs = {n: {"curve": summ[k]["pooled"][n]["curve"], "s50": summ[k]["pooled"][n]["S50"]} for n in names}
        for f in range(n_folds):
            c = summ[k]["folds"][f]["ours"]
            cs[f"ours, fold {f} only"] = {"curve": c["curve"], "s50": c["S50"], "band": False,
                                          "style": {"ls": "--", "marker": ".", "lw": 1.0}}
        curves[f"{k} plots: {n_folds}-fold semi-synthetic, pooled"] = cs
    _draw_curves(curves, fig)

    cards = {}
    for f, nd in enumerate(fold_networks):
        nets = contenders_from(nd, None)["ours"]
        cards[f] = {k: (v.path, v.card) for k, v in nets.items()}
    tests = [tdata.background_folds(real_dir, n_folds, f)[1] for f in range(n_folds)]
    n_ds = len(np.unique(pooled.dataset))
    md = [f"## (2k) Semi-synthetic, {n_folds}-fold over every clean real data set", "",
          (f"Generated by `auspex_helcaraxe.training.kfold` on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC "
           f"in {time.time() - t0:.0f} s. Every clean real data set of `labels.tsv` "
           f"({sum(len(t) for t in tests)}) is a test background exactly once "
           f"(`training.data.background_folds(real, {n_folds}, f)`: sorted by path, position i tested in fold "
           f"(i − 1) mod {n_folds}), scored by *our networks of that fold*, which were trained with the other "
           "part as real backgrounds and never saw it; the published networks and Icefinder score exactly the "
           f"same plots. Each background once as it is (all ranges negative) and {ice_seeds}× with simulated "
           f"ice (`simulate.add_ice`, seed {ICE_SEED} + fold; fold 0 repeats the plots of set (2) above)."), ""]
    for f in range(n_folds):
        desc = ", ".join(f"{k} `{p.name}` (sha256 `{c.sha256[:12]}…`, threshold {c.threshold:g})"
                         for k, (p, c) in sorted(cards[f].items()))
        md.append(f"- fold {f}: ours = `{fold_networks[f]}`: {desc}; {len(tests[f])} test backgrounds.")
    if notes is not None and Path(notes).is_file():
        md += ["", f"**Hand-written notes** (from `{Path(notes).name}`):", "", Path(notes).read_text().strip()]
    md += ["", (f"{n_ds} data sets (backgrounds and iced copies), {int(np.sum(_known(pooled)))} labelled predictable plots "
                f"({int(np.sum(_known(pooled) & (pooled.label == 1)))} iced). Data-set level per observable: a data set "
                "is iced when any of its labelled plots of that observable is, flagged when any is flagged. *Clean "
                "FP rate*: flagged / predictable plots on the backgrounds as they are. *S50*: strength (ring bias / "
                "local mean intensity) at which the detection curve first reaches 50 %, log-interpolated between "
                f"bin centres, over bins with ≥ {MIN_BIN} plots; *never* when it does not. *Worst fold*: the lowest value over the folds (highest for "
                "FP rate and S50)."), ""]

    for k in kinds:
        md += [f"### {k} plots", "", "| detector | metric | pooled | worst fold | " +
               " | ".join(f"fold {f}" for f in range(n_folds)) + " |", "|---|---|---|---|" + "---|" * n_folds]
        for name in names:
            for metric in METRICS:
                wf, wv = worst_fold(summ[k]["folds"], name, metric)
                cells = [_cell(summ[k]["pooled"][name][metric]), f"{_cell(wv, False)} (fold {wf})"]
                cells += [_cell(s[name][metric], False) for s in summ[k]["folds"]]
                md.append(f"| {name} | {metric} | " + " | ".join(cells) + " |")
        md.append("")
        md += ["Detection against strength (pooled; `k/n` plots that received ice, flagged):", "",
               "| detector | S50 | " + " | ".join(_bin({"lo_edge": KFOLD_EDGES[:-1], "hi_edge": KFOLD_EDGES[1:]}, i)
                                                 for i in range(len(KFOLD_EDGES) - 1)) + " |",
               "|---|---|" + "---|" * (len(KFOLD_EDGES) - 1)]
        rows_c = [(n, summ[k]["pooled"][n]) for n in names]
        rows_c += [(f"ours, fold {f}", summ[k]["folds"][f]["ours"]) for f in range(n_folds)]
        for label, s in rows_c:
            cv = s["curve"]
            md.append(f"| {label} | {_cell(s['S50'])} | " + " | ".join(
                "–" if n == 0 else f"{kk}/{n} ({kk / n:.2f})" for kk, n in zip(cv["k"], cv["n"])) + " |")
        md += ["", f"<details><summary>{k}: false positives per ice range on the clean backgrounds (pooled)</summary>", "",
               "| range | d (Å) | plots | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
        rs = {r.index: r for r in ice_ranges()}
        for idx, res in fp_range[k].items():
            n = next(iter(res.values()))["n"]
            md.append(f"| {idx} | {rs[idx].d_max:.3f}–{rs[idx].d_min:.3f} | {n} | " + " | ".join(
                f"{res[nm]['k']}" + (f" ({res[nm]['value']:.2f})" if res[nm]["k"] else "") for nm in names) + " |")
        md += ["", "</details>", ""]

    md += ["<details><summary>Per background data set (its iced copies and itself): sensitivity and false "
           "positives per observable</summary>", "",
           "| background | fold | obs. | iced plots | " + " | ".join(f"sens. {n}" for n in names) + " | negative plots | "
           + " | ".join(f"FP {n}" for n in names) + " |", "|---|---|---|---|" + "---|" * (2 * len(names) + 1)]
    for f, (rows, test) in enumerate(zip(folds, tests)):
        base = np.array([d.split("+ice")[0] for d in rows.dataset])
        for p in test:
            for k in kinds:
                m = _known(rows, (base == p.name) & (rows.kind == k))
                if not np.any(m):
                    continue
                pos, neg = m & (rows.label == 1), m & (rows.label == 0)
                sens = [f"{int(np.sum(rows.flagged[n][pos]))}" for n in names]
                fps = [f"{int(np.sum(rows.flagged[n][neg]))}" for n in names]
                md.append(f"| `{p.relative_to(real_dir).as_posix()}` | {f} | {k} | {int(np.sum(pos))} | "
                          + " | ".join(sens) + f" | {int(np.sum(neg))} | " + " | ".join(fps) + " |")
    md += ["", "</details>", "", f"![k-fold detection vs strength]({fig.name})", ""]

    body = "\n".join(md)
    if out_md is not None:
        put_block(out_md, body)
        log(f"wrote the k-fold section into {out_md} and {fig}")
    return {"folds": folds, "pooled": pooled, "summary": summ, "clean_fp_per_range": fp_range,
            "markdown": body, "figure": str(fig), "wall_time_s": time.time() - t0}


def main(argv: list[str] | None = None) -> int:
    """``python -m auspex_helcaraxe.training.kfold --networks DIR_FOLD0 DIR_FOLD1 ...``"""
    import argparse

    ap = argparse.ArgumentParser(description=kfold_evaluate.__doc__)
    ap.add_argument("--networks", nargs="+", required=True, help="our network directory of each fold, in fold order")
    ap.add_argument("--published", default=None)
    ap.add_argument("--real", default=None)
    ap.add_argument("--out", default="docs/evaluation.md")
    ap.add_argument("--figure", default=None)
    ap.add_argument("--ice-seeds", type=int, default=6)
    ap.add_argument("--no-icefinder", action="store_true")
    ap.add_argument("--kinds", default="F,I", help="observables to report (comma-separated)")
    ap.add_argument("--notes", default=None, help="Markdown file placed under the fold list (budgets, reading)")
    a = ap.parse_args(argv)
    kfold_evaluate(a.networks, a.out, a.figure, real_dir=tdata.require_real_dir(ap, a.real), published_dir=a.published,
                   ice_seeds=a.ice_seeds, icefinder=not a.no_icefinder, notes=a.notes, kinds=tuple(a.kinds.split(",")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
