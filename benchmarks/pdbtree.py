"""The ``--pdb-tree`` mode of ``benchmarks/scan.py``: a PDB-layout tree of gzipped sf-mmCIF files.

Size distribution (ESTIMATES, not a census of the archive; labelled as such in docs/scan.md):

- unique reflections per entry: log-normal, median 28 000, sigma 0.9 (mean ≈ 42 000), clipped to
  2 000 – 1 000 000. Estimate from the PDB's X-ray resolution distribution (median ≈ 2.0 Å, RCSB
  statistics page "Resolution of X-ray structures") and the real sf-mmCIF files in
  /work/shared/data/real (23 files, 10 k – 70 k reflections); the issue's 312-file tree had mean 25 k.
- multi-block files (MAD / several data sets, ``r<id>Asf``, ``r<id>Bsf`` ...): 10 % of entries, with
  a second block of the same size (estimate; the scan reads the first block, but the file is parsed whole).
- observables: both I and F 45 %, F only 40 %, I only 15 % (estimate: older depositions give F only;
  since ~2010 most depositions carry intensities).
- PDB style: ``_refln.wavelength_id``, ``crystal_id``, ``scale_group_code``, ``index_h/k/l``,
  ``status`` (``o``, 5 % ``f``), ``F_meas_au``/``F_meas_sigma_au``, ``intensity_meas``/``intensity_sigma``;
  written with gemmi (``gemmi.cif``) from the project's simulator, gzipped, named
  ``structure_factors/<2 middle letters>/r<id>sf.ent.gz``.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np

MEDIAN, SIGMA, LO, HI = 28_000, 0.9, 2_000, 1_000_000
P_MULTI = 0.10
P_OBS = {"both": 0.45, "F": 0.40, "I": 0.15}


def draw_sizes(n: int, seed: int = 0) -> np.ndarray:
    """Reflections per entry for ``n`` entries (log-normal estimate above)."""
    rng = np.random.default_rng(seed)
    return np.clip(np.exp(np.log(MEDIAN) + SIGMA * rng.standard_normal(n)), LO, HI).round().astype(int)


def _block(doc, name: str, ds, obs: str, wavelength_id: int, rng: np.random.Generator) -> None:
    refl = ds.reflections
    b = doc.add_new_block(name)
    b.set_pair("_entry.id", name[1:5].upper())
    for tag, v in zip(("length_a", "length_b", "length_c", "angle_alpha", "angle_beta", "angle_gamma"), refl.cell):
        b.set_pair(f"_cell.{tag}", f"{v:.3f}")
    b.set_pair("_symmetry.space_group_name_H-M", f"'{ds.params['space_group']}'")
    b.set_pair("_diffrn_radiation_wavelength.id", str(wavelength_id))
    b.set_pair("_diffrn_radiation_wavelength.wavelength", "0.9795")
    n = ds.miller.shape[0]
    status = np.where(rng.random(n) < 0.05, "f", "o")
    cols: dict[str, list[str]] = {
        "wavelength_id": [str(wavelength_id)] * n, "crystal_id": ["1"] * n, "scale_group_code": ["1"] * n,
        "index_h": ds.miller[:, 0].astype(str).tolist(), "index_k": ds.miller[:, 1].astype(str).tolist(),
        "index_l": ds.miller[:, 2].astype(str).tolist(), "status": status.tolist(),
    }
    c = ds.columns
    fmt = np.vectorize(lambda x: "?" if not np.isfinite(x) else f"{x:.1f}", otypes=[str])
    if obs in ("both", "F"):
        cols["F_meas_au"], cols["F_meas_sigma_au"] = fmt(c["F"]).tolist(), fmt(c["SIGF"]).tolist()
    if obs in ("both", "I"):
        cols["intensity_meas"], cols["intensity_sigma"] = fmt(c["IMEAN"]).tolist(), fmt(c["SIGIMEAN"]).tolist()
    loop = b.init_loop("_refln.", list(cols))
    loop.set_all_values(list(cols.values()))


def write_entry(root: Path, k: int, n_reflections: int, seed: int) -> Path:
    """One gzipped sf-mmCIF entry in PDB layout; returns its path."""
    import gemmi

    from auspex_helcaraxe.simulate import simulate_dataset

    rng = np.random.default_rng(seed)
    pdb_id = f"{1 + k % 9}{np.base_repr(k, 36).lower().rjust(3, 'a')[-3:]}"
    obs = rng.choice(list(P_OBS), p=list(P_OBS.values()))
    d_min = float(np.clip(2.5 * (n_reflections / 1e4) ** -0.19, 0.8, 4.0))
    volume = 1.91 * n_reflections * d_min**3
    a = (volume / (1.1 * 1.25)) ** (1 / 3)
    ds = simulate_dataset(seed, space_group="P 21 21 21", cell=(a, 1.1 * a, 1.25 * a, 90.0, 90.0, 90.0),
                          d_min=d_min, max_reflections=2 * n_reflections, completeness=1.0, missing_cone_deg=0.0)
    doc = gemmi.cif.Document()
    _block(doc, f"r{pdb_id}sf", ds, obs, 1, rng)
    if rng.random() < P_MULTI:
        _block(doc, f"r{pdb_id}Bsf", ds, obs, 2, rng)
    path = root / "structure_factors" / pdb_id[1:3] / f"r{pdb_id}sf.ent.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = doc.as_string(gemmi.cif.Style.Pdbx).encode()
    path.write_bytes(gzip.compress(text, 6))
    return path


def copy_real(root: Path, real: Path = Path("/work/shared/data/real")) -> list[Path]:
    """Gzipped copies of the real sf-mmCIF files (``*-sf.cif``, ``*sf.ent``) into ``root`` (a tmp tree)."""
    out = []
    for src in sorted(p for p in real.rglob("*") if p.name.endswith(("-sf.cif", "sf.ent"))):
        pid = src.name[1:5] if src.name.endswith("sf.ent") else src.name[:4]
        dst = root / "structure_factors" / pid[1:3] / f"{pid}-sf.cif.gz"
        dst.parent.mkdir(parents=True, exist_ok=True)
        with open(src, "rb") as fi, gzip.open(dst, "wb", compresslevel=6) as fo:
            shutil.copyfileobj(fi, fo)
        out.append(dst)
    return out
