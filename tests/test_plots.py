"""Helcaraxe plots: parity with the published histograms, and the vectorised binning against numpy."""

from __future__ import annotations

import numpy as np
import pytest

from auspex_helcaraxe.ice_ranges import ice_ranges
from auspex_helcaraxe.plots import _bin_index, make_plots, standardise, straightforward_counts
from auspex_helcaraxe.readers import read
from auspex_helcaraxe.reflections import Observable


def _window_sums(counts: np.ndarray) -> np.ndarray:
    per_column = counts.sum(axis=0)
    return np.array([per_column[s : s + 10].sum() for s in range(0, 71, 5)])


def test_histograms_match_published_pipeline(real_data, published_reference, published_dir):
    checked = 0
    for name, ref in published_reference.items():
        refl = read(real_data[name])
        stored = np.load(published_dir / f"{name}.npz")
        for kind in "IF":
            if not ref.get(f"columns_{kind}") or f"n_{kind}" not in ref:
                continue
            obs = refl.observables[kind]
            assert list(obs.columns) == ref[f"columns_{kind}"], name
            assert len(obs) == ref[f"n_{kind}"], name
            plots = make_plots(obs)
            raw = stored[f"raw_{kind}"]
            assert plots.counts.shape == raw.shape, (name, kind)
            if raw.size == 0:
                continue
            np.testing.assert_allclose(plots.counts, raw, atol=1e-6, err_msg=f"{name} {kind}")
            np.testing.assert_allclose(plots.inputs[..., 0], stored[f"input_{kind}"], rtol=1e-5, atol=1e-5)
            published = ref[f"published_{kind}"]
            for k, r in enumerate(plots.ranges):
                ours = plots.blank_reason[k] is not None
                theirs = published[r.index - 1] is None
                if ours != theirs:  # only allowed for a window sitting exactly on the threshold (4 counts)
                    assert _window_sums(plots.counts[k]).min() == 4, (name, kind, r.index)
            checked += 1
    assert checked >= 60


def _observable(d, values, kind="I"):
    d = np.asarray(d, np.float32)
    values = np.asarray(values, np.float32)
    return Observable(kind, ("I", "SIGI"), d, values, np.ones_like(values))


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_binning_equals_histogram2d(seed):
    rng = np.random.default_rng(seed)
    n = 20_000
    d = (rng.uniform(1 / 20**3, 1 / 1.05**3, n)) ** (-1 / 3)
    values = rng.exponential(100.0, n) * np.exp(-10 / d**2) - rng.normal(0, 2, n)
    # Put some reflections exactly on range and bin edges, and ties in the values.
    r = ice_ranges()[4]
    d[:50] = r.d_min
    d[50:100] = r.d_max
    d[100:150] = np.float32(r.d_min + (r.d_max - r.d_min) * 0.25)
    values[200:400] = 7.0
    obs = _observable(d, values)
    np.testing.assert_array_equal(make_plots(obs).counts, straightforward_counts(obs))


def test_partial_range_appends_last_observation_and_is_nonpredictable():
    rng = np.random.default_rng(1)
    n = 60_000
    d = (rng.uniform(1 / 20**3, 1 / 2.25**3, n)) ** (-1 / 3)  # data end inside range 5
    values = rng.exponential(50.0, n)
    obs = _observable(d, values)
    plots = make_plots(obs)
    assert [r.index for r in plots.ranges] == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(plots.counts, straightforward_counts(obs))
    assert "partly covered" in plots.blank_reason[-1]
    assert not plots.predictable[-1] and plots.predictable[:-1].all()


def test_degenerate_and_empty_ranges():
    # Every value identical: numpy widens the y range by ±0.5; the plot must still count everything.
    d = np.linspace(3.0, 2.0, 4000)
    obs = _observable(d, np.full(d.size, 5.0))
    plots = make_plots(obs)
    np.testing.assert_array_equal(plots.counts, straightforward_counts(obs))
    k = [r.index for r in plots.ranges].index(4)
    assert plots.counts[k].sum() == ((d >= 2.635) & (d <= 2.692)).sum()
    # Ranges 1-3 hold no reflection at all: y limits fall back to (0, 90th percentile) and the plot is blank.
    assert plots.counts[0].sum() == 0 and not plots.predictable[0]


def test_no_reflection_in_any_covered_range():
    # Data reach 2.5 Å, but the ice ranges they cover are all empty (e.g. cut out): published rule,
    # y limits from 0 to the 90th percentile of all observations; every plot blank.
    rng = np.random.default_rng(4)
    d = (rng.uniform(1 / 20**3, 1 / 2.5**3, 3000)) ** (-1 / 3)
    keep = np.ones(d.size, bool)
    for r in ice_ranges()[:4]:
        keep &= ~((d >= r.d_min) & (d <= r.d_max))
    obs = _observable(d[keep], rng.exponential(10.0, keep.sum()))
    plots = make_plots(obs)
    assert [r.index for r in plots.ranges] == [1, 2, 3, 4]
    np.testing.assert_array_equal(plots.counts, straightforward_counts(obs))
    np.testing.assert_allclose(plots.y_limits[:, 1], np.percentile(obs.values, 90))
    assert not plots.predictable.any()


