"""Thinned real clean data sets (training/thinned.py): the thinning, the summary and the section."""

from __future__ import annotations

import json

import numpy as np
import pytest

from auspex_helcaraxe.errors import InputError
from auspex_helcaraxe.readers import read
from auspex_helcaraxe.simulate import demo_dataset, write_mtz
from auspex_helcaraxe.training import thinned


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):
    """The demo data set as a user's file (I and F, with Miller indices)."""
    return read(write_mtz(demo_dataset(), tmp_path_factory.mktemp("thin") / "demo.mtz"))


def _indices(o) -> set[tuple[int, int, int]]:
    return set(map(tuple, np.asarray(o.hkl).tolist()))


def test_thin_keeps_the_same_miller_indices_in_every_observable(demo_file):
    refl = demo_file
    full = {k: _indices(o) for k, o in refl.observables.items()}
    a = thinned.thin(refl, 0.25, 3)
    kept = {k: _indices(o) for k, o in a.observables.items()}
    # one draw over the union of indices: an index kept in one observable is kept in every one that has it
    union = set().union(*kept.values())
    for k in full:
        assert kept[k] == full[k] & union
        assert 0.2 < len(kept[k]) / len(full[k]) < 0.3
        o, t = refl.observables[k], a.observables[k]
        m = np.isin(thinned._keys(o.hkl), thinned._keys(t.hkl))
        np.testing.assert_array_equal(t.values, o.values[m])  # values travel with their index
        np.testing.assert_array_equal(t.d, o.d[m])
    assert a.n_reflections == max(len(o) for o in a.observables.values())
    # reproducible per seed, different between seeds, everything at fraction 1
    assert _indices(thinned.thin(refl, 0.25, 3).observables["I"]) == kept["I"]
    assert _indices(thinned.thin(refl, 0.25, 4).observables["I"]) != kept["I"]
    assert _indices(thinned.thin(refl, 1.0, 4).observables["I"]) == full["I"]
    with pytest.raises(ValueError):
        thinned.thin(refl, 0.0, 1)


def test_thin_refuses_data_without_miller_indices():
    with pytest.raises(InputError, match="no Miller indices"):
        thinned.thin(demo_dataset().reflections, 0.5, 1)  # the simulator's arrays carry no hkl


def _row(fraction, group, iced, pair_only=False, published=False, icefinder=False):
    return {"dataset": f"d{group}", "fraction": fraction, "seed": 1, "group": group,
            "ours": {"iced": iced, "pair_only": pair_only}, "published": {"iced": published},
            "Icefinder": {"iced": icefinder}}


def test_summary_counts_pair_only_flags_and_finds_the_worst_group():
    rows = [_row(1.0, "I", False), _row(1.0, "F", False),
            _row(0.5, "I", True, pair_only=True), _row(0.5, "I", True), _row(0.5, "I", False, published=True),
            _row(0.5, "F", False, icefinder=True), _row(0.5, "F", False)]
    s = thinned.summarise(rows)
    i = s["specificity"]["0.5"]["I"]
    assert (i["ours"]["k"], i["ours"]["n"]) == (1, 3)
    assert i["ours without pair-only"]["k"] == 2  # the pair-only flag no longer counts
    assert i["published"]["k"] == 2 and s["pair_only"]["0.5"]["I"] == 1
    assert s["specificity"]["0.5"]["all"]["ours"]["n"] == 5
    assert s["specificity"]["0.5"]["F"]["Icefinder"]["k"] == 1
    assert s["worst"]["group"] == "I" and s["worst"]["fraction"] == 0.5  # unthinned rows never the worst
    md = thinned.markdown({"summary": s, "fractions": [0.5], "seeds": [1], "wall_s": 6.0}, "cmd", "A note.")
    assert md.startswith(thinned.HEAD) and thinned.BEGIN in md and md.rstrip().endswith(thinned.END)
    assert "| 0.5 | I | 0.333 (2/3) | 0.667 (1/3) | 0.667 (1/3) | 1.000 (0/3) | 1 |" in md
    assert "A note." in md and "I files at fraction 0.5: 0.333 (2/3)" in md


def test_section_rerendered_from_json_and_kept_by_evaluate(tmp_path):
    from auspex_helcaraxe.training.evaluate import kept_block

    saved = {"rows": [_row(1.0, "I", False), _row(0.25, "I", True)], "fractions": [0.25], "seeds": [1],
             "wall_s": 1.0, "command": "python -m auspex_helcaraxe.training.thinned --seeds 1"}
    (tmp_path / "t.json").write_text(json.dumps(saved))
    md = tmp_path / "evaluation.md"
    md.write_text("# Evaluation\n\ntext\n")
    assert thinned.main(["--from-json", str(tmp_path / "t.json"), "--md", str(md)]) == 0
    first = md.read_text()
    block = kept_block(first, thinned.HEAD, thinned.END)
    assert "| 0.25 | I | 0.000 (1/1)" in block and "--seeds 1" in block and first.startswith("# Evaluation")
    assert thinned.main(["--from-json", str(tmp_path / "t.json"), "--md", str(md)]) == 0
    assert md.read_text().count(thinned.HEAD) == 1  # replaced, not appended twice


def test_bad_options_exit_2(capsys):
    for argv in (["--fractions", "0.5,x"], ["--fractions", "1.5"], ["--seeds", "a-b"]):
        with pytest.raises(SystemExit) as e:
            thinned.main(argv)
        assert e.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_real_clean_data_sets_thinned(shared_dir):
    """On the real clean data sets: one row per data set unthinned and per fraction × seed, fewer
    reflections when thinned, and the verdicts of the product, the published networks and Icefinder."""
    res = thinned.evaluate_thinned(shared_dir / "data" / "real", fractions=(0.25,), seeds=(7,), log=lambda m: None)
    rows = res["rows"]
    full = {r["dataset"]: r for r in rows if r["fraction"] == 1.0}
    thin = {r["dataset"]: r for r in rows if r["fraction"] == 0.25}
    assert len(full) == len(thin) >= 50 and set(full) == set(thin)
    for name, r in thin.items():
        for k, n in r["n_reflections"].items():
            assert 0.15 < n / full[name]["n_reflections"][k] < 0.35
        assert {"iced", "by", "pair_only"} <= set(r["ours"]) and "iced" in r["published"]
        assert not r["ours"]["pair_only"] or r["ours"]["iced"]
    assert sum(r["training_background"] for r in full.values()) == len(full) // 2
    s = res["summary"]["specificity"]
    assert s["1.0"]["all"]["ours"]["n"] == len(full)
