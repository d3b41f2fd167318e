"""Benchmark of the HTML survey page (not a test): size and browser load time for a PDB-sized survey.

Fills a fresh results store with ``--n`` (default 117 615) synthetic data sets through the store's
own API (``Store.write``, one transaction per data set as a scan writes them; ``--iced`` of them
flagged, a few failed), writes the survey page with ``auspex_helcaraxe.html.write_survey`` and opens
it in headless Chromium (Playwright, ``executable_path = shutil.which("chromium")``), printing the
page size and ``performance.timing`` (navigation start → DOMContentLoaded and → load).

Usage::

    python benchmarks/survey_page.py [--n 117615] [--iced 0.1] [--ranges 10] [--db PATH] [--keep DIR]

``--ranges``: covered ranges per (detector, observable) and data set (two detectors × I only, to keep
the store fill quick; the page's size depends on the flagged list, which is capped, not on this).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from auspex_helcaraxe.html import SURVEY_CAP, write_survey
from auspex_helcaraxe.ice_ranges import ice_ranges
from auspex_helcaraxe.scan.store import ScanConfig, Store

NETWORK = {"name": "helcaraxe_iobs", "version": "bench", "sha256": "0" * 64}


def fill(db: Path, n: int, iced_fraction: float, n_ranges: int, seed: int = 0) -> float:
    """Write ``n`` synthetic data sets into the store ``db``; returns the seconds it took."""
    rng = np.random.default_rng(seed)
    config = ScanConfig(detectors=("helcaraxe", "icefinder"), networks={"I": NETWORK}, threshold=0.5,
                        icefinder_cutoff=5.0)
    ranges = ice_ranges()[:n_ranges]
    t0 = time.perf_counter()
    with Store(db) as store:
        store.register(config)
        for i in range(n):
            name = f"/pdb/structure_factors/r{i:04x}sf.ent.gz"
            failed = i % 997 == 0
            iced = not failed and rng.random() < iced_fraction
            hit = sorted(set(rng.choice([r.index for r in ranges], size=rng.integers(1, 3)).tolist())) if iced else []
            record = {
                "file": name, "sha256": hashlib.sha256(name.encode()).hexdigest(), "size": 1_000_000,
                "mtime_ns": 0, "status": "failed" if failed else "ok",
                "error": f"{name}: corrupt MTZ file" if failed else None,
                "n_reflections": None if failed else int(rng.integers(5_000, 500_000)),
                "d_min": None if failed else float(rng.uniform(0.9, 3.5)),
                "space_group": None if failed else "P 21 21 21", "observables": None if failed else "I",
                "iced": None if failed else iced, "flagged_ranges": None if failed else hit,
                "results": [] if failed else [
                    {"detector": det, "observable": "I", "network": NETWORK if det == "helcaraxe" else None,
                     "ranges": [(r.index, r.d_max, r.d_min, "predicted", float(rng.random()), r.index in hit)
                                for r in ranges]}
                    for det in ("helcaraxe", "icefinder")],
                "timings": {"total": 1.0}, "worker": "bench",
            }
            store.write(record, config)
    return time.perf_counter() - t0


def load_time(index: Path) -> dict[str, float]:
    """Open ``index`` in headless Chromium; milliseconds to DOMContentLoaded and to load."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(index.resolve().as_uri(), wait_until="load")
        t = page.evaluate("(() => { const t = performance.timing; return {dom: t.domContentLoadedEventEnd - "
                          "t.navigationStart, load: t.loadEventEnd - t.navigationStart}; })()")
        rows = page.locator("#flagged tbody tr").count()
        browser.close()
    return {"dom_ms": t["dom"], "load_ms": t["load"], "flagged_rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=117_615)
    ap.add_argument("--iced", type=float, default=0.1, help="fraction of data sets flagged (default 0.1)")
    ap.add_argument("--ranges", type=int, default=10)
    ap.add_argument("--cap", type=int, default=SURVEY_CAP)
    ap.add_argument("--db", type=Path, default=None, help="reuse this store (filled if it does not exist)")
    ap.add_argument("--keep", type=Path, default=None, help="write the page here (default: a temp dir)")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="helcaraxe-survey-page-"))
    db = args.db or tmp / "survey.sqlite"
    if not db.exists():
        print(f"filling {db} with {args.n} data sets ...", flush=True)
        print(f"store fill: {fill(db, args.n, args.iced, args.ranges):.1f} s")
    out = args.keep or tmp / "report"
    t0 = time.perf_counter()
    index = write_survey(db, out, cap=args.cap)
    t_write = time.perf_counter() - t0
    pages = list((out / "datasets").glob("*.html"))
    print(f"write_survey: {t_write:.2f} s; index.html {index.stat().st_size / 1e6:.2f} MB; "
          f"{len(pages)} data-set pages, {sum(p.stat().st_size for p in pages) / 1e6:.1f} MB together")
    if shutil.which("chromium") is None:
        print("no chromium on PATH: load time not measured")
        return 0
    t = load_time(index)
    print(f"browser: DOMContentLoaded {t['dom_ms']} ms, load {t['load_ms']} ms; {t['flagged_rows']} flagged rows listed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
