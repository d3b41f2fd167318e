"""The Helcaraxe detector plugin: plots per ice range → TFLite network → per-range verdicts.

Exposed through the ``auspex`` entry-point group, so any pluggy host that calls
``load_setuptools_entrypoints("auspex")`` gets it by installing this package.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import pairs
from ..controls import Scores, excess, score
from ..hookspecs import hookimpl
from ..ice_ranges import ice_ranges
from ..network import (DEFAULT_THRESHOLD, NO_NETWORK_HINT, SIZE_STEPS, Network, flag_thresholds, load_networks,
                       plots_for)
from ..plots import RangePlots
from ..reflections import Reflections
from ..results import (
    EXCISED,
    NO_NETWORK,
    NONPREDICTABLE,
    NOT_COVERED,
    PREDICTED,
    AnalysisOptions,
    DetectorResult,
    RangeResult,
)

NAME = "helcaraxe"


class HelcaraxeDetector:
    """Helcaraxe (Nolte et al. 2022): CNN verdicts on 80×80 histograms of each ice range."""

    name = NAME
    description = "Helcaraxe CNN on per-range I/F vs resolution histograms (Nolte et al. 2022)"

    def detect(self, reflections: Reflections, options: AnalysisOptions) -> list[DetectorResult]:
        networks = load_networks(options.networks)
        return [
            self.detect_observable(obs_kind, reflections, networks.get(obs_kind), options)
            for obs_kind in ("I", "F")
            if obs_kind in reflections.observables
        ]

    def detect_observable(
        self, kind: str, reflections: Reflections, network: Network | None, options: AnalysisOptions
    ) -> DetectorResult:
        plots = plots_for(reflections.observables[kind], network)
        threshold = options.threshold if options.threshold is not None else (
            network.card.threshold if network else DEFAULT_THRESHOLD
        )
        every = True if options.extra.get("controls") == "all" else None  # every range's windows (fitting)
        obs = reflections.observables[kind]
        scores = pair = summed = None
        info: dict[str, Any] = {"columns": list(obs.columns), "threshold": threshold}
        per_plot = np.full(len(plots.ranges), float(threshold))
        if network is not None and options.threshold is None:  # --threshold applies to every plot
            per_plot = flag_thresholds(network.card, plots.n_in_range)
            info.update({key: list(getattr(network.card, key)) for key in SIZE_STEPS
                         if getattr(network.card, key) is not None})
        if network is not None:  # windows where the network alone reaches the plot's own threshold or the card's
            window_t = np.minimum(per_plot, threshold)
            scores = score(obs, plots, network, window_t, every)
            scores, summed = pairs.check_summed(obs, plots, network, scores, window_t)
            scores, pair = pairs.check(obs, plots, network, scores, window_t)
            info["network"] = {"name": network.card.name, "sha256": network.card.sha256, "version": network.card.version}
            info["plot_scale"] = plots.scale
            if scores.baseline is not None:
                info["control_baseline"] = scores.baseline
                info["control_aggregate"] = scores.aggregate
            if pair is not None:
                info["pair_threshold"] = pair.threshold
                if network.card.pair_steps is not None:
                    info["pair_steps"] = network.card.pair_steps_list
            if summed is not None:
                info["summed_evidence"] = list(network.card.summed_evidence)
        results = _range_results(plots, scores, per_plot, kind, pair, np.sign(per_plot - threshold), summed)
        if network is None:
            message = NO_NETWORK_HINT
        else:  # the card's caveat for files whose only observable this is (evaluation.md)
            message = network.card.alone_caveat if set(reflections.observables) == {kind} else None
        return DetectorResult(detector=NAME, observable=kind, ranges=results, info=info, message=message)


def _range_results(plots: RangePlots, scores: Scores | None, thresholds: np.ndarray, kind: str = "?",
                   pair: pairs.Pair | None = None, by_size: np.ndarray | None = None,
                   summed: pairs.Summed | None = None):
    """One RangeResult per ice range; ``thresholds``: each plot's threshold for a flag on its own,
    ``by_size``: +1 where the card's sparse_threshold raised it, −1 where its dense_threshold lowered it;
    ``pair``, ``summed``: the rules across ranges."""
    by_index = {r.index: k for k, r in enumerate(plots.ranges)}
    paired = pair.ranks if pair is not None else ()
    carried = summed.ranks if summed is not None else ()
    excised = plots.excised()
    out = []
    for r in ice_ranges():
        k = by_index.get(r.index)
        if k is None:
            out.append(RangeResult(r.index, r.d_max, r.d_min, NOT_COVERED))
            continue
        details = {
            "n_reflections": int(plots.n_in_range[k]),
            "relative_completeness": round(float(plots.relative_completeness[k]), 4),
            "expected_in_gap": round(float(plots.expected_in_gap[k]), 1),
            "y_limits": [float(v) for v in plots.y_limits[k]],
        }
        reason = plots.blank_reason[k]
        if reason is not None:
            status = EXCISED if excised[k] else NONPREDICTABLE
            if status == EXCISED:
                reason = "reflections missing, ice ring excised during processing? " + reason
            out.append(RangeResult(r.index, r.d_max, r.d_min, status, None, False, reason, details))
        elif scores is None:
            out.append(RangeResult(r.index, r.d_max, r.d_min, NO_NETWORK, None, False, NO_NETWORK_HINT, details))
        else:
            p, threshold = float(scores.p[k]), float(thresholds[k])
            details["evidence"] = _evidence(scores, k, threshold, kind)
            if by_size is not None and by_size[k]:
                details["evidence"] += f" ({'sparse' if by_size[k] > 0 else 'large'} plot: {int(plots.n_in_range[k])} reflections)"
            if scores.baseline is not None:
                details["network_probability"] = round(float(scores.network[k]), 4)
                details["control_probabilities"] = ([round(float(c), 4) for c in scores.controls[k]]
                                                    if scores.checked[k] else None)
            if k in carried:
                details["summed"] = [plots.ranges[j].index for j in carried]
                details["summed_evidence"] = pairs.summed_evidence(summed, plots, kind)
                if p < threshold:
                    details["evidence"] = details["summed_evidence"]
            if k in paired:
                details["pair"] = [plots.ranges[j].index for j in paired]
                details["pair_evidence"] = pairs.evidence(scores, pair, plots, kind)
                if p < threshold:
                    details["evidence"] = details["pair_evidence"]
            flagged = p >= threshold or k in paired or k in carried
            out.append(RangeResult(r.index, r.d_max, r.d_min, PREDICTED, p, flagged, None, details))
    return tuple(out)


def _evidence(scores: Scores, k: int, threshold: float, kind: str) -> str:
    """What a range's verdict rests on, in one line."""
    p, rel = float(scores.p[k]), "≥" if scores.p[k] >= threshold else "<"
    if scores.baseline is None or not scores.checked[k]:
        return f"network p={p:.2f} {rel} {threshold:.2f} ({kind})"
    c = scores.controls[k]
    if not len(c):
        return f"network p={p:.2f} {rel} {threshold:.2f} ({kind}; no control window inside the data)"
    windows = ", ".join(f"{v:.2f}" for v in c)
    if excess(c, scores.baseline, scores.aggregate) == 0:
        return f"network p={p:.2f} {rel} {threshold:.2f} ({kind}; control windows p={windows}, baseline {scores.baseline:.2f})"
    return (f"network p={scores.network[k]:.2f}, {p:.2f} {rel} {threshold:.2f} after control windows p={windows} "
            f"above baseline {scores.baseline:.2f} ({kind})")


