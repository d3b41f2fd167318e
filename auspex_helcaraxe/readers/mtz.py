"""MTZ files (CCP4), merged or unmerged (``M/ISYM`` + ``BATCH``), read by gemmi."""

from __future__ import annotations

from ..errors import InputError
from .options import ReadOptions


def sniff(head: bytes) -> bool:
    return head[:4] == b"MTZ "


def read_mtz(path: str, head: bytes = b"", text: bytes | None = None, options: ReadOptions = ReadOptions()):
    """The file as a ``gemmi.Mtz`` (gemmi reads it from ``path``)."""
    import gemmi

    mtz = gemmi.read_mtz_file(path)
    if mtz.array.shape[0] != mtz.nreflections or mtz.array.shape[1] != len(mtz.columns):
        raise InputError(f"{path}: corrupt MTZ file (data do not match the header)")
    return mtz
