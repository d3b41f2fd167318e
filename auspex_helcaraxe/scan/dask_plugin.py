"""The Dask worker plugin of a scan (imported only when a scan runs on Dask)."""

from __future__ import annotations

from distributed.diagnostics.plugin import WorkerPlugin

from .worker import Job, init_worker


class WarmUp(WorkerPlugin):
    """Builds the host and loads the networks once when each Dask worker starts (or joins later)."""

    name = "auspex-helcaraxe-scan"

    def __init__(self, job: Job):
        self.job = job

    def setup(self, worker) -> None:
        init_worker(self.job)
