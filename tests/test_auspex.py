"""AUSPEX integration: the drop-in cnn_predict and the ``helcaraxe auspex`` launcher.

The launcher tests run against ``tests/fake_auspex`` (a stand-in mirroring AUSPEX 2.3.2's module
layout and call sequence; see its README); the parity test needs ``../shared``.
"""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from auspex_helcaraxe.cli import main
from auspex_helcaraxe.integrations import auspex as integ
from auspex_helcaraxe.network import load_networks
from auspex_helcaraxe.plots import BLANK_WINDOW_MEAN, PLOT_SIZE, WINDOW_COLUMNS, WINDOW_STEP, make_plots
from auspex_helcaraxe.readers import read
from auspex_helcaraxe.results import AnalysisOptions, EXCISED, NONPREDICTABLE, PREDICTED
from auspex_helcaraxe.simulate import demo_dataset, write_mtz

FAKE = Path(__file__).parent / "fake_auspex"
AUSPEX_MODULES = ("auspex", "Auspex", "Plotter", "Parser", "IceRings", "Helcaraxe", "ReflectionData",
                  "ReflectionData.ReflectionBase", "ReflectionData.AutoReader")


def _forget_auspex() -> None:
    for name in AUSPEX_MODULES:
        sys.modules.pop(name, None)
    sys.path[:] = [p for p in sys.path if not p.startswith(str(FAKE))]


@pytest.fixture
def fake_auspex():
    """The stand-in AUSPEX importable as ``auspex`` for one test."""
    _forget_auspex()
    sys.path.insert(0, str(FAKE))
    yield FAKE
    _forget_auspex()


@pytest.fixture(scope="module")
def demo_mtz(tmp_path_factory) -> Path:
    return write_mtz(demo_dataset(), tmp_path_factory.mktemp("auspex") / "demo.mtz")


@pytest.fixture(scope="module")
def blank_mtz(tmp_path_factory, demo_mtz) -> Path:
    """The demo data with the reflections of part of range 5 (2.294–2.209 Å) removed: a blank plot."""
    import gemmi

    mtz = gemmi.read_mtz_file(str(demo_mtz))
    data = np.array(mtz, copy=True)
    d = mtz.make_d_array()
    mtz.set_data(data[~((d > 2.22) & (d < 2.26))])
    out = tmp_path_factory.mktemp("auspex") / "blank5.mtz"
    mtz.write_to_file(str(out))
    return out


# ---------------------------------------------------------------------------------------------
# cnn_predict: AUSPEX's conventions


def test_cnn_predict_conventions(demo_mtz):
    refl = read(str(demo_mtz))
    i, f = refl.observables["I"], refl.observables["F"]
    out_i, out_f = integ.cnn_predict(i.d, i.values, f.d, f.values)
    covered = {r.index for r in make_plots(i).ranges}
    for out in (out_i, out_f):
        assert out.shape == (25,) and out.dtype == np.float64
        for slot, v in enumerate(out):
            if slot + 1 in covered:
                assert math.isnan(v) or (0.0 <= v <= 1.0 and round(v * 100) == pytest.approx(v * 100, abs=1e-9))
            else:
                assert v == -1.0
    assert out_i[4] >= 0.5 and out_f[4] >= 0.5  # the demo's ice ring (range 5)
    only_i = integ.cnn_predict(i.d, i.values, None, None)
    assert only_i[1] is None and np.array_equal(only_i[0], out_i, equal_nan=True)
    assert integ.cnn_predict(None, None, f.d, f.values)[0] is None


def test_cnn_predict_raises_what_auspex_raises(demo_mtz):
    with pytest.raises(Exception, match="Invalid Input"):
        integ.cnn_predict(None, None, None, None)
    with pytest.raises(ValueError):  # AUSPEX: min() of an empty sequence
        integ.cnn_predict(np.zeros(0), np.zeros(0, np.float32), None, None)
    low = np.linspace(4.5, 8.0, 500)  # reaches no ice range: no plot, AUSPEX raises "Invalid Input"
    with pytest.raises(Exception, match="Invalid Input"):
        integ.cnn_predict(low, np.ones(500, np.float32), None, None)
    with pytest.raises(ValueError):
        integ.cnn_predict(np.ones(10), np.ones(9), None, None)


