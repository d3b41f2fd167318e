"""Tests of the Icefinder score (``auspex_helcaraxe.icefinder``) and its detector plugin."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from auspex_helcaraxe import icefinder
from auspex_helcaraxe.detectors import icefinder as plugin
from auspex_helcaraxe.errors import InputError
from auspex_helcaraxe.host import Host
from auspex_helcaraxe.ice_ranges import ice_ranges
from auspex_helcaraxe.readers import read
from auspex_helcaraxe.reflections import Observable, Reflections
from auspex_helcaraxe.results import NO_BINS, NOT_COVERED, SCORED, AnalysisOptions, DetectorResult, RangeResult

RING = 5  # range 5: 0.19–0.205 Å⁻² (2.29–2.21 Å), 17 bins of 1/d


# ----------------------------------------------------------------------------- synthetic data


def wilson(seed: int, n: int = 200_000, d_min: float = 1.5, d_max: float = 30.0, b: float = 20.0):
    """Acentric Wilson intensities on d-spacings uniform in reciprocal volume (seeded)."""
    rng = np.random.default_rng(seed)
    d = rng.uniform(1 / d_max**3, 1 / d_min**3, n) ** (-1 / 3)
    mean = 1000.0 * np.exp(-b / (2 * d**2))
    return d, rng.exponential(mean), mean


def observable(d, values, kind: str = "I") -> Observable:
    return Observable(kind, (kind, "SIG" + kind), np.asarray(d), np.asarray(values), np.sqrt(np.abs(values)) + 1.0)


def with_ring(seed: int, shift: float, index: int = RING) -> Observable:
    """Wilson data with every reflection in ice range ``index`` shifted by ``shift`` × its expected value."""
    d, values, mean = wilson(seed)
    r = ice_ranges()[index - 1]
    inside = (1 / d**2 >= r.inv_d2_low) & (1 / d**2 <= r.inv_d2_high)
    return observable(d, values + shift * mean * inside)


def as_reflections(*observables: Observable) -> Reflections:
    return Reflections(
        source="synthetic",
        space_group="P 1",
        cell=(50.0, 60.0, 70.0, 90.0, 90.0, 90.0),
        n_reflections=max(len(o) for o in observables),
        observables={o.kind: o for o in observables},
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_flags_without_ice(seed):
    s = icefinder.score(observable(*wilson(seed)[:2]))
    assert s.flagged_ranges == []
    assert not s.flagged.any()
    assert s.in_ice.any() and np.isfinite(s.score[s.in_ice]).any()
    # Without ice the scores are noise of order one.
    assert 0.5 < np.nanstd(s.score) < 2.0


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("shift", [0.5, -0.5])
def test_injected_ring_is_flagged_in_its_range_only(seed, shift):
    s = icefinder.score(with_ring(seed, shift))
    assert s.flagged_ranges == [RING]
    in_ring = s.bins_in(ice_ranges()[RING - 1])
    assert in_ring.sum() >= 10
    assert np.array_equal(s.flagged, s.flagged & in_ring)  # no flagged bin elsewhere
    assert np.all(np.sign(s.score[s.flagged]) == np.sign(shift))


def test_cutoff_is_respected():
    obs = with_ring(0, 0.5)
    s = icefinder.score(obs)
    top = np.nanmax(np.abs(s.score[s.in_ice]))
    assert icefinder.score(obs, cutoff=top + 0.01).flagged_ranges == []
    assert icefinder.score(obs, cutoff=top).flagged_ranges == [RING]


def test_per_bin_arrays_follow_the_definition():
    d, values, _ = wilson(3, n=20_000)
    s = icefinder.score(observable(d, values))
    bins = np.floor((np.float32(1) / d.astype(np.float32)) / np.float32(0.001)).astype(int)
    assert np.array_equal(s.bins, np.unique(bins))
    assert s.count.sum() == d.size
    k = s.bins.size // 2
    members = bins == s.bins[k]
    assert s.count[k] == members.sum()
    assert s.mean_inv_d2[k] == np.mean(np.float32(1) / d[members].astype(np.float32) ** 2)
    v = values[members]
    assert s.stdmean[k] == pytest.approx(v.mean() / v.std(), rel=1e-12)
    finite = np.isfinite(s.stdmean)
    np.testing.assert_allclose(s.score[finite], ((s.stdmean - s.estimate) * np.sqrt(s.count))[finite])
    ranges = ice_ranges()
    expected_ice = [any(r.inv_d2_low < x < r.inv_d2_high for r in ranges) for x in s.mean_inv_d2.astype(float)]
    assert s.in_ice.tolist() == expected_ice


def test_estimate_matches_a_direct_loop():
    """The vectorised windows/quantiles/weights against a plain per-bin transcription of steps 3–5."""
    d, values, _ = wilson(4, n=30_000, d_min=2.0)
    s = icefinder.score(observable(d, values))
    m, x, ice, n = s.stdmean, s.mean_inv_d2.astype(float), s.in_ice, s.stdmean.size
    raw = icefinder._estimate(s.mean_inv_d2, m, ice)
    for i in range(n):
        window = [j for j in range(max(i - 5, 0), min(i + 6, n)) if math.isfinite(m[j]) and not ice[j]]
        if len(window) < 5 or not math.isfinite(m[i]):
            assert math.isnan(raw[i])
            continue
        ordered = sorted(m[j] for j in window)
        k = len(window)
        lo, hi = ordered[math.ceil(0.25 * (k - 1))], ordered[math.floor(0.75 * (k - 1))]
        sd = ((math.sqrt(x[i]) + 0.001) ** 2 - x[i]) * 5 / 2
        w = [
            math.exp(-0.5 * ((x[i] - x[j]) / sd) ** 2) / (sd * math.sqrt(2 * math.pi)) if lo <= m[j] <= hi else 0.0
            for j in window
        ]
        assert raw[i] == pytest.approx(sum(wj * m[j] for wj, j in zip(w, window)) / sum(w), rel=1e-5)


def test_windows_are_clipped_at_both_ends():
    members, real = icefinder._windows(20)
    window = lambda i: members[i][real[i]].tolist()  # noqa: E731
    assert window(0) == list(range(0, 6))
    assert window(3) == list(range(0, 9))
    assert window(10) == list(range(5, 16))
    assert window(16) == list(range(11, 20))
    assert window(19) == list(range(14, 20))


def test_fill_uses_a_plus_one_and_interpolates_gaps():
    nan = np.nan
    est = np.array([nan, nan, 1.0, 2.0, nan, nan, 5.0, nan, 7.0, nan, nan])
    m = np.array([1.0, nan, 1.0, 1.0, 1.0, 1.0, 1.0, nan, 1.0, 1.0, nan])
    out = icefinder._fill(est, m)
    np.testing.assert_array_equal(out[:2], [2.0, 2.0])  # before a=2: the value at a+1
    np.testing.assert_allclose(out[4:6], [3.0, 4.0])  # run between 2.0 and 5.0
    assert np.isnan(out[7])  # m is NaN: not interpolated
    np.testing.assert_array_equal(out[9:], [7.0, 7.0])  # after b: the value at b


def test_fill_without_gaps():
    """No gap to interpolate: the published code raises IndexError here, ours must not."""
    est = np.array([np.nan, 1.0, 2.0, 3.0])
    out = icefinder._fill(est, np.ones(4))
    np.testing.assert_array_equal(out, [2.0, 1.0, 2.0, 3.0])


@pytest.mark.parametrize("lengths", [[1, 2, 7, 8, 9, 15, 16, 17, 127, 128, 129, 300, 1000], [5000, 9000, 20000, 3]])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_segment_sums_match_numpy_sum_exactly(lengths, dtype):
    rng = np.random.default_rng(7)
    lengths = np.array(lengths)
    values = (rng.random(lengths.sum()) * rng.uniform(0.5, 50.0, lengths.sum())).astype(dtype)
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    ours = icefinder._segment_sums(values, starts, lengths)
    assert ours.dtype == dtype
    expected = [values[s : s + n].sum() for s, n in zip(starts, lengths)]
    assert ours.tolist() == [float(e) for e in expected]


def test_too_few_bins_raise_input_error():
    d = np.array([3.0, 2.9, 2.8, 2.7])
    with pytest.raises(InputError, match="too few resolution bins"):
        icefinder.score(observable(d, np.array([1.0, 2.0, 3.0, 4.0])))
    with pytest.raises(InputError, match="no I observations"):
        icefinder.score(observable(np.array([np.nan]), np.array([1.0])))


# ----------------------------------------------------------------------------- parity with the published code


def test_parity_with_published_icefinder(shared_dir, real_data):
    """Every observable in reference/icefinder/: per-bin arrays and flagged ranges."""
    root = shared_dir / "reference" / "icefinder"
    expected = json.loads((root / "icefinder.json").read_text())
    checked, problems, worst = 0, [], 0.0
    for name, entry in sorted(expected.items()):
        kinds = [key[-1] for key in entry if key.startswith("flagged_ranges_")]
        if not kinds:
            continue
        refl = read(real_data[name])
        ref = np.load(root / f"{name}.icefinder.npz")
        for k in kinds:
            s = icefinder.score(refl.observables[k])
            where = f"{name} {k}"
            if not (np.array_equal(s.bins, ref[f"bins_{k}"]) and np.array_equal(s.count, ref[f"count_{k}"])):
                problems.append(f"{where}: bins/counts differ")
                continue
            try:
                np.testing.assert_allclose(s.mean_inv_d2, ref[f"mean_inv_d2_{k}"], rtol=1e-7, atol=0)
                np.testing.assert_allclose(s.stdmean, ref[f"stdmean_{k}"], rtol=1e-10, atol=0)
                np.testing.assert_allclose(s.estimate, ref[f"estimate_{k}"], rtol=0, atol=1e-6)
                np.testing.assert_allclose(s.score, ref[f"score_{k}"], rtol=0, atol=1e-6)
            except AssertionError as exc:  # assert_allclose also requires equal NaN patterns
                problems.append(f"{where}: {str(exc).strip().splitlines()[0]}")
            if not np.array_equal(s.in_ice, ref[f"in_ice_{k}"]):
                problems.append(f"{where}: in_ice differs")
            if s.flagged_ranges != entry[f"flagged_ranges_{k}"]:
                problems.append(f"{where}: flagged {s.flagged_ranges} != {entry[f'flagged_ranges_{k}']}")
            finite = np.isfinite(s.score)
            worst = max(worst, float(np.max(np.abs(s.score - ref[f"score_{k}"])[finite], initial=0.0)))
            checked += 1
    assert not problems, "\n".join(problems)
    assert checked >= 70, checked
    assert worst <= 1e-6


def test_files_the_published_code_cannot_score(shared_dir, real_data):
    """The published code raises IndexError on these two: it interpolates the first gap in the
    estimate without checking that there is one. Neither has a gap (no window short of usable
    bins), so ours scores them; brap (6.0 Å) is refused by the host because it reaches no ice range.
    """
    expected = json.loads((shared_dir / "reference" / "icefinder" / "icefinder.json").read_text())
    assert "IndexError" in expected["3ifx-sf.cif"]["error_F"]
    assert "IndexError" in expected["brap_pk_6A_scaled2.mtz"]["error_I"]
    for name, kind in (("3ifx-sf.cif", "F"), ("brap_pk_6A_scaled2.mtz", "I")):
        obs = read(real_data[name]).observables[kind]
        s = icefinder.score(obs)
        raw = icefinder._estimate(s.mean_inv_d2, s.stdmean, s.in_ice)
        first, last = np.flatnonzero(np.isfinite(raw))[[0, -1]]
        gaps = np.isnan(raw[first : last + 1]) & np.isfinite(s.stdmean[first : last + 1])
        assert not gaps.any()
        assert s.flagged_ranges == []
    brap = read(real_data["brap_pk_6A_scaled2.mtz"])
    assert not icefinder.score(brap.observables["I"]).in_ice.any()
    with pytest.raises(InputError, match="too low"):
        Host(load_entrypoints=False).analyse(brap, detectors="icefinder")
    analysis = Host(load_entrypoints=False).analyse(read(real_data["3ifx-sf.cif"]), detectors="icefinder")
    (result,) = analysis.results
    assert [r.status for r in result.ranges[:3]] == [SCORED, SCORED, NOT_COVERED]
    assert not result.iced


# ----------------------------------------------------------------------------- the detector plugin


def test_detector_through_the_host():
    refl = as_reflections(with_ring(1, 0.5), observable(*wilson(2)[:2], kind="F"))
    analysis = Host().analyse(refl, detectors="icefinder", options=AnalysisOptions(icefinder_cutoff=5.0))
    assert [(r.detector, r.observable) for r in analysis.results] == [("icefinder", "I"), ("icefinder", "F")]
    i_result, f_result = analysis.results
    assert i_result.flagged_ranges == [RING] and f_result.flagged_ranges == []
    assert analysis.flagged_ranges == [RING]
    ring = i_result.range(RING)
    assert ring.status == SCORED and ring.flagged and ring.value >= 5.0
    assert ring.details["n_flagged_bins"] >= 1 and ring.details["n_bins"] >= ring.details["n_flagged_bins"]
    ranges = ice_ranges()
    for r in i_result.ranges:
        assert r.status == (SCORED if r.d_max >= 1.5 else NOT_COVERED)
        if r.status == SCORED:
            s = i_result.info["_bins"]["score"][icefinder.score(refl.observables["I"]).bins_in(ranges[r.index - 1])]
            assert abs(r.value) == np.nanmax(np.abs(s))
    assert i_result.info["cutoff"] == 5.0 and i_result.info["columns"] == ["I", "SIGI"]
    assert set(i_result.info["_bins"]) == {"mean_inv_d2", "score", "stdmean", "estimate", "flagged"}
    assert i_result.info["_bins"]["flagged"].sum() == sum(r.details.get("n_flagged_bins", 0) for r in i_result.ranges)


def test_detector_uses_the_cutoff_option():
    refl = as_reflections(with_ring(1, 0.5))
    analysis = Host().analyse(refl, detectors="icefinder", options=AnalysisOptions(icefinder_cutoff=1e6))
    assert not analysis.iced and analysis.results[0].info["cutoff"] == 1e6


def test_detector_reports_data_it_cannot_score():
    d = np.array([3.0, 2.9, 2.8, 2.7])
    refl = as_reflections(observable(d, np.array([1.0, 2.0, 3.0, 4.0])))
    (result,) = plugin.IcefinderDetector().detect(refl, AnalysisOptions())
    assert result.message and "too few" in result.message
    assert {r.status for r in result.ranges} == {NO_BINS, NOT_COVERED}
    assert not result.iced


def test_no_bins_status_for_a_covered_range_without_ice_bins():
    """Data ending just inside range 5: covered, but the last bin's mean 1/d² lies below the range."""
    r = ice_ranges()[RING - 1]
    last_bin_edge = 1 / 0.436  # Å; bin 435 of 1/d ends here, below the range's 1/d² = 0.19
    assert last_bin_edge < r.d_max
    d, values, _ = wilson(5, d_min=(last_bin_edge + r.d_max) / 2)
    refl = as_reflections(observable(d, values))
    (result,) = plugin.IcefinderDetector().detect(refl, AnalysisOptions())
    ring = result.range(RING)
    assert r.covered_by(refl.d_min)
    assert ring.status == NO_BINS and ring.value is None and not ring.flagged and ring.reason
    assert ring.details == {"n_bins": 0, "n_flagged_bins": 0}
    assert [x.status for x in result.ranges[:4]] == [SCORED] * 4
    assert result.range(RING + 1).status == NOT_COVERED


