"""Helcaraxe networks: TFLite runtime choice, model cards and batched prediction.

The runtime is ``ai-edge-litert`` (the maintained successor of ``tflite-runtime``);
``tflite_runtime`` is used only where it is what is installed. TensorFlow is never imported here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import threading
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .plots import PLOT_SCALES, RangePlots, make_plots

OBSERVABLES = ("I", "F")
DEFAULT_THRESHOLD = 0.5
SIZE_STEPS = ("sparse_threshold", "dense_threshold")  # card fields [n, t]: a plot's own threshold by its size
NO_NETWORK_HINT = (
    "no Helcaraxe network is installed; give a networks directory holding *iobs*.tflite / *fobs*.tflite "
    "networks (command line: --networks DIR; CCP4i2: NETWORKS), for example the published ones"
)


_default_threads: int | None = None
MAX_AUTO_THREADS = 4


def auto_threads() -> int:
    """TFLite threads when nobody set them: ``$HELCARAXE_THREADS`` if set, else the CPUs this process
    may run on, at most :data:`MAX_AUTO_THREADS`. The runtime's own default is one thread; on two cores
    two threads halve the networks' time per plot with bit-identical outputs (benchmarks/README.md)."""
    env = os.environ.get("HELCARAXE_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise NetworkError(f"HELCARAXE_THREADS={env!r}: not a positive whole number")
        return int(env)
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_AUTO_THREADS))


def set_num_threads(threads: int | None) -> None:
    """Threads for every TFLite interpreter of this process (None: :func:`auto_threads`).

    Interpreters that exist already are rebuilt on their next prediction. Worker pools set 1 per
    process (scan.worker: several workers with several threads each ran 2.6x slower per prediction).
    """
    global _default_threads
    _default_threads = threads
    for networks in _LOADED:
        for net in networks.values():
            net.reset()


