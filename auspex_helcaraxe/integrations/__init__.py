"""Integrations of the Helcaraxe plugin into other programs (AUSPEX)."""
