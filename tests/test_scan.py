"""Survey engine: discovery, results store, resume after a kill, worker crashes, Dask, Parquet, summary."""

from __future__ import annotations

import csv
import gzip
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import gemmi
import pytest

from auspex_helcaraxe.host import Host
from auspex_helcaraxe.readers import read
from auspex_helcaraxe.results import AnalysisOptions
from auspex_helcaraxe.scan import Store, discover, entry_id, export_parquet, run_scan, summary
from auspex_helcaraxe.scan.runner import CRASH_REASON, scan_config

TESTS = Path(__file__).resolve().parent
PLUGIN = "scan_plugins"  # tests/scan_plugins.py: the "crashtest" detector


def write_mtz(path: Path, seed: int, d_min: float = 1.8, a: float = 30.0) -> Path:
    """A small merged MTZ from the project's simulator (P 21 21 21, no ice; IMEAN/SIGIMEAN/F/SIGF)."""
    from auspex_helcaraxe.simulate import simulate_dataset
    from auspex_helcaraxe.simulate import write_mtz as write_simulated

    ds = simulate_dataset(seed, space_group="P 21 21 21", cell=(a, a * 1.1, a * 1.25, 90.0, 90.0, 90.0),
                          d_min=d_min, ice=False, hard_negatives=[], hard_negative_params={})
    return write_simulated(ds, path)


def write_corrupt(directory: Path) -> dict[str, Path]:
    """A truncated MTZ and a text file named .mtz."""
    good = write_mtz(directory / "tmp_full.mtz", 99)
    truncated = directory / "truncated.mtz"
    truncated.write_bytes(good.read_bytes()[:5000])
    good.unlink()
    text = directory / "notes.mtz"
    text.write_text("this is not a reflection file\n")
    return {"truncated": truncated, "text": text}


def rows(db: Path) -> tuple[list[tuple], list[tuple]]:
    """Data set rows (without timings, worker, ids) and range rows keyed by sha256, both sorted."""
    con = sqlite3.connect(db)
    ds = con.execute(
        "SELECT file, sha256, config, status, error, iced, flagged_ranges, n_reflections, d_min, network_I_sha256, "
        "network_F_sha256 FROM datasets ORDER BY file, config").fetchall()
    rg = con.execute(
        "SELECT d.sha256, d.config, r.detector, r.observable, r.range_index, r.d_max, r.d_min, r.status, r.value, "
        "r.flagged FROM ranges r JOIN datasets d ON d.id = r.dataset_id ORDER BY 1, 2, 3, 4, 5").fetchall()
    con.close()
    return ds, rg


@pytest.fixture(scope="module")
def survey(tmp_path_factory) -> Path:
    """Five good data sets in the PDB's namings (MTZ, sf-mmCIF, gzipped, r1abcsf.ent.gz), nested, plus two corrupt."""
    root = tmp_path_factory.mktemp("survey")
    (root / "sub" / "deeper").mkdir(parents=True)
    write_mtz(root / "1aaa.mtz", 1)
    write_mtz(root / "sub" / "2bbb.mtz", 2, d_min=1.5)
    cif = gemmi.MtzToCif().write_cif_to_string(gemmi.read_mtz_file(str(write_mtz(root / "x.mtz", 3))))
    (root / "x.mtz").unlink()
    (root / "sub" / "3ccc-sf.cif").write_text(cif)
    cif4 = gemmi.MtzToCif().write_cif_to_string(gemmi.read_mtz_file(str(write_mtz(root / "y.mtz", 4, d_min=2.2))))
    (root / "y.mtz").unlink()
    with gzip.open(root / "sub" / "deeper" / "r4dddsf.ent.gz", "wt") as fh:
        fh.write(cif4)
    write_mtz(root / "sub" / "deeper" / "5eee.mtz", 5)
    (root / "README.md").write_text("not picked up by the walk")
    write_corrupt(root / "sub")
    return root


GOOD = 5
CORRUPT = 2


