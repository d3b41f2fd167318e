"""Whole analysis of one data set: ours against the published Helcaraxe pipeline, in the same run.

    python benchmarks/published_pipeline.py [--shared ../shared] [--repeat 3] [--max-files N] [--networks DIR]

Needs TensorFlow + Keras (the ``train`` extra) and the published ``Helcaraxe_*obs_model.h5`` networks in
``../shared/reference/published`` (not part of this project). One warm process: every import and
TensorFlow's start-up happen before anything is timed. Per data set (median of ``--repeat`` calls after
one warm-up):

- **ours**: ``read`` (gemmi) + ``Host.analyse`` (Helcaraxe with control windows, and Icefinder) +
  ``report.verdict`` (the joint I+F rule): what ``helcaraxe check FILE`` computes, without figures;
  the host (its plugins) and our networks are loaded once, as in a batch run.
- **published, as AUSPEX calls it** (``auspex/Helcaraxe.py``, ``cnn_predict``, YunyunGao/AUSPEX; the
  steps re-expressed here, not its code): ``read`` for the arrays (AUSPEX's own reader is not timed:
  generous to it), both Keras networks loaded (it loads them on every call), then per observable and
  per ice range the data reach: the range's values selected by a Python loop over all reflections,
  y limits at the 0.5th / 95th percentile, ``numpy.histogram2d`` over all reflections, a 90° rotation
  (``numpy.rot90`` here, cheaper than its ``scipy.ndimage.rotate``), the blank-window check,
  ``tf.image.per_image_standardization`` and one forward pass of all plots through Keras.
- **published, networks loaded once**: the same per-data-set work without loading the networks.
- **published steps through TFLite** (``pipeline.py``'s baseline): ``read`` + one vectorised
  ``histogram2d`` per range + the published networks converted to TFLite: the published method with
  this project's engineering, the strictest baseline.

Also timed from the host's arrays, the boundary at which AUSPEX calls the published code
(``cnn_predict(i_res, i_obs, f_res, f_obs)`` gets arrays its host has read) and at which our plugin gets
the host's parsed arrays: **ours** ``Host.analyse(refl, "helcaraxe")`` + ``report.verdict`` (the host
flag choosing Helcaraxe; no reading, no Icefinder) against **published, as AUSPEX calls it** without
``read``.

Printed: per data set the times and the ratios published / ours, then median and min ratios.

``--profile``: instead, where our time from the arrays goes (``cProfile`` of ``ours_from_arrays`` over
the real files after a warm-up pass; needs neither TensorFlow nor the published networks).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from _timing import median_time, real_files

from auspex_helcaraxe.host import Host
from auspex_helcaraxe.ice_ranges import ice_ranges
from auspex_helcaraxe.network import load_networks
from auspex_helcaraxe.plots import make_plots, straightforward_counts
from auspex_helcaraxe.readers import read
from auspex_helcaraxe.report import verdict
from auspex_helcaraxe.results import AnalysisOptions

BINS = 80


HOST = Host()
OPTIONS = AnalysisOptions()


def ours(path: Path) -> dict:
    """The whole analysis of ``path`` as ``helcaraxe check`` computes it (no figures)."""
    return verdict(HOST.analyse(read(path), "both", OPTIONS))


def ours_from_arrays(refl) -> dict:
    """Our Helcaraxe analysis of the host's parsed arrays (the plugin boundary): detector + verdict."""
    return verdict(HOST.analyse(refl, "helcaraxe", OPTIONS))


def profile(files: list[Path], top: int = 20) -> None:
    """Print the functions taking most of our analysis time from the arrays, as shares of the total."""
    import cProfile
    import pstats

    refls = []
    for path in files:  # reading and a warm-up pass, untimed
        try:
            refl = read(path)
            ours_from_arrays(refl)
        except Exception:  # noqa: BLE001 - skipped as in the timed runs
            continue
        refls.append(refl)
    prof = cProfile.Profile()
    prof.runcall(lambda: [ours_from_arrays(r) for r in refls])
    stats = pstats.Stats(prof)
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][3])  # by cumulative time
    total = rows[0][1][3]  # the whole pass
    print(f"ours from the arrays, {len(refls)} data sets: {total:.3f} s under cProfile")
    for (file, line, name), (_, _, tt, ct, _) in rows[:top]:
        print(f"  cumulative {ct / total:6.1%}  own {tt / total:6.1%}  {Path(file).name}:{line}({name})")


