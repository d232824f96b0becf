"""Expected sampling shares of a dataset list before any of its data exists.

Builds a stand-in manifest of the collection's shape (``nninteractive_train.sampler.standin``: one dataset per
training entry, its published image count as cases, generated objects; evaluation_only entries left out, as the
build leaves them out) and runs the sampling report on it. A dataset's share is sqrt(cases) x weight over the sum;
objects and SuperVoxels only split a dataset's share among its cases and objects. Prints a markdown table sorted by
share: the ``--top`` largest, every dataset whose weight is not 1, and the ``--bottom`` smallest (``--all``: all).

    python scripts/collection_standin.py [dataset_lists/nninteractive_v1.yaml] [--top 10] [--bottom 3] [--all]
        [--out standin.npz]     # then: nnInteractive_sampling_report -d standin.npz (the full report)
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def share_table(report: dict, images: dict[str, int], *, top: int = 10, bottom: int = 3,
                show_all: bool = False) -> str:
    """Markdown rows of ``report["datasets"]`` by decreasing expected share (see the module docstring)."""
    rows = sorted(report["datasets"], key=lambda r: (-r["expected_share"], r["name"]))
    keep = set(range(len(rows))) if show_all else (
        set(range(min(top, len(rows)))) | set(range(max(0, len(rows) - bottom), len(rows)))
        | {i for i, r in enumerate(rows) if r["weight"] != 1.0})
    out = ["| rank | dataset | images | cases | weight | sqrt(cases) x weight | expected share |",
           "|---:|---|---:|---:|---:|---:|---:|"]
    last = -1
    for i, r in enumerate(rows):
        if i not in keep:
            continue
        if i > last + 1:
            out.append(f"| … | ({i - last - 1} datasets) | | | | | |")
        out.append(f"| {i + 1} | {r['name']} | {images.get(r['name'], '')} | {r['cases']} | {r['weight']:g} | "
                   f"{math.sqrt(r['drawable_cases']) * r['weight']:.2f} | {100 * r['expected_share']:.3f} % |")
        last = i
    if last < len(rows) - 1:
        out.append(f"| … | ({len(rows) - 1 - last} datasets) | | | | | |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("list_file", nargs="?", default=str(REPO / "dataset_lists" / "nninteractive_v1.yaml"))
    p.add_argument("--seed", type=int, default=0, help="seed of the generated objects (shares do not depend on it)")
    p.add_argument("--top", type=int, default=10, help="largest shares shown (default 10)")
    p.add_argument("--bottom", type=int, default=3, help="smallest shares shown (default 3)")
    p.add_argument("--all", action="store_true", help="show every dataset")
    p.add_argument("--out", default=None,
                   help="also save the stand-in manifest (.npz), for nnInteractive_sampling_report -d FILE")
    args = p.parse_args(argv)
    from nninteractive_train.data.dataset_list import DatasetListError, load_dataset_list
    from nninteractive_train.sampler.report import sampling_report
    from nninteractive_train.sampler.standin import stand_in_manifest

    try:
        spec = load_dataset_list(args.list_file)
        manifest = stand_in_manifest(spec, seed=args.seed)
    except (DatasetListError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = sampling_report(manifest)
    held_out = len(spec.selected(evaluation=True))
    print(f"Stand-in for {spec.path.name}: {len(manifest.datasets)} training datasets, {manifest.n_cases:,} cases "
          f"(published images x channels), {manifest.n_objects:,} generated objects; {held_out} evaluation-only "
          f"datasets left out.\n")
    images = {d.name: d.info.get("images", "") for d in spec.selected()}
    print(share_table(report, images, top=args.top, bottom=args.bottom, show_all=args.all), end="")
    if args.out:
        print(f"\nstand-in manifest: {manifest.save(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
