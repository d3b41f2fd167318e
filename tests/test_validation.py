"""Values checked before they reach the plots: invalid reflections are dropped and counted, and the
command line, run over a corpus of broken files the project makes itself, ends every file with a
report (exit 0) or one line on stderr (exit 2), never a traceback or a numpy warning."""

from __future__ import annotations

import gzip
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gemmi
import numpy as np
import pytest

from auspex_helcaraxe.errors import InputError
from auspex_helcaraxe.readers import read
from auspex_helcaraxe.readers.columns import DROP_REASONS, describe_drop

from test_cli import run
from test_readers import CIF, make_mtz


def _mtz_with(path, mutate) -> Path:
    """A merged MTZ (I and F, 2.0 Å) whose data array ``mutate(array, labels)`` changes in place."""
    cell, sg = gemmi.UnitCell(40, 50, 60, 90, 90, 90), gemmi.SpaceGroup("P 21 21 21")
    hkl = gemmi.make_miller_array(cell, sg, 2.0, 30.0)
    rng = np.random.default_rng(3)
    i = rng.exponential(100, len(hkl))
    data = np.column_stack([hkl, i, np.full(len(hkl), 5.0), np.sqrt(i) + 1, np.ones(len(hkl))]).astype(np.float64)
    labels = ["H", "K", "L", "IMEAN", "SIGIMEAN", "FP", "SIGFP"]
    mutate(data, labels)
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup, mtz.cell = sg, cell
    mtz.add_dataset("x")
    for label, ctype in zip(labels[3:], "JQFQ"):
        mtz.add_column(label, ctype)
    with np.errstate(over="ignore"):
        mtz.set_data(data.astype(np.float32))
    mtz.write_to_file(str(path))
    return Path(path)


def _corrupt(data, labels):
    col = {name: j for j, name in enumerate(labels)}
    data[0:5, :3] = 0  # (0 0 0): d infinite
    data[5:8, :3] = 900  # d ~ 0.03 Å: no X-ray reflection
    data[10:14, col["IMEAN"]] = 3e38  # float32 corruption
    data[14:16, col["IMEAN"]] = np.inf
    data[16, col["SIGIMEAN"]] = np.inf
    data[17, col["IMEAN"]] = np.nan  # MTZ's missing-number flag: absent, not invalid
    data[20:22, col["FP"]] = -3.0
    data[22, col["FP"]] = 1e7


def test_invalid_reflections_are_dropped_and_counted(tmp_path):
    path = _mtz_with(tmp_path / "bad.mtz", _corrupt)
    clean = read(_mtz_with(tmp_path / "good.mtz", lambda d, l: None))
    refl = read(path)
    assert refl.dropped == {"d_invalid": 8, "I_nonfinite": 3, "I_out_of_range": 4, "F_negative": 2,
                            "F_out_of_range": 1}
    assert len(refl.observables["I"]) == len(clean.observables["I"]) - 8 - 3 - 4 - 1
    assert len(refl.observables["F"]) == len(clean.observables["F"]) - 8 - 2 - 1
    assert refl.d_min >= 2.0 - 1e-3  # the report no longer says "d_min 0.00 Å"
    for key in refl.dropped:
        assert describe_drop(key) != key
    assert set(DROP_REASONS) >= {"d_invalid", "F_negative"}


def test_cli_reports_the_drops_without_warnings(tmp_path):
    path = _mtz_with(tmp_path / "bad.mtz", _corrupt)
    proc = run("check", path, "--json", tmp_path / "r.json")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "dropped as invalid: 8 (d_invalid)" in proc.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["input"]["dropped"]["I_out_of_range"] == 4 and report["input"]["merged"] is None
    assert report["observables"]["I"]["d_min"] >= 2.0 - 1e-3


