"""The other files AUSPEX users have: scalepack .sca, SHELX HKLF 4, XSCALE, unmerged MTZ / XDS_ASCII
merged on the fly, written here by the project itself and, where ../shared has them, real files."""

from __future__ import annotations

import json

import gemmi
import numpy as np
import pytest

from auspex_helcaraxe.errors import InputError
from auspex_helcaraxe.host import Host
from auspex_helcaraxe.readers import read, unmerged
from auspex_helcaraxe.simulate import demo_dataset, write_mtz

from test_cli import run


@pytest.fixture(scope="module")
def demo():
    return demo_dataset()


@pytest.fixture(scope="module")
def host():
    return Host()


def _scaled(values: np.ndarray, sigmas: np.ndarray, top: float = 9.0e4):
    """Values and sigmas scaled to fit fixed-width F8 fields (the analysis is scale-free)."""
    factor = top / float(np.abs(values).max())
    return values * factor, sigmas * factor


def write_sca(ds, path, anomalous: bool):
    """A merged scalepack file of the simulated data set (I+ = I- = IMEAN for anomalous files, with
    sigma·√2 so that their mean is IMEAN/SIGIMEAN again; every tenth row as if centric)."""
    i, s = _scaled(ds.columns["IMEAN"].astype(np.float64), ds.columns["SIGIMEAN"].astype(np.float64))
    cell = "".join(f"{x:10.3f}" for x in ds.reflections.cell)
    lines = ["    1", " -987", cell + " " + ds.params["space_group"].replace(" ", "").lower()]
    for n, ((h, k, l), v, e) in enumerate(zip(ds.miller, i, s)):
        if anomalous and n % 10:
            lines.append(f"{h:4d}{k:4d}{l:4d}{v:8.1f}{e * 2 ** 0.5:8.1f}{v:8.1f}{e * 2 ** 0.5:8.1f}")
        else:
            lines.append(f"{h:4d}{k:4d}{l:4d}{v:8.1f}{e:8.1f}")
    path.write_text("\n".join(lines) + "\n")
    return path, i


def write_hkl(ds, path, ins: bool = True, repeats: bool = False):
    """A SHELX HKLF 4 file (with the .ins beside it when ``ins``); ``repeats``: every reflection also
    as a symmetry mate, so the file lists two measurements of each."""
    i, s = _scaled(ds.columns["IMEAN"].astype(np.float64), ds.columns["SIGIMEAN"].astype(np.float64))
    sg = gemmi.SpaceGroup(ds.params["space_group"])
    mate = sg.operations().sym_ops[1]
    lines = []
    for (h, k, l), v, e in zip(ds.miller.tolist(), i, s):
        lines.append(f"{h:4d}{k:4d}{l:4d}{v:8.2f}{e:8.2f}   1")
        if repeats:
            h2, k2, l2 = mate.apply_to_hkl([h, k, l])
            lines.append(f"{h2:4d}{k2:4d}{l2:4d}{v:8.2f}{e:8.2f}   2")
    lines.append("   0   0   0    0.00    0.00   0")
    path.write_text("\n".join(lines) + "\n")
    if ins:
        symm = "".join(f"SYMM {op.triplet().upper()}\n" for op in sg.operations().sym_ops[1:])
        path.with_suffix(".ins").write_text(
            "TITL simulated\nCELL 1.0000 " + " ".join(f"{x:.3f}" for x in ds.reflections.cell)
            + "\nZERR 4 0 0 0 0 0 0\nLATT -1\n" + symm + "SFAC C N O\nUNIT 1 1 1\nHKLF 4\nEND\n")
    return path, i


def test_scalepack_merged_plain_and_anomalous_read_back(demo, tmp_path):
    for anomalous in (False, True):
        path, values = write_sca(demo, tmp_path / f"a{int(anomalous)}.sca", anomalous)
        refl = read(path)
        obs = refl.observables["I"]
        assert refl.space_group == "P 21 21 21" and refl.cell == pytest.approx(demo.reflections.cell, abs=1e-3)
        written = values[np.round(values, 1) != 0]  # a value written as 0.0 fails the published filter
        assert set(refl.observables) == {"I"} and len(obs) == len(written)
        assert obs.columns[0] == ("I(+)" if anomalous else "IMEAN")
        np.testing.assert_allclose(obs.values, written, atol=0.06, rtol=1e-5)  # F8.1 rounding