class Published:
    """The published pipeline's per-data-set work, in the order AUSPEX's ``cnn_predict`` does it."""

    def __init__(self, h5_dir: Path) -> None:
        import keras
        import tensorflow as tf

        self.tf, self.keras, self.h5_dir = tf, keras, h5_dir
        self.models = self.load()

    def load(self) -> dict:
        return {k: self.keras.models.load_model(self.h5_dir / f"Helcaraxe_{k}obs_model.h5", compile=False)
                for k in ("I", "F")}

    def plots(self, d: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, list[bool]]:
        """Histograms of every range the data reach, and which of them are blank."""
        out, blank = [], []
        d_min = float(np.min(d))
        for r in ice_ranges():
            if not d_min < r.d_min:
                continue
            selected = []
            for j, res in enumerate(d):  # the published per-reflection loop
                if r.d_min <= res <= r.d_max:
                    selected.append(v[j])
            try:
                lim = [np.percentile(selected, 0.5), np.percentile(selected, 95)]
            except IndexError:
                lim = [0, np.percentile(v, 90)]
            h, _, _ = np.histogram2d(d, v, range=[[r.d_min, r.d_max], lim], bins=BINS)
            h = np.rot90(h)
            blank.append(any(np.mean(h[:, i : i + 10]) <= 0.005 for i in range(0, BINS, 5)))
            out.append(h)
        return np.asarray(out, dtype=np.float32).reshape(-1, BINS, BINS, 1), blank

    def run(self, refl, load: bool) -> dict:
        models = self.load() if load else self.models
        out = {}
        for kind, obs in refl.observables.items():
            x, blank = self.plots(obs.d, obs.values)
            if len(x):
                p = np.asarray(models[kind](self.tf.image.per_image_standardization(x))).ravel()
                out[kind] = np.where(blank, np.nan, p)
        return out


def tflite_steps(refl, nets: dict) -> None:
    for kind, obs in refl.observables.items():
        straightforward_counts(obs)
        nets[kind].predict(make_plots(obs).inputs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-files", type=int, default=0, help="only the first N real files (0: all)")
    ap.add_argument("--networks", default=None, metavar="DIR",
                    help="our networks and cards (default: the shipped ones; the combiner beside them if there is one)")
    ap.add_argument("--profile", action="store_true", help="only profile our analysis from the arrays (see above)")
    a = ap.parse_args()
    if a.networks:
        global OPTIONS
        joint = Path(a.networks) / "helcaraxe_joint.json"
        OPTIONS = AnalysisOptions(networks=a.networks, extra={"joint": str(joint)} if joint.is_file() else {})
    if a.profile:
        files = real_files(a.shared / "data" / "real")
        profile(files[: a.max_files] if a.max_files else files)
        return 0
    published = a.shared / "reference" / "published"
    if not (published / "Helcaraxe_Iobs_model.h5").is_file():
        print(f"published Keras networks not found in {published}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    pub = Published(published)
    tfl = load_networks(published)
    files = real_files(a.shared / "data" / "real")
    files = files[: a.max_files] if a.max_files else files
    print(f"{'data set':<42} {'refl':>8} {'ours ms':>8} {'AUSPEX ms':>10} {'loaded ms':>10} {'TFLite ms':>10} "
          f"{'x AUSPEX':>9} {'x loaded':>9} {'x TFLite':>9} {'arrays: ours ms':>16} {'AUSPEX ms':>10} {'x AUSPEX':>9}")
    ratios = []
    for path in files:
        try:
            refl = read(path)
            ours(path)
        except Exception as exc:  # noqa: BLE001 - a benchmark reports and goes on
            print(f"{path.name:<42} skipped: {str(exc).splitlines()[0]}")
            continue
        n = sum(len(o) for o in refl.observables.values())
        t = [median_time(lambda p=path: ours(p), a.repeat),
             median_time(lambda p=path: pub.run(read(p), load=True), a.repeat),
             median_time(lambda p=path: pub.run(read(p), load=False), a.repeat),
             median_time(lambda p=path: tflite_steps(read(p), tfl), a.repeat),
             median_time(lambda: ours_from_arrays(refl), a.repeat),
             median_time(lambda: pub.run(refl, load=True), a.repeat)]
        r = [x / t[0] for x in t[1:4]] + [t[5] / t[4]]
        ratios.append(r)
        print(f"{path.name:<42} {n:>8} {t[0] * 1e3:>8.1f} {t[1] * 1e3:>10.1f} {t[2] * 1e3:>10.1f} {t[3] * 1e3:>10.1f} "
              f"{r[0]:>8.0f}x {r[1]:>8.0f}x {r[2]:>8.1f}x {t[4] * 1e3:>16.1f} {t[5] * 1e3:>10.1f} {r[3]:>8.0f}x")
    if ratios:
        q = np.array(ratios)
        for j, name in enumerate(("published as AUSPEX calls it (networks loaded per call)",
                                  "published, networks loaded once", "published steps through TFLite",
                                  "published as AUSPEX calls it, both from the host's arrays (no read; Helcaraxe only)")):
            print(f"whole analysis, ours vs {name}: median {np.median(q[:, j]):.1f}x, min {q[:, j].min():.1f}x "
                  f"faster over {len(q)} data sets")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
