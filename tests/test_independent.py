"""The independent contamination model (training/independent.py): no simulator code, requested
strength in the ring's shell, zero bias outside the rings' reach, deterministic for a seed."""

from __future__ import annotations

import ast
import inspect
import json

import numpy as np
import pytest

from auspex_helcaraxe.ice_ranges import ice_ranges
from auspex_helcaraxe.reflections import Observable, Reflections
from auspex_helcaraxe.training import independent as ind


def _clean(seed: int = 0, n: int = 30000, d_min: float = 1.8) -> Reflections:
    """A plain Wilson-like data set built here (not with the simulator)."""
    rng = np.random.default_rng(seed)
    s3 = rng.uniform(1 / 30.0**3, 1 / d_min**3, n)
    d = (1 / s3) ** (1 / 3)
    order = np.argsort(-d)
    d = d[order]
    s = 1 / d
    mean = 1000 * np.exp(-20 * s * s / 4)
    i = mean * rng.exponential(1.0, n)
    sig = np.sqrt(0.02 * mean * mean + 2.0 * i + 1.0)
    i_obs = i + rng.normal(0, 1, n) * sig
    f = np.sqrt(np.maximum(i_obs, 0) + sig)
    sf = sig / (2 * f)
    obs = {"I": Observable("I", ("I", "SIGI"), d.astype(np.float32), i_obs.astype(np.float32), sig.astype(np.float32)),
           "F": Observable("F", ("F", "SIGF"), d.astype(np.float32), f.astype(np.float32), sf.astype(np.float32))}
    return Reflections("test.mtz", "P 21 21 21", (50, 60, 70, 90, 90, 90), n, obs)


def test_no_simulator_import():
    tree = ast.parse(inspect.getsource(ind))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = ("." * node.level) + (node.module or "")
            names.append(mod)
            names += [f"{mod}.{a.name}" for a in node.names]
    assert names
    assert not [n for n in names if "simulate" in n], names


@pytest.mark.parametrize("family", ind.FAMILIES)
@pytest.mark.parametrize("strength", [0.15, 1.0, 4.0])
def test_requested_strength_in_shell(family, strength):
    base = _clean()
    dr = ind.contaminate(base, family, strength, 7)
    for kind in ("I", "F"):
        st = dr.strength[kind]
        assert st, (family, kind)
        top = max(st.values())
        if family == "growing" and not dr.reachable:
            assert top < strength
        else:
            assert top == pytest.approx(strength, rel=1e-3 if family != "growing" else 2e-2)


def test_bias_zero_outside_rings_and_realised():
    base = _clean(1)
    st = 1.0
    dr = ind.contaminate(base, "summation", st, 3)
    lines = ind.ih_lines()
    o0, o1 = base.observables["I"], dr.reflections.observables["I"]
    assert len(o0) == len(o1)  # summation removes nothing
    s = 1 / o0.d.astype(np.float64)
    reach = dr.params["r_out"] + 8 * dr.params["fwhm"] * (1 + 4 * dr.params["eta"])
    near = np.zeros(s.size, bool)
    for d, _ in lines:
        near |= np.abs(s - 1 / (d * dr.params["lattice_scale"])) < reach
    changed = o1.values != o0.values
    assert changed.any()
    assert not np.any(changed & ~near)  # untouched reflections are bit-identical
    # the range with the requested strength: its realised mean bias is positive where the ring
    # crosses the peak region, and its mean |I| is the denominator of the strength
    ranges = {r.index: r for r in ice_ranges()}
    idx = max(dr.strength["I"], key=dr.strength["I"].get)
    r = ranges[idx]
    m = (o0.d >= r.d_min) & (o0.d <= r.d_max)
    diff = o1.values[m].astype(float) - o0.values[m]
    local = np.mean(np.abs(o0.values[m]))
    assert np.max(diff) > 0.3 * st * local  # noise-free peak = st·local; noise may lower a single one