def _axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0.0, 0.5], [0.0, 1.0])
    return plt, fig, ax


def _artists(ax) -> int:
    return len(ax.patches) + len(ax.lines) + len(ax.collections)


def test_annotate_draws_flagged_icefinder_results():
    plt, fig, ax = _axes()
    try:
        host = Host()
        refl = as_reflections(with_ring(0, 0.5))
        analysis = host.analyse(refl, detectors="icefinder")
        before = _artists(ax)
        host.annotate(ax, "I", analysis)
        assert len(ax.patches) == 1  # one hatched outline for range 5
        assert _artists(ax) == before + 2  # plus one line of markers
        labels = [a.get_label() for a in ax.patches + ax.lines if not a.get_label().startswith("_")]
        assert labels == ["Icefinder |score| ≥ 5"]
        fig.canvas.draw()
    finally:
        plt.close(fig)


def test_annotate_ignores_other_detectors_and_clean_results():
    plt, fig, ax = _axes()
    try:
        r = ice_ranges()[RING - 1]
        other = DetectorResult("helcaraxe", "I", (RangeResult(RING, r.d_max, r.d_min, "predicted", 0.9, True),))
        refl = as_reflections(with_ring(0, 0.5))
        before = _artists(ax)
        plugin.auspex_annotate_resolution_plot(ax=ax, observable="I", result=other, reflections=refl)
        clean = Host().analyse(as_reflections(observable(*wilson(0)[:2])), detectors="icefinder").results[0]
        plugin.auspex_annotate_resolution_plot(ax=ax, observable="I", result=clean, reflections=refl)
        assert _artists(ax) == before
    finally:
        plt.close(fig)
