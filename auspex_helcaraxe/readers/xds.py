"""XDS_ASCII files (XDS CORRECT / XSCALE), read by gemmi."""

from __future__ import annotations

from ..errors import InputError


def sniff(head: bytes) -> bool:
    return head.lstrip().startswith(b"!FORMAT=XDS_ASCII") or head.startswith(b"!OUTPUT_FILE=XDS_ASCII")


def read_mtz(path: str, head: bytes = b"", block: str | int | None = None):
    """The file as a ``gemmi.Mtz``; unmerged files are refused."""
    import gemmi

    if b"MERGE=FALSE" in head:
        raise InputError(f"{path}: unmerged XDS_ASCII data; Helcaraxe needs merged intensities")
    return gemmi.read_xds_ascii(path).to_mtz()
