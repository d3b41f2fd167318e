"""Values of the training commands' per-observable options (``I=…,F=…``): one parser for all of them."""
from __future__ import annotations

from ..network import OBSERVABLES


def per_observable(text: str, both: bool = False) -> dict[str, str]:
    """``"I=0.25,F=0.3"`` → ``{"I": "0.25", "F": "0.3"}``; with ``both``, a bare value is for I and F.
    Raises ValueError for an item without ``=`` otherwise. The observables named are not checked."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    if both and len(items) == 1 and "=" not in items[0]:
        return {"I": items[0], "F": items[0]}
    out = {}
    for item in items:
        kind, sep, value = item.partition("=")
        if not sep:
            raise ValueError(item)
        out[kind.strip()] = value.strip()
    return out


def per_kind(text: str, convert, both: bool = False) -> dict:
    """:func:`per_observable` of ``text``, each value through ``convert``; ValueError unless every
    observable named is I or F and every value converts."""
    out = {k: convert(v) for k, v in per_observable(text, both).items()}
    if set(out) - set(OBSERVABLES):
        raise ValueError(text)
    return out
