"""AUSPEX-style figures: the observable against resolution with the ice ranges, annotated by
every detector plugin through the ``auspex_annotate_resolution_plot`` hook, and a strip of the
Helcaraxe plots of the ranges that matter. matplotlib is imported only here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .ice_ranges import ice_ranges
from .results import EXCISED, PREDICTED

if TYPE_CHECKING:  # pragma: no cover
    from .host import Analysis, Host

FORMATS = ("png", "svg", "pdf")
LABELS = {"I": "I$_{obs}$", "F": "F$_{obs}$"}
SCALE_TITLES = {"signed_sqrt": "y: sign·√|obs|"}  # thumbnails of a network reading plots.PLOT_SCALES other than linear
D_TICKS = (10, 6, 5, 4, 3.5, 3, 2.5, 2.2, 2, 1.8, 1.6, 1.5, 1.4, 1.3, 1.2, 1.1, 1.0, 0.95, 0.9, 0.85, 0.8)
MAX_POINTS = 200_000
MAX_THUMBNAILS = 8
ICE_REGION_D = 4.2
DPI = 130
PNG_COMPRESS_LEVEL = 3  # zlib: smaller files than the default 6 for these figures, in about half the time

# Fixed layout in inches (figure 11 in wide; 6.2 in tall with the thumbnail strip, 4.6 in without). The
# left margin and the gaps between thumbnails follow the y tick labels (see _place); constrained layout
# did the same at ~60-75 ms a figure, laying out every tick label twice (benchmarks/README.md).
WIDTH = 11.0
RIGHT_IN = 0.2  # room for a tick label centred on the right edge (main panel or last thumbnail)
TOP_IN = 0.25  # main title (9 pt)
MAIN_XAXIS_IN = 0.60  # main panel: tick labels + x label under it
THUMB_TOP_IN = 0.22  # thumbnail titles (8 pt)
THUMB_BOTTOM_IN = 0.40  # thumbnail tick labels + x label (6 / 7 pt)
THUMB_H_IN = 1.50
OFFSET_IN = 0.2  # an offset text (1e6) over a y axis: 10 pt and its pad


def draw_resolution_plots(
    analysis: "Analysis", host: "Host", out_dir: str | Path, fmt: str = "png", stem: str | None = None,
    explain: bool = False, d_limit: float | None = None,
) -> list[Path]:
    """Write one figure per observable (``<stem>_I.<fmt>``, ``<stem>_F.<fmt>``); return their paths.

    ``d_limit`` (Å) ends the resolution axis there when the data go further (AUSPEX's DLIM).
    """
    if fmt not in FORMATS:
        raise ValueError(f"figure format must be one of {', '.join(FORMATS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9._+-]", "_", stem or analysis.reflections.name)
    paths = []
    for kind in analysis.reflections.observables:
        fig = figure_for(analysis, host, kind, explain=explain, d_limit=d_limit)
        path = out_dir / f"{stem}_{kind}.{fmt}"
        if fmt == "png":
            write_png(fig, path)
        else:
            fig.savefig(path, dpi=DPI)
        paths.append(path)
    return paths


def write_png(fig, path: str | Path) -> None:
    """Draw ``fig`` once with Agg and write it as PNG: RGB when the figure is opaque (it is unless the
    rcParams make the figure background transparent), zlib level PNG_COMPRESS_LEVEL, matplotlib's
    usual Software tag."""
    import matplotlib
    from PIL import Image, PngImagePlugin

    canvas = fig.canvas
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    image = Image.fromarray(rgba, "RGBA")
    if rgba[..., 3].min() == 255:
        image = image.convert("RGB")
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", f"Matplotlib version{matplotlib.__version__}, https://matplotlib.org/")
    image.save(path, "png", compress_level=PNG_COMPRESS_LEVEL, pnginfo=info, dpi=(DPI, DPI))


def _new_figure(height: float):
    """A Figure on its own Agg canvas: no pyplot (no figure manager, nothing to close, a smaller import)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def figure_for(analysis: "Analysis", host: "Host", kind: str, explain: bool = False, d_limit: float | None = None):
    """The matplotlib Figure for one observable (not saved; an Agg canvas, not managed by pyplot)."""
    from matplotlib.ticker import MaxNLocator

    obs = analysis.reflections.observables[kind]
    helcaraxe = analysis.result("helcaraxe", kind)
    thumbs = _thumbnail_ranges(helcaraxe)
    height = 6.2 if thumbs else 4.6
    fig = _new_figure(height)
    main_rect, thumb_rect = _vertical(height, bool(thumbs), False, False)
    ax = fig.add_axes((0.1, main_rect[0], 0.8, main_rect[1]))
    _draw_main(ax, analysis, kind)
    host.annotate(ax, kind, analysis)
    if d_limit is not None:
        low, high = ax.get_xlim()
        if low < 1.0 / d_limit**2 < high:
            ax.set_xlim(low, 1.0 / d_limit**2)
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper right", fontsize=8, framealpha=0.9,
                  bbox_to_anchor=(1.0, 0.78))
    thumb_axes = []
    if thumbs:
        from .network import load_networks, plots_for

        network = load_networks(analysis.options.networks).get(kind)
        plots = plots_for(obs, network)  # what the network read: its card's plot scale
        by_index = {r.index: k for k, r in enumerate(plots.ranges)}
        saliency = _explain(network, plots, thumbs, by_index) if explain and network is not None else {}
        on_scale = "" if plots.scale == "linear" else f", {SCALE_TITLES[plots.scale]}"
        for rr in thumbs:
            tax = fig.add_axes((0.1, thumb_rect[0], 0.1, thumb_rect[1]))
            thumb_axes.append(tax)
            k = by_index[rr.index]
            tax.imshow(plots.counts[k], cmap="Greys", aspect="auto", interpolation="nearest",
                       extent=(rr.d_min, rr.d_max, *plots.y_limits[k]))
            if rr.index in saliency:
                tax.imshow(saliency[rr.index], cmap="Reds", alpha=0.45, aspect="auto", interpolation="bilinear",
                           extent=(rr.d_min, rr.d_max, *plots.y_limits[k]))
            tax.invert_xaxis()  # low resolution on the left, as in the main panel
            colour = "tab:blue" if rr.flagged else "0.3"
            p = "" if rr.value is None else f" p={rr.value:.2f}"
            tax.set_title(f"range {rr.index}{p}{on_scale}", fontsize=8, color=colour,
                          fontweight="bold" if rr.flagged else "normal", y=_title_y(tax))
            tax.tick_params(labelsize=6)
            tax.xaxis.set_major_locator(MaxNLocator(3))
            tax.set_xlabel("d (Å)", fontsize=7)
            for side in tax.spines.values():
                side.set_edgecolor(colour)
                side.set_linewidth(2 if rr.flagged else 0.8)
    _place(ax, thumb_axes)
    return fig


