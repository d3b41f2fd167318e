"""Powder lines of hexagonal (Ih) and cubic (Ic) ice, computed from their crystal structures.

Ih: P6₃/mmc, a = 4.498 Å, c = 7.338 Å (≈ 100 K), O at 4f (⅓, ⅔, z = 0.0625).
Ic: Fd-3m, a = 6.358 Å, O at the diamond positions 8a.
Relative ring intensity on a flat detector (λ = 1 Å): multiplicity·|F|² (O form factor, B = 3 Å²)
times the powder Lorentz–polarisation factor and divided by the ring circumference, normalised to
the strongest Ih line. Hydrogens (disordered) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

IH_A, IH_C = 4.498, 7.338
IC_A = 6.358
D_MIN_LINES = 0.9
_O_A = (3.0485, 2.2868, 1.5463, 0.867)
_O_B = (13.2771, 5.7011, 0.3239, 32.9089)
_O_C = 0.2508


@dataclass(frozen=True)
class IceLine:
    d: float  # Å
    intensity: float  # relative, strongest Ih line = 1
    phase: str  # "Ih" or "Ic"
    hkl: tuple[int, int, int]


def _o_form_factor(s: np.ndarray) -> np.ndarray:
    q = (s / 2.0) ** 2
    return sum(a * np.exp(-b * q) for a, b in zip(_O_A, _O_B)) + _O_C


def _hkl_box(n: int) -> np.ndarray:
    r = np.arange(-n, n + 1)
    h = np.stack(np.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
    return h[np.any(h != 0, axis=1)]


def _lines(h: np.ndarray, inv_d2: np.ndarray, positions: np.ndarray, phase: str) -> list[IceLine]:
    keep = inv_d2 <= 1.0 / D_MIN_LINES**2
    h, inv_d2 = h[keep], inv_d2[keep]
    s = np.sqrt(inv_d2)
    phases = 2j * np.pi * (h @ positions.T)
    f2 = np.abs(np.exp(phases).sum(axis=1)) ** 2 * (_o_form_factor(s) * np.exp(-0.75 * inv_d2)) ** 2
    key = np.round(1.0 / s, 4)
    out = []
    for d in np.unique(key):
        sel = key == d
        total = f2[sel].sum()  # multiplicity is the number of hkl in the box with this d
        if total < 1e-6 * f2.max() * 1:
            continue
        sin_t = 0.5 / d  # λ = 1 Å
        two_t = 2 * np.arcsin(sin_t)
        lp = (1 + np.cos(two_t) ** 2) / 2 / (sin_t * np.sin(two_t))
        per_length = total * lp / np.sin(two_t)
        hkl = tuple(int(x) for x in np.abs(h[sel][0]))
        out.append(IceLine(float(d), float(per_length), phase, hkl))
    return out


@lru_cache(maxsize=1)
def ice_lines() -> tuple[IceLine, ...]:
    """All Ih and Ic lines with d ≥ 0.9 Å, relative intensities (strongest Ih line = 1)."""
    h = _hkl_box(9)
    hh, kk, ll = h.T.astype(float)
    inv_d2_hex = 4.0 / 3.0 * (hh * hh + hh * kk + kk * kk) / IH_A**2 + ll * ll / IH_C**2
    z = 0.0625
    ih_pos = np.array([[1 / 3, 2 / 3, z], [2 / 3, 1 / 3, z + 0.5], [2 / 3, 1 / 3, -z], [1 / 3, 2 / 3, 0.5 - z]])
    ih = _lines(h, inv_d2_hex, ih_pos, "Ih")
    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    ic_pos = np.concatenate([fcc, fcc + 0.25])
    ic = _lines(h, (h * h).sum(1) / IC_A**2, ic_pos, "Ic")
    top = max(l.intensity for l in ih)
    top_c = max(l.intensity for l in ic)
    ih = [IceLine(l.d, l.intensity / top, l.phase, l.hkl) for l in ih if l.intensity / top > 1e-3]
    # Ic normalised so that its strongest line (111, 3.67 Å) matches Ih 002's share per oxygen.
    ic = [IceLine(l.d, l.intensity / top_c, l.phase, l.hkl) for l in ic if l.intensity / top_c > 1e-3]
    return tuple(sorted(ih + ic, key=lambda l: -l.d))
