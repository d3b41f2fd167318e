"""Paired weak rings: evidence for ice across ranges of one observable.

Hexagonal ice diffracts on all its lines at once, so weak ice leaves sub-threshold evidence in several
ranges of one data set, which a per-range threshold throws away. A network card may carry
``pair_threshold`` t₂ (below its threshold): when at least two predictable ranges of the observable
reach t₂ (decision probabilities, control windows applied), every range that reaches it is flagged.
One strong range cannot carry a weak partner: each needs t₂ on its own. A card may also carry
``pair_min_reflections``: only ranges whose plot holds at least that many reflections count, because
a network's answers on sparse plots scatter (on thinned clean real data sets the share of I plots at
≥ 0.25 is 0.17 below 100 reflections and 0.03 for 400–800), so with many sparse ranges two reach t₂ by
chance. The shipped I card carries both (chosen and tested in docs/independent_notes.md); cards
without t₂ (the F card, the published networks) are unaffected.

A range's windows are scored on demand (``controls.score``); a range without them reports the
network's probability, an upper bound of the discounted one. So when two ranges reach t₂ the windows
of every range at or above t₂ are added (the network's answers and the windows already scored are
reused) before the rule decides.
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

    threshold: float  # t₂
    ranks: tuple[int, ...]  # positions (in the RangePlots) of the ranges it flags; empty: none
    min_reflections: int | None = None  # only ranges with at least this many reflections count


def reaching(p: np.ndarray, t2: float, n: np.ndarray | None = None, min_reflections: int | None = None) -> np.ndarray:
    """Positions of the ranges at or above ``t2`` (and, when ``min_reflections`` is set, with at least
    that many reflections ``n``), when there are at least two (else none)."""
    ok = np.nan_to_num(p, nan=-1.0) >= t2
    if min_reflections is not None:
        ok &= np.asarray(n) >= min_reflections
    hit = np.flatnonzero(ok)
    return hit if len(hit) >= 2 else hit[:0]


def check(obs: Observable, plots: RangePlots, network, scores: Scores,
          threshold: float | None = None) -> tuple[Scores, Pair | None]:
    """The pair rule of ``network``'s card on ``scores`` (made with ``threshold``); returns the scores
    (with the windows of every range at or above t₂ applied when the rule needed them) and the outcome
    (None when the card has no ``pair_threshold``)."""
    t2, n_min = network.card.pair_threshold, network.card.pair_min_reflections
    if t2 is None:
        return scores, None
    hit = reaching(scores.p, t2, plots.n_in_range, n_min)
    if len(hit) and scores.baseline is not None and not scores.checked[hit].all():
        t = network.card.threshold if threshold is None else threshold
        scores = score(obs, plots, network, min(t, t2), previous=scores)
        hit = reaching(scores.p, t2, plots.n_in_range, n_min)
    return scores, Pair(float(t2), tuple(int(k) for k in hit), n_min)


def evidence(scores: Scores, pair: Pair, plots: RangePlots, kind: str) -> str:
    """One line: what a pair flag rests on."""
    idx = ", ".join(str(plots.ranges[k].index) for k in pair.ranks)
    ps = ", ".join(f"{scores.p[k]:.2f}" for k in pair.ranks)
    n = f" with ≥ {pair.min_reflections} reflections" if pair.min_reflections is not None else ""
    return f"paired rings: {len(pair.ranks)} ranges ({idx}) at p={ps}, each ≥ {pair.threshold:.2f}{n} ({kind})"
