"""Figures: both detectors annotate the host's plot in their own styles; every format is written."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
from matplotlib.patches import Polygon

from auspex_helcaraxe.figures import draw_resolution_plots, figure_for
from auspex_helcaraxe.host import Host
from auspex_helcaraxe.ice_ranges import ice_ranges
from auspex_helcaraxe.results import AnalysisOptions
from auspex_helcaraxe.simulate import demo_dataset


@pytest.fixture(scope="module")
def analysed(published_dir):
    host = Host()
    analysis = host.analyse(demo_dataset().reflections, "both", AnalysisOptions(networks=str(published_dir)))
    return host, analysis


def _span_x(patch) -> tuple[float, float]:
    xy = patch.get_xy() if isinstance(patch, Polygon) else None
    if xy is not None:
        return float(xy[:, 0].min()), float(xy[:, 0].max())
    return patch.get_x(), patch.get_x() + patch.get_width()


def test_both_detectors_annotate_in_distinct_styles(analysed):
    host, analysis = analysed
    fig = figure_for(analysis, host, "F")
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert any(label.startswith("Icefinder") for label in labels)
    r5 = ice_ranges()[4]  # Icefinder outlines the range as AUSPEX states it in 1/d²
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert [_span_x(p) for p in hatched] == [pytest.approx((r5.inv_d2_low, r5.inv_d2_high))]
    # Helcaraxe writes a probability over every predicted range.
    helcaraxe = analysis.result("helcaraxe", "F")
    predicted = [r for r in helcaraxe.ranges if r.status == "predicted"]
    texts = {t.get_text() for t in ax.texts}
    assert predicted and all(f"{r.value:.2f}" in texts for r in predicted)
    flagged = [r for r in predicted if r.flagged]
    filled = [p for p in ax.patches if not p.get_hatch() and p.get_facecolor()[2] > 0.5 and p.get_alpha() == 0.35]
    assert len(filled) == len(flagged)
    # Thumbnails of the Helcaraxe plots sit under the main panel.
    assert len(fig.axes) > 1 and all(t.get_title().startswith("range") for t in fig.axes[1:])
    plt.close(fig)


@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("pdf", b"%PDF"), ("svg", b"<?xml")])
def test_formats(analysed, tmp_path, fmt, magic):
    host, analysis = analysed
    paths = draw_resolution_plots(analysis, host, tmp_path, fmt=fmt)
    assert [p.name for p in paths] == [f"simulated_demo-2022_{k}.{fmt}" for k in analysis.reflections.observables]
    assert all(p.read_bytes()[:5].startswith(magic) for p in paths)


def test_unknown_format_is_refused(analysed, tmp_path):
    host, analysis = analysed
    with pytest.raises(ValueError, match="format"):
        draw_resolution_plots(analysis, host, tmp_path, fmt="gif")


def test_explain_overlays_occlusion_maps(analysed):
    host, analysis = analysed
    flagged = analysis.result("helcaraxe", "I").flagged_ranges
    fig = figure_for(analysis, host, "I", explain=True)
    overlays = [ax for ax in fig.axes[1:] if len(ax.images) == 2]
    assert len(overlays) == len(flagged)
    plt.close(fig)


def test_occlusion_map_finds_what_the_network_looks_at(published_dir):
    import numpy as np

    from auspex_helcaraxe.explain import occlusion_map
    from auspex_helcaraxe.network import load_networks
    from auspex_helcaraxe.plots import make_plots

    net = load_networks(published_dir)["I"]
    plots = make_plots(demo_dataset().reflections.observables["I"])
    k = [r.index for r in plots.ranges].index(5)
    image = plots.inputs[k]
    heat = occlusion_map(net, image)
    assert heat.shape == (80, 80) and (heat >= 0).all()
    # Occluding the hottest patch lowers the probability more than occluding the coldest one.
    hot = np.unravel_index(np.argmax(heat), heat.shape)
    cold = np.unravel_index(np.argmin(heat), heat.shape)

    def occlude(center):
        img = image.copy()
        r, c = (min(max(x - 5, 0), 70) for x in center)
        img[r : r + 10, c : c + 10, 0] = image.mean()
        return net.predict(img[None])[0]

    assert occlude(hot) < occlude(cold)


def test_check_imports_matplotlib_only_for_figures_and_never_pyplot(tmp_path):
    """The analysis path imports no matplotlib; figures use a Figure on an Agg canvas, not pyplot
    (its import and figure manager cost ~0.1 s of a ~1 s `helcaraxe check --out`)."""
    import subprocess
    import sys

    from auspex_helcaraxe.simulate import write_mtz

    mtz = write_mtz(demo_dataset(), tmp_path / "demo.mtz")
    code = ("import sys; from auspex_helcaraxe.cli import main; rc = main(sys.argv[1:]); "
            "print(rc, 'matplotlib' in sys.modules, 'matplotlib.pyplot' in sys.modules)")
    run = lambda *extra: subprocess.run([sys.executable, "-c", code, "check", str(mtz), "-q", *extra],  # noqa: E731
                                        capture_output=True, text=True, check=True).stdout.split()[-3:]
    assert run() == ["0", "False", "False"]
    assert run("--out", str(tmp_path / "out")) == ["0", "True", "False"]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["demo.mtz_F.png", "demo.mtz_I.png"]
