"""Benchmark of ``helcaraxe scan`` (not a test): throughput on generated data sets of realistic sizes.

Generates merged MTZ files (P 2₁2₁2₁, Wilson-like intensities) with 10k–500k reflections (log-spaced,
resolution growing with size as in the PDB: 2.5 Å at 10k, 1.2 Å at 500k), then

1. scans them with 1 and 2 worker processes into fresh SQLite stores: wall time (process start-up
   included), data sets per second, and the extrapolated wall time for 117 615 data sets;
2. times each stage in this process, per data set: hash, read, Helcaraxe plots, Helcaraxe network,
   Icefinder, store write — where the time goes.

Usage::

    python benchmarks/scan.py [--networks DIR] [--n 24] [--min 10000] [--max 500000] [--workers 1 2]
    python benchmarks/scan.py --pdb-tree 120 [--workers 1 2]   # what the PDB serves (benchmarks/pdbtree.py)
    python benchmarks/scan.py --pdb-tree 60 --floor            # only gunzip + gemmi's parse: the reader's floor
    python benchmarks/scan.py --rss 1000000                     # peak RSS of a worker on one such entry

``--pdb-tree N`` writes N gzipped sf-mmCIF entries in PDB layout with the PDB's spread of sizes (the
distribution and its sources are in ``benchmarks/pdbtree.py``) plus gzipped copies of the real sf-mmCIF
files of /work/shared/data/real, all into a temporary tree, and measures the scan on it end to end
(discovery, hashing, decompression, parsing, both detectors, store), per stage and with each worker
count, for the current code and the path before issue 11 (``HELCARAXE_SCAN_OLD_READ=1``: the file hashed
in chunks, then read again by gemmi) in the same run, with ratios.

Without ``--networks`` the shipped networks are used (if none are shipped, Helcaraxe predicts nothing
and the network column stays 0: pass the published ones as a stand-in).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PDB_SURVEY = 117_615


def write_dataset(path: Path, n_reflections: int, seed: int) -> int:
    """A merged MTZ from the project's simulator with about ``n_reflections`` unique reflections
    (ice as the simulator draws it); returns the exact number."""
    from auspex_helcaraxe.simulate import simulate_dataset, write_mtz

    d_min = 2.5 * (n_reflections / 1e4) ** -0.19
    volume = 1.91 * n_reflections * d_min**3  # P 21 21 21: N ≈ 4.19 V / (8 d³)
    a = (volume / (1.1 * 1.25)) ** (1 / 3)
    ds = simulate_dataset(seed, space_group="P 21 21 21", cell=(a, 1.1 * a, 1.25 * a, 90.0, 90.0, 90.0),
                          d_min=d_min, max_reflections=2 * n_reflections, completeness=1.0, missing_cone_deg=0.0)
    write_mtz(ds, path)
    return ds.reflections.n_reflections


STAGES = ("hash", "read", "plots", "network", "icefinder", "store")


def stage_times(files: list[Path], options, db: Path, old: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Seconds per data set (rows) and stage (columns, :data:`STAGES`), measured in this process with
    warm networks, and the CPU seconds per data set (all stages)."""
    from auspex_helcaraxe.host import Host
    from auspex_helcaraxe.network import load_networks
    from auspex_helcaraxe.plots import make_plots
    from auspex_helcaraxe.readers import read
    from auspex_helcaraxe.scan.runner import scan_config
    from auspex_helcaraxe.scan.store import Store
    from auspex_helcaraxe.scan.worker import Job, analyse_file, file_sha256_streamed, read_and_hash

    host = Host()
    nets = load_networks(options.networks)
    config = scan_config("both", options)
    job = Job(detectors=config.detectors, options=options)
    analyse_file(str(files[0]), job)  # warm-up: interpreters created, imports done
    times = np.zeros((len(files), len(STAGES)))
    cpu = np.zeros(len(files))
    with Store(db) as store:
        store.register(config)
        for k, path in enumerate(files):
            row = dict.fromkeys(STAGES, 0.0)
            c0 = time.process_time()
            t = time.perf_counter()
            if old:  # before issue 11: hash in chunks, gemmi reads the file again
                file_sha256_streamed(str(path))
                data = None
            else:
                data = read_and_hash(str(path))[0]
            row["hash"] += time.perf_counter() - t
            t = time.perf_counter()
            refl = read(path, data=data)
            row["read"] += time.perf_counter() - t
            for kind, obs in refl.observables.items():
                t = time.perf_counter()
                plots = make_plots(obs)
                inputs = plots.inputs[plots.predictable]
                row["plots"] += time.perf_counter() - t
                if kind in nets and len(inputs):
                    t = time.perf_counter()
                    nets[kind].predict(inputs)
                    row["network"] += time.perf_counter() - t
            t = time.perf_counter()
            host.analyse(refl, detectors="icefinder", options=options)
            row["icefinder"] += time.perf_counter() - t
            c1 = time.process_time()
            record = analyse_file(str(path), job)  # not timed: the store needs a real record
            c2 = time.process_time()
            t = time.perf_counter()
            store.write(record, config)
            row["store"] += time.perf_counter() - t
            cpu[k] = (c1 - c0) + (time.process_time() - c2)
            times[k] = [row[s] for s in STAGES]
    return times, cpu


