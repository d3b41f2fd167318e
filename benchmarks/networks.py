"""Time TFLite inference of our Helcaraxe networks against the published ones (not a test).

    python benchmarks/networks.py [--published ../shared/reference/published] [--networks DIR] [--batch 16] [--threads 1]

Reports the median time per batch of standardised random plots and per plot, with the MAC count
from the model cards (ours) or the known published figure (486,333,920 MACs, from
``training.models.count_macs`` on ``Helcaraxe_Fobs_model.h5``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _timing import median_time

from auspex_helcaraxe.network import Network, load_networks

PUBLISHED_MACS = 486_333_920


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--published", default=str(Path(__file__).resolve().parents[2] / "shared" / "reference" / "published"))
    ap.add_argument("--networks", default=None, help="our networks from this directory (default: the shipped ones)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=15)
    a = ap.parse_args()
    x = np.random.default_rng(0).standard_normal((a.batch, 80, 80, 1)).astype(np.float32)
    sets = {"ours": load_networks(a.networks)}
    if Path(a.published).is_dir():
        sets["published"] = load_networks(a.published)
    for name, nets in sets.items():
        for kind, net in sorted(nets.items()):
            net = Network(net.path, net.card, num_threads=a.threads)
            t = median_time(lambda net=net: net.predict(x), a.repeat)
            macs = net.card.extra.get("macs_per_plot", PUBLISHED_MACS if name == "published" else None)
            print(f"{name:9s} {kind}: {t * 1e3:8.2f} ms per batch of {a.batch}, {t / a.batch * 1e3:6.2f} ms per plot"
                  f"  ({macs / 1e6:.1f} MMAC per plot, {a.threads} thread(s))")


if __name__ == "__main__":
    main()