def test_cnn_predict_leaves_inputs_alone_and_loads_networks_once(demo_mtz):
    refl = read(str(demo_mtz))
    d = np.array(refl.observables["I"].d)  # writeable copies, as AUSPEX's arrays are
    v = np.array(refl.observables["I"].values)
    before = v.copy()
    integ.cnn_predict(d, v, None, None)
    net = load_networks()["I"]
    interpreter = net._interpreter
    integ.cnn_predict(d, v, None, None)
    assert d.flags.writeable and v.flags.writeable and np.array_equal(v, before)
    assert load_networks()["I"] is net and net._interpreter is interpreter  # cached, not reloaded


def test_cnn_predict_nonpredictable_is_nan(blank_mtz):
    refl = read(str(blank_mtz))
    i = refl.observables["I"]
    out_i, _ = integ.cnn_predict(i.d, i.values, None, None)
    assert math.isnan(out_i[4])


# ---------------------------------------------------------------------------------------------
# cnn_predict with the published networks reproduces the published 25-slot output


def _four_count_windows(obs) -> set[int]:
    """Ranges whose emptiest 10-column window holds exactly the threshold count (4): ambiguous."""
    plots = make_plots(obs)
    limit = BLANK_WINDOW_MEAN * WINDOW_COLUMNS * PLOT_SIZE
    out = set()
    for r, counts in zip(plots.ranges, plots.counts):
        cols = counts.sum(axis=0)
        windows = [cols[s:s + WINDOW_COLUMNS].sum() for s in range(0, PLOT_SIZE - WINDOW_COLUMNS + 1, WINDOW_STEP)]
        if min(windows) == limit:
            out.add(r.index - 1)
    return out


def test_cnn_predict_reproduces_published_output(published_dir, published_reference, real_data, tmp_path):
    for kind in ("iobs", "fobs"):
        shutil.copy(published_dir / f"published_helcaraxe_{kind}.tflite", tmp_path)
    compared, mismatches = 0, []
    for name, ref in sorted(published_reference.items()):
        if name not in real_data:
            continue
        refl = read(str(real_data[name]))
        for kind in ("I", "F"):
            expected = ref.get(f"published_{kind}")
            if expected is None or kind not in refl.observables:
                continue
            obs = refl.observables[kind]
            if list(obs.columns) != list(ref[f"columns_{kind}"]):
                continue  # another column choice: not the same input
            args = (obs.d, obs.values, None, None) if kind == "I" else (None, None, obs.d, obs.values)
            got = integ.cnn_predict(*args, networks=tmp_path)[0 if kind == "I" else 1]
            ambiguous = _four_count_windows(obs)
            for slot, (e, g) in enumerate(zip(expected, got)):
                if slot in ambiguous and (e is None or math.isnan(g)):
                    continue
                same = (e is None and math.isnan(g)) or (e is not None and not math.isnan(g) and e == g)
                if not same:
                    mismatches.append((name, kind, slot + 1, e, g))
            compared += 1
    assert compared >= 60, compared
    assert not mismatches, mismatches[:10]


# ---------------------------------------------------------------------------------------------
# The launcher, against the stand-in


def test_launcher_runs_auspex_with_the_host(fake_auspex, demo_mtz, tmp_path):
    run = integ.run_auspex(str(demo_mtz), ["--directory", str(tmp_path)], detectors="both")
    assert (tmp_path / "I_plot.png").is_file() and (tmp_path / "F_plot.png").is_file()
    a = run.analysis
    assert a.iced and a.flagged_ranges == [5]
    # the host annotated AUSPEX's own I and F Axes: our probability texts and flagged band are there
    assert sorted(k for k, _ in run.annotated) == ["F", "I"]
    for kind, ax in run.annotated:
        texts = [t.get_text() for t in ax.texts]
        helc = a.result("helcaraxe", kind)
        assert f"{helc.range(5).value:.2f}" in texts
        red = [p for p in ax.patches if p.get_gid() == "auspex-ice"]  # what AUSPEX drew from our slots
        xs = sorted(round(p.get_x(), 6) for p in red)
        assert xs == [round(1 / helc.range(5).d_max ** 2, 6)]
    assert "Helcaraxe" in sys.modules and sys.modules["Helcaraxe"].cnn_predict is integ.cnn_predict