def test_too_few_valid_reflections_is_one_line_exit_2(tmp_path):
    def all_absurd(data, labels):
        data[:, 3] = 3e38
        data[:, 5] = -1.0

    path = _mtz_with(tmp_path / "absurd.mtz", all_absurd)
    with pytest.raises(InputError, match="too few valid reflections.*I_out_of_range"):
        read(path)
    proc = run("check", path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "too few valid" in proc.stderr


# ---- the corpus ------------------------------------------------------------------------------

def _corpus(root: Path) -> dict[str, Path]:
    """Broken and odd files of every format the readers take, made here (seeded)."""
    rng = np.random.default_rng(2026)
    good, _ = make_mtz(root / "good.mtz", {"IMEAN": ("J", None), "SIGIMEAN": ("Q", None),
                                           "FP": ("F", None), "SIGFP": ("Q", None)}, d_min=2.0)
    raw = good.read_bytes()
    out: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        out[name] = root / name
        out[name].write_bytes(data)

    for cut in (20, 200, len(raw) // 2, len(raw) - 100):
        put(f"cut{cut}.mtz", raw[:cut])
    for n in range(4):
        data = bytearray(raw)
        for pos in rng.integers(0, len(raw), 12):
            data[pos] = int(rng.integers(0, 256))
        put(f"flip{n}.mtz", bytes(data))
    out["corrupt.mtz"] = _mtz_with(root / "corrupt.mtz", _corrupt)
    out["hkl_zero.mtz"] = _mtz_with(root / "hkl_zero.mtz", lambda d, l: d.__setitem__((slice(None), slice(0, 3)), 0))
    out["values_3e38.mtz"] = _mtz_with(root / "values_3e38.mtz", lambda d, l: d.__setitem__((slice(None, None, 2), 3), 3e38))
    out["nan_everything.mtz"] = _mtz_with(root / "nan_everything.mtz", lambda d, l: d.__setitem__((slice(None), slice(3, None)), np.nan))
    wrong, _ = make_mtz(root / "wrong_types.mtz", {"IMEAN": ("P", None), "SIGIMEAN": ("J", None)}, d_min=2.0)
    out["wrong_types.mtz"] = wrong
    put("empty.mtz", b"")
    put("empty_block-sf.cif", b"data_empty\n")
    put("two_blocks-sf.cif", CIF.replace(b"data_r1abcsf", b"data_a") + b"\n" + CIF.replace(b"data_r1abcsf", b"data_b"))
    rows = b"".join(b"%d %d %d %.1f 2.0\n" % (h, k, l, 50 + h) for h in range(1, 12) for k in range(1, 6) for l in range(1, 6))
    put("many_rows-sf.cif", CIF + rows)
    put("ragged-sf.cif", CIF + b"1 2\n")
    put("text_values-sf.cif", CIF.replace(b"100.0 5.0", b"abc def"))
    put("huge_header-sf.cif", b"data_x\n" + b"# " + b"x" * 3_000_000 + b"\n" + CIF.split(b"\n", 1)[1] + rows)
    put("garbage.gz", b"\x1f\x8b\x08\x00" + rng.bytes(3000))
    put("truncated-sf.cif.gz", gzip.compress(CIF + rows)[:-40])
    put("random.bin", rng.bytes(5000))
    put("xds_garbage.hkl", b"!FORMAT=XDS_ASCII    MERGE=TRUE\n!END_OF_HEADER\n1 2 x\n")
    put("sca_bad_cell.sca", b"    1\n -987\n   nonsense cell line\n   1   2   3   100.0     5.0\n")
    put("shelx_no_symmetry.hkl", b"   1   2   3  100.00    5.00   1\n   0   0   0    0.00    0.00   0\n")
    put("shelx_absurd.hkl", b"".join(b"%4d%4d%4d%8.2f%8.2f   1\n" % (h, 2, 3, 9.9e7, 0.0) for h in range(1, 40)))
    (root / "shelx_absurd.ins").write_text("CELL 1.0 40 50 60 90 90 90\nLATT -1\nSYMM -X,-Y,Z\n")
    return out


def _one(path: Path, out: Path):
    return path, run("check", path, "--json", out)


def test_cli_over_a_corpus_of_broken_files(tmp_path):
    corpus = _corpus(tmp_path)
    jobs = [(path, tmp_path / "json" / f"{name}.json") for name, path in corpus.items()]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda job: _one(*job), jobs))
    outcomes = {}
    for (path, proc), (_, out) in zip(results, jobs):
        name = path.name
        assert proc.returncode in (0, 2), (name, proc.returncode, proc.stderr)
        if proc.returncode == 0:
            assert proc.stderr == "", (name, proc.stderr)
            report = json.loads(out.read_text())
            assert report["schema_version"] == 2, name
        else:
            lines = proc.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("helcaraxe: "), (name, proc.stderr)
        outcomes[name] = proc.returncode
    # the corpus is not all failures: the files with a few bad rows are analysed
    assert outcomes["corrupt.mtz"] == 0 and outcomes["values_3e38.mtz"] == 0
    assert outcomes["hkl_zero.mtz"] == 2 and outcomes["shelx_absurd.hkl"] == 2
