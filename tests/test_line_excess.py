"""training.line_excess: the matched-filter z at an ice line tells a ring from a flat range."""

from __future__ import annotations

import numpy as np

from auspex_helcaraxe.ice_ranges import ice_ranges
from auspex_helcaraxe.reflections import Observable
from auspex_helcaraxe.training.line_excess import line_z


def _obs(bump: float, seed: int = 0, n: int = 3000) -> Observable:
    rng = np.random.default_rng(seed)
    r5 = ice_ranges()[4]  # 2.294–2.209 Å, brightest line 2.249 Å
    d = rng.uniform(r5.d_min - 0.05, r5.d_max + 0.05, n)
    mean = 100.0 * np.exp(-2.0 / d**2)  # a falling Wilson-like trend
    v = rng.exponential(mean)
    v = v + bump * mean * (np.abs(d - 2.249) < 0.004)
    return Observable(kind="I", columns=("I", "SIGI"), d=d, values=v.astype(np.float32),
                      sigmas=np.ones(n, np.float32), hkl=None)


def test_a_ring_at_the_line_stands_out_and_a_flat_range_does_not():
    r5 = ice_ranges()[4]
    flat = [line_z(_obs(0.0, seed=s), r5)[1] for s in range(20)]
    assert abs(np.mean(flat)) < 0.6 and np.std(flat) < 1.6  # ≈ N(0, 1)
    d, z = line_z(_obs(1.0), r5)
    assert d == 2.249 and z > 5
    assert line_z(_obs(-0.8), r5)[1] < -4  # an over-subtracted ring: negative


def test_too_few_observations_give_no_z():
    assert line_z(_obs(0.0, n=50), ice_ranges()[4]) is None


def test_real_line_z_finds_the_labelled_ring_and_real_thresholds_takes_one_observable(shared_dir, tmp_path):
    """On the real data: the labelled ring of x828 (range 8) stands far out of the clean spread; and
    real_thresholds judges a directory that holds only an F network (it used to need both)."""
    import json
    import shutil

    from auspex_helcaraxe.network import default_network_dir
    from auspex_helcaraxe.training import real_thresholds
    from auspex_helcaraxe.training.line_excess import real_line_z

    real = shared_dir / "data" / "real"
    rows = real_line_z(real)
    ice = {(r["kind"], r["range"]): r["z"] for r in rows if r["dataset"] == "ccp4i2/BAZ2BA_x828_free.mtz"}
    clean = np.array([r["z"] for r in rows if r["label"] == "clean"])
    assert ice[("I", 8)] > 6 and ice[("F", 8)] > 6
    assert abs(clean.mean()) < 0.5 and clean.std() < 2 and np.mean(np.abs(clean) >= 6) < 0.01
    for name in ("helcaraxe_fobs.tflite", "helcaraxe_fobs.json"):
        shutil.copy(default_network_dir() / name, tmp_path / name)
    out = tmp_path / "rt.json"
    assert real_thresholds.main(["--real", str(real), "--networks", str(tmp_path), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert set(res) == {"F"} and res["F"]["lodo"]["datasets"] == 44