def print_stages(times: np.ndarray, cpu: np.ndarray, counts: list[int]) -> None:
    mean = times.mean(axis=0)
    total = mean.sum()
    print("\nwhere the time goes (one process, warm, mean per data set):")
    for name, secs in zip(STAGES, mean):
        print(f"  {name:<10} {secs * 1e3:8.1f} ms  {secs / total:6.1%}")
    print(f"  {'sum':<10} {total * 1e3:8.1f} ms wall, {cpu.mean() * 1e3:.1f} ms CPU -> {1 / total:.2f} data sets/s "
          f"in one process")
    if not counts:
        return
    counts_arr = np.asarray(counts)
    edges = [0, 30_000, 100_000, 300_000, np.inf]
    print("\n  by size (ms per data set):  n  " + "  ".join(f"{s:>9}" for s in STAGES) + "      sum")
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (counts_arr >= lo) & (counts_arr < hi)
        if sel.any():
            m = times[sel].mean(axis=0) * 1e3
            label = f"{lo / 1e3:.0f}k-{hi / 1e3:.0f}k" if np.isfinite(hi) else f">{lo / 1e3:.0f}k"
            print(f"  {label:>24} {sel.sum():3d}  " + "  ".join(f"{v:9.1f}" for v in m) + f"  {m.sum():7.1f}")


def _worker_seconds(db: Path) -> float:
    import sqlite3

    con = sqlite3.connect(db)
    (mean,) = con.execute("SELECT AVG(t_total) FROM datasets WHERE status='ok'").fetchone()
    con.close()
    return float(mean or 0.0)


