"""Tests of the simulator: statistics, labels, reproducibility, MTZ round trip, French–Wilson,
training sets and the demo data set."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import gemmi
import numpy as np
import pytest

from auspex_helcaraxe import readers
from auspex_helcaraxe.ice_ranges import ice_ranges
from auspex_helcaraxe.plots import make_plots
from auspex_helcaraxe.simulate import add_ice, demo_dataset, make_training_set, simulate_dataset, wilson, write_mtz
from auspex_helcaraxe.simulate.ice_lines import ice_lines
from auspex_helcaraxe.simulate.semi import vary_background

CLEAN = {"ice": False, "hard_negatives": [], "hard_negative_params": {}, "anisotropic": False, "missing_cone_deg": 0.0,
         "intensity_processing": "measured", "intensity_scatter": 0.0}


def _shells(s, n):
    edges = np.quantile(s, np.linspace(0, 1, n + 1))
    return [(s >= a) & (s < b) for a, b in itertools.pairwise(edges)]


def test_wilson_statistics_in_clean_shells():
    ds = simulate_dataset(11, space_group="P 1 21 1", cell=(70.0, 80.0, 90.0, 90.0, 105.0, 90.0), d_min=2.0,
                          d_max=30.0, isig_edge=3.0, error_floor=0.03, **CLEAN)
    obs = ds.reflections.observables["I"]
    assert len(obs) == len(ds.miller)  # nothing filtered: rows align with hkl
    ops = gemmi.SpaceGroup(ds.params["space_group"]).operations()
    centric = ops.centric_flag_array(ds.miller).astype(bool)
    eps = ops.epsilon_factor_array(ds.miller).astype(float)
    s = 1.0 / obs.d.astype(float)
    i = obs.values.astype(float) / eps
    p = ds.params
    model = wilson.mean_intensity(s, p["b_factor"], p["scale"], **p["curve"])
    checked = 0
    for shell in _shells(s, 12):
        acentric = shell & ~centric
        isig = np.mean(obs.values[acentric] / obs.sigmas[acentric])
        ratio = i[shell].mean() / model[shell].mean()
        assert 0.9 < ratio < 1.1, ratio  # <I>/Σ
        if isig > 8:
            z = i[acentric] / model[acentric]  # normalised intensities (E²): Σ varies inside a shell
            m2 = np.mean(z**2) / np.mean(z) ** 2
            assert 1.75 < m2 < 2.3, m2  # acentric second moment 2
            checked += 1
    assert checked >= 4
    # centric reflections (h0l in P21) have <I²>/<I>² = 3 at low resolution
    low = centric & (s < 0.3)
    assert low.sum() > 300
    zc = i[low] / model[low]
    m2c = np.mean(zc**2) / np.mean(zc) ** 2
    assert 2.4 < m2c < 3.8, m2c


def test_intensity_curve_has_solvent_dip_and_bump():
    s = np.array([1 / 12.0, 1 / 6.0, 1 / 4.1])
    ln = wilson.protein_curve(s)
    assert ln[1] < ln[0] and ln[1] < ln[2]  # minimum near 6 Å, maximum near 4 Å


def test_weak_data_have_negative_intensities_and_sigma_falloff():
    ds = simulate_dataset(3, d_min=1.8, isig_edge=1.5, **CLEAN)
    obs = ds.reflections.observables["I"]
    s = 1.0 / obs.d
    outer = s > np.quantile(s, 0.9)
    inner = s < np.quantile(s, 0.3)
    assert (obs.values[outer] < 0).mean() > 0.1
    assert (obs.values[inner] / obs.sigmas[inner]).mean() > 4 * (obs.values[outer] / obs.sigmas[outer]).mean()


def test_french_wilson_against_brute_force():
    rng = np.random.default_rng(0)
    n = 80
    sigma = rng.uniform(50, 200, n)
    sig_i = rng.uniform(5, 80, n)
    i_obs = rng.uniform(-3, 14, n) * sig_i  # weak (numerical branch) and strong (expansion) reflections
    centric = rng.random(n) < 0.4
    f, sf = wilson.french_wilson(i_obs, sig_i, sigma, centric)
    # brute force over F (dJ = 2F dF keeps the centric J^-1/2 singularity integrable)
    fg = np.linspace(1e-6, np.sqrt(5000.0), 200001)[None, :]
    j = fg * fg
    prior = np.where(centric[:, None], np.exp(-j / (2 * sigma[:, None])) / fg, np.exp(-j / sigma[:, None]))
    post = prior * 2 * fg * np.exp(-0.5 * ((i_obs[:, None] - j) / sig_i[:, None]) ** 2)
    e_f = (post * fg).sum(1) / post.sum(1)
    e_j = (post * j).sum(1) / post.sum(1)
    np.testing.assert_allclose(f, e_f, rtol=2e-3)
    np.testing.assert_allclose(sf, np.sqrt(e_j - e_f**2), rtol=0.02)


def test_french_wilson_strong_and_nonnegative():
    i = np.array([1e4, 4e4, 9e4, -50.0, 0.0, 10.0])
    sig = np.array([100.0, 200.0, 300.0, 40.0, 40.0, 40.0])
    f, sf = wilson.french_wilson(i, sig, np.full(6, 2e4), np.zeros(6, bool))
    np.testing.assert_allclose(f[:3], np.sqrt(i[:3]), rtol=0.005)
    assert (f > 0).all() and (sf > 0).all()
    assert f[3] < f[4] < f[5] < f[0]
    ds = simulate_dataset(5)
    assert (ds.reflections.observables["F"].values > 0).all()


def test_reproducible_with_seed():
    a, b, c = simulate_dataset(123), simulate_dataset(123), simulate_dataset(124)
    assert json.dumps(a.params, sort_keys=True) == json.dumps(b.params, sort_keys=True)
    for k in ("I", "F"):
        np.testing.assert_array_equal(a.reflections.observables[k].values, b.reflections.observables[k].values)
    assert a.truth == b.truth
    assert json.dumps(a.params) != json.dumps(c.params)
    json.dumps(a.params)  # JSON-serialisable


def test_mtz_round_trip(tmp_path):
    for seed in (0, 1, 2):
        ds = simulate_dataset(seed)
        path = write_mtz(ds, tmp_path / f"sim{seed}.mtz")
        back = readers.read(path)
        assert back.space_group == ds.reflections.space_group
        assert back.cell == ds.reflections.cell
        assert back.n_reflections == ds.reflections.n_reflections
        for k in ("I", "F"):
            a, b = back.observables[k], ds.reflections.observables[k]
            assert a.columns == b.columns
            np.testing.assert_array_equal(a.d, b.d)
            np.testing.assert_array_equal(a.values, b.values)
            np.testing.assert_array_equal(a.sigmas, b.sigmas)


def test_ice_labels_follow_the_contamination():
    n_iced = n_clean_checked = 0
    for seed in range(25):
        ds = simulate_dataset(seed, ice={"probability": 1.0})
        for kind, obs in ds.reflections.observables.items():
            shift = obs.values.astype(float) - ds.clean[kind].astype(float)
            for r in ice_ranges():
                t = ds.truth.get(r.index)
                if t is None:
                    continue
                sel = (obs.d >= r.d_min) & (obs.d <= r.d_max)
                if t.strength == 0:
                    assert not t.label(kind)
                    if sel.any():
                        # no ring reaches the range: nothing moved more than a far Gaussian tail
                        height = np.ptp(np.percentile(obs.values[sel], (0.5, 95)))
                        assert np.abs(shift[sel]).max() <= 0.01 * height + 1e-6
                        n_clean_checked += 1
                elif t.label(kind):
                    height = np.ptp(np.percentile(obs.values[sel], (0.5, 95)))
                    moved = np.abs(shift[sel] - np.median(shift[sel])) >= 0.08 * height
                    assert moved.sum() >= 3, (seed, r.index, kind)
                    n_iced += 1
    assert n_iced > 20 and n_clean_checked > 20


def test_no_ice_means_no_labels_and_no_change():
    ds = simulate_dataset(8, ice=False)
    assert not any(t.iced for t in ds.truth.values())
    for k, obs in ds.reflections.observables.items():
        np.testing.assert_array_equal(obs.values, ds.clean[k])


def test_ice_lines_match_known_spacings():
    ih = np.array([l.d for l in ice_lines() if l.phase == "Ih"])
    # powder-pattern values (the 1.275 Å line of some tables is 1.261 Å with a = 4.498, c = 7.338 Å)
    for d in (3.897, 3.669, 3.441, 2.671, 2.249, 2.072, 1.948, 1.918, 1.883, 1.721, 1.525, 1.473, 1.440, 1.367, 1.299):
        assert np.abs(ih - d).min() < 0.012, d
    ic = np.array([l.d for l in ice_lines() if l.phase == "Ic"])
    for d in (3.671, 2.248, 1.917):
        assert np.abs(ic - d).min() < 0.005
    strongest = sorted(ice_lines(), key=lambda l: -l.intensity)[:8]
    assert {round(l.d, 1) for l in strongest} >= {3.9, 3.7, 3.4, 2.2}


def test_demo_dataset_flags_range_5():
    ds = demo_dataset()
    obs = ds.reflections.observables["I"]
    assert 20000 <= len(obs) <= 40000
    assert abs(obs.d_min - 1.6) < 0.02
    assert ds.iced_ranges == [5]
    # A robust statistic computed here: the median intensity at the ring (±0.002 Å⁻¹ around 1/2.249)
    # against the median in the neighbouring shells 2.30–2.45 Å and 2.10–2.20 Å.
    s = 1.0 / obs.d
    ring = np.abs(s - 1 / 2.249) < 0.002
    around = ((obs.d > 2.30) & (obs.d < 2.45)) | ((obs.d > 2.10) & (obs.d < 2.20))
    assert np.median(obs.values[ring]) > 2.0 * np.median(obs.values[around])
    # and no other covered range shows such an excess
    for r in ice_ranges():
        if r.index == 5 or not r.covered_by(obs.d_min):
            continue
        sel = (obs.d >= r.d_min) & (obs.d <= r.d_max)
        s_mid = 2 / (r.d_min + r.d_max)
        nb = (np.abs(s - s_mid) < 0.03) & ~sel
        assert np.median(obs.values[sel]) < 1.6 * np.median(obs.values[nb]), r.index
    assert demo_dataset().params == ds.params


def test_add_ice_on_clean_data():
    base = simulate_dataset(21, d_min=1.7, **CLEAN).reflections
    out, truth = add_ice(base, 4, lines=[2.249, 3.669], strength=5.0, fraction=1.0, sign=1.0, excluded=False)
    assert set(out.observables) == set(base.observables)
    assert truth[5].iced and truth[2].iced
    for k, obs in out.observables.items():
        b = base.observables[k]
        np.testing.assert_array_equal(obs.d, b.d)  # nothing excluded, same order
        far = (obs.d > 3.0) & (obs.d < 3.3)
        np.testing.assert_array_equal(obs.values[far], b.values[far])
        ring = np.abs(1 / obs.d - 1 / 2.249) < 0.002
        factor = 2.0 if k == "I" else 1.3  # F ~ √I
        assert np.median(obs.values[ring]) > factor * np.median(b.values[ring])
    assert not truth[6].iced and truth[6].strength < 1e-3


def test_add_ice_excluded_leaves_a_gap():
    base = simulate_dataset(22, d_min=1.7, **CLEAN).reflections
    out, truth = add_ice(base, 5, lines=[2.249], strength=5.0, excluded=True)
    d = out.observables["I"].d
    assert not (np.abs(1 / d - 1 / 2.249) < 0.0015).any()
    assert "excluded" in truth[5].effects


def test_make_training_set_shapes_and_labels():
    X, y, groups, meta = make_training_set(12, seed=3, observable="F")
    m = len(y)
    assert X.shape == (m, 80, 80, 1) and X.dtype == np.float32 and np.isfinite(X).all()
    assert set(np.unique(y)) <= {0, 1} and y.sum() > 0 and (y == 0).sum() > 0
    assert groups.shape == (m,) and np.all(np.diff(groups) >= 0)
    assert len(meta) == m and all(md["label"] == yy for md, yy in zip(meta, y))
    assert all(md["dataset"] == g for md, g in zip(meta, groups))
    # positives come with ice reaching the range; per-image standardisation
    assert all(md["strength"] > 0 for md, yy in zip(meta, y) if yy)
    np.testing.assert_allclose(X.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    X2, y2, _, _ = make_training_set(12, seed=3, observable="F")
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)


def test_make_training_set_with_backgrounds():
    bgs = [simulate_dataset(s, **CLEAN).reflections for s in (31, 32)]
    _, y, _, meta = make_training_set(10, seed=1, observable="I", backgrounds=bgs, background_fraction=1.0)
    assert len(y) > 0 and all(md["source"].startswith("semi:") for md in meta)


def test_vary_background_is_another_measurement_of_the_same_crystal():
    base = simulate_dataset(33, d_min=1.7, **CLEAN).reflections
    sizes = []
    for seed in range(12):
        out = vary_background(base, seed, p_cut=0.0)
        assert set(out.observables) == set(base.observables)
        lens = {k: len(o) for k, o in out.observables.items()}
        sizes.append(lens["I"])
        for k, o in out.observables.items():
            b = base.observables[k]
            assert 0.2 * len(b) < len(o) <= len(b) and np.all(o.sigmas >= b.sigmas.min())
            if k == "F":
                assert np.all(o.values > 0)
            assert np.isin(o.d, b.d).all()  # a subset of the clean data set's reflections
    assert min(sizes) < 0.8 * len(base.observables["I"]) and max(sizes) > 0.95 * len(base.observables["I"])
    # a cut-off inside an ice range, at the margin of one range at most
    cuts = [vary_background(base, seed, p_cut=1.0, p_subsample=0.0, jitter=0.0).observables["I"].d.min() for seed in range(20)]
    edges = [(r.d_min - 0.02, r.d_max + 0.02) for r in ice_ranges()]
    assert all(any(lo - 0.01 <= c <= hi for lo, hi in edges) for c in cuts) and len({round(c, 2) for c in cuts}) > 5
    a, b = vary_background(base, 5), vary_background(base, 5)
    np.testing.assert_array_equal(a.observables["I"].values, b.observables["I"].values)
    # no subset and no noise: the same reflections
    same = vary_background(base, 1, p_subsample=0.0, jitter=0.0, p_cut=0.0)
    np.testing.assert_array_equal(same.observables["I"].values, base.observables["I"].values)
    # the noise has the stated size: u <= jitter sigma
    full = vary_background(base, 2, p_subsample=0.0, jitter=0.5, p_cut=0.0)
    o, b0 = full.observables["I"], base.observables["I"]
    z = (o.values - b0.values) / b0.sigmas
    assert 0 < np.std(z) <= 0.55


def test_make_training_set_varies_its_backgrounds():
    bgs = [simulate_dataset(34, **CLEAN).reflections]
    fixed = make_training_set(6, seed=2, observable="I", backgrounds=bgs, background_fraction=1.0, ice_probability=0.0,
                              target_iced_fraction=None)
    varied = make_training_set(6, seed=2, observable="I", backgrounds=bgs, background_fraction=1.0, ice_probability=0.0,
                               target_iced_fraction=None, vary_backgrounds=True)
    # without variation every use of the background gives the same plots; with it they differ
    per_ds = lambda X, g: [X[g == k] for k in np.unique(g)]  # noqa: E731
    f = per_ds(fixed[0], fixed[2])
    assert all(np.array_equal(f[0], x) for x in f[1:])
    v = per_ds(varied[0], varied[2])
    assert not any(x.shape == v[0].shape and np.array_equal(v[0], x) for x in v[1:])


def test_importable_without_tensorflow():
    code = "import sys, auspex_helcaraxe.simulate as s; s.demo_dataset(); print('tensorflow' in sys.modules, 'scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


@pytest.mark.parametrize("kind", ["I", "F"])
def test_add_ice_on_real_data(real_data, kind):
    name = "5g27.mtz"
    base = readers.read(real_data[name])
    out, truth = add_ice(base, 7, lines=[2.249], strength=8.0, fraction=1.0, sign=1.0, excluded=False)
    assert truth[5].label(kind)
    ring = np.abs(1 / out.observables[kind].d - 1 / 2.249) < 0.002
    assert np.median(out.observables[kind].values[ring]) > 1.3 * np.median(base.observables[kind].values[ring])


@pytest.mark.parametrize("processing", ["reject_negative", "from_amplitudes"])
def test_intensity_processing_variants(processing):
    ds = simulate_dataset(17, d_min=1.8, isig_edge=1.5, intensity_processing=processing, ice={"probability": 1.0})
    obs = ds.reflections.observables["I"]
    assert (obs.values > 0).all()
    assert len(ds.clean["I"]) == len(obs)
    if processing == "from_amplitudes":
        f = ds.reflections.observables["F"]
        np.testing.assert_allclose(obs.values, f.values.astype(float) ** 2 + f.sigmas.astype(float) ** 2, rtol=1e-5)


def test_compare_script(shared_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from auspex_helcaraxe.simulate import compare

    assert compare.main([str(tmp_path), "--real", str(shared_dir / "data" / "real"), "--n-sim", "6"]) == 0
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["real F"]["n_plots"] > 100 and stats["sim F"]["n_plots"] > 0
    assert abs(sum(stats["sim I"]["row_quarters_mean_top_to_bottom"]) - 1) < 1e-6
    assert 0 <= stats["real F"]["icefinder_flagged_fraction"] <= 1
    for name in ("side_by_side_I.png", "side_by_side_F.png", "mean_plots.png", "iced_examples.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert "| statistic |" in capsys.readouterr().out


def test_label_follows_ring_strength():
    """Same background, same ring, same random draws: invisible when weak, iced when strong."""
    base = simulate_dataset(41, d_min=1.8, cell=(70.0, 80.0, 90.0, 90.0, 90.0, 90.0), space_group="P 21 21 21", **CLEAN).reflections
    labels = []
    for strength in (0.02, 0.05, 1.0, 3.0, 10.0, 100.0):
        _, truth = add_ice(base, 9, lines=[2.249], strength=strength, fraction=1.0, multiplicity=4.0, sign=1.0,
                           excluded=False, width=0.002)
        labels.append((truth[5].label("I"), truth[5].label("F")))
        assert not truth[4].iced and not truth[6].iced
    assert labels[:2] == [(False, False)] * 2
    assert labels[2:] == [(True, True)] * 4


def test_clean_twins_pair_each_iced_real_plot_with_its_clean_background():
    bgs = [simulate_dataset(35, d_min=1.6, **CLEAN).reflections]
    kw = dict(observable="I", backgrounds=bgs, background_fraction=1.0, ice_probability=1.0)
    X, y, g, meta = make_training_set(8, seed=4, clean_twins=True, target_iced_fraction=0.4, **kw)
    twin = np.array([bool(m.get("twin")) for m in meta])
    assert twin.sum() >= 5 and np.all(y[twin] == 0) and all(meta[i]["strength"] == 0 for i in np.flatnonzero(twin))
    assert not any(m.get("twin") for m in make_training_set(8, seed=4, target_iced_fraction=0.4, **kw)[3])
    clean = make_plots(bgs[0].observables["I"])
    own = {r.index: x for r, x in zip(np.array(clean.ranges, dtype=object)[clean.predictable], clean.inputs[clean.predictable])}
    for k in np.unique(g):
        reached = {m["range"] for m in meta if m["dataset"] == k and not m.get("twin") and m["strength"] > 0}
        twins = np.flatnonzero(twin & (g == k))
        assert {meta[i]["range"] for i in twins} == reached  # one clean twin per range the ice reached
        for i in twins:  # the background's own clean plot of that range
            np.testing.assert_array_equal(X[i], own[meta[i]["range"]])
    # thinning to the iced fraction removes plain negatives, never a twin
    unthinned = make_training_set(8, seed=4, clean_twins=True, target_iced_fraction=None, **kw)[3]
    assert sum(1 for m in unthinned if m.get("twin")) == twin.sum()
