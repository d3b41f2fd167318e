"""Paired weak rings: evidence for ice across ranges of one observable.

Hexagonal ice diffracts on all its lines at once, so weak ice leaves sub-threshold evidence in several
ranges of one data set, which a per-range threshold throws away. A network card may carry
``pair_threshold`` t₂ (below its threshold): when at least two predictable ranges of the observable
reach t₂ (decision probabilities, control windows applied), every range that reaches it is flagged.
One strong range cannot carry a weak partner: each needs t₂ on its own.

A network's answers on sparse plots scatter: on thinned clean real data sets the share of I plots at
≥ 0.25 is 0.17 below 100 reflections and 0.03 from 400 on, so with many sparse ranges two reach a
fixed t₂ by chance. A card may therefore carry ``pair_steps``, t₂ by the plot's size: the shipped I
card's ``[[200, 0.25], [0, 0.35]]`` means t₂ = 0.25 for a plot of at least 200 reflections and 0.35
below (with more steps, largest minimum first; a plot below every step's minimum never counts; the
first step's t₂ is the card's ``pair_threshold``). Chosen and tested in docs/independent_notes.md
(session 12); cards without t₂ (the F card, the published networks) are unaffected.

A range's windows are scored on demand (``controls.score``); a range without them reports the
network's probability, an upper bound of the discounted one. So when two ranges reach their t₂ the
windows of every range at or above the lowest t₂ are added (the network's answers and the windows
already scored are reused) before the rule decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .controls import Scores, score
from .plots import RangePlots
from .reflections import Observable


@dataclass(frozen=True)
class Pair:
    """The outcome of the rule for one observable."""

    threshold: float  # t₂ (of well-sampled plots, when the card has steps)
    ranks: tuple[int, ...]  # positions (in the RangePlots) of the ranges it flags; empty: none
    thresholds: np.ndarray | None = None  # (n,) each range's t₂ by its size, when the card has steps


def reaching(p: np.ndarray, t2: float | np.ndarray) -> np.ndarray:
    """Positions of the ranges at or above ``t2`` (one value, or one per range), when there are at least
    two (else none)."""
    hit = np.flatnonzero(np.nan_to_num(p, nan=-1.0) >= t2)
    return hit if len(hit) >= 2 else hit[:0]


def thresholds(t2: float, steps, n: np.ndarray) -> np.ndarray | float:
    """Each plot's t₂ for its ``n`` reflections under ``steps`` (``[[min_n, t2], ...]``, largest minimum
    first; inf below the last); ``t2`` itself when there are no steps."""
    if not steps:
        return t2
    n = np.asarray(n)
    out = np.full(n.shape, np.inf)
    for n_min, t in reversed(steps):
        out[n >= n_min] = t
    return out


def check(obs: Observable, plots: RangePlots, network, scores: Scores,
          threshold: float | None = None) -> tuple[Scores, Pair | None]:
    """The pair rule of ``network``'s card on ``scores`` (made with ``threshold``); returns the scores
    (with the windows of every range at or above t₂ applied when the rule needed them) and the outcome
    (None when the card has no ``pair_threshold``)."""
    card = network.card
    if card.pair_threshold is None:
        return scores, None
    t2 = thresholds(card.pair_threshold, card.pair_steps, plots.n_in_range)
    hit = reaching(scores.p, t2)
    if len(hit) and scores.baseline is not None and not scores.checked[hit].all():
        t = card.threshold if threshold is None else threshold
        scores = score(obs, plots, network, min(t, float(np.min(t2))), previous=scores)
        hit = reaching(scores.p, t2)
    return scores, Pair(float(card.pair_threshold), tuple(int(k) for k in hit),
                        None if np.isscalar(t2) else np.asarray(t2))


def evidence(scores: Scores, pair: Pair, plots: RangePlots, kind: str) -> str:
    """One line: what a pair flag rests on, with each plot's number of reflections (pairs of sparse plots
    arise by chance far more often; docs/evaluation.md, thinned real data sets)."""
    idx = ", ".join(str(plots.ranges[k].index) for k in pair.ranks)
    ps = ", ".join(f"{scores.p[k]:.2f}" for k in pair.ranks)
    n = ", ".join(str(int(plots.n_in_range[k])) for k in pair.ranks)
    if pair.thresholds is None:
        return f"paired rings: {len(pair.ranks)} ranges ({idx}) at p={ps}, each ≥ {pair.threshold:.2f} ({kind}; {n} reflections)"
    t2 = ", ".join(f"{pair.thresholds[k]:.2f}" for k in pair.ranks)
    return f"paired rings: {len(pair.ranks)} ranges ({idx}) at p={ps}, each ≥ its t₂ {t2} by size ({kind}; {n} reflections)"
