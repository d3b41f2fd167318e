"""The reference host (an AUSPEX stand-in): loads detector plugins, parses once, runs them.

Built-in detectors are registered exactly like external plugins; external ones come from the
``auspex`` entry-point group.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterable, Sequence

import pluggy

from . import hookspecs
from .errors import InputError
from .ice_ranges import ice_ranges
from .reflections import Reflections
from .results import AnalysisOptions, DetectorResult

BUILTIN_PLUGINS = ("auspex_helcaraxe.detectors.icefinder",)
DETECTOR_CHOICES = ("helcaraxe", "icefinder", "both", "all")


@dataclass(frozen=True)
class Analysis:
    """Everything the host found for one data set."""

    reflections: Reflections
    results: tuple[DetectorResult, ...]
    options: AnalysisOptions
    extensions: dict[str, Any] = field(default_factory=dict)

    def for_observable(self, kind: str) -> list[DetectorResult]:
        return [r for r in self.results if r.observable == kind]

    def result(self, detector: str, kind: str) -> DetectorResult | None:
        for r in self.results:
            if r.detector == detector and r.observable == kind:
                return r
        return None

    def deciding_result(self, kind: str) -> DetectorResult | None:
        """The result that decides the verdict for one observable: Helcaraxe when it ran with a
        network, otherwise Icefinder, otherwise the first detector that ran."""
        helcaraxe = self.result("helcaraxe", kind)
        if helcaraxe is not None and "network" in helcaraxe.info:
            return helcaraxe
        icefinder = self.result("icefinder", kind)
        if icefinder is not None:
            return icefinder
        others = self.for_observable(kind)
        return helcaraxe or (others[0] if others else None)

    @cached_property
    def combiner(self):
        """The I+F combiner card in use (``options.extra["joint"]``: a path or "none"; default the
        shipped one), or None; looked up once per analysis."""
        from .joint import load_combiner

        return load_combiner(self.options.extra.get("joint"))

    @property
    def joint(self) -> list[dict[str, Any]]:
        """The joint I+F verdict per range predicted by the networks in both observables (empty when
        the data set lacks one observable, a network is missing or no combiner is installed)."""
        combiner = self.combiner
        if combiner is None or not {"I", "F"} <= set(self.reflections.observables):
            return []
        from .joint import joint_ranges

        return joint_ranges(self, combiner)

    def decision(self) -> dict[int, dict[str, Any]]:
        """Every flagged range with the evidence it rests on: ``{index: {"by": ..., "evidence": ...}}``.

        Ranges the networks predicted in both I and F are decided by the joint rule (learned, see
        ``joint.py``); every other range by each observable's deciding detector (Helcaraxe with a
        network, otherwise Icefinder), as for files with only I or only F. Weak rings flagged across
        ranges of one observable (``pairs.py``: a pair, or summed evidence) are flagged in either case."""
        joint = {j["index"]: j for j in self.joint}
        out: dict[int, dict[str, Any]] = {}
        for index, j in joint.items():
            if j["flagged"]:
                out[index] = {"by": "joint", "evidence": j["evidence"]}
        for kind in self.reflections.observables:
            r = self.deciding_result(kind)
            if r is None:
                continue
            for x in r.ranges:
                if not x.flagged:
                    continue
                if x.index in joint:  # decided by the joint rule, unless it declined a flag across ranges (pairs.py)
                    across = x.details.get("pair_evidence") or x.details.get("summed_evidence")
                    if across is None or joint[x.index]["flagged"]:
                        continue
                    ev = across
                else:
                    ev = x.details.get("evidence") or (
                        f"{r.detector} score {x.value:+.1f} ({kind})" if isinstance(x.value, float) else f"{r.detector} ({kind})")
                entry = out.setdefault(x.index, {"by": f"{r.detector} ({kind})", "evidence": ev})
                if entry["evidence"] != ev and ev not in entry["evidence"]:
                    entry["by"] += f", {r.detector} ({kind})"
                    entry["evidence"] += f"; {ev}"
        return dict(sorted(out.items()))

    @property
    def flagged_ranges(self) -> list[int]:
        """Ranges flagged by the verdict rule (the joint I+F rule where it applies, otherwise the
        deciding detector of each observable): the data-set verdict."""
        return sorted(self.decision())

    @property
    def iced(self) -> bool:
        return bool(self.flagged_ranges)


class Host:
    """A pluggy plugin manager for the ``auspex`` project with the detectors it found."""

    def __init__(self, load_entrypoints: bool = True, plugins: Iterable[object] = ()):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        for name in BUILTIN_PLUGINS:
            self.pm.register(importlib.import_module(name), name=name)
        if load_entrypoints:
            self.pm.load_setuptools_entrypoints(hookspecs.PROJECT)
        for plugin in plugins:
            self.pm.register(plugin)

    def register(self, plugin: object, name: str | None = None) -> None:
        self.pm.register(plugin, name=name)

    @property
    def detectors(self) -> dict[str, hookspecs.IceDetector]:
        found: dict[str, hookspecs.IceDetector] = {}
        self.pm.hook.auspex_register_ice_detectors(register=lambda d: found.setdefault(d.name, d))
        return found

    def select(self, choice: str | Sequence[str] = "both") -> list[hookspecs.IceDetector]:
        """Detectors for the host flag: ``helcaraxe``, ``icefinder``, ``both``, ``all`` or names."""
        available = self.detectors
        if isinstance(choice, str):
            if choice == "all":
                names = list(available)
            elif choice == "both":
                names = ["helcaraxe", "icefinder"]
            else:
                names = [c.strip() for c in choice.split(",") if c.strip()]
        else:
            names = list(choice)
        missing = [n for n in names if n not in available]
        if missing:
            raise InputError(
                f"unknown ice detector {', '.join(missing)} (available: {', '.join(sorted(available)) or 'none'})"
            )
        return [available[n] for n in names]

    def analyse(
        self,
        reflections: Reflections,
        detectors: str | Sequence[str] = "both",
        options: AnalysisOptions | None = None,
    ) -> Analysis:
        """Run the chosen detectors on one parsed data set (the same arrays go to every detector)."""
        options = options or AnalysisOptions()
        if reflections.d_min > ice_ranges()[0].d_max:
            raise InputError(
                f"{reflections.source}: resolution {reflections.d_min:.2f} Å is too low for any ice range "
                f"(the first starts at {ice_ranges()[0].d_max} Å)"
            )
        results: list[DetectorResult] = []
        for detector in self.select(detectors):
            results.extend(detector.detect(reflections, options))
        extensions: dict[str, Any] = {}
        for section in self.pm.hook.auspex_report_section(reflections=reflections, results=results):
            if section:
                extensions.update(section)
        return Analysis(reflections, tuple(results), options, extensions)

    def annotate(self, ax, observable: str, analysis: Analysis) -> None:
        """Let every plugin draw its results for ``observable`` on ``ax``."""
        for result in analysis.for_observable(observable):
            self.pm.hook.auspex_annotate_resolution_plot(
                ax=ax, observable=observable, result=result, reflections=analysis.reflections
            )
