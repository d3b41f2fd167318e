"""Reports: the versioned JSON document pipelines rely on (schema v2) and a short text summary.

The data-set verdict (``Analysis.iced``) is decided per range by the joint I+F rule where the networks
predicted the range in both observables (``verdict.joint``), otherwise by Helcaraxe when it ran with a
network for an observable, otherwise by Icefinder; ``verdict.evidence`` says what each flag rests on
and ``verdict.by_detector`` lists what every detector flagged.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .ice_ranges import ice_ranges
from .results import EXCISED, NO_NETWORK, NOT_COVERED, PREDICTED

if TYPE_CHECKING:  # pragma: no cover
    from .host import Analysis

SCHEMA_VERSION = 2  # 2: verdict.joint (I+F combiner), verdict.evidence, ranges[].evidence


def verdict(analysis: "Analysis") -> dict[str, Any]:
    """``{iced, ranges, decided_by, evidence, joint, by_detector, excised}`` for the whole data set."""
    decided_by: dict[str, str] = {}
    for kind in analysis.reflections.observables:
        result = analysis.deciding_result(kind)
        if result is not None:
            decided_by[kind] = result.detector
    flagged: dict[str, set[int]] = {}
    for r in analysis.results:
        flagged.setdefault(r.detector, set()).update(r.flagged_ranges)
    by_detector = {name: sorted(ranges) for name, ranges in flagged.items()}
    excised = sorted({x.index for r in analysis.results for x in r.ranges if x.status == EXCISED})
    decision = analysis.decision()
    joint = analysis.joint
    combiner = analysis.combiner if joint else None
    if joint:
        decided_by["joint"] = "I+F combiner " + str(combiner.card.get("name", "?")) if combiner else "I+F combiner"
    return {"iced": bool(decision), "ranges": sorted(decision), "decided_by": decided_by,
            "evidence": {str(k): v["evidence"] for k, v in decision.items()},
            "joint": ({"combiner": {"name": combiner.card.get("name"), "version": combiner.card.get("version")},
                       "ranges": joint} if joint else None),
            "by_detector": by_detector, "excised": excised}


def to_dict(analysis: "Analysis") -> dict[str, Any]:
    """The JSON report, schema version 2 (documented in README.md)."""
    refl = analysis.reflections
    observables: dict[str, Any] = {}
    for kind, obs in refl.observables.items():
        hel = analysis.result("helcaraxe", kind)
        ice = analysis.result("icefinder", kind)
        deciding = analysis.deciding_result(kind)
        rows = []
        for rng in ice_ranges():
            h = hel.range(rng.index) if hel else None
            i = ice.range(rng.index) if ice else None
            d = deciding.range(rng.index) if deciding else None
            status = (h or i or d).status if (h or i or d) else NOT_COVERED
            rows.append({
                "index": rng.index,
                "d_max": rng.d_max,
                "d_min": rng.d_min,
                "status": status,
                "probability": _num(h.value) if h is not None and h.status == PREDICTED else None,
                "network_probability": _num(h.details.get("network_probability")) if h is not None else None,
                "control_probabilities": (h.details.get("control_probabilities") if h is not None else None),
                "pair": (h.details.get("pair") if h is not None else None),
                "summed": (h.details.get("summed") if h is not None else None),
                "icefinder_score": _num(i.value) if i is not None else None,
                "flagged": bool(d.flagged) if d is not None else False,
                "helcaraxe_flagged": bool(h.flagged) if h is not None else None,
                "icefinder_flagged": bool(i.flagged) if i is not None else None,
                "reason": (h.reason if h is not None else None),
                "evidence": (d.details.get("evidence") if d is not None and d.flagged else None),
                "n_reflections": (h.details.get("n_reflections") if h is not None else None),
                "relative_completeness": _num(h.details.get("relative_completeness")) if h is not None else None,
            })
        entry: dict[str, Any] = {
            "columns": list(obs.columns),
            "n_observations": len(obs),
            "d_min": round(obs.d_min, 4),
            "network": _public(hel.info.get("network")) if hel is not None else None,
            "threshold": hel.info.get("threshold") if hel is not None else None,
            "control_baseline": hel.info.get("control_baseline") if hel is not None else None,
            "control_aggregate": hel.info.get("control_aggregate") if hel is not None else None,
            "pair_threshold": hel.info.get("pair_threshold") if hel is not None else None,
            "pair_steps": hel.info.get("pair_steps") if hel is not None else None,
            "summed_evidence": hel.info.get("summed_evidence") if hel is not None else None,
            "plot_scale": hel.info.get("plot_scale") if hel is not None else None,
            "sparse_threshold": hel.info.get("sparse_threshold") if hel is not None else None,
            "dense_threshold": hel.info.get("dense_threshold") if hel is not None else None,
            "icefinder_cutoff": ice.info.get("cutoff") if ice is not None else None,
            "decided_by": deciding.detector if deciding else None,
            "ranges": rows,
        }
        messages = [r.message for r in analysis.for_observable(kind) if r.message]
        if messages:
            entry["messages"] = messages
        observables[kind] = entry
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "auspex-helcaraxe", "version": __version__},
        "file": refl.source,
        "space_group": refl.space_group,
        "cell": list(refl.cell),
        "n_reflections": refl.n_reflections,
        "input": input_section(refl),
        "detectors": sorted({r.detector for r in analysis.results}),
        "observables": observables,
        "verdict": verdict(analysis),
        "extensions": _public(analysis.extensions),
    }


def input_section(refl) -> dict[str, Any]:
    """``{merged, dropped}``: what the reader did to the file's reflections before the analysis
    (merged on the fly: counts and multiplicity, else null; dropped as invalid: count per reason)."""
    return {"merged": refl.merged.as_dict() if refl.merged is not None else None,
            "dropped": dict(refl.dropped)}


def write_json(analysis: "Analysis", path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_dict(analysis), indent=2, allow_nan=False) + "\n")
    return path


def summary_text(analysis: "Analysis") -> str:
    """A short human-readable summary: one line per covered range and observable, then the verdict."""
    refl = analysis.reflections
    lines = [f"{refl.name}: {refl.space_group}, {refl.n_reflections} reflections, d_min {refl.d_min:.2f} Å"]
    if refl.merged is not None:
        lines.append(f"  merged on the fly: {refl.merged}")
    if refl.dropped:
        lines.append("  dropped as invalid: " + ", ".join(f"{v} ({k})" for k, v in refl.dropped.items()))
    for kind, obs in refl.observables.items():
        hel = analysis.result("helcaraxe", kind)
        ice = analysis.result("icefinder", kind)
        net = hel.info.get("network") if hel is not None else None
        head = f"  {kind} ({', '.join(obs.columns)}), {len(obs)} observations"
        if net:
            head += f"; network {net['name']} (sha256 {net['sha256'][:12]})"
        lines.append(head)
        for r in analysis.for_observable(kind):
            if r.message:
                lines.append(f"    note [{r.detector}]: {r.message}")
        lines.append("    range  d_max-d_min (Å)  Helcaraxe                    Icefinder")
        for rng in ice_ranges():
            h = hel.range(rng.index) if hel else None
            i = ice.range(rng.index) if ice else None
            if all(x is None or x.status == NOT_COVERED for x in (h, i)):
                continue
            lines.append(f"    {rng.index:>5}  {rng.d_max:.3f}-{rng.d_min:.3f}    {_cell_h(h):<28} {_cell_i(i)}")
    v = verdict(analysis)
    by = ", ".join(f"{k}: {d}" for k, d in v["decided_by"].items())
    if v["joint"]:
        lines.append("  joint I+F verdict per range (learned combiner):")
        for j in v["joint"]["ranges"]:
            lines.append(f"    {j['index']:>5}  p_I={j['p_I']:.3f} p_F={j['p_F']:.3f} -> p_joint={j['p_joint']:.3f}"
                         + ("  ICE" if j["flagged"] else ""))
    if v["iced"]:
        lines.append(f"  VERDICT: ice in range(s) {', '.join(map(str, v['ranges']))} (decided by {by})")
        for k, ev in v["evidence"].items():
            lines.append(f"    range {k}: {ev}")
    else:
        lines.append(f"  VERDICT: no ice found (decided by {by})")
    if v["excised"]:
        lines.append(f"  EXCISED: range(s) {', '.join(map(str, v['excised']))} lack their reflections "
                     "(ice rings cut out during processing?); ice there cannot be judged")
    return "\n".join(lines)


def _cell_h(r) -> str:
    if r is None:
        return "-"
    if r.status == PREDICTED:
        return f"p={r.value:.3f}" + ("  ICE" if r.flagged else "")
    if r.status == NO_NETWORK:
        return "no network"
    return r.status if r.status != NOT_COVERED else "-"


def _cell_i(r) -> str:
    if r is None or r.status == NOT_COVERED:
        return "-"
    if r.value is None or (isinstance(r.value, float) and math.isnan(r.value)):
        return r.status
    return f"score={r.value:+.1f}" + ("  ICE" if r.flagged else "")


def _num(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _public(obj):
    """Drop private keys (leading underscore) and make numpy values JSON-friendly."""
    if isinstance(obj, dict):
        return {k: _public(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_public(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):
        return _num(obj.item()) if isinstance(obj.item(), float) else obj.item()
    if isinstance(obj, float):
        return _num(obj)
    return obj
