"""PDB sf-mmCIF files (optionally gzipped, also ``r1abcsf.ent.gz``), read by gemmi."""

from __future__ import annotations

import re

import numpy as np

from ..errors import InputError
from .options import ReadOptions

CHUNK_OVER = 12 << 20  # texts above this (~300 k reflections) are parsed in pieces (below: whole, faster)
CHUNK_BYTES = 2 << 20  # larger texts are parsed in pieces of the _refln loop: a gemmi document of 1 M rows
# of strings took ~550 MB; in pieces the worker stays small (docs/scan.md)
_LOOP = re.compile(rb"(?m)^loop_[ \t]*\r?\n(?:[ \t]*_refln\.\S+[ \t]*\r?\n)+")
_AFTER = re.compile(rb"(?m)^[ \t]*(?:_|loop_|data_|save_|#|;)")
_NEXT = re.compile(rb"(?m)^[ \t]*([^#\s]\S*)")
_DATA = re.compile(rb"(?m)^data_")


def sniff(head: bytes) -> bool:
    return b"data_" in head or b"_refln." in head or b"loop_" in head


def read_mtz(path: str, head: bytes = b"", text: bytes | None = None, options: ReadOptions = ReadOptions()):
    """The chosen reflection block (``options.block``; default: the first, as the paper used) as a
    ``gemmi.Mtz``, or as the ``gemmi.ReflnBlock`` itself when it is unmerged (merged by the caller).

    ``text``: the (decompressed) file content when already in memory; parsed without touching ``path``.
    """
    import gemmi

    block = options.block
    if text is not None and (block is None or str(block) == "0") and len(text) > CHUNK_OVER:
        chunked = _chunked_mtz(text)
        if chunked is not None:
            return chunked
    doc = gemmi.cif.read(path) if text is None else gemmi.cif.read_string(text)
    blocks = gemmi.as_refln_blocks(doc)
    if not blocks:
        raise InputError(f"{path}: no reflection data (_refln) in the mmCIF file")
    if block is None:
        rblock = blocks[0]
    elif isinstance(block, int) or str(block).isdigit():
        i = int(block)
        if not 0 <= i < len(blocks):
            raise InputError(f"{path}: block {i} requested, the file has {len(blocks)} reflection blocks")
        rblock = blocks[i]
    else:
        names = [b.block.name for b in blocks]
        if block not in names:
            raise InputError(f"{path}: no block {block!r} (blocks: {', '.join(names)})")
        rblock = blocks[names.index(block)]
    if not rblock.default_loop:
        raise InputError(f"{path}: no reflection data (_refln loop) in block {rblock.block.name}")
    if rblock.is_unmerged():
        return rblock
    return gemmi.CifToMtz().convert_block_to_mtz(rblock)


def _chunked_mtz(text: bytes):
    """The first block's ``gemmi.Mtz`` parsed in pieces of its ``_refln`` loop (same result as the
    whole parse), or None where the file is not laid out simply enough (the caller parses it whole)."""
    import gemmi

    m = _LOOP.search(text)
    if m is None or len(_DATA.findall(text, 0, m.start())) != 1:
        return None
    end_m = _AFTER.search(text, m.end())
    end = end_m.start() if end_m else len(text)
    next_block = _DATA.search(text, end)
    head, tags, body = text[: m.start()], text[m.start(): m.end()], text[m.end(): end]
    tail = text[end: next_block.start() if next_block else len(text)]
    nxt = _NEXT.search(tail)  # after comments and blank lines the loop must really be over
    if nxt is not None and not nxt.group(1).startswith((b"_", b"loop_", b"data_", b"save_")):
        return None
    parts, labels, first = [], None, None
    pos = 0
    while pos < len(body):
        stop = body.find(b"\n", min(pos + CHUNK_BYTES, len(body)))
        stop = len(body) if stop < 0 else stop + 1
        try:
            rblocks = gemmi.as_refln_blocks(gemmi.cif.read_string(head + tags + body[pos:stop] + tail))
            if len(rblocks) != 1 or not rblocks[0].default_loop or rblocks[0].is_unmerged():
                return None
            mtz = gemmi.CifToMtz().convert_block_to_mtz(rblocks[0])
        except (RuntimeError, ValueError, IndexError):
            return None
        cols = [(c.label, c.type) for c in mtz.columns]
        if labels is None:
            labels, first = cols, mtz
        elif cols != labels:
            return None
        parts.append(np.array(mtz, copy=True))
        pos = stop
    if first is None:
        return None
    first.set_data(np.concatenate(parts) if len(parts) > 1 else parts[0])
    return first
