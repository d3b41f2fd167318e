"""Simulator of merged diffraction data with and without ice rings, with ground-truth labels.

numpy + gemmi only (no TensorFlow, no scipy). See docs/simulator.md for the model and the labelling
rule. Public API: :func:`simulate_dataset`, :func:`demo_dataset`, :func:`write_mtz`,
:func:`add_ice`, :func:`make_training_set`, :class:`SimulatedDataset`, :class:`RangeTruth`.
"""

from .dataset import SimulatedDataset, demo_dataset, simulate_dataset, write_mtz
from .ice import RangeTruth
from .semi import add_ice
from .trainset import make_training_set

__all__ = ["RangeTruth", "SimulatedDataset", "add_ice", "demo_dataset", "make_training_set", "simulate_dataset", "write_mtz"]
