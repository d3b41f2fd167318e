"""ccp4i2's Django settings plus the app that registers the ``helcaraxe`` task.

Enable the task for every ccp4i2 process (server, job runner, i2run) with
``export DJANGO_SETTINGS_MODULE=auspex_helcaraxe.ccp4i2.settings`` instead of
``ccp4i2.config.settings``; the job runner's subprocesses inherit the variable.
"""

from ccp4i2.config.settings import *  # noqa: F401,F403
from ccp4i2.config.settings import INSTALLED_APPS as _CCP4I2_APPS

INSTALLED_APPS = [*_CCP4I2_APPS, "auspex_helcaraxe.ccp4i2.apps.HelcaraxeTaskConfig"]
