"""Train our Helcaraxe networks on simulated data (the ``[train]`` extra; ``helcaraxe train``).

One seeded function, :func:`train`: simulated training sets from ``simulate.make_training_set``
(cached on disk), a validation split held out by simulated data set, the F network first, then the
I network by transfer learning from it at learning rate 0.0005 (as Nolte et al. 2022 did), export
of both to float32 TFLite with model cards, and a check of dynamic-range int8 quantisation.
Labels come only from the simulator's ground truth.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from .. import __version__
from . import data as tdata
from .metrics import binary_metrics, compact
from .options import per_kind

# Seeds of the simulated data: training data sets use DATA_SEED_BASE + seed; the evaluation's test
# set uses evaluate.TEST_SEED, far away from any training seed.
DATA_SEED_BASE = 1000
DEFAULTS = {"n_datasets": 12000, "epochs": 10, "transfer_epochs": 7, "batch_size": 64, "learning_rate": 1e-3,
            "transfer_learning_rate": 5e-4, "val_fraction": 0.15, "background_fraction": 0.4,
            "target_specificity": 0.98}


def calibrate_threshold(prob: np.ndarray, truth: np.ndarray, target_specificity: float, floor: float = 0.5) -> float:
    """Decision threshold for the model card: the smallest threshold ≥ ``floor`` at which the
    (validation) specificity reaches ``target_specificity`` (rounded up to 0.01)."""
    neg = np.sort(prob[~truth.astype(bool)])
    if neg.size == 0:
        return floor
    # specificity at t = fraction of negatives with p < t
    k = int(np.ceil(target_specificity * neg.size))  # negatives that must lie below t
    t = neg[k - 1] if k >= 1 else floor
    t = float(np.ceil((np.nextafter(t, 2.0)) * 100) / 100)
    return float(min(max(t, floor), 0.99))


def set_seeds(seed: int, deterministic: bool = True) -> None:
    """Seed Python, numpy and TensorFlow; make TF ops deterministic (same result on a rerun)."""
    import keras
    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def training_set(
    observable: str,
    n_datasets: int,
    seed: int,
    backgrounds: list[Path] | None = None,
    background_fraction: float = 0.3,
    cache_dir: str | os.PathLike | None = None,
    log: Callable[[str], None] = print,
    exclude_family: str | None = None,
    vary_backgrounds: bool = False,
    clean_twins: bool = False,
    plot_scale: str = "linear",
):
    """(X, y, groups, meta) of simulated plots for one observable, cached under ``cache_dir``.
    ``exclude_family``: draw no ring of this family (``training.families.excluding``).
    ``vary_backgrounds``, ``clean_twins``, ``plot_scale``: see :func:`simulate.make_training_set`."""
    from .. import simulate
    from ..errors import InputError
    from ..readers import read

    from .families import excluding

    def make(n_datasets, seed, observable, backgrounds, background_fraction, exclude_family=None,
             vary_backgrounds=False, clean_twins=False, plot_scale="linear"):
        kwargs: dict[str, Any] = {k: True for k, v in (("vary_backgrounds", vary_backgrounds),
                                                       ("clean_twins", clean_twins)) if v}
        kwargs["plot_scale"] = plot_scale
        if backgrounds:
            refl = []
            for p in backgrounds:
                try:
                    refl.append(read(p))
                except InputError as exc:
                    log(f"background {p}: skipped ({exc})")
            kwargs["backgrounds"] = refl
            kwargs["background_fraction"] = background_fraction
        with excluding(exclude_family):
            return simulate.make_training_set(n_datasets, seed, observable=observable, **kwargs)

    key = {"n_datasets": n_datasets, "seed": seed, "observable": observable,
           "backgrounds": [str(p) for p in backgrounds] if backgrounds else None,
           "background_fraction": background_fraction if backgrounds else None}
    if exclude_family is not None:  # the default keeps today's cache keys
        key["exclude_family"] = exclude_family
    if vary_backgrounds:
        key["vary_backgrounds"] = True
    if clean_twins:
        key["clean_twins"] = True
    if plot_scale != "linear":
        key["plot_scale"] = plot_scale
    t = time.time()
    out = tdata.cached(make, key, cache_dir, log)
    log(f"{observable}: {len(out[1])} plots ({int(np.sum(out[1]))} iced) from {len(np.unique(out[2]))} data sets "
        f"in {time.time() - t:.0f} s")
    return out


def relabel_weak(y: np.ndarray, meta: list[dict], min_strength: float, simulated_only: bool = False,
                 ref_n: float | None = None) -> tuple[np.ndarray, int]:
    """Labels with the plots of whole rings (spike or over-subtraction, not partial, not only excluded)
    of strength ≥ ``min_strength`` × the local mean intensity also iced, visible or not; returns the
    new labels and how many changed. The default rule labels only visible rings (docs/simulator.md).
    ``simulated_only``: leave the plots of real backgrounds (``source`` ``semi:…``) at the visibility
    labels, so that a real background's own clean look is never taught as ice. ``ref_n``: a ring's
    evidence grows as √n with the ``n_in_range`` observations of its plot, so a plot with fewer than
    ``ref_n`` needs ``min_strength`` × √(ref_n / n) (a 0.15 ring among 100 reflections is noise)."""
    def effects(m: dict) -> set[str]:  # "spike,sigma" in the training meta (or a sequence)
        e = m.get("effects") or ()
        return set(e.split(",")) if isinstance(e, str) else set(e)

    def needed(m: dict) -> float:
        n = m.get("n_in_range")
        return min_strength * max(1.0, (ref_n / max(n, 1)) ** 0.5) if ref_n and n is not None else min_strength

    extra = np.array([m.get("strength", 0.0) >= needed(m) and bool({"spike", "oversubtracted"} & effects(m))
                      and "partial" not in effects(m)
                      and not (simulated_only and str(m.get("source", "")).startswith("semi:")) for m in meta], dtype=bool)
    new = np.where(extra, 1, y).astype(y.dtype)
    return new, int(np.count_nonzero(new != y))


def real_negative_weights(y: np.ndarray, meta: list[dict], weight: float) -> np.ndarray:
    """Per-plot loss weights: ``weight`` for the negative plots of real backgrounds (``source``
    ``semi:…``, label 0 after any relabelling: clean real data sets and the ranges their simulated
    ice does not reach), 1 for every other plot. A specificity counterweight for ``weak_label``."""
    real_neg = np.array([str(m.get("source", "")).startswith("semi:") for m in meta], dtype=bool) & (y == 0)
    return np.where(real_neg, float(weight), 1.0).astype(np.float32)


def _class_weight(y: np.ndarray) -> dict[int, float]:
    pos = float(np.mean(y))
    if pos <= 0 or pos >= 1:
        return {0: 1.0, 1: 1.0}
    return {0: 0.5 / (1 - pos), 1: 0.5 / pos}


def _fit(model, X, y, train_mask, val_mask, epochs, batch_size, seed, log, balance, weights=None):
    import keras

    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=1e-5),
        keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: log(
            f"  epoch {e + 1}: loss {logs['loss']:.4f} acc {logs['accuracy']:.4f} "
            f"val_loss {logs['val_loss']:.4f} val_acc {logs['val_accuracy']:.4f}")),
    ]
    Xt, yt = X[train_mask], y[train_mask].astype(np.float32)
    # shuffle once with our seed (Keras also shuffles per epoch, seeded by set_random_seed)
    order = np.random.default_rng(seed).permutation(len(yt))
    extra: dict[str, Any] = {"class_weight": _class_weight(yt) if balance else None}
    if weights is not None:  # per-plot weights (class balance folded in: Keras takes one or the other)
        wt = np.asarray(weights, np.float32)[train_mask]
        if balance:
            cw = _class_weight(yt)
            wt = wt * np.where(yt > 0.5, cw[1], cw[0]).astype(np.float32)
        extra = {"sample_weight": wt[order]}
    hist = model.fit(
        Xt[order], yt[order], validation_data=(X[val_mask], y[val_mask].astype(np.float32)),
        epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0, callbacks=callbacks, **extra,
    )
    return {k: [round(float(v), 5) for v in vals] for k, vals in hist.history.items()}


def _tflite_predict(tflite: Path, observable: str, X: np.ndarray) -> np.ndarray:
    from ..network import ModelCard, Network

    net = Network(tflite, ModelCard(name=tflite.stem, observable=observable))
    return np.concatenate([net.predict(X[i : i + 512]) for i in range(0, len(X), 512)]) if len(X) else np.zeros(0)


def train(
    out_dir: str | os.PathLike = "resources",
    seed: int = 0,
    n_datasets: int = DEFAULTS["n_datasets"],
    epochs: int = DEFAULTS["epochs"],
    transfer_epochs: int = DEFAULTS["transfer_epochs"],
    backgrounds_dir: str | os.PathLike | None = None,
    background_fraction: float = DEFAULTS["background_fraction"],
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = DEFAULTS["batch_size"],
    learning_rate: float = DEFAULTS["learning_rate"],
    transfer_learning_rate: float = DEFAULTS["transfer_learning_rate"],
    val_fraction: float = DEFAULTS["val_fraction"],
    balance_classes: bool = False,
    target_specificity: float | None = DEFAULTS["target_specificity"],
    check_int8: bool = True,
    keras_dir: str | os.PathLike | None = None,
    threads: int | None = None,
    fold: int = 0,
    n_folds: int = 2,
    weak_label: float | dict[str, float] | None = None,
    exclude_family: str | None = None,
    real_negative_weight: float | None = None,
    profile_branch: bool = False,
    vary_backgrounds: bool = False,
    weak_label_simulated_only: bool = False,
    weak_label_ref_n: float | None = None,
    clean_twins: bool = False,
    plot_scale: dict[str, str] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train the F network, then the I network from it, and export both with model cards.

    Writes ``out_dir/helcaraxe_fobs.tflite`` + ``.json`` and ``helcaraxe_iobs.tflite`` + ``.json``
    (and the Keras models to ``keras_dir``, default ``<cache_dir>/keras``). ``backgrounds_dir``: a
    real-data directory with ``labels.tsv`` (e.g. ``../shared/data/real``) whose clean data sets at
    even positions of the fixed split (``training.data.background_split``) serve as backgrounds for
    a fraction ``background_fraction`` of the training data sets; the odd ones are never used here.
    ``fold`` / ``n_folds`` choose another fold of ``training.data.background_folds`` (its training
    part; the default, fold 0 of 2, is the fixed split of the shipped networks and leaves data and
    cards exactly as before; other folds are recorded in the card as ``background_fold``).
    ``weak_label``: also label iced the plots a whole ring reaches at ≥ this strength (see
    :func:`relabel_weak`; one strength, or one per observable as ``{"F": 0.3, "I": 0.1}``, an
    observable left out keeping the visibility labels; recorded in the card; default off);
    ``weak_label_simulated_only``: only on simulated data sets; ``weak_label_ref_n``: plots with fewer
    observations need a stronger ring (both :func:`relabel_weak`).
    ``exclude_family``: leave-one-family-out, the training (and validation) data contain no ring of
    this family of ``training.families.FAMILIES`` (see ``families.excluding``; recorded in the card
    and the cache key; default None: data, cache keys and cards as without it).
    ``real_negative_weight``: loss weight of the negative plots of real backgrounds
    (:func:`real_negative_weights`; a specificity counterweight, recorded in the card; default off).
    ``profile_branch``: the model with the per-column profile branch (``models.build_model``;
    recorded in the card; default off).
    ``vary_backgrounds``: every use of a real background is another measurement of it (a cut-off
    inside an ice range, a random subset of reflections, extra noise: ``simulate.semi.vary_background``), so that its clean plots
    are not the same few images over and over (recorded in the card and the cache key; default off).
    ``clean_twins``: each real background given ice also enters clean, for the ranges its ice
    reaches (``simulate.make_training_set``; recorded in the card and the cache key; default off).
    ``plot_scale``: per observable, the y axis of its plots (``plots.PLOT_SCALES``, e.g.
    ``{"I": "signed_sqrt"}``; recorded in the card, whose ``plot_scale`` every path that feeds the
    network follows, and in the cache key; an observable left out: "linear", the published scale).
    Returns a summary (wall time, metrics, file paths). Reproducible for a given ``seed``.
    """
    import gemmi
    import keras
    import tensorflow as tf

    from .convert import convert, keras_to_tflite
    from .models import build_model, describe

    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t0 = time.time()
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    set_seeds(seed)
    cache = Path(cache_dir) if cache_dir is not None else tdata.DEFAULT_CACHE
    keras_out = Path(keras_dir) if keras_dir is not None else cache / "keras"
    keras_out.mkdir(parents=True, exist_ok=True)
    out = Path(out_dir)
    backgrounds = None
    if backgrounds_dir is not None:
        backgrounds, held = tdata.background_folds(backgrounds_dir, n_folds, fold)
        log(f"real backgrounds (fold {fold} of {n_folds}): {len(backgrounds)} for training, "
            f"{len(held)} held out for evaluation")

    data_seed = DATA_SEED_BASE + seed
    params = {"seed": seed, "data_seed": data_seed, "n_datasets": n_datasets, "epochs": epochs,
              "transfer_epochs": transfer_epochs, "batch_size": batch_size, "learning_rate": learning_rate,
              "transfer_learning_rate": transfer_learning_rate, "val_fraction": val_fraction,
              "balance_classes": balance_classes, "target_specificity": target_specificity,
              "real_backgrounds": [p.name for p in backgrounds] if backgrounds else [],
              "background_fraction": background_fraction if backgrounds else 0.0,
              "optimizer": "Adam", "loss": "binary_crossentropy",
              "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
              "gemmi": gemmi.__version__, "platform": tdata.cpu_state(), "git": tdata.git_state()}
    if (fold, n_folds) != (0, 2):  # the default keeps today's cards key for key
        params["background_fold"] = {"fold": fold, "n_folds": n_folds}
    if weak_label is not None:
        params["weak_label"] = weak_label
        if weak_label_simulated_only:
            params["weak_label_simulated_only"] = True
        if weak_label_ref_n:
            params["weak_label_ref_n"] = weak_label_ref_n
    if exclude_family is not None:
        from .families import MEMBER

        if exclude_family not in MEMBER:
            raise ValueError(f"unknown family {exclude_family!r} (one of {', '.join(MEMBER)})")
        params["exclude_family"] = exclude_family
    if real_negative_weight is not None:
        params["real_negative_weight"] = real_negative_weight
    if profile_branch:
        params["profile_branch"] = True
    if vary_backgrounds:
        params["vary_backgrounds"] = True
    if clean_twins:
        params["clean_twins"] = True
    scales = {k: v for k, v in (plot_scale or {}).items() if v != "linear"}
    if scales:
        params["plot_scale"] = scales
    summary: dict[str, Any] = {"params": params, "networks": {}}
    f_model = None
    for kind in ("F", "I"):
        tk = time.time()
        X, y, groups, meta, info = training_set(kind, n_datasets, data_seed, backgrounds, background_fraction, cache, log,
                                              exclude_family, vary_backgrounds, clean_twins, scales.get(kind, "linear"))
        wl = weak_label.get(kind) if isinstance(weak_label, dict) else weak_label
        if wl is not None:
            y, n_new = relabel_weak(y, meta, wl, weak_label_simulated_only, weak_label_ref_n)
            log(f"{kind}: weak-label {wl}: {n_new} more plots labelled iced ({int(y.sum())} in all)")
        weights = None
        if real_negative_weight is not None:
            weights = real_negative_weights(y, meta, real_negative_weight)
            log(f"{kind}: real-negative weight {real_negative_weight} on {int(np.sum(weights != 1))} plots")
        tr, va = tdata.split_by_group(groups, val_fraction, seed)
        if kind == "F":
            model = build_model(seed=seed, name="helcaraxe_fobs", profile_branch=profile_branch)
            lr, n_ep = learning_rate, epochs
        else:  # transfer learning: start from the trained F network
            model = keras.models.clone_model(f_model)
            model.set_weights(f_model.get_weights())
            model.name = "helcaraxe_iobs"
            lr, n_ep = transfer_learning_rate, transfer_epochs
        model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy", metrics=["accuracy"])
        log(f"{kind}: training on {int(tr.sum())} plots, validating on {int(va.sum())} "
            f"({len(np.unique(groups[va]))} held-out data sets), lr {lr}, ≤ {n_ep} epochs")
        history = _fit(model, X, y, tr, va, n_ep, batch_size, seed, log, balance_classes, weights)
        keras_path = keras_out / f"helcaraxe_{kind.lower()}obs.keras"
        model.save(keras_path)
        if kind == "F":
            f_model = model

        # Export, then measure on the validation set through the TFLite runtime (what ships).
        path = convert(keras_path, out, observable=kind, version=f"{__version__}+seed{seed}", model=model,
                       plot_scale=scales.get(kind, "linear"))
        Xv, yv = X[va], y[va].astype(bool)
        p32 = _tflite_predict(path, kind, Xv)
        threshold = calibrate_threshold(p32, yv, target_specificity) if target_specificity else 0.5
        m32, m05 = binary_metrics(yv, p32 >= threshold), binary_metrics(yv, p32 >= 0.5)
        int8 = None
        if check_int8:
            with tempfile.TemporaryDirectory() as tmp:
                q_path = Path(tmp) / "int8.tflite"
                q_path.write_bytes(keras_to_tflite(model, "dynamic"))
                p8 = _tflite_predict(q_path, kind, Xv)
                q_size = q_path.stat().st_size
            m8 = binary_metrics(yv, p8 >= threshold)
            c8 = compact(m8)
            int8 = {"accuracy": c8["accuracy"], "sensitivity": c8["sensitivity"], "specificity": c8["specificity"],
                    "max_abs_probability_difference": round(float(np.max(np.abs(p8 - p32))), 6) if len(p8) else 0.0,
                    "decisions_changed": int(np.sum((p8 >= threshold) != (p32 >= threshold))),
                    "size_bytes": q_size, "float32_size_bytes": path.stat().st_size,
                    "as_good": bool(m8["accuracy"]["value"] >= m32["accuracy"]["value"] - 0.002)}
        train_time = time.time() - tk
        metrics = {"validation_simulated": compact(m32),
                   "validation_simulated_at_0.5": compact(m05),
                   "validation_note": ("held-out simulated data sets (split by data set), through TFLite float32, at "
                                       f"the card's threshold {threshold} (the smallest >= 0.5 giving validation "
                                       f"specificity >= {target_specificity})"),
                   "int8_dynamic_range": int8}
        data_desc = (
            f"simulated merged data sets (auspex_helcaraxe.simulate, fingerprint {info['simulator']}): "
            f"{len(np.unique(groups))} data sets, {len(y)} plots of {kind}, {int(np.sum(y))} iced by the "
            "simulator's ground truth (spike visible over >= 1 % of the plot; docs/simulator.md)"
            + (f"; {len(backgrounds)} clean real data sets used as backgrounds with simulated ice" if backgrounds else "")
            + (f"; no ring of the family {exclude_family!r} (leave-one-family-out, training.families.excluding)"
               if exclude_family is not None else "")
            + ". Never trained on the published networks' outputs."
        )
        card = json.loads(path.with_suffix(".json").read_text())
        card.update({
            "name": f"helcaraxe_{kind.lower()}obs", "threshold": threshold, "training_data": data_desc,
            "metrics": metrics, "source": keras_path.name,
            "source_sha256": None,  # the .keras file is not shipped; the card describes the training
            "training": {**params, "epochs_run": len(history["loss"]), "learning_rate_used": lr,
                         "initialised_from": "helcaraxe_fobs (transfer learning)" if kind == "I" else "He normal",
                         "train_plots": int(tr.sum()), "validation_plots": int(va.sum()),
                         "simulator_fingerprint": info["simulator"],
                         "wall_time_s": round(train_time, 1), "history": history},
            "architecture": "4 x (2 x [conv ELU + batch norm] + max pool), dense 32 + dropout, sigmoid",
            "shipped_precision": "float32" + (" (dynamic-range int8 as good on validation; see int8_dynamic_range)"
                                               if int8 and int8["as_good"] else ""),
            "licence": "same as auspex-helcaraxe (LGPL-3.0-or-later)",
        })
        path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
        summary["networks"][kind] = {"tflite": str(path), "metrics": metrics, "wall_time_s": round(train_time, 1),
                                     **describe(model)}
        log(f"{kind}: threshold {threshold}: {compact(m32)} in {train_time:.0f} s")
        del X, y, groups, meta, info
    summary["wall_time_s"] = round(time.time() - t0, 1)
    log(f"total wall time {summary['wall_time_s']:.0f} s")
    return summary