def test_deterministic_and_different_seeds():
    base = _clean(2)
    for fam in ind.FAMILIES:
        a = ind.contaminate(base, fam, 0.6, 11)
        b = ind.contaminate(base, fam, 0.6, 11)
        c = ind.contaminate(base, fam, 0.6, 12)
        for k in ("I", "F"):
            np.testing.assert_array_equal(a.reflections.observables[k].values, b.reflections.observables[k].values)
        assert a.strength == b.strength
        assert any(len(a.reflections.observables[k]) != len(c.reflections.observables[k])
                   or np.any(a.reflections.observables[k].values != c.reflections.observables[k].values) for k in ("I", "F"))


def test_overload_leaves_gap_and_lines():
    base = _clean(3)
    dr = ind.contaminate(base, "overload", 1.0, 5)
    assert len(dr.reflections.observables["I"]) < len(base.observables["I"])
    # literature positions of the three strong Ih lines (Röttger et al. 1994 cell)
    d = [x for x, _ in ind.ih_lines()[:3]]
    assert d == pytest.approx([3.895, 3.661, 3.439], abs=0.003)
    assert ind.ic_lines()[0][0] == pytest.approx(3.671, abs=0.003)


def test_merge_rejects_outlier():
    x = np.array([[0.0, 0.1, -0.1, 50.0]])
    sx = np.ones_like(x)
    mean, sig = ind._merge(x, sx, np.ones_like(x, bool), np.array([4]))
    assert abs(mean[0]) < 0.1 and sig[0] == pytest.approx(0.5773, rel=1e-3)


def test_summarise_tables():
    rows = {k: [] for k in ("dataset", "family", "kind", "range", "strength", "nominal", "draw", "predictable")}
    flags = {"ours": [], "published": [], "ours@0.5": [], "Icefinder": []}
    for ds in range(6):
        for fam, nom, st in [("clean", 0.0, 0.0)] * 3 + [("summation", s, s) for s in ind.STRENGTHS for _ in range(3)]:
            for k, v in (("dataset", f"d{ds}"), ("family", fam), ("kind", "F"), ("range", 1), ("strength", st),
                         ("nominal", nom), ("draw", 0), ("predictable", True)):
                rows[k].append(v)
            for d, s50 in (("ours", 0.5), ("published", 2.0), ("ours@0.5", 0.4), ("Icefinder", 100.0)):
                flags[d].append(bool(st > s50))
    rows["flags"] = flags
    meta = {"thresholds": {}, "draws": 1, "seed": 0, "n_datasets": 6, "n_draws": 0, "n_unreachable": 0, "n_no_line_in_range": 0}
    res = ind.summarise(rows, meta, ("summation",), bootstrap=50)
    assert res["specificity"]["per data set"]["ours"]["value"] == 1.0
    assert 0.3 < res["s50"]["summation F"]["ours"] < 0.6
    assert 2.0 < res["s50"]["summation F"]["published"] < 4.0
    assert np.isnan(res["s50"]["summation F"]["Icefinder"])
    assert res["worst"]["Icefinder F"]["family"] == "summation"
    assert res["s50_ours_better"]["summation F"] == 1.0
    text = ind.markdown({**res, "wall_s": 1.0})
    assert ind.MD_BEGIN in text and ind.MD_END in text
    assert "from a run whose JSON does not record its date" in text  # never the rendering time as the run's
    assert "Generated by `auspex_helcaraxe.training.independent` on 2026-01-02 03:04 UTC (seed 0" in ind.markdown(
        {**res, "wall_s": 1.0, "date": "2026-01-02 03:04 UTC"})


