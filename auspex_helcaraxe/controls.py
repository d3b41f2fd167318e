"""Ice-free control windows: how a network answers on *this* data set where ice cannot be.

A network that scores a range of a clean data set as ice often scores that data set's ice-free
resolution windows high too: it is answering to the data set (its resolution limit, its intensity
distribution), not to a ring. For each ice range, :data:`PER_SIDE` windows as wide as the range are
placed on each side in the gaps between the 25 ranges (at least :func:`margin` from every range),
nearest first, and plotted and scored exactly like the range. A network card may carry
``control_baseline``: the median control-window probability on clean real data sets
(``training.real_thresholds --controls --cards DIR``). The range's probability is then discounted
by how much more ice-like the data set's control windows look than that baseline, in logit:

    p = σ(logit p_network − max(0, mean_c logit p_c − logit baseline))

(``control_aggregate: "min"`` on the card pools the windows by their minimum instead of the mean:
a range is then discounted only when every window looks more ice-like than the baseline.)
It is never raised. The windows are scored only where a decision can depend on them: for ranges the
network alone would flag (p_network ≥ the threshold), and for ranges the joint I+F rule would flag
before the discount (its combiner is increasing in p_I and p_F, so a discount can only take a joint
flag away; ``joint.joint_ranges`` asks :func:`check`). Elsewhere a range reports p_network, which is
then below the threshold either way, so a clean data set costs little more than the networks on its
ranges. Windows beyond the data, partly covered or blank are not used; a range without a usable
window keeps p_network. Cards without a baseline (the published networks, older cards) are not
discounted and no control windows are computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .ice_ranges import IceRange, ice_ranges
from .joint import logits
from .network import plots_for, scale_of
from .plots import RangePlots
from .reflections import Observable

PER_SIDE = 2
MARGIN_FRACTION = 0.3  # a window keeps >= 0.3 range widths ...
MIN_MARGIN = 0.004  # ... and >= 0.004 Å from every ice range
D_LIMITS = (0.85, 5.0)  # Å: windows are placed inside these
_MIN_GAP = 0.001  # Å between two windows plotted in one pass (the lookup table of make_plots)


def margin(r: IceRange) -> float:
    """Distance (Å) a control window of range ``r`` keeps from every ice range."""
    return max(MARGIN_FRACTION * (r.d_max - r.d_min), MIN_MARGIN)


@lru_cache(maxsize=None)
def control_windows(r: IceRange) -> tuple[IceRange, ...]:
    """The control windows of ``r`` (same width, in the gaps between ranges), nearest first per side.

    Windows carry ``index`` 0; the set depends on the 25 ranges only, not on the data."""
    w, m = r.d_max - r.d_min, margin(r)
    blocked = sorted((q.d_min - m, q.d_max + m) for q in ice_ranges())
    gaps, lo = [], D_LIMITS[0]
    for a, b in blocked:
        if a > lo:
            gaps.append((lo, a))
        lo = max(lo, b)
    gaps.append((lo, D_LIMITS[1]))
    out = []
    above = [(a, b) for a, b in gaps if a >= r.d_max]  # lower resolution, nearest first
    below = [(a, b) for a, b in reversed(gaps) if b <= r.d_min]  # higher resolution, nearest first
    for side, seq in ((+1, above), (-1, below)):
        found = 0
        for a, b in seq:
            n = min(int((b - a) // w), PER_SIDE - found)
            for j in range(n):
                lo_d = a + j * w if side > 0 else b - (j + 1) * w
                out.append(_window(lo_d, lo_d + w))
            found += n
            if found == PER_SIDE:
                break
    return tuple(out)


def _window(d_min: float, d_max: float) -> IceRange:
    return IceRange(0, d_max, d_min, 1.0 / d_max**2, 1.0 / d_min**2)


@dataclass(frozen=True)
class Scores:
    """A network's answer per range of one :class:`RangePlots` (NaN where not predictable)."""

    network: np.ndarray  # (n,) the network's probability on the range's plot
    checked: np.ndarray  # (n,) bool: the range's control windows were scored
    controls: tuple[np.ndarray, ...]  # per range: the probabilities of its usable control windows
    p: np.ndarray  # (n,) the decision probability: ``network``, discounted where checked
    baseline: float | None  # the card's control baseline (None: no discount)
    aggregate: str = "mean"  # the card's control_aggregate


