"""A third-party ice detector plugin, as another package would ship it (used by test_host.py)."""

from auspex_helcaraxe.hookspecs import hookimpl
from auspex_helcaraxe.ice_ranges import ice_ranges
from auspex_helcaraxe.results import NOT_COVERED, SCORED, DetectorResult, RangeResult


class MeanJumpDetector:
    """Flags a range when the mean observation inside it exceeds 1.4 times the mean just outside."""

    name = "meanjump"
    description = "toy detector: mean inside a range vs the shells next to it"

    def __init__(self):
        self.seen_arrays = []

    def detect(self, reflections, options):
        out = []
        for kind, obs in reflections.observables.items():
            self.seen_arrays.append(obs.values)
            rows = []
            for r in ice_ranges():
                if not r.covered_by(obs.d_min):
                    rows.append(RangeResult(r.index, r.d_max, r.d_min, NOT_COVERED))
                    continue
                inside = obs.values[(obs.d >= r.d_min) & (obs.d <= r.d_max)]
                width = r.d_max - r.d_min
                near = obs.values[((obs.d > r.d_max) & (obs.d < r.d_max + width))
                                  | ((obs.d < r.d_min) & (obs.d > r.d_min - width))]
                ratio = float(inside.mean() / near.mean()) if inside.size and near.size else 1.0
                rows.append(RangeResult(r.index, r.d_max, r.d_min, SCORED, ratio, ratio > 1.4))
            out.append(DetectorResult(self.name, kind, tuple(rows)))
        return out


DETECTOR = MeanJumpDetector()
ANNOTATED = []


@hookimpl
def auspex_register_ice_detectors(register):
    register(DETECTOR)


@hookimpl
def auspex_annotate_resolution_plot(ax, observable, result, reflections):
    if result.detector != DETECTOR.name:
        return
    for r in result.ranges:
        if r.flagged:
            ax.axvline(1 / r.d_min**2, color="green", label="meanjump")
            ANNOTATED.append((observable, r.index))


@hookimpl
def auspex_report_section(reflections, results):
    return {"meanjump": {"n_results": sum(r.detector == "meanjump" for r in results)}}
