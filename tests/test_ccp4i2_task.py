"""The CCP4i2 ``helcaraxe`` task run through the real ccp4i2 package (PyPI, the ``ccp4i2`` extra):
container from our .def.xml, i2run's argument handling and import, a project database, the plugin
run in-process, outputs registered, ccp4i2's report generator. Skips where ccp4i2 is absent, except
under ``CI`` (which must install the ``ccp4i2`` extra), where that is an error."""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

if os.environ.get("CI") and importlib.util.find_spec("ccp4i2") is None:
    pytest.fail("ccp4i2 is not installed -- CI must install the [ccp4i2] extra", pytrace=False)
pytest.importorskip("ccp4i2")
gemmi = pytest.importorskip("gemmi")

from auspex_helcaraxe.ccp4i2 import DEF_XML, TASK_NAME  # noqa: E402
from auspex_helcaraxe.ccp4i2.run import SETTINGS  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def ccp4i2_home(tmp_path_factory):
    """A private ccp4i2 home (SQLite database, projects) with Django set up on our settings module."""
    home = tmp_path_factory.mktemp("ccp4i2_home")
    env = {
        "CCP4I2_HOME": str(home),
        "CCP4I2_PROJECTS_DIR": str(home / "projects"),
        "CCP4I2_DB_FILE": str(home / "db.sqlite3"),
        "DJANGO_SETTINGS_MODULE": SETTINGS,
    }
    saved = {k: os.environ.get(k) for k in [*env, "DATABASE_URL"]}
    os.environ.pop("DATABASE_URL", None)
    os.environ.update(env)
    from auspex_helcaraxe.ccp4i2.run import setup_django

    setup_django()
    yield home
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def run_task(project: str, *args: str):
    """Run the task like i2run; return (Job, exit code)."""
    from ccp4i2.db import models

    from auspex_helcaraxe.ccp4i2.run import run_i2run

    job_id, code = run_i2run([TASK_NAME, *args, "--project_name", project])
    return models.Job.objects.get(uuid=job_id), code


def job_files(job) -> dict[str, Path]:
    from ccp4i2.db import models

    return {f.job_param_name: Path(job.directory) / f.name for f in models.File.objects.filter(job=job)}


def errors(job) -> list[ET.Element]:
    return ET.parse(Path(job.directory) / "diagnostic.xml").getroot().findall("errorReport")


def write_mtz(path: Path, columns: list[tuple[str, str]], d_min: float = 1.8, seed: int = 0) -> Path:
    """A small merged P212121 MTZ: Wilson-like positive values for J/F columns, sigma 5 for Q."""
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = gemmi.SpaceGroup("P 21 21 21")
    mtz.set_cell_for_all(gemmi.UnitCell(50, 60, 70, 90, 90, 90))
    mtz.add_dataset("generated")
    for label, kind in columns:
        mtz.add_column(label, kind)
    hkl = gemmi.make_miller_array(mtz.cell, mtz.spacegroup, d_min, 40.0)
    rng = np.random.default_rng(seed)
    cols = [hkl]
    for _, kind in columns:
        if kind in "JF":
            cols.append(rng.exponential(100.0, len(hkl)))
        elif kind == "Q":
            cols.append(np.full(len(hkl), 5.0))
        else:
            cols.append(rng.integers(0, 20, len(hkl)))
    mtz.set_data(np.column_stack(cols).astype(np.float32))
    mtz.write_to_file(str(path))
    return path


def expected_ice(shared_dir: Path, name: str) -> dict[str, list[int]]:
    """The ranges labels.tsv lists as iced, per observable (``I:5,8;F:5,8``)."""
    with open(shared_dir / "data" / "real" / "labels.tsv", newline="") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if row and row[0].endswith("/" + name):
                return {k: [int(i) for i in v.split(",")] for k, v in (p.split(":") for p in row[2].split(";"))}
    raise KeyError(name)


# -- registration and the container -----------------------------------------------------------
def test_ccp4i2_settings_app_registers_task(ccp4i2_home):
    from ccp4i2.core import tasks
    from ccp4i2.lib.utils.jobs.context_run import can_run_local

    from auspex_helcaraxe.ccp4i2.task import Helcaraxe
    from auspex_helcaraxe.ccp4i2.task_report import HelcaraxeReport

    assert TASK_NAME in tasks.TASKS
    assert tasks.locate_def_xml(TASK_NAME) == DEF_XML  # absolute path outside ccp4i2's tree
    assert tasks.get_plugin_class(TASK_NAME) is Helcaraxe
    assert tasks.get_report_class(TASK_NAME) is HelcaraxeReport
    assert can_run_local(TASK_NAME)  # ccp4_free: runs on a CCP4-free ccp4i2