def test_discover_walks_directories_and_list_files(tmp_path, survey):
    found = discover([survey])
    names = sorted(Path(p).name for p in found)
    assert names == sorted(["1aaa.mtz", "2bbb.mtz", "3ccc-sf.cif", "r4dddsf.ent.gz", "5eee.mtz",
                            "truncated.mtz", "notes.mtz"])
    assert all(os.path.isabs(p) for p in found)
    lst = tmp_path / "paths.txt"
    inner = tmp_path / "inner.lst"
    inner.write_text(f"{survey / 'sub' / 'deeper'}\n")
    lst.write_text(f"# a survey\n\n{survey / '1aaa.mtz'}\n@{inner.name}\n{survey / '1aaa.mtz'}\nmissing.mtz\n")
    listed = discover([lst])
    assert [Path(p).name for p in listed] == ["1aaa.mtz", "5eee.mtz", "r4dddsf.ent.gz", "missing.mtz"]
    assert listed[-1] == str(tmp_path / "missing.mtz")  # relative to the list file


@pytest.mark.parametrize("name, expected", [
    ("r1abcsf.ent.gz", "1abc"), ("R1ABCSF.ENT", "1abc"), ("1abc-sf.cif.gz", "1abc"), ("1ABC.mtz", "1abc"),
    ("6xyz_refmac.mtz", "6xyz_refmac"), ("pdb_00001abc-sf.cif", "pdb_00001abc"),
])
def test_entry_id(name, expected):
    assert entry_id(f"/data/{name}") == expected


def test_serial_scan_rows_match_the_host_and_resume_skips_everything(tmp_path, survey):
    db = tmp_path / "scan.db"
    report = run_scan([survey], db, workers=0, progress=False)
    assert (report.found, report.done, report.failed, report.skipped) == (GOOD + CORRUPT, GOOD, CORRUPT, 0)
    failed = dict(report.failures)
    assert set(Path(f).name for f in failed) == {"truncated.mtz", "notes.mtz"}
    assert all(reason and "\n" not in reason for reason in failed.values())
    assert "truncated.mtz" in report.failure_table() and "notes.mtz" in report.failure_table()

    ds, rg = rows(db)
    assert len(ds) == GOOD + CORRUPT
    # Every good data set: one row per detector, observable and range, as the host reports them.
    host = Host()
    con = sqlite3.connect(db)
    for path in discover([survey]):
        if Path(path).name in ("truncated.mtz", "notes.mtz"):
            continue
        analysis = host.analyse(read(path), detectors="both")
        got = con.execute(
            "SELECT r.detector, r.observable, r.range_index, r.status, r.value, r.flagged, d.iced, d.flagged_ranges "
            "FROM ranges r JOIN datasets d ON d.id = r.dataset_id WHERE d.file=? ORDER BY 1, 2, 3", (path,)).fetchall()
        expected = sorted(
            (res.detector, res.observable, rr.index, rr.status, rr.value, int(rr.flagged))
            for res in analysis.results for rr in res.ranges
        )
        assert [g[:6] for g in got] == expected
        assert {g[6] for g in got} == {int(analysis.iced)}
        assert {g[7] for g in got} == {",".join(map(str, analysis.flagged_ranges))}
    con.close()

    again = run_scan([survey], db, workers=0, progress=False)
    assert (again.done, again.failed, again.skipped) == (0, 0, GOOD + CORRUPT)
    assert rows(db) == (ds, rg)


def test_duplicates_settings_and_retry(tmp_path, survey):
    data = tmp_path / "data"
    shutil.copytree(survey, data)
    shutil.copy(data / "1aaa.mtz", data / "copy_of_1aaa.mtz")
    db = tmp_path / "scan.db"
    first = run_scan([data], db, workers=0, progress=False, detectors="icefinder")
    assert (first.done, first.skipped) == (GOOD, 1)  # same content stored once
    con = sqlite3.connect(db)
    ok = con.execute("SELECT COUNT(*), COUNT(DISTINCT sha256) FROM datasets WHERE status='ok'").fetchone()
    assert ok == (GOOD, GOOD)
    # Another cutoff is another configuration: analysed again, next to the first.
    other = run_scan([data], db, workers=0, progress=False, detectors="icefinder",
                     options=AnalysisOptions(icefinder_cutoff=3.0))
    assert other.done == GOOD and other.config != first.config
    # A touched file keeps its content hash: skipped without a new row.
    os.utime(data / "1aaa.mtz", ns=(1, 1))
    again = run_scan([data], db, workers=0, progress=False, detectors="icefinder")
    assert (again.done, again.failed, again.skipped) == (0, 0, GOOD + 1 + CORRUPT)
    retried = run_scan([data], db, workers=0, progress=False, detectors="icefinder", retry_failed=True)
    assert (retried.done, retried.failed) == (0, CORRUPT)
    n = con.execute("SELECT COUNT(*) FROM datasets").fetchone()[0]
    assert n == 2 * (GOOD + CORRUPT)
    con.close()


