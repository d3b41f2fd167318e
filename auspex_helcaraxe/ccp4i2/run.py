"""Run the ``helcaraxe`` task through ccp4i2's own i2run machinery, from Python or the shell::

    python -m auspex_helcaraxe.ccp4i2.run --F_SIGF fullPath=data.mtz [columnLabels=/*/*/[I,SIGI]] \\
        [--DETECTORS both|helcaraxe|icefinder] [--THRESHOLD 0.5] [--DLIM 2.0] [--NETWORKS dir] \\
        [--project_name helcaraxe]

This does what ccp4i2's ``i2run`` management command does (``CCP4i2RunnerDjango.parseArgs()`` then
``execute()``: a project and job in the ccp4i2 database, the input imported into the project, the
plugin run in-process, its outputs registered), after setting Django up with
:mod:`auspex_helcaraxe.ccp4i2.settings` and bringing the database schema up to date. (ccp4i2 3.0.1's
own ``i2run`` console script cannot be used: it never calls ``django.setup()``.)
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from . import TASK_NAME

SETTINGS = "auspex_helcaraxe.ccp4i2.settings"


def setup_django(migrate: bool = True) -> None:
    """``django.setup()`` with :data:`SETTINGS` unless a settings module is already chosen; then
    ``migrate`` ccp4i2's database (idempotent) and make sure the task is registered."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    from . import register

    register()


def run_i2run(args: Sequence[str]) -> tuple[str | None, int]:
    """Configure and run one job like ``i2run``; ``args`` as on its command line (task name first).
    Returns ``(job uuid, exit code)``; Django must be set up."""
    from ccp4i2.cli.i2run.CCP4i2RunnerDjango import CCP4i2RunnerDjango

    args = list(args)
    if "--project_name" not in args and "--project_path" not in args:
        args += ["--project_name", TASK_NAME]
    runner = CCP4i2RunnerDjango(the_args=args, parser=argparse.ArgumentParser(prog="helcaraxe-i2run"))
    runner.parseArgs()
    try:
        job_id, code = runner.execute()
    except ValueError as exc:  # ccp4i2 rejected a parameter value while configuring the job
        print(f"{TASK_NAME}: {exc}", file=sys.stderr)
        job_id = getattr(runner, "jobId", None)
        _fail_job(job_id, _error_report(str(exc)))
        return job_id, 1
    if code != 0:
        plugin = runner.getPlugin(arguments_parsed=True)
        plugin.errorReport.extend(plugin.checkInputData())
        _fail_job(job_id, plugin.errorReport)
    return job_id, code


def _error_report(details: str):
    from ccp4i2.core.CCP4ErrorHandling import SEVERITY_ERROR, CErrorReport

    report = CErrorReport()
    report.append(klass=TASK_NAME, code=0, details=details, name="i2run", severity=SEVERITY_ERROR)
    return report


def _fail_job(job_id: str | None, report) -> None:
    """i2run leaves a job it refuses to start (a missing file, a rejected value) Pending; record it
    as FAILED with the reasons in ``diagnostic.xml``, as ccp4i2 does for a failed run."""
    import xml.etree.ElementTree as ET

    from ccp4i2.db import models

    if job_id is None:
        return
    job = models.Job.objects.get(uuid=job_id)
    if job.status != models.Job.Status.PENDING:
        return
    tree = ET.ElementTree(report.getEtree())
    ET.indent(tree)
    tree.write(os.path.join(str(job.directory), "diagnostic.xml"), encoding="utf-8")
    job.status = models.Job.Status.FAILED
    job.save(update_fields=["status"])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != TASK_NAME:
        argv.insert(0, TASK_NAME)
    setup_django()
    _, code = run_i2run(argv)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
