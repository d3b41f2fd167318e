"""Time the simulator (not a test).

    python benchmarks/simulate.py [--n 300] [--seed 1]

Wall times depend on the machine's load (the CPU time is printed as well). Reports: ``demo_dataset`` (median of 7), ``simulate_dataset`` per data set (median and mean over
``--n`` random data sets, with the median reflection count), the stages of one
``make_training_set`` data set on average (simulation, plots), and ``make_training_set`` end to end
per data set and per plot, for F.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from auspex_helcaraxe.plots import make_plots
from auspex_helcaraxe.simulate import demo_dataset, make_training_set, simulate_dataset
from auspex_helcaraxe.simulate.ice import range_of
from auspex_helcaraxe.simulate.trainset import TRAINING_MAX_REFLECTIONS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    demo_dataset()
    t = []
    for _ in range(7):
        t0 = time.perf_counter()
        ds = demo_dataset()
        t.append(time.perf_counter() - t0)
    print(f"demo_dataset: {statistics.median(t) * 1e3:.1f} ms ({ds.reflections.n_reflections} reflections)")
    rng = np.random.default_rng(args.seed)
    sim, plot, counts = [], [], []
    for _ in range(args.n):
        t0 = time.perf_counter()
        ds = simulate_dataset(rng, max_reflections=TRAINING_MAX_REFLECTIONS, ice={"probability": 0.85})
        t1 = time.perf_counter()
        obs = ds.reflections.observables["F"]
        if (range_of(obs.d) > 0).any():  # as make_training_set: skip data sets with no reflection in any range
            make_plots(obs)
        t2 = time.perf_counter()
        sim.append(t1 - t0), plot.append(t2 - t1), counts.append(ds.reflections.n_reflections)
    print(f"simulate_dataset: median {statistics.median(sim) * 1e3:.1f} ms, mean {statistics.mean(sim) * 1e3:.1f} ms; "
          f"make_plots(F): mean {statistics.mean(plot) * 1e3:.1f} ms; reflections median {int(np.median(counts))}, "
          f"p90 {int(np.percentile(counts, 90))}")
    for label, kw in (("unbalanced", {"target_iced_fraction": None}), ("balanced 40 %", {})):
        t0, c0 = time.perf_counter(), time.process_time()
        _, y, _, _ = make_training_set(args.n, args.seed, "F", **kw)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        print(f"make_training_set(F, {label}): {dt / args.n * 1e3:.1f} ms wall, {dc / args.n * 1e3:.1f} ms CPU per data "
              f"set; {len(y) / args.n:.1f} plots per data set, {y.mean():.1%} iced")


if __name__ == "__main__":
    main()
