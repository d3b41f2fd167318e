"""Reading reflection files into :class:`~auspex_helcaraxe.reflections.Reflections`: one dispatch.

Each format has its own module that turns a file into a ``gemmi.Mtz`` (gemmi does the parsing);
:mod:`.columns` then picks the I and F columns and applies the published filter, the same for
every format. :func:`read` sniffs the format from the file's first bytes.
"""

from __future__ import annotations

import gzip
import os
import zlib
from typing import Mapping

from ..errors import InputError
from ..reflections import Reflections
from . import mmcif, mtz, xds
from .columns import reflections_from_mtz, one_line

__all__ = ["read", "InputError"]


def read(
    path: str | os.PathLike,
    columns: Mapping[str, str] | None = None,
    block: str | int | None = None,
    data: bytes | None = None,
) -> Reflections:
    """Read a merged MTZ, PDB sf-mmCIF (optionally gzipped) or XDS_ASCII file.

    ``columns`` overrides the automatic choice, e.g. ``{"I": "IMEAN", "F": "FP"}`` (the sigma
    column is the ``Q``-type column that follows, or ``SIG<label>``). ``block`` picks the sf-mmCIF
    data block by name or 0-based number (default: the first block with reflections).
    ``data``: the file's bytes when the caller has already read them (the scan hashes them), so the
    file is not read again; sf-mmCIF is then parsed from memory, other formats still from ``path``.
    Raises :class:`InputError` with a one-line reason for anything that cannot be analysed.
    """
    path = os.fspath(path)
    if data is not None:
        return _read_data(path, data, columns, block)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not a reflection file")
    head = _head(path)
    fmt = _sniff(head)
    if fmt is None:
        raise InputError(f"{path}: not an MTZ, sf-mmCIF or XDS_ASCII file")
    module = {"mtz": mtz, "mmcif": mmcif, "xds": xds}[fmt]
    try:
        as_mtz = module.read_mtz(path, head=head, block=block)
    except InputError:
        raise
    except (RuntimeError, ValueError, IndexError, OSError, UnicodeDecodeError) as exc:
        kind = "MTZ" if fmt == "mtz" else "reflection"
        raise InputError(f"{path}: corrupt {kind} file ({one_line(exc)})") from None
    return reflections_from_mtz(path, as_mtz, columns)


def _read_data(path: str, data: bytes, columns: Mapping[str, str] | None, block: str | int | None) -> Reflections:
    """:func:`read` on bytes already in memory (gzip decompressed here, once)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = zlib.decompress(data, 47)  # gzip (or zlib) header, whole stream
        except zlib.error as exc:
            raise InputError(f"{path}: corrupt gzip file ({exc})") from None
    head = data[:4096]
    fmt = _sniff(head)
    if fmt is None:
        raise InputError(f"{path}: not an MTZ, sf-mmCIF or XDS_ASCII file")
    try:
        if fmt == "mmcif":
            as_mtz = mmcif.read_mtz(path, head=head, block=block, text=data)
        else:  # gemmi reads these from the file itself (as without ``data``)
            as_mtz = {"mtz": mtz, "xds": xds}[fmt].read_mtz(path, head=head, block=block)
    except InputError:
        raise
    except (RuntimeError, ValueError, IndexError, OSError, UnicodeDecodeError) as exc:
        kind = "MTZ" if fmt == "mtz" else "reflection"
        raise InputError(f"{path}: corrupt {kind} file ({one_line(exc)})") from None
    return reflections_from_mtz(path, as_mtz, columns)


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
        except (OSError, EOFError) as exc:
            raise InputError(f"{path}: corrupt gzip file ({exc})") from None
    return head


def _sniff(head: bytes) -> str | None:
    """The format name of a file from its (decompressed) first bytes, or None."""
    if mtz.sniff(head):
        return "mtz"
    if xds.sniff(head):
        return "xds"
    if mmcif.sniff(head):
        return "mmcif"
    return None
