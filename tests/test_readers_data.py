"""Parity: reading from bytes already in memory (the scan's path) gives the same arrays as reading the file."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from auspex_helcaraxe.readers import read

REAL = Path("/work/shared/data/real")
FILES = sorted(p for p in REAL.rglob("*") if p.name.endswith(("-sf.cif", "sf.ent"))) if REAL.is_dir() else []


def _same(a, b) -> None:
    assert a.n_reflections == b.n_reflections
    assert a.space_group == b.space_group
    assert a.cell == b.cell
    assert set(a.observables) == set(b.observables)
    for kind, oa in a.observables.items():
        ob = b.observables[kind]
        assert oa.columns == ob.columns
        for name in ("d", "values", "sigmas"):
            np.testing.assert_array_equal(getattr(oa, name), getattr(ob, name), err_msg=f"{kind}.{name}")


@pytest.mark.skipif(not FILES, reason="no real sf-mmCIF files in /work/shared/data/real")
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_bytes_and_gzip_match_file(path: Path, tmp_path: Path) -> None:
    ref = read(path)
    raw = path.read_bytes()
    _same(read(path, data=raw), ref)
    gz = tmp_path / (path.name + ".gz")
    gz.write_bytes(gzip.compress(raw, 6))
    _same(read(gz, data=gz.read_bytes()), ref)
    _same(read(gz), ref)


def test_corrupt_gzip_bytes_one_line_error(tmp_path: Path) -> None:
    from auspex_helcaraxe.errors import InputError

    bad = gzip.compress(b"data_x\nloop_\n_refln.index_h\n1\n")[:-12]
    with pytest.raises(InputError, match="gzip"):
        read(tmp_path / "x.cif.gz", data=bad)


@pytest.mark.skipif(not FILES, reason="no real sf-mmCIF files in /work/shared/data/real")
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_chunked_parse_matches_whole(path: Path, monkeypatch) -> None:
    """The _refln loop parsed in small pieces (as for 1 M-reflection files) gives the same arrays."""
    from auspex_helcaraxe.readers import mmcif

    ref = read(path)
    monkeypatch.setattr(mmcif, "CHUNK_BYTES", 50_000)
    monkeypatch.setattr(mmcif, "CHUNK_OVER", 50_000)
    raw = path.read_bytes()
    assert mmcif._chunked_mtz(raw) is not None or b"_diffrn_refln" in raw or raw.count(b"data_") > 1
    _same(read(path, data=raw), ref)


def test_chunked_parse_refuses_comment_inside_loop(monkeypatch) -> None:
    """A comment line inside the _refln loop must not split it (rows after it would be duplicated)."""
    from auspex_helcaraxe.readers import mmcif

    monkeypatch.setattr(mmcif, "CHUNK_BYTES", 10)
    rows = "".join(f"{h} 0 1 o {h}.0 1.0\n" for h in range(1, 6))
    text = ("data_r1abcsf\n_cell.length_a 50\n_cell.length_b 50\n_cell.length_c 50\n_cell.angle_alpha 90\n"
            "_cell.angle_beta 90\n_cell.angle_gamma 90\n_symmetry.space_group_name_H-M 'P 1'\nloop_\n"
            "_refln.index_h\n_refln.index_k\n_refln.index_l\n_refln.status\n_refln.F_meas_au\n_refln.F_meas_sigma_au\n"
            + rows + "# a comment\n" + rows.replace(" 0 1 ", " 0 2 "))
    assert mmcif._chunked_mtz(text.encode()) is None
