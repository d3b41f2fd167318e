"""Reading: column choice, filtering, anomalous-only files, and clean one-line errors on bad input."""

from __future__ import annotations

import gzip

import gemmi
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auspex_helcaraxe.errors import InputError
from auspex_helcaraxe.readers import read


def make_mtz(path, columns: dict[str, tuple[str, np.ndarray]], d_min=1.8, seed=0, unmerged=False):
    """A small merged MTZ with the given extra columns {label: (type, values)} (None: random)."""
    cell = gemmi.UnitCell(40, 50, 60, 90, 90, 90)
    sg = gemmi.SpaceGroup("P 21 21 21")
    hkl = gemmi.make_miller_array(cell, sg, d_min, 30.0)
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup, mtz.cell = sg, cell
    mtz.add_dataset("x")
    rng = np.random.default_rng(seed)
    data = [hkl.astype(np.float32)]
    for label, (ctype, values) in columns.items():
        mtz.add_column(label, ctype)
        data.append((rng.exponential(100, len(hkl)) if values is None else values[: len(hkl)])[:, None])
    if unmerged:
        mtz.add_column("M/ISYM", "Y")
        mtz.add_column("BATCH", "B")
        data += [np.ones((len(hkl), 1)), np.ones((len(hkl), 1))]
    mtz.set_data(np.hstack(data).astype(np.float32))
    mtz.write_to_file(str(path))
    return path, len(hkl)


def test_chooses_mean_columns_and_filters_like_published(tmp_path):
    n = 20000
    i = np.random.default_rng(1).exponential(100, n)
    sig = np.full(n, 5.0)
    i[:10] = 0.0  # obs == 0 -> dropped
    sig[10:20] = 0.0  # sigma <= 0 -> dropped
    sig[20:30] = np.nan  # NaN sigma -> dropped
    i[30:40] = np.nan  # NaN obs -> dropped
    path, nrefl = make_mtz(tmp_path / "a.mtz", {"FC": ("F", None), "PHIC": ("P", None), "IMEAN": ("J", i),
                                                 "SIGIMEAN": ("Q", sig), "FP": ("F", None), "SIGFP": ("Q", np.ones(n))})
    refl = read(path)
    assert refl.observables["I"].columns == ("IMEAN", "SIGIMEAN")
    assert refl.observables["F"].columns == ("FP", "SIGFP")  # FC (no sigma, calculated) is never chosen
    assert len(refl.observables["I"]) == nrefl - 40
    assert len(refl.observables["F"]) == nrefl
    assert refl.space_group == "P 21 21 21"
    with pytest.raises(ValueError):
        refl.observables["I"].values[0] = 1.0  # detectors get read-only arrays


def test_column_override(tmp_path):
    path, _ = make_mtz(tmp_path / "b.mtz", {"I": ("J", None), "SIGI": ("Q", None), "Iobs2": ("J", None),
                                             "SIGIobs2": ("Q", None)})
    assert read(path).observables["I"].columns == ("I", "SIGI")
    assert read(path, columns={"I": "Iobs2"}).observables["I"].columns == ("Iobs2", "SIGIobs2")
    with pytest.raises(InputError, match="column 'nope' not found"):
        read(path, columns={"I": "nope"})


def test_anomalous_only_file_is_merged_by_inverse_variance(tmp_path):
    n = 20000
    rng = np.random.default_rng(2)
    ip, im = rng.exponential(100, n), rng.exponential(100, n)
    sp, sm = np.full(n, 2.0), np.full(n, 4.0)
    im[:100] = np.nan
    sm[:100] = np.nan
    path, nrefl = make_mtz(tmp_path / "c.mtz", {"I(+)": ("K", ip), "SIGI(+)": ("M", sp), "I(-)": ("K", im),
                                                 "SIGI(-)": ("M", sm)})
    obs = read(path).observables["I"]
    assert obs.columns == ("I(+)", "SIGI(+)", "I(-)", "SIGI(-)")
    assert len(obs) == nrefl
    expected = (ip[:nrefl] / 4 + im[:nrefl] / 16) / (1 / 4 + 1 / 16)
    expected[:100] = ip[:100]
    np.testing.assert_allclose(obs.values, expected, rtol=1e-5)
    np.testing.assert_allclose(obs.sigmas[100:], 1 / np.sqrt(1 / 4 + 1 / 16), rtol=1e-5)


def test_bad_inputs_give_one_line_errors(tmp_path):
    cases = {}
    cases["missing"] = tmp_path / "missing.mtz"
    cases["directory"] = tmp_path
    (tmp_path / "text.mtz").write_text("hello, I am not an MTZ\n")
    cases["text"] = tmp_path / "text.mtz"
    good, _ = make_mtz(tmp_path / "good.mtz", {"IMEAN": ("J", None), "SIGIMEAN": ("Q", None)})
    (tmp_path / "trunc.mtz").write_bytes(good.read_bytes()[:3000])
    cases["truncated"] = tmp_path / "trunc.mtz"
    cases["no columns"], _ = make_mtz(tmp_path / "nocol.mtz", {"FC": ("F", None), "PHIC": ("P", None)})
    (tmp_path / "empty.cif").write_text("data_x\n_cell.length_a 10\n")
    cases["cif without reflections"] = tmp_path / "empty.cif"
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    cases["corrupt gzip"] = tmp_path / "bad.gz"
    expected = {"missing": "no such file", "directory": "directory", "text": "not an MTZ",
                "truncated": "corrupt", "no columns": "no intensity",
                "cif without reflections": "no reflection data", "corrupt gzip": "corrupt gzip"}
    for what, path in cases.items():
        with pytest.raises(InputError) as info:
            read(path)
        message = str(info.value)
        assert "\n" not in message, what
        assert expected[what] in message, (what, message)


