"""The host contract (pluggy project ``"auspex"``): every ice detector, built-in or not, uses it.

A plugin is a module or object with ``@hookimpl`` functions, registered by the host directly
(built-ins) or through the ``auspex`` entry-point group (installed packages, like this one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from .reflections import Reflections
    from .results import AnalysisOptions, DetectorResult

PROJECT = "auspex"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class IceDetector(Protocol):
    """What ``register`` accepts: a named detector that analyses a parsed data set."""

    name: str
    description: str

    def detect(self, reflections: "Reflections", options: "AnalysisOptions") -> list["DetectorResult"]:
        """One result per observable analysed. Must not re-read files or copy the arrays."""


@hookspec
def auspex_register_ice_detectors(register: Callable[[IceDetector], None]) -> None:
    """Register ice detectors by calling ``register(detector)`` once per detector."""


@hookspec
def auspex_annotate_resolution_plot(
    ax: "Axes", observable: str, result: "DetectorResult", reflections: "Reflections"
) -> None:
    """Draw ``result`` on the host's resolution plot ``ax`` (x: 1/d² in Å⁻², y: observation).

    Called once per result and per plugin; annotate only results of your own detectors
    (``result.detector``).
    """


@hookspec
def auspex_report_section(reflections: "Reflections", results: list["DetectorResult"]) -> dict[str, Any] | None:
    """Return a JSON-serialisable dict to add to the report under ``extensions``, or None."""
