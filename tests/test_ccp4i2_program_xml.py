"""program.xml of the CCP4i2 task, built from hand-made detector results (needs no ccp4i2)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from auspex_helcaraxe.ccp4i2.program_xml import program_xml, write_program_xml
from auspex_helcaraxe.host import Analysis
from auspex_helcaraxe.ice_ranges import ice_ranges
from auspex_helcaraxe.reflections import Observable, Reflections
from auspex_helcaraxe.results import PREDICTED, SCORED, AnalysisOptions, DetectorResult, RangeResult


def make_analysis() -> Analysis:
    """I observable to range 3; Helcaraxe flags range 2 (p 0.9), Icefinder flags range 3 (score -7)."""
    d = np.linspace(3.3, 20.0, 50)
    obs = Observable("I", ("IMEAN", "SIGIMEAN"), d, np.ones_like(d), np.ones_like(d))
    refl = Reflections("x.mtz", "P 1", (10.0, 10.0, 10.0, 90.0, 90.0, 90.0), 50, {"I": obs})
    covered = ice_ranges()[:3]
    hel = DetectorResult(
        "helcaraxe", "I",
        tuple(RangeResult(r.index, r.d_max, r.d_min, PREDICTED, value=p, flagged=p >= 0.5)
              for r, p in zip(covered, (0.1, 0.9, 0.2))),
        info={"threshold": 0.5, "network": {"name": "net-i", "sha256": "ab", "version": "1"}},
    )
    ice = DetectorResult(
        "icefinder", "I",
        tuple(RangeResult(r.index, r.d_max, r.d_min, SCORED, value=s, flagged=abs(s) >= 5)
              for r, s in zip(covered, (1.0, 2.0, -7.0))),
        info={"cutoff": 5.0},
    )
    return Analysis(refl, (hel, ice), AnalysisOptions())


def test_ccp4i2_program_xml_one_element_per_range_and_verdict(tmp_path):
    analysis = make_analysis()
    path = write_program_xml(analysis, tmp_path / "program.xml", ["helcaraxe_I.png"])
    root = ET.parse(path).getroot()
    assert root.tag == "HELCARAXE"
    (obs,) = root.findall("Observable")
    assert obs.get("kind") == "I"
    assert obs.findtext("Columns") == "IMEAN,SIGIMEAN"
    assert obs.findtext("Network") == "net-i"
    assert obs.findtext("DecidedBy") == "helcaraxe"  # a network ran: Helcaraxe decides
    ranges = obs.findall("Range")
    assert len(ranges) == len(ice_ranges()) == 25
    by_index = {int(r.findtext("Index")): r for r in ranges}
    for rng in ice_ranges():
        r = by_index[rng.index]
        assert math.isclose(float(r.findtext("DMax")), rng.d_max)
        assert math.isclose(float(r.findtext("DMin")), rng.d_min)
    assert float(by_index[2].findtext("Probability")) == pytest.approx(0.9)
    assert float(by_index[3].findtext("IcefinderScore")) == pytest.approx(-7.0)
    assert by_index[2].findtext("Flagged") == "true"
    assert by_index[3].findtext("Flagged") == "false"  # Icefinder's flag does not decide here ...
    assert by_index[3].findtext("IcefinderFlagged") == "true"  # ... but is reported
    assert by_index[10].findtext("Status") == "not covered"
    assert by_index[10].findtext("Probability") == "" and by_index[10].findtext("IcefinderScore") == ""
    assert root.findtext("Verdict/Iced") == "true"
    assert root.findtext("Verdict/Ranges") == "2"
    flagged_by = {e.get("detector"): e.text for e in root.findall("Verdict/FlaggedBy")}
    assert flagged_by == {"helcaraxe": "2", "icefinder": "3"}
    assert [f.text for f in root.findall("Figure")] == ["helcaraxe_I.png"]
    assert root.find("Input/Merged") is None and root.findall("Input/Dropped") == []


def test_ccp4i2_program_xml_says_what_the_reader_merged_and_dropped(tmp_path):
    from dataclasses import replace

    from auspex_helcaraxe.readers.unmerged import MergeInfo

    base = make_analysis()
    refl = replace(base.reflections, merged=MergeInfo(150, 50, ("I", "SIGI")), dropped={"d_invalid": 3})
    root = program_xml(Analysis(refl, base.results, base.options))
    assert root.findtext("Input/Merged/NObservations") == "150"
    assert root.findtext("Input/Merged/Multiplicity") == "3"
    assert [(e.get("reason"), e.text) for e in root.findall("Input/Dropped")] == [("d_invalid", "3")]


def test_ccp4i2_report_verdict_sentence():
    pytest.importorskip("ccp4i2")
    from auspex_helcaraxe.ccp4i2.task_report import verdict_sentence

    root = program_xml(make_analysis())
    assert verdict_sentence(root) == "Ice rings flagged in range(s) 2 (decided by helcaraxe for intensities)."
    root.find("Verdict/Iced").text = "false"
    assert verdict_sentence(root).startswith("No ice rings flagged")
