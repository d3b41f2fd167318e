"""Evaluation of Helcaraxe networks side by side with the published networks and Icefinder
(``helcaraxe evaluate``). Runs through the TFLite runtime only — no TensorFlow.

Three test sets, the same inputs for every contender:

1. simulated: ``n_test`` data sets from :func:`simulate.simulate_dataset` with seeds drawn from
   ``TEST_SEED`` (training draws its data-set seeds from ``train.DATA_SEED_BASE + seed``);
2. semi-synthetic: the held-out clean real data sets (odd positions of
   :func:`data.background_split`, never used in training) with simulated ice added
   (:func:`simulate.add_ice`, ``ice_seeds`` draws per data set);
3. real: every readable data set in ``labels.tsv`` as it is (``ice`` ranges positive, ``clean``
   negative; ``uncertain`` / ``excised`` / ``unlabelled`` reported separately).

Metrics as in Nolte et al. (2022): accuracy, sensitivity and specificity per plot (range ×
observable) with 95 % Wilson intervals, per range and per data set; plus the detection rate
against ice strength (simulated truth ``strength``: the ring's bias in units of the local mean
intensity) and the strength at 50 % detection.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..controls import discount_by_card, predictable_controls
from ..errors import InputError
from ..ice_ranges import ice_ranges
from ..network import Network, load_networks, plots_by_scale, row_thresholds, scale_of
from ..readers import read
from ..reflections import Reflections
from ..results import AnalysisOptions
from . import data as tdata
from .metrics import binary_metrics, detection_curve, falls_with_strength, fmt, strength_at_half

TEST_SEED = 20_221_001  # simulated test set (1); training uses seeds 1000 + seed
ICE_SEED = 20_221_002  # ice added to the held-out real backgrounds (2)
STRENGTH_EDGES = np.array([0.0, 0.03, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 1e9])
ICEFINDER = "icefinder"


@dataclass
class Item:
    """One data set to evaluate: its reflections and how to label each (observable, range)."""

    id: str
    reflections: Reflections
    label: Callable[[str, int], bool | None]  # None: unknown (not scored)
    strength: Callable[[str, int], float] = lambda kind, idx: 0.0
    category: str = ""


COLUMNS = ("dataset", "category", "kind", "range", "label", "strength", "predictable", "n_reflections")


@dataclass
class Rows:
    """One row per (data set, observable, covered range)."""

    dataset: list[str] = field(default_factory=list)
    category: list[str] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    range: list[int] = field(default_factory=list)
    label: list[float] = field(default_factory=list)  # 1, 0 or nan (unknown)
    strength: list[float] = field(default_factory=list)
    predictable: list[bool] = field(default_factory=list)
    n_reflections: list[int] = field(default_factory=list)  # in the range's plot
    flagged: dict[str, np.ndarray] = field(default_factory=dict)
    prob: dict[str, np.ndarray] = field(default_factory=dict)

    def arrays(self) -> None:
        for k in COLUMNS:
            setattr(self, k, np.asarray(getattr(self, k)))

    @classmethod
    def concat(cls, parts: list["Rows"]) -> "Rows":
        """The rows of ``parts`` (already ``arrays()``-ed) one after another; ``flagged`` / ``prob``
        keep the contenders every part has (e.g. the k-fold networks of each fold as one ``ours``)."""
        out = cls()
        for k in COLUMNS:
            setattr(out, k, np.concatenate([np.asarray(getattr(r, k)) for r in parts]))
        for attr in ("flagged", "prob"):
            names = [n for n in getattr(parts[0], attr) if all(n in getattr(r, attr) for r in parts)]
            setattr(out, attr, {n: np.concatenate([getattr(r, attr)[n] for r in parts]) for n in names})
        return out


def contenders_from(networks_dir: str | os.PathLike | None, published_dir: str | os.PathLike | None) -> dict[str, dict]:
    """``{"ours": networks, "published": networks}`` (published only when its directory exists)."""
    out = {"ours": load_networks(networks_dir)}
    if published_dir is not None and Path(published_dir).is_dir():
        out["published"] = load_networks(published_dir)
    return out


def collect(items: Iterable[Item], contenders: dict[str, dict[str, Network]], icefinder: bool = True,
            icefinder_cutoff: float = 5.0, log: Callable[[str], None] | None = None) -> Rows:
    """Predict every covered range of every item with every contender (batched per network)."""
    host = None
    if icefinder:
        from ..host import Host

        host = Host()
    rows = Rows()
    inputs: dict[str, dict[str, list[np.ndarray]]] = {"I": {}, "F": {}}  # per observable and plot scale
    where: dict[str, list[int]] = {"I": [], "F": []}
    controls = {name: {"I": [], "F": []} for name in contenders}  # per predictable plot, when a card has a baseline
    ice_flags: list[bool] = []
    n_items = 0
    for item in items:
        n_items += 1
        ice_ranges_flagged: dict[str, set[int]] = {}
        if host is not None:
            try:
                analysis = host.analyse(item.reflections, detectors=ICEFINDER,
                                        options=AnalysisOptions(icefinder_cutoff=icefinder_cutoff))
                for res in analysis.results:
                    ice_ranges_flagged[res.observable] = set(res.flagged_ranges)
            except InputError:
                pass  # Icefinder cannot score this data set: nothing flagged
        for kind, obs in item.reflections.observables.items():
            if kind not in ("I", "F") or len(obs.d) == 0:
                continue
            by_scale = plots_by_scale(obs, [nets.get(kind) for nets in contenders.values()])
            plots = by_scale["linear"]  # ranges, sizes and predictability are the same on every scale
            pred = plots.predictable
            x = {s: p.inputs for s, p in by_scale.items()}
            for name, nets in contenders.items():
                c = predictable_controls(obs, plots, nets[kind]) if kind in nets else None
                if c is not None:
                    controls[name][kind] += c
            for k, r in enumerate(plots.ranges):
                lab = item.label(kind, r.index)
                rows.dataset.append(item.id)
                rows.category.append(item.category)
                rows.kind.append(kind)
                rows.range.append(r.index)
                rows.label.append(math.nan if lab is None else float(lab))
                rows.strength.append(float(item.strength(kind, r.index)))
                rows.predictable.append(bool(pred[k]))
                rows.n_reflections.append(int(plots.n_in_range[k]))
                ice_flags.append(r.index in ice_ranges_flagged.get(kind, set()))
                if pred[k]:
                    for s, xs in x.items():
                        inputs[kind].setdefault(s, []).append(xs[k])
                    where[kind].append(len(rows.range) - 1)
        if log and n_items % 100 == 0:
            log(f"  {n_items} data sets")
    rows.arrays()
    n = rows.range.size
    for name, nets in contenders.items():
        prob = np.full(n, np.nan)
        for kind in ("I", "F"):
            if where[kind] and kind in nets:
                x = np.stack(inputs[kind][scale_of(nets[kind])])
                p = np.concatenate([nets[kind].predict(x[i : i + 512]) for i in range(0, len(x), 512)])
                prob[np.array(where[kind])] = discount_by_card(p, controls[name][kind], nets[kind].card)
        rows.prob[name] = prob
        thr = row_thresholds(nets, rows.kind, rows.n_reflections)  # raised for sparse plots by a card's sparse_threshold
        rows.flagged[name] = ~np.isnan(prob) & (np.nan_to_num(prob, nan=-1.0) >= thr)
    if icefinder:
        rows.flagged["Icefinder"] = np.array(ice_flags, bool)
    return rows


# ----------------------------------------------------------------------------- test sets


def simulated_items(n: int, seed: int = TEST_SEED) -> Iterable[Item]:
    """The simulated test set (1): ``n`` data sets, ice in 70 % of them as in training."""
    from ..simulate import simulate_dataset

    rng = np.random.default_rng(seed)
    for k in range(n):
        ds = simulate_dataset(np.random.default_rng(rng.integers(2**63)), name=f"test-{seed}-{k}")
        truth = ds.truth
        yield Item(
            id=f"sim{k}", reflections=ds.reflections, category="simulated",
            label=lambda kind, idx, t=truth: bool(t[idx].label(kind)) if idx in t else False,
            strength=lambda kind, idx, t=truth: float(t[idx].strength) if idx in t else 0.0,
        )


def semi_synthetic_items(real_dir: str | os.PathLike, ice_seeds: int = 6, seed: int = ICE_SEED,
                         log: Callable[[str], None] | None = None,
                         backgrounds: list[Path] | None = None) -> Iterable[Item]:
    """Semi-synthetic set (2): each held-out clean real data set once as it is (all negative) and
    ``ice_seeds`` times with simulated ice added. ``backgrounds``: other clean data sets to use
    (default: the held-out half of :func:`data.background_split`; ``training.kfold`` passes each
    fold's test part)."""
    from ..simulate import add_ice

    held = tdata.background_split(real_dir)[1] if backgrounds is None else backgrounds
    rng = np.random.default_rng(seed)
    for path in held:
        try:
            base = read(path)
        except InputError as exc:
            if log:
                log(f"  {path.name}: skipped ({exc})")
            continue
        yield Item(id=f"{path.name}", reflections=base, category="real clean (held out)",
                   label=lambda kind, idx: False)
        for j in range(ice_seeds):
            refl, truth = add_ice(base, np.random.default_rng(rng.integers(2**63)))
            yield Item(
                id=f"{path.name}+ice{j}", reflections=refl, category="semi-synthetic",
                label=lambda kind, idx, t=truth: bool(t[idx].label(kind)) if idx in t else False,
                strength=lambda kind, idx, t=truth: float(t[idx].strength) if idx in t else 0.0,
            )


def real_items(real_dir: str | os.PathLike, log: Callable[[str], None] | None = None) -> Iterable[Item]:
    """Real set (3): every readable data set of ``labels.tsv`` (labels only for ice / clean)."""
    train_bg, _ = tdata.background_split(real_dir)
    train_bg = {str(p) for p in train_bg}
    for row, refl in tdata.read_real(real_dir, log=log):
        if row.label == "ice":
            lab = lambda kind, idx, r=row: idx in r.ice_ranges.get(kind, frozenset())
        elif row.label == "clean":
            lab = lambda kind, idx: False
        else:
            lab = lambda kind, idx: None
        cat = row.label + (" (training background)" if str(row.path) in train_bg else "")
        yield Item(id=row.relpath, reflections=refl, label=lab, category=cat)


# ----------------------------------------------------------------------------- summaries


def _known(rows: Rows, mask: np.ndarray | None = None) -> np.ndarray:
    m = rows.predictable & ~np.isnan(rows.label)
    return m if mask is None else m & mask


def overall(rows: Rows, mask: np.ndarray | None = None) -> dict[str, dict]:
    """Per contender: binary metrics over predictable, labelled plots (optionally restricted)."""
    m = _known(rows, mask)
    return {name: binary_metrics(rows.label[m] == 1, f[m]) for name, f in rows.flagged.items()}


def _and(a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    return a if b is None else a & b


def per_range(rows: Rows, mask: np.ndarray | None = None) -> dict[int, dict[str, dict]]:
    return {r.index: overall(rows, _and(rows.range == r.index, mask)) for r in ice_ranges()
            if np.any(_known(rows, _and(rows.range == r.index, mask)))}


def per_dataset(rows: Rows, mask: np.ndarray | None = None) -> dict[str, dict]:
    """Data-set level: iced when any labelled range of any observable is iced; flagged when any is
    (``mask``, e.g. one observable's rows: only those count)."""
    m = _known(rows, mask)
    ids = np.unique(rows.dataset[m])
    out = {}
    for name, f in rows.flagged.items():
        truth = np.array([np.any(rows.label[m & (rows.dataset == i)] == 1) for i in ids])
        flag = np.array([np.any(f[m & (rows.dataset == i)]) for i in ids])
        out[name] = binary_metrics(truth, flag)
    return out


def strength_curves(rows: Rows, edges: np.ndarray = STRENGTH_EDGES, mask: np.ndarray | None = None) -> dict[str, dict]:
    """Detection rate against ice strength over predictable plots that received ice (strength > 0)."""
    m = _and(rows.predictable & (rows.strength > 0), mask)
    out = {}
    for name, f in rows.flagged.items():
        c = detection_curve(rows.strength[m], f[m], edges)
        out[name] = {"curve": c, "s50": strength_at_half(c), "falls": falls_with_strength(c)}
    return out


BLOCK_BEGIN = "<!-- kfold:begin (generated by auspex_helcaraxe.training.kfold; kept by evaluate()) -->"
BLOCK_END = "<!-- kfold:end -->"
# a hand-written section (leave-one-family-out retraining) that evaluate() keeps when it rewrites the page
LOFO_BEGIN = "<!-- lofo:begin (hand-written; kept by evaluate()) -->"
LOFO_END = "<!-- lofo:end -->"


def kept_block(text: str, begin: str = BLOCK_BEGIN, end: str = BLOCK_END) -> str:
    """A generated block of an evaluation page, from ``begin`` to ``end`` (both included; default the
    k-fold markers), or ``""``."""
    a = text.find(begin)
    b = text.find(end, a) if a >= 0 else -1
    return text[a : b + len(end)] if 0 <= a < b else ""


def replace_block(path: str | os.PathLike, block: str, begin: str, end: str) -> Path:
    """Put ``block`` (which starts with ``begin`` and ends with ``end``) in place of that span of
    ``path``, or append it: the one way generated sections (k-fold, independent models) are written."""
    path = Path(path)
    text = path.read_text() if path.is_file() else ""
    old = kept_block(text, begin, end)
    block = block.rstrip("\n")
    text = text.replace(old, block) if old else text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def put_block(path: str | os.PathLike, body: str) -> Path:
    """Write ``body`` between the k-fold markers of ``path``: replaces the block, or appends it."""
    return replace_block(path, f"{BLOCK_BEGIN}\n{body.strip()}\n{BLOCK_END}", BLOCK_BEGIN, BLOCK_END)


def _metrics_table(title_rows: list[tuple[str, dict[str, dict]]], names: list[str]) -> list[str]:
    lines = ["| set | detector | accuracy | sensitivity | specificity |", "|---|---|---|---|---|"]
    for title, res in title_rows:
        for name in names:
            if name in res:
                r = res[name]
                lines.append(f"| {title} | {name} | {fmt(r['accuracy'])} | {fmt(r['sensitivity'])} | {fmt(r['specificity'])} |")
    return lines


def _range_table(pr: dict[int, dict[str, dict]], names: list[str]) -> list[str]:
    head = "| range | d (Å) | plots (iced) | " + " | ".join(f"sens. {n}" for n in names) + " | " + " | ".join(
        f"spec. {n}" for n in names) + " |"
    lines = [head, "|" + "---|" * (3 + 2 * len(names))]
    rs = {r.index: r for r in ice_ranges()}
    for idx, res in pr.items():
        any_r = next(iter(res.values()))
        cells = [f"{idx}", f"{rs[idx].d_max:.3f}–{rs[idx].d_min:.3f}", f"{any_r['n']} ({any_r['positives']})"]
        cells += [_short(res[n]["sensitivity"]) for n in names]
        cells += [_short(res[n]["specificity"]) for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _short(p: dict) -> str:
    return "–" if not p["n"] else f"{p['value']:.2f} [{p['lo']:.2f}, {p['hi']:.2f}]"


def _compare(label: str, res: dict[str, dict], ours: str = "ours", other: str = "published") -> list[str]:
    """Plain statements where ours is worse than ``other`` (and whether the intervals separate)."""
    if ours not in res or other not in res:
        return []
    out = []
    for metric in ("sensitivity", "specificity", "accuracy"):
        a, b = res[ours][metric], res[other][metric]
        if not a["n"] or not b["n"]:
            continue
        if a["value"] < b["value"]:
            sig = "significantly (95 % intervals do not overlap)" if a["hi"] < b["lo"] else "within overlapping 95 % intervals"
            out.append(f"- {label}: our {metric} {a['value']:.3f} is lower than {other}'s {b['value']:.3f}, {sig}.")
    return out


def _bin(cv: dict, i: int) -> str:
    lo, hi = cv["lo_edge"][i], cv["hi_edge"][i]
    return f"≥ {lo:g}" if lo > 0 and hi > 1e3 * lo else f"{lo:g}–{hi:g}"


def _draw_curves(curves: dict[str, dict[str, dict]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5.2 * len(curves), 4.0), squeeze=False)
    for ax, (title, cs) in zip(axes[0], curves.items()):
        for name, c in cs.items():
            cv = c["curve"]
            ok = cv["n"] > 0
            x = cv["centre"][ok]
            line, = ax.plot(x, cv["rate"][ok], **{"marker": "o", **c.get("style", {})},
                            label=f"{name} (50 % at {c['s50']:.2g})")
            if c.get("band", True):  # 95 % Wilson band
                ax.fill_between(x, cv["lo"][ok], cv["hi"][ok], alpha=0.15, color=line.get_color())
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.axhline(0.5, color="grey", lw=0.6, ls=":")
        ax.set_xlabel("ice strength (ring bias / local mean intensity)")
        ax.set_ylabel("fraction of plots flagged")
        ax.set_title(title)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def evaluate(
    networks_dir: str | os.PathLike | None = None,
    out_md: str | os.PathLike | None = "docs/evaluation.md",
    *,
    published_dir: str | os.PathLike | None = None,
    real_dir: str | os.PathLike | None = None,
    n_test: int = 600,
    test_seed: int = TEST_SEED,
    ice_seeds: int = 6,
    icefinder: bool = True,
    sets: tuple[str, ...] = ("simulated", "semi", "real"),
    figure: str | os.PathLike | None = None,
    notes: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Evaluate ``networks_dir`` (default: the shipped networks) against the published networks and
    Icefinder on the simulated (1), semi-synthetic (2) and real (3) sets; write ``out_md`` (Markdown)
    and the detection-vs-strength figure (``figure``, default ``<out_md dir>/detection_vs_strength.png``).

    ``published_dir`` defaults to ``<shared>/reference/published`` and ``real_dir`` to
    ``<shared>/data/real`` when ``../shared`` exists; sets (2) and (3) are skipped without real data.
    ``sets`` chooses among ``"simulated"``, ``"semi"`` and ``"real"`` (the simulated set always runs).
    ``notes``: a Markdown file inserted after the introduction (a hand-written summary).
    Returns all metrics (plain dicts; the raw rows under ``"rows"``).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    real_dir = tdata.real_dir(real_dir)
    if published_dir is None and real_dir is not None:
        published_dir = tdata.published_dir_beside(real_dir)
    contenders = contenders_from(networks_dir, published_dir)
    names = list(contenders) + (["Icefinder"] if icefinder else [])
    result: dict[str, Any] = {"contenders": {n: {k: {"name": v.card.name, "sha256": v.card.sha256} for k, v in nets.items()}
                                             for n, nets in contenders.items()}, "rows": {}}

    log(f"(1) simulated test set: {n_test} data sets, seed {test_seed}")
    sim = collect(simulated_items(n_test, test_seed), contenders, icefinder, log=log)
    result["rows"]["simulated"] = sim
    semi = real = None
    if real_dir is not None and "semi" in sets:
        log("(2) semi-synthetic: held-out clean real data sets + simulated ice")
        semi = collect(semi_synthetic_items(real_dir, ice_seeds, log=log), contenders, icefinder, log=log)
        result["rows"]["semi"] = semi
    if real_dir is not None and "real" in sets:
        log("(3) real data sets as they are")
        real = collect(real_items(real_dir, log=log), contenders, icefinder, log=log)
        result["rows"]["real"] = real

    curves = {"(1) simulated": strength_curves(sim)}
    if semi is not None:
        curves["(2) semi-synthetic"] = strength_curves(semi)
    out_md = Path(out_md) if out_md is not None else None
    fig_path = Path(figure) if figure is not None else ((out_md.parent if out_md else Path(".")) / "detection_vs_strength.png")
    _draw_curves(curves, fig_path)
    result["curves"] = curves
    result["figure"] = str(fig_path)

    md: list[str] = []
    md += ["# Evaluation of the Helcaraxe networks", "",
           (f"Generated by `auspex_helcaraxe.training.evaluate.evaluate()` (`helcaraxe evaluate`) on "
            f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC. Everything runs through the TFLite runtime."), "",
           "Contenders, on exactly the same plots:", ""]
    for n, nets in contenders.items():
        for k, v in sorted(nets.items()):
            md.append(f"- **{n}** {k}: `{v.path.name}` ({v.card.name}, sha256 `{v.card.sha256[:12]}…`)")
    if icefinder:
        md.append("- **Icefinder** (Thorn et al. 2017) through the plugin host, cutoff |score| ≥ 5 in a range's bins")
    md += ["", ("Scored units are *plots*: one per (data set, observable, covered ice range) that is predictable "
                "(the published blank-window rule). Nonpredictable plots get no verdict from any detector and are "
                "counted separately. Intervals are 95 % Wilson score intervals; `k/n` gives the counts. A data set "
                "counts as iced when any of its labelled plots is iced, as flagged when any is flagged."), ""]

    if notes is not None and Path(notes).is_file():
        md += [f"## Summary (hand-written, from `{Path(notes).name}`)", "", Path(notes).read_text().strip(), ""]

    def section(title: str, rows: Rows, extra: list[str] | None = None) -> None:
        md.extend([f"## {title}", ""] + (extra or []))
        n_np = int(np.sum(~rows.predictable & ~np.isnan(rows.label)))
        n_np_ice = int(np.sum(~rows.predictable & (rows.label == 1)))
        md.append(f"{len(np.unique(rows.dataset))} data sets, {int(np.sum(_known(rows)))} labelled predictable plots "
                  f"({int(np.sum(_known(rows) & (rows.label == 1)))} iced); {n_np} labelled plots nonpredictable "
                  f"({n_np_ice} of them iced).")
        md.append("")
        res = [("all plots", overall(rows))]
        for kind in ("F", "I"):
            if np.any(_known(rows, rows.kind == kind)):
                res.append((f"{kind} plots", overall(rows, rows.kind == kind)))
        if np.any(rows.strength > 0):  # simulated ice: specificity on the plots that carry none at all
            for kind in ("F", "I"):
                if np.any(_known(rows, (rows.kind == kind) & (rows.strength == 0))):
                    res.append((f"{kind} plots without simulated ice", overall(rows, (rows.kind == kind) & (rows.strength == 0))))
        res.append(("data sets", per_dataset(rows)))
        md.extend(_metrics_table(res, names))
        md.append("")
        worse = []
        for t, r in res:
            worse += _compare(f"{title.split(':')[0]} {t}", r)
        result.setdefault("worse", []).extend(worse)
        md.extend(["Where ours is worse than the published networks:", ""] + (worse or ["- nowhere on this set."]) + [""])
        pr = per_range(rows)
        md.extend(["<details><summary>Per range</summary>", "", *_range_table(pr, names), "", "</details>", ""])
        result.setdefault("metrics", {})[title] = {"overall": dict(res), "per_range": pr}

    section("(1) Simulated test set", sim,
            [(f"Data sets from the simulator with test seeds (`TEST_SEED = {test_seed}`), disjoint from training "
              "(`train.DATA_SEED_BASE + seed`); labels from the simulator's ground truth."), ""])
    if semi is not None:
        _, held = tdata.background_split(real_dir)
        section("(2) Semi-synthetic: held-out real data sets + simulated ice", semi,
                [f"The {len(held)} clean real data sets at odd positions of the fixed split "
                 "(`training.data.background_split`: clean data sets sorted by path, odd positions) — never "
                 f"used in training — each as it is (all ranges negative) and {ice_seeds}× with simulated ice "
                 f"(`simulate.add_ice`, seed {ICE_SEED}). Held out: " + ", ".join(f"`{p.name}`" for p in held) + ".", ""])
    md += ["## Detection rate against ice strength", "",
           f"![detection vs strength]({fig_path.name})", "",
           ("Fraction of predictable plots that received ice (strength > 0, labelled iced or not) flagged, per "
            "strength bin; strength = the ring's largest bias in the range in units of the local mean intensity "
            "(simulator ground truth). *50 %* = strength where detection first reaches 50 % (log-interpolated)."), "",
           "| set | detector | strength at 50 % | detection in strongest bins (≥ 5) | falls as ice gets stronger? |",
           "|---|---|---|---|---|"]
    for title, cs in curves.items():
        for name, c in cs.items():
            cv = c["curve"]
            strong = cv["lo_edge"] >= 5.0
            k, n = int(cv["k"][strong].sum()), int(cv["n"][strong].sum())
            falls = "; ".join(f"{_bin(cv, a)} → {_bin(cv, b)}" for a, b in c["falls"][:3]) or "no"
            md.append(f"| {title} | {name} | {c['s50']:.3g} | {k}/{n} | {falls} |")
    md += ["", "<details><summary>Curve values</summary>", "",
           "| set | detector | " + " | ".join(_bin({"lo_edge": STRENGTH_EDGES[:-1], "hi_edge": STRENGTH_EDGES[1:]}, i)
                                             for i in range(len(STRENGTH_EDGES) - 1)) + " |",
           "|---|---|" + "---|" * (len(STRENGTH_EDGES) - 1)]
    for title, cs in curves.items():
        for name, c in cs.items():
            cv = c["curve"]
            md.append(f"| {title} | {name} | " + " | ".join(
                "–" if n == 0 else f"{k}/{n}" for k, n in zip(cv["k"], cv["n"])) + " |")
    md += ["", "</details>", ""]

    if real is not None:
        section("(3) Real data sets as they are", real,
                [("Labels from `labels.tsv`: `ice` ranges positive, every other range of an `ice` or `clean` data set "
                  "negative. The `clean` label means only that the published networks flag no range (not all "
                  "checked by eye), so this set favours the published networks' specificity by construction. "
                  "Clean data sets at even positions of the split were training backgrounds for ours "
                  "(with simulated ice on top)."), ""])
        md += ["### Per data set", "", "| data set | label | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
        for ds in np.unique(real.dataset):
            m = real.dataset == ds
            cat = real.category[m][0]
            cells = []
            for name in names:
                f = real.flagged[name][m]
                fl = [f"{k}{r}" for k, r, x in zip(real.kind[m], real.range[m], f) if x]
                cells.append(", ".join(fl) or "–")
            md.append(f"| `{ds}` | {cat} | " + " | ".join(cells) + " |")
        md += ["", "Flagged ranges as observable + range index (e.g. `F5`). Nonpredictable ranges are never flagged.", ""]

    result["markdown"] = "\n".join(md) + "\n"
    if out_md is not None:
        out_md.parent.mkdir(parents=True, exist_ok=True)
        # sections that are not recomputed here are kept, in this order: the independent contamination
        # models (training.independent), the thinned real data sets (training.thinned), the hand-written
        # leave-one-family-out section, then the k-fold section (training.kfold)
        from . import thinned

        text = out_md.read_text() if out_md.is_file() else ""
        kept = [_independent_section(out_md), kept_block(text, thinned.HEAD, thinned.END),
                kept_block(text, LOFO_BEGIN, LOFO_END), kept_block(text)]
        out_md.write_text(result["markdown"] + "".join("\n" + k + "\n" for k in kept if k))
        log(f"wrote {out_md} and {fig_path}")
    return result


def _independent_section(md_path: Path) -> str:
    """The section written by :mod:`.independent` in an existing ``md_path`` (kept on regeneration)."""
    from .independent import MD_END, SECTION_HEAD

    return kept_block(md_path.read_text(), SECTION_HEAD, MD_END) if md_path.is_file() else ""


def main(argv: list[str] | None = None) -> int:
    """``python -m auspex_helcaraxe.training.evaluate`` (the CLI has ``helcaraxe evaluate``)."""
    import argparse

    ap = argparse.ArgumentParser(description=evaluate.__doc__)
    ap.add_argument("--networks", default=None)
    ap.add_argument("--published", default=None)
    ap.add_argument("--real", default=None)
    ap.add_argument("--out", default="docs/evaluation.md")
    ap.add_argument("--n-test", type=int, default=600)
    ap.add_argument("--ice-seeds", type=int, default=6)
    ap.add_argument("--no-icefinder", action="store_true")
    ap.add_argument("--notes", default=None)
    a = ap.parse_args(argv)
    evaluate(a.networks, a.out, published_dir=a.published, real_dir=tdata.optional_real_dir(ap, a.real),
             n_test=a.n_test, ice_seeds=a.ice_seeds, icefinder=not a.no_icefinder, notes=a.notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