def test_launcher_uses_the_calibrated_thresholds_not_auspex_cutoff(fake_auspex, demo_mtz, tmp_path):
    run = integ.run_auspex(str(demo_mtz), ["--directory", str(tmp_path)], detectors="helcaraxe")
    for kind in ("I", "F"):
        res = run.analysis.result("helcaraxe", kind)
        threshold = load_networks()[kind].card.threshold
        assert res.info["threshold"] == threshold
        expected = [r.index for r in res.ranges if r.status == PREDICTED and r.value >= threshold]
        assert res.flagged_ranges == expected
        assert sorted(np.flatnonzero(run.slots[kind] >= 0.02) + 1) == expected
        # AUSPEX's own rule (p >= 0.02 after NaN -> 1.0) on the same plots flags a superset
        o = run.reflections.observables[kind]
        args = (o.d, o.values, None, None) if kind == "I" else (None, None, o.d, o.values)
        probs = integ.cnn_predict(*args)[0 if kind == "I" else 1]
        assert set(expected) <= set(np.flatnonzero(np.nan_to_num(probs, nan=1.0) >= 0.02) + 1)
    strict = integ.run_auspex(str(demo_mtz), ["--directory", str(tmp_path)], detectors="helcaraxe",
                              options=AnalysisOptions(threshold=1.01))  # nothing reaches it
    assert not strict.analysis.iced and all((s < 0.02).all() for s in strict.slots.values())
    for _, ax in strict.annotated:
        assert not [p for p in ax.patches if p.get_gid() == "auspex-ice"]


def test_launcher_icefinder_only(fake_auspex, demo_mtz, tmp_path):
    run = integ.run_auspex(str(demo_mtz), ["--directory", str(tmp_path)], detectors="icefinder")
    assert {r.detector for r in run.analysis.results} == {"icefinder"}
    flagged = run.analysis.flagged_ranges
    assert sorted(np.flatnonzero(run.slots["I"] >= 0.02) + 1) == flagged


def test_launcher_nonpredictable_is_not_ice(fake_auspex, blank_mtz, tmp_path):
    run = integ.run_auspex(str(blank_mtz), ["--directory", str(tmp_path)], detectors="helcaraxe")
    r5 = run.analysis.result("helcaraxe", "I").range(5)
    assert r5.status in (NONPREDICTABLE, EXCISED) and not r5.flagged
    assert run.slots["I"][4] == 0.0  # AUSPEX's own path turns the NaN into 1.0, i.e. ice
    i_ax = dict(run.annotated)["I"]
    assert {"n/p", "excised"} & {t.get_text() for t in i_ax.texts}
    assert not [p for p in i_ax.patches if p.get_gid() == "auspex-ice"]


def test_launcher_wraps_auspex_arrays_without_copies(fake_auspex, demo_mtz, tmp_path):
    run = integ.run_auspex(str(demo_mtz), ["--directory", str(tmp_path)], detectors="both")
    for kind, source in run.sources.items():
        obs = run.reflections.observables[kind]
        assert obs.values.base is source.obs and obs.d.base is source.ires and obs.sigmas.base is source.sigma
        assert np.shares_memory(obs.values, source.obs) and np.shares_memory(obs.d, source.ires)
        assert source.obs.flags.writeable  # AUSPEX's own arrays are left as they were
    # every detector saw the same Reflections object
    assert all(r is not None for r in run.analysis.results) and run.analysis.reflections is run.reflections


