"""Ice-free control windows (controls.py): placement, the discount, and the detector's use of them."""

from __future__ import annotations

import numpy as np
import pytest

from auspex_helcaraxe import controls
from auspex_helcaraxe.host import Host
from auspex_helcaraxe.ice_ranges import ice_ranges
from auspex_helcaraxe.network import ModelCard
from auspex_helcaraxe.plots import make_plots
from auspex_helcaraxe.reflections import Observable
from auspex_helcaraxe.results import AnalysisOptions
from auspex_helcaraxe.simulate import demo_dataset
from auspex_helcaraxe.training.real_thresholds import lodo, rebaselined


def test_control_windows_are_as_wide_as_the_range_clear_of_every_ice_range_and_nearest_first():
    ranges = ice_ranges()
    for r in ranges:
        wins = controls.control_windows(r)
        assert 2 <= len(wins) <= 2 * controls.PER_SIDE, r.index
        m = controls.margin(r)
        for w in wins:
            assert w.d_max - w.d_min == pytest.approx(r.d_max - r.d_min)
            assert controls.D_LIMITS[0] <= w.d_min and w.d_max <= controls.D_LIMITS[1]
            for q in ranges:  # outside every range by the margin
                assert w.d_max <= q.d_min - m + 1e-9 or w.d_min >= q.d_max + m - 1e-9, (r.index, q.index)
        above = [w.d_min for w in wins if w.d_min >= r.d_max]
        below = [w.d_max for w in wins if w.d_max <= r.d_min]
        assert len(above) + len(below) == len(wins)
        assert above == sorted(above) and below == sorted(below, reverse=True)  # nearest first
    # range 5 (2.294–2.209 Å): the 2.209–2.094 gap is too narrow once the margins are kept
    r5 = ranges[4]
    assert min(w.d_min for w in controls.control_windows(r5) if w.d_min >= r5.d_max) == pytest.approx(2.294 + controls.margin(r5))
    assert max(w.d_max for w in controls.control_windows(r5) if w.d_max <= r5.d_min) < 2.041


def test_discount_never_raises_and_is_the_logit_excess_over_the_baseline():
    p = np.array([0.9, 0.6, 0.6, np.nan, 0.3])
    c = [np.array([0.05, 0.1]), np.array([0.5, 0.7]), np.zeros(0), np.array([0.9]), np.array([0.99])]
    got = controls.discount(p, c, baseline=0.1)
    assert got[0] == p[0]  # controls below the baseline: unchanged (never raised)
    lg = lambda x: np.log(x / (1 - x))
    e = np.mean(lg(c[1])) - lg(0.1)
    assert got[1] == pytest.approx(1 / (1 + np.exp(-(lg(0.6) - e))))
    assert got[1] < 0.5 < p[1]
    assert got[2] == p[2]  # no usable control window: unchanged
    assert np.isnan(got[3])
    assert np.all(got[~np.isnan(p)] <= p[~np.isnan(p)])
    assert controls.excess(np.zeros(0), 0.1) == 0.0
    # the min aggregate: discounted only as far as the least ice-like window is above the baseline
    m = controls.discount(p, c, baseline=0.1, aggregate="min")
    assert m[1] == pytest.approx(1 / (1 + np.exp(-(lg(0.6) - (lg(0.5) - lg(0.1))))))
    assert got[1] < m[1] < p[1]
    assert controls.excess(np.array([0.05, 0.9]), 0.1, "min") == 0.0 < controls.excess(np.array([0.05, 0.9]), 0.1)
    assert controls.baseline_of([np.array([0.1, 0.3]), np.zeros(0), np.array([0.2])]) == pytest.approx(0.2)


class FakeNetwork:
    """Answers ``answer`` on every plot; counts the plots it was given."""

    def __init__(self, baseline, answer):
        self.card = ModelCard("fake", "I", control_baseline=baseline)
        self.answer = answer
        self.seen = 0

    def predict(self, x):
        self.seen += len(x)
        return np.full(len(x), self.answer, np.float32)


