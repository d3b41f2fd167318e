"""training.release: the shipped recipe as one command (its steps, their order, stop on failure, and the
commands docs/training.md shows). No TensorFlow: the steps' modules are replaced by recorders."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

from auspex_helcaraxe.training import release

DOCS = Path(__file__).resolve().parents[1] / "docs" / "training.md"


def test_training_md_shows_exactly_what_release_runs(capsys):
    assert release.main(["OUT", "--print"]) == 0
    printed = capsys.readouterr().out.strip()
    blocks = re.findall(r"```\n(.*?)```", DOCS.read_text(), flags=re.S)
    assert printed in [b.strip() for b in blocks], "docs/training.md lists the commands of `release --print`"
    lines = printed.splitlines()
    assert [ln.split()[2] for ln in lines] == [f"auspex_helcaraxe.training.{m}" for m in ("train", "real_thresholds", "joint")]
    assert "--seed 3" in lines[0] and "--cards OUT" in lines[1] and "--out OUT/helcaraxe_joint.json" in lines[2]


def test_release_runs_the_three_steps_in_order_and_stops_at_a_failure(monkeypatch, tmp_path, capsys):
    real = tmp_path / "real"
    real.mkdir()
    (real / "labels.tsv").write_text("path\tlabel\n")
    calls = []

    def fake(rc_of):
        def module(name):
            step = name.rsplit(".", 1)[1]
            return types.SimpleNamespace(main=lambda argv: calls.append((step, argv)) or rc_of.get(step, 0))
        return module

    monkeypatch.setattr(release.importlib, "import_module", fake({}))
    assert release.main([str(tmp_path / "OUT"), "--real", str(real), "--seed", "5"]) == 0
    assert [s for s, _ in calls] == ["train", "real_thresholds", "joint"]
    assert calls == [(m, argv) for m, argv in release.steps(str(tmp_path / "OUT"), str(real), 5)]
    assert calls[0][1][:3] == [str(tmp_path / "OUT"), "--seed", "5"]
    calls.clear()
    monkeypatch.setattr(release.importlib, "import_module", fake({"real_thresholds": 2}))
    assert release.main([str(tmp_path / "OUT"), "--real", str(real)]) == 2
    assert [s for s, _ in calls] == ["train", "real_thresholds"]
    assert "release step 2/3 done" in capsys.readouterr().err
    calls.clear()
    with pytest.raises(SystemExit) as e:  # no labelled real data: one line, exit 2, nothing run
        release.main([str(tmp_path / "OUT"), "--real", str(tmp_path / "missing")])
    assert e.value.code == 2 and not calls
    assert "labels.tsv" in capsys.readouterr().err