def score(obs: Observable, plots: RangePlots, network, threshold: float | np.ndarray | None = None,
          controls: bool | None = None, previous: Scores | None = None, also: np.ndarray | None = None) -> Scores:
    """Score every predictable plot of ``plots`` (made from ``obs``) and, when the card has a baseline,
    discount by control windows. The windows of a range are scored only where its decision can depend
    on them (``controls=None``): where the network alone reaches ``threshold`` (default: the card's; one
    per plot where plots have their own, ``network.flag_thresholds``).
    A discount only lowers p, so a range below the threshold is not flagged with or without it, and
    keeps the network's probability (an upper bound of the discounted one; the joint I+F rule asks for
    the windows it needs, :func:`check`). ``controls=True`` scores and applies every range's windows
    (for fitting the combiner and estimating a baseline; nothing is discounted without a baseline),
    ``False`` none. ``previous``: an earlier :func:`score` of the same plots and network, whose network
    probabilities and control windows are reused (e.g. to extend it to a lower threshold). ``also``: a
    mask of ranges whose windows are scored and applied as well (the summed-evidence rule, ``pairs.py``)."""
    if plots.scale != scale_of(network):  # a path that made the plots without the card (network.plots_for)
        raise ValueError(f"plots on the {plots.scale} scale given to {network.card.name}, which reads {scale_of(network)}")
    n = len(plots.ranges)
    pred = plots.predictable
    if previous is not None:
        p_net = previous.network
    else:
        p_net = np.full(n, np.nan)
        if pred.any():
            p_net[pred] = network.predict(plots.inputs[pred])
    baseline = network.card.control_baseline
    threshold = network.card.threshold if threshold is None else threshold
    if controls is None:
        need = pred & (p_net >= threshold) if baseline is not None else np.zeros(n, bool)
    else:
        need = pred.copy() if controls else np.zeros(n, bool)
    if previous is not None:
        need = need | previous.checked  # windows once scored stay applied
    if also is not None and baseline is not None:
        need = need | (also & pred)
    per_range = list(previous.controls) if previous is not None else [np.zeros(0) for _ in range(n)]
    new = need & ~previous.checked if previous is not None else need
    if new.any():
        idx = np.flatnonzero(new)
        for k, c in zip(idx, control_probabilities(obs, [plots.ranges[k] for k in idx], network)):
            per_range[k] = c
    p = p_net
    aggregate = network.card.control_aggregate
    if baseline is not None:
        p = np.where(need, discount(p_net, per_range, baseline, aggregate), p_net)
    return Scores(p_net, need, tuple(per_range), p, None if baseline is None else float(baseline), aggregate)


def check(obs: Observable, ice_range: IceRange, network, p_network: float) -> tuple[float, np.ndarray]:
    """One range's discounted probability and its control windows' probabilities, on demand."""
    c = control_probabilities(obs, [ice_range], network)[0]
    return float(discount_by_card(np.array([p_network]), [c], network.card)[0]), c


def predictable_controls(obs: Observable, plots: RangePlots, network) -> list[np.ndarray] | None:
    """Control-window probabilities of each predictable plot of ``plots`` (in order) when ``network``'s
    card has a baseline, else None: for callers that batch the plots themselves and :func:`discount`
    afterwards (every range discounted: the flags are those of :func:`score`, the probabilities the
    full score that the rankings need)."""
    if network.card.control_baseline is None:
        return None
    return control_probabilities(obs, [r for r, ok in zip(plots.ranges, plots.predictable) if ok], network)


def baseline_of(control_p) -> float:
    """The control baseline from clean data: the median of all their control-window probabilities."""
    c = np.concatenate([np.asarray(v, dtype=np.float64) for v in control_p] or [np.zeros(0)])
    return float(np.median(c)) if c.size else 0.5


def control_probabilities(obs: Observable, ranges, network) -> list[np.ndarray]:
    """The network's probability on each usable control window of each range in ``ranges``, in the
    order of :func:`control_windows` (whatever other ranges are scored in the same call)."""
    wins = [(k, w) for k, r in enumerate(ranges) for w in control_windows(r) if w.d_min >= obs.d_min]
    if not wins:
        return [np.zeros(0) for _ in ranges]
    owners, inputs = [], []
    for group in _passes(wins):
        plots = plots_for(obs, network, tuple(w for _, w in group))
        ok = plots.predictable
        by_window = {w: (k, wins.index((k, w))) for k, w in group}
        owners += [by_window[w] for w, good in zip(plots.ranges, ok) if good]
        inputs.append(plots.inputs[ok])
    x = np.concatenate(inputs)
    found = dict(zip(owners, network.predict(x) if len(x) else []))  # (range, position in wins) -> p
    return [np.array([float(found[kj]) for kj in sorted(kj for kj in found if kj[0] == k)]) for k in range(len(ranges))]


def _passes(wins: list[tuple[int, IceRange]]) -> list[list[tuple[int, IceRange]]]:
    """Split windows into groups of non-overlapping ones (one ``make_plots`` pass each), high d first."""
    left = sorted(wins, key=lambda kw: -kw[1].d_max)
    groups = []
    while left:
        group, rest, floor = [], [], np.inf
        for kw in left:
            if kw[1].d_max < floor - _MIN_GAP:
                group.append(kw)
                floor = kw[1].d_min
            else:
                rest.append(kw)
        groups.append(group)
        left = rest
    return groups


AGGREGATES = {"mean": np.mean, "min": np.min}  # ModelCard.control_aggregate


def excess(control_p: np.ndarray, baseline: float, aggregate: str = "mean") -> float:
    """How much more ice-like (logit) a range's control windows look than the baseline; ≥ 0.
    ``aggregate`` pools the windows' logits (:data:`AGGREGATES`)."""
    if len(control_p) == 0:
        return 0.0
    return max(0.0, float(AGGREGATES[aggregate](logits(control_p))) - float(logits(baseline)))


def discount(p_network: np.ndarray, controls, baseline: float, aggregate: str = "mean") -> np.ndarray:
    """``σ(logit p − excess)`` per range (NaN stays NaN)."""
    e = np.array([excess(c, baseline, aggregate) for c in controls])
    out = 1.0 / (1.0 + np.exp(-(logits(p_network) - e)))
    return np.where(np.isnan(p_network), np.nan, np.where(e > 0, out, p_network))


def discount_by_card(p_network: np.ndarray, controls, card) -> np.ndarray:
    """:func:`discount` with a network card's ``control_baseline`` and ``control_aggregate``;
    ``p_network`` unchanged when the card has no baseline."""
    if card.control_baseline is None:
        return p_network
    return discount(p_network, controls, card.control_baseline, card.control_aggregate)
