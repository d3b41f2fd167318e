"""The parsed data set every detector receives: one immutable object of read-only numpy arrays.

Readers (:mod:`auspex_helcaraxe.readers`) make it; the host reads a file once and every detector
receives the same :class:`Reflections`: no detector re-reads the file or copies its arrays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .readers.unmerged import MergeInfo


@dataclass(frozen=True)
class Observable:
    """One observable (``"I"`` or ``"F"``) after the published filter (obs ≠ 0, sigma > 0).

    Arrays are in file order and read-only. ``columns`` names the file columns they came from.
    ``hkl`` (n×3 Miller indices) is set by the readers; hosts that hand over only resolutions and
    values (AUSPEX) leave it None.
    """

    kind: str
    columns: tuple[str, ...]
    d: np.ndarray
    values: np.ndarray
    sigmas: np.ndarray
    hkl: np.ndarray | None = None

    def __post_init__(self) -> None:
        for a in (self.d, self.values, self.sigmas, self.hkl):
            if a is not None:
                a.flags.writeable = False

    def __len__(self) -> int:
        return int(self.d.size)

    @property
    def d_min(self) -> float:
        """Highest resolution (smallest d, Å) of the kept observations."""
        return float(self.d.min()) if self.d.size else float("inf")


@dataclass(frozen=True)
class Reflections:
    """A merged data set as the host parsed it: cell, space group and the I and/or F observables.

    ``merged``: set when the reader merged unmerged data on the fly (what it found). ``dropped``:
    reflections the reader discarded as invalid, by reason (``readers.columns.DROP_REASONS``).
    """

    source: str
    space_group: str
    cell: tuple[float, float, float, float, float, float]
    n_reflections: int
    observables: Mapping[str, Observable] = field(default_factory=dict)
    merged: "MergeInfo | None" = None
    dropped: Mapping[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return os.path.basename(self.source)

    @property
    def d_min(self) -> float:
        """Highest resolution over all observables (Å)."""
        return min((o.d_min for o in self.observables.values()), default=float("inf"))