def test_ccp4i2_api_lists_task(ccp4i2_home):
    """The REST API the CCP4i2 frontend builds its task list from knows the task."""
    from django.test import Client

    response = Client().get("/api/ccp4i2/task_lookup/")
    assert response.status_code == 200
    assert response.json()[TASK_NAME]["shortTitle"] == "Helcaraxe ice rings"


def test_ccp4i2_container_built_from_def_xml(ccp4i2_home, tmp_path):
    from ccp4i2.cli.i2run.i2run_components import KeywordExtractor
    from ccp4i2.core.CCP4XtalData import CImageFile, CObsDataFile

    from auspex_helcaraxe.ccp4i2.task import Helcaraxe

    plugin = Helcaraxe(workDirectory=str(tmp_path))
    assert plugin.defFile is not None and Path(str(plugin.defFile)) == DEF_XML
    inp, cp, out = plugin.container.inputData, plugin.container.controlParameters, plugin.container.outputData
    assert isinstance(inp.F_SIGF, CObsDataFile)
    assert str(cp.DETECTORS) == "both"
    assert cp.DETECTORS.get_qualifier("enumerators") == ["both", "helcaraxe", "icefinder"]
    assert not cp.THRESHOLD.isSet() and not cp.DLIM.isSet() and not cp.NETWORKS.isSet()
    assert isinstance(out.IM_OUT.makeItem(), CImageFile)
    keywords = {k["minimumPath"] for k in KeywordExtractor.extract_from_task_name(TASK_NAME)}
    assert {"F_SIGF", "DETECTORS", "THRESHOLD", "DLIM", "NETWORKS"} <= keywords


# -- real runs ----------------------------------------------------------------------------------
def test_ccp4i2_i2run_real_mtz_with_published_networks(ccp4i2_home, real_data, published_dir, shared_dir):
    from ccp4i2.db import models
    from ccp4i2.lib.utils.reporting.i2_report import generate_job_report

    from auspex_helcaraxe.host import Host
    from auspex_helcaraxe.readers import read
    from auspex_helcaraxe.results import AnalysisOptions

    name = "BAZ2BA_x828_free.mtz"
    job, code = run_task("real", "--F_SIGF", f"fullPath={real_data[name]}", "--DETECTORS", "both",
                         "--NETWORKS", str(published_dir))
    assert code == 0
    assert job.status == models.Job.Status.FINISHED
    assert errors(job) == []

    files = job_files(job)
    images = sorted(v for k, v in files.items() if k.startswith("IM_OUT"))
    assert [p.name for p in images] == ["helcaraxe_F.png", "helcaraxe_I.png"]
    for p in images:
        assert p.read_bytes()[:8] == PNG_MAGIC

    root = ET.parse(Path(job.directory) / "program.xml").getroot()
    observables = {o.get("kind"): o for o in root.findall("Observable")}
    assert set(observables) == {"I", "F"}
    expected = expected_ice(shared_dir, name)
    # an independent run of the host on the original file gives the same numbers
    direct = Host().analyse(read(real_data[name]), detectors="both",
                            options=AnalysisOptions(networks=str(published_dir)))
    for kind, obs in observables.items():
        ranges = obs.findall("Range")
        assert [int(r.findtext("Index")) for r in ranges] == list(range(1, 26))
        flagged = [int(r.findtext("Index")) for r in ranges if r.findtext("Flagged") == "true"]
        assert flagged == expected[kind]
        hel, ice = direct.result("helcaraxe", kind), direct.result("icefinder", kind)
        for r in ranges:
            i = int(r.findtext("Index"))
            h = hel.range(i)
            if h is not None and h.status == "predicted":
                assert float(r.findtext("Probability")) == pytest.approx(h.value, rel=1e-5)
            s = ice.range(i)
            if s is not None and s.value is not None:
                assert float(r.findtext("IcefinderScore")) == pytest.approx(s.value, rel=1e-5)
            assert float(r.findtext("DMax")) > float(r.findtext("DMin"))
    iced = sorted(set(expected["I"]) | set(expected["F"]))
    assert root.find("Verdict/Iced").text == "true"
    assert root.find("Verdict/Ranges").text == ",".join(map(str, iced))

    # ccp4i2's own report generator picks up our report class
    report = ET.tostring(generate_job_report(job), encoding="unicode")
    assert f"Ice rings flagged in range(s) {', '.join(map(str, iced))}" in report
    assert report.count("CCP4i2ReportFileLink") >= 2 and "helcaraxe_I.png" in report