def test_gzipped_mmcif_and_blocks(tmp_path, real_data):
    src = real_data["1v9g-sf.cif"]
    gz = tmp_path / "r1v9gsf.ent.gz"
    gz.write_bytes(gzip.compress(src.read_bytes()))
    a, b = read(src), read(gz)
    np.testing.assert_array_equal(a.observables["I"].values, b.observables["I"].values)
    with pytest.raises(InputError, match="no block 'nope'"):
        read(src, block="nope")
    assert read(src, block=0).observables["I"].columns == a.observables["I"].columns


def test_xds_ascii_merged(tmp_path):
    rng = np.random.default_rng(5)
    hkl = gemmi.make_miller_array(gemmi.UnitCell(40, 50, 60, 90, 90, 90), gemmi.SpaceGroup("P 21 21 21"), 2.0, 30)
    i = rng.exponential(100, len(hkl))
    header = ("!FORMAT=XDS_ASCII    MERGE={merge}    FRIEDEL'S_LAW=TRUE\n!SPACE_GROUP_NUMBER=   19\n"
              "!UNIT_CELL_CONSTANTS=    40.000    50.000    60.000  90.000  90.000  90.000\n"
              "!NUMBER_OF_ITEMS_IN_EACH_DATA_RECORD=5\n!ITEM_H=1\n!ITEM_K=2\n!ITEM_L=3\n!ITEM_IOBS=4\n"
              "!ITEM_SIGMA(IOBS)=5\n!END_OF_HEADER\n")
    body = "".join(f"{h:6d}{k:6d}{l:6d} {v:10.3E} {5.0:10.3E}\n" for (h, k, l), v in zip(hkl, i)) + "!END_OF_DATA\n"
    merged = tmp_path / "XDS_ASCII.HKL"
    merged.write_text(header.format(merge="TRUE") + body)
    obs = read(merged).observables["I"]
    assert len(obs) == len(hkl) and obs.columns == ("IMEAN", "SIGIMEAN")
    np.testing.assert_allclose(obs.values, i, rtol=1e-3)
    assert read(merged).merged is None


_GOOD_MTZ: bytes | None = None


def _good_mtz_bytes(tmp_path_factory) -> bytes:
    global _GOOD_MTZ
    if _GOOD_MTZ is None:
        path, _ = make_mtz(tmp_path_factory.mktemp("fz") / "g.mtz", {"IMEAN": ("J", None), "SIGIMEAN": ("Q", None)},
                           d_min=3.5)
        _GOOD_MTZ = path.read_bytes()
    return _GOOD_MTZ


CIF = b"""data_r1abcsf
_cell.length_a 40.0
_cell.length_b 50.0
_cell.length_c 60.0
_cell.angle_alpha 90
_cell.angle_beta 90
_cell.angle_gamma 90
_symmetry.space_group_name_H-M 'P 21 21 21'
loop_
_refln.index_h
_refln.index_k
_refln.index_l
_refln.intensity_meas
_refln.intensity_sigma
1 2 3 100.0 5.0
2 3 4 50.0 4.0
3 4 5 25.0 3.0
10 12 20 5.0 1.0
"""


def _analyse_or_input_error(path) -> None:
    """Reading and analysing must end in a result or an InputError, nothing else (no warning either)."""
    import warnings

    from auspex_helcaraxe.host import Host

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            Host().analyse(read(path), detectors="icefinder")
        except InputError as exc:
            assert "\n" not in str(exc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=100_000), flips=st.lists(
    st.tuples(st.integers(min_value=0, max_value=100_000), st.integers(min_value=0, max_value=255)), max_size=8))
def test_fuzzed_mtz_bytes_never_crash(tmp_path_factory, cut, flips):
    data = bytearray(_good_mtz_bytes(tmp_path_factory))
    for pos, value in flips:
        data[pos % len(data)] = value
    data = bytes(data[: max(1, cut % (len(data) + 1))])
    path = tmp_path_factory.mktemp("m") / "f.mtz"
    path.write_bytes(data)
    _analyse_or_input_error(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=len(CIF)), flips=st.lists(
    st.tuples(st.integers(min_value=0, max_value=len(CIF) - 1), st.sampled_from(list(b" \n_'\"#;x09.-"))),
    max_size=6))
def test_fuzzed_mmcif_bytes_never_crash(tmp_path_factory, cut, flips):
    data = bytearray(CIF)
    for pos, value in flips:
        data[pos] = value
    path = tmp_path_factory.mktemp("c") / "f-sf.cif"
    path.write_bytes(bytes(data[:cut]))
    _analyse_or_input_error(path)


def test_mmcif_without_unit_cell_is_a_clean_error(tmp_path):
    """Found by the fuzzer: gemmi cannot compute d without a cell; the reader says so in one line."""
    path = tmp_path / "nocell-sf.cif"
    path.write_bytes(CIF.replace(b"_cell.length_a 40.0", b"_cell_length_a 40.0"))
    with pytest.raises(InputError, match="cannot compute resolutions"):
        read(path)
