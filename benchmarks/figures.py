"""Whole-process time of ``helcaraxe check FILE --out DIR`` (figures, JSON and index.html), this tree
against a baseline checkout, in alternating A/B pairs (not a test).

    python benchmarks/figures.py [--shared ../shared] [--file PATH] [--baseline REF] [--pairs 10]
                                 [--format png] [--phases N]

A is this working tree, B a ``git worktree`` of ``--baseline`` (default: the merge-base of HEAD and
``main``), made in a temporary directory and removed afterwards. Each process is
``python -m auspex_helcaraxe.cli check FILE --out DIR -q`` with ``PYTHONPATH`` set to its tree, so both
use this interpreter and its packages; the process's wall time and its user + system CPU time (from
``os.wait4``) are taken. One warm-up run each, then A B A B …; the ratio is taken pair by pair, so a
drift in the machine's speed hits both sides of a pair. Also timed, for scale: A without ``--out``
(read + analysis + text summary, the floor the figures add to) and ``import matplotlib.figure,
matplotlib.backends.backend_agg`` on top of ``import numpy`` (what drawing anything costs first).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import ROOT, baseline_worktree

# One process, the steps of `helcaraxe check FILE --out DIR` timed in CPU ms (process_time, which a busy
# machine disturbs less than wall time): analysis (interpreter start to the JSON written), figures
# (draw_resolution_plots, matplotlib's import included) and page (write_check, Jinja2's included).
PHASES = """
import json, sys, time
from pathlib import Path
t = [time.process_time()]
from auspex_helcaraxe import report
from auspex_helcaraxe.host import Host
from auspex_helcaraxe.readers import read
host = Host()
analysis = host.analyse(read(sys.argv[1]))
out = Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
j = report.write_json(analysis, out / "r.json")
t.append(time.process_time())
from auspex_helcaraxe.figures import draw_resolution_plots
paths = draw_resolution_plots(analysis, host, out)
t.append(time.process_time())
from auspex_helcaraxe.html import write_check
write_check([{"file": sys.argv[1], "error": None, "report": json.loads(j.read_text()), "figures": paths}], out)
t.append(time.process_time())
print(json.dumps([1e3 * (b - a) for a, b in zip(t, t[1:])]))
"""


def run(cmd: list[str], tree: Path | None) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one process."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tree or ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} (PYTHONPATH={tree}) exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = os.environ.get("HELCARAXE_SHARED", str(ROOT.parent / "shared"))
    ap.add_argument("--shared", default=default)
    ap.add_argument("--file", default=None, help="data set (default SHARED/data/real/auspex/8g0s.mtz)")
    ap.add_argument("--baseline", default=None, help="git ref for B (default: merge-base of HEAD and main)")
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--format", default="png", choices=("png", "svg", "pdf"))
    ap.add_argument("--phases", type=int, default=0, metavar="N",
                    help="also time analysis / figures / page inside one process, N runs per tree (CPU ms)")
    args = ap.parse_args()
    data = Path(args.file or Path(args.shared) / "data" / "real" / "auspex" / "8g0s.mtz").resolve()
    if not data.is_file():
        raise SystemExit(f"{data}: no such file (give --file or --shared)")
    ref = args.baseline or git("merge-base", "HEAD", "main")
    commit = git("rev-parse", "--short", ref)

    with tempfile.TemporaryDirectory(prefix="helcaraxe-figbench-") as tmp, baseline_worktree(ref) as base:
        tmp = Path(tmp)

        def check(tree: Path, out: str | None) -> list[str]:
            cmd = [sys.executable, "-m", "auspex_helcaraxe.cli", "check", str(data), "-q"]
            return cmd + (["--out", str(tmp / out), "--format", args.format] if out else [])

        a_cmd, b_cmd, floor_cmd = check(ROOT, "a"), check(base, "b"), check(ROOT, None)
        imp = [sys.executable, "-c", "import numpy, matplotlib.figure, matplotlib.backends.backend_agg"]
        imp0 = [sys.executable, "-c", "import numpy"]
        for cmd, tree in ((a_cmd, ROOT), (b_cmd, base), (floor_cmd, ROOT), (imp, None), (imp0, None)):
            run(cmd, tree)  # warm-up: page cache, .pyc files
        a, b, floor, mpl = [], [], [], []
        for _ in range(args.pairs):
            a.append(run(a_cmd, ROOT))
            b.append(run(b_cmd, base))
            floor.append(run(floor_cmd, ROOT))
            m, n = run(imp, None), run(imp0, None)
            mpl.append((m[0] - n[0], m[1] - n[1]))
        phases: dict[str, list[list[float]]] = {"A": [], "B": []}
        for _ in range(args.phases):
            for side, tree in (("A", ROOT), ("B", base)):
                env = dict(os.environ, PYTHONPATH=str(tree))
                out = subprocess.run([sys.executable, "-c", PHASES, str(data), str(tmp / f"p{side}")], env=env,
                                     cwd=tree, capture_output=True, text=True, check=True).stdout
                phases[side].append(json.loads(out.strip().splitlines()[-1]))

    def med(xs, i=0):
        return statistics.median(x[i] for x in xs)

    ratio_wall = statistics.median(x[0] / y[0] for x, y in zip(a, b))
    ratio_cpu = statistics.median(x[1] / y[1] for x, y in zip(a, b))
    print(f"helcaraxe check {data.name} --out DIR --format {args.format}: {args.pairs} A/B pairs, "
          f"A = this tree ({git('rev-parse', '--short', 'HEAD')}{'+' if git('status', '--porcelain') else ''}), "
          f"B = {args.baseline or 'merge-base with main'} ({commit}); "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'':34} {'wall s':>8} {'cpu s':>8}")
    print(f"{'A (this tree)':34} {med(a):8.3f} {med(a, 1):8.3f}")
    print(f"{'B (baseline)':34} {med(b):8.3f} {med(b, 1):8.3f}")
    print(f"{'A/B (median of pair ratios)':34} {ratio_wall:8.3f} {ratio_cpu:8.3f}")
    print(f"{'A without --out':34} {med(floor):8.3f} {med(floor, 1):8.3f}")
    print(f"{'import matplotlib.figure + agg':34} {med(mpl):8.3f} {med(mpl, 1):8.3f}  (over import numpy alone)")
    print(f"{'figures + page, A (A - no --out)':34} {med(a) - med(floor):8.3f} {med(a, 1) - med(floor, 1):8.3f}")
    print(f"{'figures + page, B (B - A no --out)':34} {med(b) - med(floor):8.3f} {med(b, 1) - med(floor, 1):8.3f}"
          "  (the analysis path is the same in both)")
    if args.phases:
        print(f"inside one process, CPU ms, median of {args.phases}:  analysis  figures  page")
        for side in ("A", "B"):
            cols = [statistics.median(r[i] for r in phases[side]) for i in range(3)]
            print(f"  {side} {'this tree' if side == 'A' else 'baseline ':9}" + "".join(f"{c:9.0f}" for c in cols))
    if os.getloadavg()[0] > (os.cpu_count() or 1) * 0.5:
        print("note: the machine was busy; wall times spread, the CPU times and the ratios hold better")


if __name__ == "__main__":
    main()
