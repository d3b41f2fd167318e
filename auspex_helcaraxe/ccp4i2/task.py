"""The CCP4i2 ``helcaraxe`` plugin script: reads the observed data with
:func:`auspex_helcaraxe.readers.read`, runs the host's ice detectors in-process, draws the
annotated figures and writes ``program.xml``. No external program is started.

Errors a user can fix (unreadable file, no usable columns, too low resolution, missing networks)
end the job as FAILED with a one-line message in the job's error report (``diagnostic.xml``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ccp4i2.core.CCP4ErrorHandling import SEVERITY_ERROR, CErrorReport
from ccp4i2.core.CCP4PluginScript import CPluginScript

from ..errors import InputError
from ..network import NetworkError
from ..readers import read
from ..reflections import Reflections
from ..results import AnalysisOptions
from . import TASK_NAME
from .program_xml import write_program_xml

logger = logging.getLogger(__name__)

# CObsDataFile content flags (1 IPAIR, 2 FPAIR, 3 IMEAN, 4 FMEAN) -> the observable they hold.
CONTENT_KIND = {1: "I", 2: "F", 3: "I", 4: "F"}
FIGURE_STEM = "helcaraxe"


class Helcaraxe(CPluginScript):
    """Ice-ring detection (Helcaraxe networks and the Icefinder score) as a CCP4i2 task."""

    TASKNAME = TASK_NAME
    TASKVERSION = 1
    ERROR_CODES = {
        201: {"description": "The observed data cannot be analysed"},
        202: {"description": "The Helcaraxe networks cannot be used"},
        203: {"description": "Unexpected error while analysing the data"},
    }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reflections: Reflections | None = None
        self.analysis = None
        self.figures: list[Path] = []

    # -- CPluginScript steps -------------------------------------------------------------------
    def processInputFiles(self) -> int:
        """Read the observed data (checked against its content flag) and check the networks option."""
        obs_file = self.container.inputData.F_SIGF
        try:
            self.reflections = read_observed_data(obs_file.getFullPath(), _content_flag(obs_file))
        except InputError as exc:
            return self._fail(201, str(exc))
        networks = self._networks()
        if networks is not None and not os.path.isdir(networks):
            return self._fail(202, f"{networks}: no such directory (NETWORKS must name a directory of TFLite networks)")
        return CPluginScript.SUCCEEDED

    def makeCommandAndScript(self) -> CErrorReport:
        """Nothing to do: the analysis runs in-process."""
        return CErrorReport()

    def startProcess(self, *args, **kwargs) -> int:
        """Run the detectors, draw the figures and write ``program.xml``."""
        from ..host import Host

        cp = self.container.controlParameters
        detectors = str(cp.DETECTORS) if cp.DETECTORS.isSet() else "both"
        threshold = float(cp.THRESHOLD) if cp.THRESHOLD.isSet() and float(cp.THRESHOLD) > 0 else None
        d_limit = float(cp.DLIM) if cp.DLIM.isSet() and float(cp.DLIM) > 0 else None
        options = AnalysisOptions(threshold=threshold, networks=self._networks())
        try:
            host = Host()
            self.analysis = host.analyse(self.reflections, detectors=detectors, options=options)
            self.figures = draw_figures(self.analysis, host, self.workDirectory, d_limit)
            write_program_xml(self.analysis, self.makeFileName("PROGRAMXML"), [p.name for p in self.figures])
        except NetworkError as exc:
            return self._fail(202, str(exc))
        except InputError as exc:
            return self._fail(201, str(exc))
        except Exception as exc:  # a bug, not bad input: keep the job readable, log the traceback
            logger.exception("helcaraxe task failed")
            return self._fail(203, f"{type(exc).__name__}: {_one_line(exc)}")
        return CPluginScript.SUCCEEDED

    def postProcessCheck(self, processId=None) -> tuple[int, int, int]:
        """No subprocess ran: success is an analysis and its ``program.xml``."""
        if self.analysis is not None and os.path.isfile(self.makeFileName("PROGRAMXML")):
            return self.SUCCEEDED, 0, 0
        return self.FAILED, 1, 1

    def processOutputFiles(self) -> CErrorReport:
        """Register the figures as ``IM_OUT`` images (as the AUSPEX task does)."""
        images = self.container.outputData.IM_OUT
        for path in self.figures:
            images.append(images.makeItem())
            images[-1].setFullPath(str(path))
            kind = path.stem.rsplit("_", 1)[-1]
            images[-1].annotation = f"Helcaraxe ice-ring plot ({'intensities' if kind == 'I' else 'amplitudes'})"
        return CErrorReport()

    # -- helpers -------------------------------------------------------------------------------
    def _networks(self) -> str | None:
        value = self.container.controlParameters.NETWORKS
        text = str(value).strip() if value.isSet() else ""
        return os.path.expanduser(text) if text else None

    def _fail(self, code: int, details: str) -> int:
        self.errorReport.append(
            klass=self.__class__.__name__, code=code, details=details, name=TASK_NAME, severity=SEVERITY_ERROR
        )
        return CPluginScript.FAILED


def _content_flag(obs_file) -> int | None:
    try:
        if not obs_file.contentFlag.isSet():
            obs_file.setContentFlag()
        flag = int(obs_file.contentFlag)
    except Exception:  # an unreadable file has no content flag; read() says why
        return None
    return flag if flag in CONTENT_KIND else None


def read_observed_data(path: str | os.PathLike, content_flag: int | None = None) -> Reflections:
    """Read ``path`` and check that it holds the observable its CObsDataFile content flag names.

    Every observable found is analysed: a CCP4i2 observed-data object is a mini-MTZ holding one
    kind (flags 1, 3: intensities; 2, 4: amplitudes), a whole MTZ given to i2run may hold both.
    """
    if not path:
        raise InputError("no observed-data file given")
    reflections = read(path)
    kind = CONTENT_KIND.get(content_flag) if content_flag else None
    if kind is not None and kind not in reflections.observables:
        found = ", ".join(reflections.observables) or "none"
        raise InputError(f"{path}: the file should hold {'intensities' if kind == 'I' else 'amplitudes'} "
                         f"(content flag {content_flag}) but no usable {kind} column was found (found: {found})")
    return reflections


def draw_figures(analysis, host, out_dir: str | os.PathLike, d_limit: float | None = None) -> list[Path]:
    """One PNG per observable (``helcaraxe_I.png``, ``helcaraxe_F.png``); ``d_limit`` (Å) cuts the
    resolution axis of the main panel at that d (AUSPEX's DLIM)."""
    from ..figures import draw_resolution_plots

    return draw_resolution_plots(analysis, host, out_dir, fmt="png", stem=FIGURE_STEM, d_limit=d_limit)


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
