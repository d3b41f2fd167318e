"""The rules across ranges (pairs.py), paired weak rings and summed weak evidence: flags, on-demand
control windows, verdict and report."""

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

    def __init__(self, answers, window, baseline=0.1, pair=0.25, threshold=0.5, steps=None, summed=None):
        self.card = ModelCard("fake", "I", threshold=threshold, control_baseline=baseline, pair_threshold=pair,
                              pair_steps=steps, summed_evidence=summed)
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


def _flags_across(a, base, key: str, prefix: str):
    """The I ranges a rule across ranges flagged in analysis ``a`` (``key`` in their details) and those of
    them below 0.5, whose evidence is the rule's; all in the verdict, the weak ones not in ``base``'s."""
    marked = [r for r in a.result("helcaraxe", "I").ranges if key in r.details]
    assert marked and all(r.flagged for r in marked)
    weak = [r for r in marked if r.value < 0.5]
    assert weak and all(r.details["evidence"].startswith(prefix) for r in weak)
    assert {r.index for r in marked} <= set(a.flagged_ranges)
    assert not {r.index for r in weak} & set(base.flagged_ranges)
    return marked, weak


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
    paired, weak = _flags_across(a, base, "pair", "paired rings: ")
    assert len(paired) >= 2 and all(r.value >= t2 for r in paired)
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


def test_summed_evidence_flags_the_fewest_ranges_that_carry_it(plots_i):
    """S sums each counted plot's excess over the clean look; the windows of the top plots (only
    scored when S without them reaches s) set one discount D for all; the fewest ranges reaching s are
    flagged; plots below min_n do not count."""
    obs, plots = plots_i
    n = len(plots.ranges)
    answers = np.full(n, 0.05)
    answers[[0, 1, 3]] = [0.3, 0.2, 0.28]
    lg = lambda p: np.log(p / (1 - p))  # noqa: E731
    e = [lg(0.3) - lg(0.1), lg(0.2) - lg(0.1), lg(0.28) - lg(0.1)]  # 1.35, 0.81, 1.25
    net = RangeNetwork(answers, window=0.05, pair=None, summed=(0, 2, 2.5))
    first = score(obs, plots, net)
    scores, summed = pairs.check_summed(obs, plots, net, first)
    assert summed.ranks == (0, 3) and summed.discount == 0.0  # windows below the baseline: D = 0
    assert summed.total == pytest.approx(sum(e)) and summed.excess[1] == pytest.approx(e[1])
    assert scores.checked[[0, 3]].all() and scores.checked.sum() == 2  # the windows of the top 2 only
    assert net.seen == n + len(scores.controls[0]) + len(scores.controls[3])
    ev = pairs.summed_evidence(summed, plots, "I")
    assert ev.startswith("summed weak evidence: ranges ") and f"Σ {sum(e):.2f} ≥ 2.50" in ev and "(logit; I; " in ev
    # all three needed
    net = RangeNetwork(answers, window=0.05, pair=None, summed=(0, 2, 3.0))
    assert pairs.check_summed(obs, plots, net, score(obs, plots, net))[1].ranks == (0, 1, 3)
    # S without windows below s: nothing flagged and no window scored
    net = RangeNetwork(answers, window=0.05, pair=None, summed=(0, 2, 3.5))
    scores, summed = pairs.check_summed(obs, plots, net, score(obs, plots, net))
    assert summed.ranks == () and not scores.checked.any() and net.seen == n
    # windows as ice-like as the ranges: the discount removes the evidence
    net = RangeNetwork(answers, window=0.3, pair=None, summed=(0, 2, 2.5))
    scores, summed = pairs.check_summed(obs, plots, net, score(obs, plots, net))
    assert summed.ranks == () and summed.discount == pytest.approx(e[0]) and summed.total == pytest.approx(0.0)
    # a plot below min_n does not count
    n3 = int(plots.n_in_range[3])
    small = [k for k in (0, 1) if plots.n_in_range[k] > n3]
    if small:
        net = RangeNetwork(answers, window=0.05, pair=None, summed=(n3 + 1, 2, 2.0))
        summed = pairs.check_summed(obs, plots, net, score(obs, plots, net))[1]
        assert summed.excess[3] == 0 and 3 not in summed.ranks
    # no rule on the card, or no baseline: untouched
    for net in (RangeNetwork(answers, window=0.05, pair=None), RangeNetwork(answers, 0.05, baseline=None, summed=(0, 2, 1.0))):
        s0 = score(obs, plots, net)
        assert pairs.check_summed(obs, plots, net, s0) == (s0, None)


