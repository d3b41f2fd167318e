"""Evaluation tools (no TensorFlow): Wilson intervals, metrics, detection curves, threshold
calibration, the fixed real-data split and a small end-to-end evaluation through TFLite."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from auspex_helcaraxe.training import data as tdata
from auspex_helcaraxe.training.evaluate import evaluate
from auspex_helcaraxe.training.metrics import (
    binary_metrics,
    detection_curve,
    falls_with_strength,
    strength_at_half,
    wilson_interval,
)
from auspex_helcaraxe.training.train import calibrate_threshold


@pytest.mark.parametrize(
    "k, n, lo, hi",
    # Newcombe (1998), Stat. Med. 17:857, Table I, method 3 (Wilson score interval)
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_interval_matches_newcombe(k, n, lo, hi):
    a, b = wilson_interval(k, n)
    assert a == pytest.approx(lo, abs=6e-5) and b == pytest.approx(hi, abs=6e-5)


def test_wilson_interval_empty():
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_binary_metrics_counts():
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 1], bool)
    flag = np.array([1, 0, 1, 0, 1, 0, 0, 1], bool)
    m = binary_metrics(truth, flag)
    assert (m["tp"], m["fn"], m["tn"], m["fp"]) == (3, 1, 3, 1)
    assert m["sensitivity"]["value"] == 0.75 and m["specificity"]["value"] == 0.75
    assert m["accuracy"]["k"] == 6 and m["accuracy"]["n"] == 8


def test_detection_curve_and_strength_at_half():
    rng = np.random.default_rng(0)
    s = np.exp(rng.uniform(np.log(0.01), np.log(100), 20000))
    flagged = rng.random(s.size) < 1 / (1 + (1.0 / s) ** 2)  # 50 % at strength 1
    edges = np.exp(np.linspace(np.log(0.01), np.log(100), 17))
    c = detection_curve(s, flagged, edges)
    assert c["n"].sum() == s.size
    assert np.all(c["lo"] <= c["rate"]) and np.all(c["rate"] <= c["hi"])
    assert strength_at_half(c) == pytest.approx(1.0, rel=0.25)
    assert falls_with_strength(c) == []
    dropping = dict(c, rate=c["rate"][::-1].copy(), lo=c["lo"][::-1].copy(), hi=c["hi"][::-1].copy())
    assert falls_with_strength(dropping)


def test_calibrate_threshold_reaches_target_specificity():
    rng = np.random.default_rng(1)
    p = np.concatenate([rng.beta(2, 5, 900), rng.beta(5, 2, 300)])
    y = np.r_[np.zeros(900, bool), np.ones(300, bool)]
    t = calibrate_threshold(p, y, 0.98)
    assert 0.5 <= t <= 0.99
    assert np.mean(p[~y] < t) >= 0.98
    assert np.mean(p[~y] < t - 0.01) < 0.98 or t == 0.5
    assert calibrate_threshold(np.full(10, 0.1), np.zeros(10, bool), 0.98) == 0.5  # never below 0.5


def test_split_by_group_keeps_groups_whole():
    groups = np.repeat(np.arange(40), 3)
    tr, va = tdata.split_by_group(groups, 0.25, seed=3)
    assert not np.any(tr & va) and np.all(tr | va)
    assert set(groups[tr]).isdisjoint(groups[va]) and len(set(groups[va])) == 10
    assert np.array_equal(va, tdata.split_by_group(groups, 0.25, seed=3)[1])


def test_background_split_is_fixed_and_disjoint(real_data, shared_dir):
    real_dir = shared_dir / "data" / "real"
    train, held = tdata.background_split(real_dir)
    clean = sorted(r.relpath for r in tdata.read_labels(real_dir) if r.label == "clean")
    rel = lambda ps: [p.relative_to(real_dir).as_posix() for p in ps]
    assert set(rel(train)).isdisjoint(rel(held))
    assert sorted(rel(train) + rel(held)) == clean
    assert rel(held) == clean[1::2] and rel(train) == clean[0::2]
    assert all(p.is_file() for p in train + held)


def _labels(tmp_path, n_clean=11):
    rows = ["path\tlabel\tice_ranges\tnote"]
    rows += [f"src{k % 3}/c{k:02d}.mtz\tclean\t\t" for k in range(n_clean)]
    rows += ["src0/iced.mtz\tice\tI:5\t", "src1/u.mtz\tuncertain\t\t"]
    (tmp_path / "labels.tsv").write_text("\n".join(rows) + "\n")
    return sorted(f"src{k % 3}/c{k:02d}.mtz" for k in range(n_clean))


@pytest.mark.parametrize("n_folds", [2, 3, 5])
def test_background_folds_test_each_clean_file_once(tmp_path, n_folds):
    """k-fold over data sets: every clean file is a test background of exactly one fold, never in
    that fold's training part, and only clean files take part."""
    clean = _labels(tmp_path)
    rel = lambda ps: [p.relative_to(tmp_path).as_posix() for p in ps]
    seen = []
    for fold in range(n_folds):
        train, test = map(rel, tdata.background_folds(tmp_path, n_folds, fold))
        assert set(train).isdisjoint(test) and sorted(train + test) == clean
        assert test and len(test) in (len(clean) // n_folds, -(-len(clean) // n_folds))
        seen += test
    assert sorted(seen) == clean  # each clean file tested exactly once
    # fold 0 of 2 is the fixed split: even positions train, odd positions held out
    assert list(map(rel, tdata.background_folds(tmp_path, 2, 0))) == [clean[0::2], clean[1::2]]
    assert list(map(rel, tdata.background_split(tmp_path))) == [clean[0::2], clean[1::2]]
    with pytest.raises(ValueError):
        tdata.background_folds(tmp_path, n_folds, n_folds)


def test_background_folds_real_fold0_is_the_shipped_split(real_data, shared_dir):
    import json

    from auspex_helcaraxe.network import default_network_dir

    real_dir = shared_dir / "data" / "real"
    assert tdata.background_folds(real_dir, 2, 0) == tdata.background_split(real_dir)
    tr1, te1 = tdata.background_folds(real_dir, 2, 1)
    tr0, te0 = tdata.background_split(real_dir)
    assert tr1 == te0 and te1 == tr0
    card = json.loads((default_network_dir() / "helcaraxe_fobs.json").read_text())
    assert card["training"]["real_backgrounds"] == [p.name for p in tr0]


def test_kfold_block_is_replaced_and_kept(tmp_path):
    from auspex_helcaraxe.training.evaluate import BLOCK_BEGIN, BLOCK_END, Rows, kept_block, put_block

    page = tmp_path / "e.md"
    page.write_text("# page\n")
    put_block(page, "## k-fold\nv1")
    put_block(page, "## k-fold\nv2")
    text = page.read_text()
    assert text.startswith("# page\n") and text.count(BLOCK_BEGIN) == 1 and "v1" not in text
    assert kept_block(text) == f"{BLOCK_BEGIN}\n## k-fold\nv2\n{BLOCK_END}" and kept_block("# page") == ""
    a, b = Rows(dataset=["x"], kind=["F"], range=[1], label=[1.0], strength=[2.0], predictable=[True],
                category=["c"]), Rows(dataset=["y"], kind=["I"], range=[2], label=[0.0], strength=[0.0],
                                      predictable=[False], category=["c"])
    for r, v in ((a, True), (b, False)):
        r.arrays()
        r.flagged = {"ours": np.array([v]), "Icefinder": np.array([not v])}
    b.flagged.pop("Icefinder")
    ab = Rows.concat([a, b])
    assert list(ab.dataset) == ["x", "y"] and list(ab.flagged) == ["ours"] and list(ab.flagged["ours"]) == [True, False]


def test_read_labels_parses_ice_ranges(shared_dir):
    rows = {r.relpath: r for r in tdata.read_labels(shared_dir / "data" / "real")}
    ice = [r for r in rows.values() if r.label == "ice"]
    assert ice and all(r.ice_ranges for r in ice)
    assert all(1 <= i <= 25 for r in ice for v in r.ice_ranges.values() for i in v)


def test_evaluate_small_simulated_set(tmp_path, published_dir):
    """End to end on a few simulated data sets: markdown, figure and consistent counts; a generated
    k-fold block, the thinned-data block and the hand-written leave-one-family-out block already on the
    page survive the rewrite, in that order after the generated part."""
    from auspex_helcaraxe.training import thinned
    from auspex_helcaraxe.training.evaluate import LOFO_BEGIN, LOFO_END, put_block, replace_block

    put_block(tmp_path / "eval.md", "## (2k) kept")
    replace_block(tmp_path / "eval.md", f"{LOFO_BEGIN}\n## lofo kept\n{LOFO_END}", LOFO_BEGIN, LOFO_END)
    replace_block(tmp_path / "eval.md", f"{thinned.HEAD}\nthinned kept\n{thinned.END}", thinned.HEAD, thinned.END)
    res = evaluate(published_dir, tmp_path / "eval.md", published_dir=published_dir, n_test=6, sets=(),
                   log=lambda m: None)
    md = (tmp_path / "eval.md").read_text()
    assert "(1) Simulated test set" in md and "Icefinder" in md
    assert md.count("## (2k) kept") == 1 and md.index("## (2k) kept") > md.index("(1) Simulated test set")
    assert md.count("## lofo kept") == 1 and md.index("(1) Simulated test set") < md.index("## lofo kept") < md.index("## (2k) kept")
    assert md.count("thinned kept") == 1 and md.index("(1) Simulated test set") < md.index("thinned kept") < md.index("## lofo kept")
    assert (tmp_path / "detection_vs_strength.png").stat().st_size > 1000
    rows = res["rows"]["simulated"]
    assert set(rows.flagged) == {"ours", "published", "Icefinder"}
    # the same networks under two names give the same verdicts on the same plots
    assert np.array_equal(rows.flagged["ours"], rows.flagged["published"])
    assert not np.any(rows.flagged["ours"] & ~rows.predictable)
    m = res["metrics"]["(1) Simulated test set"]["overall"]["all plots"]["ours"]
    assert m["n"] == int(np.sum(rows.predictable & ~np.isnan(rows.label)))


def test_collect_scores_each_contender_on_its_own_plot_scale(network_copy):
    """Two contenders on one data set, one of them reading signed-sqrt I plots: each gets the
    probabilities of its own plots (the same plots on one scale give the same answers)."""
    from auspex_helcaraxe.controls import score
    from auspex_helcaraxe.network import load_networks, plots_for
    from auspex_helcaraxe.training.evaluate import collect, simulated_items

    plain = network_copy("plain", control_baseline=None, pair_threshold=None)
    sqrt = network_copy("sqrt", control_baseline=None, pair_threshold=None)
    card = sqrt / "helcaraxe_iobs.json"
    card.write_text(json.dumps({**json.loads(card.read_text()), "plot_scale": "signed_sqrt"}))
    contenders = {"ours": load_networks(sqrt), "published": load_networks(plain)}
    items = list(simulated_items(2, seed=77))
    rows = collect(items, contenders, icefinder=False)
    for name, nets in contenders.items():
        expected = []
        for item in items:
            for kind in ("I", "F"):
                obs = item.reflections.observables.get(kind)
                if obs is not None and len(obs.d):
                    plots = plots_for(obs, nets[kind])
                    expected += list(score(obs, plots, nets[kind]).p)
        np.testing.assert_allclose(rows.prob[name], expected, atol=1e-6, equal_nan=True)
    i_rows = (rows.kind == "I") & rows.predictable
    f_rows = (rows.kind == "F") & rows.predictable
    assert i_rows.any() and np.abs(rows.prob["ours"][i_rows] - rows.prob["published"][i_rows]).max() > 1e-3
    np.testing.assert_array_equal(rows.prob["ours"][f_rows], rows.prob["published"][f_rows])


def test_collect_flags_with_each_cards_sparse_threshold(network_copy):
    """Per-plot flags of an evaluation follow the card's sparse_threshold (as the detector does)."""
    from auspex_helcaraxe.network import load_networks
    from auspex_helcaraxe.training.evaluate import collect, simulated_items

    items = list(simulated_items(3, seed=78))
    plain = load_networks(network_copy("plain", control_baseline=None, pair_threshold=None))
    strict = load_networks(network_copy("strict", control_baseline=None, pair_threshold=None,
                                        sparse_threshold=[400, 0.999]))
    rows = collect(items, {"ours": strict, "published": plain}, icefinder=False)
    np.testing.assert_array_equal(rows.prob["ours"], rows.prob["published"])
    sparse = rows.n_reflections < 400
    loose = rows.flagged["published"]
    assert (loose & sparse).any() and (loose & ~sparse).any()
    np.testing.assert_array_equal(rows.flagged["ours"], loose & (~sparse | (np.nan_to_num(rows.prob["ours"]) >= 0.999)))
