"""training.hybrid: the (logit p, line z) combination and the plot rows it is fitted on."""

from __future__ import annotations

import numpy as np

from auspex_helcaraxe.network import load_networks
from auspex_helcaraxe.simulate import simulate_dataset
from auspex_helcaraxe.training.hybrid import Combination, plot_rows


def test_combination_learns_what_the_line_contrast_adds():
    rng = np.random.default_rng(0)
    rows = []
    for kind in ("I", "F"):
        for _ in range(2000):
            y = int(rng.random() < 0.4)
            z = rng.normal(2.0 * y, 1.0)  # the ring lifts the line contrast ...
            p = 1 / (1 + np.exp(-rng.normal(0.5 * y, 1.5)))  # ... and barely the network's p
            rows.append({"kind": kind, "p": p, "z": z, "label": y})
    comb = Combination(rows)
    for kind in ("I", "F"):
        coef = comb.models[kind][2]
        assert coef[1] > coef[0] > 0  # z carries more weight than logit p here
        hi, lo = comb(kind, [0.5, 0.5], [3.0, -1.0])
        assert hi > 0.8 > 0.2 > lo
    assert set(comb.describe()) == {"I", "F"}


def test_plot_rows_carry_p_z_and_the_simulators_labels():
    ds = simulate_dataset(4, ice={"probability": 1.0, "strength": 3.0})
    rows = plot_rows(ds.reflections, load_networks(), ds.truth, weak_label=0.15)
    assert rows and {r["kind"] for r in rows} <= {"I", "F"}
    assert all(0 <= r["p"] <= 1 and np.isfinite(r["z"]) and r["label"] in (0, 1) for r in rows)
    assert any(r["label"] == 1 for r in rows)
    # without truth: no labels (real clean data and the independent draws)
    assert all("label" not in r for r in plot_rows(ds.reflections, load_networks()))


def test_plot_rows_label_weak_whole_rings_as_train_weak_label_does():
    ds = simulate_dataset(0, ice={"probability": 1.0, "strength": 3.0})  # range 1: a whole ring at 0.81, not visible
    nets = load_networks()
    plain = {(r["kind"], r["range"]): r["label"] for r in plot_rows(ds.reflections, nets, ds.truth)}
    weak = {(r["kind"], r["range"]): r["label"] for r in plot_rows(ds.reflections, nets, ds.truth, weak_label=0.15)}
    assert plain.keys() == weak.keys()
    assert all(weak[k] >= plain[k] for k in plain) and sum(weak.values()) > sum(plain.values())
