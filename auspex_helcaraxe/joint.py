"""One verdict per data set from I and F: a learned combiner (logistic regression, numpy only).

When a data set holds both observables and the Helcaraxe networks predicted a range in both, the
per-observable probabilities (and, when Icefinder ran, its scores of I and F in that range) go into a
small logistic regression fitted on the simulator's ground truth (simulated + semi-synthetic data
sets; ``auspex_helcaraxe.training.joint``). Its coefficients, feature scaling, threshold, training
data and metrics live in ``resources/helcaraxe_joint.json`` (the combiner's card). Ranges predicted
in only one observable, and files with only I or only F, keep the single-observable rule.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .results import PREDICTED

if TYPE_CHECKING:  # pragma: no cover
    from .host import Analysis

COMBINER_FILE = "helcaraxe_joint.json"
ENV_COMBINER = "HELCARAXE_JOINT"  # path of another combiner card (or "none" to switch the rule off)
P_CLIP = 1e-6
SCORE_CLIP = 20.0

# Feature sets: "networks" uses only the two probabilities; "networks+icefinder" adds Icefinder's
# scores of I and F in the range (used when Icefinder ran on both observables).
FEATURES = {
    "networks": ("logit_p_I", "logit_p_F", "logit_min", "logit_max"),
    "networks+icefinder": ("logit_p_I", "logit_p_F", "logit_min", "logit_max", "icefinder_I", "icefinder_F"),
}


def _logit(p: float) -> float:
    p = min(max(float(p), P_CLIP), 1.0 - P_CLIP)
    return math.log(p / (1.0 - p))


def logits(p) -> np.ndarray:
    """:func:`_logit` over an array (the same clip; for the vectorised callers)."""
    p = np.clip(np.asarray(p, dtype=np.float64), P_CLIP, 1 - P_CLIP)
    return np.log(p / (1 - p))


def features(p_i: float, p_f: float, ice_i: float | None = None, ice_f: float | None = None) -> dict[str, float]:
    """The combiner's raw features of one range (before the card's standardisation)."""
    li, lf = _logit(p_i), _logit(p_f)
    out = {"logit_p_I": li, "logit_p_F": lf, "logit_min": min(li, lf), "logit_max": max(li, lf)}
    if ice_i is not None and ice_f is not None:
        out["icefinder_I"] = float(np.clip(ice_i, -SCORE_CLIP, SCORE_CLIP))
        out["icefinder_F"] = float(np.clip(ice_f, -SCORE_CLIP, SCORE_CLIP))
    return out


@dataclass(frozen=True)
class Model:
    """One logistic regression: p = sigmoid(intercept + coef · (x − mean) / scale)."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Model":
        return cls(tuple(d["features"]), np.asarray(d["mean"], float), np.asarray(d["scale"], float),
                   np.asarray(d["coef"], float), float(d["intercept"]), float(d["threshold"]))

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(self.features), "mean": [round(float(v), 6) for v in self.mean],
                "scale": [round(float(v), 6) for v in self.scale], "coef": [round(float(v), 6) for v in self.coef],
                "intercept": round(float(self.intercept), 6), "threshold": round(float(self.threshold), 4)}

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for rows of raw features ``x`` (n, len(features))."""
        z = self.intercept + ((np.atleast_2d(x) - self.mean) / self.scale) @ self.coef
        return 1.0 / (1.0 + np.exp(-z))

    @property
    def increasing(self) -> bool:
        """p_joint never falls when p_I or p_F rises (every coefficient on their logits ≥ 0)."""
        return all(c >= 0 for f, c in zip(self.features, self.coef) if f.startswith("logit"))

    def predict_one(self, feats: dict[str, float]) -> float:
        return float(self.predict(np.array([[feats[f] for f in self.features]]))[0])


@dataclass(frozen=True)
class Combiner:
    """The combiner card: one model per feature set, plus provenance and metrics."""

    models: dict[str, Model]
    card: dict[str, Any]
    path: str

    def fits(self, sha_i: str | None, sha_f: str | None) -> bool:
        """True when the combiner was fitted on the probabilities of exactly these networks."""
        nets = self.card.get("networks") or {}
        return nets.get("I") == sha_i and nets.get("F") == sha_f

    def model_for(self, with_icefinder: bool) -> tuple[str, Model]:
        name = "networks+icefinder" if with_icefinder and "networks+icefinder" in self.models else "networks"
        return name, self.models[name]


@lru_cache(maxsize=1)
def default_combiner_path() -> Path:
    """The shipped combiner card (in a source checkout whose editable install points elsewhere, the
    checkout's own ``resources/``)."""
    shipped = Path(str(resources.files("auspex_helcaraxe.resources"))) / COMBINER_FILE
    checkout = Path(__file__).resolve().parents[1] / "resources" / COMBINER_FILE
    return shipped if shipped.is_file() or not checkout.is_file() else checkout


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> Combiner:
    data = json.loads(Path(path).read_text())
    return Combiner({k: Model.from_dict(v) for k, v in data["models"].items()}, data, path)


def load_combiner(path: str | os.PathLike | None = None) -> Combiner | None:
    """The combiner card at ``path`` (default: ``$HELCARAXE_JOINT`` or the shipped one); None when
    there is none (the joint rule is then off and each observable decides alone)."""
    if path is None:
        path = os.environ.get(ENV_COMBINER) or default_combiner_path()
    if str(path).lower() == "none":
        return None
    p = Path(path)
    if not p.is_file():
        return None
    return _load(str(p.resolve()), p.stat().st_mtime)


def joint_ranges(analysis: "Analysis", combiner: Combiner) -> list[dict[str, Any]]:
    """Per range predicted by the networks in both I and F: p_I, p_F, p_joint, flagged, evidence."""
    hel_i, hel_f = analysis.result("helcaraxe", "I"), analysis.result("helcaraxe", "F")
    if hel_i is None or hel_f is None or "network" not in hel_i.info or "network" not in hel_f.info:
        return []
    if not combiner.fits(hel_i.info["network"].get("sha256"), hel_f.info["network"].get("sha256")):
        return []  # fitted on other networks' probabilities: each observable decides alone
    ice_i, ice_f = analysis.result("icefinder", "I"), analysis.result("icefinder", "F")
    user_threshold = analysis.options.threshold  # --threshold applies to every deciding probability
    out = []
    for ri in hel_i.ranges:
        rf = hel_f.range(ri.index)
        if rf is None or ri.status != PREDICTED or rf.status != PREDICTED:
            continue
        si = _score(ice_i, ri.index)
        sf = _score(ice_f, ri.index)
        with_ice = si is not None and sf is not None
        name, model = combiner.model_for(with_ice)
        threshold = model.threshold if user_threshold is None else user_threshold
        p_i, p_f = float(ri.value), float(rf.value)
        p = model.predict_one(features(p_i, p_f, si if with_ice else None, sf if with_ice else None))
        if p >= threshold or not model.increasing:  # a control-window discount could take this flag away
            p_i, p_f = _checked(analysis, "I", ri, p_i), _checked(analysis, "F", rf, p_f)
            p = model.predict_one(features(p_i, p_f, si if with_ice else None, sf if with_ice else None))
        flagged = p >= threshold
        ev = (f"joint {name} p={p:.3f} {'≥' if flagged else '<'} {threshold:.3f} "
              f"(I p={p_i:.2f}, F p={p_f:.2f}" + (f", Icefinder I {si:+.1f}, F {sf:+.1f}" if with_ice else "") + ")")
        out.append({"index": ri.index, "d_max": ri.d_max, "d_min": ri.d_min, "p_I": round(p_i, 4),
                    "p_F": round(p_f, 4), "p_joint": round(p, 4), "threshold": threshold,
                    "model": name, "flagged": bool(flagged), "I_flagged": bool(ri.flagged),
                    "F_flagged": bool(rf.flagged), "evidence": ev})
    return out


def _checked(analysis: "Analysis", kind: str, r, p: float) -> float:
    """The range's probability after its control windows (``controls.check``), when the detector did
    not score them (below its own threshold) and the network card has a control baseline."""
    if r.details.get("control_probabilities") is not None or "network_probability" not in r.details:
        return p
    from .controls import check
    from .ice_ranges import ice_ranges
    from .network import load_networks

    network = load_networks(analysis.options.networks)[kind]
    return check(analysis.reflections.observables[kind], ice_ranges()[r.index - 1], network, p)[0]


def _score(result, index: int) -> float | None:
    if result is None:
        return None
    r = result.range(index)
    if r is None or r.value is None:
        return None
    v = float(r.value)
    return v if math.isfinite(v) else None
