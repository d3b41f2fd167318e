"""Realism check: simulated against real data sets, plot by plot and in distribution.

``python -m auspex_helcaraxe.simulate.compare OUT_DIR [--real DIR] [--n-sim N] [--seed S]`` writes
``side_by_side_{I,F}.png`` (Helcaraxe plots of real and simulated data sets), ``mean_plots.png`` (mean
standardised plot per range group, like Fig. 5 of the paper), ``stats.json`` and prints a table of the
distribution statistics. Real data are read with :func:`readers.read`; only data sets labelled
``clean`` in ``labels.tsv`` are compared with clean simulated data sets.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..plots import make_plots
from ..readers import read
from ..reflections import Reflections
from .dataset import simulate_dataset

ROW_BANDS = 4


def load_real(root: Path, labels: tuple[str, ...] = ("clean",)) -> list[Reflections]:
    """Real data sets of ``root`` (``labels.tsv`` label in ``labels``), readable ones only."""
    out = []
    with open(root / "labels.tsv") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["label"] not in labels:
                continue
            try:
                out.append(read(root / row["path"]))
            except InputError:
                continue
    return out


def _ice_ranges_of(root: Path, refl: Reflections) -> dict[str, tuple[int, ...]]:
    """Iced ranges per observable of a real data set from ``labels.tsv`` (``I:5,8;F:5,8``)."""
    with open(root / "labels.tsv") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if Path(row["path"]).name == refl.name and row["ice_ranges"]:
                return {k: tuple(int(i) for i in v.split(",")) for k, _, v in
                        (part.partition(":") for part in row["ice_ranges"].split(";"))}
    return {}


def plot_statistics(datasets: list[Reflections], kind: str) -> dict:
    """Distribution statistics of the predictable plots of ``kind`` over ``datasets``."""
    n_in, lo_hi, bands, blank, mean_img, per_range = [], [], [], [], [], {}
    for refl in datasets:
        obs = refl.observables.get(kind)
        if obs is None:
            continue
        p = make_plots(obs)
        pred = p.predictable
        blank.extend(~pred)
        for j in np.flatnonzero(pred):
            c = p.counts[j].astype(np.float64)
            rows = c.sum(axis=1)
            rows = rows / max(rows.sum(), 1.0)
            bands.append(rows.reshape(ROW_BANDS, -1).sum(axis=1))  # top → bottom quarters
            lo, hi = p.y_limits[j]
            lo_hi.append(lo / hi if hi else np.nan)
            n_in.append(p.n_in_range[j])
            per_range.setdefault(p.ranges[j].index, []).append(p.n_in_range[j])
        if pred.any():
            mean_img.append(p.inputs[pred, ..., 0].mean(axis=0))
    bands = np.array(bands) if bands else np.zeros((0, ROW_BANDS))
    q = lambda a: [float(x) for x in np.nanpercentile(a, (10, 50, 90))] if len(a) else []
    return {
        "n_datasets": len(datasets),
        "n_plots": len(n_in),
        "nonpredictable_fraction": float(np.mean(blank)) if blank else float("nan"),
        "reflections_per_plot_p10_p50_p90": q(n_in),
        "ylow_over_yhigh_p10_p50_p90": q(lo_hi),
        "row_quarters_mean_top_to_bottom": [float(x) for x in bands.mean(axis=0)] if len(bands) else [],
        "bottom_quarter_p10_p50_p90": q(bands[:, -1]) if len(bands) else [],
        "median_reflections_by_range": {str(k): float(np.median(v)) for k, v in sorted(per_range.items())},
        "_mean_image": np.mean(mean_img, axis=0) if mean_img else None,
    }


def icefinder_statistics(datasets: list[Reflections], kind: str) -> dict:
    """Icefinder on clean data: |score| of the in-ice bins and the share of data sets flagged."""
    from .. import icefinder

    scores, flagged = [], []
    for refl in datasets:
        obs = refl.observables.get(kind)
        if obs is None:
            continue
        try:
            s = icefinder.score(obs)
        except InputError:
            continue
        flagged.append(bool(s.flagged_ranges))
        scores.append(s.score[s.in_ice & np.isfinite(s.score)])
    a = np.abs(np.concatenate(scores)) if scores else np.zeros(0)
    return {
        "icefinder_abs_score_p50_p90_p99": [float(x) for x in np.percentile(a, (50, 90, 99))] if a.size else [],
        "icefinder_flagged_fraction": float(np.mean(flagged)) if flagged else float("nan"),
    }


def simulated_clean(n: int, seed: int) -> list[Reflections]:
    rng = np.random.default_rng(seed)
    return [simulate_dataset(rng, name=f"cmp-{k}", ice=False).reflections for k in range(n)]


def _show(ax, counts, title: str) -> None:
    ax.imshow(counts, cmap="Greys", aspect="auto", vmax=max(2.0, float(np.percentile(counts, 99.5))), interpolation="nearest")
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(title, fontsize=6)


def _first_predictable(refl: Reflections, kind: str, n: int, wanted: tuple[int, ...] | None = None):
    p = make_plots(refl.observables[kind])
    idx = [j for j in np.flatnonzero(p.predictable) if wanted is None or p.ranges[j].index in wanted]
    return [(p.ranges[j].index, p.counts[j], int(p.n_in_range[j])) for j in idx[:n]]


def draw_side_by_side(real: list[Reflections], sim: list[Reflections], kind: str, path: Path, n_rows: int = 4, n_cols: int = 4) -> Path:
    """Rows of data sets: real ones (left block) and simulated ones (right block), the first
    ``n_cols`` predictable plots of each (ranges in the titles)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def pick(sets):
        out = [r for r in sets if kind in r.observables and len(_first_predictable(r, kind, n_cols)) == n_cols]
        step = max(1, len(out) // n_rows)
        return out[::step][:n_rows]

    blocks = [("real", pick(real)), ("sim", pick(sim))]
    fig, axes = plt.subplots(n_rows, 2 * n_cols, figsize=(2 * n_cols * 1.25, n_rows * 1.35))
    for b, (title, sets) in enumerate(blocks):
        for i in range(n_rows):
            items = _first_predictable(sets[i], kind, n_cols) if i < len(sets) else []
            for j in range(n_cols):
                ax = axes[i, b * n_cols + j]
                if j < len(items):
                    idx, counts, n_in = items[j]
                    name = sets[i].name[:10] if title == "real" else "simulated"
                    _show(ax, counts, f"{name} {kind}{idx} n={n_in}")
                else:
                    ax.axis("off")
    fig.suptitle(f"{kind} plots of clean data sets: real (left) and simulated (right)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def draw_iced_examples(real_iced: list[tuple[Reflections, str, tuple[int, ...]]], path: Path, seed: int = 3, n_sim: int = 8) -> Path:
    """Known real ice plots (data set, observable, ranges) next to simulated iced plots (label 1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real_items = []
    for refl, kind, ranges in real_iced:
        for idx, counts, n_in in _first_predictable(refl, kind, 25, ranges):
            real_items.append((f"real {refl.name[:12]} {kind}{idx}", counts))
    rng = np.random.default_rng(seed)
    sim_items = []
    bins = [(0.3, 1.0), (1.0, 3.0), (3.0, 10.0), (10.0, np.inf)]  # one example per strength bin in turn
    tries = 0
    while len(sim_items) < n_sim and tries < 50 * n_sim:
        tries += 1
        lo, hi = bins[len(sim_items) % len(bins)]
        ds = simulate_dataset(rng, name="iced-example", ice={"probability": 1.0}, hard_negatives=[], hard_negative_params={})
        kind = "IF"[(len(sim_items) // len(bins)) % 2]
        p = make_plots(ds.reflections.observables[kind])
        pos = [j for j in np.flatnonzero(p.predictable)
               if ds.truth[p.ranges[j].index].label(kind) and lo <= ds.truth[p.ranges[j].index].strength < hi]
        if pos:
            j = pos[int(rng.integers(len(pos)))]
            t = ds.truth[p.ranges[j].index]
            sim_items.append((f"sim {kind}{t.index} strength {t.strength:.2g}", p.counts[j]))
    items = real_items + sim_items
    n_cols = 6
    n_rows = int(np.ceil(len(items) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(n_cols * 1.5, n_rows * 1.5))
    for ax in np.ravel(axes)[len(items):]:
        ax.axis("off")
    for ax, (title, counts) in zip(np.ravel(axes), items):
        _show(ax, counts, title)
    fig.suptitle("Ice: real plots (first) and simulated plots labelled iced", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def draw_mean_images(stats: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in stats if stats[k].get("_mean_image") is not None]
    fig, axes = plt.subplots(1, len(keys), figsize=(1.6 * len(keys), 1.9))
    for ax, k in zip(np.atleast_1d(axes), keys):
        ax.imshow(stats[k]["_mean_image"], cmap="viridis", aspect="auto")
        ax.set_title(f"mean {k}", fontsize=7)
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=70)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m auspex_helcaraxe.simulate.compare", description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data" / "real")
    ap.add_argument("--n-sim", type=int, default=150)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    real = load_real(args.real)
    sim = simulated_clean(args.n_sim, args.seed)
    stats = {}
    for kind in ("I", "F"):
        stats[f"real {kind}"] = plot_statistics(real, kind) | icefinder_statistics(real, kind)
        stats[f"sim {kind}"] = plot_statistics(sim, kind) | icefinder_statistics(sim, kind)
        draw_side_by_side(real, sim, kind, args.out_dir / f"side_by_side_{kind}.png")
    draw_mean_images(stats, args.out_dir / "mean_plots.png")
    iced = [(r, k, rng) for r in load_real(args.real, ("ice",)) for k, rng in _ice_ranges_of(args.real, r).items()]
    if iced:
        draw_iced_examples(iced, args.out_dir / "iced_examples.png")
    public = {k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")} for k, v in stats.items()}
    (args.out_dir / "stats.json").write_text(json.dumps(public, indent=1))
    rows = ["n_datasets", "n_plots", "nonpredictable_fraction", "reflections_per_plot_p10_p50_p90",
            "ylow_over_yhigh_p10_p50_p90", "row_quarters_mean_top_to_bottom", "bottom_quarter_p10_p50_p90",
            "icefinder_abs_score_p50_p90_p99", "icefinder_flagged_fraction"]
    print("| statistic | " + " | ".join(public) + " |")
    print("|---|" + "---|" * len(public))
    fmt = lambda v: ", ".join(f"{x:.3g}" for x in v) if isinstance(v, list) else f"{v:.3g}"
    for r in rows:
        print(f"| {r} | " + " | ".join(fmt(public[k][r]) for k in public) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
