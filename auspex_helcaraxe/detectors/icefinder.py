"""The AUSPEX Icefinder score as the host's built-in statistical ice detector (a pluggy plugin).

The host registers this module like any external plugin (``host.BUILTIN_PLUGINS``); it uses only
the public hooks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..hookspecs import hookimpl
from ..ice_ranges import IceRange, ice_ranges
from ..icefinder import IcefinderScore, score
from ..reflections import Observable, Reflections
from ..results import NO_BINS, NOT_COVERED, SCORED, AnalysisOptions, DetectorResult, RangeResult

NAME = "icefinder"
COLOUR = "tab:red"


class IcefinderDetector:
    """AUSPEX Icefinder (Thorn et al. 2017): outlying standardised bin means inside ice ranges."""

    name = NAME
    description = "AUSPEX Icefinder: |score| ≥ cutoff in 0.001 Å⁻¹ bins inside ice ranges (Thorn et al. 2017)"

    def detect(self, reflections: Reflections, options: AnalysisOptions) -> list[DetectorResult]:
        """One result per observable (I, then F) present in ``reflections``."""
        return [
            self.detect_observable(kind, reflections.observables[kind], options.icefinder_cutoff)
            for kind in ("I", "F")
            if kind in reflections.observables
        ]

    def detect_observable(self, kind: str, observable: Observable, cutoff: float) -> DetectorResult:
        """Score one observable; a data set too small to score gives a result with a message."""
        info: dict[str, Any] = {"columns": list(observable.columns), "cutoff": float(cutoff)}
        try:
            found = score(observable, cutoff=cutoff)
        except InputError as exc:
            ranges = tuple(_unscored(r, observable.d_min, str(exc)) for r in ice_ranges())
            return DetectorResult(NAME, kind, ranges, info, message=str(exc))
        info["n_bins"] = int(found.bins.size)
        info["_bins"] = {
            "mean_inv_d2": found.mean_inv_d2,
            "score": found.score,
            "stdmean": found.stdmean,
            "estimate": found.estimate,
            "flagged": found.flagged,
        }
        ranges = tuple(_range_result(r, observable.d_min, found) for r in ice_ranges())
        return DetectorResult(NAME, kind, ranges, info)


def _unscored(r: IceRange, d_min: float, reason: str) -> RangeResult:
    if not r.covered_by(d_min):
        return RangeResult(r.index, r.d_max, r.d_min, NOT_COVERED)
    return RangeResult(r.index, r.d_max, r.d_min, NO_BINS, reason=reason, details={"n_bins": 0, "n_flagged_bins": 0})


def _range_result(r: IceRange, d_min: float, found: IcefinderScore) -> RangeResult:
    if not r.covered_by(d_min):
        return RangeResult(r.index, r.d_max, r.d_min, NOT_COVERED)
    in_range = found.bins_in(r)
    scores = found.score[in_range]
    finite = scores[np.isfinite(scores)]
    details = {"n_bins": int(in_range.sum()), "n_flagged_bins": int((in_range & found.flagged).sum())}
    if finite.size == 0:
        reason = (
            "no 0.001 Å⁻¹ bin of 1/d has its mean 1/d² inside this range"
            if scores.size == 0
            else "no bin of this range has a score (each holds one observation or identical values)"
        )
        return RangeResult(r.index, r.d_max, r.d_min, NO_BINS, reason=reason, details=details)
    value = float(finite[np.argmax(np.abs(finite))])
    flagged = r.index in found.flagged_ranges
    return RangeResult(r.index, r.d_max, r.d_min, SCORED, value, flagged, None, details)


@hookimpl
def auspex_register_ice_detectors(register) -> None:
    register(IcefinderDetector())


@hookimpl
def auspex_annotate_resolution_plot(ax, observable: str, result: DetectorResult, reflections: Reflections) -> None:
    """Flagged ranges as red hatched outlines, flagged bins as red ▼ along the top of the axes."""
    if result.detector != NAME or not result.iced:
        return
    label: str | None = f"Icefinder |score| ≥ {result.info.get('cutoff', 5.0):g}"
    by_index = {r.index: r for r in ice_ranges()}
    for index in result.flagged_ranges:
        r = by_index[index]
        ax.axvspan(
            r.inv_d2_low, r.inv_d2_high, fill=False, hatch="//", edgecolor=COLOUR, lw=1.2, zorder=3, label=label
        )
        label = None
    bins = result.info.get("_bins")
    if bins is not None and np.any(bins["flagged"]):
        x = np.asarray(bins["mean_inv_d2"])[np.asarray(bins["flagged"])]
        ax.plot(
            x,
            np.full(x.size, 0.97),
            linestyle="none",
            marker="v",
            color=COLOUR,
            markersize=6,
            transform=ax.get_xaxis_transform(),
            scalex=False,
            scaley=False,
            clip_on=False,
            zorder=4,
        )
