"""Stand-in for AUSPEX's Helcaraxe.py, which imports TensorFlow at import time (lines 11-12 of the version read)."""
raise ImportError("stand-in: AUSPEX's own Helcaraxe was imported (it would load TensorFlow)")
