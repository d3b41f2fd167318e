"""Time ``icefinder.score`` per observable on the real data sets (not a test).

    python benchmarks/icefinder.py [--shared ../shared] [--repeat 7] [--baseline]

Reports the median over ``--repeat`` calls per observable (file already read), then the median and
maximum over all observables. ``--baseline`` also times a straightforward per-bin / per-window loop
transcription of the same algorithm (ICEFINDER.md) on the same data, for comparison.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from pathlib import Path

import numpy as np

from _timing import median_time

from auspex_helcaraxe import icefinder
from auspex_helcaraxe.errors import InputError
from auspex_helcaraxe.ice_ranges import ice_ranges
from auspex_helcaraxe.readers import read


def loop_baseline(obs) -> np.ndarray:
    """Per-bin masks and per-window Python loops (steps 1–5 only, enough to compare cost)."""
    d = np.asarray(obs.d, dtype=np.float32)
    b = np.floor((np.float32(1) / d) / np.float32(0.001))
    bins = np.unique(b)
    x, m = [], []
    for v in bins:
        sel = b == v
        x.append(np.mean(np.float32(1) / (d[sel] * d[sel])))
        o = obs.values[sel].astype(float)
        m.append(o.mean() / math.sqrt(o.var()) if o.var() > 0 else np.nan)
    x, m = np.array(x), np.array(m)
    ranges = np.array([(r.inv_d2_low, r.inv_d2_high) for r in ice_ranges()])
    ice = ((x[:, None] > ranges[:, 0]) & (x[:, None] < ranges[:, 1])).any(axis=1)
    est = np.full(m.size, np.nan)
    for i in range(m.size):
        w = [j for j in range(max(i - 5, 0), min(i + 6, m.size)) if np.isfinite(m[j]) and not ice[j]]
        if len(w) < 5 or not np.isfinite(m[i]):
            continue
        s = sorted(m[w])
        lo, hi = s[math.ceil(0.25 * (len(w) - 1))], s[math.floor(0.75 * (len(w) - 1))]
        sd = ((math.sqrt(x[i]) + 0.001) ** 2 - x[i]) * 2.5
        wt = np.exp(-0.5 * ((x[i] - x[w]) / sd) ** 2) * ((m[w] >= lo) & (m[w] <= hi))
        est[i] = (wt * m[w]).sum() / wt.sum() if wt.sum() else np.nan
    return est


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("HELCARAXE_SHARED", str(Path(__file__).resolve().parents[1].parent / "shared"))
    parser.add_argument("--shared", default=default)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--baseline", action="store_true")
    args = parser.parse_args(argv)
    files = sorted(p for p in (Path(args.shared) / "data" / "real").glob("*/*") if p.is_file() and p.suffix != ".tsv")
    rows = []
    for path in files:
        try:
            refl = read(path)
        except InputError:
            continue
        for kind, obs in refl.observables.items():
            try:
                t = median_time(lambda: icefinder.score(obs), args.repeat)
            except InputError:
                continue
            base = median_time(lambda: loop_baseline(obs), 1) if args.baseline else float("nan")
            rows.append((path.name, kind, len(obs), t, base))
            print(f"{path.name:45s} {kind} {len(obs):8d} refl  score {t * 1e3:7.2f} ms"
                  + (f"  loop {base * 1e3:8.1f} ms" if args.baseline else ""))
    t = [r[3] for r in rows]
    print(f"\n{len(rows)} observables: median {statistics.median(t) * 1e3:.2f} ms, max {max(t) * 1e3:.2f} ms per score()")
    if args.baseline:
        b = [r[4] for r in rows]
        print(f"loop baseline: median {statistics.median(b) * 1e3:.1f} ms, max {max(b) * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
