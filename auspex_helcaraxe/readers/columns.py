"""Column choice, value checks and the published filter, the same for every format once the format's
reader has made a ``gemmi.Mtz``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import numpy as np

from ..errors import InputError
from ..reflections import Observable, Reflections

if TYPE_CHECKING:  # pragma: no cover
    from .unmerged import MergeInfo

# Preferred column labels, best first; otherwise the first column of the right MTZ type that is
# followed by its sigma column is used (this reproduces the published pipeline's choices).
PREFERRED_LABELS = {
    "I": ("IMEAN", "I", "IOBS", "I-obs", "Iobs"),
    "F": ("FP", "F", "FOBS", "F-obs", "Fobs", "FMEAN"),
}
MEAN_TYPE = {"I": "J", "F": "F"}
ANOMALOUS_TYPE = {"I": ("K", "M"), "F": ("G", "L")}
# Amplitude columns that are computed, not observed.
CALCULATED_F_PREFIXES = ("FC", "FWT", "DELFWT", "FOM", "FCALC", "FMODEL", "2FOFC", "FOFC")

# Physical bounds; anything outside them is corruption (a byte flip, a bad Miller index), not data.
# d-spacing: Bragg's law gives d >= lambda/2, and macromolecular beamlines use lambda >= 0.3 A (~40 keV),
# so d < 0.1 A cannot be a measured reflection (it comes from an absurd Miller index or cell).
MIN_D = 0.1
# |I| and sigma(I): the largest merged intensity in the 66 real data sets is 6.9e6 (5bmh); a 32-bit
# pixel saturates at 4.3e9 counts, so 1e12 leaves room for a spot of hundreds of saturated pixels after
# scaling. |F| and sigma(F): the square root, 1e6. Float32 corruption typically gives ~1e38.
MAX_VALUE = {"I": 1e12, "F": 1e6}
# Reasons a reflection is dropped (keys of ``Reflections.dropped``; ``{kind}`` is I or F).
DROP_REASONS = {
    "d_invalid": f"d-spacing not finite or below {MIN_D} Å: invalid Miller index or cell",
    "{kind}_nonfinite": "value infinite, or sigma not finite, in {kind}",
    "{kind}_out_of_range": "|{kind}| or sigma({kind}) above the physical bound",
    "F_negative": "negative amplitude F",
}


def describe_drop(key: str) -> str:
    """The human wording of a ``Reflections.dropped`` key."""
    kind, _, rest = key.partition("_")
    template = DROP_REASONS.get(key) or DROP_REASONS.get("{kind}_" + rest, key)
    return template.format(kind=kind)


MIN_VALID = 10  # fewer valid reflections in every observable: nothing to analyse


def reflections_from_mtz(path: str, mtz, columns: Mapping[str, str] | None = None,
                         merged: "MergeInfo | None" = None) -> Reflections:
    """The I and/or F observables of a merged ``gemmi.Mtz`` (see :func:`auspex_helcaraxe.readers.read`).

    Reflections outside the physical bounds (:data:`DROP_REASONS`) are dropped and counted.
    """
    if columns:
        unknown = set(columns) - {"I", "F"}
        if unknown:
            raise InputError(f"--columns takes I=... and F=..., not {', '.join(sorted(unknown))}")
    if mtz.nreflections == 0:
        raise InputError(f"{path}: the file holds no reflections")
    try:
        d = mtz.make_d_array()
    except (RuntimeError, ValueError) as exc:  # e.g. no or zero unit cell
        raise InputError(f"{path}: cannot compute resolutions ({one_line(exc)})") from None
    valid_d = np.isfinite(d) & (d >= MIN_D)
    hkl = mtz.make_miller_array()
    dropped = {"d_invalid": int(valid_d.size - np.count_nonzero(valid_d))}
    observables, found = {}, False
    for kind in ("I", "F"):
        wanted = (columns or {}).get(kind)
        obs = _observable(path, mtz, kind, d, hkl, valid_d, wanted, dropped)
        found |= obs is not None
        if obs is not None and len(obs) >= MIN_VALID:
            observables[kind] = obs
    dropped = {k: v for k, v in dropped.items() if v}
    if not found:
        labels = ", ".join(f"{c.label}:{c.type}" for c in mtz.columns)
        raise InputError(f"{path}: no intensity (I) or amplitude (F) column with sigmas found (columns: {labels})")
    if not observables:
        why = "; dropped " + ", ".join(f"{v} ({k})" for k, v in dropped.items()) if dropped else ""
        raise InputError(f"{path}: too few valid reflections (fewer than {MIN_VALID} in every observable{why})")
    return Reflections(
        source=path,
        space_group=mtz.spacegroup.hm if mtz.spacegroup else "?",
        cell=tuple(float(x) for x in mtz.cell.parameters),
        n_reflections=int(mtz.nreflections),
        observables=observables,
        merged=merged,
        dropped=dropped,
    )


def _sigma_after(mtz, idx: int, sigma_type: str):
    cols = mtz.columns
    if idx + 1 < len(cols) and cols[idx + 1].type == sigma_type:
        return cols[idx + 1]
    return None


def _find_pair(path: str, mtz, kind: str, wanted: str | None):
    """The (value, sigma) column pair for ``kind``, or None."""
    cols = list(mtz.columns)
    if wanted is not None:
        matches = [i for i, c in enumerate(cols) if c.label == wanted]
        if not matches:
            raise InputError(f"{path}: column {wanted!r} not found (columns: {', '.join(c.label for c in cols)})")
        i = matches[0]
        sig = _sigma_after(mtz, i, "Q") or _sigma_after(mtz, i, ANOMALOUS_TYPE[kind][1])
        if sig is None:
            by_name = [c for c in cols if c.label in (f"SIG{wanted}", f"SIG_{wanted}", f"SIGMA_{wanted}")]
            sig = by_name[0] if by_name else None
        if sig is None:
            raise InputError(f"{path}: no sigma column found for {wanted!r}")
        return cols[i], sig
    # (value, sigma) pairs of the right type, in file order; computed amplitudes never qualify.
    candidates = [(c, _sigma_after(mtz, i, "Q")) for i, c in enumerate(cols) if c.type == MEAN_TYPE[kind]]
    candidates = [(c, s) for c, s in candidates
                  if s is not None and not (kind == "F" and c.label.upper().startswith(CALCULATED_F_PREFIXES))]
    preferred = PREFERRED_LABELS[kind]
    for label in preferred:  # a preferred label, best first
        for pair in candidates:
            if pair[0].label == label:
                return pair
    for pair in candidates:  # then a label starting with the best one (IMEAN_nat, FP_x, ...)
        if pair[0].label.startswith(preferred[0]):
            return pair
    return candidates[0] if candidates else None


def _observable(path: str, mtz, kind: str, d: np.ndarray, hkl: np.ndarray, valid_d: np.ndarray,
                wanted: str | None, dropped: dict[str, int]) -> Observable | None:
    """The observable's kept reflections (None without its columns); ``dropped`` counts the invalid."""
    pair = _find_pair(path, mtz, kind, wanted)
    if pair is not None:
        value_col, sigma_col = pair
        values, sigmas = value_col.array, sigma_col.array
        labels: tuple[str, ...] = (value_col.label, sigma_col.label)
    else:
        merged = _merge_anomalous(mtz, kind)
        if merged is None:
            return None
        values, sigmas, labels = merged
    # NaN is the MTZ "missing number" flag: such a value is absent, not invalid. Present values are
    # checked (counted where invalid), then the published filter: obs != 0 and sigma > 0.
    present = valid_d & ~np.isnan(values)
    nonfinite = present & ~(np.isfinite(values) & np.isfinite(sigmas))
    with np.errstate(invalid="ignore"):
        out_of_range = present & ~nonfinite & ((np.abs(values) > MAX_VALUE[kind]) | (sigmas > MAX_VALUE[kind]))
        negative = present & ~nonfinite & ~out_of_range & (values < 0) if kind == "F" else None
        keep = present & ~nonfinite & ~out_of_range & (values != 0) & (sigmas > 0)
    dropped[f"{kind}_nonfinite"] = int(np.count_nonzero(nonfinite))
    dropped[f"{kind}_out_of_range"] = int(np.count_nonzero(out_of_range))
    if negative is not None:
        dropped["F_negative"] = int(np.count_nonzero(negative))
        keep &= ~negative
    return Observable(kind=kind, columns=labels, d=d[keep], values=values[keep], sigmas=sigmas[keep], hkl=hkl[keep])


