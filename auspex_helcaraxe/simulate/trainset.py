"""Training sets for the Helcaraxe networks: simulated (and semi-synthetic) data sets turned into
plots by the one plot generator (:func:`plots.make_plots`), labelled from the simulator's truth."""

from __future__ import annotations

import numpy as np

from ..plots import make_plots
from ..reflections import Reflections
from .dataset import simulate_dataset
from .ice import range_of
from .semi import add_ice, vary_background

TRAINING_MAX_REFLECTIONS = 40000


def make_training_set(
    n_datasets: int,
    seed: int,
    observable: str = "F",
    backgrounds: list[Reflections] | None = None,
    *,
    background_fraction: float = 0.3,
    ice_probability: float = 0.85,
    mode_p: tuple[float, float, float] = (0.15, 0.35, 0.5),
    target_iced_fraction: float | None = 0.4,
    max_reflections: int = TRAINING_MAX_REFLECTIONS,
    vary_backgrounds: bool = False,
    clean_twins: bool = False,
    plot_scale: str = "linear",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    """Plots and labels from ``n_datasets`` data sets.

    Returns ``X`` (m, 80, 80, 1) float32 standardised plots (predictable plots only), ``y`` (m,) 0/1
    labels from the ground truth, ``groups`` (m,) the data-set number of each plot (split by it) and
    ``meta``: one dict per plot (dataset, source, range, strength, effects, hard_negatives, label).
    With ``backgrounds`` (clean real data sets), a ``background_fraction`` of the data sets are those
    with simulated ice added (or left clean, 1 − ``ice_probability`` of the time). When
    ``target_iced_fraction`` is set, plain negatives (no ice reaching the range, no hard negative) are
    thinned at random until iced plots make up about that fraction (never positives, never hard
    negatives). ``vary_backgrounds``: each use of a real background is another measurement of it
    (:func:`semi.vary_background`: a cut-off inside an ice range, a random subset, extra noise) instead of the same reflections.
    ``clean_twins``: for each real background given ice, also the plots of that same background without
    it, for the ranges the ice reaches (label 0, ``twin`` 1 in ``meta``, never thinned), so that a real
    background's own look never predicts the label and only the ice tells the pairs apart.
    ``plot_scale``: the y axis of the plots (``plots.PLOT_SCALES``; the card of the network trained on them says it).
    """
    rng = np.random.default_rng(seed)
    usable = [b for b in (backgrounds or []) if observable in b.observables]
    xs, ys, groups, meta = [], [], [], []
    for k in range(n_datasets):
        child = np.random.default_rng(rng.integers(2**63))
        if usable and rng.random() < background_fraction:
            bg = usable[int(rng.integers(len(usable)))]
            if vary_backgrounds:
                bg = vary_background(bg, child)
            if rng.random() < ice_probability:
                refl, truth = add_ice(bg, child, mode_p=list(mode_p))
                if clean_twins:
                    _add_twins(bg, truth, observable, k, xs, ys, groups, meta, plot_scale)
            else:
                refl, truth = bg, {}
            source = "semi:" + bg.name
        else:
            ds = simulate_dataset(child, name=f"train-{seed}-{k}", max_reflections=max_reflections,
                                  ice={"probability": ice_probability, "mode_p": list(mode_p)})
            refl, truth = ds.reflections, ds.truth
            source = "sim"
        obs = refl.observables.get(observable)
        if obs is None or not (range_of(obs.d) > 0).any():
            continue  # no observation inside any ice range: no predictable plot
        plots = make_plots(obs, scale=plot_scale)
        pred = plots.predictable
        if not pred.any():
            continue
        xs.append(plots.inputs[pred])
        for r, n_in in zip(np.array(plots.ranges, dtype=object)[pred], plots.n_in_range[pred]):
            t = truth.get(r.index)
            label = bool(t.label(observable)) if t is not None else False
            ys.append(int(label))
            groups.append(k)
            meta.append({
                "dataset": k, "source": source, "range": r.index, "label": int(label),
                "strength": float(t.strength) if t else 0.0,
                "effects": ",".join(t.effects) if t else "",
                "hard_negatives": ",".join(t.hard_negatives) if t else "",
                "n_in_range": int(n_in),
            })
    if not xs:
        return np.zeros((0, 80, 80, 1), np.float32), np.zeros(0, np.int8), np.zeros(0, np.int64), []
    X = np.concatenate(xs)
    y = np.array(ys, np.int8)
    g = np.array(groups, np.int64)
    if target_iced_fraction is not None:
        keep = _balance(rng, y, meta, target_iced_fraction)
        X, y, g, meta = X[keep], y[keep], g[keep], [m for m, k in zip(meta, keep) if k]
    return X, y, g, meta


def _add_twins(bg: Reflections, truth: dict, observable: str, k: int, xs: list, ys: list, groups: list, meta: list,
               plot_scale: str = "linear") -> None:
    """Append the clean plots of ``bg`` for the ranges the ice of ``truth`` reaches (``clean_twins``)."""
    obs = bg.observables.get(observable)
    reached = {i for i, t in truth.items() if t.strength > 0}
    if obs is None or not reached:
        return
    plots = make_plots(obs, scale=plot_scale)
    take = plots.predictable & np.array([r.index in reached for r in plots.ranges], bool)
    if not take.any():
        return
    xs.append(plots.inputs[take])
    for r, n_in in zip(np.array(plots.ranges, dtype=object)[take], plots.n_in_range[take]):
        ys.append(0)
        groups.append(k)
        meta.append({"dataset": k, "source": "semi:" + bg.name, "range": r.index, "label": 0, "strength": 0.0,
                     "effects": "", "hard_negatives": "", "n_in_range": int(n_in), "twin": 1})


def _balance(rng: np.random.Generator, y: np.ndarray, meta: list[dict], target: float) -> np.ndarray:
    """Thin plain negatives (not clean twins) so that positives make up about ``target`` of the set."""
    keep = np.ones(y.size, bool)
    n_pos = int(y.sum())
    plain = np.array([m["label"] == 0 and m["strength"] == 0 and not m["hard_negatives"] and not m.get("twin")
                      for m in meta], bool)
    n_other_neg = int(((y == 0) & ~plain).sum())
    if n_pos == 0:
        return keep
    wanted_neg = n_pos * (1 - target) / target
    n_plain_keep = int(max(wanted_neg - n_other_neg, 0))
    idx = np.flatnonzero(plain)
    if n_plain_keep < idx.size:
        keep[rng.choice(idx, idx.size - n_plain_keep, replace=False)] = False
    return keep