def test_score_computes_control_windows_only_where_they_can_change_a_decision():
    obs = demo_dataset().reflections.observables["I"]
    plots = make_plots(obs)
    pred = plots.predictable
    n_pred = int(pred.sum())
    plain = FakeNetwork(None, 0.8)
    s = controls.score(obs, plots, plain)
    assert plain.seen == n_pred and s.baseline is None and not s.checked.any()
    np.testing.assert_array_equal(s.p[pred], s.network[pred])
    # a network that answers 0.8 everywhere: its control windows look as ice-like as the ranges
    everywhere = FakeNetwork(0.1, 0.8)
    s = controls.score(obs, plots, everywhere)
    assert everywhere.seen > n_pred and np.array_equal(s.checked, pred)
    assert all(len(c) for c, ok in zip(s.controls, pred) if ok)
    np.testing.assert_allclose(s.p[pred], 0.1, atol=1e-6)  # σ(logit 0.8 − (logit 0.8 − logit 0.1))
    # below the threshold a discount cannot change a decision: no window is scored, p is the network's
    quiet = FakeNetwork(0.1, 0.3)
    s = controls.score(obs, plots, quiet)
    assert quiet.seen == n_pred and not s.checked.any()
    np.testing.assert_array_equal(s.p[pred], s.network[pred])
    # ... unless the threshold in use is lower (e.g. --threshold 0.2)
    s = controls.score(obs, plots, FakeNetwork(0.1, 0.3), threshold=0.2)
    assert np.array_equal(s.checked, pred) and np.all(s.p[pred] < 0.3)
    # controls=True scores every window without discounting when there is no baseline
    s = controls.score(obs, plots, FakeNetwork(None, 0.8), controls=True)
    assert s.baseline is None and all(len(c) for c, ok in zip(s.controls, pred) if ok)
    np.testing.assert_array_equal(s.p, s.network)


def test_control_windows_beyond_the_data_are_not_used():
    full = demo_dataset().reflections.observables["I"]  # d_min 1.6 Å
    keep = full.d >= 2.0
    obs = Observable("I", full.columns, full.d[keep], full.values[keep], full.sigmas[keep])
    r5 = ice_ranges()[4]
    got = controls.control_probabilities(obs, [r5], FakeNetwork(0.1, 0.3))[0]
    usable = [w for w in controls.control_windows(r5) if w.d_min >= obs.d_min]
    assert len(got) == len(usable) == 2 < len(controls.control_windows(r5))
    assert all(w.d_min > r5.d_max for w in usable)  # only the low-resolution side is left


@pytest.fixture
def network_dirs(network_copy):
    """The shipped networks twice: cards without a control baseline, and with 0.001 (almost every
    control window is above it); no pair rule (tests/test_pairs.py; it would flag ranges below the
    threshold)."""
    return {name: network_copy(name, control_baseline=b, pair_threshold=None)
            for name, b in (("plain", None), ("low", 0.001))}


def test_detector_reports_network_and_control_probabilities_and_decides_on_the_discounted_one(network_dirs):
    refl = demo_dataset().reflections
    host = Host()
    plain = host.analyse(refl, "helcaraxe", AnalysisOptions(networks=str(network_dirs["plain"])))
    disc = host.analyse(refl, "helcaraxe", AnalysisOptions(networks=str(network_dirs["low"])))
    n_checked = n_discounted = 0
    for a, b in zip(plain.results, disc.results):
        assert "control_baseline" not in a.info and b.info["control_baseline"] == 0.001
        for ra, rb in zip(a.ranges, b.ranges):
            if ra.value is None:
                continue
            assert "network_probability" not in ra.details and "control window" not in ra.details["evidence"]
            assert rb.details["network_probability"] == pytest.approx(ra.value, abs=1e-4)
            assert rb.value <= ra.value + 1e-9
            assert rb.flagged == (rb.value >= b.info["threshold"])
            checked = rb.details["control_probabilities"] is not None
            assert checked == (ra.value >= b.info["threshold"])  # windows only where they can matter
            assert ("control window" in rb.details["evidence"]) == checked
            n_checked += checked
            if checked and rb.details["control_probabilities"]:
                e = controls.excess(np.array(rb.details["control_probabilities"]), 0.001)
                assert (rb.value < ra.value - 1e-6) == (e > 1e-3)
                n_discounted += rb.value < ra.value - 1e-6
    assert n_checked > 0 and n_discounted > 0


