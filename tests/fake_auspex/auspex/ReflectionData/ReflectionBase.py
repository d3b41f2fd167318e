"""Stand-in for AUSPEX's ReflectionData/ReflectionBase.py: Observation and the parser base."""
import numpy as np


class Observation:
    """AUSPEX: Observation.__init__ keeps sigma > 0 (omit_invalid_sigmas); properties obs, sigma, ires."""

    def __init__(self, obs, sigma, ires):
        keep = sigma > 0.0
        self._obs, self._sigma, self._ires = obs[keep], sigma[keep], ires[keep]

    @property
    def obs(self):
        return self._obs

    @property
    def sigma(self):
        return self._sigma

    @property
    def ires(self):
        return self._ires

    def size(self):
        return self._obs.size

    def invresolsq(self):
        return 1.0 / (self.ires * self.ires)


class ReflectionParser:
    """AUSPEX: get_intensity_data / get_amplitude_data keep obs.nonzero() rows, then Observation."""

    def __init__(self):
        self._filename = None
        self._I = self._sigI = self._F = self._sigF = None
        self._I_ano = self._F_ano = None
        self._resolution = None
        self._lam = None
        self.source_data_format = None

    @property
    def file_name(self):
        return self._filename

    def _wrap(self, obs, sigma):
        if obs is None:
            return None
        valid = obs.nonzero()
        return Observation(obs[valid], sigma[valid], self._resolution[valid])

    def get_intensity_data(self):
        return self._wrap(self._I, self._sigI)

    def get_amplitude_data(self):
        return self._wrap(self._F, self._sigF)

    def get_intensity_anom_data(self):
        return None

    def get_amplitude_anom_data(self):
        return None
