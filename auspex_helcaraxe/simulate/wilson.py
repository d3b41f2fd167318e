"""Intensity statistics of a protein crystal: mean-intensity curve, Wilson sampling, measurement
error and the French–Wilson conversion of intensities to amplitudes (numpy only)."""

from __future__ import annotations

import numpy as np

# Protein mean-intensity curve Σ0(s) (s = 1/d, Å⁻¹) before the overall B factor, as ln-offsets
# shaped like the averaged curve of Popov & Bourenkov (2003): strong low-resolution terms damped
# by bulk solvent, a minimum near 6 Å, a maximum near 4 Å (secondary-structure and C–C/C–N
# distances) and a nearly flat tail beyond 3 Å. Each data set varies depth/height/position a little.
DIP_D, BUMP_D = 6.0, 4.1


def protein_curve(s: np.ndarray, dip: float = 1.0, bump: float = 0.7, dip_d: float = DIP_D, bump_d: float = BUMP_D, low_res: float = 1.2) -> np.ndarray:
    """ln of the relative mean intensity at ``s = 1/d`` (without the B factor)."""
    s = np.asarray(s, dtype=np.float64)
    ln = low_res * np.exp(-((s / 0.09) ** 2))  # strong low-resolution terms (d > ~12 Å)
    ln -= dip * np.exp(-0.5 * ((s - 1.0 / dip_d) / 0.035) ** 2)
    ln += bump * np.exp(-0.5 * ((s - 1.0 / bump_d) / 0.045) ** 2)
    ln += 0.25 * np.exp(-0.5 * ((s - 1.0 / 2.2) / 0.08) ** 2)  # weak shoulder (~2.2 Å, bond distances)
    return ln


def mean_intensity(s: np.ndarray, b_factor: float, scale: float = 1.0, **curve) -> np.ndarray:
    """Σ(s) = scale · exp(protein_curve(s)) · exp(−B s²/2) (intensity, so B/2 per s² of |F|²)."""
    s = np.asarray(s, dtype=np.float64)
    return scale * np.exp(protein_curve(s, **curve) - 0.5 * b_factor * s * s)


def wilson_intensities(rng: np.random.Generator, sigma: np.ndarray, centric: np.ndarray) -> np.ndarray:
    """True intensities from Wilson statistics: acentric exponential, centric Σ·χ²(1)."""
    sigma = np.asarray(sigma, dtype=np.float64)
    acentric = rng.exponential(1.0, sigma.shape)
    z = rng.standard_normal(sigma.shape)
    return sigma * np.where(centric, z * z, acentric)


def measurement_error(rng: np.random.Generator, i_true: np.ndarray, sigma: np.ndarray, sigma_edge: float, isig_edge: float, gain: float, error_floor: float, bg_slope: float = 0.3) -> np.ndarray:
    """Standard deviation of each measured intensity.

    Three terms: a background term (so that at the resolution limit ⟨I⟩/σ ≈ ``isig_edge``), a
    counting term proportional to the intensity (``gain``) and a systematic floor (``error_floor``·I).
    The background term grows slowly with Σ (higher background where the crystal scatters more).
    """
    bg = (sigma_edge / isig_edge) * (sigma / sigma_edge) ** bg_slope
    var = bg * bg + gain * sigma_edge * np.maximum(i_true, 0.0) + (error_floor * i_true) ** 2
    jitter = np.exp(0.08 * rng.standard_normal(i_true.shape))  # sigma estimates scatter a little
    return np.sqrt(var) * jitter


_NODES = 24  # Simpson intervals (even)
STRONG = 6.0  # μ/σ above which the expansion is used


def french_wilson(i_obs: np.ndarray, sig_i: np.ndarray, sigma: np.ndarray, centric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and sd of |F| given I ± σ and the Wilson prior with mean intensity Σ.

    Acentric prior p(J) ∝ exp(−J/Σ), centric p(J) ∝ J^−½ exp(−J/2Σ). In terms of F = √J the
    posterior is ∝ F^a exp(−(F² − μ)²/2σ²) with a = 1 (acentric) or 0 (centric) and
    μ = I − σ²/Σ (acentric) or I − σ²/2Σ (centric). Strong reflections (μ > 6 σ) use the
    moments of J ~ N(μ, σ²) expanded to second order in σ²/μ²; the others are integrated
    numerically (Simpson on a per-reflection grid of F that spans the posterior's mass).
    """
    i_obs = np.asarray(i_obs, np.float64)
    sig_i = np.asarray(sig_i, np.float64)
    sigma = np.asarray(sigma, np.float64)
    centric = np.asarray(centric, bool)
    mu = i_obs - np.where(centric, 0.5, 1.0) * sig_i * sig_i / sigma
    f = np.empty_like(i_obs)
    sf = np.empty_like(i_obs)
    strong = mu > STRONG * sig_i
    m, s = mu[strong], sig_i[strong]
    # Moments of J ~ N(m, s²) to second order in x = s²/m²: E[J^½] = √m·a, E[J^-½] = b/√m.
    x = (s / m) ** 2
    a = 1.0 - x / 8.0 - 15.0 * x * x / 128.0
    b = 1.0 + 3.0 * x / 8.0 + 105.0 * x * x / 128.0
    cen = centric[strong]
    ef = np.where(cen, 1.0 / b, a)  # centric: the remaining J^-½ prior factor reweights by J^-½
    ej = np.where(cen, a / b, 1.0)
    f[strong] = np.sqrt(m) * ef
    sf[strong] = np.sqrt(m * np.maximum(ej - ef * ef, 0.0))
    weak = ~strong
    if weak.any():
        m, s, a = mu[weak], sig_i[weak], np.where(centric[weak], 0.0, 1.0)
        hi = np.sqrt(np.maximum(m, 0.0) + 7.0 * s)
        lo = np.sqrt(np.maximum(m - 7.0 * s, 0.0))
        t = np.linspace(0.0, 1.0, _NODES + 1)
        x = lo[:, None] + (hi - lo)[:, None] * t[None, :]
        # log posterior relative to its maximum on the grid, for stability
        z = (x * x - m[:, None]) / s[:, None]
        with np.errstate(divide="ignore"):
            logp = a[:, None] * np.log(np.maximum(x, 1e-300)) - 0.5 * z * z
        logp -= logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        w = np.ones(_NODES + 1)
        w[1:-1:2], w[2:-1:2] = 4.0, 2.0
        p *= w
        z0 = p.sum(axis=1)
        e1 = (p * x).sum(axis=1) / z0
        e2 = (p * x * x).sum(axis=1) / z0
        f[weak] = e1
        sf[weak] = np.sqrt(np.maximum(e2 - e1 * e1, 0.0))
    return f, sf