def test_ccp4i2_i2run_generated_mtz_column_split(ccp4i2_home, tmp_path):
    """No ../shared: a gemmi-written MTZ with I and F, split by i2run to the chosen columns."""
    from ccp4i2.db import models

    mtz = write_mtz(tmp_path / "generated.mtz", [("I", "J"), ("SIGI", "Q"), ("FP", "F"), ("SIGFP", "Q")])
    empty = tmp_path / "no_networks"
    empty.mkdir()
    job, code = run_task("generated", "--F_SIGF", f"fullPath={mtz}", "columnLabels=/*/*/[I,SIGI]",
                         "--DETECTORS", "helcaraxe", "--THRESHOLD", "0.7", "--DLIM", "2.5",
                         "--NETWORKS", str(empty))
    assert code == 0 and job.status == models.Job.Status.FINISHED
    files = job_files(job)
    assert files["F_SIGF"].name != mtz.name  # i2run's mini-MTZ, not the original
    assert [c.label for c in gemmi.read_mtz_file(str(files["F_SIGF"])).columns] == ["H", "K", "L", "I", "SIGI"]
    assert [p.name for k, p in files.items() if k.startswith("IM_OUT")] == ["helcaraxe_I.png"]

    root = ET.parse(Path(job.directory) / "program.xml").getroot()
    (obs,) = root.findall("Observable")
    assert obs.get("kind") == "I" and obs.findtext("Threshold") == "0.7"
    assert "no Helcaraxe network" in obs.findtext("Message")
    statuses = {r.findtext("Status") for r in obs.findall("Range")}
    assert statuses == {"no network", "not covered"}
    assert root.findtext("Detectors") == "helcaraxe"
    assert root.findtext("Verdict/Iced") == "false"


def test_ccp4i2_dlim_cuts_resolution_axis(ccp4i2_home, tmp_path):
    import matplotlib.pyplot as plt

    from auspex_helcaraxe.figures import figure_for
    from auspex_helcaraxe.host import Host
    from auspex_helcaraxe.readers import read

    host = Host()
    analysis = host.analyse(read(write_mtz(tmp_path / "g.mtz", [("I", "J"), ("SIGI", "Q")], d_min=1.6)),
                            detectors="icefinder")
    fig = figure_for(analysis, host, "I", d_limit=2.5)
    assert fig.axes[0].get_xlim()[1] == pytest.approx(1 / 2.5**2)
    full = figure_for(analysis, host, "I").axes[0].get_xlim()
    beyond = figure_for(analysis, host, "I", d_limit=1.0).axes[0].get_xlim()  # beyond the data: unchanged
    assert beyond == pytest.approx(full) and full[1] > 1 / 1.7**2
    plt.close("all")


# -- bad input ----------------------------------------------------------------------------------
def assert_failed_readably(job, *fragments: str) -> None:
    from ccp4i2.db import models

    assert job.status == models.Job.Status.FAILED
    errs = [e for e in errors(job) if int(e.findtext("severity")) >= 4]
    assert errs, "no error in diagnostic.xml"
    text = " ".join(e.findtext("details") for e in errs)
    for fragment in fragments:
        assert fragment in text
    assert "Traceback" not in (Path(job.directory) / "diagnostic.xml").read_text()
    assert not (Path(job.directory) / "program.xml").exists()


def test_ccp4i2_mtz_without_usable_columns_fails_readably(ccp4i2_home, tmp_path):
    mtz = write_mtz(tmp_path / "flags_only.mtz", [("FreeR_flag", "I")])
    job, code = run_task("bad", "--F_SIGF", f"fullPath={mtz}")
    assert code == 1
    assert_failed_readably(job, "no intensity (I) or amplitude (F) column")
    (err,) = errors(job)
    assert err.findtext("code") == "201" and err.findtext("class") == "Helcaraxe"
    assert not any(k.startswith("IM_OUT") for k in job_files(job))


