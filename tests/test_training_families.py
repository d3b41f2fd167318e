"""Leave-one-family-out: the family definitions and the exclusion of a family from the drawing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from auspex_helcaraxe.simulate import dataset, ice, semi
from auspex_helcaraxe.training.families import FAMILIES, MEMBER, excluding, ring_families

ICE = {"probability": 1.0, "mode_p": [0.15, 0.35, 0.5]}  # as make_training_set draws, always iced


def _drawn_rings(n: int, seed: int = 3) -> list[dict]:
    """The rings of ``n`` simulated data sets as the training simulator draws them (simulate_dataset's
    parameters: draw_rings and the later marking of excluded shells; no simulation)."""
    rng = np.random.default_rng(seed)
    return [r for _ in range(n) for r in
            dataset.draw_params(np.random.default_rng(rng.integers(2**63)), {"ice": dict(ICE)})["ice_rings"]]


def test_one_family_table():
    assert set(MEMBER) == set(FAMILIES)


def test_forced_families_are_members_and_match_the_simulators_effect_labels():
    rng = np.random.default_rng(0)
    for fam, opts in FAMILIES.items():
        for _ in range(20):
            for r in ice.draw_rings(rng, 1.5, 40.0, {"strength": 2.0, **opts}):
                assert fam in ring_families(r)
                _, effects = ice.ring_strength_in_range([r], 1 / r["d"] - 0.01, 1 / r["d"] + 0.01)
                assert ("partial" in effects) == MEMBER["partial"](r)
                assert ("oversubtracted" in effects) == MEMBER["oversubtracted"](r)
                assert ("excluded" in effects) == MEMBER["excluded"](r)
                if MEMBER["spike"](r):
                    assert set(effects) == {"spike", "sigma"}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_excluded_family_never_drawn(family):
    assert any(MEMBER[family](r) for r in _drawn_rings(150))  # the family occurs without the option
    with excluding(family):
        rings = _drawn_rings(150)
        rng = np.random.default_rng(1)
        semi_rings = [r for _ in range(150) for r in semi.draw_rings(rng, 1.6, 40.0, {"mode_p": ICE["mode_p"]})]
    assert len(rings) > 300 and len(semi_rings) > 300
    assert not any(MEMBER[family](r) for r in rings + semi_rings)
    others = set(FAMILIES) - {family}
    assert all(any(MEMBER[f](r) for r in rings) for f in others)  # the other families stay
    assert dataset.draw_rings is ice.draw_rings and semi.draw_rings is ice.draw_rings  # restored


def test_excluding_none_changes_nothing():
    plain = _drawn_rings(40)
    with excluding(None):
        assert _drawn_rings(40) == plain
    with pytest.raises(ValueError):
        with excluding("sigma"):
            pass


def test_training_set_without_a_family_and_its_cache_key(tmp_path):
    from auspex_helcaraxe.training.train import training_set

    X, y, groups, meta, info = training_set("F", 8, 11, cache_dir=tmp_path, log=lambda m: None,
                                            exclude_family="partial")
    assert len(y) > 0 and not any("partial" in m["effects"].split(",") for m in meta)
    key = json.loads((tmp_path / info["cache"] / "key.json").read_text())
    assert key["exclude_family"] == "partial"
    # the default's key is today's (no exclude_family entry): a different cache entry
    _, y0, *_, info0 = training_set("F", 2, 11, cache_dir=tmp_path, log=lambda m: None)
    assert "exclude_family" not in json.loads((tmp_path / info0["cache"] / "key.json").read_text())


def test_lofo_summary_compares_each_family_with_the_baseline_and_names_the_worst_drop():
    from auspex_helcaraxe.training.families import lofo_summary

    def cell(k, n):
        return {"value": k / n, "k": k, "n": n}

    runs = {
        "base": {"families": {"spike": {"weak": {"F simulated": cell(8, 10), "I simulated": cell(9, 10)}},
                              "partial": {"0.6-10": {"F simulated": cell(5, 10), "I simulated": cell(3, 4)}}}},
        "no-spike": {"families": {"spike": {"weak": {"F simulated": cell(3, 10), "I simulated": cell(8, 10)}}}},
        "no-partial": {"families": {"partial": {"0.6-10": {"F simulated": cell(6, 10), "I simulated": cell(1, 4)}}}},
    }
    res = lofo_summary(runs, "base", {"no-spike": "spike", "no-partial": "partial"})
    got = {(r["family"], r["set"]): r["change"] for r in res["rows"]}
    assert got == {("spike", "F simulated"): -0.5, ("spike", "I simulated"): -0.1, ("partial", "F simulated"): 0.1}
    assert res["worst"]["family"] == "spike" and res["worst"]["set"] == "F simulated"  # I partial: < 10 plots
    only_i = lofo_summary(runs, "base", {"no-spike": "spike", "no-partial": "partial"}, kind="I")
    assert [r["set"] for r in only_i["rows"]] == ["I simulated"] and only_i["worst"]["change"] == -0.1
