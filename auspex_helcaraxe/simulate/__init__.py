"""Simulator of merged diffraction data with and without ice rings, with ground-truth labels.

numpy + gemmi only (no TensorFlow, no scipy). See docs/simulator.md for the model and the labelling
rule. Public API: :func:`simulate_dataset`, :func:`demo_dataset`, :func:`write_mtz`,
:func:`add_ice`, :func:`make_training_set`, :class:`SimulatedDataset`, :class:`RangeTruth`.
"""

from .dataset import SimulatedDataset, demo_dataset, simulate_dataset, write_mtz
from .ice import RangeTruth

__all__ = ["SimulatedDataset", "RangeTruth", "simulate_dataset", "demo_dataset", "write_mtz"]
from .semi import add_ice  # noqa: E402
from .trainset import make_training_set  # noqa: E402

__all__ += ["add_ice", "make_training_set"]
