"""TFLite networks: parity with the published pipeline's probabilities, model cards, loading errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from auspex_helcaraxe.errors import InputError
from auspex_helcaraxe.host import Host
from auspex_helcaraxe.network import ModelCard, load_networks, sha256_of
from auspex_helcaraxe.plots import make_plots
from auspex_helcaraxe.readers import read
from auspex_helcaraxe.results import AnalysisOptions


def test_published_networks_reproduce_reference_probabilities(real_data, published_reference, published_dir):
    nets = load_networks(published_dir)
    assert set(nets) == {"I", "F"}
    compared = 0
    for name, ref in published_reference.items():
        refl = read(real_data[name])
        for kind in "IF":
            expected = ref.get(f"prob_{kind}")
            if not expected:
                continue
            plots = make_plots(refl.observables[kind])
            got = nets[kind].predict(plots.inputs)  # the whole data set in one batch
            np.testing.assert_allclose(got, expected, atol=1e-4, err_msg=f"{name} {kind}")
            compared += len(expected)
    assert compared > 500


def test_published_verdicts_through_the_host(real_data, published_reference, published_dir):
    """The detector's predicted ranges and flags equal the published 25-slot output."""
    host = Host()
    options = AnalysisOptions(networks=str(published_dir))
    for name in ("BAZ2BA_x828_free.mtz", "5usx.mtz", "3t5o_refmac.mtz", "1l2h.mtz"):
        analysis = host.analyse(read(real_data[name]), detectors="helcaraxe", options=options)
        for result in analysis.results:
            published = published_reference[name][f"published_{result.observable}"]
            for r in result.ranges:
                slot = published[r.index - 1]
                if r.status == "predicted":
                    assert slot is not None and slot >= 0
                    assert round(r.value, 2) == pytest.approx(slot, abs=0.011)
                    assert r.flagged == (r.value >= 0.5)
                elif r.status == "not covered":
                    assert slot == -1
    iced = host.analyse(read(real_data["BAZ2BA_x828_free.mtz"]), detectors="helcaraxe", options=options)
    assert iced.flagged_ranges == [5, 8]  # labels.tsv: I:5,8;F:5,8


def test_model_card_round_trip_and_checks(tmp_path, published_dir):
    src = published_dir / "published_helcaraxe_fobs.tflite"
    dst = tmp_path / "my_fobs.tflite"
    shutil.copy(src, dst)
    card = ModelCard(name="mine", observable="F", version="9", sha256=sha256_of(dst), metrics={"accuracy": 0.9})
    (tmp_path / "my_fobs.json").write_text(json.dumps(card.to_dict()))
    nets = load_networks(tmp_path)
    assert set(nets) == {"F"} and nets["F"].card == card
    # A card whose checksum does not match its network is refused.
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(src, bad / "x_fobs.tflite")
    (bad / "x_fobs.json").write_text(json.dumps({**card.to_dict(), "sha256": "0" * 64}))
    with pytest.raises(InputError, match="sha256"):
        load_networks(bad)


def test_network_directory_errors(tmp_path, published_dir):
    with pytest.raises(InputError, match="not found"):
        load_networks(tmp_path / "missing")
    assert load_networks(tmp_path) == {}
    two = tmp_path / "two"
    two.mkdir()
    shutil.copy(published_dir / "published_helcaraxe_iobs.tflite", two / "a_iobs.tflite")
    shutil.copy(published_dir / "published_helcaraxe_iobs.tflite", two / "b_iobs.tflite")
    with pytest.raises(InputError, match="more than one I network"):
        load_networks(two)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "junk_fobs.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(InputError, match="not a usable TFLite network"):
        load_networks(junk)["F"].predict(np.zeros((1, 80, 80, 1), np.float32))


def test_set_num_threads_rebuilds_interpreters_with_same_results(published_dir):
    from auspex_helcaraxe import network

    net = load_networks(published_dir)["F"]
    x = np.random.default_rng(0).normal(size=(3, 80, 80, 1)).astype(np.float32)
    before = net.predict(x)
    assert net._interpreter is not None
    network.set_num_threads(1)
    try:
        assert net._interpreter is None
        np.testing.assert_allclose(net.predict(x), before, atol=1e-6)
    finally:
        network.set_num_threads(None)


