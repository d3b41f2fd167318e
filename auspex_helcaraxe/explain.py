"""Occlusion sensitivity for a Helcaraxe plot: how much the network's probability drops when a
patch of the plot is replaced by the image mean. Works with any TFLite network (no gradients)."""

from __future__ import annotations

import numpy as np

from .network import Network

PATCH = 10
STRIDE = 5


def occlusion_map(network: Network, image: np.ndarray, patch: int = PATCH, stride: int = STRIDE) -> np.ndarray:
    """Probability drop per pixel (80×80, ≥ 0) for one standardised plot of shape (80, 80, 1).

    Every occluded variant goes to the interpreter in one batch.
    """
    size = image.shape[0]
    starts = np.arange(0, size - patch + 1, stride)
    rows, cols = np.meshgrid(starts, starts, indexing="ij")
    rows, cols = rows.ravel(), cols.ravel()
    batch = np.repeat(image[None], rows.size, axis=0)
    fill = float(image.mean())
    r_idx = rows[:, None] + np.arange(patch)[None, :]
    c_idx = cols[:, None] + np.arange(patch)[None, :]
    n = np.arange(rows.size)[:, None, None]
    batch[n, r_idx[:, :, None], c_idx[:, None, :], 0] = fill
    base = network.predict(image[None])[0]
    drop = np.clip(base - network.predict(batch), 0, None)
    heat = np.zeros((size, size))
    hits = np.zeros((size, size))
    for k in range(rows.size):  # at most 225 patches, not reflections
        heat[rows[k] : rows[k] + patch, cols[k] : cols[k] + patch] += drop[k]
        hits[rows[k] : rows[k] + patch, cols[k] : cols[k] + patch] += 1
    return heat / np.maximum(hits, 1)