def train_members(out_dir: str | os.PathLike, members: int, seed: int = 0,
                  cache_dir: str | os.PathLike | None = None, log: Callable[[str], None] | None = None,
                  **kwargs: Any) -> dict[str, Any]:
    """Train ``members`` pairs with the same recipe (seeds ``seed`` … ``seed + members - 1``, each
    :func:`train` into ``out_dir/members/seedN`` with its Keras files under ``<cache>/keras_seedN``)
    and export, per observable, the mean of the members as one network into ``out_dir``
    (:func:`ensemble.ensemble`, threshold 0.5 until ``real_thresholds --set-threshold`` sets it).
    One seeded command; the ensemble cards carry the recipe and every member's wall time."""
    from .ensemble import ensemble

    if members < 2:
        raise ValueError("members: at least 2 (one network: train())")
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t0 = time.time()
    cache = Path(cache_dir) if cache_dir is not None else tdata.DEFAULT_CACHE
    out = Path(out_dir)
    seeds = [seed + j for j in range(members)]
    keras_dirs = [cache / f"keras_seed{s}" for s in seeds]
    runs = []
    for j, (s, kdir) in enumerate(zip(seeds, keras_dirs)):
        log(f"member {j + 1} of {members}: seed {s}")
        runs.append(train(out / "members" / f"seed{s}", seed=s, cache_dir=cache, keras_dir=kdir, log=log, **kwargs))
    summary: dict[str, Any] = {"members": runs, "networks": {}}
    for kind in ("F", "I"):
        path = ensemble([k / f"helcaraxe_{kind.lower()}obs.keras" for k in keras_dirs], out, kind,
                        plot_scale=(kwargs.get("plot_scale") or {}).get(kind, "linear"))
        card = json.loads(path.with_suffix(".json").read_text())
        card["training"] = {**runs[0]["params"], "seed": seed, "members": members, "member_seeds": seeds,
                            "member_wall_time_s": [r["wall_time_s"] for r in runs]}
        path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
        summary["networks"][kind] = {"tflite": str(path), "macs_per_plot": card["macs_per_plot"]}
    summary["wall_time_s"] = round(time.time() - t0, 1)
    log(f"ensemble of {members}: total wall time {summary['wall_time_s']:.0f} s")
    return summary