def test_card_plot_scale_feeds_the_network_its_own_plots(network_copy):
    """A card's plot_scale is what the detector (and its control windows) plot for that network; the
    other observable keeps the published scale; a mismatched path is refused; an unknown scale too."""
    from auspex_helcaraxe.controls import score
    from auspex_helcaraxe.network import on_scale, plots_by_scale, plots_for
    from auspex_helcaraxe.report import to_dict
    from auspex_helcaraxe.simulate import simulate_dataset

    d = network_copy("sqrt")
    card_path = d / "helcaraxe_iobs.json"
    card_path.write_text(json.dumps({**json.loads(card_path.read_text()), "plot_scale": "signed_sqrt"}))
    nets = load_networks(d)
    assert nets["I"].card.plot_scale == "signed_sqrt" and nets["F"].card.plot_scale == "linear"
    refl = simulate_dataset(np.random.default_rng(11), ice={"probability": 1.0}).reflections
    analysis = Host().analyse(refl, "helcaraxe", AnalysisOptions(networks=d, extra={"controls": "all"}))
    for kind, scale in (("I", "signed_sqrt"), ("F", "linear")):
        obs = refl.observables[kind]
        plots = make_plots(obs, scale=scale)
        assert plots_for(obs, nets[kind]).scale == scale and set(plots_by_scale(obs, nets.values())) == {"linear", "signed_sqrt"}
        result = analysis.result("helcaraxe", kind)
        assert result.info["plot_scale"] == scale and to_dict(analysis)["observables"][kind]["plot_scale"] == scale
        pred = plots.predictable
        expected = nets[kind].predict(plots.inputs[pred])
        got = [r.details["network_probability"] for r in result.ranges if r.status == "predicted"]
        np.testing.assert_allclose(got, expected, atol=6e-5)  # the report rounds to 4 decimals
    obs_i = refl.observables["I"]
    linear, on_sqrt = make_plots(obs_i), plots_for(obs_i, nets["I"])
    pred = linear.predictable
    assert np.abs(nets["I"].predict(linear.inputs[pred]) - nets["I"].predict(on_sqrt.inputs[pred])).max() > 1e-3
    with pytest.raises(ValueError, match="reads signed_sqrt"):
        score(obs_i, linear, nets["I"])
    assert on_scale(linear, obs_i, nets["I"]).scale == "signed_sqrt" and on_scale(linear, obs_i, nets["F"]) is linear
    card_path.write_text(json.dumps({**json.loads(card_path.read_text()), "plot_scale": "log"}))
    with pytest.raises(InputError, match="unknown plot_scale"):
        load_networks(d)


