"""Training package: MAC counter, model size, Keras → TFLite conversion (against the published
TFLite files) and a tiny training run. Needs TensorFlow (the ``[train]`` extra): skips without it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from auspex_helcaraxe.errors import InputError
from auspex_helcaraxe.network import ModelCard, load_networks, sha256_of
from auspex_helcaraxe.training import convert as conv
from auspex_helcaraxe.training.data import ONEDNN_ISA
from auspex_helcaraxe.training.models import MAX_MACS, build_model, count_macs


def test_count_macs_by_hand():
    inp = keras.Input((10, 12, 2))
    x = keras.layers.Conv2D(3, 3, padding="same")(inp)  # 10*12*3 outputs × 3*3*2 taps
    x = keras.layers.Conv2D(4, (3, 5), padding="valid")(x)  # 8*8*4 outputs × 3*5*3 taps
    x = keras.layers.MaxPooling2D(2)(x)  # 4*4*4, no MACs
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)  # 4*4*4 outputs × 9 taps
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Flatten()(x)  # 64
    x = keras.layers.Dense(5)(x)
    out = keras.layers.Dense(1)(x)
    model = keras.Model(inp, out)
    expected = 10 * 12 * 3 * 18 + 8 * 8 * 4 * 45 + 4 * 4 * 4 * 9 + 64 * 5 + 5
    assert count_macs(model) == expected


def test_default_model_is_small_and_of_the_family():
    model = build_model(seed=1)
    assert model.output_shape == (None, 1)
    assert model.input_shape == (None, 80, 80, 1)
    assert count_macs(model) <= MAX_MACS
    kinds = [type(l).__name__ for l in model.layers]
    assert kinds.count("Conv2D") == 8 and kinds.count("BatchNormalization") == 8
    assert kinds.count("MaxPooling2D") == 4 and "Dropout" in kinds
    assert model.layers[-1].activation.__name__ == "sigmoid"


def test_build_model_is_seeded():
    a = build_model(seed=3).get_weights()
    b = build_model(seed=3).get_weights()
    c = build_model(seed=4).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_observable_from_name():
    assert conv.observable_from_name("Helcaraxe_Iobs_model.h5") == "I"
    assert conv.observable_from_name("helcaraxe_FOBS.keras") == "F"
    assert conv.observable_from_name("model.h5") is None


def test_convert_small_model_roundtrip(tmp_path):
    model = build_model(seed=0)
    src = tmp_path / "mine.keras"
    model.save(src)
    with pytest.raises(InputError, match="observable"):
        conv.convert(src, tmp_path / "out")
    path = conv.convert(src, tmp_path / "out", observable="I", version="t1", metrics={"accuracy": 0.5})
    assert path.name == "helcaraxe_iobs.tflite"
    card = ModelCard.from_dict(json.loads(path.with_suffix(".json").read_text()))
    assert card.observable == "I" and card.sha256 == sha256_of(path) and card.version == "t1"
    assert card.metrics == {"accuracy": 0.5} and card.extra["macs_per_plot"] == count_macs(model)
    x = np.random.default_rng(0).standard_normal((7, 80, 80, 1)).astype(np.float32)
    net = load_networks(path.parent)["I"]
    np.testing.assert_allclose(net.predict(x), model.predict(x, verbose=0).ravel(), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["I", "F"])
def test_convert_published_h5_matches_published_tflite(kind, published_dir, tmp_path):
    h5 = published_dir / f"Helcaraxe_{kind.lower().capitalize()}obs_model.h5"
    path = conv.convert(h5, tmp_path, name="published")
    assert path.name == f"helcaraxe_{kind.lower()}obs_published.tflite"
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["observable"] == kind and card["source_sha256"] == sha256_of(h5)
    ours = load_networks(tmp_path)[kind]
    theirs = load_networks(published_dir)[kind]
    # every 3rd stored data set: a few dozen plots keep this test in seconds
    files = sorted(published_dir.glob("*.npz"))[::3]
    x = np.concatenate([z[f"input_{kind}"] for z in map(np.load, files) if f"input_{kind}" in z])[..., None]
    assert len(x) >= 20
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x), atol=1e-5, rtol=0)


def test_fit_is_reproducible_with_a_seed():
    from auspex_helcaraxe.training import train as tr

    rng = np.random.default_rng(0)
    X = rng.standard_normal((48, 80, 80, 1)).astype(np.float32)
    y = (rng.random(48) < 0.4).astype(np.int8)
    groups = np.repeat(np.arange(12), 4)
    weights = []
    for _ in range(2):
        tr.set_seeds(7)
        model = build_model(filters=(2, 2, 2, 2), dense_units=4, seed=7)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
        t, v = tr.tdata.split_by_group(groups, 0.25, 7)
        tr._fit(model, X, y, t, v, epochs=1, batch_size=16, seed=7, log=lambda m: None, balance=False)
        weights.append(model.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*weights))


@pytest.mark.slow
def test_training_is_repeatable_across_processes(tmp_path):
    """The seeded command gives the same TFLite bytes in two fresh processes on one machine (across
    machines oneDNN's CPU-dependent kernels change the numbers: docs/training.md)."""
    import subprocess
    import sys

    code = ("import sys; from auspex_helcaraxe.training.train import train; "
            "train(sys.argv[1], seed=2, n_datasets=8, epochs=1, transfer_epochs=1, batch_size=16, threads=1, "
            "cache_dir=sys.argv[2], check_int8=False, log=lambda m: None)")
    for k in (1, 2):  # the second process reads the training sets the first one cached
        subprocess.run([sys.executable, "-c", code, str(tmp_path / f"nets{k}"), str(tmp_path / "cache")],
                       check=True, capture_output=True, timeout=600)
    for kind in ("fobs", "iobs"):
        a, b = (sha256_of(tmp_path / f"nets{k}" / f"helcaraxe_{kind}.tflite") for k in (1, 2))
        assert a == b


@pytest.mark.slow
def test_tiny_training_run(tmp_path):
    """A few steps end to end: simulated sets → F → I by transfer → TFLite + cards that load."""
    from auspex_helcaraxe.training.train import train

    summary = train(tmp_path / "nets", seed=1, n_datasets=10, epochs=1, transfer_epochs=1, batch_size=16,
                    cache_dir=tmp_path / "cache", check_int8=False, log=lambda m: None, plot_scale={"I": "signed_sqrt"})
    nets = load_networks(tmp_path / "nets")
    assert set(nets) == {"I", "F"}
    # the I network was trained on signed-sqrt plots and its card says so (every path follows the card)
    assert nets["I"].card.plot_scale == "signed_sqrt" and nets["F"].card.plot_scale == "linear"
    assert nets["I"].card.extra["training"]["plot_scale"] == {"I": "signed_sqrt"}
    for kind, net in nets.items():
        card = net.card
        assert card.name == f"helcaraxe_{kind.lower()}obs" and card.sha256 == sha256_of(net.path)
        assert 0.5 <= card.threshold <= 0.99
        assert card.metrics["validation_simulated"]["n"] > 0
        assert card.extra["macs_per_plot"] <= MAX_MACS
        assert "published" not in card.training_data.lower().replace("never trained on the published", "")
        p = net.predict(np.zeros((2, 80, 80, 1), np.float32))
        assert p.shape == (2,) and np.all((p >= 0) & (p <= 1))
    assert nets["I"].card.extra["training"]["initialised_from"].startswith("helcaraxe_fobs")
    assert nets["I"].card.extra["training"]["learning_rate_used"] == 5e-4
    import gemmi

    versions = {k: nets["F"].card.extra["training"][k] for k in ("tensorflow", "keras", "numpy", "gemmi")}
    assert versions["numpy"] == np.__version__ and versions["gemmi"] == gemmi.__version__  # for a run that does not reproduce
    plat = nets["F"].card.extra["training"]["platform"]
    assert plat["cpu_count"] == os.cpu_count() and set(plat["isa"]) <= set(ONEDNN_ISA) and plat["onednn_opts"]
    assert summary["networks"]["F"]["macs_per_plot"] == count_macs(build_model())
    # the training set was cached: a second call reads it instead of simulating again
    assert len(list((tmp_path / "cache").glob("set_*/done"))) == 2


@pytest.mark.slow
def test_train_members_is_one_command_for_an_ensemble(tmp_path):
    """--members 2: two seeded pairs of one recipe, exported per observable as their mean; each member
    is the network a plain run with its seed makes."""
    from auspex_helcaraxe.training.train import train, train_members

    kw = dict(n_datasets=8, epochs=1, transfer_epochs=1, batch_size=16, cache_dir=tmp_path / "cache",
              check_int8=False, log=lambda m: None)
    summary = train_members(tmp_path / "ens", 2, seed=5, **kw)
    nets = load_networks(tmp_path / "ens")
    assert set(nets) == {"I", "F"} and summary["networks"]["F"]["macs_per_plot"] == 2 * count_macs(build_model())
    members = [load_networks(tmp_path / "ens" / "members" / f"seed{s}") for s in (5, 6)]
    x = np.random.default_rng(0).standard_normal((5, 80, 80, 1)).astype(np.float32)
    for kind in ("I", "F"):
        each = [m[kind].predict(x) for m in members]
        assert np.abs(each[0] - each[1]).max() > 1e-4  # two seeds, two networks
        np.testing.assert_allclose(nets[kind].predict(x), np.mean(each, axis=0), atol=1e-5)
        card = nets[kind].card.extra
        assert card["training"]["member_seeds"] == [5, 6] and card["training"]["members"] == 2
        assert [m["sha256"] for m in card["ensemble"]["members"]] == [
            sha256_of(tmp_path / "cache" / f"keras_seed{s}" / f"helcaraxe_{kind.lower()}obs.keras") for s in (5, 6)]
    # the second member is the network a plain run with seed 6 makes (same data, same weights)
    train(tmp_path / "plain6", seed=6, **kw)
    assert sha256_of(tmp_path / "plain6" / "helcaraxe_fobs.tflite") == members[1]["F"].card.sha256
    with pytest.raises(ValueError, match="at least 2"):
        train_members(tmp_path / "x", 1, **kw)


@pytest.mark.slow
def test_train_cli_members_with_threads(tmp_path):
    """The documented command shape, `train OUT --members 2 --threads 1`, end to end in a fresh process."""
    import subprocess
    import sys

    out = tmp_path / "ens"
    r = subprocess.run([sys.executable, "-m", "auspex_helcaraxe.training.train", str(out), "--members", "2",
                        "--seed", "3", "--threads", "1", "--n-datasets", "6", "--epochs", "1", "--transfer-epochs", "1",
                        "--no-int8-check", "--cache-dir", str(tmp_path / "cache")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    nets = load_networks(out)
    assert set(nets) == {"I", "F"} and nets["F"].card.extra["training"]["member_seeds"] == [3, 4]
    for seed in (3, 4):
        assert set(load_networks(out / "members" / f"seed{seed}")) == {"I", "F"}


def test_relabel_weak_labels_only_whole_rings_above_the_strength():
    from auspex_helcaraxe.training.train import relabel_weak

    y = np.array([0, 0, 1, 0, 0, 0])
    meta = [{"strength": 0.5, "effects": "spike,sigma"},  # whole, strong enough: iced now (meta's format)
            {"strength": 0.5, "effects": "spike,sigma,partial"},  # partial ring: unchanged
            {"strength": 2.0, "effects": ["spike"]},  # already iced
            {"strength": 0.1, "effects": ["oversubtracted"]},  # too weak
            {"strength": 0.3, "effects": ["excluded"]},  # a gap, not a spike
            {"strength": 0.0, "effects": []}]
    new, changed = relabel_weak(y, meta, 0.25)
    assert new.tolist() == [1, 0, 1, 0, 0, 0] and changed == 1
    assert y.tolist() == [0, 0, 1, 0, 0, 0]  # the input is not modified
    # simulated_only: a weak ring on a real background keeps its visibility label
    src = [{**m, "source": s} for m, s in zip(meta, ["semi:x.mtz", "sim", "sim", "sim", "sim", "sim"])]
    src.append({"strength": 0.5, "effects": "spike", "source": "sim"})
    y7 = np.append(y, 0)
    assert relabel_weak(y7, src, 0.25)[0].tolist() == [1, 0, 1, 0, 0, 0, 1]
    assert relabel_weak(y7, src, 0.25, simulated_only=True)[0].tolist() == [0, 0, 1, 0, 0, 0, 1]


def test_relabel_weak_with_ref_n_asks_sparse_plots_for_a_stronger_ring():
    from auspex_helcaraxe.training.train import relabel_weak

    meta = [{"strength": 0.2, "effects": "spike", "n_in_range": 400},  # dense enough: 0.15 suffices
            {"strength": 0.2, "effects": "spike", "n_in_range": 100},  # 100 of 400: needs 0.15 * 2 = 0.3
            {"strength": 0.31, "effects": "spike", "n_in_range": 100},
            {"strength": 0.2, "effects": "spike", "n_in_range": 4000},  # more than ref_n: never below 0.15
            {"strength": 0.1, "effects": "spike", "n_in_range": 4000},
            {"strength": 0.2, "effects": "spike"}]  # no count (hybrid/joint rows): the plain rule
    y = np.zeros(len(meta))
    assert relabel_weak(y, meta, 0.15, ref_n=400)[0].tolist() == [1, 0, 1, 1, 0, 1]
    assert relabel_weak(y, meta, 0.15)[0].tolist() == [1, 1, 1, 1, 0, 1]


def test_weak_label_argument_one_value_or_per_observable():
    import argparse

    from auspex_helcaraxe.training.train import weak_label_arg

    assert weak_label_arg("0.3") == 0.3
    assert weak_label_arg("F=0.3,I=0.1") == {"F": 0.3, "I": 0.1}
    assert weak_label_arg("I=0.15") == {"I": 0.15}
    for bad in ("x", "G=0.1", "F=", "F=0.1=2"):
        with pytest.raises(argparse.ArgumentTypeError):
            weak_label_arg(bad)


def test_plot_scale_argument_per_observable():
    import argparse

    from auspex_helcaraxe.training.train import plot_scale_arg

    assert plot_scale_arg("I=signed_sqrt") == {"I": "signed_sqrt"}
    assert plot_scale_arg("I=signed_sqrt, F=linear") == {"I": "signed_sqrt", "F": "linear"}
    for bad in ("signed_sqrt", "G=linear", "I=log", "I="):
        with pytest.raises(argparse.ArgumentTypeError):
            plot_scale_arg(bad)


def test_real_negative_weights_only_on_negatives_of_real_backgrounds():
    from auspex_helcaraxe.training.train import real_negative_weights

    y = np.array([0, 1, 0, 0])
    meta = [{"source": "semi:a.mtz"}, {"source": "semi:a.mtz"}, {"source": "sim"}, {}]
    w = real_negative_weights(y, meta, 3.0)
    assert w.dtype == np.float32 and w.tolist() == [3.0, 1.0, 1.0, 1.0]


def test_fit_takes_per_plot_weights():
    from auspex_helcaraxe.training import train as tr

    rng = np.random.default_rng(1)
    X = rng.standard_normal((32, 80, 80, 1)).astype(np.float32)
    y = (rng.random(32) < 0.5).astype(np.int8)
    t, v = tr.tdata.split_by_group(np.repeat(np.arange(8), 4), 0.25, 1)
    out = []
    for w in (np.ones(32), np.where(y == 0, 5.0, 1.0)):
        tr.set_seeds(1)
        model = build_model(filters=(2, 2, 2, 2), dense_units=4, seed=1)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
        tr._fit(model, X, y, t, v, epochs=1, batch_size=8, seed=1, log=lambda m: None, balance=True, weights=w)
        out.append(model.get_weights())
    assert not all(np.array_equal(a, b) for a, b in zip(*out))  # the weights reach the loss


def test_profile_branch_model_is_small_single_input_and_converts(tmp_path):
    from auspex_helcaraxe.training.models import ColumnProfile

    default = build_model(seed=0)
    model = build_model(seed=0, profile_branch=True)
    assert model.input_shape == (None, 80, 80, 1) and len(model.inputs) == 1 and model.output_shape == (None, 1)
    assert count_macs(default) < count_macs(model) <= MAX_MACS
    assert "profile" not in [l.name for l in default.layers]  # off by default: the default model is unchanged
    # the profile: columns' count-weighted mean row (centred), spread (centred) and share
    counts = np.zeros((1, 80, 80), np.float32)
    counts[0, 10, :40] = 1.0  # columns 0-39: all counts high up (row 10) ...
    counts[0, 60, 40:] = 1.0  # ... columns 40-79: low down (row 60)
    x = ((counts - counts.mean()) / counts.std())[..., None]
    prof = keras.ops.convert_to_numpy(ColumnProfile()(x))
    assert prof.shape == (1, 80, 3)
    np.testing.assert_allclose(prof[0, 0, 0] - prof[0, 79, 0], 10.0 * (10 - 60) / 79, atol=1e-4)
    np.testing.assert_allclose(prof[0, :, 2], 0.0, atol=1e-5)  # every column holds the same count
    src = tmp_path / "p.keras"
    model.save(src)
    path = conv.convert(src, tmp_path / "out", observable="F", version="t")
    xs = np.random.default_rng(2).standard_normal((5, 80, 80, 1)).astype(np.float32)
    net = load_networks(path.parent)["F"]
    np.testing.assert_allclose(net.predict(xs), model.predict(xs, verbose=0).ravel(), atol=1e-5)
    assert json.loads(path.with_suffix(".json").read_text())["macs_per_plot"] == count_macs(model)


@pytest.mark.parametrize("module", ["real_thresholds", "line_excess"])
def test_commands_needing_real_data_say_so_in_one_line_and_exit_2(module, tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "HELCARAXE_SHARED": str(tmp_path / "none")}
    r = subprocess.run([sys.executable, "-m", f"auspex_helcaraxe.training.{module}"], capture_output=True, text=True,
                       env=env, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == "error: no real data directory (--real)"


@pytest.mark.parametrize("module, argv", [
    ("real_thresholds", []), ("line_excess", []), ("thinned", []), ("independent", []), ("families", []),
    ("joint", []), ("evaluate", []), ("kfold", ["--networks", "A", "B"]), ("hybrid", ["--networks", "A"]),
])
def test_a_real_data_option_that_is_not_a_real_data_directory_is_one_line_and_exit_2(module, argv, tmp_path, capsys):
    """``--real DIR`` without ``labels.tsv`` (a typo, the wrong folder): one line, exit 2, no traceback."""
    import importlib

    main = importlib.import_module(f"auspex_helcaraxe.training.{module}").main
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--real", str(tmp_path)])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path}: not a real data directory (no labels.tsv)"


def test_train_backgrounds_that_are_not_a_real_data_directory_is_one_line_and_exit_2(tmp_path, capsys):
    from auspex_helcaraxe.training.train import main

    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "out"), "--backgrounds", str(tmp_path), "--n-datasets", "2"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path}: not a real data directory (no labels.tsv)"
    assert not (tmp_path / "out").exists()


def test_real_dir_prefers_the_argument(tmp_path):
    from auspex_helcaraxe.training.data import real_dir

    assert real_dir(str(tmp_path)) == tmp_path
