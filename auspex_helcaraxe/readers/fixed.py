"""Fixed-width reflection lines (``3I4`` then ``F8`` fields) as scalepack and SHELX write them.

Fields are sliced by column, not split on blanks: a wide number may run into its neighbour.
"""

from __future__ import annotations

import gzip

import numpy as np

from ..errors import InputError

HKL_WIDTH, FIELD = 12, 8


def read_bytes(path: str) -> bytes:
    """The file's content, decompressed when it is gzipped."""
    with open(path, "rb") as fh:
        data = fh.read()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def table(path: str, lines: list[bytes], n_values: int, first_line: int = 1, kind: str = "reflection") -> np.ndarray:
    """``h k l`` and ``n_values`` value fields of ``lines`` as float64 (a blank value field: NaN).

    ``first_line``: the line number of ``lines[0]`` in the file, for the error message.
    """
    width = HKL_WIDTH + n_values * FIELD
    padded = b"".join(ln[:width].ljust(width) for ln in lines)
    chars = np.frombuffer(padded, dtype="S1").reshape(len(lines), width)
    bounds = [(0, 4), (4, 8), (8, 12)] + [(HKL_WIDTH + j * FIELD, HKL_WIDTH + (j + 1) * FIELD) for j in range(n_values)]
    out = np.empty((len(lines), len(bounds)), dtype=np.float64)
    for j, (a, b) in enumerate(bounds):
        field = np.ascontiguousarray(chars[:, a:b]).view(f"S{b - a}").ravel()
        try:
            out[:, j] = np.where(np.char.strip(field) == b"", b"nan", field).astype(np.float64)
        except ValueError:
            bad = next((i for i, ln in enumerate(lines) if not _number(ln[a:b])), 0)
            text = lines[bad].decode("ascii", "replace")
            raise InputError(f"{path}: {kind} line {first_line + bad} not readable: {text!r}") from None
    if not np.isfinite(out[:, :3]).all() or (out[:, :3] != np.round(out[:, :3])).any():
        raise InputError(f"{path}: {kind} line without integer h k l")
    return out


def parses(line: bytes, n_values: int) -> bool:
    """True when ``line`` reads as ``h k l`` (integers) and ``n_values`` numbers in the fixed layout."""
    fields = [line[a:a + 4] for a in (0, 4, 8)]
    values = [line[HKL_WIDTH + j * FIELD: HKL_WIDTH + (j + 1) * FIELD] for j in range(n_values)]
    return (all(f.strip().lstrip(b"-").isdigit() for f in fields)
            and all(v.strip() and _number(v) for v in values))


def _number(text: bytes) -> bool:
    try:
        float(text.strip() or b"nan")
        return True
    except ValueError:
        return False