def test_summarise_rank_auc_per_strength_bin():
    """AUC per bin: 1 where every affected plot outranks every clean plot, 0.5 where they are
    drawn from the same scores, None for a network without probabilities for the rows."""
    rows = {k: [] for k in ("dataset", "family", "kind", "range", "strength", "nominal", "draw", "predictable")}
    probs: dict[str, list] = {"ours": [], "published": []}
    rng = np.random.default_rng(0)
    for ds in range(6):
        for fam, st in [("clean", 0.0)] * 10 + [("summation", s) for s in ind.STRENGTHS for _ in range(10)]:
            for k, v in (("dataset", f"d{ds}"), ("family", fam), ("kind", "I"), ("range", 1), ("strength", st),
                         ("nominal", st), ("draw", 0), ("predictable", True)):
                rows[k].append(v)
            probs["ours"].append(float(rng.uniform(0, 0.4)) if st == 0 else float(rng.uniform(0.6, 1.0)))
            probs["published"].append(float(rng.uniform(0, 1)))
    rows["prob"] = probs
    rows["flags"] = {"ours": [p >= 0.5 for p in probs["ours"]], "published": [p >= 0.5 for p in probs["published"]]}
    meta = {"thresholds": {}, "draws": 1, "seed": 0, "n_datasets": 6, "n_draws": 0, "n_unreachable": 0, "n_no_line_in_range": 0}
    res = ind.summarise(rows, meta, ("summation",), bootstrap=0)
    auc = res["auc"]["summation I"]
    assert auc["ours"] == [1.0] * len(ind.STRENGTHS)
    assert all(0.3 < a < 0.7 for a in auc["published"])
    assert "| summation | I | ours | 1.000 | 1.000 |" in ind.markdown({**res, "wall_s": 1.0})


def test_summarise_product_verdict_per_data_set():
    rows = {k: [] for k in ("dataset", "family", "kind", "range", "strength", "nominal", "draw", "predictable")}
    rows["flags"] = {"ours": []}
    verdicts = [{"dataset": f"d{i}", "family": "clean", "nominal": 0.0, "draw": -1, "iced": i == 0, "by": []}
                for i in range(4)]
    for i in range(4):
        for j, st in enumerate(ind.STRENGTHS):
            verdicts.append({"dataset": f"d{i}", "family": "summation", "nominal": st, "draw": 0, "iced": i < j, "by": []})
            for k, v in (("dataset", f"d{i}"), ("family", "summation"), ("kind", "F"), ("range", 1), ("strength", st),
                         ("nominal", st), ("draw", 0), ("predictable", True)):
                rows[k].append(v)
            rows["flags"]["ours"].append(False)
    rows["verdict"] = verdicts
    meta = {"thresholds": {}, "draws": 1, "seed": 0, "n_datasets": 4, "n_draws": 0, "n_unreachable": 0, "n_no_line_in_range": 0}
    res = ind.summarise(rows, meta, ("summation",), bootstrap=0)
    assert res["specificity"]["per data set"][ind.VERDICT]["k"] == 3
    cells = res["per_dataset"]["summation"][ind.VERDICT]
    assert [c["k"] for c in cells] == [0, 1, 2, 3, 4, 4] and all(c["n"] == 4 for c in cells)
    assert f"| summation | {ind.VERDICT} | " in ind.markdown({**res, "wall_s": 1.0})


