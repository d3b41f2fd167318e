"""Per-stage times and peak memory of the Helcaraxe pipeline, with baselines measured in the same run.

    python benchmarks/pipeline.py [--shared ../shared] [--sizes 10000,100000,1000000] [--repeat 5]

Stages: read (gemmi → Reflections), plots (all covered ranges of one observable), network (all plots of
one observable in one batch), figures (one PNG per observable). Baselines:
- plots: the straightforward implementation — per range a boolean mask over all reflections for the
  percentiles and one ``numpy.histogram2d`` over all reflections;
- network: the published networks through TFLite (skipped if absent) on the ranges' plots, against
  our decision on the same ranges (``controls.score``: our networks on the ranges' plots plus, when the
  cards carry a control baseline, on the ice-free control windows) with the networks in resources/
  (or ``--networks DIR``);
- memory: peak RSS of a ``helcaraxe check`` subprocess (figures included).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _timing import median_time, real_files

from auspex_helcaraxe.controls import score
from auspex_helcaraxe.ice_ranges import ice_ranges
from auspex_helcaraxe.network import load_networks
from auspex_helcaraxe.plots import make_plots, straightforward_counts
from auspex_helcaraxe.readers import read
from auspex_helcaraxe.simulate import simulate_dataset, write_mtz


def simulated_files(sizes: list[int], directory: Path) -> list[Path]:
    paths = []
    for n in sizes:
        # A cell big enough that the reflections down to 1.2 Å number about n (capped by the simulator).
        ds = simulate_dataset(n, d_min=1.2, max_reflections=n, name=f"sim{n}", hard_negatives=[], hard_negative_params={},
                              space_group="P 21 21 21", cell=_cell_for(n, 1.2), ice={"probability": 1.0})
        paths.append(write_mtz(ds, directory / f"sim_{n}.mtz"))
    return paths


def _cell_for(n: int, d_min: float) -> tuple[float, ...]:
    # Unique reflections in P212121 ≈ (4π/3) V / d³ / 8 (point group 222, Friedel): solve for a cubic-ish cell.
    volume = n * 8 * d_min**3 / (4 * np.pi / 3) * 1.05
    a = volume ** (1 / 3)
    return (a * 0.9, a, a * 1.1, 90.0, 90.0, 90.0)


def peak_rss_mb(args: list[str]) -> float:
    """Peak RSS of a command, measured by a small launcher process (a child forked from this big
    benchmark process would report this process's memory as its own peak)."""
    launcher = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
                "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", launcher, *args], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--networks", default=None, help="our networks (default: resources/)")
    args = ap.parse_args()
    published = args.shared / "reference" / "published"
    real_dir = args.shared / "data" / "real"

    ours = load_networks(args.networks)
    theirs = load_networks(published) if published.is_dir() else {}
    with tempfile.TemporaryDirectory() as tmp:
        files = simulated_files([int(s) for s in args.sizes.split(",")], Path(tmp))
        if real_dir.is_dir():
            files += real_files(real_dir)
        print(f"{'data set':<40} {'refl':>8} {'read ms':>8} {'plots ms':>9} {'base ms':>8} {'speedup':>8} "
              f"{'net ms':>7} {'pub ms':>7} {'n plots':>7}")
        rows = []
        for path in files:
            try:
                refl = read(path)
            except Exception as exc:  # noqa: BLE001 - benchmarks report and go on
                print(f"{path.name:<40} skipped: {exc}")
                continue
            t_read = median_time(lambda: read(path), args.repeat)
            for kind, obs in refl.observables.items():
                if obs.d_min > ice_ranges()[0].d_max:
                    continue
                t_plots = median_time(lambda: make_plots(obs), args.repeat)
                t_base = median_time(lambda: straightforward_counts(obs), max(1, args.repeat // 2))
                plots = make_plots(obs)
                inputs = plots.inputs  # the published network's batch
                t_net = median_time(lambda: score(obs, plots, ours[kind]), args.repeat) if kind in ours else float("nan")
                t_pub = median_time(lambda: theirs[kind].predict(inputs), args.repeat) if kind in theirs else float("nan")
                rows.append((len(obs), t_read, t_plots, t_base, t_net, t_pub, len(plots.ranges)))
                print(f"{path.name + ' ' + kind:<40} {len(obs):>8} {t_read * 1e3:>8.2f} {t_plots * 1e3:>9.2f} "
                      f"{t_base * 1e3:>8.2f} {t_base / t_plots:>7.0f}x {t_net * 1e3:>7.2f} {t_pub * 1e3:>7.2f} "
                      f"{len(plots.ranges):>7}")
        biggest = files[min(1, len(files) - 1)]
        from auspex_helcaraxe.host import Host
        from auspex_helcaraxe.figures import draw_resolution_plots

        host = Host()
        analysis = host.analyse(read(biggest))
        t_fig = median_time(lambda: draw_resolution_plots(analysis, host, Path(tmp) / "fig"), 1)
        print(f"\nfigures ({biggest.name}, both observables): {t_fig * 1e3:.0f} ms")
        exe = Path(sys.executable).with_name("helcaraxe")
        for path in files[:3] + [p for p in files if p.name == "1iee.mtz"]:
            mb = peak_rss_mb([str(exe), "check", str(path), "--out", str(Path(tmp) / "rss")])
            print(f"peak RSS of 'helcaraxe check {path.name} --out DIR': {mb:.0f} MB")
    if rows:
        a = np.array(rows, dtype=float)
        speed = a[:, 3] / a[:, 2]
        print(f"\nplot step speed-up over the per-range histogram2d baseline: median {np.median(speed):.0f}x, "
              f"min {speed.min():.0f}x over {len(rows)} observables")
        ok = np.isfinite(a[:, 4]) & np.isfinite(a[:, 5])
        if ok.any():
            ratio = a[ok, 5] / a[ok, 4]
            print(f"network: our decision (network + control windows) vs the published network (TFLite, same "
                  f"ranges): median {np.median(ratio):.1f}x faster ({np.median(a[ok, 4] / a[ok, 6]) * 1e3:.2f} vs "
                  f"{np.median(a[ok, 5] / a[ok, 6]) * 1e3:.2f} ms per range)")
            # the whole Helcaraxe analysis of an observable: read + plots + network, against the published
            # pipeline's steps (read, one histogram2d per range, the published network) with its network run
            # through TFLite in the same batches: generous to it (AUSPEX runs TensorFlow + Keras each call)
            whole = (a[ok, 1] + a[ok, 3] + a[ok, 5]) / (a[ok, 1] + a[ok, 2] + a[ok, 4])
            print(f"whole Helcaraxe analysis (read + plots + network) vs the published pipeline's steps "
                  f"(read + per-range histogram2d + published TFLite): median {np.median(whole):.0f}x, "
                  f"min {whole.min():.0f}x faster over {int(ok.sum())} observables")
        elif np.isfinite(a[:, 5]).any():
            pub = a[np.isfinite(a[:, 5])]
            print(f"network: published TFLite {np.median(pub[:, 5] / pub[:, 6]) * 1e3:.2f} ms per plot "
                  "(no network of ours installed)")


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    main()
