"""Keras models of the Helcaraxe family and a MAC counter.

The published network (Nolte et al. 2022) is 5 convolution stages with 13×13 … 5×5 kernels
(0.49 GMAC per 80×80 plot by ``count_macs``). Ours keeps the family — blocks of two
convolutions with batch normalisation and max pooling, then dense + dropout and one sigmoid — but
with 3×3 kernels and few filters, so that one plot costs < 20 MMAC on a CPU.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras

INPUT_SHAPE = (80, 80, 1)
DEFAULT_FILTERS = (8, 16, 32, 32)
MAX_MACS = 20_000_000


@keras.saving.register_keras_serializable(package="helcaraxe")
class ColumnProfile(keras.layers.Layer):
    """Per-column statistics of a standardised (N, 80, 80, 1) plot → (N, 80, 3).

    The standardised image is an affine map of the histogram counts whose minimum is (almost
    always) an empty bin, so ``w = x − min(x)`` is proportional to the counts. For every column
    (one d bin): the count-weighted mean row position and its spread (rows run from high to low
    observation value, in units of the plot height, centred on the plot's own mean), and the
    column's share of all counts (× number of columns, minus 1). Plain reductions and arithmetic,
    so TFLite converts it with builtin ops.
    """

    def call(self, x):
        ops = keras.ops
        x = x[..., 0]  # (N, rows, cols)
        w = x - ops.min(x, axis=(1, 2), keepdims=True)
        rows = x.shape[1]
        pos = ops.reshape(ops.linspace(0.0, 1.0, rows), (1, rows, 1))
        col = ops.sum(w, axis=1)  # (N, cols)
        eps = 1e-6
        mean = ops.sum(w * pos, axis=1) / (col + eps)
        var = ops.sum(w * pos * pos, axis=1) / (col + eps) - mean * mean
        spread = ops.sqrt(ops.maximum(var, 0.0) + eps)
        share = col / (ops.mean(col, axis=1, keepdims=True) + eps) - 1.0
        mean = mean - ops.mean(mean, axis=1, keepdims=True)
        spread = spread - ops.mean(spread, axis=1, keepdims=True)
        return ops.stack([mean * 10.0, spread * 10.0, share], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2], 3)


def _profile_features(inputs, init, seed_base: int):
    """The per-column profile branch: :class:`ColumnProfile` → two 1-D convolutions over the
    80 columns → max pool → one more → global max and mean (a weak ring shifts a few columns)."""
    p = ColumnProfile(name="profile")(inputs)
    p = keras.layers.Conv1D(8, 7, padding="same", activation="elu", kernel_initializer=init(seed_base),
                            name="prof_conv1")(p)
    p = keras.layers.Conv1D(16, 5, padding="same", activation="elu", kernel_initializer=init(seed_base + 1),
                            name="prof_conv2")(p)
    p = keras.layers.MaxPooling1D(2, name="prof_pool")(p)
    p = keras.layers.Conv1D(16, 5, padding="same", activation="elu", kernel_initializer=init(seed_base + 2),
                            name="prof_conv3")(p)
    return keras.layers.Concatenate(name="prof_features")(
        [keras.layers.GlobalMaxPooling1D(name="prof_max")(p), keras.layers.GlobalAveragePooling1D(name="prof_mean")(p)])


def build_model(
    filters: Sequence[int] = DEFAULT_FILTERS,
    kernel_size: int = 3,
    first_kernel_size: int = 5,
    dense_units: int = 32,
    dropout: float = 0.4,
    input_shape: tuple[int, int, int] = INPUT_SHAPE,
    seed: int | None = None,
    name: str = "helcaraxe_small",
    profile_branch: bool = False,
) -> keras.Model:
    """A Helcaraxe-family CNN: ``len(filters)`` blocks of 2×(conv ELU → batch norm) → max pool,
    then flatten → dropout → dense ELU → dropout → dense sigmoid.

    The default (4 blocks of 8/16/32/32 filters, 5×5 first kernel, 3×3 after) costs ≈17 MMAC per plot.
    ``profile_branch``: also feed the per-column profile branch (:func:`_profile_features`, ≈0.07
    MMAC) into the dense layer beside the flattened CNN features (an experiment for weak ice; off by
    default, which leaves the default model exactly as before).
    """
    init = lambda k: keras.initializers.HeNormal(seed=None if seed is None else seed + k)
    inputs = keras.Input(shape=input_shape, name="plot")
    x = inputs
    k = 0
    for b, f in enumerate(filters):
        for c in range(2):
            ks = first_kernel_size if (b == 0 and c == 0) else kernel_size
            x = keras.layers.Conv2D(
                f, ks, padding="same", activation="elu", kernel_initializer=init(k), name=f"conv{b + 1}_{c + 1}"
            )(x)
            x = keras.layers.BatchNormalization(name=f"bn{b + 1}_{c + 1}")(x)
            k += 1
        x = keras.layers.MaxPooling2D(2, name=f"pool{b + 1}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    if profile_branch:
        x = keras.layers.Concatenate(name="with_profile")([x, _profile_features(inputs, init, 100)])
    x = keras.layers.Dropout(dropout, seed=seed, name="dropout1")(x)
    x = keras.layers.Dense(dense_units, activation="elu", kernel_initializer=init(k), name="dense")(x)
    x = keras.layers.Dropout(dropout, seed=None if seed is None else seed + 1, name="dropout2")(x)
    last = keras.initializers.GlorotUniform(seed=None if seed is None else seed + k + 1)
    outputs = keras.layers.Dense(1, activation="sigmoid", kernel_initializer=last, name="ice")(x)
    return keras.Model(inputs, outputs, name=name)


def _shape(t: Any) -> tuple:
    return tuple(t.shape)


def count_macs(model: keras.Model) -> int:
    """Multiply–accumulate operations of one forward pass for ONE input (batch size 1).

    Counts convolutions (standard, depthwise, separable) and dense layers — the layers that
    dominate; pooling, batch normalisation (foldable into the preceding convolution), activations
    and biases are not counted, as usual for MAC figures.
    """
    total = 0
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            out = _shape(layer.output)
            kh, kw = layer.kernel_size
            in_c = _shape(layer.input)[-1]
            total += out[1] * out[2] * in_c * layer.depth_multiplier * kh * kw
        elif isinstance(layer, keras.layers.SeparableConv2D):
            out = _shape(layer.output)
            kh, kw = layer.kernel_size
            in_c = _shape(layer.input)[-1]
            total += out[1] * out[2] * in_c * layer.depth_multiplier * kh * kw  # depthwise part
            total += out[1] * out[2] * in_c * layer.depth_multiplier * out[-1]  # pointwise part
        elif isinstance(layer, keras.layers.Conv2D):
            out = _shape(layer.output)
            kh, kw = layer.kernel_size
            in_c = _shape(layer.input)[-1]
            total += out[1] * out[2] * out[3] * kh * kw * in_c // layer.groups
        elif isinstance(layer, keras.layers.Conv1D):
            out = _shape(layer.output)
            (kw,) = layer.kernel_size
            in_c = _shape(layer.input)[-1]
            total += out[1] * out[2] * kw * in_c // layer.groups
        elif isinstance(layer, keras.layers.Dense):
            in_units = _shape(layer.input)[-1]
            out = _shape(layer.output)
            positions = 1
            for s in out[1:-1]:
                positions *= s
            total += positions * in_units * layer.units
    return int(total)


def _all_layers(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
        else:
            yield layer


def describe(model: keras.Model) -> dict[str, Any]:
    """Size figures for a model card: parameters and MACs per plot."""
    return {"parameters": int(model.count_params()), "macs_per_plot": count_macs(model)}
