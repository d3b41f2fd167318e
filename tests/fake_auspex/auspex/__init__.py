"""Stand-in for AUSPEX 2.3.2's package (auspex/__init__.py: sys.path.append of its own directory)."""
import os
import sys

__version__ = "2.3.2-standin"
sys.path.append(os.path.dirname(__file__))