@contextlib.contextmanager
def _runtime_chatter_silenced():
    """The LiteRT C++ runtime prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." to file
    descriptor 2 (no environment variable turns it off); users must see nothing but our own lines on
    stderr, so fd 2 points at /dev/null while an interpreter is built. Errors still arrive as exceptions."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real fd 2 (embedded hosts): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class NetworkError(InputError):
    """A network directory or file cannot be used."""


@dataclass(frozen=True)
class ModelCard:
    """What a network is: read from ``<network>.json`` beside the ``.tflite`` file, or derived."""

    name: str
    observable: str
    input_shape: tuple[int, ...] = (80, 80, 1)
    threshold: float = DEFAULT_THRESHOLD
    version: str = "unknown"
    sha256: str = ""
    training_data: str = "unknown"
    metrics: dict[str, Any] = field(default_factory=dict)
    control_baseline: float | None = None  # controls.py: discount by ice-free control windows when set
    control_aggregate: str = "mean"  # controls.py: how a range's control-window logits are pooled (mean, min)
    pair_threshold: float | None = None  # pairs.py: when two or more ranges reach it, flag each of them
    pair_steps: tuple[tuple[int, float], ...] | None = None  # pairs.py: t₂ by plot size, [[min_n, t2], ...]
    plot_scale: str = "linear"  # plots.PLOT_SCALES: the y axis of the plots this network reads
    sparse_threshold: tuple[int, float] | None = None  # [n, t]: a plot of < n reflections flags alone only at p ≥ max(threshold, t)
    dense_threshold: tuple[int, float] | None = None  # [n, t]: a plot of ≥ n reflections flags alone from p ≥ min(threshold, t)
    summed_evidence: tuple[int, int, float] | None = None  # pairs.py: [min_n, top_k, s], the summed weak evidence rule
    alone_caveat: str | None = None  # what the evaluation says this network misses in a file with no other observable
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelCard":
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        kwargs = {k: v for k, v in data.items() if k in known}
        if "input_shape" in kwargs:
            kwargs["input_shape"] = tuple(kwargs["input_shape"])
        if kwargs.get("pair_steps") is not None:
            kwargs["pair_steps"] = tuple((int(n), float(t)) for n, t in kwargs["pair_steps"])
        for key in SIZE_STEPS:
            if kwargs.get(key) is not None:
                n, t = kwargs[key]
                kwargs[key] = (int(n), float(t))
        if kwargs.get("summed_evidence") is not None:
            n, k, t = kwargs["summed_evidence"]
            kwargs["summed_evidence"] = (int(n), int(k), float(t))
        return cls(**kwargs, extra={k: v for k, v in data.items() if k not in known})

    def __post_init__(self) -> None:
        for key in SIZE_STEPS:
            step = getattr(self, key)
            if step is not None and not (step[0] > 0 and 0 < step[1] < 1):
                raise NetworkError(f"{self.name}: {key} must be [min_reflections > 0, threshold in (0, 1)]; got {list(step)}")
        if self.sparse_threshold and self.dense_threshold and self.dense_threshold[0] < self.sparse_threshold[0]:
            raise NetworkError(f"{self.name}: dense_threshold's min_reflections must be at least sparse_threshold's; "
                               f"got {list(self.dense_threshold)} and {list(self.sparse_threshold)}")
        if self.summed_evidence is not None and not (self.summed_evidence[0] >= 0 and self.summed_evidence[1] >= 1
                                                     and self.summed_evidence[2] > 0):
            raise NetworkError(f"{self.name}: summed_evidence must be [min_reflections >= 0, top_k >= 1, sum > 0]; "
                               f"got {list(self.summed_evidence)}")
        if self.plot_scale not in PLOT_SCALES:
            raise NetworkError(f"{self.name}: unknown plot_scale {self.plot_scale!r} (one of {', '.join(PLOT_SCALES)})")
        steps = self.pair_steps
        if steps is not None and self.pair_threshold is not None:  # without pair_threshold: no pair rule
            mins = [n for n, _ in steps]
            if (not steps or mins != sorted(mins, reverse=True) or len(set(mins)) < len(mins)
                    or steps[0][1] != self.pair_threshold):
                raise NetworkError(f"{self.name}: pair_steps must list [min_reflections, t2] by decreasing minimum, "
                                   f"the first t2 being pair_threshold ({self.pair_threshold}); got {list(steps)}")

    @property
    def pair_steps_list(self) -> list[list] | None:
        """``pair_steps`` as written in a card (``[[min_n, t2], ...]``), None without steps."""
        return [list(x) for x in self.pair_steps] if self.pair_steps is not None else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["pair_steps"] = self.pair_steps_list
        for key in SIZE_STEPS:
            d[key] = list(getattr(self, key)) if getattr(self, key) is not None else None
        d["summed_evidence"] = list(self.summed_evidence) if self.summed_evidence is not None else None
        extra = d.pop("extra")
        d.update(extra)
        return d


def interpreter_class():
    """The TFLite ``Interpreter`` class: ai-edge-litert, else tflite_runtime."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise NetworkError(
                "no TFLite runtime: install ai-edge-litert (pip install ai-edge-litert)"
            ) from None
    return Interpreter


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Network:
    """One TFLite Helcaraxe network; ``predict`` takes a whole batch of plots at once."""

    def __init__(self, path: str | os.PathLike, card: ModelCard, num_threads: int | None = None):
        self.path = Path(path)
        self.card = card
        self._num_threads = num_threads
        self._interpreter = None
        self._batch = 0
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.card.name

    def reset(self) -> None:
        """Drop the interpreter; the next prediction builds a new one (with the current thread count)."""
        with self._lock:
            self._interpreter = None

    def _interp(self, batch: int):
        if self._interpreter is None:
            threads = self._num_threads or _default_threads or auto_threads()
            try:
                with _runtime_chatter_silenced():
                    self._interpreter = interpreter_class()(model_path=str(self.path), num_threads=threads)
            except (ValueError, RuntimeError) as exc:
                raise NetworkError(f"{self.path}: not a usable TFLite network ({str(exc).splitlines()[0]})") from None
            self._batch = 0
        if batch != self._batch:
            inp = self._interpreter.get_input_details()[0]
            self._interpreter.resize_tensor_input(inp["index"], [batch, *self.card.input_shape])
            with _runtime_chatter_silenced():
                self._interpreter.allocate_tensors()
            self._batch = batch
        return self._interpreter

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Sigmoid outputs for ``inputs`` of shape (n, 80, 80, 1) float32; returns (n,) float64."""
        n = inputs.shape[0]
        if n == 0:
            return np.zeros(0)
        with self._lock:
            it = self._interp(n)
            it.set_tensor(it.get_input_details()[0]["index"], np.ascontiguousarray(inputs, dtype=np.float32))
            it.invoke()
            out = it.get_tensor(it.get_output_details()[0]["index"])
        return np.asarray(out, dtype=np.float64).reshape(n)


def plots_for(obs, network: "Network | None", ranges=None) -> RangePlots:
    """The plots ``network`` reads for the observable ``obs``: :func:`plots.make_plots` on the card's
    ``plot_scale`` (the published scale without a network). Every path that feeds a network uses this."""
    return make_plots(obs, ranges, scale=scale_of(network))


def flag_thresholds(card: ModelCard, n_in_range) -> np.ndarray:
    """Each plot's threshold for a flag on its own evidence: the card's, raised to the card's
    ``sparse_threshold`` t for plots of fewer than its n reflections (a network's answers on sparse
    plots scatter: docs/evaluation.md, thinned real clean data sets) and lowered to its
    ``dense_threshold`` t for plots of at least its n (large plots do not: docs/independent_notes.md,
    session 16). A threshold the user sets (``--threshold``) applies to every plot: callers use it
    without this function."""
    n = np.asarray(n_in_range)
    t = np.full(n.shape, card.threshold)
    if card.sparse_threshold is not None:
        below, t_sparse = card.sparse_threshold
        t[n < below] = np.maximum(t[n < below], t_sparse)
    if card.dense_threshold is not None:
        above, t_dense = card.dense_threshold
        t[n >= above] = np.minimum(t[n >= above], t_dense)
    return t


def row_thresholds(networks: dict[str, "Network"], kinds: np.ndarray, n_in_range: np.ndarray) -> np.ndarray:
    """:func:`flag_thresholds` for rows of plots of several observables (``kinds`` "I"/"F", their
    ``n_in_range``), each by the card of its observable's network; 0.5 where there is none."""
    kinds, n = np.asarray(kinds), np.asarray(n_in_range)
    out = np.full(kinds.shape, DEFAULT_THRESHOLD)
    for kind, net in networks.items():
        out[kinds == kind] = flag_thresholds(net.card, n[kinds == kind])
    return out


