"""Crystals: space groups and cells drawn like the PDB's, unique reflection sets from gemmi,
completeness (random losses, a missing cone, an incomplete outer shell) and anisotropy."""

from __future__ import annotations

import numpy as np

# Space groups with approximate PDB frequencies (most common protein space groups).
SPACE_GROUPS: dict[str, float] = {
    "P 21 21 21": 0.24, "P 1 21 1": 0.15, "C 1 2 1": 0.09, "P 1": 0.05, "P 21 21 2": 0.05,
    "C 2 2 21": 0.05, "P 43 21 2": 0.035, "P 41 21 2": 0.025, "P 32 2 1": 0.035, "P 31 2 1": 0.025,
    "P 61 2 2": 0.02, "P 65 2 2": 0.015, "I 2 2 2": 0.02, "H 3": 0.02, "H 3 2": 0.01, "P 65": 0.01,
    "P 61": 0.01, "P 31": 0.01, "P 32": 0.01, "I 4": 0.01, "I 41 2 2": 0.01, "P 42 21 2": 0.01,
    "P 41": 0.01, "P 43": 0.01, "I 2 1 3": 0.008, "P 21 3": 0.008, "F 4 3 2": 0.004, "I 41": 0.008,
}


def crystal_system(hm: str) -> str:
    import gemmi

    return gemmi.SpaceGroup(hm).crystal_system_str()


def draw_space_group(rng: np.random.Generator) -> str:
    names = list(SPACE_GROUPS)
    p = np.array([SPACE_GROUPS[n] for n in names])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def draw_cell(rng: np.random.Generator, hm: str) -> tuple[float, ...]:
    """A cell consistent with the space group's crystal system; edges log-normal around 68 Å."""
    system = crystal_system(hm)
    edge = lambda: float(np.clip(np.exp(rng.normal(np.log(68.0), 0.38)), 24.0, 260.0))
    a, b, c = edge(), edge(), edge()
    if system == "triclinic":
        return (a, b, c, float(rng.uniform(70, 110)), float(rng.uniform(70, 110)), float(rng.uniform(70, 115)))
    if system == "monoclinic":
        return (a, b, c, 90.0, float(rng.uniform(91, 122)), 90.0)
    if system == "orthorhombic":
        return (a, b, c, 90.0, 90.0, 90.0)
    if system == "tetragonal":
        return (a, a, c, 90.0, 90.0, 90.0)
    if system in ("trigonal", "hexagonal"):
        return (a, a, c * (1.6 if rng.random() < 0.3 else 1.0), 90.0, 90.0, 120.0)
    return (a, a, a, 90.0, 90.0, 90.0)  # cubic


def expected_count(cell: tuple[float, ...], hm: str, d_min: float, d_max: float) -> float:
    """Approximate number of unique reflections (Friedel mates merged)."""
    import gemmi

    uc = gemmi.UnitCell(*cell)
    n_ops = len(gemmi.SpaceGroup(hm).operations())
    return 4.0 / 3.0 * np.pi * uc.volume * (d_min**-3 - d_max**-3) / (2.0 * n_ops)


def miller_set(cell: tuple[float, ...], hm: str, d_min: float, d_max: float):
    """Unique reflections (ASU, gemmi order), their d, centric flags and epsilon factors."""
    import gemmi

    uc = gemmi.UnitCell(*cell)
    sg = gemmi.SpaceGroup(hm)
    hkl = gemmi.make_miller_array(uc, sg, d_min, d_max)
    return hkl, uc


def symmetry_factors(hkl: np.ndarray, hm: str) -> tuple[np.ndarray, np.ndarray]:
    import gemmi

    ops = gemmi.SpaceGroup(hm).operations()
    centric = ops.centric_flag_array(hkl).astype(bool)
    eps = ops.epsilon_factor_array(hkl).astype(np.float64)
    return centric, eps


def reciprocal_cartesian(hkl: np.ndarray, uc) -> np.ndarray:
    """Cartesian reciprocal-space vectors s (Å⁻¹) of the reflections."""
    return hkl.astype(np.float64) @ np.array(uc.frac.mat)


def random_unit_vector(rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(3)
    return v / np.linalg.norm(v)


def completeness_mask(rng: np.random.Generator, s_cart: np.ndarray, s: np.ndarray, p: dict) -> np.ndarray:
    """Which reflections were measured: random losses, a missing cone around the spindle axis and an
    incomplete outer shell (the detector corners)."""
    keep = rng.random(s.shape) < p["completeness"]
    if p["missing_cone_deg"] > 0:
        axis = np.array(p["missing_cone_axis"])
        cosang = np.abs(s_cart @ axis) / np.maximum(s, 1e-12)
        keep &= cosang < np.cos(np.radians(p["missing_cone_deg"]))
    s_max, s_start = 1.0 / p["d_min"], 1.0 / p["outer_shell_start_d"]
    if s_max > s_start:
        frac = np.clip((s - s_start) / (s_max - s_start), 0.0, 1.0)
        keep &= rng.random(s.shape) < 1.0 - (1.0 - p["outer_completeness"]) * frac
    return keep


def anisotropy_factor(s_cart: np.ndarray, p: dict) -> np.ndarray:
    """exp(−½ Σⱼ ΔBⱼ (s·eⱼ)²) along random principal directions (traceless ΔB)."""
    if not p.get("aniso_b"):
        return np.ones(s_cart.shape[0])
    axes = np.array(p["aniso_axes"])  # (3, 3) orthonormal rows
    db = np.array(p["aniso_b"])
    proj = s_cart @ axes.T
    return np.exp(-0.5 * (proj * proj) @ db)
