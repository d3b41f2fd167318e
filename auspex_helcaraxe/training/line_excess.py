"""Is a flagged real plot ice? The data at the ice lines against the data beside them.

    python -m auspex_helcaraxe.training.line_excess [--real DIR] [--json OUT]

Ice diffracts only at its lines (Ih and Ic, ``simulate.ice_lines``), so a ring raises (or, where it was
over-subtracted, lowers) the observations within a few thousandths of an ångström of a line and
leaves the rest of the range alone. For each covered ice range of each ``clean`` or ``ice`` real
data set (labels.tsv) and each observable: the residuals of the observations about a straight line
in 1/d² across the range, the mean residual within ``HALF_WIDTH`` Å of the range's brightest line
minus the mean elsewhere in the range, in units of its standard error (a matched-filter z). A range
with an ice ring has |z| well above the spread of z over clean ranges; a network flag on a plot with
z near 0 rests on something other than a ring at the line. A check of labels, not a detector:
weak rings (≈ 0.15× the local mean) sit at z ≈ 1, inside the clean spread.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..ice_ranges import IceRange, ice_ranges
from ..reflections import Observable
from ..simulate.ice_lines import ice_lines
from . import data as tdata

HALF_WIDTH = 0.006  # Å around the line
MIN_IN_RANGE = 100
MIN_IN_WINDOW = 10


def line_z(obs: Observable, rng: IceRange, half_width: float = HALF_WIDTH) -> tuple[float, float] | None:
    """``(line d, z)`` for the brightest ice line inside ``rng``, or None when the range holds too few
    observations (or no line)."""
    d = np.asarray(obs.d, np.float64)
    v = np.asarray(obs.values, np.float64)
    sel = (d >= rng.d_min) & (d <= rng.d_max) & np.isfinite(v)
    lines = [ln for ln in ice_lines() if rng.d_min <= ln.d <= rng.d_max]
    if sel.sum() < MIN_IN_RANGE or not lines:
        return None
    line = max(lines, key=lambda ln: ln.intensity)
    dd, vv = d[sel], v[sel]
    x = 1.0 / dd**2
    a = np.vstack([np.ones_like(x), x - x.mean()]).T
    res = vv - a @ np.linalg.lstsq(a, vv, rcond=None)[0]
    win = np.abs(dd - line.d) < half_width
    if win.sum() < MIN_IN_WINDOW or (~win).sum() < MIN_IN_WINDOW:
        return None
    se = np.std(res[~win]) / np.sqrt(win.sum())
    return line.d, float((res[win].mean() - res[~win].mean()) / se) if se > 0 else 0.0


def real_line_z(real_dir: Path, labels: tuple[str, ...] = ("clean", "ice")) -> list[dict]:
    """One row per (data set, observable, covered range) of the real data sets with these labels."""
    out = []
    for row, refl in tdata.read_real(real_dir, labels):
        for kind, obs in refl.observables.items():
            for rng in ice_ranges():
                if not rng.covered_by(float(np.min(obs.d))):
                    continue
                z = line_z(obs, rng)
                if z is not None:
                    out.append({"dataset": row.relpath, "label": row.label, "kind": kind, "range": rng.index,
                                "line_d": z[0], "z": round(z[1], 3)})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m auspex_helcaraxe.training.line_excess", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    real_dir = tdata.require_real_dir(ap, a.real)
    rows = real_line_z(real_dir)
    clean = np.array([r["z"] for r in rows if r["label"] == "clean"])
    print(f"clean ranges: {clean.size}, z mean {clean.mean():+.2f}, sd {clean.std():.2f}, "
          f"|z| >= 3: {int(np.sum(np.abs(clean) >= 3))}")
    for r in sorted(rows, key=lambda r: -abs(r["z"]))[:15]:
        print(f"  {r['dataset']:55s} {r['label']:6s} {r['kind']}{r['range']:<3d} line {r['line_d']:.4f} Å  z {r['z']:+.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
