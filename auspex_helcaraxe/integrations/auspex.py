"""AUSPEX 2.3.2 integration: a drop-in ``cnn_predict`` and the ``helcaraxe auspex`` launcher.

* :func:`cnn_predict` has the signature and return convention of AUSPEX's
  ``Helcaraxe.cnn_predict(i_res, i_obs, f_res, f_obs)``: two 25-slot float arrays (or ``None`` for an
  observable not given), probabilities rounded to 2 decimals, ``-1.0`` for ranges the data do not
  reach, ``NaN`` for nonpredictable (blank) plots, ``Exception("Invalid Input")`` when no observable
  is given or none reaches an ice range. It runs this project's plots and TFLite networks (loaded once
  per process) instead of loading two Keras networks with TensorFlow on every call.
* :func:`run_auspex` runs an installed AUSPEX in this process with the pluggy host in place of its
  Helcaraxe call: AUSPEX's parsed arrays are wrapped (views, no copies) into :class:`Reflections`,
  the chosen detectors decide with their calibrated thresholds, AUSPEX draws the ranges they flag, and
  the host annotates AUSPEX's own I and F plots.

Only names and call sequences of AUSPEX are mirrored here (its code is LGPL and stays out).
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..controls import score
from ..errors import InputError
from ..network import NetworkError, load_networks, plots_for
from ..reflections import Observable, Reflections

N_SLOTS = 25
NOT_COVERED_VALUE = -1.0

# Every attribute of AUSPEX the launcher touches: (module, dotted attribute). The stand-in in
# tests/fake_auspex mirrors each of them; tests/test_auspex.py checks it has all of them.
AUSPEX_SEAMS: tuple[tuple[str, str], ...] = (
    ("auspex", "__version__"),
    ("Auspex", "IceFinder"),
    ("Auspex", "IceFinder.run_helcaraxe"),
    ("Auspex", "IceFinder._intensity_data"),  # instance attributes set in IceFinder.__init__
    ("Auspex", "IceFinder._amplitude_data"),
    ("Auspex", "IceFinder._intensity_ano_data"),
    ("Auspex", "IceFinder._amplitude_ano_data"),
    ("Auspex", "IceFinder._use_anom_if_present"),
    ("Auspex", "IceFinder._file_name"),
    ("Auspex", "IceFinder._cnn_predicted_i"),
    ("Auspex", "IceFinder._cnn_predicted_f"),
    ("Auspex", "IceFinder._helcaraxe_status"),
    ("ReflectionData.ReflectionBase", "Observation.obs"),
    ("ReflectionData.ReflectionBase", "Observation.sigma"),
    ("ReflectionData.ReflectionBase", "Observation.ires"),
    ("Plotter", "GenericPlot.generate"),
    ("Plotter", "GenericPlot.ax"),
    ("Plotter", "GenericPlot.data_type"),
    ("Parser", None),  # the command-line script, run as a module
)


# --------------------------------------------------------------------------------------------------
# 1. The drop-in cnn_predict

def cnn_predict(i_res, i_obs, f_res, f_obs, *, networks: str | os.PathLike | None = None):
    """AUSPEX's ``Helcaraxe.cnn_predict`` on this project's plots and TFLite networks.

    Inputs are used as given (AUSPEX has already kept obs ≠ 0 and σ > 0); ``networks`` is a
    directory of ``*iobs*.tflite`` / ``*fobs*.tflite`` networks (default: the shipped ones).
    """
    if f_obs is None and i_obs is None:
        raise Exception("Invalid Input")  # noqa: TRY002 - AUSPEX raises exactly this
    nets = load_networks(networks)
    out_i = out_f = None
    if i_obs is not None and i_res is not None:
        out_i = _slots("I", i_res, i_obs, nets)
    if f_obs is not None and f_res is not None:
        out_f = _slots("F", f_res, f_obs, nets)
    return out_i, out_f


def _observable(kind: str, res, obs, sigma=None, columns: tuple[str, ...] = ()) -> Observable:
    """Wrap arrays into an :class:`Observable` without copying numpy input (read-only views)."""
    d, values = np.asarray(res).view(), np.asarray(obs).view()
    if d.shape != values.shape or d.ndim != 1:
        raise ValueError(f"resolution and observation arrays differ in shape: {d.shape} vs {values.shape}")
    sigmas = np.broadcast_to(np.float32(1.0), d.shape) if sigma is None else np.asarray(sigma).view()
    return Observable(kind, columns, d, values, sigmas)


def _slots(kind: str, res, obs, nets) -> np.ndarray:
    observable = _observable(kind, res, obs)
    if len(observable) == 0:
        raise ValueError("min() iterable argument is empty")  # what AUSPEX's min(res_lst) raises
    network = nets.get(kind)
    plots = plots_for(observable, network)
    if not plots.ranges:
        raise Exception("Invalid Input")  # noqa: TRY002 - AUSPEX: no plot made
    if network is None:
        raise NetworkError(f"no {kind} network in the networks directory (need *{kind.lower()}obs*.tflite)")
    out = np.full(N_SLOTS, NOT_COVERED_VALUE)
    for r, p in zip(plots.ranges, score(observable, plots, network).p):
        out[r.index - 1] = p
    return np.around(out, 2)


# --------------------------------------------------------------------------------------------------
# 2. The launcher

NOT_INSTALLED = ("AUSPEX is not installed in this Python ({reason}); install AUSPEX 2.3.2 "
                 "(https://github.com/thorn-lab/AUSPEX) with its cctbx into this environment, "
                 "or use 'helcaraxe check FILE'")


@dataclass
class LauncherRun:
    """What one launcher run did (for its caller and the tests)."""

    detectors: str
    analysis: Any = None
    reflections: Reflections | None = None
    sources: dict[str, Any] = field(default_factory=dict)  # AUSPEX Observation objects used, by kind
    annotated: list[tuple[str, Any]] = field(default_factory=list)  # (observable, matplotlib Axes)
    slots: dict[str, np.ndarray] = field(default_factory=dict)  # what AUSPEX got, per observable


def install_dropin() -> types.ModuleType:
    """Make ``import Helcaraxe`` (AUSPEX's top-level module name) give the drop-in, so AUSPEX's
    ``from Helcaraxe import cnn_predict`` never imports TensorFlow. Must run before AUSPEX's
    ``Auspex`` module is imported (e.g. from a ``.pth`` line, see the README)."""
    shim = types.ModuleType("Helcaraxe")
    shim.__doc__ = "auspex-helcaraxe drop-in for AUSPEX's Helcaraxe module (no TensorFlow)"
    shim.cnn_predict = cnn_predict
    sys.modules["Helcaraxe"] = shim
    return shim


def _import_auspex():
    """Import AUSPEX's modules with the drop-in in place of its Helcaraxe (so no TensorFlow)."""
    previous = sys.modules.get("Helcaraxe")
    install_dropin()
    try:
        pkg = importlib.import_module("auspex")  # its __init__ puts its own directory on sys.path
        modules = {name: importlib.import_module(name)
                   for name in ("Auspex", "Plotter", "ReflectionData.ReflectionBase")}
    except Exception as exc:  # noqa: BLE001 - not installed, or e.g. numpy 2 breaking a compiled dependency
        if previous is not None:
            sys.modules["Helcaraxe"] = previous
        else:
            sys.modules.pop("Helcaraxe", None)
        reason = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, ImportError):
            reason = "importing it failed: " + reason
        raise InputError(NOT_INSTALLED.format(reason=reason)) from None
    modules["auspex"] = pkg
    return modules