def _ytick_labels(ax) -> tuple[list[str], str]:
    """The y tick labels ``ax`` will draw and the offset text (e.g. ``1e6``), without drawing (the axes
    must have its final height and y limits)."""
    axis = ax.yaxis
    lo, hi = sorted(ax.get_ylim())
    locs = [v for v in axis.get_major_locator()() if lo <= v <= hi]
    formatter = axis.get_major_formatter()
    labels = formatter.format_ticks(locs)
    return labels, formatter.get_offset()


def _title_y(ax) -> float | None:
    """1.0 (the title just above the axes, where matplotlib would put it) unless a y offset text sits
    there; then None, matplotlib's automatic placement above it. A given y spares the automatic
    placement, which lays out every tick label of the axes again (~25 ms a figure)."""
    return None if _ytick_labels(ax)[1] else 1.0


def _ytick_room_in(ax, fontsize: float, label: bool) -> float:
    """Inches left of ``ax`` that its y tick labels (and y label) take, estimated from the tick label
    strings (DejaVu Sans digits are 0.64 em wide) without laying any text out."""
    chars = max((len(s) for s in _ytick_labels(ax)[0]), default=1)
    pt = 3.5 + 3.5 + 0.64 * fontsize * chars + 2.0  # tick, pad, labels, spare
    if label:
        pt += 4.0 + 1.3 * 10.0  # label pad + the y label (10 pt, subscripts)
    return pt / 72.0


def _vertical(height: float, thumbs: bool, main_offset: bool, thumb_offset: bool):
    """(bottom, height) in figure fractions of the main panel and of the thumbnails; an offset text
    (``1e6`` above the y axis) gets OFFSET_IN more room above its axes."""
    top = TOP_IN + (OFFSET_IN if main_offset else 0.0)
    thumb_h = THUMB_H_IN - (OFFSET_IN if thumb_offset else 0.0)
    strip = (THUMB_BOTTOM_IN + THUMB_H_IN + THUMB_TOP_IN) if thumbs else 0.0
    main_bottom = strip + MAIN_XAXIS_IN
    return ((main_bottom / height, (height - top - main_bottom) / height),
            (THUMB_BOTTOM_IN / height, thumb_h / height))


