"""Evaluation results written into the model cards of the networks they measured (``metrics.<key>``).

The card is the one place a user reads a network's numbers; evaluations that produce card numbers call
:func:`update_metrics` instead of having them copied by hand. The network files are not touched (the
card's ``sha256`` stays that of the ``.tflite`` file it describes).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

from ..errors import InputError


def update_metrics(card_dir: str | Path, key: str, per_observable: Mapping[str, Any],
                   sha256: Mapping[str, str] | None = None, merge: bool = False) -> list[Path]:
    """Set ``metrics[key]`` of the ``*iobs*.json`` / ``*fobs*.json`` card in ``card_dir`` for each
    observable (``"I"``, ``"F"``) in ``per_observable``; return the cards written.

    ``sha256``: the digests of the networks that were measured, per observable; a card describing
    another network is refused (its numbers would be someone else's). ``merge``: keep the keys of an
    existing ``metrics[key]`` block that ``value`` does not set (e.g. a hand-written decision).
    """
    written = []
    for kind, value in per_observable.items():
        path, card = _card(card_dir, kind, sha256)
        old = card.setdefault("metrics", {}).get(key)
        card["metrics"][key] = {**old, **value} if merge and isinstance(old, dict) and isinstance(value, dict) else value
        path.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
        written.append(path)
    return written


def set_thresholds(card_dir: str | Path, thresholds: Mapping[str, float], sha256: Mapping[str, str] | None = None) -> list[Path]:
    """Set the decision ``threshold`` of the card of each observable in ``thresholds`` (the detector's
    default), rounded *up* to 4 decimals so that a plot the threshold was chosen to clear stays
    cleared; ``sha256`` as in :func:`update_metrics`. Returns the cards written."""
    return _set(card_dir, "threshold", {k: math.ceil(float(t) * 1e4 - 1e-9) / 1e4 for k, t in thresholds.items()}, sha256)


def set_control_baselines(card_dir: str | Path, baselines: Mapping[str, float],
                          sha256: Mapping[str, str] | None = None,
                          aggregate: str | Mapping[str, str] | None = None) -> list[Path]:
    """Set ``control_baseline`` (``controls.py``) of the card of each observable in ``baselines``, and
    its ``control_aggregate`` when ``aggregate`` gives one (one for all, or per observable)."""
    if isinstance(aggregate, str):
        aggregate = {k: aggregate for k in baselines}
    if aggregate:
        _set(card_dir, "control_aggregate", {k: a for k, a in aggregate.items() if k in baselines}, sha256)
    return _set(card_dir, "control_baseline", {k: round(float(b), 6) for k, b in baselines.items()}, sha256)


def set_pair_thresholds(card_dir: str | Path, values: Mapping[str, float],
                        sha256: Mapping[str, str] | None = None,
                        steps: Mapping[str, Any] | None = None) -> list[Path]:
    """Set ``pair_threshold`` (``pairs.py``) of the card of each observable in ``values``, and its
    ``pair_steps`` (t₂ by plot size) where ``steps`` names the observable (None removes them)."""
    for k, v in (steps or {}).items():
        if k in values:
            _set(card_dir, "pair_steps", {k: [[int(n), float(t)] for n, t in v] if v else None}, sha256)
    return _set(card_dir, "pair_threshold", {k: float(v) for k, v in values.items()}, sha256)


def set_size_thresholds(card_dir: str | Path, key: str, values: Mapping[str, tuple[int, float] | None],
                        sha256: Mapping[str, str] | None = None) -> list[Path]:
    """Set ``key`` (``sparse_threshold`` or ``dense_threshold``, ``[n, t]``: ``network.flag_thresholds``)
    of the card of each observable in ``values`` (None removes it)."""
    from ..network import SIZE_STEPS

    if key not in SIZE_STEPS:
        raise ValueError(f"{key}: not one of {', '.join(SIZE_STEPS)}")
    return _set(card_dir, key, {k: [int(v[0]), float(v[1])] if v else None for k, v in values.items()}, sha256)


def set_summed_evidence(card_dir: str | Path, values: Mapping[str, Any], sha256: Mapping[str, str] | None = None) -> list[Path]:
    """Set ``summed_evidence`` ``[min_n, top_k, s]`` (``pairs.py``) of the card of each observable in
    ``values`` (None removes it)."""
    return _set(card_dir, "summed_evidence", {k: [int(v[0]), int(v[1]), float(v[2])] if v else None
                                              for k, v in values.items()}, sha256)


def _set(card_dir: str | Path, key: str, values: Mapping[str, Any], sha256: Mapping[str, str] | None) -> list[Path]:
    written = []
    for kind, v in values.items():
        path, card = _card(card_dir, kind, sha256)
        card[key] = v
        path.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
        written.append(path)
    return written


def _card(card_dir: str | Path, kind: str, sha256: Mapping[str, str] | None) -> tuple[Path, dict[str, Any]]:
    pattern = "*iobs*.json" if kind == "I" else "*fobs*.json"
    cards = [p for p in sorted(Path(card_dir).glob(pattern)) if p.with_suffix(".tflite").exists()]
    if len(cards) != 1:
        raise InputError(f"{card_dir}: expected one {pattern} card beside its network, found {len(cards)}")
    card = json.loads(cards[0].read_text())
    if sha256 and sha256.get(kind) and card.get("sha256") != sha256[kind]:
        raise InputError(f"{cards[0]}: describes network {card.get('sha256', '?')[:12]}, "
                         f"the evaluation measured {sha256[kind][:12]}")
    return cards[0], card
