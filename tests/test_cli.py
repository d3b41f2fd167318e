"""The command line as a user runs it: exit codes, reports, figures, one-line errors, batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from auspex_helcaraxe.cli import main
from auspex_helcaraxe.simulate import demo_dataset, simulate_dataset, write_mtz

HELCARAXE = [sys.executable, "-m", "auspex_helcaraxe.cli"]


@pytest.fixture(scope="module")
def demo_mtz(tmp_path_factory) -> Path:
    return write_mtz(demo_dataset(), tmp_path_factory.mktemp("demo") / "demo.mtz")


def run(*args, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([*HELCARAXE, *map(str, args)], capture_output=True, text=True, env=env, **kw)


def test_check_writes_schema_v2_report_and_figures(demo_mtz, tmp_path):
    out = tmp_path / "out"
    assert main(["check", str(demo_mtz), "--out", str(out), "--ice-detector", "both"]) == 0
    report = json.loads((out / "demo.mtz.json").read_text())
    assert report["schema_version"] == 2
    assert set(report["observables"]) == {"I", "F"}
    for kind, entry in report["observables"].items():
        assert entry["columns"] == (["IMEAN", "SIGIMEAN"] if kind == "I" else ["F", "SIGF"])
        assert [r["index"] for r in entry["ranges"]] == list(range(1, 26))
        for r in entry["ranges"]:
            assert set(r) >= {"index", "d_max", "d_min", "status", "probability", "icefinder_score", "flagged"}
            if r["status"] != "predicted":
                assert r["probability"] is None
        r5 = entry["ranges"][4]
        assert r5["icefinder_flagged"] is True
    assert 5 in report["verdict"]["ranges"] and report["verdict"]["iced"] is True
    assert (out / "demo.mtz_I.png").stat().st_size > 10_000
    assert (out / "demo.mtz_F.png").exists()


def test_fail_on_ice_and_json_path(demo_mtz, tmp_path):
    assert main(["check", str(demo_mtz), "--fail-on-ice", "--json", str(tmp_path / "r.json"), "-q"]) == 1
    assert json.loads((tmp_path / "r.json").read_text())["verdict"]["iced"]
    clean = write_mtz(simulate_dataset(11, ice=False, hard_negatives=[], hard_negative_params={}, d_min=2.0),
                      tmp_path / "clean.mtz")
    assert main(["check", str(clean), "--fail-on-ice", "--ice-detector", "icefinder", "-q"]) == 0


def test_published_networks_and_svg(demo_mtz, tmp_path, published_dir):
    out = tmp_path / "svg"
    assert main(["check", str(demo_mtz), "--networks", str(published_dir), "--out", str(out), "--format", "svg",
                 "--explain"]) in (0, 1)
    report = json.loads((out / "demo.mtz.json").read_text())
    net = report["observables"]["I"]["network"]
    assert net["name"] == "published_helcaraxe_iobs" and len(net["sha256"]) == 64
    assert report["observables"]["I"]["decided_by"] == "helcaraxe"
    probabilities = [r["probability"] for r in report["observables"]["I"]["ranges"] if r["status"] == "predicted"]
    assert probabilities and all(0 <= p <= 1 for p in probabilities)
    assert (out / "demo.mtz_F.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize("name, content, message", [
    ("missing.mtz", None, "no such file"),
    ("bad.mtz", b"MTZ \x00\x00garbage", "corrupt"),
    ("x.txt", b"hello", "not an MTZ"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    proc = run("check", path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("helcaraxe:")]
    assert len(lines) == 1 and message in lines[0]


def test_low_resolution_and_unknown_detector(tmp_path, demo_mtz):
    low = write_mtz(simulate_dataset(3, d_min=4.5, ice=False), tmp_path / "low.mtz")
    proc = run("check", low)
    assert proc.returncode == 2 and "too low for any ice range" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("check", demo_mtz, "--ice-detector", "bogus")
    assert proc.returncode == 2 and "unknown ice detector bogus" in proc.stderr


def test_batch_records_failures_and_goes_on(tmp_path, demo_mtz):
    (tmp_path / "broken.mtz").write_bytes(demo_mtz.read_bytes()[:5000])
    proc = run("check", tmp_path / "broken.mtz", demo_mtz, tmp_path / "nope.cif", "-q")
    assert proc.returncode == 2
    assert "demo.mtz: ice in 5" in proc.stdout
    assert "1 of 3 files analysed, 2 failed" in proc.stdout
    assert proc.stdout.count("FAILED") == 2 and "Traceback" not in proc.stderr


def test_no_network_message_names_the_flag(demo_mtz, tmp_path):
    empty = tmp_path / "nets"
    empty.mkdir()
    proc = run("check", demo_mtz, "--networks", empty)
    assert proc.returncode == 0
    assert "no Helcaraxe network is installed" in proc.stdout and "--networks DIR" in proc.stdout


def test_demo_command(tmp_path):
    proc = run("demo", "--out", tmp_path / "d")
    assert proc.returncode == 0, proc.stderr
    assert "VERDICT: ice in range(s) 5" in proc.stdout
    assert (tmp_path / "d" / "demo_ice.mtz.json").exists() and (tmp_path / "d" / "demo_ice.mtz_I.png").exists()


def test_convert_command_output_runs_in_the_runtime(tmp_path, published_dir):
    pytest.importorskip("tensorflow")
    import numpy as np

    from auspex_helcaraxe.network import load_networks

    out = tmp_path / "nets"
    assert main(["convert", str(published_dir / "Helcaraxe_Iobs_model.h5"), str(out)]) == 0
    ours = load_networks(out)["I"]
    theirs = load_networks(published_dir)["I"]
    x = np.load(published_dir / "BAZ2BA_x828_free.mtz.npz")["input_I"][..., None]
    np.testing.assert_allclose(ours.predict(x), theirs.predict(x), atol=1e-5)
    assert ours.card.observable == "I" and len(ours.card.sha256) == 64


def test_training_commands_have_their_own_help():
    for command in ("train", "evaluate"):
        proc = run(command, "--help")
        assert proc.returncode == 0 and "usage:" in proc.stdout, proc.stderr
    proc = run("convert", "/nonexistent.h5", "/tmp/x")
    assert proc.returncode == 2 and "no such file" in proc.stderr
