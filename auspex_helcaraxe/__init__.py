"""auspex-helcaraxe: find ice-ring artefacts in merged X-ray diffraction data.

Helcaraxe (Nolte et al. 2022, Acta Cryst. D78) as a pluggy plugin for an AUSPEX-style host,
next to the AUSPEX Icefinder score (Thorn et al. 2017, Acta Cryst. D73).
"""

__version__ = "0.1.0"
