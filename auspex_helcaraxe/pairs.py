"""Weak rings across ranges of one observable: the pair rule and the summed-evidence rule.

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

**Summed evidence.** A card may also carry ``summed_evidence`` ``[min_n, top_k, s]``: over the
predictable plots with at least ``min_n`` reflections, each plot's excess over the clean look is
e = max(0, logit p_network − D − logit b), b the card's control baseline and D the excess
(``controls.excess``, the card's pooling) of the pooled control windows of the ``top_k`` such plots
with the highest network p: one discount for the data set, from the windows where its evidence is.
When S = Σ e ≥ s, the fewest ranges whose excesses reach s are flagged. Weak ice raises every range
it reaches at once; a clean data set's ice-like answers are scattered. ``s`` is chosen on the clean
real data sets (``training.real_thresholds --summed``). Since D ≥ 0, the windows are scored only when
S without them already reaches s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .controls import Scores, excess, score
from .joint import logits
from .plots import RangePlots
from .reflections import Observable

PAIR_EVIDENCE = "paired rings:"  # how the evidence line of each rule begins (thinned counts flags by it)
SUMMED_EVIDENCE = "summed weak evidence:"


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
          threshold: float | np.ndarray | None = None) -> tuple[Scores, Pair | None]:
    """The pair rule of ``network``'s card on ``scores`` (made with ``threshold``); returns the scores
    (with the windows of every range at or above t₂ applied when the rule needed them) and the outcome
    (None when the card has no ``pair_threshold``)."""
    card = network.card
    if card.pair_threshold is None:
        return scores, None
    t2 = thresholds(card.pair_threshold, card.pair_steps, plots.n_in_range)
    hit = reaching(scores.p, t2)
    if len(hit) and scores.baseline is not None and not scores.checked[hit].all():
        t = card.threshold if threshold is None else float(np.min(threshold))
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
        return f"{PAIR_EVIDENCE} {len(pair.ranks)} ranges ({idx}) at p={ps}, each ≥ {pair.threshold:.2f} ({kind}; {n} reflections)"
    t2 = ", ".join(f"{pair.thresholds[k]:.2f}" for k in pair.ranks)
    return f"{PAIR_EVIDENCE} {len(pair.ranks)} ranges ({idx}) at p={ps}, each ≥ its t₂ {t2} by size ({kind}; {n} reflections)"


@dataclass(frozen=True)
class Summed:
    """The outcome of the summed-evidence rule for one observable."""

    threshold: float  # s
    min_n: int  # plots with fewer reflections do not count
    total: float  # S = Σ e
    discount: float  # D (logit) from the windows of the top plots
    excess: np.ndarray  # (n,) e per range (0 where the plot does not count)
    ranks: tuple[int, ...]  # positions of the ranges it flags; empty: none


def summed_excess(p_network: np.ndarray, counts: np.ndarray, baseline: float, discount: float) -> np.ndarray:
    """e = max(0, logit p − ``discount`` − logit ``baseline``) where ``counts`` (a mask), else 0."""
    e = logits(np.nan_to_num(p_network, nan=0.0)) - discount - float(logits(baseline))
    return np.where(counts, np.maximum(e, 0.0), 0.0)


def top_plots(p_network: np.ndarray, counts: np.ndarray, top_k: int) -> np.ndarray:
    """Positions of the ``top_k`` counted plots with the highest network p (whose windows give D)."""
    return np.flatnonzero(counts)[np.argsort(-p_network[counts], kind="stable")[:top_k]]


def window_discount(controls, top: np.ndarray, baseline: float, aggregate: str) -> float:
    """D: the excess of the pooled control windows of the plots ``top`` over ``baseline``."""
    return excess(np.concatenate([np.asarray(controls[k], float) for k in top] or [np.zeros(0)]), baseline, aggregate)


def carrying(e: np.ndarray, s: float) -> tuple[int, ...]:
    """The fewest positions whose ``e`` reach ``s`` (largest first); empty when Σ e < s."""
    order = np.argsort(-e, kind="stable")
    reached = np.flatnonzero(np.cumsum(e[order]) >= s)
    return tuple(sorted(int(k) for k in order[: reached[0] + 1])) if len(reached) else ()


def check_summed(obs: Observable, plots: RangePlots, network, scores: Scores,
                 threshold: float | np.ndarray | None = None) -> tuple[Scores, Summed | None]:
    """The summed-evidence rule of ``network``'s card on ``scores`` (made with ``threshold``); returns the scores (with the windows
    of the top plots applied when the rule needed them) and the outcome (None when the card has no
    ``summed_evidence`` or no control baseline)."""
    card = network.card
    if card.summed_evidence is None or scores.baseline is None:
        return scores, None
    min_n, top_k, s = card.summed_evidence
    counts = plots.predictable & (plots.n_in_range >= min_n)
    e = summed_excess(scores.network, counts, scores.baseline, 0.0)
    d = 0.0
    if e.sum() >= s:  # D ≥ 0 can only lower the sum: the windows matter only now
        top = top_plots(scores.network, counts, top_k)
        also = np.zeros(len(plots.ranges), bool)
        also[top] = True
        scores = score(obs, plots, network, threshold, previous=scores, also=also)
        d = window_discount(scores.controls, top, scores.baseline, scores.aggregate)
        e = summed_excess(scores.network, counts, scores.baseline, d)
    return scores, Summed(float(s), int(min_n), float(e.sum()), float(d), e, carrying(e, s))


def summed_evidence(summed: Summed, plots: RangePlots, kind: str) -> str:
    """One line: what a summed-evidence flag rests on."""
    idx = ", ".join(str(plots.ranges[k].index) for k in summed.ranks)
    es = ", ".join(f"{summed.excess[k]:.2f}" for k in summed.ranks)
    n = ", ".join(str(int(plots.n_in_range[k])) for k in summed.ranks)
    return (f"{SUMMED_EVIDENCE} ranges {idx} above the clean look by {es} (logit; {kind}; {n} reflections), "
            f"Σ {summed.total:.2f} ≥ {summed.threshold:.2f} over every range of ≥ {summed.min_n} "
            f"reflections, control windows {summed.discount:+.2f}")
