"""What a caller may tell a format reader beyond the file itself."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReadOptions:
    """``block``: sf-mmCIF data block (name or 0-based number). ``cell`` / ``space_group``: symmetry for
    formats that carry none (SHELX ``.hkl``)."""

    block: str | int | None = None
    cell: tuple[float, ...] | None = None
    space_group: str | None = None