def test_detector_verdict_report_and_legend_carry_summed_flags(network_copy):
    """With the shipped networks on the demo data set and an s low enough that sub-threshold ranges
    carry it: those ranges are flagged in the observable, by the verdict (also where the joint rule
    declines the range), in the JSON report and in the figure's legend."""
    from matplotlib.figure import Figure

    from auspex_helcaraxe.detectors.helcaraxe import auspex_annotate_resolution_plot

    refl = demo_dataset().reflections
    host = Host()
    base = host.analyse(refl, "helcaraxe", AnalysisOptions(networks=str(network_copy("plain", pair_threshold=None))))
    from auspex_helcaraxe.network import load_networks, plots_for

    probe = load_networks(network_copy("probe", pair_threshold=None, summed_evidence=[0, 2, 1e-6]))["I"]
    obs = refl.observables["I"]
    plots = plots_for(obs, probe)
    e = pairs.check_summed(obs, plots, probe, score(obs, plots, probe))[1].excess
    assert np.count_nonzero(e) >= 2
    s = round(float(e.sum()) - 1e-3, 4)  # every range with an excess is needed to carry it
    cards = network_copy("summed", pair_threshold=None, summed_evidence=[0, 2, s])
    a = host.analyse(refl, "helcaraxe", AnalysisOptions(networks=str(cards)))
    res = a.result("helcaraxe", "I")
    assert res.info["summed_evidence"] == [0, 2, s]
    carried, _ = _flags_across(a, base, "summed", "summed weak evidence: ")
    doc = report.to_dict(a)
    rows = {r["index"]: r for r in doc["observables"]["I"]["ranges"]}
    assert doc["observables"]["I"]["summed_evidence"] == [0, 2, s]
    joint = {j["index"]: j for j in a.joint}
    assert {r.index for r in carried} <= set(joint), "the demo data set has I and F: the joint rule decides its ranges"
    declined = [r for r in carried if not joint[r.index]["flagged"]]
    assert declined, "a range the joint rule declines"
    for r in carried:  # a range the joint rule flags keeps the joint evidence; one it declines, the summed rule's
        assert rows[r.index]["summed"] == carried[0].details["summed"] and rows[r.index]["flagged"]
        ev = doc["verdict"]["evidence"][str(r.index)]
        assert ("summed weak evidence: " in ev) == (not joint[r.index]["flagged"]), (r.index, ev)
    assert report.to_dict(base)["observables"]["I"]["summed_evidence"] is None
    ax = Figure().add_subplot()
    auspex_annotate_resolution_plot(ax, "I", res, refl)
    assert f"or summed weak evidence ≥ {s:g}" in ax.get_legend_handles_labels()[1][0]


def test_summed_result_on_clean_plots_and_its_leave_one_out():
    """s = margin × the largest S of the clean data sets; LODO judges each at margin × the others' largest."""
    from auspex_helcaraxe.training.real_thresholds import summed_result, summed_totals

    def rows(ds, ps, n=500, w=(0.05,)):
        return [{"dataset": ds, "p_network": p, "p": p, "n": n, "controls": list(w)} for p in ps]

    clean = rows("a", [0.3, 0.2]) + rows("b", [0.25]) + rows("c", [0.1, 0.1], n=100) + rows("d", [0.12], w=(0.2, 0.2))
    lg = lambda p: np.log(p / (1 - p))  # noqa: E731
    b = 0.05  # the median of the windows
    t = summed_totals(clean, (300, 2), b)
    assert t["a"] == pytest.approx(lg(0.3) + lg(0.2) - 2 * lg(b)) and t["c"] == 0.0
    assert t["d"] == pytest.approx(0.0)  # its windows explain it: D = logit 0.2 - logit 0.05 > its excess
    res = summed_result(clean, (300, 2, 1.25, True))
    assert res["summed_evidence"][:2] == [300, 2]
    assert res["summed_evidence"][2] == pytest.approx(1.25 * t["a"], abs=1e-4)
    assert res["summed_evidence"][2] >= 1.25 * t["a"]  # rounded up
    assert res["highest"][0][0] == "a"
    assert res["lodo_flagged_datasets"] == ["a"]  # a's S exceeds 1.25 × b's, the largest of the others
    assert summed_result(clean, (300, 2, 3.0, True))["lodo_flagged_datasets"] == []
    fixed = summed_result(clean, (300, 2, t["b"], False))  # a given s: the data sets at or above it
    assert fixed["summed_evidence"][2] == pytest.approx(t["b"], abs=1e-4) and fixed["margin"] is None
    assert fixed["flagged_datasets"] == ["a", "b"] and fixed["lodo_flagged_datasets"] == ["a", "b"]


def test_card_summed_evidence_is_validated():
    from auspex_helcaraxe.network import NetworkError

    card = ModelCard.from_dict({"name": "x", "observable": "I", "summed_evidence": [300, 2, 0.95]})
    assert card.summed_evidence == (300, 2, 0.95) and card.to_dict()["summed_evidence"] == [300, 2, 0.95]
    for bad in ((300, 0, 0.95), (300, 2, 0.0), (-1, 2, 1.0)):
        with pytest.raises(NetworkError, match="summed_evidence"):
            ModelCard("x", "I", summed_evidence=bad)


def test_real_thresholds_writes_summed_evidence_into_cards(network_copy, shared_dir, capsys):
    """Step 2 of training.md writes s = margin × the largest clean S into the cards it is given (and
    refuses the rule without --controls or malformed); the cards then load with it."""
    from auspex_helcaraxe.network import load_networks
    from auspex_helcaraxe.training.real_thresholds import main

    for argv in (["--summed", "I=300:2:x1.25"], ["--controls", "--summed", "I=300:2"], ["--controls", "--summed", "X=1:2:3"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    assert "--summed" in capsys.readouterr().err
    d = network_copy("cards", summed_evidence=None)
    assert main(["--real", str(shared_dir / "data" / "real"), "--networks", str(d), "--controls",
                 "--summed", "I=300:2:x1.25", "--cards", str(d)]) == 0
    nets = load_networks(d)
    n, k, s = nets["I"].card.summed_evidence
    block = nets["I"].card.metrics["real_clean"]["summed_evidence"]
    assert (n, k) == (300, 2) and block["summed_evidence"] == [300, 2, s] and block["margin"] == 1.25
    assert s == pytest.approx(1.25 * block["highest_S"][0][1], abs=2e-4)  # highest_S is rounded to 4 decimals
    assert block["lodo_specificity_per_dataset"].count("/") == 1
    assert nets["F"].card.summed_evidence is None