def test_summarise_files_with_one_observable():
    """Data sets with I and F, judged as I-only and F-only files: ours from the verdict's ``iced_only``,
    published from its flags on that observable's plots (a draw's untouched plots: the clean data set's);
    data sets with one observable count as they are, rows without a record of their observables do not."""
    rows = {k: [] for k in ("dataset", "family", "kind", "range", "strength", "nominal", "draw", "predictable")}
    rows["flags"] = {"ours": [], "published": []}

    def plot(ds, fam, nom, draw, kind, pub):
        for k, v in (("dataset", ds), ("family", fam), ("kind", kind), ("range", 1), ("strength", nom),
                     ("nominal", nom), ("draw", draw), ("predictable", True)):
            rows[k].append(v)
        rows["flags"]["ours"].append(False)
        rows["flags"]["published"].append(pub)

    verdicts = []
    for i in range(4):  # d0's clean F plot is flagged by the published networks
        plot(f"d{i}", "clean", 0.0, -1, "I", False)
        plot(f"d{i}", "clean", 0.0, -1, "F", i == 0)
        verdicts.append({"dataset": f"d{i}", "family": "clean", "nominal": 0.0, "draw": -1, "iced": False, "by": [],
                         "iced_only": {"I": i == 1, "F": False}})
        for st in ind.STRENGTHS:  # published sees I in d0, d1; ours (I only) in d0 from 0.3 up
            plot(f"d{i}", "summation", st, 0, "I", i < 2)
            verdicts.append({"dataset": f"d{i}", "family": "summation", "nominal": st, "draw": 0, "iced": True, "by": [],
                             "iced_only": {"I": i == 0 and st >= 0.3, "F": True}})
    verdicts.append({"dataset": "x", "family": "summation", "nominal": 0.15, "draw": 0, "iced": True, "by": []})  # no record
    # y: a file with only I, judged as it is (its own verdict); the published networks flag its draw
    plot("y", "clean", 0.0, -1, "I", False)
    verdicts.append({"dataset": "y", "family": "clean", "nominal": 0.0, "draw": -1, "iced": False, "by": [],
                     "observables": ["I"]})
    plot("y", "summation", 0.15, 0, "I", True)
    verdicts.append({"dataset": "y", "family": "summation", "nominal": 0.15, "draw": 0, "iced": True, "by": [],
                     "observables": ["I"]})
    rows["verdict"] = verdicts
    meta = {"thresholds": {}, "draws": 1, "seed": 0, "n_datasets": 4, "n_draws": 0, "n_unreachable": 0, "n_no_line_in_range": 0}
    one = ind.summarise(rows, meta, ("summation",), bootstrap=0)["one_observable"]
    assert one["n_datasets"] == {"I": {"both": 4, "all": 5}, "F": {"both": 4, "all": 4}}
    assert one["specificity"]["I"][ind.VERDICT]["k"] == 4 and one["specificity"]["F"]["published"]["k"] == 3
    i_rows = one["I"]["summation"]
    assert [c["k"] for c in i_rows[ind.VERDICT]] == [1, 1, 1, 1, 1, 1]
    assert [c["n"] for c in i_rows[ind.VERDICT]] == [5, 4, 4, 4, 4, 4]
    assert [c["k"] for c in i_rows["published"]] == [3, 2, 2, 2, 2, 2]
    assert [c["k"] for c in one["F"]["summation"]["published"]] == [1] * 6  # d0's clean F flag carries over
    text = ind.markdown({**ind.summarise(rows, meta, ("summation",), bootstrap=0), "wall_s": 1.0})
    assert "| summation | I only | published | 0.60 (3/5) | 0.50 (2/4) |" in text
    assert "I: 5 data sets, 4 of them with I and F" in text


def test_diagnose_counts_weak_ice_by_background_and_by_plot_size(monkeypatch, tmp_path):
    """--diagnose: intensity-only files at <= 0.6x by background (ours from the verdict, published from
    its flags), and weak plots per size bin of the plot in the clean background; strong, clean and
    overload plots are left out."""
    from auspex_helcaraxe.plots import make_plots

    small, large = _clean(0, n=8000), _clean(1, n=300000)
    monkeypatch.setattr(ind, "held_out_backgrounds", lambda real_dir, log=None: [("s.mtz", small), ("l.mtz", large)])
    n_small = int(make_plots(small.observables["I"]).n_in_range[0])
    n_large = int(make_plots(large.observables["I"]).n_in_range[0])
    assert n_small < 400 and n_large >= 2000
    rows = {k: [] for k in ("dataset", "family", "kind", "range", "strength", "nominal", "draw", "predictable")}
    rows["flags"] = {"ours": [], "published": []}
    verdicts = []
    for ds, ours_sees in (("s.mtz", True), ("l.mtz", False)):
        for fam, st in (("summation", 0.3), ("summation", 4.0), ("overload", 0.3), ("clean", 0.0)):
            for k, v in (("dataset", ds), ("family", fam), ("kind", "I"), ("range", 1), ("strength", st),
                         ("nominal", st), ("draw", 0 if st else -1), ("predictable", True)):
                rows[k].append(v)
            rows["flags"]["ours"].append(ours_sees and st > 0)
            rows["flags"]["published"].append(not ours_sees and st > 0)
            verdicts.append({"dataset": ds, "family": fam, "nominal": st, "draw": 0 if st else -1,
                             "iced": ours_sees and st > 0, "by": [], "observables": ["I"]})
    rows["verdict"] = verdicts
    text = ind.diagnose(rows, tmp_path)
    assert "| `s.mtz` | 2 | 2 | 0 |" in text and "| `l.mtz` | 2 | 0 | 2 |" in text  # summation and overload at 0.3x
    assert "| I | 1.00 / 0.00 (1) | – | – | 0.00 / 1.00 (1) |" in text  # summation 0.3x only, by size
    assert "| F | – | – | – | – |" in text