def test_ccp4i2_missing_file_fails_readably(ccp4i2_home, tmp_path):
    job, code = run_task("bad", "--F_SIGF", f"fullPath={tmp_path / 'missing.mtz'}")
    assert code == 1
    assert_failed_readably(job, "does not exist", "missing.mtz")


@pytest.mark.parametrize("option, value, fragment", [
    ("--THRESHOLD", "1.5", "above maximum 1.0"),  # refused by i2run while configuring
    ("--DETECTORS", "both,foo", "not in allowed values"),  # refused by the job's validity check
])
def test_ccp4i2_bad_option_fails_readably(ccp4i2_home, tmp_path, option, value, fragment):
    mtz = write_mtz(tmp_path / "ok.mtz", [("I", "J"), ("SIGI", "Q")])
    job, code = run_task("bad_option", "--F_SIGF", f"fullPath={mtz}", option, value)
    assert code == 1
    assert_failed_readably(job, fragment)


@pytest.mark.parametrize("case", ["missing directory", "corrupt network"])
def test_ccp4i2_unusable_networks_fail_readably(ccp4i2_home, tmp_path, case):
    mtz = write_mtz(tmp_path / "ok.mtz", [("I", "J"), ("SIGI", "Q")])
    networks = tmp_path / "networks"
    if case == "corrupt network":
        networks.mkdir()
        (networks / "broken_iobs.tflite").write_bytes(b"not a flatbuffer")
    job, code = run_task("bad_networks", "--F_SIGF", f"fullPath={mtz}", "--NETWORKS", str(networks))
    assert code == 1
    assert_failed_readably(job, str(networks))
    (err,) = errors(job)
    assert err.findtext("code") == "202"


def configure_job(project: str, *args: str):
    """Create a job with its input_params.xml as the ccp4i2 API does, without running it."""
    import argparse

    from ccp4i2.cli.i2run.CCP4i2RunnerDjango import CCP4i2RunnerDjango
    from ccp4i2.db import models
    from ccp4i2.lib.utils.parameters.save_params import save_params_for_job

    runner = CCP4i2RunnerDjango(the_args=[TASK_NAME, *args, "--project_name", project],
                                parser=argparse.ArgumentParser())
    runner.parseArgs()
    plugin = runner.getPlugin(arguments_parsed=True)
    job = models.Job.objects.get(uuid=runner.jobId)
    save_params_for_job(plugin, the_job=job, mode="JOB_INPUT", exclude_unset=True)
    return job


def test_ccp4i2_file_gone_before_run_fails_readably(ccp4i2_home, tmp_path):
    """The GUI path: a configured job run by ccp4i2's job runner after its input file vanished."""
    from asgiref.sync import async_to_sync
    from ccp4i2.lib.async_run_job import run_job_async

    mtz = write_mtz(tmp_path / "soon_gone.mtz", [("I", "J"), ("SIGI", "Q")])
    job = configure_job("gone", "--F_SIGF", f"fullPath={mtz}")
    mtz.unlink()
    with pytest.raises(Exception, match="diagnostic.xml"):
        async_to_sync(run_job_async)(job.uuid)
    job.refresh_from_db()
    assert_failed_readably(job, "soon_gone.mtz")


def test_ccp4i2_run_job_worker_process_finds_task(ccp4i2_home, tmp_path):
    """ccp4i2's local runner starts ``python -m django run_job`` in a fresh process: with our
    settings module the task is registered there too and the job finishes."""
    from ccp4i2.db import models

    mtz = write_mtz(tmp_path / "worker.mtz", [("FP", "F"), ("SIGFP", "Q")])
    job = configure_job("worker", "--F_SIGF", f"fullPath={mtz}", "--DETECTORS", "icefinder")
    proc = subprocess.run([sys.executable, "-m", "django", "run_job", "-ju", str(job.uuid), "-y"],
                          env=dict(os.environ), capture_output=True, text=True, timeout=120)
    job.refresh_from_db()
    assert job.status == models.Job.Status.FINISHED, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert [p.name for k, p in job_files(job).items() if k.startswith("IM_OUT")] == ["helcaraxe_F.png"]
    root = ET.parse(Path(job.directory) / "program.xml").getroot()
    assert [o.get("kind") for o in root.findall("Observable")] == ["F"]
    assert root.findtext("Detectors") == "icefinder"
