"""Cost of AUSPEX's Helcaraxe call: our drop-in ``cnn_predict`` vs TensorFlow + the Keras networks.

Each variant runs in a fresh Python process (imports, network loading, plots and prediction of one
data set, as one AUSPEX run does once): wall time from process start and peak RSS (ru_maxrss).

    python benchmarks/auspex_dropin.py --h5 DIR_WITH_Helcaraxe_*obs_model.h5 \\
        [--networks DIR_WITH_*obs.tflite] [--data FILE.mtz]

Baseline ("tensorflow"): import tensorflow, load Helcaraxe_Iobs_model.h5 and Helcaraxe_Fobs_model.h5
with keras and predict the same plots (AUSPEX's Helcaraxe does this on every call). Ratios are
against that baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

T0 = time.perf_counter()


def child(mode: str, arrays: str, networks: str | None, h5: str | None) -> None:
    import resource

    import numpy as np

    z = np.load(arrays)
    if mode == "dropin":
        from auspex_helcaraxe.integrations.auspex import cnn_predict

        out = cnn_predict(z["i_d"], z["i_v"], z["f_d"], z["f_v"], networks=networks)
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf  # noqa: F401
        import keras

        from auspex_helcaraxe.plots import make_plots
        from auspex_helcaraxe.reflections import Observable

        out = []
        for kind, name in (("i", "Iobs"), ("f", "Fobs")):
            model = keras.models.load_model(os.path.join(h5, f"Helcaraxe_{name}_model.h5"), compile=False)
            d, v = z[f"{kind}_d"], z[f"{kind}_v"]
            plots = make_plots(Observable(kind.upper(), (), d, v, np.ones_like(v)))
            out.append(np.asarray(model(plots.inputs)).ravel())
    wall = time.perf_counter() - T0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"mode": mode, "wall_s": wall, "peak_rss_mib": rss, "n": int(sum(np.size(o) for o in out))}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--h5", required=True, help="directory with Helcaraxe_Iobs_model.h5 / Helcaraxe_Fobs_model.h5")
    p.add_argument("--networks", default=None, help="TFLite networks for the drop-in (default: shipped)")
    p.add_argument("--data", default=None, help="MTZ/mmCIF file (default: the simulated demo data set)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a.child[0], a.child[1], a.networks, a.h5)
        return
    import numpy as np

    from auspex_helcaraxe.readers import read

    with tempfile.TemporaryDirectory() as tmp:
        path = a.data
        if path is None:
            from auspex_helcaraxe.simulate import demo_dataset, write_mtz

            path = str(write_mtz(demo_dataset(), os.path.join(tmp, "demo.mtz")))
        refl = read(path)
        i, f = refl.observables["I"], refl.observables["F"]
        arrays = os.path.join(tmp, "arrays.npz")
        np.savez(arrays, i_d=i.d, i_v=i.values, f_d=f.d, f_v=f.values)
        rows = {}
        variants = [("tensorflow", a.networks), ("dropin", a.networks)]
        for _ in range(a.repeat):
            for mode, nets in variants:
                cmd = [sys.executable, __file__, "--h5", a.h5, "--child", mode, arrays]
                if nets:
                    cmd += ["--networks", nets]
                res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
                best = rows.get(mode)
                if best is None or res["wall_s"] < best["wall_s"]:
                    rows[mode] = res
    base = rows["tensorflow"]
    print(f"data: {os.path.basename(path)} ({len(i)} I, {len(f)} F observations); best of {a.repeat}")
    for mode, r in rows.items():
        print(f"{mode:11s} wall {r['wall_s']:6.2f} s ({r['wall_s'] / base['wall_s']:.2f}x)   "
              f"peak RSS {r['peak_rss_mib']:7.1f} MiB ({r['peak_rss_mib'] / base['peak_rss_mib']:.2f}x)")


if __name__ == "__main__":
    main()