def test_evaluation_scores_the_products_verdict(shared_dir):
    """End to end on the held-out backgrounds, one strong strength: the verdict column is the host's
    own ``Analysis.iced`` (checked on the clean backgrounds) and sees strong ice."""
    from auspex_helcaraxe.host import Host
    from auspex_helcaraxe.readers import read
    from auspex_helcaraxe.training import data as tdata

    real = shared_dir / "data" / "real"
    res = ind.evaluate_independent(real, draws=1, families=("summation",), strengths=(4.0,), log=lambda m: None)
    clean = [v for v in res["rows"]["verdict"] if v["family"] == "clean"]
    held = {p.name: p for p in tdata.background_split(real)[1]}
    assert len(clean) > 20 and {v["dataset"] for v in clean} <= set(held)
    host = Host()
    for v in clean[:3]:
        refl = read(held[v["dataset"]])
        assert v["iced"] == host.analyse(refl).iced and v["observables"] == sorted(refl.observables)
    both = [v for v in clean if "iced_only" in v]
    assert both, "held-out data sets with I and F are judged as I-only and F-only files too"
    from dataclasses import replace

    refl = read(held[both[0]["dataset"]])
    for k in ("I", "F"):
        assert both[0]["iced_only"][k] == host.analyse(replace(refl, observables={k: refl.observables[k]})).iced
    (cell,) = res["per_dataset"]["summation"][ind.VERDICT]
    assert cell["n"] > 20 and cell["value"] >= 0.8
    # the control windows only lower a probability: every plot ours flags, the network alone flags too
    ours, alone = (np.array(res["rows"]["flags"][d], bool) for d in ("ours", ind.NO_WINDOWS))
    assert ours.any() and not np.any(ours & ~alone)
    assert res["date"].endswith(" UTC")


def test_from_json_renders_the_saved_run(tmp_path):
    """``--from-json`` re-renders a saved run with its own date and command, not the rendering time."""
    rows = {"dataset": ["a", "a"], "family": ["clean", "summation"], "kind": ["F", "F"], "range": [1, 1],
            "strength": [0.0, 1.0], "nominal": [0.0, 1.0], "draw": [-1, 0], "predictable": [True, True],
            "excised": [False, False], "flags": {"ours": [False, True], "published": [False, False]},
            "prob": {"ours": [0.1, 0.9], "published": [0.1, 0.2]}, "verdict": []}
    saved = {"thresholds": {"ours": {"F": 0.5}}, "draws": 1, "seed": 7, "n_datasets": 1, "n_draws": 1,
             "n_unreachable": 0, "n_no_line_in_range": 0, "families": ["summation"], "strengths": [1.0],
             "wall_s": 60.0, "rows": rows, "date": "2026-01-02 03:04 UTC", "command": "python -m x --seed 7"}
    src, md = tmp_path / "run.json", tmp_path / "eval.md"
    src.write_text(json.dumps(saved))
    md.write_text("# Evaluation\n")
    assert ind.main(["--from-json", str(src), "--md", str(md)]) == 0
    text = md.read_text()
    assert "on 2026-01-02 03:04 UTC (seed 7, 1 draws" in text and "Command: `python -m x --seed 7`" in text


