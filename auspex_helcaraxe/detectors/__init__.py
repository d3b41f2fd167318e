"""Ice detectors as pluggy plugins: Helcaraxe (entry point ``auspex``) and the built-in Icefinder."""
