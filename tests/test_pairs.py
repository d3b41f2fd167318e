"""The paired-weak-rings rule (pairs.py): flags, on-demand control windows, verdict and report."""

from __future__ import annotations

import numpy as np
import pytest

from auspex_helcaraxe import pairs, report
from auspex_helcaraxe.controls import score
from auspex_helcaraxe.host import Host
from auspex_helcaraxe.network import ModelCard
from auspex_helcaraxe.plots import make_plots
from auspex_helcaraxe.results import AnalysisOptions
from auspex_helcaraxe.simulate import demo_dataset


def test_reaching_needs_two_ranges_each_at_the_pair_threshold():
    nan = np.nan
    assert list(pairs.reaching(np.array([0.9, 0.1, nan, 0.2]), 0.25)) == []  # one strong range carries nothing
    assert list(pairs.reaching(np.array([0.3, 0.1, nan, 0.26]), 0.25)) == [0, 3]
    assert list(pairs.reaching(np.array([0.3, 0.25, 0.9, nan]), 0.25)) == [0, 1, 2]
    assert list(pairs.reaching(np.array([nan, nan]), 0.25)) == []
    # one t2 per range: t2 by the plot's size (steps of the card)
    steps = ((400, 0.25), (200, 0.30), (50, 0.45))
    n = np.array([500, 120, 300, 900, 20])
    t2 = pairs.thresholds(0.25, steps, n)
    np.testing.assert_array_equal(t2, [0.25, 0.45, 0.30, 0.25, np.inf])  # below every minimum: never counts
    assert pairs.thresholds(0.25, None, n) == 0.25
    assert list(pairs.reaching(np.array([0.3, 0.4, 0.29, 0.1, 0.99]), t2)) == []  # 0.4 < 0.45, 0.29 < 0.30
    assert list(pairs.reaching(np.array([0.3, 0.46, 0.31, 0.1, 0.99]), t2)) == [0, 1, 2]


def test_pair_result_on_clean_plots_counts_only_well_sampled_plots():
    from auspex_helcaraxe.training.real_thresholds import pair_result

    rows = [{"dataset": "a", "p": 0.3, "n": 500}, {"dataset": "a", "p": 0.28, "n": 150},
            {"dataset": "a", "p": 0.1, "n": 900}, {"dataset": "b", "p": 0.4, "n": 100}, {"dataset": "b", "p": 0.9, "n": 10}]
    assert pair_result(rows, 0.25)["flagged_datasets"] == ["b", "a"]
    res = pair_result(rows, 0.25, ((400, 0.25), (50, 0.45)))
    assert res["flagged_datasets"] == [] and res["datasets"] == 2 and res["pair_steps"] == [[400, 0.25], [50, 0.45]]
    # a's margins p - t2 + 0.25: 0.30, 0.28 - 0.45 + 0.25 = 0.08, 0.10; b has one plot that counts (10 < 50)
    assert res["highest_second_p"] == [("a", pytest.approx(0.1))]
    assert pair_result(rows, 0.25, ((400, 0.25), (100, 0.27)))["flagged_datasets"] == ["a"]


class RangeNetwork:
    """Answers per plot by the plot's position in the batch of the observable's ranges (``answers``);
    on control windows (any other batch) ``window``."""

    def __init__(self, answers, window, baseline=0.1, pair=0.25, threshold=0.5, steps=None):
        self.card = ModelCard("fake", "I", threshold=threshold, control_baseline=baseline, pair_threshold=pair,
                              pair_steps=steps)
        self.answers, self.window, self.n_ranges = np.asarray(answers, float), window, len(answers)
        self.seen = 0

    def predict(self, x):
        self.seen += len(x)
        if len(x) == self.n_ranges:
            return self.answers.copy()
        return np.full(len(x), self.window)


@pytest.fixture
def plots_i():
    obs = demo_dataset().reflections.observables["I"]
    plots = make_plots(obs)
    assert plots.predictable.all() and len(plots.ranges) >= 4
    return obs, plots