def _place(ax, thumb_axes) -> None:
    """Final positions: margins from the y tick labels and offset texts (see _ytick_labels)."""
    fig = ax.figure
    width, height = fig.get_figwidth(), fig.get_figheight()
    main_offset = bool(_ytick_labels(ax)[1])
    thumb_offset = any(_ytick_labels(t)[1] for t in thumb_axes)
    (main_y, main_h), (thumb_y, thumb_h) = _vertical(height, bool(thumb_axes), main_offset, thumb_offset)
    thumb_room = max((_ytick_room_in(t, 6.0, False) for t in thumb_axes), default=0.0)
    left = max(_ytick_room_in(ax, 10.0, True), thumb_room, 0.45)
    right = width - RIGHT_IN
    ax.set_position((left / width, main_y, (right - left) / width, main_h))
    if thumb_axes:
        gap = thumb_room + 0.12
        n = len(thumb_axes)
        w = (right - left - (n - 1) * gap) / n
        for i, tax in enumerate(thumb_axes):
            tax.set_position(((left + i * (w + gap)) / width, thumb_y, w / width, thumb_h))


def _draw_main(ax, analysis: "Analysis", kind: str) -> None:
    obs = analysis.reflections.observables[kind]
    x = 1.0 / np.square(obs.d.astype(np.float64))
    y = obs.values
    if x.size > MAX_POINTS:  # thin evenly for drawing speed; statistics use all data
        step = int(np.ceil(x.size / MAX_POINTS))
        x, y = x[::step], y[::step]
    ax.scatter(x, y, s=1.5, c="0.15", alpha=0.35, lw=0, rasterized=True, zorder=2)
    x_max = 1.0 / obs.d_min**2
    x_min = 1.0 / min(float(obs.d.max()), 12.0) ** 2
    _draw_binned_mean(ax, obs, x_min, x_max)
    # Scale y to where ice can be (d < 4.2 Å): strong low-resolution reflections are clipped.
    region = obs.values[obs.d < ICE_REGION_D] if (obs.d < ICE_REGION_D).sum() > 100 else obs.values
    lo, hi = np.nanpercentile(region, [0.2, 99.0])
    pad = 0.08 * (hi - lo)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlim(x_min, x_max * 1.01)
    trans = ax.get_xaxis_transform()
    for r in ice_ranges():
        a, b = 1.0 / r.d_max**2, 1.0 / r.d_min**2
        if a > x_max * 1.01:
            break
        ax.axvspan(a, b, color="0.88", lw=0, zorder=0)
        ax.text(0.5 * (a + b), 0.01, str(r.index), transform=trans, ha="center", va="bottom", fontsize=6, color="0.45")
    ticks = [d for d in D_TICKS if x_min <= 1.0 / d**2 <= x_max * 1.01]
    ax.set_xticks([1.0 / d**2 for d in ticks], [f"{d:g}" for d in ticks])
    ax.set_xlabel("resolution d (Å)  [axis linear in 1/d²]")
    ax.set_ylabel(LABELS.get(kind, kind))
    cols = ", ".join(obs.columns)
    ax.set_title(f"{analysis.reflections.name}: {LABELS.get(kind, kind)} ({cols}), {len(obs)} observations, "
                 f"d_min {obs.d_min:.2f} Å — {_verdict_text(analysis, kind)}", fontsize=9, loc="left",
                 y=_title_y(ax))


def _draw_binned_mean(ax, obs, x_min: float, x_max: float, bins: int = 300) -> None:
    """Mean observation in equal-width bins of 1/d²: spikes and dips at ice rings stand out."""
    x = 1.0 / np.square(obs.d.astype(np.float64))
    edges = np.linspace(x_min, x_max, bins + 1)
    k = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
    n = np.bincount(k, minlength=bins)
    s = np.bincount(k, weights=obs.values.astype(np.float64), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n >= 5, s / n, np.nan)
    ax.plot(0.5 * (edges[1:] + edges[:-1]), mean, color="tab:orange", lw=1.2, zorder=3, label="bin mean")


def _verdict_text(analysis: "Analysis", kind: str) -> str:
    parts = []
    for result in analysis.for_observable(kind):
        flagged = result.flagged_ranges
        parts.append(f"{result.detector}: " + (f"ice in {', '.join(map(str, flagged))}" if flagged else "no ice"))
    return "; ".join(parts)


def _thumbnail_ranges(result):
    """Flagged ranges first, then the most probable predicted and any excised, at most 8."""
    if result is None:
        return []
    shown = [r for r in result.ranges if r.flagged]
    rest = sorted((r for r in result.ranges if r.status == PREDICTED and not r.flagged),
                  key=lambda r: -(r.value or 0))
    excised = [r for r in result.ranges if r.status == EXCISED]
    chosen = (shown + excised + rest)[:MAX_THUMBNAILS]
    return sorted(chosen, key=lambda r: r.index)


def _explain(network, plots, thumbs, by_index) -> dict[int, np.ndarray]:
    from .explain import occlusion_map

    out = {}
    for rr in thumbs:
        if rr.flagged and rr.status == PREDICTED:
            out[rr.index] = occlusion_map(network, plots.inputs[by_index[rr.index]])
    return out

