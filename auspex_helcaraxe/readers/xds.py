"""XDS_ASCII files (XDS CORRECT / XSCALE), merged or unmerged, read by gemmi."""

from __future__ import annotations

from .options import ReadOptions


def sniff(head: bytes) -> bool:
    return head.lstrip().startswith(b"!FORMAT=XDS_ASCII") or head.startswith(b"!OUTPUT_FILE=XDS_ASCII")


def read_mtz(path: str, head: bytes = b"", text: bytes | None = None, options: ReadOptions = ReadOptions()):
    """Merged data as a ``gemmi.Mtz``; unmerged (``MERGE=FALSE``) as the ``gemmi.XdsAscii`` itself,
    which the caller merges."""
    import gemmi

    xds = gemmi.read_xds_ascii(path)
    return xds if b"MERGE=FALSE" in head else xds.to_mtz()
