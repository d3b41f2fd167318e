"""``helcaraxe scan``: what the CLI runs once it has parsed the arguments."""

from __future__ import annotations

import sys
from argparse import Namespace

from ..errors import InputError
from ..results import AnalysisOptions


def scan_command(args: Namespace, options: AnalysisOptions) -> int:
    """Scan ``args.paths`` into ``args.db``, then optionally export Parquet and draw the summary.

    Reads ``paths``, ``db``, ``workers``, ``dask_scheduler``, ``ice_detector``, ``retry_failed``,
    ``parquet``, ``summary``, ``report``, ``metadata``, ``no_progress`` from ``args``. Prints a one-line summary and
    the failure table (file, reason); failed data sets do not change the exit status (0): they are
    results of the survey. Without paths, only the export and the summary run on an existing store.
    """
    if getattr(args, "metadata", None) is not None and getattr(args, "summary", None) is None \
            and getattr(args, "report", None) is None:
        raise InputError("--metadata needs --summary OUT_DIR or --report OUT_DIR")
    if args.workers < 0:
        raise InputError("--workers must be 0 (in this process) or more")
    if args.paths:
        from .runner import run_scan

        report = run_scan(
            args.paths, args.db, workers=args.workers, dask_scheduler=args.dask_scheduler,
            detectors=args.ice_detector, options=options, progress=not args.no_progress and sys.stderr.isatty(),
            retry_failed=args.retry_failed,
        )
        print(report.summary_line())
        if report.failures:
            print(f"\n{len(report.failures)} data sets could not be analysed:")
            print(report.failure_table())
    elif not args.db.exists():
        raise InputError(f"{args.db}: no such results store (give PATHs to scan)")
    if args.parquet is not None:
        from .store import export_parquet

        for path in export_parquet(args.db, args.parquet):
            print(f"wrote {path}")
    if args.summary is not None:
        from .summary import summary

        for path in summary(args.db, args.summary, metadata_csv=args.metadata):
            print(f"wrote {path}")
    if getattr(args, "report", None) is not None:
        from ..html import write_survey

        print(f"wrote {write_survey(args.db, args.report, metadata=args.metadata)}")
    return 0