def test_rank_auc_counts_ties_half_and_orders():
    from auspex_helcaraxe.training.metrics import rank_auc

    assert rank_auc(np.array([2.0, 3.0]), np.array([1.0, 1.5])) == 1.0
    assert rank_auc(np.array([0.0]), np.array([1.0, 1.5])) == 0.0
    assert rank_auc(np.array([1.0]), np.array([1.0, 0.0])) == 0.75
    assert np.isnan(rank_auc(np.array([]), np.array([1.0])))


def test_section_written_and_kept_by_evaluate(tmp_path):
    from auspex_helcaraxe.training.evaluate import _independent_section

    md = tmp_path / "evaluation.md"
    md.write_text("# Evaluation\n\nold text\n")
    sec = f"{ind.SECTION_HEAD}\n\n{ind.MD_BEGIN}\n\nnumbers v1\n\n{ind.MD_END}\n"
    ind.write_section(md, sec)
    ind.write_section(md, sec.replace("v1", "v2"))
    text = md.read_text()
    assert text.count(ind.SECTION_HEAD) == 1 and "v2" in text and "v1" not in text and "old text" in text
    assert _independent_section(md).startswith(ind.SECTION_HEAD) and _independent_section(md).endswith(ind.MD_END)


def test_card_metrics_written_into_the_measured_cards_only(tmp_path):
    """--cards: our numbers go into metrics.independent_model of the card of the network measured;
    a card of another network is refused, the .tflite files are never touched."""
    import json

    from auspex_helcaraxe.errors import InputError
    from auspex_helcaraxe.training.cards import update_metrics

    rows = {k: [] for k in ("dataset", "family", "kind", "range", "strength", "nominal", "draw", "predictable")}
    flags = {"ours": [], "published": [], "ours@0.5": [], "Icefinder": []}
    for ds in range(6):
        for fam, st in [("clean", 0.0)] * 3 + [("summation", s) for s in ind.STRENGTHS for _ in range(3)]:
            for k, v in (("dataset", f"d{ds}"), ("family", fam), ("kind", "F"), ("range", 1), ("strength", st),
                         ("nominal", st), ("draw", 0), ("predictable", True)):
                rows[k].append(v)
            for d in flags:
                flags[d].append(bool(st > 0.5) or (d == "ours" and fam == "clean" and ds == 0))
    rows["flags"] = flags
    meta = {"thresholds": {}, "draws": 1, "seed": 0, "n_datasets": 6, "n_draws": 0, "n_unreachable": 0,
            "n_no_line_in_range": 0}
    m = ind.card_metrics(ind.summarise(rows, meta, ("summation",), bootstrap=20))
    assert set(m) == {"F"}
    f = m["F"]
    assert 0.3 < f["s50"]["summation"] < 0.7 and f["worst_family"]["family"] == "summation"
    assert f["detection_per_plot"]["summation"][0] == 0.0 and f["detection_per_plot"]["summation"][-1] == 1.0
    assert f["specificity_clean_per_dataset"]["k"] == 5 and f["specificity_clean_per_dataset"]["n"] == 6
    json.dumps(m, allow_nan=False)  # the card stays strict JSON

    (tmp_path / "x_fobs.tflite").write_bytes(b"net")
    (tmp_path / "x_fobs.json").write_text(json.dumps({"name": "x", "sha256": "abc", "metrics": {"old": 1}}))
    update_metrics(tmp_path, "independent_model", m, sha256={"F": "abc"})
    card = json.loads((tmp_path / "x_fobs.json").read_text())
    assert card["metrics"]["old"] == 1 and card["metrics"]["independent_model"]["s50"] == f["s50"]
    assert (tmp_path / "x_fobs.tflite").read_bytes() == b"net"
    with pytest.raises(InputError, match="describes network"):
        update_metrics(tmp_path, "independent_model", m, sha256={"F": "other"})
