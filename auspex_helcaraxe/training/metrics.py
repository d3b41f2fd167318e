"""Classification metrics as in the paper (accuracy, sensitivity, specificity) with 95 % Wilson
score intervals, and detection rate against ice strength. numpy only (no TensorFlow)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Z95 = 1.959963984540054


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k/n`` (``(nan, nan)`` for n = 0)."""
    if n <= 0:
        return (math.nan, math.nan)
    p = k / n
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def proportion(k: int, n: int) -> dict[str, Any]:
    """``{"value", "lo", "hi", "k", "n"}`` for ``k`` successes out of ``n``."""
    lo, hi = wilson_interval(k, n)
    return {"value": (k / n) if n else math.nan, "lo": lo, "hi": hi, "k": int(k), "n": int(n)}


def binary_metrics(truth: np.ndarray, flagged: np.ndarray) -> dict[str, Any]:
    """Confusion counts and accuracy / sensitivity / specificity (with Wilson 95 % intervals)."""
    t = np.asarray(truth, bool)
    f = np.asarray(flagged, bool)
    tp = int(np.sum(t & f))
    fn = int(np.sum(t & ~f))
    tn = int(np.sum(~t & ~f))
    fp = int(np.sum(~t & f))
    return {
        "n": int(t.size), "positives": tp + fn, "negatives": tn + fp,
        "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "accuracy": proportion(tp + tn, t.size),
        "sensitivity": proportion(tp, tp + fn),
        "specificity": proportion(tn, tn + fp),
    }


def compact(m: dict[str, Any], digits: int = 4) -> dict[str, Any]:
    """A model-card friendly version of ``binary_metrics`` output (values and intervals rounded)."""
    out: dict[str, Any] = {k: m[k] for k in ("n", "positives", "negatives", "tp", "fp", "tn", "fn")}
    for k in ("accuracy", "sensitivity", "specificity"):
        p = m[k]
        out[k] = None if math.isnan(p["value"]) else round(p["value"], digits)
        out[f"{k}_ci95"] = None if math.isnan(p["lo"]) else [round(p["lo"], digits), round(p["hi"], digits)]
    return out


def fmt(p: dict[str, Any]) -> str:
    """``0.953 [0.941, 0.962] (k/n)`` for a proportion dict; ``–`` when undefined."""
    if not p["n"]:
        return "–"
    return f"{p['value']:.3f} [{p['lo']:.3f}, {p['hi']:.3f}] ({p['k']}/{p['n']})"


def detection_curve(strength: np.ndarray, flagged: np.ndarray, edges: np.ndarray) -> dict[str, np.ndarray]:
    """Detection rate of iced plots per strength bin (``edges`` ascending): rate, Wilson interval, n."""
    s = np.asarray(strength, float)
    f = np.asarray(flagged, bool)
    b = np.digitize(s, edges) - 1
    nb = len(edges) - 1
    n = np.array([np.sum(b == i) for i in range(nb)])
    k = np.array([np.sum(f[b == i]) for i in range(nb)])
    ci = np.array([wilson_interval(int(ki), int(ni)) for ki, ni in zip(k, n)]).reshape(nb, 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    lo_e, hi_e = np.asarray(edges[:-1], float), np.asarray(edges[1:], float)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = np.where(lo_e > 0, np.sqrt(lo_e * hi_e), hi_e / 2)  # geometric centre; first bin from 0
    centre = np.where((lo_e > 0) & (hi_e > 1e3 * lo_e), 2 * lo_e, centre)  # open-ended last bin
    return {"centre": centre, "lo_edge": edges[:-1], "hi_edge": edges[1:], "n": n, "k": k, "rate": rate,
            "lo": ci[:, 0], "hi": ci[:, 1]}


def strength_at_half(curve: dict[str, np.ndarray], level: float = 0.5) -> float:
    """Strength where the detection curve first reaches ``level`` (log-linear interpolation between
    bin centres); nan when it never does, the first centre when it starts above."""
    c, r = curve["centre"], curve["rate"]
    ok = ~np.isnan(r)
    c, r = c[ok], r[ok]
    if r.size == 0 or np.all(r < level):
        return math.nan
    i = int(np.argmax(r >= level))
    if i == 0:
        return float(c[0])
    x0, x1 = (np.log(c[i - 1]), np.log(c[i])) if c[i - 1] > 0 else (c[i - 1], c[i])
    t = (level - r[i - 1]) / (r[i] - r[i - 1])
    x = x0 + t * (x1 - x0)
    return float(np.exp(x) if c[i - 1] > 0 else x)


def falls_with_strength(curve: dict[str, np.ndarray], min_n: int = 10) -> list[tuple[int, int]]:
    """Pairs of bin indices (weaker, stronger) where detection drops significantly as strength
    grows: the stronger bin's Wilson interval lies entirely below the weaker bin's (bins with
    ≥ ``min_n`` plots)."""
    keep = np.flatnonzero(curve["n"] >= min_n)
    out = []
    for a_pos, a in enumerate(keep):
        for b in keep[a_pos + 1 :]:
            if curve["hi"][b] < curve["lo"][a]:
                out.append((int(a), int(b)))
    return out


def rank_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative), ties counted ½
    (the Mann–Whitney statistic); threshold-free. nan when either set is empty."""
    pos = np.asarray(positive, float)
    neg = np.sort(np.asarray(negative, float))
    if pos.size == 0 or neg.size == 0:
        return math.nan
    below = np.searchsorted(neg, pos, "left")
    ties = np.searchsorted(neg, pos, "right") - below
    return float(np.mean(below + 0.5 * ties) / neg.size)
