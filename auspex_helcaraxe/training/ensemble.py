"""Several trained networks of one observable as one TFLite network: the mean of their outputs.

    python -m auspex_helcaraxe.training.ensemble OUT --observable I --members A.keras B.keras

The members (Keras files, e.g. ``<cache>/keras/helcaraxe_iobs.keras`` of two ``train`` runs) see the
same plot; the exported network returns the mean of their sigmoid outputs. It is one ``.tflite``
file with one model card, so the runtime, the host and every evaluation (``--networks OUT``) use
it unchanged. The card records the members (file name, sha256) and their summed cost. Needs
TensorFlow (the ``[train]`` extra).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from ..network import sha256_of
from ..plots import PLOT_SCALES


def build_ensemble(models: Sequence, name: str = "helcaraxe_ensemble"):
    """A Keras model: one (80, 80, 1) input, each member on it, the mean of their outputs."""
    import keras

    if len(models) < 2:
        raise InputError("an ensemble needs at least two members")
    inp = keras.Input(shape=(80, 80, 1), name="plot")
    outs = []
    for k, m in enumerate(models):
        m.name = f"member_{k}"  # members of one training recipe share layer and model names
        outs.append(m(inp))
    return keras.Model(inp, keras.layers.Average(name="mean")(outs), name=name)


def ensemble(members: Sequence[str | Path], out_dir: str | Path, observable: str, threshold: float = 0.5,
             plot_scale: str = "linear") -> Path:
    """Build the mean ensemble of the Keras ``members`` and export it (``convert.convert``) into
    ``out_dir``; returns the ``.tflite`` path. ``plot_scale``: the members' (``plots.PLOT_SCALES``)."""
    from .convert import convert, load_keras

    paths = [Path(p) for p in members]
    model = build_ensemble([load_keras(p) for p in paths], name=f"helcaraxe_{observable.lower()}obs_ensemble")
    extra = {"ensemble": {"rule": "mean of the members' sigmoid outputs",
                          "members": [{"source": str(p), "sha256": sha256_of(p)} for p in paths]}}
    with tempfile.TemporaryDirectory() as tmp:
        keras_path = Path(tmp) / f"helcaraxe_{observable.lower()}obs_ensemble.keras"
        model.save(keras_path)
        return convert(keras_path, out_dir, observable=observable, threshold=threshold, model=model,
                       version=f"ensemble of {len(paths)}",
                       training_data="ensemble of networks trained on simulated and semi-synthetic data (members' cards)",
                       extra=extra, plot_scale=plot_scale)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m auspex_helcaraxe.training.ensemble")
    ap.add_argument("out_dir")
    ap.add_argument("--observable", required=True, choices=("I", "F"))
    ap.add_argument("--members", nargs="+", required=True, metavar="KERAS")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--plot-scale", default="linear", choices=tuple(PLOT_SCALES),
                    help="the y axis of the plots the members were trained on (their cards' plot_scale)")
    a = ap.parse_args(argv)
    try:
        path = ensemble(a.members, a.out_dir, a.observable, a.threshold, a.plot_scale)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