def weak_label_arg(text: str) -> float | dict[str, float]:
    """``--weak-label`` value: ``0.3`` (both observables) or ``F=0.3,I=0.1`` (per observable)."""
    import argparse

    try:
        return float(text) if "=" not in text else per_kind(text, float)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a strength or F=…,I=… list: {text!r}") from None


def plot_scale_arg(text: str) -> dict[str, str]:
    """``--plot-scale`` value: ``I=signed_sqrt`` (per observable, comma-separated; ``plots.PLOT_SCALES``)."""
    import argparse

    from ..plots import PLOT_SCALES

    def scale(v: str) -> str:
        if v not in PLOT_SCALES:
            raise ValueError(v)
        return v

    try:
        return per_kind(text, scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an I=…,F=… list of {', '.join(PLOT_SCALES)}: {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    """``python -m auspex_helcaraxe.training.train [OUT_DIR] [--seed N] ...`` (the CLI has ``helcaraxe train``)."""
    import argparse

    from .families import FAMILIES

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("out_dir", nargs="?", default="resources")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-datasets", type=int, default=DEFAULTS["n_datasets"])
    ap.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    ap.add_argument("--transfer-epochs", type=int, default=DEFAULTS["transfer_epochs"])
    ap.add_argument("--backgrounds", default=None, help="real-data directory with labels.tsv")
    ap.add_argument("--background-fraction", type=float, default=DEFAULTS["background_fraction"])
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-int8-check", action="store_true")
    ap.add_argument("--target-specificity", type=float, default=DEFAULTS["target_specificity"])
    ap.add_argument("--fold", type=int, default=0,
                    help="fold of training.data.background_folds whose training part gives the real backgrounds "
                         "(default 0: the fixed split of the shipped networks)")
    ap.add_argument("--n-folds", type=int, default=2)
    ap.add_argument("--weak-label", type=weak_label_arg, default=None, metavar="STRENGTH",
                    help="experiment: also label iced the plots of whole rings at >= STRENGTH x the local mean; "
                         "one value, or per observable as F=0.3,I=0.1")
    ap.add_argument("--weak-label-simulated-only", action="store_true",
                    help="experiment: --weak-label on simulated data sets only, real backgrounds keep the visibility labels")
    ap.add_argument("--weak-label-ref-n", type=float, default=None, metavar="N",
                    help="experiment: with --weak-label, a plot with n < N observations in its range needs "
                         "STRENGTH x sqrt(N / n)")
    ap.add_argument("--exclude-family", default=None, metavar="NAME",
                    choices=tuple(FAMILIES),
                    help="leave-one-family-out: no ring of this family (training.families.FAMILIES) in the training data")
    ap.add_argument("--real-negative-weight", type=float, default=None, metavar="W",
                    help="experiment: loss weight W for the negative plots of real backgrounds")
    ap.add_argument("--profile-branch", action="store_true",
                    help="experiment: add the per-column profile branch to the model")
    ap.add_argument("--vary-backgrounds", action="store_true",
                    help="experiment: each use of a real background is another measurement of it (subset, extra noise)")
    ap.add_argument("--clean-twins", action="store_true",
                    help="experiment: each real background given ice also enters clean, for the ranges its ice reaches")
    ap.add_argument("--plot-scale", type=plot_scale_arg, default=None, metavar="I=SCALE",
                    help="experiment: the y axis of an observable's plots (plots.PLOT_SCALES), e.g. I=signed_sqrt; "
                         "recorded in the card, which every path that feeds the network follows")
    ap.add_argument("--balance-classes", action="store_true")
    ap.add_argument("--members", type=int, default=1, metavar="K",
                    help="train K pairs with this recipe (seeds SEED … SEED+K-1) and export their mean per observable "
                         "(train_members); default 1: one pair")
    a = ap.parse_args(argv)
    backgrounds = tdata.require_real_dir(ap, a.backgrounds) if a.backgrounds else None
    kwargs = dict(n_datasets=a.n_datasets, epochs=a.epochs, transfer_epochs=a.transfer_epochs,
                  backgrounds_dir=backgrounds, background_fraction=a.background_fraction, cache_dir=a.cache_dir,
                  threads=a.threads, check_int8=not a.no_int8_check, target_specificity=a.target_specificity,
                  fold=a.fold, n_folds=a.n_folds, weak_label=a.weak_label,
                  exclude_family=a.exclude_family,
                  real_negative_weight=a.real_negative_weight, profile_branch=a.profile_branch,
                  vary_backgrounds=a.vary_backgrounds, weak_label_simulated_only=a.weak_label_simulated_only,
                  weak_label_ref_n=a.weak_label_ref_n, clean_twins=a.clean_twins, balance_classes=a.balance_classes,
                  plot_scale=a.plot_scale)
    if a.members > 1:
        s = train_members(a.out_dir, a.members, seed=a.seed, **kwargs)
    else:
        s = train(a.out_dir, seed=a.seed, **kwargs)
    print(json.dumps({k: v for k, v in s.items()}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