def test_lodo_estimates_the_control_baseline_without_the_held_out_data_set():
    # 20 clean data sets: control windows at 0.1, one plot each at 0.45; data set "odd" has its plot at
    # 0.9 and its control windows at 0.9 too (the network answers to the data set, not to ice)
    rows = [{"dataset": f"d{i:02d}", "range": 1, "p": 0.45, "p_network": 0.45, "controls": [0.1, 0.1]} for i in range(20)]
    rows.append({"dataset": "odd", "range": 5, "p": 0.9, "p_network": 0.9, "controls": [0.9, 0.9]})
    disc, b = rebaselined(rows)
    assert b == pytest.approx(0.1)
    assert disc[-1]["p"] == pytest.approx(0.1, abs=1e-6) and disc[0]["p"] == pytest.approx(0.45)
    res = lodo(disc)
    assert res["false_positive_datasets"] == []
    # without control windows the same scores flag the odd data set held out
    plain = [{**r, "controls": []} for r in rows]
    assert lodo(plain)["false_positive_datasets"] == ["odd"]


@pytest.mark.parametrize("seed", [4, 9, 19, 22, 32])
def test_windows_on_demand_decide_exactly_as_windows_everywhere(seed):
    """The runtime scores control windows only where a decision can depend on them; the flags, the
    single-observable and the joint ones, equal those with every range's windows applied."""
    from auspex_helcaraxe.simulate import simulate_dataset

    refl = simulate_dataset(seed, ice={"probability": 1.0}).reflections
    host = Host()
    lazy = host.analyse(refl, "both", AnalysisOptions())
    full = host.analyse(refl, "both", AnalysisOptions(extra={"controls": "all"}))
    assert lazy.joint and len(lazy.joint) == len(full.joint)  # the shipped combiner applies
    assert lazy.decision().keys() == full.decision().keys()
    for a, b in zip(lazy.results, full.results):
        assert [r.flagged for r in a.ranges] == [r.flagged for r in b.ranges]
    for a, b in zip(lazy.joint, full.joint):
        assert a["flagged"] == b["flagged"]
        if a["flagged"]:  # windows were asked for: the same inputs as with windows everywhere
            assert (a["p_I"], a["p_F"], a["p_joint"]) == pytest.approx((b["p_I"], b["p_F"], b["p_joint"]), abs=1e-6)
        else:
            assert a["p_joint"] >= b["p_joint"] - 1e-9  # an upper bound of the discounted one


def test_control_probabilities_come_in_window_order_whatever_else_is_scored():
    """A range's windows are reported nearest first per side (``control_windows``), whether the range
    is scored alone or in one batch with others (the on-demand paths score different sets)."""
    from auspex_helcaraxe.network import load_networks

    obs = demo_dataset().reflections.observables["I"]
    net = load_networks()["I"]
    r = ice_ranges()
    alone = controls.control_probabilities(obs, [r[4]], net)[0]
    batch = controls.control_probabilities(obs, [r[0], r[4], r[7]], net)
    assert len(alone) >= 3 and len(set(np.round(alone, 6))) == len(alone)  # distinct, so the order is visible
    np.testing.assert_allclose(batch[1], alone, rtol=1e-5)
    np.testing.assert_allclose(batch[0], controls.control_probabilities(obs, [r[0]], net)[0], rtol=1e-5)