def test_sparse_threshold_raises_the_flag_threshold_of_sparse_plots_only(network_copy):
    """sparse_threshold [n, t]: plots of fewer than n reflections flag alone only at p ≥ max(threshold, t);
    the evidence says so; --threshold applies to every plot; bad values are refused."""
    from auspex_helcaraxe.network import flag_thresholds
    from auspex_helcaraxe.simulate import simulate_dataset

    card = ModelCard(name="x", observable="F", threshold=0.5, sparse_threshold=(200, 0.7))
    np.testing.assert_array_equal(flag_thresholds(card, [50, 199, 200, 5000]), [0.7, 0.7, 0.5, 0.5])
    assert ModelCard.from_dict(card.to_dict()) == card and card.to_dict()["sparse_threshold"] == [200, 0.7]
    with pytest.raises(InputError, match="sparse_threshold"):
        ModelCard(name="x", observable="F", sparse_threshold=(200, 1.5))

    refl = simulate_dataset(np.random.default_rng(6), ice={"probability": 1.0}).reflections  # two weak F flags
    plain = Host().analyse(refl, "helcaraxe", AnalysisOptions(networks=network_copy("plain")))
    res = plain.result("helcaraxe", "F")
    pred = [r for r in res.ranges if r.status == "predicted"]
    n = {r.index: r.details["n_reflections"] for r in pred}
    below = max(n.values()) + 1
    flagged = [r for r in pred if r.flagged]
    assert len(flagged) >= 2, "the simulated data set should have two flagged F ranges"
    t = max(r.value for r in flagged) + 1e-3  # above every flagged p, and every plot counts as sparse
    raised = Host().analyse(refl, "helcaraxe", AnalysisOptions(networks=network_copy("sparse", sparse_threshold=[below, t], dense_threshold=None)))
    res2 = raised.result("helcaraxe", "F")
    assert res2.info["sparse_threshold"] == [below, t]
    assert not any(r.flagged for r in res2.ranges)  # every plot is sparse and below t
    assert [r.value for r in res2.ranges] == [r.value for r in res.ranges]  # probabilities unchanged
    # a threshold given by the user applies to every plot, sparse or not
    user = Host().analyse(refl, "helcaraxe", AnalysisOptions(networks=network_copy("sparse2", sparse_threshold=[below, t], dense_threshold=None),
                                                            threshold=0.5))
    assert [r.flagged for r in user.result("helcaraxe", "F").ranges] == [r.value is not None and r.value >= 0.5
                                                                         for r in user.result("helcaraxe", "F").ranges]
    # with t just below the top p, only that range flags, and its evidence names the sparse plot
    top = max(flagged, key=lambda r: r.value)
    one = Host().analyse(refl, "helcaraxe", AnalysisOptions(networks=network_copy("sparse3", sparse_threshold=[below, top.value - 1e-4], dense_threshold=None)))
    got = [r for r in one.result("helcaraxe", "F").ranges if r.flagged]
    assert [r.index for r in got] == [top.index] and "sparse plot" in got[0].details["evidence"]
    from matplotlib.figure import Figure

    from auspex_helcaraxe.detectors.helcaraxe import auspex_annotate_resolution_plot

    for analysis, named in ((one, True), (plain, False)):  # the figure's legend names the step where a flag used it
        ax = Figure().add_subplot()
        auspex_annotate_resolution_plot(ax, "F", analysis.result("helcaraxe", "F"), refl)
        labels = ax.get_legend_handles_labels()[1]
        assert len(labels) == 1 and (f"below {below} reflections" in labels[0]) == named


def test_dense_threshold_lowers_the_flag_threshold_of_large_plots_only(network_copy):
    """dense_threshold [n, t]: plots of at least n reflections flag alone from p ≥ min(threshold, t), on
    their discounted p (their control windows scored wherever the network alone reaches t); the
    evidence, legend and report say so; --threshold applies to every plot; bad values are refused."""
    from matplotlib.figure import Figure

    from auspex_helcaraxe.detectors.helcaraxe import auspex_annotate_resolution_plot
    from auspex_helcaraxe.network import flag_thresholds
    from auspex_helcaraxe.report import to_dict
    from auspex_helcaraxe.simulate import simulate_dataset

    card = ModelCard(name="x", observable="I", threshold=0.5, sparse_threshold=(150, 0.7), dense_threshold=(800, 0.35))
    np.testing.assert_array_equal(flag_thresholds(card, [50, 799, 800, 5000]), [0.7, 0.5, 0.35, 0.35])
    assert ModelCard.from_dict(card.to_dict()) == card and card.to_dict()["dense_threshold"] == [800, 0.35]
    for bad in ({"dense_threshold": (800, 1.2)}, {"dense_threshold": (0, 0.3)},
                {"dense_threshold": (100, 0.3), "sparse_threshold": (150, 0.7)}):
        with pytest.raises(InputError, match="dense_threshold"):
            ModelCard(name="x", observable="I", **bad)

    refl = simulate_dataset(np.random.default_rng(6), ice={"probability": 1.0}).reflections
    plain = Host().analyse(refl, "helcaraxe", AnalysisOptions(networks=network_copy("plain", dense_threshold=None)))
    t = 0.02  # below most plots' p: every plot counts as large
    low = Host().analyse(refl, "helcaraxe", AnalysisOptions(networks=network_copy("dense", dense_threshold=[1, t], sparse_threshold=None)))
    for kind in ("I", "F"):
        before, after = plain.result("helcaraxe", kind), low.result("helcaraxe", kind)
        card_t = after.info["threshold"]
        assert after.info["dense_threshold"] == [1, t] and "dense_threshold" not in before.info
        for a in after.ranges:
            if a.status != "predicted":
                continue
            if a.details["network_probability"] >= t:  # the flag can rest on the discounted p only
                assert a.details["control_probabilities"] is not None
            assert a.flagged == (a.value >= t or "pair" in a.details)
            if t <= a.value < card_t:
                assert "(large plot:" in a.details["evidence"]
        assert {r.index for r in before.ranges if r.flagged} <= {r.index for r in after.ranges if r.flagged}
    gained = [r for r in low.result("helcaraxe", "F").ranges if r.flagged and r.value < card_t]
    assert gained, "the simulated data set should have F ranges below the card threshold and above 0.02"
    ax = Figure().add_subplot()
    auspex_annotate_resolution_plot(ax, "F", low.result("helcaraxe", "F"), refl)
    assert f"from 1 reflections" in ax.get_legend_handles_labels()[1][0]
    assert to_dict(low)["observables"]["F"]["dense_threshold"] == [1, t]
    assert to_dict(plain)["observables"]["F"]["dense_threshold"] is None
    user = Host().analyse(refl, "helcaraxe", AnalysisOptions(networks=network_copy("dense2", dense_threshold=[1, t], sparse_threshold=None),
                                                            threshold=0.5))
    res = user.result("helcaraxe", "F")
    assert "dense_threshold" not in res.info
    assert [r.flagged for r in res.ranges] == [r.value is not None and (r.value >= 0.5 or "pair" in r.details)
                                               for r in res.ranges]


