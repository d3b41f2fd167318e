"""The pluggy contract: entry-point loading, built-ins registered like plugins, third-party detectors."""

from __future__ import annotations

from importlib.metadata import entry_points

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

import third_party_detector
from auspex_helcaraxe import report
from auspex_helcaraxe.errors import InputError
from auspex_helcaraxe.host import Host
from auspex_helcaraxe.reflections import Observable, Reflections
from auspex_helcaraxe.simulate import demo_dataset


@pytest.fixture(scope="module")
def demo():
    return demo_dataset()


def test_helcaraxe_is_an_installed_entry_point():
    eps = [ep for ep in entry_points(group="auspex") if ep.name == "helcaraxe"]
    assert eps and eps[0].value == "auspex_helcaraxe.detectors.helcaraxe"
    assert "helcaraxe" in Host().detectors
    # Without entry points only the host's built-in Icefinder is there.
    assert set(Host(load_entrypoints=False).detectors) == {"icefinder"}


def test_detector_flag_selects_detectors(demo):
    host = Host()
    refl = demo.reflections
    assert {r.detector for r in host.analyse(refl, "icefinder").results} == {"icefinder"}
    assert {r.detector for r in host.analyse(refl, "helcaraxe").results} == {"helcaraxe"}
    assert {r.detector for r in host.analyse(refl, "both").results} == {"helcaraxe", "icefinder"}
    with pytest.raises(InputError, match="unknown ice detector"):
        host.analyse(refl, "nope")


def test_third_party_detector_runs_annotates_and_reports(demo):
    host = Host(plugins=[third_party_detector])
    assert "meanjump" in host.detectors
    analysis = host.analyse(demo.reflections, detectors="all")
    assert {r.detector for r in analysis.results} == {"helcaraxe", "icefinder", "meanjump"}
    # The detectors received the host's arrays themselves, not copies.
    seen = third_party_detector.DETECTOR.seen_arrays[-len(demo.reflections.observables):]
    for arr, obs in zip(seen, demo.reflections.observables.values()):
        assert arr is obs.values
    ours = analysis.result("meanjump", "I")
    assert 5 in ours.flagged_ranges  # the demo's ice ring
    fig, ax = plt.subplots()
    third_party_detector.ANNOTATED.clear()
    host.annotate(ax, "I", analysis)
    assert ("I", 5) in third_party_detector.ANNOTATED
    assert "meanjump" in [line.get_label() for line in ax.get_lines()]
    plt.close(fig)
    assert report.to_dict(analysis)["extensions"]["meanjump"] == {"n_results": 2}


def test_resolution_too_low_for_any_ice_range():
    d = np.linspace(20, 4.0, 1000).astype(np.float32)
    obs = Observable("I", ("I", "SIGI"), d, np.ones_like(d), np.ones_like(d))
    refl = Reflections("low.mtz", "P 1", (10, 10, 10, 90, 90, 90), 1000, {"I": obs})
    with pytest.raises(InputError, match="too low for any ice range"):
        Host().analyse(refl)