def test_check_flags_two_weak_ranges_after_their_windows_and_not_when_the_windows_explain_them(plots_i):
    obs, plots = plots_i
    n = len(plots.ranges)
    answers = np.full(n, 0.05)
    answers[[0, 2]] = [0.35, 0.3]
    net = RangeNetwork(answers, window=0.05)  # windows below the baseline: no discount
    first = score(obs, plots, net)
    assert not first.checked.any()  # nothing reaches 0.5: no window scored by the detector's own rule
    scores, pair = pairs.check(obs, plots, net, first)
    assert pair.ranks == (0, 2) and scores.checked[[0, 2]].all() and not scores.checked[[1, 3]].any()
    # the ranges' plots were scored once; only the two ranges' windows were added
    assert net.seen == n + len(scores.controls[0]) + len(scores.controls[2])
    np.testing.assert_allclose(scores.p[[0, 2]], [0.35, 0.3])
    # the same ranges on a data set whose control windows look ice-like: the discount removes the pair
    net = RangeNetwork(answers, window=0.4)
    scores, pair = pairs.check(obs, plots, net, score(obs, plots, net))
    assert pair.ranks == () and np.all(scores.p[[0, 2]] < 0.25)
    # t2 by plot size: the pair stands while both ranges are at or above their step's t2, and its evidence
    # says which t2 each met; when the sparser range's step asks for more than its p, the pair is gone
    n0, n2 = (int(plots.n_in_range[k]) for k in (0, 2))
    small = min(n0, n2)
    net = RangeNetwork(answers, window=0.05, steps=((small + 1, 0.25), (0, 0.30)))
    scores, pair = pairs.check(obs, plots, net, score(obs, plots, net))
    assert pair.ranks == (0, 2)
    ev = pairs.evidence(scores, pair, plots, "I")
    t2 = [0.25 if n > small else 0.30 for n in (n0, n2)]
    assert ev.endswith(f"each ≥ its t₂ {t2[0]:.2f}, {t2[1]:.2f} by size (I; {n0}, {n2} reflections)"), ev
    net = RangeNetwork(answers, window=0.05, steps=((small + 1, 0.25), (0, 0.36)))
    assert pairs.check(obs, plots, net, score(obs, plots, net))[1].ranks == ()
    # a card without pair_threshold: untouched
    net = RangeNetwork(answers, window=0.05, pair=None)
    s = score(obs, plots, net)
    assert pairs.check(obs, plots, net, s) == (s, None)


