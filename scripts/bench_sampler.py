"""Benchmark the collection manifest and the object sampler at the paper's scale (issue 4 budgets).

A generated manifest the size of the nnInteractive collection (120 datasets, 64,518 cases, 717,148 objects, up to
20 SuperVoxels per case) is saved and loaded, the sampler is built on it, and draws are timed. Budgets: building
the sampler ≤ 10 s, ≥ 100,000 draws/s in one process, peak memory (RSS) ≤ 1 GB. Prints a markdown table.

    OMP_NUM_THREADS=1 python scripts/bench_sampler.py [--draws 2000000] [--seed 0]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nninteractive_train.data.manifest import Manifest
from nninteractive_train.sampler import ObjectSampler
from nninteractive_train.sampler.fake import fake_manifest
from nninteractive_train.sampler.report import sampling_report


def _rss_mb() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=2_000_000, help="vectorised draws to time (default 2,000,000)")
    p.add_argument("--single", type=int, default=300_000, help="single draw() calls to time (default 300,000)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rows = []

    t = time.perf_counter()
    man = fake_manifest(rng=rng)
    rows.append(("generate manifest (120 datasets, 64,518 cases, 717,148 objects)", time.perf_counter() - t, "s", None))
    sv = rng.integers(0, 21, man.n_cases)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "manifest.npz"
        t = time.perf_counter()
        man.save(path)
        rows.append(("save manifest (.npz)", time.perf_counter() - t, "s", None))
        size_mb = path.stat().st_size / 2**20
        t = time.perf_counter()
        man = Manifest.load(path)
        load_s = time.perf_counter() - t
        rows.append((f"load + validate manifest ({size_mb:.0f} MiB on disk)", load_s, "s", None))

    t = time.perf_counter()
    sampler = ObjectSampler(man, seed=args.seed, supervoxel_counts=sv)
    build_s = time.perf_counter() - t
    rows.append(("build sampler", build_s, "s", ("<=", 10.0)))
    rows.append(("load manifest + build sampler", load_s + build_s, "s", ("<=", 10.0)))

    sampler.draw_many(10_000)  # warm up
    t = time.perf_counter()
    batch = sampler.draw_many(args.draws)
    dt = time.perf_counter() - t
    rows.append((f"draw_many: {args.draws:,} draws", len(batch) / dt, "draws/s", (">=", 100_000.0)))

    t = time.perf_counter()
    for _ in range(args.single):
        sampler.draw()
    dt = time.perf_counter() - t
    rows.append((f"draw(): {args.single:,} single calls (Draw objects)", args.single / dt, "draws/s",
                 (">=", 100_000.0)))

    t = time.perf_counter()
    state = sampler.state_dict()
    fresh = ObjectSampler(man, seed=args.seed, supervoxel_counts=sv)
    fresh.load_state_dict(state)
    rows.append(("restore from state_dict (new sampler + seek)", time.perf_counter() - t, "s", None))

    t = time.perf_counter()
    sampling_report(man, sv, draws=0)
    rows.append(("sampling report (exact shares, every case)", time.perf_counter() - t, "s", None))
    rows.append(("peak memory of this process (RSS)", _rss_mb(), "MiB", ("<=", 1024.0)))

    ok_all = True
    print("| measurement | value | budget | ok |")
    print("|---|---|---|---|")
    for name, value, unit, budget in rows:
        fmt = f"{value:,.0f} {unit}" if value >= 1000 else f"{value:.3f} {unit}"
        if budget is None:
            print(f"| {name} | {fmt} | | |")
            continue
        op, lim = budget
        ok = value <= lim if op == "<=" else value >= lim
        ok_all &= ok
        print(f"| {name} | {fmt} | {op} {lim:,.0f} {unit} | {'yes' if ok else 'NO'} |")
    print(f"\nall budgets met: {'yes' if ok_all else 'NO'} (numpy {np.__version__}, one process)")
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
