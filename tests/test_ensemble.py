"""training.ensemble: several networks of one observable exported as one TFLite network (their mean)."""

from __future__ import annotations

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from auspex_helcaraxe.errors import InputError  # noqa: E402
from auspex_helcaraxe.network import load_networks  # noqa: E402
from auspex_helcaraxe.training.ensemble import ensemble, main  # noqa: E402
from auspex_helcaraxe.training.models import build_model, count_macs  # noqa: E402


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    d = tmp_path_factory.mktemp("members")
    paths = []
    for seed in (0, 1):
        m = build_model(seed=seed, name="helcaraxe_iobs")  # same names, as two runs of one recipe
        p = d / f"m{seed}.keras"
        m.save(p)
        paths.append(p)
    return paths


def test_ensemble_is_the_mean_of_its_members_through_tflite(members, tmp_path):
    path = ensemble(members, tmp_path, "I", threshold=0.55)
    nets = load_networks(tmp_path)
    assert set(nets) == {"I"} and nets["I"].path == path
    x = np.random.default_rng(3).standard_normal((7, 80, 80, 1)).astype(np.float32)
    each = [keras.models.load_model(p, compile=False).predict(x, verbose=0).reshape(-1) for p in members]
    assert np.abs(each[0] - each[1]).max() > 1e-3  # two different networks
    np.testing.assert_allclose(nets["I"].predict(x), np.mean(each, axis=0), atol=1e-5)
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["threshold"] == 0.55 and card["observable"] == "I"
    assert card["macs_per_plot"] == 2 * count_macs(build_model())
    assert [m["source"] for m in card["ensemble"]["members"]] == [str(p) for p in members]


def test_one_member_or_a_bad_file_is_refused(members, tmp_path, capsys):
    with pytest.raises(InputError, match="at least two"):
        ensemble(members[:1], tmp_path, "F")
    bad = tmp_path / "bad.keras"
    bad.write_text("not a network")
    assert main([str(tmp_path / "out"), "--observable", "F", "--members", str(members[0]), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