def _chosen_observations(finder) -> dict[str, Any]:
    """The AUSPEX Observation objects its run_helcaraxe would use (anomalous first if allowed)."""
    anom = finder._use_anom_if_present
    chosen = {}
    for kind, ano, plain in (("I", finder._intensity_ano_data, finder._intensity_data),
                             ("F", finder._amplitude_ano_data, finder._amplitude_data)):
        obs = ano if (ano is not None and anom) else plain
        if obs is not None and np.asarray(obs.obs).size:
            chosen[kind] = obs
    return chosen


def reflections_from_finder(finder) -> tuple[Reflections, dict[str, Any]]:
    """AUSPEX's parsed arrays as :class:`Reflections`; the arrays are views of AUSPEX's (no copy)."""
    sources = _chosen_observations(finder)
    observables = {kind: _observable(kind, o.ires, o.obs, o.sigma, columns=(f"AUSPEX {kind}",))
                   for kind, o in sources.items()}
    if not observables:
        raise InputError(f"{finder._file_name}: AUSPEX found neither intensities nor amplitudes")
    n = max(len(o) for o in observables.values())
    refl = Reflections(source=str(finder._file_name), space_group="", cell=(0.0,) * 6,
                       n_reflections=n, observables=observables)
    return refl, sources


def verdict_slots(analysis, kind: str) -> np.ndarray:
    """25 slots for AUSPEX: 1.0 where the deciding detector flags the range (calibrated threshold),
    0.0 elsewhere (nonpredictable and not covered included: AUSPEX would turn NaN into ice)."""
    out = np.zeros(N_SLOTS)
    flagged = set(analysis.flagged_ranges)
    result = analysis.deciding_result(kind)
    for r in (result.ranges if result is not None else ()):
        out[r.index - 1] = 1.0 if r.index in flagged else 0.0
    return out


