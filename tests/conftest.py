"""Shared fixtures. Tests that need ``../shared`` use the ``shared_dir`` fixture (or
``@pytest.mark.shared``): they skip with a visible reason when it is missing, and fail when the
``CI`` environment variable is set (CI must run them)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HELCARAXE_SHARED", REPO.parent / "shared"))


def _require_shared() -> Path:
    if (SHARED / "reference").is_dir() and (SHARED / "data" / "real").is_dir():
        return SHARED
    msg = f"shared material not found at {SHARED} (set HELCARAXE_SHARED or check out ../shared)"
    if os.environ.get("CI"):
        pytest.fail(msg + " -- required under CI")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared``; skips (fails under CI) when it is missing."""
    return _require_shared()


@pytest.fixture(scope="session")
def real_data(shared_dir) -> dict[str, Path]:
    """Real data sets by file name (``5usx.mtz`` → path)."""
    root = shared_dir / "data" / "real"
    return {p.name: p for p in root.glob("*/*") if p.is_file() and p.suffix != ".tsv"}


@pytest.fixture(scope="session")
def published_dir(shared_dir) -> Path:
    return shared_dir / "reference" / "published"


@pytest.fixture(scope="session")
def published_reference(published_dir) -> dict:
    return json.loads((published_dir / "reference.json").read_text())


@pytest.fixture
def network_copy(tmp_path):
    """``network_copy(name, **card)``: the shipped networks copied into ``tmp_path / name`` with these
    keys of both cards replaced; returns the directory (for ``AnalysisOptions(networks=...)``)."""
    import shutil

    from auspex_helcaraxe.network import default_network_dir

    def make(name: str, **card) -> Path:
        d = tmp_path / name
        d.mkdir()
        for p in default_network_dir().glob("helcaraxe_*obs.*"):
            shutil.copy(p, d / p.name)
        for path in d.glob("*.json"):
            path.write_text(json.dumps({**json.loads(path.read_text()), **card}))
        return d

    return make


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "shared_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.shared)
