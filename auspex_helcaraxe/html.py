"""Self-contained HTML reports (the xia2.html / dials.report convention), rendered with Jinja2 from
the templates in ``auspex_helcaraxe/templates``.

- :func:`write_check`: ``helcaraxe check … --out DIR`` → ``DIR/index.html``, built from the JSON
  report dicts (:func:`report.to_dict`) so it shows what the JSON says, with the figures read back
  from the files ``figures.draw_resolution_plots`` wrote, inlined (PNG as base64, SVG as markup).
- :func:`write_survey`: a results store → ``DIR/index.html`` (counts, fractions, ranges hit, by year,
  failures by reason, the flagged data sets) and ``DIR/datasets/<id>.html`` for the listed flagged ones.

No page refers to anything outside itself (no network, opens from ``file://``).
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from . import __version__
from .errors import InputError

SURVEY_CAP = 2000  # flagged data sets listed (and given a page) on a survey page
TOOL = {"name": "auspex-helcaraxe", "version": __version__}


def _env():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("auspex_helcaraxe", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.ChainableUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )


def _common() -> dict[str, Any]:
    return {"tool": TOOL, "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


# -- check ------------------------------------------------------------------------------------------
def embed_figure(path: str | os.PathLike) -> dict[str, str] | None:
    """A figure file as template data: ``{name, svg}`` or ``{name, mime, data}`` (base64); None for
    formats a browser cannot show inline (PDF)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".svg":
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", text)
        text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text, count=1)
        return {"name": path.name, "svg": text}
    mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}.get(suffix)
    if mime is None:
        return None
    return {"name": path.name, "mime": mime, "data": base64.b64encode(path.read_bytes()).decode("ascii")}