def _merge_anomalous(mtz, kind: str):
    """Inverse-variance mean of the Friedel mates when a file has only I(+)/I(-) or F(+)/F(-)."""
    value_type, sigma_type = ANOMALOUS_TYPE[kind]
    cols = list(mtz.columns)
    pairs = [(c, cols[i + 1]) for i, c in enumerate(cols[:-1]) if c.type == value_type and cols[i + 1].type == sigma_type]
    if len(pairs) < 2:
        return None
    (plus, sig_plus), (minus, sig_minus) = pairs[:2]
    v = np.stack([plus.array, minus.array]).astype(np.float64)
    s = np.stack([sig_plus.array, sig_minus.array]).astype(np.float64)
    valid = np.isfinite(v) & np.isfinite(s) & (s > 0)
    w = np.where(valid, 1.0 / np.where(valid, s, 1.0) ** 2, 0.0)
    wsum = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = (np.where(valid, v, 0.0) * w).sum(axis=0) / wsum
        sigmas = 1.0 / np.sqrt(wsum)
    values = np.where(wsum > 0, values, np.nan).astype(np.float32)
    sigmas = np.where(wsum > 0, sigmas, np.nan).astype(np.float32)
    return values, sigmas, (plus.label, sig_plus.label, minus.label, sig_minus.label)


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type name)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
