"""A Django app whose only job is to register the ``helcaraxe`` task when ccp4i2 starts (the API
server, ``python -m django run_job`` workers and i2run alike); see :mod:`.settings`."""

from __future__ import annotations

from django.apps import AppConfig


class HelcaraxeTaskConfig(AppConfig):
    name = "auspex_helcaraxe.ccp4i2"
    label = "auspex_helcaraxe_ccp4i2"
    verbose_name = "Helcaraxe ice-ring task for CCP4i2"

    def ready(self) -> None:
        from . import register

        register()