def peak_rss(path: Path) -> float:
    """Peak resident set size (MB, VmHWM) of a fresh process that analyses ``path`` as a scan worker does
    (not ru_maxrss: Linux keeps the parent's peak across fork + exec)."""
    import subprocess

    code = ("import resource, sys\n"
            "from auspex_helcaraxe.scan.runner import scan_config\n"
            "from auspex_helcaraxe.results import AnalysisOptions\n"
            "from auspex_helcaraxe.scan.worker import Job, analyse_file, init_worker\n"
            "o = AnalysisOptions(); job = Job(detectors=scan_config('both', o).detectors, options=o)\n"
            "init_worker(job); r = analyse_file(sys.argv[1], job)\n"
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
            "print(r['status'], r['n_reflections'], r['error'], int(hwm) / 1024)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    line = out.stdout.strip().splitlines()[-1]
    print(f"  {path.name}: {line}")
    return float(line.split()[-1])


def read_floor(files: list[Path], rounds: int = 3) -> np.ndarray:
    """Seconds per file (best of ``rounds``) of gunzip + ``gemmi.cif.read_string`` alone: the least any
    reader built on gemmi spends before it sees a value (no column choice, no arrays, no detector)."""
    import zlib

    import gemmi

    best = np.full(len(files), np.inf)
    for _ in range(rounds):
        for k, path in enumerate(files):
            raw = path.read_bytes()
            t = time.perf_counter()
            text = zlib.decompress(raw, 47) if raw[:2] == b"\x1f\x8b" else raw
            gemmi.cif.read_string(text)
            best[k] = min(best[k], time.perf_counter() - t)
    return best


def print_floor(files: list[Path], cores: int = 2) -> None:
    floor = read_floor(files)
    print(f"\nreading floor (gunzip + gemmi CIF parse only, best of 3, one process): {floor.mean() * 1e3:.1f} ms per "
          f"data set -> {PDB_SURVEY} entries on {cores} fully used cores: {PDB_SURVEY * floor.mean() / cores / 60:.1f} min "
          f"before any column is chosen or detector run")


def pdb_tree(args, options) -> int:
    """The ``--pdb-tree`` mode: see the module docstring."""
    sys.path.insert(0, str(Path(__file__).parent))
    import pdbtree
    from auspex_helcaraxe.scan import run_scan
    from auspex_helcaraxe.scan.discovery import discover

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.dir or tmp) / "pdb"
        t = time.perf_counter()
        sizes = pdbtree.draw_sizes(args.pdb_tree, seed=11)
        files = [pdbtree.write_entry(root, k, int(n), seed=1000 + k) for k, n in enumerate(sizes)]
        files += pdbtree.copy_real(root)
        mb = sum(p.stat().st_size for p in files) / 1e6
        print(f"pdb tree: {args.pdb_tree} simulated + {len(files) - args.pdb_tree} real gzipped sf-mmCIF, "
              f"drawn sizes median {np.median(sizes):.0f}, mean {sizes.mean():.0f}, max {sizes.max()}; "
              f"{mb:.0f} MB gzipped; written in {time.perf_counter() - t:.0f} s")
        print(f"cpus: {os.cpu_count()}, python {sys.version.split()[0]}")
        t = time.perf_counter()
        n_found = sum(1 for _ in discover([root]))
        print(f"discovery: {n_found} files in {(time.perf_counter() - t) * 1e3:.0f} ms")
        print_floor(files)
        if args.floor:
            return 0
        rows = {}
        for label, old in (("before", True), ("after", False)):
            times, cpu = stage_times(files, options, root.parent / f"stages_{label}.db", old=old)
            rows[label] = times.mean(axis=0)
            print(f"\n[{label}]", end="")
            print_stages(times, cpu, [])
        print("\nper stage, ms per data set (one process, warm):  " + "  ".join(f"{s:>9}" for s in STAGES) + "      sum")
        for label in rows:
            print(f"  {label:<8}" + "  ".join(f"{v * 1e3:9.1f}" for v in rows[label]) + f"  {rows[label].sum() * 1e3:7.1f}")
        ratio = rows["before"] / np.maximum(rows["after"], 1e-9)
        print(f"  {'ratio':<8}" + "  ".join(f"{v:9.2f}" for v in ratio) + f"  {rows['before'].sum() / rows['after'].sum():7.2f}")
        print("\nscan end to end (discovery .. store, detectors both, worker start-up included in wall):")
        for workers in args.workers:
            for label, old in (("before", True), ("after", False)):
                if old:
                    os.environ["HELCARAXE_SCAN_OLD_READ"] = "1"
                else:
                    os.environ.pop("HELCARAXE_SCAN_OLD_READ", None)
                db = root.parent / f"scan_{label}_{workers}.db"
                report = run_scan([root], db, workers=workers, options=options, progress=False)
                steady = report.steady_rate
                print(f"  workers={workers} {label:<6}: {report.done} done, {report.failed} failed in {report.wall_s:.1f} s "
                      f"-> {report.rate:.1f}/s overall, {steady:.1f}/s after start-up; worker time "
                      f"{_worker_seconds(db) * 1e3:.1f} ms/data set; {PDB_SURVEY} entries: {PDB_SURVEY / steady / 60:.1f} min")
                if report.failures:
                    print(report.failure_table())
        os.environ.pop("HELCARAXE_SCAN_OLD_READ", None)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", help="network directory (default: the shipped networks)")
    parser.add_argument("--n", type=int, default=24, help="data sets to generate")
    parser.add_argument("--min", type=int, default=10_000, help="smallest data set (reflections)")
    parser.add_argument("--max", type=int, default=500_000, help="largest data set (reflections)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dir", help="where to write the data sets (default: a temporary directory)")
    parser.add_argument("--pdb-tree", type=int, metavar="N", help="PDB-layout tree of N gzipped sf-mmCIF (+ the real ones)")
    parser.add_argument("--floor", action="store_true", help="with --pdb-tree: only the reading floor (gunzip + gemmi parse)")
    parser.add_argument("--rss", type=int, metavar="N", help="peak worker RSS on one gzipped sf-mmCIF of N reflections")
    args = parser.parse_args(argv)
    if args.rss:
        sys.path.insert(0, str(Path(__file__).parent))
        import pdbtree

        with tempfile.TemporaryDirectory() as tmp:
            for label in ("before", "after"):
                if label == "before":
                    os.environ["HELCARAXE_SCAN_OLD_READ"] = "1"
                else:
                    os.environ.pop("HELCARAXE_SCAN_OLD_READ", None)
                path = pdbtree.write_entry(Path(tmp), 1, args.rss, seed=7)
                print(f"peak RSS [{label}] ({path.stat().st_size / 1e6:.0f} MB gzipped):")
                peak_rss(path)
        return 0

    from auspex_helcaraxe.network import load_networks
    from auspex_helcaraxe.results import AnalysisOptions
    from auspex_helcaraxe.scan import run_scan

    options = AnalysisOptions(networks=args.networks)
    if args.pdb_tree:
        return pdb_tree(args, options)
    nets = load_networks(args.networks)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.dir or tmp)
        data = work / "data"
        data.mkdir(parents=True, exist_ok=True)
        sizes = np.geomspace(args.min, args.max, args.n).round().astype(int)
        t = time.perf_counter()
        files, counts = [], []
        for k, n in enumerate(sizes):
            path = data / f"bench_{k:03d}_{n}.mtz"
            counts.append(write_dataset(path, int(n), seed=k))
            files.append(path)
        size_mb = sum(p.stat().st_size for p in files) / 1e6
        print(f"generated {len(files)} data sets, {min(counts)}–{max(counts)} reflections "
              f"(mean {np.mean(counts):.0f}, median {np.median(counts):.0f}), {size_mb:.0f} MB, "
              f"{time.perf_counter() - t:.1f} s")
        print(f"networks: {', '.join(f'{k}={n.card.name} ({n.card.sha256[:12]})' for k, n in nets.items()) or 'none'}")
        print(f"cpus: {os.cpu_count()}, python {sys.version.split()[0]}")

        times, cpu = stage_times(files, options, work / "stages.db")
        print_stages(times, cpu, counts)

        print("\nscan throughput (detectors: both; wall time includes starting the worker processes):")
        for workers in args.workers:
            db = work / f"scan_{workers}.db"
            report = run_scan([data], db, workers=workers, options=options, progress=False)
            rate, steady = report.rate, report.steady_rate
            print(f"  workers={workers}: {report.done} done, {report.failed} failed in {report.wall_s:.1f} s "
                  f"(first stored after {report.first_result_s or 0:.1f} s) -> {rate:.2f} data sets/s overall, "
                  f"{steady:.2f} after start-up; {PDB_SURVEY} data sets: {PDB_SURVEY / steady / 3600:.2f} h")
            busy = _worker_seconds(db)
            print(f"             worker time per data set {busy * 1e3:.0f} ms (mean of the stored t_total; "
                  f"above the one-process sum when workers compete for the cores)")
            if report.failures:
                print(report.failure_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