def test_cli_auspex_subcommand(fake_auspex, demo_mtz, tmp_path, capsys):
    rc = main(["auspex", str(demo_mtz), "--directory", str(tmp_path), "--ice-detector", "both"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "helcaraxe auspex: verdict: ice in ranges [5]" in out
    threshold = load_networks()["I"].card.threshold
    assert f"I: decided by helcaraxe (threshold {threshold:g})" in out


@pytest.mark.parametrize("how", ["missing", "broken"])
def test_cli_auspex_not_installed(how, demo_mtz, tmp_path, capsys, monkeypatch):
    _forget_auspex()
    if how == "missing":
        monkeypatch.setitem(sys.modules, "auspex", None)  # import auspex -> ImportError
    else:  # installed but its cctbx cannot be imported
        pkg = tmp_path / "broken" / "auspex"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("import cctbx_not_installed_here\n")
        monkeypatch.syspath_prepend(str(pkg.parent))
    rc = main(["auspex", str(demo_mtz)])
    err = capsys.readouterr().err
    _forget_auspex()
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "AUSPEX is not installed" in err and "Traceback" not in err
    assert "Helcaraxe" not in sys.modules or sys.modules["Helcaraxe"] is not None


def test_stand_in_has_every_attribute_the_launcher_uses(fake_auspex):
    """Guard: the launcher touches only AUSPEX names listed in AUSPEX_SEAMS, and the stand-in has them
    all (class attributes, or instance attributes assigned in the class's or a subclass's __init__)."""
    import importlib
    import inspect

    sys.modules["Helcaraxe"] = type(sys)("Helcaraxe")
    sys.modules["Helcaraxe"].cnn_predict = integ.cnn_predict
    missing = []
    for module_name, attr in integ.AUSPEX_SEAMS:
        if attr is None:
            assert (FAKE / "auspex" / f"{module_name}.py").is_file()
            continue
        mod = importlib.import_module(module_name)
        head, _, tail = attr.partition(".")
        obj = getattr(mod, head, None)
        if obj is None:
            missing.append((module_name, attr))
        elif tail and not hasattr(obj, tail):
            classes = [obj, *[c for c in vars(mod).values() if inspect.isclass(c) and issubclass(c, obj)]]
            if not any(tail in c.__init__.__code__.co_names for c in classes if "__init__" in vars(c)):
                missing.append((module_name, attr))
    assert not missing
    source = inspect.getsource(integ)  # every IceFinder/Plotter attribute the launcher uses is listed
    for used in ("_intensity_data", "_amplitude_data", "_intensity_ano_data", "_amplitude_ano_data",
                 "_use_anom_if_present", "_cnn_predicted_i", "_cnn_predicted_f", "_helcaraxe_status",
                 "_file_name", ".ires", ".obs", ".sigma", "self.ax", "data_type"):
        assert used in source
        assert any(used.lstrip(".").replace("self.", "") in a for _, a in integ.AUSPEX_SEAMS if a)


def test_dropin_inside_auspex_own_run_helcaraxe(fake_auspex, demo_mtz):
    """The drop-in path (no launcher): AUSPEX's own IceFinder.run_helcaraxe gets our cnn_predict."""
    integ.install_dropin()
    import auspex  # noqa: F401 - puts AUSPEX's directory on sys.path, as AUSPEX's own __init__ does
    import Auspex  # noqa: N813 - the stand-in's module name
    from IceRings import IceRing
    from ReflectionData.AutoReader import FileReader

    finder = Auspex.IceFinder(FileReader(str(demo_mtz)), IceRing())
    finder.run_helcaraxe()
    assert finder.helcaraxe_status and finder._cnn_predicted_i.shape == (25,)
    direct = integ.cnn_predict(finder._intensity_data.ires, finder._intensity_data.obs, None, None)[0]
    assert np.array_equal(finder._cnn_predicted_i, np.nan_to_num(direct, nan=1.0))
    assert 5 in [int(np.argmin(abs(finder.ice_ring.ice_rings[:, 0] - lb))) + 1 for lb, _ in finder.ice_range_by_helcaraxe()]
