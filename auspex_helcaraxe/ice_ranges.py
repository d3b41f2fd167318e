"""The 25 Auspex ice-ring resolution ranges (Thorn et al. 2017), loaded from ``resources/``."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class IceRange:
    """One ice-ring resolution range; ``index`` is the 1-based Auspex numbering."""

    index: int
    d_max: float
    d_min: float
    inv_d2_low: float
    inv_d2_high: float

    def covered_by(self, data_d_min: float) -> bool:
        """True when data reaching ``data_d_min`` (Å) reach into this range (published rule)."""
        return data_d_min <= self.d_max

    def partially_covered_by(self, data_d_min: float) -> bool:
        """True when the data's high-resolution limit lies inside the range."""
        return self.d_min < data_d_min <= self.d_max


@lru_cache(maxsize=1)
def ice_ranges() -> tuple[IceRange, ...]:
    """All 25 ranges, ordered from low (range 1, 3.95 Å) to high resolution (range 25, 0.97 Å)."""
    text = resources.files("auspex_helcaraxe.resources").joinpath("ice_ranges.csv").read_text()
    rows = csv.DictReader(io.StringIO("\n".join(l for l in text.splitlines() if not l.startswith("#"))))
    return tuple(
        IceRange(
            index=int(r["index"]),
            d_max=float(r["d_max_A"]),
            d_min=float(r["d_min_A"]),
            inv_d2_low=float(r["inv_d2_low"]),
            inv_d2_high=float(r["inv_d2_high"]),
        )
        for r in rows
    )
