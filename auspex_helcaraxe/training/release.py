"""The shipped networks' recipe as one seeded command: the members, the cards' thresholds and rules from
the clean real data sets, and the I+F combiner (steps 1-3 of docs/training.md, in that order).

    python -m auspex_helcaraxe.training.release OUT [--real ../shared/data/real] [--seed 3] [--print]

Each step is the module's own command line with the arguments below (the one place they are written;
docs/training.md quotes ``--print``'s output). A step that fails stops the command with its exit status.
On another CPU TensorFlow's oneDNN kernels give other networks than the shipped files (training.md).
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import time
from pathlib import Path

from . import data as tdata

SEED = 3
TRAIN = ("--members", "2", "--n-datasets", "4000", "--epochs", "3", "--transfer-epochs", "2", "--threads", "1",
         "--no-int8-check", "--weak-label", "F=0.15,I=0.1", "--real-negative-weight", "1.5", "--vary-backgrounds",
         "--clean-twins")
THRESHOLDS = ("--controls", "--aggregate", "I=mean,F=min", "--pair", "I=0.25", "--pair-steps", "I=200:0.25/0:0.35",
              "--set-threshold", "--sensitivity", "200", "--sparse-threshold", "F=200:0.7,I=150:0.7",
              "--dense-threshold", "I=800:0.35")
JOINT = ("--weak-label", "0.15", "--n-sim", "2000", "--n-val", "1000", "--repeats", "40")


def steps(out: str, real: str, seed: int = SEED) -> list[tuple[str, list[str]]]:
    """``[(module, argv), ...]``: the three commands of the recipe for output directory ``out``."""
    return [("train", [out, "--seed", str(seed), "--backgrounds", real, *TRAIN]),
            ("real_thresholds", ["--real", real, "--networks", out, *THRESHOLDS, "--cards", out]),
            ("joint", ["--real", real, "--networks", out, *JOINT, "--out", str(Path(out) / "helcaraxe_joint.json")])]


def command_line(module: str, argv: list[str]) -> str:
    return f"python -m auspex_helcaraxe.training.{module} " + " ".join(shlex.quote(a) for a in argv)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m auspex_helcaraxe.training.release", description=__doc__.split("\n")[0])
    ap.add_argument("out", help="directory for the networks, their cards and the combiner")
    ap.add_argument("--real", default=None, help="real data directory with labels.tsv (default ../shared/data/real)")
    ap.add_argument("--seed", type=int, default=SEED, help=f"seed of the first member (default {SEED}, the shipped one)")
    ap.add_argument("--print", action="store_true", help="print the three commands and run nothing")
    a = ap.parse_args(argv)
    if a.print:
        print("\n".join(command_line(m, args) for m, args in steps(a.out, a.real or "../shared/data/real", a.seed)))
        return 0
    real = tdata.require_real_dir(ap, a.real)
    if not (real / "labels.tsv").is_file():
        ap.exit(2, f"error: {real}: no labels.tsv (the real data directory, --real)\n")
    todo = steps(a.out, str(real), a.seed)
    t0 = time.time()
    for k, (module, args) in enumerate(todo, 1):
        print(f"release step {k}/3: {command_line(module, args)}", file=sys.stderr, flush=True)
        t = time.time()
        rc = importlib.import_module(f"{__package__}.{module}").main(args)
        print(f"release step {k}/3 done in {time.time() - t:.0f} s (exit {rc})", file=sys.stderr, flush=True)
        if rc:
            return int(rc)
    print(f"release: {a.out} in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
