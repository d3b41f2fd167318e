"""MTZ files (CCP4), read by gemmi."""

from __future__ import annotations

from ..errors import InputError


def sniff(head: bytes) -> bool:
    return head[:4] == b"MTZ "


def read_mtz(path: str, head: bytes = b"", block: str | int | None = None):
    """The file as a ``gemmi.Mtz``."""
    import gemmi

    mtz = gemmi.read_mtz_file(path)
    if mtz.array.shape[0] != mtz.nreflections or mtz.array.shape[1] != len(mtz.columns):
        raise InputError(f"{path}: corrupt MTZ file (data do not match the header)")
    return mtz


def reject_unmerged(path: str, mtz) -> None:
    """Refuse an MTZ with batch or M/ISYM columns (unmerged data)."""
    labels = {c.label for c in mtz.columns}
    if "M/ISYM" in labels or any(c.type == "B" for c in mtz.columns) or len(mtz.batches) > 0:
        raise InputError(f"{path}: unmerged data (batch/M/ISYM columns); Helcaraxe needs merged intensities or amplitudes")