def run_auspex(file: str, auspex_args: Sequence[str] = (), detectors: str = "both", options=None,
               host=None) -> LauncherRun:
    """Run AUSPEX's command line on ``file`` with the host in place of its Helcaraxe call."""
    from ..host import Host

    modules = _import_auspex()
    host = host or Host()
    host.select(detectors)  # unknown detector names fail before AUSPEX starts
    run = LauncherRun(detectors=detectors)
    auspex_mod, plotter = modules["Auspex"], modules["Plotter"]
    finder_cls, plot_cls = auspex_mod.IceFinder, plotter.GenericPlot
    original_run, original_generate = finder_cls.run_helcaraxe, plot_cls.generate

    def analyse(finder):
        if getattr(finder, "_helcaraxe_analysis", None) is None:
            refl, sources = reflections_from_finder(finder)
            finder._helcaraxe_analysis = host.analyse(refl, detectors=detectors, options=options)
            run.analysis, run.reflections, run.sources = finder._helcaraxe_analysis, refl, sources
        return finder._helcaraxe_analysis

    def run_helcaraxe(self) -> None:
        """Replaces IceFinder.run_helcaraxe: the host's detectors decide, AUSPEX draws their flags."""
        analysis = analyse(self)
        kinds = analysis.reflections.observables
        self._cnn_predicted_i = verdict_slots(analysis, "I") if "I" in kinds else None
        self._cnn_predicted_f = verdict_slots(analysis, "F") if "F" in kinds else None
        if self._cnn_predicted_i is not None and self._cnn_predicted_f is not None:
            # AUSPEX ANDs I and F; our verdict is one per data set, so both carry it
            both = np.maximum(self._cnn_predicted_i, self._cnn_predicted_f)
            self._cnn_predicted_i, self._cnn_predicted_f = both, both.copy()
        run.slots = {k: v for k, v in (("I", self._cnn_predicted_i), ("F", self._cnn_predicted_f)) if v is not None}
        self._helcaraxe_status = True

    def generate(self, icefinder_handle, resolution, y_data):
        """Replaces GenericPlot.generate: AUSPEX draws, then the host annotates the same Axes."""
        result = original_generate(self, icefinder_handle, resolution, y_data)
        kind = getattr(self, "data_type", None)
        if kind in ("I", "F"):
            import matplotlib.pyplot as plt

            ax = self.ax if self.ax is not None else plt.gca()
            analysis = analyse(icefinder_handle)
            if kind in analysis.reflections.observables:
                host.annotate(ax, kind, analysis)
                run.annotated.append((kind, ax))
        return result

    argv = sys.argv
    finder_cls.run_helcaraxe, plot_cls.generate = run_helcaraxe, generate
    sys.argv = ["auspex", str(file), *auspex_args]
    try:
        import runpy

        sys.modules.pop("Parser", None)
        runpy.run_module("Parser", run_name="__main__", alter_sys=False)
    finally:
        sys.argv = argv
        finder_cls.run_helcaraxe, plot_cls.generate = original_run, original_generate
    return run


def summary_lines(run: LauncherRun) -> list[str]:
    """One line per observable and the verdict, as ``helcaraxe auspex`` prints them."""
    from ..results import EXCISED, NONPREDICTABLE

    a = run.analysis
    if a is None:
        return ["helcaraxe auspex: AUSPEX ran no ice analysis"]
    lines = []
    for kind in a.reflections.observables:
        r = a.deciding_result(kind)
        if r is None:
            continue
        blank = [x.index for x in r.ranges if x.status in (NONPREDICTABLE, EXCISED)]
        how = f"threshold {r.info['threshold']:g}" if "threshold" in r.info else f"cutoff {a.options.icefinder_cutoff:g}"
        lines.append(f"{kind}: decided by {r.detector} ({how}): flagged {r.flagged_ranges or 'none'}"
                     + (f"; nonpredictable (not ice) {blank}" if blank else ""))
    lines.append(f"verdict: {'ice in ranges ' + str(a.flagged_ranges) if a.iced else 'no ice'}")
    return lines
