"""Stand-in for AUSPEX's Auspex.py (IceFinder); the comments name the AUSPEX 2.3.2 code each part mirrors."""
import numpy as np

from Helcaraxe import cnn_predict  # Auspex.py line 6: imported at import time
from IceRings import IceRing


class IceFinder:
    def __init__(self, reflection_data=None, ice_ring=None, use_anom_if_present=True):
        # Auspex.py IceFinder.__init__: the attributes the launcher reads or sets
        self._reflection_data = reflection_data
        self._use_anom_if_present = use_anom_if_present
        self._intensity_data = reflection_data.get_intensity_data()
        self._amplitude_data = reflection_data.get_amplitude_data()
        self._intensity_ano_data = reflection_data.get_intensity_anom_data()
        self._amplitude_ano_data = reflection_data.get_amplitude_anom_data()
        self._file_name = reflection_data.file_name
        self._ice_ring = ice_ring if ice_ring is not None else IceRing()
        self._bool_ranges_in_ice = None
        self._helcaraxe_status = False
        self._cnn_predicted_i = None
        self._cnn_predicted_f = None
        self._has_ice_rings = False

    def run_helcaraxe(self):
        # Auspex.py run_helcaraxe: anomalous data first, then cnn_predict, NaN -> 1.0
        f = self._amplitude_ano_data if (self._amplitude_ano_data is not None and self._use_anom_if_present) \
            else self._amplitude_data
        i = self._intensity_ano_data if (self._intensity_ano_data is not None and self._use_anom_if_present) \
            else self._intensity_data
        fres, fobs = (f.ires, f.obs) if f is not None else (None, None)
        ires, iobs = (i.ires, i.obs) if i is not None else (None, None)
        self._cnn_predicted_i, self._cnn_predicted_f = cnn_predict(ires, iobs, fres, fobs)
        if self._cnn_predicted_i is not None:
            self._cnn_predicted_i = np.nan_to_num(self._cnn_predicted_i, nan=1.0)
        if self._cnn_predicted_f is not None:
            self._cnn_predicted_f = np.nan_to_num(self._cnn_predicted_f, nan=1.0)
        if (self._cnn_predicted_i is not None) or (self._cnn_predicted_f is not None):
            self._helcaraxe_status = True

    def ice_range_by_helcaraxe(self, cutoff=0.02):
        # Auspex.py ice_range_by_helcaraxe: I and F ANDed when both exist
        i, f = self._cnn_predicted_i, self._cnn_predicted_f
        if f is not None and i is None:
            flags = f >= cutoff
        elif f is None and i is not None:
            flags = i >= cutoff
        elif f is not None and i is not None:
            flags = (f >= cutoff) & (i >= cutoff)
        else:
            raise Exception("No Helcaraxe prediction. Please try to rerun Helcaraxe.")
        self._bool_ranges_in_ice = flags
        self._has_ice_rings = bool(np.any(flags))
        return self._ice_ring.ice_rings[flags]

    def quantitative_score(self):
        scores = np.maximum(*(a for a in (self._cnn_predicted_i, self._cnn_predicted_f) if a is not None)) \
            if (self._cnn_predicted_i is not None and self._cnn_predicted_f is not None) \
            else next(a for a in (self._cnn_predicted_i, self._cnn_predicted_f) if a is not None)
        scores = np.where(scores == -1.0, 0.0, scores)
        return scores[self._bool_ranges_in_ice]

    @property
    def file_name(self):
        return self._file_name

    @property
    def ice_ring(self):
        return self._ice_ring

    @property
    def iobs(self):
        return self._intensity_data

    @property
    def fobs(self):
        return self._amplitude_data

    @property
    def helcaraxe_status(self):
        return self._helcaraxe_status

    @property
    def has_ice_rings(self):
        return self._has_ice_rings