def test_detector_verdict_and_report_carry_pair_flags(network_copy):
    """With the shipped networks on the demo data set and a pair threshold low enough to pair ranges
    the networks alone do not flag: those ranges are flagged in the observable, by the verdict (also
    where the joint I+F rule decides the range) and in the JSON report, with their evidence."""
    refl = demo_dataset().reflections
    host = Host()
    plain = str(network_copy("plain", pair_threshold=None))
    base = host.analyse(refl, "helcaraxe", AnalysisOptions(networks=plain))
    every = host.analyse(refl, "helcaraxe", AnalysisOptions(networks=plain, extra={"controls": "all"}))
    p = np.array([r.value for r in every.result("helcaraxe", "I").ranges if r.value is not None])
    t2 = float(np.sort(p[p < 0.5])[-2]) - 1e-3  # the two highest sub-threshold I ranges (windows applied) reach it
    paired_cards = network_copy("paired", pair_threshold=t2, pair_steps=[[1, t2]])
    a = host.analyse(refl, "helcaraxe", AnalysisOptions(networks=str(paired_cards)))
    res = a.result("helcaraxe", "I")
    assert res.info["pair_threshold"] == pytest.approx(t2) and res.info["pair_steps"] == [[1, t2]]
    paired = [r for r in res.ranges if "pair" in r.details]
    assert len(paired) >= 2 and all(r.flagged and r.value >= t2 for r in paired)
    weak = [r for r in paired if r.value < 0.5]
    assert weak and all(r.details["evidence"].startswith("paired rings: ") for r in weak)
    assert {r.index for r in paired} <= set(a.flagged_ranges)
    assert not {r.index for r in weak} & set(base.flagged_ranges)
    doc = report.to_dict(a)
    rows = {r["index"]: r for r in doc["observables"]["I"]["ranges"]}
    assert doc["observables"]["I"]["pair_threshold"] == pytest.approx(t2)
    assert doc["observables"]["F"]["pair_threshold"] == pytest.approx(t2)
    assert doc["observables"]["I"]["pair_steps"] == [[1, pytest.approx(t2)]]
    pooling = tuple(doc["observables"][k]["control_aggregate"] for k in ("I", "F"))
    assert pooling == ("mean", "min")  # the shipped cards' pooling of the windows
    for r in weak:
        assert rows[r.index]["pair"] == paired[0].details["pair"] and rows[r.index]["flagged"]
        assert "paired rings: " in doc["verdict"]["evidence"][str(r.index)] and "(I; " in doc["verdict"]["evidence"][str(r.index)]
        assert doc["verdict"]["evidence"][str(r.index)].endswith(" reflections)")
    joint = {j["index"]: j for j in a.joint}
    assert joint, "the demo data set has I and F: the joint rule decides its ranges"
    for r in paired:  # a range the joint rule flags keeps the joint evidence alone; one it declines, the pair's
        ev = doc["verdict"]["evidence"][str(r.index)]
        assert ("paired rings: " in ev) == (not joint[r.index]["flagged"]), (r.index, ev)
    base_doc = report.to_dict(base)
    assert base_doc["observables"]["I"]["pair_threshold"] is None
    assert base_doc["observables"]["I"]["pair_steps"] is None
    assert all(r["pair"] is None for r in base_doc["observables"]["I"]["ranges"])


def test_resolution_plot_legend_names_the_pair_rule(network_copy):
    from matplotlib.figure import Figure

    from auspex_helcaraxe.detectors.helcaraxe import auspex_annotate_resolution_plot

    refl = demo_dataset().reflections
    host = Host()
    for t2, has_pair in ((0.01, True), (None, False)):
        a = host.analyse(refl, "helcaraxe", AnalysisOptions(networks=str(network_copy(f"fig{t2}", pair_threshold=t2, pair_steps=None))))
        ax = Figure().add_subplot()
        auspex_annotate_resolution_plot(ax, "I", a.result("helcaraxe", "I"), refl)
        labels = ax.get_legend_handles_labels()[1]
        assert len(labels) == 1 and labels[0].startswith("Helcaraxe p ≥ ")
        assert ("paired rings ≥ 0.01" in labels[0]) == has_pair


def test_real_thresholds_refuses_a_minimum_without_its_pair_rule(capsys):
    from auspex_helcaraxe.training.real_thresholds import main

    for argv in (["--pair-steps", "I=400:0.25/0:0.45"],
                 ["--controls", "--pair", "I=0.25", "--pair-steps", "I=400:0.3/0:0.45"],
                 ["--controls", "--pair", "I=0.25", "--pair-steps", "I=many"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    assert "--pair-steps" in capsys.readouterr().err


def test_card_steps_must_start_at_the_pair_threshold_and_decrease():
    from auspex_helcaraxe.network import NetworkError

    card = ModelCard.from_dict({"name": "x", "observable": "I", "pair_threshold": 0.25,
                                "pair_steps": [[400, 0.25], [0, 0.45]]})
    assert card.pair_steps == ((400, 0.25), (0, 0.45))
    assert card.to_dict()["pair_steps"] == [[400, 0.25], [0, 0.45]]
    for steps in ([[0, 0.45], [400, 0.25]], [[400, 0.3], [0, 0.45]], []):
        with pytest.raises(NetworkError, match="pair_steps"):
            ModelCard("x", "I", pair_threshold=0.25, pair_steps=tuple(map(tuple, steps)))
    ModelCard("x", "I", pair_threshold=None, pair_steps=((400, 0.3),))  # no pair rule: the steps are not used