def test_process_pool_gives_the_serial_rows(tmp_path, survey):
    serial, pooled = tmp_path / "serial.db", tmp_path / "pooled.db"
    run_scan([survey], serial, workers=0, progress=False)
    report = run_scan([survey], pooled, workers=2, progress=False)
    assert (report.done, report.failed) == (GOOD, CORRUPT)
    assert rows(pooled) == rows(serial)
    con = sqlite3.connect(pooled)
    workers = {w for (w,) in con.execute("SELECT worker FROM datasets")}
    assert os.getpid() not in {int(w.rsplit(":", 1)[1]) for w in workers}  # analysed in worker processes
    con.close()


def test_a_dying_worker_fails_only_its_file(tmp_path, survey):
    data = tmp_path / "data"
    shutil.copytree(survey, data)
    write_mtz(data / "crash_here.mtz", 11)
    write_mtz(data / "boom.mtz", 12)
    db = tmp_path / "scan.db"
    kw = dict(workers=2, progress=False, detectors=["icefinder", "crashtest"], plugins=[PLUGIN])
    report = run_scan([data], db, **kw)
    failures = {Path(f).name: reason for f, reason in report.failures}
    assert failures["crash_here.mtz"] == CRASH_REASON
    assert failures["boom.mtz"] == "RuntimeError: boom: detector failed"
    assert {"truncated.mtz", "notes.mtz"} <= set(failures)
    assert (report.done, report.failed) == (GOOD, CORRUPT + 2)
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT file) FROM datasets").fetchone() == (GOOD + CORRUPT + 2,) * 2
    # The crash left no content hash: the next scan tries that file again (and only that one).
    again = run_scan([data], db, **kw)
    assert (again.done, again.failed, again.skipped) == (0, 1, GOOD + CORRUPT + 1)
    assert con.execute("SELECT COUNT(*) FROM datasets").fetchone()[0] == GOOD + CORRUPT + 2
    con.close()


def test_killed_scan_resumes_without_losing_or_duplicating(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    n = 12
    for k in range(n):
        write_mtz(data / f"{k:04d}.mtz", 100 + k, d_min=2.5, a=25.0)
    db = tmp_path / "scan.db"
    code = (
        "from auspex_helcaraxe.scan import run_scan\n"
        "from auspex_helcaraxe.results import AnalysisOptions\n"
        f"run_scan([{str(data)!r}], {str(db)!r}, workers=1, progress=False, detectors=['icefinder', 'crashtest'],"
        f" plugins=[{PLUGIN!r}], options=AnalysisOptions(extra={{'scan_test_delay': 0.4}}))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        done = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    with sqlite3.connect(db) as con:
                        done = con.execute("SELECT COUNT(*) FROM datasets").fetchone()[0]
                except sqlite3.OperationalError:
                    done = 0
            if done >= 3:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the scan finished before it could be killed"
        assert done >= 3
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    con = sqlite3.connect(db)
    stored = con.execute("SELECT COUNT(*) FROM datasets").fetchone()[0]
    assert 3 <= stored < n
    # Whole data sets only: each stored one has all its range rows.
    per = con.execute("SELECT d.id, COUNT(r.range_index) FROM datasets d LEFT JOIN ranges r ON r.dataset_id = d.id "
                      "GROUP BY d.id").fetchall()
    assert {c for _, c in per} == {2 * 25}  # icefinder on I and F, 25 ranges each
    resumed = run_scan([data], db, workers=0, progress=False, detectors=["icefinder", "crashtest"], plugins=[PLUGIN])
    assert resumed.skipped == stored
    assert resumed.done == n - stored and resumed.failed == 0
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT sha256) FROM datasets").fetchone() == (n, n)
    assert con.execute("SELECT COUNT(*) FROM ranges").fetchone()[0] == n * 2 * 25
    con.close()


def test_dask_cluster_gives_the_local_rows(tmp_path, survey):
    distributed = pytest.importorskip("distributed")
    local, remote = tmp_path / "local.db", tmp_path / "dask.db"
    run_scan([survey], local, workers=0, progress=False)
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None,
                                  silence_logs=40) as cluster:
        report = run_scan([survey], remote, dask_scheduler=cluster.scheduler_address, progress=False)
        assert (report.done, report.failed) == (GOOD, CORRUPT)
        again = run_scan([survey], remote, dask_scheduler=cluster.scheduler_address, progress=False)
        assert (again.done, again.failed, again.skipped) == (0, 0, GOOD + CORRUPT)
    assert rows(remote) == rows(local)


