"""CCP4i2 report for the ``helcaraxe`` task: the verdict, a table of the covered ice ranges per
observable (from ``program.xml``) and links to the figures (as the AUSPEX report does)."""

from __future__ import annotations

import os

from ccp4i2.report import Report

from . import TASK_NAME

OBSERVABLE_NAMES = {"I": "intensities", "F": "amplitudes"}


class HelcaraxeReport(Report):
    """Verdict, per-range table and figures of one ``helcaraxe`` job."""

    TASKNAME = TASK_NAME
    USEPROGRAMXML = True
    SEPARATEDATA = True

    def __init__(self, xmlnode=None, jobInfo=None, jobStatus=None, **kw) -> None:
        jobInfo = jobInfo or {}
        super().__init__(xmlnode=xmlnode, jobInfo=jobInfo, jobStatus=jobStatus, **kw)
        if jobStatus is not None and jobStatus.lower() == "nooutput":
            return
        if xmlnode is None:
            self.addText(text="The task wrote no results (see the error report).")
            return
        self.defaultReport(xmlnode)

    def defaultReport(self, root, parent=None) -> None:
        parent = parent if parent is not None else self
        results = parent.addResults()
        results.addText(text=verdict_sentence(root), style="font-weight:bold;")
        for obs in root.findall("Observable"):
            kind = obs.get("kind", "?")
            fold = parent.addFold(label=f"Ice ranges, {OBSERVABLE_NAMES.get(kind, kind)} ({_text(obs, 'Columns')})",
                                  initiallyOpen=True)
            for message in obs.findall("Message"):
                fold.addText(text=message.text or "")
            covered = [r for r in obs.findall("Range") if _text(r, "Status") != "not covered"]
            table = fold.addTable()
            columns = (
                ("Range", "Index"), ("d max (Å)", "DMax"), ("d min (Å)", "DMin"), ("Status", "Status"),
                ("P(ice)", "Probability"), ("Icefinder score", "IcefinderScore"), ("Ice", "Flagged"),
            )
            for title, tag in columns:
                values = [_text(r, tag) or "-" for r in covered]
                if tag == "Flagged":
                    values = ["yes" if v == "true" else "" for v in values]
                elif tag in ("Probability", "IcefinderScore"):
                    values = [_rounded(v) for v in values]
                table.addData(title=title, data=values)
        self._figures(parent, root)

    def _figures(self, parent, root) -> None:
        fileroot = self.jobInfo.get("fileroot", "")
        images = [p for p in self.jobInfo.get("filenames", {}).get("IM_OUT", []) if p]
        if not images:  # fall back on the names the task wrote into program.xml
            images = [os.path.join(fileroot, f.text) for f in root.findall("Figure") if f.text]
        for path in images:
            rel = os.path.relpath(path, fileroot) if fileroot else path
            label = "Helcaraxe plot of amplitudes" if rel.endswith("_F.png") else "Helcaraxe plot of intensities"
            parent.addFileLink(label=label, relativePath=rel, fileType="image")


def verdict_sentence(root) -> str:
    """One sentence for the data set from ``program.xml``'s ``Verdict``."""
    verdict = root.find("Verdict")
    if verdict is None:
        return "No verdict."
    decided = ", ".join(f"{e.text} for {OBSERVABLE_NAMES.get(e.get('kind'), e.get('kind'))}"
                        for e in verdict.findall("DecidedBy"))
    if _text(verdict, "Iced") == "true":
        return f"Ice rings flagged in range(s) {_text(verdict, 'Ranges').replace(',', ', ')} (decided by {decided})."
    return f"No ice rings flagged (decided by {decided})." if decided else "No ice rings flagged."


def _rounded(value: str) -> str:
    try:
        return f"{float(value):.3f}"
    except ValueError:
        return value


def _text(node, tag: str) -> str:
    el = node.find(tag)
    return (el.text or "").strip() if el is not None else ""
