"""SHELX ``HKLF 4`` reflection files (``.hkl``: h k l Fo² sigma(Fo²) [batch], 3I4 2F8 I4).

gemmi does not read them, so this is a small fixed-width reader. The file carries no cell or space
group: they come from ``--cell``/``--space-group`` (:class:`~.options.ReadOptions`) or from the
``CELL``, ``LATT`` and ``SYMM`` instructions of an ``.ins``/``.res`` file beside it (same stem). The
list ends at the first ``0 0 0`` line; what follows (often the instructions) is ignored.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import InputError
from . import fixed
from .options import ReadOptions

# LATT n: |n| is the lattice centring, n > 0 adds a centre of symmetry (International Tables / SHELX).
_CENTRING = {1: (), 2: ("x+1/2,y+1/2,z+1/2",), 3: ("x+2/3,y+1/3,z+1/3", "x+1/3,y+2/3,z+2/3"),
             4: ("x,y+1/2,z+1/2", "x+1/2,y,z+1/2", "x+1/2,y+1/2,z"), 5: ("x,y+1/2,z+1/2",),
             6: ("x+1/2,y,z+1/2",), 7: ("x+1/2,y+1/2,z",)}


def sniff(head: bytes) -> bool:
    lines = [ln for ln in head.splitlines()[:6] if ln.strip()]
    if len(lines) > 1 and len(head) >= 4096:
        lines = lines[:-1]  # the last line of the head may be cut
    return bool(lines) and all(fixed.parses(ln, 2) for ln in lines)


def read_mtz(path: str, head: bytes = b"", text: bytes | None = None, options: ReadOptions = ReadOptions()):
    """The reflections as a ``gemmi.Mtz`` with ``I``/``SIGI`` (Fo² is an intensity)."""
    import gemmi

    if text is None:
        text = fixed.read_bytes(path)
    cell, sg = _symmetry(path, options)
    lines = []
    for ln in text.splitlines():
        if not ln.strip():
            continue
        if ln[:12].split() == [b"0", b"0", b"0"]:
            break
        lines.append(ln)
    if not lines:
        raise InputError(f"{path}: SHELX file without reflections")
    table = fixed.table(path, lines, 2, kind="SHELX HKLF 4")
    mtz = gemmi.Mtz(with_base=True)
    mtz.cell, mtz.spacegroup = cell, sg
    mtz.add_dataset("shelx")
    mtz.add_column("I", "J")
    mtz.add_column("SIGI", "Q")
    mtz.set_data(table.astype(np.float32))
    # HKLF 4 lists every measurement (symmetry mates, repeats): merge them when there are any.
    mtz.ensure_asu()
    if _has_repeats(mtz):
        return _as_unmerged(mtz)
    return mtz


def _symmetry(path: str, options: ReadOptions):
    """(gemmi.UnitCell, gemmi.SpaceGroup) from the options, else from an .ins/.res beside the file."""
    import gemmi

    cell, sg = options.cell, options.space_group
    if cell is None or sg is None:
        ins = _instructions_beside(path)
        if ins is not None:
            cell_ins, sg_ins = _parse_ins(ins)
            cell = cell if cell is not None else cell_ins
            sg = sg if sg is not None else sg_ins
    if cell is None or sg is None:
        raise InputError(f"{path}: a SHELX .hkl file has no cell or space group: give --cell A,B,C,AL,BE,GA "
                         "and --space-group NAME, or put the .ins/.res beside it")
    if isinstance(sg, str):
        name = sg
        sg = gemmi.find_spacegroup_by_name(name)
        if sg is None:
            raise InputError(f"{path}: unknown space group {name!r}")
    if len(cell) != 6:
        raise InputError(f"{path}: the cell needs six numbers (a, b, c, alpha, beta, gamma)")
    return gemmi.UnitCell(*cell), sg


def _instructions_beside(path: str) -> str | None:
    stem = os.path.splitext(path)[0]
    for ext in (".ins", ".res", ".INS", ".RES"):
        if os.path.isfile(stem + ext):
            return stem + ext
    return None


def _parse_ins(ins: str):
    """(cell tuple or None, gemmi.SpaceGroup or None) from the CELL, LATT and SYMM lines of ``ins``."""
    import gemmi

    cell, latt, symm = None, 1, ["x,y,z"]
    with open(ins, encoding="ascii", errors="replace") as fh:
        for line in fh:
            words = line.split()
            if not words:
                continue
            key = words[0].upper()
            try:
                if key == "CELL" and len(words) >= 8:
                    cell = tuple(float(w) for w in words[2:8])
                elif key == "LATT" and len(words) >= 2:
                    latt = int(words[1])
                elif key == "SYMM":
                    symm.append(line.split(None, 1)[1].strip().replace(" ", "").lower())
            except ValueError:
                raise InputError(f"{ins}: cannot read the line {line.strip()!r}") from None
    if abs(latt) not in _CENTRING:
        raise InputError(f"{ins}: LATT {latt} is not a SHELX lattice type")
    try:
        ops = gemmi.GroupOps([gemmi.Op(s) for s in symm + list(_CENTRING[abs(latt)])])
    except RuntimeError as exc:
        raise InputError(f"{ins}: cannot read the SYMM operators ({exc})") from None
    if latt > 0:
        ops.add_inversion()
    ops.add_missing_elements()
    return cell, gemmi.find_spacegroup_by_ops(ops)


def _has_repeats(mtz) -> bool:
    hkl = np.asarray(mtz)[:, :3].astype(np.int64)
    return len(np.unique(hkl, axis=0)) < len(hkl)


def _as_unmerged(mtz):
    """An MTZ in the unmerged layout (``M/ISYM``) for :mod:`.unmerged` to merge."""
    import gemmi

    data = np.asarray(mtz)
    out = gemmi.Mtz(with_base=True)
    out.cell, out.spacegroup = mtz.cell, mtz.spacegroup
    out.add_dataset("shelx")
    for label, ctype in (("M/ISYM", "Y"), ("I", "J"), ("SIGI", "Q")):
        out.add_column(label, ctype)
    out.set_data(np.column_stack([data[:, :3], np.ones(len(data)), data[:, 3:5]]).astype(np.float32))
    return out
