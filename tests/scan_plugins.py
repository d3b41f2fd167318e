"""A detector plugin for tests/test_scan.py (imported by name in the scan's worker processes).

``crashtest`` kills its worker process for files whose name holds ``crash``, raises for ``boom``,
sleeps ``options.extra["scan_test_delay"]`` seconds otherwise, and reports nothing.
"""

from __future__ import annotations

import os
import time

from auspex_helcaraxe.hookspecs import hookimpl


class CrashTest:
    name = "crashtest"
    description = "test detector: dies on *crash*, raises on *boom*"

    def detect(self, reflections, options):
        if "crash" in reflections.name:
            os._exit(7)
        if "boom" in reflections.name:
            raise RuntimeError("boom: detector failed\nsecond line of the message")
        time.sleep(float(options.extra.get("scan_test_delay", 0.0)))
        return []


@hookimpl
def auspex_register_ice_detectors(register) -> None:
    register(CrashTest())
