"""The task's program output (``program.xml``): one ``Range`` element per ice range and observable,
and the data-set verdict. Built from :func:`auspex_helcaraxe.report.to_dict`, so the CCP4i2 task,
the JSON report and the CLI agree; needs only the standard library (no ccp4i2)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..report import to_dict

if TYPE_CHECKING:  # pragma: no cover
    from ..host import Analysis

ROOT_TAG = "HELCARAXE"
# Range fields written, as (element tag, key in the JSON report's range rows).
RANGE_FIELDS = (
    ("Index", "index"),
    ("DMax", "d_max"),
    ("DMin", "d_min"),
    ("Status", "status"),
    ("Probability", "probability"),
    ("IcefinderScore", "icefinder_score"),
    ("Flagged", "flagged"),
    ("HelcaraxeFlagged", "helcaraxe_flagged"),
    ("IcefinderFlagged", "icefinder_flagged"),
    ("Reason", "reason"),
)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    return str(value)


def _sub(parent: ET.Element, tag: str, value: Any) -> ET.Element:
    el = ET.SubElement(parent, tag)
    el.text = _text(value)
    return el


def program_xml(analysis: "Analysis", figures: list[str] | tuple[str, ...] = ()) -> ET.Element:
    """The ``<HELCARAXE>`` element for one analysed data set (``figures``: the PNG file names)."""
    doc = to_dict(analysis)
    root = ET.Element(ROOT_TAG, {"schema_version": str(doc["schema_version"]), "version": doc["tool"]["version"]})
    _sub(root, "File", doc["file"])
    _sub(root, "SpaceGroup", doc["space_group"])
    _sub(root, "Cell", [round(x, 4) for x in doc["cell"]])
    _sub(root, "NReflections", doc["n_reflections"])
    _sub(root, "Detectors", doc["detectors"])
    inp = ET.SubElement(root, "Input")
    merged = doc["input"]["merged"]
    if merged is not None:  # unmerged input, merged on the fly
        el = ET.SubElement(inp, "Merged")
        for tag, key in (("NObservations", "n_observations"), ("NUnique", "n_unique"),
                         ("Multiplicity", "multiplicity"), ("Method", "method")):
            _sub(el, tag, merged.get(key))
    for reason, count in doc["input"]["dropped"].items():
        _sub(inp, "Dropped", count).set("reason", reason)
    for kind, entry in doc["observables"].items():
        obs = ET.SubElement(root, "Observable", {"kind": kind})
        _sub(obs, "Columns", entry["columns"])
        _sub(obs, "NObservations", entry["n_observations"])
        _sub(obs, "DMin", entry["d_min"])
        _sub(obs, "DecidedBy", entry["decided_by"])
        _sub(obs, "Threshold", entry["threshold"])
        network = entry.get("network") or {}
        _sub(obs, "Network", network.get("name") if isinstance(network, dict) else network)
        for message in entry.get("messages", ()):
            _sub(obs, "Message", message)
        for row in entry["ranges"]:
            rng = ET.SubElement(obs, "Range")
            for tag, key in RANGE_FIELDS:
                _sub(rng, tag, row.get(key))
    v = doc["verdict"]
    verdict = ET.SubElement(root, "Verdict")
    _sub(verdict, "Iced", v["iced"])
    _sub(verdict, "Ranges", v["ranges"])
    for kind, detector in v["decided_by"].items():
        _sub(verdict, "DecidedBy", detector).set("kind", kind)
    for detector, ranges in v["by_detector"].items():
        _sub(verdict, "FlaggedBy", ranges).set("detector", detector)
    for index, evidence in (v.get("evidence") or {}).items():
        _sub(verdict, "Evidence", evidence).set("range", str(index))
    for j in ((v.get("joint") or {}).get("ranges") or ()):
        el = ET.SubElement(verdict, "Joint", {"range": str(j["index"])})
        for tag, key in (("PI", "p_I"), ("PF", "p_F"), ("PJoint", "p_joint"), ("Threshold", "threshold"),
                         ("Flagged", "flagged")):
            _sub(el, tag, j.get(key))
    for name in figures:
        _sub(root, "Figure", name)
    return root


def write_program_xml(analysis: "Analysis", path: str | Path, figures: list[str] | tuple[str, ...] = ()) -> Path:
    """Write :func:`program_xml` to ``path`` (UTF-8, indented)."""
    path = Path(path)
    tree = ET.ElementTree(program_xml(analysis, figures))
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
    return path
