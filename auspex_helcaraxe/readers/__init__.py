"""Reading reflection files into :class:`~auspex_helcaraxe.reflections.Reflections`: one dispatch.

Each format has its own module whose ``read_mtz`` turns a file into a ``gemmi.Mtz`` (gemmi does the
parsing where it reads the format; small readers only for scalepack and SHELX). Unmerged data are
merged on the fly by :mod:`.unmerged` (gemmi ``Intensities``); :mod:`.columns` then picks the I and F
columns, checks the values and applies the published filter, the same for every format.
:func:`read` sniffs the format from the file's first bytes.
"""

from __future__ import annotations

import gzip
import os
import zlib
from typing import Mapping, Sequence

from ..errors import InputError
from ..reflections import Reflections
from . import mmcif, mtz, scalepack, shelx, unmerged, xds
from .columns import one_line, reflections_from_mtz
from .options import ReadOptions

__all__ = ["read", "InputError", "ReadOptions", "FORMATS"]

# Sniffed in this order; the first module whose ``sniff(head)`` is true reads the file.
FORMATS = {"mtz": mtz, "xds": xds, "scalepack": scalepack, "mmcif": mmcif, "shelx": shelx}
_NAMES = "an MTZ, sf-mmCIF, XDS_ASCII, scalepack or SHELX HKLF 4 file"


def read(
    path: str | os.PathLike,
    columns: Mapping[str, str] | None = None,
    block: str | int | None = None,
    data: bytes | None = None,
    cell: Sequence[float] | None = None,
    space_group: str | None = None,
) -> Reflections:
    """Read an MTZ (merged or unmerged), PDB sf-mmCIF (optionally gzipped), XDS_ASCII / XSCALE,
    scalepack ``.sca`` or SHELX ``HKLF 4`` file.

    ``columns`` overrides the automatic choice, e.g. ``{"I": "IMEAN", "F": "FP"}`` (the sigma
    column is the ``Q``-type column that follows, or ``SIG<label>``). ``block`` picks the sf-mmCIF
    data block by name or 0-based number (default: the first block with reflections).
    ``data``: the file's bytes when the caller has already read them (the scan hashes them), so the
    file is not read again where the format's reader parses from memory (sf-mmCIF, scalepack, SHELX).
    ``cell`` (a, b, c, α, β, γ) and ``space_group``: symmetry for formats that carry none (SHELX
    ``.hkl`` without an ``.ins``/``.res`` beside it).
    Unmerged data are merged (``Reflections.merged`` says so); reflections with invalid resolutions or
    values are dropped and counted (``Reflections.dropped``).
    Raises :class:`InputError` with a one-line reason for anything that cannot be analysed.
    """
    path = os.fspath(path)
    options = ReadOptions(block=block, cell=tuple(cell) if cell is not None else None, space_group=space_group)
    if data is None:
        if not os.path.exists(path):
            raise InputError(f"{path}: no such file")
        if os.path.isdir(path):
            raise InputError(f"{path}: is a directory, not a reflection file")
        head = _head(path)
    else:
        data = _gunzip(path, data)
        head = data[:4096]
    fmt = next((name for name, module in FORMATS.items() if module.sniff(head)), None)
    if fmt is None:
        raise InputError(f"{path}: not {_NAMES}")
    try:
        parsed = FORMATS[fmt].read_mtz(path, head=head, text=data, options=options)
        merge = None
        if unmerged.needs_merging(parsed):
            parsed, merge = unmerged.merge(path, parsed)
    except InputError:
        raise
    except (RuntimeError, ValueError, IndexError, OSError, UnicodeDecodeError, EOFError) as exc:
        kind = "MTZ" if fmt == "mtz" else "reflection"
        raise InputError(f"{path}: corrupt {kind} file ({one_line(exc)})") from None
    return reflections_from_mtz(path, parsed, columns, merged=merge)


def _gunzip(path: str, data: bytes) -> bytes:
    """``data`` decompressed when it is gzipped (once, in memory)."""
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return zlib.decompress(data, 47)  # gzip (or zlib) header, whole stream
    except zlib.error as exc:
        raise InputError(f"{path}: corrupt gzip file ({exc})") from None


def _head(path: str, size: int = 4096) -> bytes:
    """The first bytes of the file, decompressed when it is gzipped."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(size)
    except OSError as exc:
        raise InputError(f"{path}: cannot be opened ({exc.strerror})") from None
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{path}: corrupt gzip file ({one_line(exc)})") from None
    return head
