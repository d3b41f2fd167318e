"""Plain result types that detectors return and the host, figures and reports consume."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Range statuses.
PREDICTED = "predicted"  # Helcaraxe: the network saw the plot
NONPREDICTABLE = "nonpredictable"  # Helcaraxe: (partly) blank plot, no prediction
EXCISED = "excised"  # blank because the range's reflections were cut out during processing
NOT_COVERED = "not covered"  # the data do not reach this range
NO_NETWORK = "no network"  # Helcaraxe: no network installed for this observable
SCORED = "scored"  # Icefinder: the range holds scored bins
NO_BINS = "no bins"  # Icefinder: covered, but no bin of the range could be scored


@dataclass(frozen=True)
class RangeResult:
    """A detector's finding for one ice range (``index``: 1-based Auspex numbering)."""

    index: int
    d_max: float
    d_min: float
    status: str
    value: float | None = None  # Helcaraxe: probability; Icefinder: the score of largest magnitude
    flagged: bool = False
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DetectorResult:
    """What one detector found for one observable (``"I"`` or ``"F"``) of a data set."""

    detector: str
    observable: str
    ranges: tuple[RangeResult, ...]
    info: dict[str, Any] = field(default_factory=dict)  # e.g. network name and sha256
    message: str | None = None  # a note for the user (e.g. why nothing was predicted)

    @property
    def flagged_ranges(self) -> list[int]:
        return [r.index for r in self.ranges if r.flagged]

    @property
    def iced(self) -> bool:
        return any(r.flagged for r in self.ranges)

    def range(self, index: int) -> RangeResult | None:
        for r in self.ranges:
            if r.index == index:
                return r
        return None


@dataclass(frozen=True)
class AnalysisOptions:
    """Settings the host hands to every detector (plugins may read their own keys in ``extra``)."""

    threshold: float | None = None  # Helcaraxe decision threshold; None: the model card's (0.5)
    networks: str | None = None  # directory of TFLite networks; None: the shipped ones
    icefinder_cutoff: float = 5.0
    explain: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
