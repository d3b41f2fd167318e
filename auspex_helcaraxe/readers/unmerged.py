"""Unmerged data merged on the fly with gemmi (``gemmi.Intensities``, inverse-variance weighted mean).

AIMLESS/DIALS unmerged MTZ (``M/ISYM`` + ``BATCH``), unmerged XDS_ASCII (``MERGE=FALSE``) and
unmerged sf-mmCIF blocks are merged into ``IMEAN``/``SIGIMEAN`` (+ ``NOBS``) before the analysis,
exactly as ``gemmi merge`` would; :class:`MergeInfo` records what was merged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class MergeInfo:
    """What merging on the fly found: observations in, unique reflections out, their mean multiplicity."""

    n_observations: int
    n_unique: int
    source_columns: tuple[str, str]
    method: str = "gemmi Intensities.merge_in_place (inverse-variance weighted mean)"

    @property
    def multiplicity(self) -> float:
        return self.n_observations / self.n_unique if self.n_unique else 0.0

    def as_dict(self) -> dict:
        return {"n_observations": self.n_observations, "n_unique": self.n_unique,
                "multiplicity": round(self.multiplicity, 3), "columns": list(self.source_columns),
                "method": self.method}

    def __str__(self) -> str:
        return (f"{self.n_observations} observations ({'/'.join(self.source_columns)}) merged into "
                f"{self.n_unique} unique reflections, multiplicity {self.multiplicity:.2f}")


def needs_merging(parsed) -> bool:
    """True for what a format module returns for unmerged data (an MTZ with M/ISYM or batches, an
    unmerged ``gemmi.XdsAscii`` or ``gemmi.ReflnBlock``)."""
    import gemmi

    if isinstance(parsed, (gemmi.XdsAscii, gemmi.ReflnBlock)):
        return True
    return "M/ISYM" in parsed.column_labels() or len(parsed.batches) > 0 or any(c.type == "B" for c in parsed.columns)


def merge(path: str, parsed):
    """``(merged gemmi.Mtz with IMEAN, SIGIMEAN, NOBS, MergeInfo)`` for unmerged ``parsed``."""
    import gemmi

    intensities = gemmi.Intensities()
    if isinstance(parsed, gemmi.XdsAscii):
        intensities.import_xds(parsed)
        columns = ("IOBS", "SIGMA(IOBS)")
    elif isinstance(parsed, gemmi.ReflnBlock):
        intensities.import_refln_block(parsed)
        columns = ("intensity_meas", "intensity_sigma")
    else:
        columns = _import_mtz(path, parsed, intensities)
    n_obs = len(intensities.value_array)
    if n_obs == 0:
        raise InputError(f"{path}: unmerged data without observations to merge")
    intensities.merge_in_place(gemmi.DataType.Mean)
    merged = intensities.prepare_merged_mtz(with_nobs=True)
    return merged, MergeInfo(n_observations=n_obs, n_unique=int(merged.nreflections), source_columns=columns)


def _import_mtz(path: str, mtz, intensities) -> tuple[str, str]:
    """Fill ``intensities`` from an unmerged MTZ; returns the (I, SIGI) labels used."""
    import gemmi

    labels = mtz.column_labels()
    if "M/ISYM" not in labels:
        raise InputError(f"{path}: unmerged MTZ without an M/ISYM column; cannot map observations to "
                         "unique reflections")
    if len(mtz.batches) > 0:  # gemmi's own reader: I/SIGI, ISYM-aware, as `gemmi merge` does
        intensities.import_mtz(mtz, gemmi.DataType.Unmerged)
        return ("I", "SIGI")
    # Some exports (e.g. reciprocalspaceship/DIALS) omit the batch headers gemmi's reader requires;
    # H, K, L of an M/ISYM file are already in the asymmetric unit, so the mean merge is the same.
    pair = next(((i, s) for i, s in (("I", "SIGI"), ("IPR", "SIGIPR")) if i in labels and s in labels), None)
    if pair is None:
        raise InputError(f"{path}: unmerged MTZ without I/SIGI columns (columns: {', '.join(labels)})")
    if mtz.spacegroup is None:
        raise InputError(f"{path}: unmerged MTZ without a space group")
    arr = np.asarray(mtz)
    hkl = np.ascontiguousarray(arr[:, :3], dtype=np.int32)
    values = np.ascontiguousarray(arr[:, labels.index(pair[0])], dtype=np.float64)
    sigmas = np.ascontiguousarray(arr[:, labels.index(pair[1])], dtype=np.float64)
    ok = np.isfinite(values) & np.isfinite(sigmas) & (sigmas > 0)
    intensities.set_data(mtz.cell, mtz.spacegroup, hkl[ok], values[ok], sigmas[ok])
    intensities.type = gemmi.DataType.Unmerged
    return pair


def agreement(a, b, kind: str = "I") -> dict:
    """How well two merged data sets (:class:`~auspex_helcaraxe.reflections.Reflections`) agree on
    their common reflections: Pearson correlation of the values, median ratio b/a, and the fraction
    of common reflections whose difference is within 3 combined sigmas. Reflections are matched by
    their Miller index in the asymmetric unit of ``a``'s space group."""
    import gemmi

    sg = gemmi.SpaceGroup(a.space_group)
    asu, ops = gemmi.ReciprocalAsu(sg), sg.operations()
    keys = []
    for refl in (a, b):
        obs = refl.observables[kind]
        if obs.hkl is None:
            raise ValueError(f"{refl.name}: no Miller indices kept")
        hkl = np.array([asu.to_asu(h, ops)[0] for h in obs.hkl.tolist()], dtype=np.int64).reshape(-1, 3)
        keys.append((hkl + 1024) @ np.array([1 << 22, 1 << 11, 1]))
    common, ia, ib = np.intersect1d(keys[0], keys[1], return_indices=True)
    va, vb = (np.asarray(r.observables[kind].values, dtype=np.float64) for r in (a, b))
    sa, sb = (np.asarray(r.observables[kind].sigmas, dtype=np.float64) for r in (a, b))
    va, vb, sa, sb = va[ia], vb[ib], sa[ia], sb[ib]
    positive = (va > 0) & (vb > 0)
    return {
        "n_a": len(keys[0]), "n_b": len(keys[1]), "n_common": int(common.size),
        "correlation": float(np.corrcoef(va, vb)[0, 1]) if common.size > 2 else float("nan"),
        "median_ratio": float(np.median(vb[positive] / va[positive])) if positive.any() else float("nan"),
        "within_3_sigma": float(np.mean(np.abs(va - vb) <= 3 * np.hypot(sa, sb))) if common.size else float("nan"),
    }