def test_standardise_matches_published_formula():
    rng = np.random.default_rng(3)
    counts = rng.poisson(0.3, (3, 80, 80)).astype(np.float32)
    counts[2] = 0
    out = standardise(counts)
    for c, o in zip(counts, out):
        expected = (c - c.mean()) / max(c.std(), 1 / 80)
        np.testing.assert_allclose(o, expected, rtol=1e-6, atol=1e-6)


def test_bin_index_edges_and_outside():
    edges = np.stack([np.linspace(0.0, 1.0, 81), np.linspace(-3.0, 5.0, 81)])
    sample = np.array([-0.1, 0.0, 0.5, 1.0, 1.0001, 0.0125, -3.0, 5.0, 4.99, 5.1])
    row = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    got = _bin_index(sample, edges, row)
    expected = [np.searchsorted(edges[r], x, side="right") - 1 for x, r in zip(sample, row)]
    expected = [79 if x == edges[r][-1] else (e if 0 <= e < 80 else -1) for x, r, e in zip(sample, row, expected)]
    assert got.tolist() == expected == [-1, 0, 40, 79, -1, 1, 0, 79, 79, -1]


def test_excised_range_is_reported(tmp_path):
    rng = np.random.default_rng(7)
    n = 60_000
    d = (rng.uniform(1 / 30**3, 1 / 1.8**3, n)) ** (-1 / 3)
    values = rng.exponential(100.0, n) * np.exp(-10 / d**2)
    r5 = ice_ranges()[4]
    keep = ~((d > r5.d_min + 0.005) & (d < r5.d_max - 0.005))  # ring cut out during integration
    obs = _observable(d[keep], values[keep])
    plots = make_plots(obs)
    k = [r.index for r in plots.ranges].index(5)
    assert not plots.predictable[k]
    assert plots.excised()[k]
    assert plots.relative_completeness[k] < 0.05 and plots.expected_in_gap[k] > 50
    others = np.delete(np.arange(len(plots.ranges)), k)
    assert not plots.excised()[others].any()
    assert np.isnan(plots.relative_completeness[others]).all()  # only computed for blank plots
    # Sparse but complete data: blank windows, yet the density matches the neighbours -> not excised.
    sparse = _observable(d[::40], values[::40])
    sp = make_plots(sparse)
    blank = ~sp.predictable
    assert blank.any() and not sp.excised().any()
    assert np.all(sp.expected_in_gap[blank & np.isfinite(sp.expected_in_gap)] < 20)


def test_excised_rings_in_real_data_match_the_labels(shared_dir, real_data):
    """labels.tsv marks 4puc_K.mtz as 'excised' (ice-ring shells removed); no other file has cuts."""
    import csv

    labels = {r["path"].split("/")[-1]: r["label"]
              for r in csv.DictReader(open(shared_dir / "data" / "real" / "labels.tsv"), delimiter="\t")}
    found = {}
    for name, path in real_data.items():
        if "unmerged" in str(path):
            continue
        for kind, obs in read(path).observables.items():
            plots = make_plots(obs)
            excised = [r.index for r, e in zip(plots.ranges, plots.excised()) if e]
            if excised:
                found[name] = excised
    assert found == {"4puc_K.mtz": [1, 2, 3, 4, 5, 6]}
    assert {n for n in found} == {n for n, label in labels.items() if label == "excised"}


def _signed(v: np.ndarray) -> np.ndarray:
    return (np.sign(v) * np.sqrt(np.abs(v))).astype(np.float32)


@pytest.mark.parametrize("d_min", [1.2, 2.25])  # all ranges covered to 1.2 Å; 2.25 Å ends inside range 9
def test_signed_sqrt_scale_is_the_plot_of_transformed_values(d_min):
    """scale="signed_sqrt" plots sign(v)·√|v| of the same reflections (the published quirks included),
    and which plots are predictable does not depend on the scale."""
    rng = np.random.default_rng(5)
    n = 60000
    d = (1.0 / rng.uniform(1 / 4.5**3, 1 / d_min**3, n) ** (1 / 3)).astype(np.float32)
    values = (rng.exponential(400.0, n) - 60.0).astype(np.float32)  # some negative intensities
    obs = Observable("I", ("I", "SIGI"), d, values, np.ones(n, np.float32))
    on_sqrt = make_plots(obs, scale="signed_sqrt")
    expected = make_plots(Observable("I", ("I", "SIGI"), d, _signed(values), np.ones(n, np.float32)))
    linear = make_plots(obs)
    assert on_sqrt.scale == "signed_sqrt" and linear.scale == "linear"
    np.testing.assert_array_equal(on_sqrt.counts, expected.counts)
    np.testing.assert_array_equal(on_sqrt.y_limits, expected.y_limits)
    assert on_sqrt.blank_reason == linear.blank_reason and len(on_sqrt.ranges) == len(linear.ranges)
    np.testing.assert_array_equal(on_sqrt.n_in_range, linear.n_in_range)
    assert on_sqrt.y_limits[0, 0] < 0 < on_sqrt.y_limits[0, 1] < linear.y_limits[0, 1]
    assert not np.array_equal(on_sqrt.counts, linear.counts)
    with pytest.raises(ValueError, match="unknown plot scale"):
        make_plots(obs, scale="log")
