"""PDB sf-mmCIF files (optionally gzipped, also ``r1abcsf.ent.gz``), read by gemmi."""

from __future__ import annotations

from ..errors import InputError


def sniff(head: bytes) -> bool:
    return b"data_" in head or b"_refln." in head or b"loop_" in head


def read_mtz(path: str, head: bytes = b"", block: str | int | None = None, text: bytes | None = None):
    """The chosen reflection block as a ``gemmi.Mtz`` (default: the first, as the paper used).

    ``text``: the (decompressed) file content when already in memory; parsed without touching ``path``.
    """
    import gemmi

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
        raise InputError(f"{path}: unmerged data; Helcaraxe needs merged intensities or amplitudes")
    return gemmi.CifToMtz().convert_block_to_mtz(rblock)