def _flags(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flagged ranges per detector and observable, from the per-range flags of the report."""
    out = []
    for kind, obs in report.get("observables", {}).items():
        for det, key in (("helcaraxe", "helcaraxe_flagged"), ("icefinder", "icefinder_flagged")):
            ranges = [x["index"] for x in obs.get("ranges", []) if x.get(key)]
            if ranges:
                out.append({"detector": det, "observable": kind, "ranges": ranges})
    return out


def _evidence(report: Mapping[str, Any]) -> list[str]:
    """One line per flagged or excised range: what the flag rests on."""
    lines = []
    for kind, obs in report.get("observables", {}).items():
        for x in obs.get("ranges", []):
            if not (x.get("flagged") or x.get("helcaraxe_flagged") or x.get("icefinder_flagged")
                    or x.get("status") == "excised"):
                continue
            parts = []
            if x.get("probability") is not None:
                parts.append(f"p={x['probability']:.3f}")
            if x.get("icefinder_score") is not None:
                parts.append(f"score={x['icefinder_score']:+.1f}")
            if x.get("status") == "excised":
                rc = x.get("relative_completeness")
                parts.append("excised" + (f" (rel. completeness {rc:.2f})" if rc is not None else ""))
            if x.get("evidence") is not None:
                parts.append(f"evidence {x['evidence']}")
            parts.append({True: "flagged", False: "not flagged by the deciding detector"}[bool(x.get("flagged"))])
            lines.append(f"{kind} range {x['index']}: " + ", ".join(parts))
    return lines


def _warnings(report: Mapping[str, Any]) -> list[str]:
    """Nonpredictable ranges and, where the report has them, the input's dropped / merged notes."""
    out = []
    for kind, obs in report.get("observables", {}).items():
        blank = [f"{x['index']} ({x['reason']})" if x.get("reason") else str(x["index"])
                 for x in obs.get("ranges", []) if x.get("status") == "nonpredictable"]
        if blank:
            out.append(f"{kind}: nonpredictable range(s) {', '.join(blank)} — Helcaraxe cannot judge them")
    inp = report.get("input") or {}
    dropped = inp.get("dropped")
    if isinstance(dropped, Mapping) and dropped:
        from .readers.columns import describe_drop

        out.append("Reflections dropped as invalid on reading: "
                   + "; ".join(f"{v} ({describe_drop(k)})" for k, v in dropped.items()))
    merged = inp.get("merged")
    if isinstance(merged, Mapping):
        out.append(f"Merged on the fly: {merged.get('n_observations')} observations into "
                   f"{merged.get('n_unique')} unique reflections, multiplicity {merged.get('multiplicity')} "
                   f"({merged.get('method')})")
    return out


def check_entry(report: Mapping[str, Any] | None = None, figures: Iterable[str | os.PathLike] = (),
                file: str | None = None, error: str | None = None) -> dict[str, Any]:
    """One data set of the check page: a JSON report dict (and its figure files), or a failed file."""
    if report is None:
        return {"file": file, "error": error, "report": None}
    return {"file": file or report.get("file"), "error": None, "report": report, "figures": list(figures)}


def render_check(entries: Sequence[Mapping[str, Any]]) -> str:
    """The check page for ``entries`` (see :func:`check_entry`)."""
    rows = []
    for i, e in enumerate(entries):
        row: dict[str, Any] = {"file": Path(str(e["file"])).name, "error": e.get("error"), "anchor": f"ds{i + 1}"}
        report = e.get("report")
        if report is not None:
            figs = [(p, embed_figure(p)) for p in e.get("figures", ())]
            obs = report.get("observables", {})
            row.update(
                report=report, flags=_flags(report), evidence=_evidence(report), warnings=_warnings(report),
                figures=[f for _, f in figs if f is not None],
                figure_notes=[f"{Path(p).name}: not shown inline (format)" for p, f in figs if f is None],
                joint=report.get("verdict", {}).get("joint"),
                has_evidence=any("evidence" in x for o in obs.values() for x in o.get("ranges", [])),
                d_min=min((o["d_min"] for o in obs.values() if o.get("d_min") is not None), default=None),
            )
        rows.append(row)
    ok = [r for r in rows if r["error"] is None]
    n_iced = sum(1 for r in ok if r["report"].get("verdict", {}).get("iced"))
    return _env().get_template("check.html.j2").render(
        entries=rows, n_iced=n_iced, n_clean=len(ok) - n_iced, n_failed=len(rows) - len(ok), **_common())


def write_check(entries: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike, name: str = "index.html") -> Path:
    """Write the check page into ``out_dir``; returns its path."""
    path = Path(out_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_check(entries), encoding="utf-8")
    return path


# -- survey -----------------------------------------------------------------------------------------
def _reason(file: str, error: str | None) -> str:
    """The failure reason without the file name (leading, or quoted in it), so that failures group."""
    text = (error or "unknown error").strip()
    for prefix in (file, Path(file).name):
        if prefix and text.startswith(prefix + ":"):
            text = text[len(prefix) + 1:].strip()
            break
    return text.replace(file, "<file>") if file else text


def survey_data(store_path: str | os.PathLike, metadata: str | os.PathLike | None = None,
                config: str | None = None, cap: int = SURVEY_CAP) -> dict[str, Any]:
    """What the survey page shows, read from the store (configuration: the latest unless given)."""
    import json

    from .scan.store import Store
    from .scan.summary import count_by_year, read_metadata

    if not Path(store_path).is_file():
        raise InputError(f"{store_path}: no such results store")
    years = read_metadata(metadata) if metadata is not None else None
    with Store(store_path) as store:
        config = config or store.latest_config()
        if config is None:
            raise InputError(f"{store_path}: the results store holds no data sets")
        cfg = store.query("SELECT config, detectors, networks, threshold, icefinder_cutoff FROM configs WHERE config=?",
                          (config,)).fetchone()
        cfg = dict(zip(("config", "detectors", "networks", "threshold", "icefinder_cutoff"), cfg or (config,) * 5))
        counts = dict(store.query("SELECT status, COUNT(*) FROM datasets WHERE config=? GROUP BY status",
                                  (config,)).fetchall())
        n_iced = store.query("SELECT COUNT(*) FROM datasets WHERE config=? AND status='ok' AND iced",
                             (config,)).fetchone()[0]
        per_obs = store.flagged_by_observable(config)
        per_range = store.flagged_by_range(config)
        groups: dict[str, list[str]] = defaultdict(list)
        for file, error in store.failures(config):
            groups[_reason(file, error)].append(Path(file).name)
        failures = sorted(((r, len(f), f[:5]) for r, f in groups.items()), key=lambda t: (-t[1], t[0]))
        cur = store.query("SELECT * FROM datasets WHERE config=? AND status='ok' AND iced ORDER BY id LIMIT ?",
                          (config, cap))
        cols = [c[0] for c in cur.description]
        flagged = [dict(zip(cols, row)) for row in cur.fetchall()]
        by_year, unmatched = None, 0
        if years is not None:
            by_year, unmatched = count_by_year(
                store.query("SELECT entry_id, iced FROM datasets WHERE config=? AND status='ok'", (config,)), years)
            for d in flagged:
                d["year"] = years.get(d["entry_id"])
    try:
        networks = json.loads(cfg["networks"]) if isinstance(cfg.get("networks"), str) else {}
    except ValueError:
        networks = {}
    return {
        "store": str(store_path), "config": cfg, "networks": networks, "n_ok": counts.get("ok", 0),
        "n_failed": counts.get("failed", 0), "n_iced": n_iced, "per_obs": per_obs, "per_range": per_range,
        "failures": failures, "flagged": flagged, "cap": cap, "by_year": by_year, "unmatched": unmatched,
    }


def write_survey(store_path: str | os.PathLike, out_dir: str | os.PathLike,
                 metadata: str | os.PathLike | None = None, config: str | None = None,
                 cap: int = SURVEY_CAP) -> Path:
    """Write the survey page ``out_dir/index.html`` and one page per listed flagged data set
    (``out_dir/datasets/<id>.html``, at most ``cap``) from an existing results store; returns the
    index path. ``metadata``: the CSV of ``helcaraxe scan --metadata`` (id, deposition year)."""
    from .scan.store import Store

    data = survey_data(store_path, metadata=metadata, config=config, cap=cap)
    env = _env()
    out = Path(out_dir)
    (out / "datasets").mkdir(parents=True, exist_ok=True)
    common = _common()
    page = env.get_template("survey_dataset.html.j2")
    with Store(store_path) as store:
        for d in data["flagged"]:
            ranges = store.query(
                "SELECT detector, observable, range_index, d_max, d_min, status, value, flagged FROM ranges "
                "WHERE dataset_id=? ORDER BY detector, observable, range_index", (d["id"],)).fetchall()
            (out / "datasets" / f"{d['id']}.html").write_text(page.render(d=d, ranges=ranges, **common),
                                                             encoding="utf-8")
    index = out / "index.html"
    index.write_text(env.get_template("survey.html.j2").render(**data, **common), encoding="utf-8")
    return index