def test_scalepack_finds_the_ice_the_mtz_finds(demo, tmp_path, host):
    sca, _ = write_sca(demo, tmp_path / "demo.sca", anomalous=True)
    mtz = write_mtz(demo, tmp_path / "demo.mtz")
    a, b = (host.analyse(read(p), detectors="helcaraxe") for p in (sca, mtz))
    assert a.result("helcaraxe", "I").flagged_ranges == b.result("helcaraxe", "I").flagged_ranges == [5]


def test_unmerged_scalepack_and_bad_lines(tmp_path):
    bad = tmp_path / "bad.sca"
    bad.write_text("    1\n -987\n    40.000    50.000    60.000    90.000    90.000    90.000 p212121\n"
                   "   1   2   3   100.0     5.0\n   1   2   4   xx0.0     5.0\n")
    with pytest.raises(InputError, match=r"scalepack line 5 not readable"):
        read(bad)
    sg = tmp_path / "sg.sca"
    sg.write_text("    1\n -987\n    40.000    50.000    60.000    90.000    90.000    90.000 q999\n"
                  "   1   2   3   100.0     5.0\n")
    with pytest.raises(InputError, match="unknown space group 'q999'"):
        read(sg)


def test_shelx_with_ins_and_with_cell_on_the_command_line(demo, tmp_path, host):
    path, values = write_hkl(demo, tmp_path / "x.hkl")
    refl = read(path)
    assert refl.space_group == "P 21 21 21" and refl.merged is None
    np.testing.assert_allclose(refl.observables["I"].values, values[np.round(values, 2) != 0], atol=0.006, rtol=1e-5)
    assert host.analyse(refl, detectors="helcaraxe").result("helcaraxe", "I").flagged_ranges == [5]
    bare, _ = write_hkl(demo, tmp_path / "bare.hkl", ins=False)
    with pytest.raises(InputError, match="no cell or space group.*--cell"):
        read(bare)
    cell = ",".join(str(x) for x in demo.reflections.cell)
    proc = run("check", bare, "--cell", cell, "--space-group", "P 21 21 21", "--json", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verdict"]["ranges"] == [5] and report["input"] == {"merged": None, "dropped": {}}
    proc = run("check", bare, "--cell", "1,2,3")
    assert proc.returncode == 2 and "six positive numbers" in proc.stderr


def test_shelx_repeated_measurements_are_merged(demo, tmp_path):
    path, values = write_hkl(demo, tmp_path / "rep.hkl", repeats=True)
    refl = read(path)
    assert refl.merged is not None and refl.merged.n_unique == len(values)
    assert refl.merged.multiplicity == pytest.approx(2.0, abs=0.01)  # centric mates can coincide


def _write_unmerged_mtz(ds, path, k: int, batch_headers: bool, seed: int = 0):
    """k noisy measurements of every reflection (M/ISYM 1, BATCH 1..k), their mean known."""
    rng = np.random.default_rng(seed)
    i = ds.columns["IMEAN"].astype(np.float64)
    s = ds.columns["SIGIMEAN"].astype(np.float64) * np.sqrt(k)
    obs = i[None, :] + rng.normal(0, 1, (k, len(i))) * s[None, :]
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = gemmi.SpaceGroup(ds.params["space_group"])
    mtz.set_cell_for_all(gemmi.UnitCell(*ds.reflections.cell))
    mtz.add_dataset("x")
    for label, ctype in (("M/ISYM", "Y"), ("BATCH", "B"), ("I", "J"), ("SIGI", "Q")):
        mtz.add_column(label, ctype)
    rows = [np.column_stack([ds.miller, np.ones(len(i)), np.full(len(i), b + 1), obs[b], s]) for b in range(k)]
    mtz.set_data(np.vstack(rows).astype(np.float32))
    if batch_headers:
        for b in range(k):
            batch = gemmi.Mtz.Batch()
            batch.number = b + 1
            batch.cell = mtz.cell
            mtz.batches.append(batch)
    mtz.write_to_file(str(path))
    return path, obs.mean(axis=0)


@pytest.mark.parametrize("batch_headers", [True, False])
def test_unmerged_mtz_is_merged_with_its_multiplicity(demo, tmp_path, batch_headers):
    path, mean = _write_unmerged_mtz(demo, tmp_path / "u.mtz", k=3, batch_headers=batch_headers)
    refl = read(path)
    assert refl.merged.n_observations == 3 * len(mean) and refl.merged.n_unique == len(mean)
    assert refl.merged.multiplicity == pytest.approx(3.0)
    obs = refl.observables["I"]
    order = np.lexsort(demo.miller.T[::-1])
    got = np.lexsort(obs.hkl.T[::-1])
    np.testing.assert_array_equal(obs.hkl[got], demo.miller[order])
    np.testing.assert_allclose(obs.values[got], mean[order], rtol=2e-5, atol=0.05)  # equal sigmas: plain mean


def test_unmerged_xds_ascii_is_merged(demo, tmp_path):
    """An INTEGRATE/CORRECT-style XDS_ASCII (MERGE=FALSE) listing each reflection twice, once as a
    symmetry mate outside the asymmetric unit."""
    sg = gemmi.SpaceGroup("P 21 21 21")
    mate = sg.operations().sym_ops[2]
    i, s = _scaled(demo.columns["IMEAN"].astype(np.float64), demo.columns["SIGIMEAN"].astype(np.float64))
    header = ("!FORMAT=XDS_ASCII    MERGE=FALSE    FRIEDEL'S_LAW=TRUE\n!SPACE_GROUP_NUMBER=   19\n"
              "!UNIT_CELL_CONSTANTS=" + " ".join(f"{x:.3f}" for x in demo.reflections.cell) + "\n"
              "!NUMBER_OF_ITEMS_IN_EACH_DATA_RECORD=12\n!ITEM_H=1\n!ITEM_K=2\n!ITEM_L=3\n!ITEM_IOBS=4\n"
              "!ITEM_SIGMA(IOBS)=5\n!ITEM_XD=6\n!ITEM_YD=7\n!ITEM_ZD=8\n!ITEM_RLP=9\n!ITEM_PEAK=10\n"
              "!ITEM_CORR=11\n!ITEM_MAXC=12\n!END_OF_HEADER\n")
    rest = " 1000.0 1000.0 10.0 1.0 100 90 0.0"  # detector position, frame, Lorentz, peak, corr, maxc
    body = []
    for (h, k, l), v, e in zip(demo.miller.tolist(), i, s):
        h2, k2, l2 = mate.apply_to_hkl([h, k, l])
        body.append(f"{h:6d}{k:6d}{l:6d} {v * 0.9:11.4E} {e:11.4E}{rest}\n"
                    f"{h2:6d}{k2:6d}{l2:6d} {v * 1.1:11.4E} {e:11.4E}{rest}\n")
    path = tmp_path / "INTEGRATE_ASCII.HKL"
    path.write_text(header + "".join(body) + "!END_OF_DATA\n")
    refl = read(path)
    assert refl.merged.n_unique == len(i) and refl.merged.multiplicity == pytest.approx(2.0)
    assert np.sort(refl.observables["I"].values) == pytest.approx(np.sort(i), rel=1e-3)


def test_xscale_output_is_read(demo, tmp_path):
    """XSCALE writes XDS_ASCII with its own header lines and an ISET column."""
    i, s = _scaled(demo.columns["IMEAN"].astype(np.float64), demo.columns["SIGIMEAN"].astype(np.float64))
    header = ("!FORMAT=XDS_ASCII    MERGE=TRUE    FRIEDEL'S_LAW=TRUE\n"
              "!OUTPUT_FILE=XSCALE.HKL        DATE= 3-Dec-2026\n!Generated by XSCALE (VERSION Jan 10, 2022)\n"
              "!SPACE_GROUP_NUMBER=   19\n!UNIT_CELL_CONSTANTS=" + " ".join(f"{x:.3f}" for x in demo.reflections.cell)
              + "\n!NUMBER_OF_ITEMS_IN_EACH_DATA_RECORD=6\n!ITEM_H=1\n!ITEM_K=2\n!ITEM_L=3\n!ITEM_IOBS=4\n"
              "!ITEM_SIGMA(IOBS)=5\n!ITEM_ISET=6\n!ISET= 1 INPUT_FILE=XDS_ASCII.HKL\n!END_OF_HEADER\n")
    body = "".join(f"{h:6d}{k:6d}{l:6d} {v:11.4E} {e:11.4E} 1\n" for (h, k, l), v, e in zip(demo.miller.tolist(), i, s))
    path = tmp_path / "XSCALE.HKL"
    path.write_text(header + body + "!END_OF_DATA\n")
    refl = read(path)
    assert refl.merged is None and len(refl.observables["I"]) == len(i)
    assert Host().analyse(refl, detectors="helcaraxe").result("helcaraxe", "I").flagged_ranges == [5]


def test_real_scalepack_finds_what_the_mtz_finds(shared_dir, host):
    """xia2 wrote the .sca files from the same processing as the MTZ files (iced I:5,8 and clean)."""
    for name, flags in (("x828", [5, 8]), ("x839", [])):
        sca = read(shared_dir / "data" / "formats" / "scalepack" / f"BAZ2BA_{name}_scaled.sca")
        mtz = read(shared_dir / "data" / "real" / "ccp4i2" / f"BAZ2BA_{name}_free.mtz")
        a, b = host.analyse(sca), host.analyse(mtz)
        assert a.result("helcaraxe", "I").flagged_ranges == b.result("helcaraxe", "I").flagged_ranges == flags
        assert a.iced == b.iced == bool(flags)
        agree = unmerged.agreement(mtz, sca)
        assert agree["n_common"] > 0.99 * min(agree["n_a"], agree["n_b"]) and agree["correlation"] > 0.9999


def test_real_unmerged_files_are_merged(shared_dir):
    root = shared_dir / "data" / "real" / "unmerged"
    for path in sorted(root.glob("*.mtz")):
        refl = read(path)
        m = refl.merged
        assert m is not None and m.n_unique == len(refl.observables["I"]) and m.multiplicity > 2, path.name
        mtz = gemmi.read_mtz_file(str(path))
        assert m.n_observations <= mtz.nreflections


def test_gamma_unmerged_is_the_xe_data_set_not_the_native(shared_dir):
    """Is ccp4i2/gamma_merged_intensities_native.mtz the merge of unmerged/gamma_HKLOUT_unmerged.mtz?
    No: the unmerged file has the cell of the Xe data set and agrees with its merge."""
    ours = read(shared_dir / "data" / "real" / "unmerged" / "gamma_HKLOUT_unmerged.mtz")
    native = read(shared_dir / "data" / "real" / "ccp4i2" / "gamma_merged_intensities_native.mtz")
    xe = read(shared_dir / "data" / "real" / "ccp4i2" / "gamma_merged_intensities_Xe.mtz")
    with_xe, with_native = unmerged.agreement(ours, xe), unmerged.agreement(ours, native)
    assert with_xe["correlation"] > 0.999 and with_xe["within_3_sigma"] > 0.99
    assert with_xe["n_common"] >= 0.99 * with_xe["n_b"]
    assert with_native["correlation"] < 0.98 and with_native["within_3_sigma"] < 0.6


def test_cli_reports_the_merge(tmp_path, demo):
    path, _ = _write_unmerged_mtz(demo, tmp_path / "scaled.mtz", k=2, batch_headers=True)
    proc = run("check", path, "--json", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stderr
    assert "merged on the fly" in proc.stdout and "multiplicity 2.00" in proc.stdout
    merged = json.loads((tmp_path / "r.json").read_text())["input"]["merged"]
    assert merged["multiplicity"] == 2.0 and merged["n_unique"] == len(demo.miller)


def test_unmerged_sf_mmcif_block_is_merged(tmp_path):
    head = ("data_x\n_cell.length_a 40.0\n_cell.length_b 50.0\n_cell.length_c 60.0\n_cell.angle_alpha 90\n"
            "_cell.angle_beta 90\n_cell.angle_gamma 90\n_symmetry.space_group_name_H-M 'P 21 21 21'\nloop_\n"
            + "".join(f"_diffrn_refln.{t}\n" for t in ("diffrn_id", "index_h", "index_k", "index_l",
                                                       "intensity_net", "intensity_sigma")))
    rows = [(h, k, l) for h in range(1, 6) for k in range(1, 5) for l in range(1, 4)]
    body = "".join(f"1 {h} {k} {l} {100 + h} 5.0\n1 {-h} {k} {-l} {102 + h} 5.0\n" for h, k, l in rows)
    path = tmp_path / "unmerged-sf.cif"
    path.write_text(head + body)
    refl = read(path)
    assert refl.merged.n_observations == 2 * len(rows) and refl.merged.n_unique == len(rows)
    np.testing.assert_allclose(np.sort(refl.observables["I"].values), np.sort([101 + h for h, _, _ in rows]))
