"""The CCP4i2 task ``helcaraxe``: Helcaraxe and Icefinder ice-ring detection on an observed-data file,
run in-process through the plugin host (no external program), with AUSPEX-style figures (``IM_OUT``)
and a ``program.xml`` per-range result.

ccp4i2 3.x finds tasks in one static table, ``ccp4i2.core.tasks.TASKS`` (no entry points): call
:func:`register` in the ccp4i2 process before a job of this task is created or run (see
docs/ccp4i2.md). Importing this package does not import ccp4i2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TASK_NAME = "helcaraxe"
DEF_XML = Path(__file__).resolve().with_name("helcaraxe.def.xml")
PLUGIN_PATH = "auspex_helcaraxe.ccp4i2.task:Helcaraxe"
REPORT_PATH = "auspex_helcaraxe.ccp4i2.task_report:HelcaraxeReport"


def task_definition() -> Any:
    """The ``ccp4i2.core.tasks.Task`` entry for this task (``defXmlPath`` is absolute, which
    ccp4i2's ``locate_def_xml`` accepts: ``I2_TOP / absolute_path`` is the absolute path)."""
    from ccp4i2.core.tasks import Task

    return Task(
        title="Ice-ring detection with Helcaraxe and the AUSPEX Icefinder score",
        description="Flag ice rings in merged observed data with the Helcaraxe neural networks and the Icefinder score",
        shortTitle="Helcaraxe ice rings",
        pluginPath=PLUGIN_PATH,
        defXmlPath=str(DEF_XML),
        reportPath=REPORT_PATH,
        ccp4_free=True,
    )


def register() -> None:
    """Add the task to ccp4i2's task table (idempotent) and forget cached failed look-ups."""
    from ccp4i2.core import tasks

    tasks.TASKS[TASK_NAME] = task_definition()
    tasks._import_errors.pop(TASK_NAME, None)
    tasks.get_plugin_class.cache_clear()
    tasks.get_report_class.cache_clear()
