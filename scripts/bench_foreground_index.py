"""The per-case foreground index (``class_locations`` in each preprocessed .pkl, unpickled on every load of the
case): nnU-Net's DefaultPreprocessor against nnInteractivePreprocessor on a dense-instance volume.

    python scripts/bench_foreground_index.py [--size 160] [--instances 500]

Prints a Markdown table: .pkl size, unpickle time per case load, time to build the index.
"""

from __future__ import annotations

import argparse
import pickle
import time

import numpy as np
from scipy import ndimage


def instances(size: int, n: int, seed: int = 0) -> np.ndarray:
    """(1, size, size, size) int16 label map tiled by ``n`` cell-like instances (nearest-seed regions)."""
    rng = np.random.default_rng(seed)
    seeds = np.zeros((size,) * 3, np.int32)
    seeds[tuple(rng.integers(0, size, (n, 3)).T)] = np.arange(1, n + 1)
    _, idx = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    return seeds[tuple(idx)][None].astype(np.int16)


def main(argv: list[str] | None = None) -> None:
    from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor

    from nninteractive_train.planning.preprocessor import nnInteractivePreprocessor

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--instances", type=int, default=500)
    args = p.parse_args(argv)
    seg = instances(args.size, args.instances)
    labels = sorted(int(v) for v in np.unique(seg) if v)
    print(f"{args.size}³ volume, {len(labels)} instances\n")
    print("| preprocessor | .pkl MiB | unpickle ms per case load | build s |\n|---|---:|---:|---:|")
    for name, cls in (("nnU-Net DefaultPreprocessor", DefaultPreprocessor),
                      ("nnInteractivePreprocessor", nnInteractivePreprocessor)):
        t0 = time.perf_counter()
        locs = cls._sample_foreground_locations(seg, labels, 1234)
        build = time.perf_counter() - t0
        blob = pickle.dumps({"class_locations": locs})
        t0 = time.perf_counter()
        for _ in range(5):
            pickle.loads(blob)
        load = (time.perf_counter() - t0) / 5
        print(f"| {name} | {len(blob) / 2**20:.1f} | {load * 1e3:.1f} | {build:.2f} |")


if __name__ == "__main__":
    main()