@hookimpl
def auspex_register_ice_detectors(register) -> None:
    register(HelcaraxeDetector())


@hookimpl
def auspex_annotate_resolution_plot(ax, observable: str, result: DetectorResult, reflections: Reflections) -> None:
    """Filled blue bands on flagged ranges; the probability written over every predicted range."""
    if result.detector != NAME:
        return
    trans = ax.get_xaxis_transform()
    threshold = result.info.get("threshold", DEFAULT_THRESHOLD)
    label = f"Helcaraxe p ≥ {threshold:g}"
    if "sparse_threshold" in result.info:  # named when a flag rests on a sparse plot's own p (≥ the raised t)
        n, t = result.info["sparse_threshold"]
        if any(r.flagged and r.value is not None and r.value >= t and r.details.get("n_reflections", n) < n
               for r in result.ranges):
            label += f" (≥ {t:g} below {n} reflections)"
    if "dense_threshold" in result.info:  # named when a flag rests on a large plot's own p below the card's t
        n, t = result.info["dense_threshold"]
        if any(r.flagged and r.value is not None and t <= r.value < threshold and r.details.get("n_reflections", 0) >= n
               for r in result.ranges):
            label += f" (≥ {t:g} from {n} reflections)"
    if any("pair" in r.details for r in result.ranges if r.flagged):
        label += f" or paired rings ≥ {result.info['pair_threshold']:g}"
    if any("summed" in r.details for r in result.ranges if r.flagged):
        label += f" or summed weak evidence ≥ {result.info['summed_evidence'][2]:g}"
    labelled = False
    for r in result.ranges:
        lo, hi = 1.0 / r.d_max**2, 1.0 / r.d_min**2
        mid = 0.5 * (lo + hi)
        if r.flagged:
            ax.axvspan(lo, hi, color="tab:blue", alpha=0.35, lw=0, zorder=1,
                       label=None if labelled else label)
            labelled = True
        if r.status == PREDICTED:
            text, style = f"{r.value:.2f}", dict(color="tab:blue" if r.flagged else "0.35",
                                                  fontweight="bold" if r.flagged else "normal")
        elif r.status in (NONPREDICTABLE, EXCISED, NO_NETWORK):
            text, style = {NONPREDICTABLE: "n/p", EXCISED: "excised", NO_NETWORK: "–"}[r.status], dict(color="0.5")
        else:
            continue
        ax.text(mid, 0.94, text, transform=trans, rotation=90, ha="center", va="top", fontsize=7, zorder=5, **style)