def test_real_thresholds_writes_sparse_threshold_into_cards(network_copy, shared_dir, capsys):
    """Step 2 of training.md writes the sparse and dense steps into the cards it is given (and refuses
    them without --cards or with a malformed value), reporting the clean data sets the dense step
    flags; the cards then load with them."""
    from auspex_helcaraxe.training.real_thresholds import main

    for argv in (["--sparse-threshold", "F=200:0.7"], ["--sparse-threshold", "F=200", "--cards", "x"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    assert "--sparse-threshold" in capsys.readouterr().err
    for argv in (["--dense-threshold", "I=800:0.35"], ["--dense-threshold", "I=800", "--cards", "x"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    assert "--dense-threshold" in capsys.readouterr().err
    d = network_copy("cards", sparse_threshold=None)
    assert main(["--real", str(shared_dir / "data" / "real"), "--networks", str(d), "--cards", str(d),
                 "--sparse-threshold", "F=200:0.7,I=150:0.65", "--dense-threshold", "I=800:0.01"]) == 0
    out = capsys.readouterr().out
    nets = load_networks(d)
    assert nets["F"].card.sparse_threshold == (200, 0.7) and nets["I"].card.sparse_threshold == (150, 0.65)
    assert "sparse_threshold" in nets["F"].card.metrics["real_clean"]
    assert nets["I"].card.dense_threshold == (800, 0.01) and nets["F"].card.dense_threshold is None
    block = nets["I"].card.metrics["real_clean"]["dense_threshold"]
    assert block["dense_threshold"] == [800, 0.01] and block["flagged_datasets"]  # at 0.01 clean large plots flag
    assert "dense threshold [800, 0.01]: flagged" in out


def test_interpreters_default_to_the_usable_cpus(monkeypatch, tmp_path):
    """Without set_num_threads an interpreter gets network.auto_threads(): $HELCARAXE_THREADS, else the
    CPUs the process may use (at most MAX_AUTO_THREADS); a bad value is a one-line NetworkError."""
    from auspex_helcaraxe import network

    built = []

    class Fake:
        def __init__(self, model_path, num_threads):
            built.append(num_threads)

    monkeypatch.setattr(network, "interpreter_class", lambda: Fake)
    monkeypatch.delenv("HELCARAXE_THREADS", raising=False)
    monkeypatch.setattr(network.os, "sched_getaffinity", lambda pid: set(range(3)), raising=False)
    net = network.Network(tmp_path / "x.tflite", card=None)
    net._interp(0)
    monkeypatch.setattr(network.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    net.reset()
    net._interp(0)
    monkeypatch.setenv("HELCARAXE_THREADS", "7")
    net.reset()
    net._interp(0)
    network.set_num_threads(1)
    try:
        net.reset()
        net._interp(0)
    finally:
        network.set_num_threads(None)
    assert built == [3, network.MAX_AUTO_THREADS, 7, 1]
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("HELCARAXE_THREADS", bad)
        net.reset()
        with pytest.raises(network.NetworkError, match="HELCARAXE_THREADS"):
            net._interp(0)
