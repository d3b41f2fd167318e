"""Keras Helcaraxe network (``.h5`` / ``.keras``) → float32 TFLite file + model card JSON.

Works for any single-input (N, 80, 80, 1) → (N, 1) sigmoid network, for example the published
``Helcaraxe_Iobs_model.h5`` / ``Helcaraxe_Fobs_model.h5`` that AUSPEX users already have, and for
ours (``train.py`` exports through the same function). Needs TensorFlow (the ``[train]`` extra).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ..errors import InputError
from ..network import DEFAULT_THRESHOLD, ModelCard, sha256_of

QUANTISATIONS = ("none", "dynamic")


def observable_from_name(name: str) -> str | None:
    """``"I"`` / ``"F"`` from a file name holding ``iobs`` / ``fobs`` (any case), else None."""
    low = name.lower()
    if "iobs" in low and "fobs" not in low:
        return "I"
    if "fobs" in low and "iobs" not in low:
        return "F"
    return None


def load_keras(path: str | os.PathLike):
    """Load a Keras network for inference (``compile=False``: the training config is not needed).

    Keras 3 reads Keras-2 HDF5 files itself; if that fails (exotic legacy configs), the architecture
    is rebuilt from the file's ``model_config`` and the weights are loaded by layer name.
    """
    import keras

    from . import models  # noqa: F401 -- registers our custom layers (models.ColumnProfile) for loading

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as first:  # noqa: BLE001 -- any loader failure: try the legacy route
        if path.suffix.lower() not in (".h5", ".hdf5"):
            raise InputError(f"{path}: not a loadable Keras network ({first})") from None
        try:
            import h5py

            with h5py.File(path, "r") as fh:
                config = fh.attrs["model_config"]
            config = config.decode() if isinstance(config, bytes) else config
            model = keras.models.model_from_json(config)
            model.load_weights(path, by_name=True) if _accepts_by_name(model) else model.load_weights(path)
            return model
        except Exception as second:  # noqa: BLE001
            raise InputError(f"{path}: not a loadable Keras network ({first}; legacy route: {second})") from None


def _accepts_by_name(model) -> bool:
    import inspect

    return "by_name" in inspect.signature(model.load_weights).parameters


def keras_to_tflite(model, quantisation: str = "none") -> bytes:
    """TFLite flatbuffer of ``model`` with a dynamic batch dimension; float32 unless
    ``quantisation="dynamic"`` (dynamic-range int8 weights, float activations)."""
    import tensorflow as tf

    if quantisation not in QUANTISATIONS:
        raise ValueError(f"quantisation must be one of {QUANTISATIONS}")
    # from_keras_model keeps the dynamic batch dimension; a hand-made concrete function gave NaN
    # outputs for Keras-3-loaded HDF5 networks with TF 2.21 (variables not captured).
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantisation == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the whole exported signature
        return converter.convert()


def convert(
    model_h5: str | os.PathLike,
    out_dir: str | os.PathLike,
    observable: str | None = None,
    *,
    name: str | None = None,
    quantisation: str = "none",
    threshold: float = DEFAULT_THRESHOLD,
    version: str | None = None,
    training_data: str | None = None,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    model=None,
    plot_scale: str = "linear",
) -> Path:
    """Convert the Keras network ``model_h5`` into ``out_dir/helcaraxe_<iobs|fobs>[_<name>].tflite``
    plus a model card ``.json`` beside it; returns the ``.tflite`` path.

    ``observable`` ("I"/"F") defaults to what the file name says (``iobs``/``fobs``). ``name`` adds a
    suffix to the file name (default: none, so that a directory holds one I and one F network the
    way ``network.load_networks`` expects). ``model`` may pass an already loaded Keras model
    (``model_h5`` is then only recorded in the card). ``plot_scale``: the y axis of the plots the
    network was trained on (``plots.PLOT_SCALES``), written into the card for every path that feeds it.
    """
    from .models import describe

    src = Path(model_h5)
    kind = observable or observable_from_name(src.name)
    if kind not in ("I", "F"):
        raise InputError(f"{src.name}: cannot tell the observable from the file name; pass observable='I' or 'F'")
    if model is None:
        model = load_keras(src)
    in_shape = tuple(int(s) for s in model.inputs[0].shape[1:])
    out_shape = tuple(model.outputs[0].shape[1:])
    if len(model.inputs) != 1 or in_shape != (80, 80, 1) or out_shape not in ((1,), ()):
        raise InputError(f"{src.name}: not a Helcaraxe network (input {in_shape}, output {out_shape})")

    flat = keras_to_tflite(model, quantisation)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"helcaraxe_{kind.lower()}obs" + (f"_{name}" if name else "")
    tfl = out / f"{stem}.tflite"
    # write atomically: load_networks may be reading the directory
    with tempfile.NamedTemporaryFile(dir=out, suffix=".tmp", delete=False) as fh:
        fh.write(flat)
    os.chmod(fh.name, 0o644)
    os.replace(fh.name, tfl)

    import tensorflow as tf

    card_extra = {
        "source": src.name,
        "source_sha256": sha256_of(src) if src.is_file() else None,
        "format": "tflite float32" if quantisation == "none" else "tflite dynamic-range int8 weights",
        "converted_with": f"tensorflow {tf.__version__}",
        **describe(model),
        **(extra or {}),
    }
    card = ModelCard(
        name=name or src.stem,
        observable=kind,
        input_shape=in_shape,
        threshold=float(threshold),
        version=version or "unknown",
        sha256=sha256_of(tfl),
        training_data=training_data or f"unknown (converted from {src.name})",
        metrics=metrics or {},
        plot_scale=plot_scale,
        extra=card_extra,
    )
    tfl.with_suffix(".json").write_text(json.dumps(card.to_dict(), indent=2, sort_keys=False) + "\n")
    return tfl
