"""Finding the reflection files of a survey: files, directories (recursive) and list files."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import InputError

# What a directory walk picks up (case-insensitive): MTZ, PDB sf-mmCIF (plain or gzipped), the
# PDB archive's ``r1abcsf.ent(.gz)`` naming, scalepack, SHELX / XDS ``.hkl``.
PATTERNS = ("*.mtz", "*.mtz.gz", "*-sf.cif", "*.cif", "*.cif.gz", "r*sf.ent", "r*sf.ent.gz",
            "*.sca", "*.sca.gz", "*.hkl", "*.hkl.gz")  # .hkl: SHELX HKLF 4 and XDS_ASCII.HKL
# Files given directly with these suffixes are lists of paths (one per line), not reflection files.
LIST_SUFFIXES = (".txt", ".lst", ".list", ".paths")

_PDB_SF_ENT = re.compile(r"^r([0-9a-z]{4}|pdb_[0-9a-z]{8})sf\.ent(\.gz)?$", re.IGNORECASE)
_SUFFIXES = (".gz", ".mtz", ".cif", ".ent", ".sca", ".hkl")


def is_reflection_name(name: str) -> bool:
    """True when a directory walk should pick up a file called ``name``."""
    low = name.lower()
    return any(fnmatch.fnmatchcase(low, p) for p in PATTERNS)


def is_list_file(path: str | os.PathLike) -> bool:
    """True for a list file: ``@paths.txt`` style or a ``.txt``/``.lst``/``.list``/``.paths`` name."""
    return str(path).startswith("@") or str(path).lower().endswith(LIST_SUFFIXES)


def _walk(directory: Path) -> Iterator[str]:
    for root, dirs, files in os.walk(directory, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if is_reflection_name(name):
                yield os.path.join(root, name)


def _read_list(path: Path, seen_lists: set[str]) -> Iterator[str]:
    key = os.path.abspath(path)
    if key in seen_lists:  # a list naming itself (or a cycle) is read once
        return
    seen_lists.add(key)
    base = path.parent
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the list file ({getattr(exc, 'strerror', None) or exc})") from None
    for line in lines:
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        at = "@" if entry.startswith("@") else ""
        p = Path(entry[len(at):]).expanduser()
        yield from _expand(at + str(p if p.is_absolute() else base / p), seen_lists)


def _expand(text: str, seen_lists: set[str]) -> Iterator[str]:
    if text.startswith("@"):
        yield from _read_list(Path(text[1:]).expanduser(), seen_lists)
        return
    p = Path(text).expanduser()
    if p.is_dir():
        yield from _walk(p)
    elif p.is_file() and is_list_file(p):
        yield from _read_list(p, seen_lists)
    else:  # a file, or a missing path: the scan records why it cannot be read
        yield str(p)


def discover(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Absolute paths of the data sets under ``paths``, in order, each once.

    A directory is walked recursively for :data:`PATTERNS`; a list file (``@file`` or a ``.txt``/
    ``.lst``/``.list``/``.paths`` name) holds one path per line (blank lines and ``#`` comments
    skipped; relative paths are relative to the list file); any other path is taken as a data set,
    whatever its name, so that the reader can say what is wrong with it.
    """
    out: dict[str, None] = {}
    seen_lists: set[str] = set()
    for path in paths:
        for found in _expand(os.fspath(path), seen_lists):
            out.setdefault(os.path.abspath(found), None)
    return list(out)


def entry_id(path: str) -> str:
    """The PDB entry (or data set) id a file name stands for: ``r1abcsf.ent.gz`` → ``1abc``,
    ``1abc-sf.cif`` → ``1abc``, ``1abc.mtz`` → ``1abc``; lower case."""
    name = os.path.basename(path)
    m = _PDB_SF_ENT.match(name)
    if m:
        return m.group(1).lower()
    stem = name.lower()
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if stem.endswith(suffix) and len(stem) > len(suffix):
                stem, changed = stem[: -len(suffix)], True
    return stem[:-3] if stem.endswith("-sf") else stem
