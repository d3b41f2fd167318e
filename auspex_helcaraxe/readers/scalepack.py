"""Scalepack merged ``.sca`` files (HKL-2000/3000, also written by xia2 and AIMLESS).

gemmi does not read scalepack, so this is a small fixed-width reader. Layout of a merged file: a line
with ``1``, a line with ``-987``, the cell (6F10.3) and the space group, then one line per unique
reflection: ``h k l`` (3I4) and I, sigma(I) (2F8.1), or I(+), sigma(I+), I(-), sigma(I-) (4F8.1) for
anomalous data. A negative sigma (scalepack writes -1) marks a missing measurement. Unmerged
scalepack files (no ``-987`` line) are not merged data and are refused.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import InputError
from . import fixed
from .options import ReadOptions

_MERGED = re.compile(rb"\A\s*1\s*\r?\n\s*-987\s*\r?\n")


def sniff(head: bytes) -> bool:
    return _MERGED.match(head) is not None


def read_mtz(path: str, head: bytes = b"", text: bytes | None = None, options: ReadOptions = ReadOptions()):
    """The file as a ``gemmi.Mtz``: ``IMEAN``/``SIGIMEAN``, or ``I(+)``/``SIGI(+)``/``I(-)``/``SIGI(-)``
    for anomalous files (their mean is taken by the column chooser as for any anomalous MTZ)."""
    import gemmi

    if text is None:
        text = fixed.read_bytes(path)
    lines = text.splitlines()
    if len(lines) < 3:
        raise InputError(f"{path}: scalepack header without a cell line")
    symmetry = lines[2].decode("ascii", "replace")
    try:
        cell = gemmi.UnitCell(*(float(symmetry[i * 10:(i + 1) * 10]) for i in range(6)))
    except ValueError:
        raise InputError(f"{path}: scalepack cell line not readable: {symmetry.strip()!r}") from None
    sg_name = symmetry[60:].strip()
    sg = gemmi.find_spacegroup_by_name(sg_name) if sg_name else None
    if sg is None:
        raise InputError(f"{path}: unknown space group {sg_name!r} in the scalepack header")
    body = [ln.rstrip() for ln in lines[3:] if ln.strip()]
    if not body:
        raise InputError(f"{path}: scalepack file without reflections")
    width = max(len(ln) for ln in body)
    n_values = 4 if width > fixed.HKL_WIDTH + 2 * fixed.FIELD else 2
    table = fixed.table(path, body, n_values, first_line=4, kind="scalepack")
    hkl, values = table[:, :3], table[:, 3:]
    for j in range(0, n_values, 2):  # sigma < 0 (or a blank field): no measurement
        missing = ~(values[:, j + 1] >= 0)
        values[missing, j:j + 2] = np.nan
    mtz = gemmi.Mtz(with_base=True)
    mtz.cell, mtz.spacegroup = cell, sg
    mtz.add_dataset("scalepack")
    names = (("I(+)", "K"), ("SIGI(+)", "M"), ("I(-)", "K"), ("SIGI(-)", "M")) if n_values == 4 else (
        ("IMEAN", "J"), ("SIGIMEAN", "Q"))
    for label, ctype in names:
        mtz.add_column(label, ctype)
    mtz.set_data(np.column_stack([hkl, values]).astype(np.float32))
    return mtz