def on_scale(plots: RangePlots, obs, network: "Network") -> RangePlots:
    """``plots`` (of ``obs``) when ``network`` reads their scale, else that network's own plots of ``obs``."""
    return plots if scale_of(network) == plots.scale else plots_for(obs, network)


def plots_by_scale(obs, networks) -> dict[str, RangePlots]:
    """The plots of ``obs`` on each plot scale that some of ``networks`` (None entries allowed) read,
    always with the published "linear" one: for evaluations that score several networks on one data
    set. Which plots are predictable, their ranges and sizes are the same on every scale."""
    scales = {"linear"} | {scale_of(n) for n in networks}
    return {s: make_plots(obs, scale=s) for s in sorted(scales)}


def scale_of(network: "Network | None") -> str:
    """The plot scale ``network`` reads (``plots.PLOT_SCALES``; "linear" without a network)."""
    return network.card.plot_scale if network is not None else "linear"


def default_network_dir() -> Path:
    """The networks shipped in ``resources/``."""
    return Path(str(resources.files("auspex_helcaraxe.resources")))


def _observable_of(filename: str) -> str | None:
    low = filename.lower()
    if "iobs" in low:
        return "I"
    if "fobs" in low:
        return "F"
    return None


_LOADED: list[dict[str, "Network"]] = []  # every network set loaded in this process


@lru_cache(maxsize=8)
def _load_networks_cached(directory: str, mtimes: tuple) -> dict[str, Network]:
    nets: dict[str, Network] = {}
    for path in sorted(Path(directory).glob("*.tflite")):
        kind = _observable_of(path.name)
        if kind is None:
            continue
        if kind in nets:
            raise NetworkError(f"{directory}: more than one {kind} network ({nets[kind].path.name}, {path.name})")
        card_path = path.with_suffix(".json")
        digest = sha256_of(path)
        if card_path.exists():
            try:
                card = ModelCard.from_dict(json.loads(card_path.read_text()))
            except (ValueError, TypeError) as exc:
                raise NetworkError(f"{card_path}: unreadable model card ({exc})") from None
            if card.sha256 and card.sha256 != digest:
                raise NetworkError(f"{path}: sha256 does not match its model card {card_path.name}")
            if card.observable != kind:
                raise NetworkError(f"{card_path}: model card says observable {card.observable}, file name says {kind}")
        else:
            card = ModelCard(name=path.stem, observable=kind)
        if not card.sha256:
            card = ModelCard(**{**card.__dict__, "sha256": digest})
        nets[kind] = Network(path, card)
    _LOADED.append(nets)
    return nets


def load_networks(directory: str | os.PathLike | None = None) -> dict[str, Network]:
    """Networks by observable (``"I"``/``"F"``) from ``directory`` (default: the shipped ones).

    A directory holds at most one ``*iobs*.tflite`` and one ``*fobs*.tflite``; a model card
    ``<same name>.json`` is optional. Loaded once per process and directory (again when a file changes).
    """
    d = Path(directory) if directory is not None else default_network_dir()
    if not d.is_dir():
        raise NetworkError(f"{d}: network directory not found")
    mtimes = tuple((p.name, p.stat().st_mtime_ns) for p in sorted([*d.glob("*.tflite"), *d.glob("*.json")]))  # cards too
    return _load_networks_cached(str(d.resolve()), mtimes)