def test_parquet_export_holds_the_store(tmp_path, survey):
    pq = pytest.importorskip("pyarrow.parquet")
    db = tmp_path / "scan.db"
    run_scan([survey], db, workers=0, progress=False, detectors="icefinder")
    paths = export_parquet(db, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["datasets.parquet", "ranges.parquet"]
    datasets = pq.read_table(tmp_path / "out" / "datasets.parquet").to_pydict()
    ranges = pq.read_table(tmp_path / "out" / "ranges.parquet").to_pydict()
    ds, rg = rows(db)
    assert sorted(zip(datasets["file"], datasets["status"])) == sorted((r[0], r[3]) for r in ds)
    assert len(ranges["value"]) == len(rg)
    got = sorted(zip(ranges["sha256"], ranges["observable"], ranges["range_index"], ranges["value"], ranges["flagged"]),
                 key=lambda t: t[:3])
    assert got == sorted(((r[0], r[3], r[4], r[8], bool(r[9])) for r in rg), key=lambda t: t[:3])


def _record(path: str, sha: str, flagged: dict[str, list[int]]) -> dict:
    """A worker record as ``worker.analyse_file`` returns it, with chosen flags (for the summary test)."""
    results = []
    for det in ("helcaraxe", "icefinder"):
        ranges = [(i, 4.0 - i * 0.1, 3.9 - i * 0.1, "predicted", 0.9 if i in flagged[det] else 0.1,
                   i in flagged[det]) for i in range(1, 26)]
        results.append({"detector": det, "observable": "I", "network": None, "ranges": ranges})
    every = sorted(set(flagged["helcaraxe"]) | set(flagged["icefinder"]))
    return {"file": path, "sha256": sha, "size": 1, "mtime_ns": 1, "status": "ok", "error": None,
            "n_reflections": 10, "d_min": 1.0, "space_group": "P 1", "observables": "I", "iced": bool(every),
            "flagged_ranges": every, "results": results, "timings": {}, "worker": "test"}


def test_summary_figures_and_numbers(tmp_path):
    from auspex_helcaraxe.scan.store import ScanConfig

    db = tmp_path / "scan.db"
    config = ScanConfig(detectors=("helcaraxe", "icefinder"))
    years = {"1aaa": 2001, "2bbb": 2001, "3ccc": 2001, "4ddd": 2010, "5eee": 2010}
    flags = {
        "1aaa": {"helcaraxe": [5], "icefinder": [5, 8]},
        "2bbb": {"helcaraxe": [], "icefinder": []},
        "3ccc": {"helcaraxe": [], "icefinder": []},
        "4ddd": {"helcaraxe": [8], "icefinder": []},
        "5eee": {"helcaraxe": [], "icefinder": []},
        "6fff": {"helcaraxe": [5], "icefinder": []},  # no metadata
    }
    with Store(db) as store:
        store.register(config)
        for k, (ident, f) in enumerate(flags.items()):
            assert store.write(_record(f"/pdb/r{ident}sf.ent.gz", f"sha{k}", f), config)
    meta = tmp_path / "meta.csv"
    with open(meta, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["PDB_ID", "deposition_date", "method"])
        for ident, year in years.items():
            w.writerow([ident.upper(), f"{year}-03-01", "X-RAY"])
    paths = summary(db, tmp_path / "figs", metadata_csv=meta)
    names = {p.name for p in paths}
    assert {"fraction_iced.png", "ranges_hit.png", "iced_by_year.png"} <= names
    for p in paths:
        assert p.stat().st_size > 0
    assert (tmp_path / "figs" / "fraction_iced.png").read_bytes()[:4] == b"\x89PNG"

    def table(name):
        with open(tmp_path / "figs" / name, newline="") as fh:
            return list(csv.DictReader(fh))

    by_year = {int(r["year"]): (int(r["n_datasets"]), int(r["n_iced"])) for r in table("iced_by_year.csv")}
    assert by_year == {2001: (3, 1), 2010: (2, 1)}
    fraction = {r["result"]: (int(r["n_assessed"]), int(r["n_iced"])) for r in table("fraction_iced.csv")}
    assert fraction["any detector"] == (6, 3)
    assert fraction["helcaraxe I"] == (6, 3) and fraction["icefinder I"] == (6, 1)
    hits = {(r["detector"], int(r["range"])): int(r["n_flagged"]) for r in table("ranges_hit.csv")}
    assert hits[("helcaraxe", 5)] == 2 and hits[("helcaraxe", 8)] == 1 and hits[("icefinder", 8)] == 1
    assert hits[("icefinder", 1)] == 0


def test_published_networks_probabilities_are_stored(tmp_path, survey, published_dir):
    db = tmp_path / "scan.db"
    options = AnalysisOptions(networks=str(published_dir))
    report = run_scan([survey / "1aaa.mtz", survey / "sub" / "2bbb.mtz"], db, workers=0, progress=False,
                      detectors="helcaraxe", options=options)
    assert report.done == 2
    config = scan_config("helcaraxe", options)
    assert set(config.networks) == {"I", "F"}
    con = sqlite3.connect(db)
    for (file,) in con.execute("SELECT file FROM datasets"):
        analysis = Host().analyse(read(file), detectors="helcaraxe", options=options)
        stored = dict(((o, i), (v, s)) for o, i, v, s in con.execute(
            "SELECT r.observable, r.range_index, r.value, r.status FROM ranges r "
            "JOIN datasets d ON d.id = r.dataset_id WHERE d.file=?", (file,)))
        for res in analysis.results:
            for rr in res.ranges:
                assert stored[(res.observable, rr.index)] == (rr.value, rr.status)
        assert any(s == "predicted" for _, s in stored.values())
    shas = con.execute("SELECT DISTINCT network_I_sha256, network_F_sha256 FROM datasets").fetchall()
    assert shas == [(config.networks["I"]["sha256"], config.networks["F"]["sha256"])]
    con.close()


def test_bad_settings_raise_before_scanning(tmp_path, survey):
    from auspex_helcaraxe.errors import InputError

    with pytest.raises(InputError, match="unknown ice detector"):
        run_scan([survey], tmp_path / "a.db", detectors="nosuch", progress=False)
    with pytest.raises(InputError, match="network directory not found"):
        run_scan([survey], tmp_path / "b.db", detectors="helcaraxe", progress=False,
                 options=AnalysisOptions(networks=str(tmp_path / "none")))
    not_a_db = tmp_path / "c.db"
    not_a_db.write_text("plain text, not SQLite " * 100)
    with pytest.raises(InputError, match="results store"):
        run_scan([survey], not_a_db, progress=False)


def test_scan_command_scans_exports_and_summarises(tmp_path, survey, capsys):
    pytest.importorskip("pyarrow")
    from argparse import Namespace

    from auspex_helcaraxe.errors import InputError
    from auspex_helcaraxe.scan.command import scan_command

    db = tmp_path / "scan.db"
    args = Namespace(paths=[str(survey)], db=db, workers=0, dask_scheduler=None, ice_detector="icefinder",
                     retry_failed=False, parquet=tmp_path / "pq", summary=tmp_path / "figs", metadata=None,
                     no_progress=True)
    assert scan_command(args, AnalysisOptions()) == 0
    out = capsys.readouterr().out
    assert f"{GOOD + CORRUPT} data sets: {GOOD} analysed, {CORRUPT} failed" in out
    assert "truncated.mtz" in out and "notes.mtz" in out
    assert (tmp_path / "pq" / "ranges.parquet").exists() and (tmp_path / "figs" / "ranges_hit.png").exists()
    # Without paths: export and summary of an existing store only.
    again = Namespace(**{**vars(args), "paths": [], "parquet": None, "summary": tmp_path / "figs2"})
    assert scan_command(again, AnalysisOptions()) == 0
    assert (tmp_path / "figs2" / "fraction_iced.png").exists()
    with pytest.raises(InputError, match="no such results store"):
        scan_command(Namespace(**{**vars(again), "db": tmp_path / "none.db"}), AnalysisOptions())


def test_simulated_survey_summary_matches_the_host(tmp_path):
    from auspex_helcaraxe.simulate import simulate_dataset
    from auspex_helcaraxe.simulate import write_mtz as write_simulated

    data = tmp_path / "pdb"
    data.mkdir()
    years = {}
    for seed in range(8):
        path = write_simulated(simulate_dataset(seed), data / f"r{seed}sim.mtz")
        years[entry_id(str(path))] = 2000 + seed % 3
    db = tmp_path / "scan.db"
    report = run_scan([data], db, workers=0, progress=False, detectors="icefinder")
    assert report.done == 8
    meta = tmp_path / "meta.csv"
    meta.write_text("id,deposition_year\n" + "".join(f"{k},{v}\n" for k, v in years.items()))
    summary(db, tmp_path / "figs", metadata_csv=meta)

    host = Host()
    iced = {entry_id(str(p)): host.analyse(read(p), detectors="icefinder").iced for p in data.glob("*.mtz")}
    assert 0 < sum(iced.values()) < len(iced)  # the simulator gives both kinds
    with open(tmp_path / "figs" / "iced_by_year.csv", newline="") as fh:
        by_year = {int(r["year"]): (int(r["n_datasets"]), int(r["n_iced"])) for r in csv.DictReader(fh)}
    expected: dict[int, list[int]] = {}
    for ident, year in years.items():
        expected.setdefault(year, [0, 0])
        expected[year][0] += 1
        expected[year][1] += int(iced[ident])
    assert by_year == {y: tuple(v) for y, v in expected.items()}


def test_real_data_survey_stores_the_published_probabilities(tmp_path, shared_dir, published_dir, published_reference):
    """All real files through a 2-process scan: each stored once, unmerged ones merged and analysed,
    and the stored probabilities are the published pipeline's (where the same columns were read)."""
    root = shared_dir / "data" / "real"
    db = tmp_path / "real.db"
    report = run_scan([root], db, workers=2, progress=False, detectors="helcaraxe",
                      options=AnalysisOptions(networks=str(published_dir)))
    found = discover([root])
    assert report.found == len(found) and report.done + report.failed == len(found)
    con = sqlite3.connect(db)
    assert sorted(f for (f,) in con.execute("SELECT file FROM datasets")) == sorted(found)
    # unmerged files are merged on the fly; the one failure is the 6 Å data set
    assert [(Path(f).name, "too low for any ice range" in r) for f, r in report.failures] == [("brap_pk_6A_scaled2.mtz", True)]
    unmerged_files = {str(p) for p in (root / "unmerged").iterdir()}
    ok = {f for (f,) in con.execute("SELECT file FROM datasets WHERE status = 'ok'")}
    assert unmerged_files <= ok
    compared = 0
    for name, ref in published_reference.items():
        path = next(p for p in found if Path(p).name == name)
        refl = read(path)
        for kind in ("I", "F"):
            probs = ref.get(f"prob_{kind}")
            obs = refl.observables.get(kind)
            if not probs or obs is None or list(obs.columns) != list(ref[f"columns_{kind}"]):
                continue
            stored = dict(con.execute(
                "SELECT r.range_index, r.value FROM ranges r JOIN datasets d ON d.id = r.dataset_id "
                "WHERE d.file=? AND r.observable=? AND r.status='predicted'", (path, kind)))
            for index, p in enumerate(probs, start=1):
                if p is not None and index in stored:
                    assert stored[index] == pytest.approx(p, abs=1e-5), (name, kind, index)
                    compared += 1
    assert compared > 100
    con.close()


def test_config_key_follows_the_joint_combiner(tmp_path):
    """Results stored under one I+F combiner are not reused under another (or with it switched off)."""
    from auspex_helcaraxe.joint import load_combiner

    shipped = load_combiner()
    assert shipped is not None
    other = tmp_path / "other_joint.json"
    other.write_text(Path(shipped.path).read_text().replace('"threshold"', '"threshold" ', 1))
    keys = {
        name: scan_config("both", AnalysisOptions(extra=extra)).key
        for name, extra in {"shipped": {}, "off": {"joint": "none"}, "other": {"joint": str(other)}}.items()
    }
    assert len(set(keys.values())) == 3
    assert scan_config("both", AnalysisOptions()).combiner is not None
    assert scan_config("icefinder", AnalysisOptions()).combiner is None


def test_config_key_changes_with_the_cards_threshold_and_control_baseline():
    from auspex_helcaraxe.scan.store import ScanConfig

    net = {"name": "n", "version": "v", "sha256": "abc", "threshold": 0.5, "control_baseline": 0.1}
    key = ScanConfig(("helcaraxe",), {"F": net}).key
    assert ScanConfig(("helcaraxe",), {"F": dict(net)}).key == key
    assert ScanConfig(("helcaraxe",), {"F": {**net, "control_baseline": 0.2}}).key != key
    assert ScanConfig(("helcaraxe",), {"F": {**net, "threshold": 0.6}}).key != key
    assert ScanConfig(("helcaraxe",), {"F": {**net, "version": "w"}}).key == key  # a name is not a result
    assert ScanConfig(("helcaraxe",), {"F": {**net, "control_aggregate": "mean"}}).key == key  # the default
    assert ScanConfig(("helcaraxe",), {"F": {**net, "control_aggregate": "min"}}).key != key
    assert ScanConfig(("helcaraxe",), {"F": {**net, "pair_threshold": None}}).key == key
    assert ScanConfig(("helcaraxe",), {"F": {**net, "pair_threshold": 0.25}}).key != key
    paired = ScanConfig(("helcaraxe",), {"F": {**net, "pair_threshold": 0.25}}).key
    assert ScanConfig(("helcaraxe",), {"F": {**net, "pair_threshold": 0.25, "pair_steps": None}}).key == paired
    assert ScanConfig(("helcaraxe",), {"F": {**net, "pair_threshold": 0.25, "pair_steps": [[400, 0.25], [0, 0.45]]}}).key != paired


def test_a_worker_dying_between_two_submissions_fails_only_its_file(tmp_path, monkeypatch):
    """A worker can die (and break the pool) while the scan is still submitting: the submission that
    finds the pool broken puts its file back, the files in flight are retried, the one that kills a
    worker alone is reported failed, and every other file is analysed once (deterministic fake pool:
    a file named crash_* breaks the pool as soon as it is submitted)."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from auspex_helcaraxe.scan import runner

    class FakePool:
        def __init__(self, workers, mp_context=None, initializer=None, initargs=()):
            initializer(*initargs)
            self.futures, self.broken = [], False

        def submit(self, fn, *args):
            if self.broken:
                raise BrokenProcessPool("a child process terminated abruptly")
            fut = Future()
            self.futures.append(fut)
            if fn is runner.ping or not Path(args[0]).name.startswith("crash"):
                fut.set_result(fn(*args))
                return fut
            self.broken = True  # the worker running it dies: every unfinished future breaks
            for f in self.futures:
                if not f.done():
                    f.set_exception(BrokenProcessPool("a child process terminated abruptly"))
            return fut

        def shutdown(self, wait=True, cancel_futures=False):
            pass

    monkeypatch.setattr(runner, "ProcessPoolExecutor", FakePool)
    data = tmp_path / "data"
    data.mkdir()
    names = ["a.mtz", "crash_b.mtz", "c.mtz", "d.mtz", "e.mtz", "f.mtz"]
    for k, name in enumerate(names):
        write_mtz(data / name, 200 + k, d_min=2.5, a=25.0)
    report = run_scan([data], tmp_path / "scan.db", workers=1, progress=False, detectors=["icefinder"])
    assert {Path(f).name: reason for f, reason in report.failures} == {"crash_b.mtz": CRASH_REASON}
    assert (report.done, report.failed) == (len(names) - 1, 1)
    con = sqlite3.connect(tmp_path / "scan.db")
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT file) FROM datasets").fetchone() == (len(names),) * 2
    con.close()
