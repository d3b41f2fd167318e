"""Stand-in for AUSPEX's IceRings.IceRing: ``ice_rings`` is an (N, 2) array of 1/d² bounds."""
import csv
import io
from importlib import resources

import numpy as np


class IceRing:
    def __init__(self):
        text = resources.files("auspex_helcaraxe.resources").joinpath("ice_ranges.csv").read_text()
        rows = csv.DictReader(io.StringIO("\n".join(l for l in text.splitlines() if not l.startswith("#"))))
        self.ice_rings = np.array([(1 / float(r["d_max_A"]) ** 2, 1 / float(r["d_min_A"]) ** 2) for r in rows])
