"""Time ``icefinder.score`` per observable on the real data sets (not a test).

    python benchmarks/icefinder.py [--shared ../shared] [--repeat 7] [--baseline] [--against REF --rounds 3]

Reports the median over ``--repeat`` calls per observable (file already read), then the median and
maximum over all observables, and the time per 100 000 reflections of the largest ones.
``--baseline`` also times a straightforward per-bin / per-window loop transcription of the same
algorithm (ICEFINDER.md) on the same data, for comparison. ``--against REF`` times this tree and a
``git worktree`` of REF (e.g. the commit before a change) in alternating rounds of separate processes
(``PYTHONPATH`` set to each tree; files read by each side's own reader) and prints per-observable
ratios, this tree / REF.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

from _timing import ROOT, baseline_worktree, median_time

from auspex_helcaraxe import icefinder
from auspex_helcaraxe.errors import InputError
from auspex_helcaraxe.ice_ranges import ice_ranges
try:  # --against a tree from before the readers package: reflections.read there
    from auspex_helcaraxe.reflections import read
except ImportError:
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
    parser.add_argument("--against", default=None, metavar="REF", help="A/B against a git worktree of REF")
    parser.add_argument("--rounds", type=int, default=3, help="with --against: alternating rounds per side")
    parser.add_argument("--emit-json", action="store_true", help=argparse.SUPPRESS)  # child of --against
    args = parser.parse_args(argv)
    if args.against:
        return _against(args)
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
            if args.emit_json:
                continue
            print(f"{path.name:45s} {kind} {len(obs):8d} refl  score {t * 1e3:7.2f} ms"
                  + (f"  loop {base * 1e3:8.1f} ms" if args.baseline else ""))
    if args.emit_json:
        print(json.dumps({f"{r[0]} {r[1]}": [r[2], r[3]] for r in rows}))
        return 0
    t = [r[3] for r in rows]
    large = [r for r in rows if r[2] >= 50_000]
    if large:
        print("per 100 000 reflections (observables >= 50 k): "
              + ", ".join(f"{r[0]} {r[1]} {r[3] * 1e3 * 1e5 / r[2]:.2f} ms" for r in large))
    print(f"\n{len(rows)} observables: median {statistics.median(t) * 1e3:.2f} ms, max {max(t) * 1e3:.2f} ms per score()")
    if args.baseline:
        b = [r[4] for r in rows]
        print(f"loop baseline: median {statistics.median(b) * 1e3:.1f} ms, max {max(b) * 1e3:.1f} ms")
    return 0


def _against(args) -> int:
    """Alternating rounds of this tree and a worktree of ``args.against``, each in its own process."""
    with baseline_worktree(args.against) as tree:
        sides: dict[str, list[dict]] = {"this tree": [], args.against: []}
        for _ in range(args.rounds):
            for name, src in (("this tree", ROOT), (args.against, tree)):
                env = {**os.environ, "PYTHONPATH": str(src)}
                out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--shared", args.shared,
                                      "--repeat", str(args.repeat), "--emit-json"],
                                     env=env, check=True, capture_output=True, text=True).stdout
                sides[name].append(json.loads(out.strip().splitlines()[-1]))
    a, b = sides["this tree"], sides[args.against]
    keys = sorted(set(a[0]) & set(b[0]), key=lambda k: a[0][k][0])
    ratios = []
    for k in keys:
        ta = statistics.median(r[k][1] for r in a)
        tb = statistics.median(r[k][1] for r in b)
        ratios.append(ta / tb)
        print(f"{k:48s} {a[0][k][0]:8d} refl  this {ta * 1e3:7.2f} ms  {args.against} {tb * 1e3:7.2f} ms  "
              f"ratio {ta / tb:.2f}")
    print(f"\n{len(keys)} observables, {args.rounds} alternating rounds: ratio this/{args.against} "
          f"median {statistics.median(ratios):.2f}, max {max(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
