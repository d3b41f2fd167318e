"""The joint I+F verdict: one verdict per data set from a learned combiner (auspex_helcaraxe.joint)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from auspex_helcaraxe import report
from auspex_helcaraxe.host import Analysis, Host
from auspex_helcaraxe.ice_ranges import ice_ranges
from auspex_helcaraxe.joint import FEATURES, Model, default_combiner_path, features, load_combiner
from auspex_helcaraxe.network import load_networks
from auspex_helcaraxe.results import NOT_COVERED, PREDICTED, AnalysisOptions, DetectorResult, RangeResult
from auspex_helcaraxe.simulate import demo_dataset, simulate_dataset
from auspex_helcaraxe.training.joint import fit_logistic, threshold_for
from auspex_helcaraxe.training.real_thresholds import allowed_false_positives, lodo, pick_threshold

REPO = Path(__file__).resolve().parents[1]
CARD = REPO / "resources" / "helcaraxe_joint.json"


@pytest.fixture(scope="module")
def card_path() -> Path:
    assert CARD.is_file(), "the shipped combiner card is missing"
    return CARD


def _only(refl, kind):
    return replace(refl, observables={kind: refl.observables[kind]})


def _sigmoid_from_card(card: dict, model: str, feats: dict) -> float:
    m = card["models"][model]
    z = m["intercept"] + sum(c * (feats[f] - mu) / s for f, mu, s, c in zip(m["features"], m["mean"], m["scale"], m["coef"]))
    return 1.0 / (1.0 + math.exp(-z))


def test_shipped_card_is_what_the_runtime_loads_and_names_the_shipped_networks(card_path):
    assert default_combiner_path().resolve() == card_path.resolve() or default_combiner_path().is_file()
    card = json.loads(card_path.read_text())
    nets = load_networks(None)
    assert card["networks"] == {k: n.card.sha256 for k, n in nets.items()}
    assert set(card["models"]) == set(FEATURES)
    for name, m in card["models"].items():
        assert m["features"] == list(FEATURES[name]) and 0.05 <= m["threshold"] < 1
    # validation metrics of the joint rule are in the card, not just training ones
    assert card["metrics"]["validation_simulated"]["joint"]["n"] > 100


@pytest.mark.parametrize("seed", [2022, 7])
def test_joint_verdict_both_observables_follows_the_card(seed, card_path):
    ds = demo_dataset(seed) if seed == 2022 else simulate_dataset(seed, ice={"probability": 1.0})
    opts = AnalysisOptions(extra={"joint": str(card_path)})
    a = Host().analyse(ds.reflections, "both", opts)
    card = json.loads(card_path.read_text())
    joint = a.joint
    assert joint, "a data set with I and F and both networks must get a joint verdict"
    hel_i, hel_f = a.result("helcaraxe", "I"), a.result("helcaraxe", "F")
    ice_i, ice_f = a.result("icefinder", "I"), a.result("icefinder", "F")
    both = [r.index for r in hel_i.ranges if r.status == PREDICTED and hel_f.range(r.index).status == PREDICTED]
    assert [j["index"] for j in joint] == both
    decision = a.decision()
    for j in joint:
        si, sf = ice_i.range(j["index"]).value, ice_f.range(j["index"]).value
        with_ice = si is not None and sf is not None and math.isfinite(si) and math.isfinite(sf)
        name = "networks+icefinder" if with_ice else "networks"
        ice = (si, sf) if with_ice else (None, None)
        p_i, p_f = hel_i.range(j["index"]).value, hel_f.range(j["index"]).value
        # the combiner's inputs: the ranges' probabilities, after their control windows where the
        # joint flag could depend on them (a discount never raises a probability)
        assert j["p_I"] <= p_i + 1e-4 and j["p_F"] <= p_f + 1e-4
        if _sigmoid_from_card(card, name, features(p_i, p_f, *ice)) < card["models"][name]["threshold"]:
            assert (j["p_I"], j["p_F"]) == (pytest.approx(p_i, abs=1e-4), pytest.approx(p_f, abs=1e-4))
        p = _sigmoid_from_card(card, name, features(j["p_I"], j["p_F"], *ice))
        assert j["p_joint"] == pytest.approx(p, abs=1e-3) and j["model"] == name
        assert j["flagged"] == (p >= card["models"][name]["threshold"])
        assert (j["index"] in decision and decision[j["index"]]["by"] == "joint") == j["flagged"]
    doc = report.to_dict(a)
    assert doc["schema_version"] == 2
    assert doc["verdict"]["iced"] == bool(a.flagged_ranges) == a.iced
    assert [r["index"] for r in doc["verdict"]["joint"]["ranges"]] == both
    assert set(doc["verdict"]["joint"]["ranges"][0]) >= {"p_I", "p_F", "p_joint", "flagged", "evidence"}
    assert set(doc["verdict"]["evidence"]) == {str(i) for i in doc["verdict"]["ranges"]}
    json.dumps(doc, allow_nan=False)


@pytest.mark.parametrize("kind", ["I", "F"])
def test_single_observable_files_keep_the_single_observable_rule(kind, card_path):
    refl = _only(demo_dataset().reflections, kind)
    a = Host().analyse(refl, "both", AnalysisOptions(extra={"joint": str(card_path)}))
    assert a.joint == []
    assert a.flagged_ranges == a.deciding_result(kind).flagged_ranges
    assert a.flagged_ranges, "the demo ring must still be found from one observable"
    doc = report.to_dict(a)
    assert doc["verdict"]["joint"] is None
    for k, ev in doc["verdict"]["evidence"].items():
        assert f"({kind})" in ev or f"({kind}; " in ev  # the observable closes the evidence line
    # the shipped I card's caveat for intensity-only files (evaluation.md), in the JSON and the text
    caveat = load_networks(None)[kind].card.alone_caveat
    assert (caveat is not None) == (kind == "I")
    assert doc["observables"][kind].get("messages") == ([caveat] if caveat else None)
    assert (f"note [helcaraxe]: {caveat}" in report.summary_text(a)) == (caveat is not None)


def test_alone_caveat_only_for_files_without_the_other_observable(network_copy):
    both = Host().analyse(demo_dataset().reflections)
    assert not any(r.message for r in both.results if r.detector == "helcaraxe")
    quiet = network_copy("quiet", alone_caveat=None)
    only_i = Host().analyse(_only(demo_dataset().reflections, "I"), "both", AnalysisOptions(networks=str(quiet)))
    assert only_i.result("helcaraxe", "I").message is None


def _fake_analysis(p_i: float, p_f: float, thr_i=0.61, thr_f=0.70, joint_path=None) -> Analysis:
    nets = load_networks(None)
    refl = demo_dataset().reflections

    def result(kind, p, thr):
        rows = []
        for r in ice_ranges():
            if r.index == 4:
                rows.append(RangeResult(r.index, r.d_max, r.d_min, PREDICTED, p, p >= thr, None,
                                        {"evidence": f"network p={p:.2f} ({kind})"}))
            else:
                rows.append(RangeResult(r.index, r.d_max, r.d_min, NOT_COVERED))
        return DetectorResult("helcaraxe", kind, tuple(rows),
                              {"threshold": thr, "network": {"name": kind, "sha256": nets[kind].card.sha256}})

    opts = AnalysisOptions(extra={"joint": str(joint_path)} if joint_path else {})
    return Analysis(refl, (result("I", p_i, thr_i), result("F", p_f, thr_f)), opts)


def _card_with(tmp_path, coef, name):
    card = json.loads(CARD.read_text())
    m = Model(FEATURES["networks"], np.zeros(4), np.ones(4), np.array(coef, float), 0.0, 0.5)
    card["models"] = {"networks": m.to_dict()}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(card))
    return path


def test_strong_F_weak_I_contradiction_resolves_by_the_learned_rule(card_path, tmp_path):
    """F network p=0.87 (flags), I network p=0.2 (does not): the verdict is the card's p_joint, not
    an OR; a card that trusts only I clears it, one that trusts only F flags it."""
    a = _fake_analysis(0.2, 0.87, joint_path=card_path)
    card = json.loads(card_path.read_text())
    p = _sigmoid_from_card(card, "networks", features(0.2, 0.87))
    [j] = a.joint
    assert j["I_flagged"] is False and j["F_flagged"] is True
    assert j["p_joint"] == pytest.approx(p, abs=1e-3)
    assert a.iced == (p >= card["models"]["networks"]["threshold"])
    only_i = _fake_analysis(0.2, 0.87, joint_path=_card_with(tmp_path, [3, 0, 0, 0], "only_i"))
    only_f = _fake_analysis(0.2, 0.87, joint_path=_card_with(tmp_path, [0, 3, 0, 0], "only_f"))
    assert only_i.iced is False and only_f.iced is True
    assert only_f.decision()[4]["by"] == "joint"
    # no combiner: each observable decides alone (today's rule, the F flag stands)
    off = _fake_analysis(0.2, 0.87, joint_path="none")
    assert off.joint == [] and off.flagged_ranges == [4]


def test_combiner_fitted_on_other_networks_is_not_applied(card_path, tmp_path):
    card = json.loads(card_path.read_text())
    card["networks"] = {"I": "0" * 64, "F": "1" * 64}
    other = tmp_path / "other.json"
    other.write_text(json.dumps(card))
    a = _fake_analysis(0.2, 0.87, joint_path=other)
    assert a.joint == [] and a.flagged_ranges == [4]
    assert load_combiner(tmp_path / "missing.json") is None


def test_fit_logistic_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 2)) * [1.0, 2.0] + [0.5, -1.0]
    z = 0.3 + 1.5 * X[:, 0] - 0.8 * X[:, 1]
    y = (rng.random(4000) < 1 / (1 + np.exp(-z))).astype(float)
    mean, scale, coef, b = fit_logistic(X, y, l2=1e-6)
    raw = coef / scale
    assert raw == pytest.approx([1.5, -0.8], abs=0.15)
    assert b - (mean / scale) @ coef == pytest.approx(0.3, abs=0.15)
    prob = 1 / (1 + np.exp(-(b + ((X - mean) / scale) @ coef)))
    t = threshold_for(prob, y, 0.98)
    assert 1 - (prob[y == 0] >= t).mean() >= 0.98


def test_real_threshold_rule_meets_both_targets_and_lodo_holds_each_set_out():
    rows = [{"dataset": f"d{k}", "range": r, "p": 0.1} for k in range(20) for r in range(1, 6)]
    rows[3]["p"] = 0.9  # d0 range 4
    rows[57]["p"] = 0.8  # d11 range 3
    t = pick_threshold(rows)
    # 20 data sets allow no flagged one (⌊0.05·21⌋ − 1 = 0): the rule must go above 0.9
    assert 0.9 < t <= 0.9 + 1e-5
    res = lodo(rows)
    assert res["datasets"] == 20 and res["plots"] == 100
    # held out, d0 meets t just above d11's 0.8 → flagged; d11 meets t just above d0's 0.9 → clear
    assert res["false_positive_datasets"] == ["d0"]


@pytest.mark.parametrize("n, target, k", [(18, 0.95, 0), (19, 0.95, 0), (39, 0.95, 1), (43, 0.95, 1), (44, 0.95, 1),
                                          (59, 0.95, 2), (272, 0.98, 4), (0, 0.95, 0)])
def test_allowed_false_positives_is_the_finite_sample_allowance(n, target, k):
    assert allowed_false_positives(n, target) == k
    # a new clean item exceeds the (k+1)-th highest of n with probability (k+1)/(n+1)
    if k:
        assert (k + 1) / (n + 1) <= 1 - target < (k + 2) / (n + 1)


def test_real_threshold_rule_holds_its_target_held_out():
    # 44 exchangeable clean data sets with distinct scores above the floor: leave-one-out flags exactly the
    # top k + 1 = 2 (the in-sample rule of session 7 allowed 2 of 43 and flagged 3 held out, 0.932)
    rng = np.random.default_rng(0)
    p = rng.uniform(0.5, 1.0, 44)
    rows = [{"dataset": f"d{k}", "range": 1 + (k % 3), "p": float(v)} for k, v in enumerate(p)]
    rows += [{"dataset": f"d{k}", "range": r, "p": 0.05} for k in range(44) for r in range(5, 11)]  # 308 plots
    res = lodo(rows)
    top2 = {f"d{k}" for k in np.argsort(p)[-2:]}
    assert set(res["false_positive_datasets"]) == top2
    assert res["specificity_per_dataset"]["value"] == pytest.approx(42 / 44)
    assert pick_threshold(rows) == pytest.approx(np.sort(p)[-2] + 1e-6)


def test_family_evaluation_reports_each_family_and_a_worst_case():
    from auspex_helcaraxe.network import default_network_dir
    from auspex_helcaraxe.training.families import FAMILIES, evaluate_families_many

    # two network directories (here the same networks twice) are scored on the same draws
    runs = evaluate_families_many([None, str(default_network_dir())], n_sim=4, real_dir=None, seed=5)
    res = runs[None]
    assert runs[str(default_network_dir())] == res
    spec = res["specificity_clean"]["F simulated"]
    assert spec["n"] > 0 and 0 <= spec["k"] <= spec["n"]
    assert {"spike", "oversubtracted"} <= set(res["families"]) <= set(FAMILIES)
    strong = res["families"]["spike"]["0.6-10"]
    assert sum(v["n"] for v in strong.values()) > 0
    for fam in res["families"].values():
        for band in fam.values():
            for v in band.values():
                assert 0 <= v["k"] <= v["n"]
    for w in res["worst"].values():
        assert w["family"] in FAMILIES and 0 <= w["sensitivity"] <= 1


def test_ccp4i2_program_xml_carries_the_joint_verdict_and_evidence(card_path):
    from auspex_helcaraxe.ccp4i2.program_xml import program_xml

    a = _fake_analysis(0.2, 0.87, joint_path=card_path)
    root = program_xml(a)
    (j,) = root.findall("Verdict/Joint")
    assert j.get("range") == "4"
    assert float(j.findtext("PJoint")) == pytest.approx(a.joint[0]["p_joint"], abs=1e-4)
    assert float(j.findtext("PI")) == pytest.approx(0.2) and float(j.findtext("PF")) == pytest.approx(0.87)
    ev = {e.get("range"): e.text for e in root.findall("Verdict/Evidence")}
    assert (root.findtext("Verdict/Iced") == "true") == a.iced == ("4" in ev)
    if a.iced:
        assert ev["4"].startswith("joint")


def test_weak_relabel_of_combiner_rows_follows_the_network_rule():
    from auspex_helcaraxe.training.joint import relabel

    rows = [{"label": 0.0, "strength": 0.2, "effects": ["spike", "sigma"]},
            {"label": 0.0, "strength": 0.2, "effects": ["spike", "partial"]},
            {"label": 0.0, "strength": 0.1, "effects": ["spike"]},
            {"label": math.nan, "strength": 0.0, "effects": []},
            {"label": 1.0, "strength": 3.0, "effects": ["spike"]}]
    new = relabel(rows, 0.15)
    assert [r["label"] for r in new[:3]] + [new[4]["label"]] == [1.0, 0.0, 0.0, 1.0]
    assert math.isnan(new[3]["label"]) and rows[0]["label"] == 0.0


def test_real_clean_card_block_from_the_threshold_results():
    from auspex_helcaraxe.training.real_thresholds import at_threshold, card_block

    rows = [{"dataset": f"d{i}", "range": r, "p": 0.1 + 0.01 * i, "training_background": i % 2 == 0}
            for i in range(20) for r in (1, 2)]
    rows[0]["p"] = 0.9  # one clean plot a network would flag at 0.7
    res = {"at_card": at_threshold(rows, 0.7), "at_0.5": at_threshold(rows, 0.5), "lodo": lodo(rows),
           "all_data_threshold": pick_threshold(rows),
           "held_out_only_at_card": at_threshold([r for r in rows if not r["training_background"]], 0.7)}
    block = card_block(res, "python -m x")
    at = block["at_card_threshold"]
    assert at["threshold"] == 0.7 and at["specificity_per_plot"]["k"] == 39 and at["specificity_per_dataset"]["k"] == 19
    assert at["false_positive_plots"] == [("d0", 1, 0.9)] and at["held_out_backgrounds_only_per_plot"]["k"] == 20
    assert block["leave_one_dataset_out_min_threshold"]["false_positive_datasets"] == ["d0"]
    assert block["all_data_threshold"] == 0.9  # 1 of 40 plots at 0.5 misses the 0.98 per-plot target
    json.dumps(block)  # a card is JSON


def test_update_metrics_merge_keeps_hand_written_keys(tmp_path):
    from auspex_helcaraxe.training.cards import update_metrics

    (tmp_path / "helcaraxe_fobs.tflite").write_bytes(b"x")
    card = tmp_path / "helcaraxe_fobs.json"
    card.write_text(json.dumps({"sha256": "abc", "metrics": {"real_clean": {"threshold_decision": "kept", "at_0.5": 1}}}))
    update_metrics(tmp_path, "real_clean", {"F": {"at_0.5": 2}}, sha256={"F": "abc"}, merge=True)
    assert json.loads(card.read_text())["metrics"]["real_clean"] == {"threshold_decision": "kept", "at_0.5": 2}
    update_metrics(tmp_path, "real_clean", {"F": {"at_0.5": 3}}, sha256={"F": "abc"})
    assert json.loads(card.read_text())["metrics"]["real_clean"] == {"at_0.5": 3}


def test_set_thresholds_writes_the_measured_cards_only(tmp_path):
    from auspex_helcaraxe.errors import InputError
    from auspex_helcaraxe.training.cards import set_thresholds

    (tmp_path / "helcaraxe_fobs.tflite").write_bytes(b"x")
    card = tmp_path / "helcaraxe_fobs.json"
    card.write_text(json.dumps({"sha256": "abc", "threshold": 0.7, "metrics": {"a": 1}}))
    set_thresholds(tmp_path, {"F": 0.61231}, sha256={"F": "abc"})  # rounded up: a plot at 0.6123 stays cleared
    assert json.loads(card.read_text()) == {"sha256": "abc", "threshold": 0.6124, "metrics": {"a": 1}}
    set_thresholds(tmp_path, {"F": 0.5}, sha256={"F": "abc"})
    assert json.loads(card.read_text())["threshold"] == 0.5
    set_thresholds(tmp_path, {"F": 0.6123}, sha256={"F": "abc"})
    with pytest.raises(InputError, match="describes network"):
        set_thresholds(tmp_path, {"F": 0.5}, sha256={"F": "other"})
    with pytest.raises(InputError, match="expected one"):
        set_thresholds(tmp_path, {"I": 0.5})
    assert json.loads(card.read_text())["threshold"] == 0.6123


def test_per_observable_options_of_real_thresholds():
    from auspex_helcaraxe.training.options import per_observable
    from auspex_helcaraxe.training.real_thresholds import main

    assert per_observable("min", both=True) == {"I": "min", "F": "min"}
    assert per_observable("I=mean, F=min", both=True) == {"I": "mean", "F": "min"}
    assert per_observable("I=0.25") == {"I": "0.25"} and per_observable("") == {}
    with pytest.raises(ValueError):
        per_observable("min,F=mean", both=True)
    for bad in ("max", "I=max", "X=min", "min,mean"):
        with pytest.raises(SystemExit) as exc:
            main(["--aggregate", bad, "--real", "/nonexistent"])
        assert exc.value.code == 2


def test_set_control_baselines_writes_one_aggregate_or_one_per_observable(tmp_path, network_copy):
    from auspex_helcaraxe.training.cards import set_control_baselines

    d = network_copy("agg")
    set_control_baselines(d, {"I": 0.1, "F": 0.2}, aggregate={"I": "mean", "F": "min"})
    cards = {k: json.loads((d / f"helcaraxe_{k.lower()}obs.json").read_text()) for k in ("I", "F")}
    assert (cards["I"]["control_aggregate"], cards["F"]["control_aggregate"]) == ("mean", "min")
    assert (cards["I"]["control_baseline"], cards["F"]["control_baseline"]) == (0.1, 0.2)
    set_control_baselines(d, {"F": 0.3}, aggregate={"I": "min", "F": "mean"})  # only the observables measured
    cards = {k: json.loads((d / f"helcaraxe_{k.lower()}obs.json").read_text()) for k in ("I", "F")}
    assert (cards["I"]["control_aggregate"], cards["F"]["control_aggregate"]) == ("mean", "mean")
    assert (cards["I"]["control_baseline"], cards["F"]["control_baseline"]) == (0.1, 0.3)


def test_real_thresholds_writes_each_observables_pooling(shared_dir, network_copy, capsys):
    """``--aggregate I=mean,F=min --cards``: each card gets its own pooling (a loop variable once
    overwrote the parsed option, and both cards got the last observable's)."""
    from auspex_helcaraxe.training.real_thresholds import main

    d = network_copy("pool", control_aggregate="min")
    assert main(["--real", str(shared_dir / "data" / "real"), "--networks", str(d), "--controls",
                 "--aggregate", "I=mean,F=min", "--cards", str(d)]) in (0, None)
    cards = {k: json.loads((d / f"helcaraxe_{k.lower()}obs.json").read_text()) for k in ("I", "F")}
    assert (cards["I"]["control_aggregate"], cards["F"]["control_aggregate"]) == ("mean", "min")
    assert "I: control baseline" in capsys.readouterr().out
