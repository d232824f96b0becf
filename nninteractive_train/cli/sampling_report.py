"""nnInteractive_sampling_report: the expected share of training samples per dataset, object type and case of a
collection (exact, from the sampling formula), SuperVoxel share and objects per case; with --draws, empirical
frequencies from the sampler beside them."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from nninteractive_train.cli.common import Parser, run_command


def _supervoxel_folder(dataset, plans, configuration) -> Path | None:
    from nninteractive_train.data.paths import find_dataset
    from nninteractive_train.data.supervoxels.generate import INDEX_NAME, SUPERVOXEL_DIR
    from nninteractive_train.paths import SetupError

    try:
        base = find_dataset(dataset, var="nnUNet_preprocessed")
    except SetupError:  # not preprocessed (yet): the report goes on without SuperVoxels
        return None
    cands = sorted(p for p in base.iterdir() if (p / SUPERVOXEL_DIR / INDEX_NAME).is_file()
                   and (plans is None or p.name.startswith(plans + "_"))
                   and (configuration is None or p.name.endswith("_" + configuration)))
    if len(cands) > 1:
        raise SetupError(f"SuperVoxels in several preprocessed folders: {', '.join(c.name for c in cands)}", base,
                         hint="choose one with -p / -c")
    return cands[0] if cands else None


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="nnInteractive_sampling_report", description=__doc__)
    p.add_argument("-d", "--dataset-id", required=True, metavar="ID_OR_NAME",
                   help="dataset id (990), name (Dataset990_Synthetic), dataset folder or manifest file")
    p.add_argument("--draws", type=int, default=0, help="also draw N samples and show empirical frequencies")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler stream for --draws")
    p.add_argument("--supervoxel-prob", type=float, default=0.2, help="SuperVoxel probability (default 0.2)")
    p.add_argument("--object-size-power", type=float, default=0.0,
                   help="objects of a case drawn ∝ voxels^POWER (the run's data.object_size_power; default 0, the "
                        "paper's uniform draw)")
    p.add_argument("-p", "--plans", default=None, help="plans identifier of the preprocessed folder with SuperVoxels")
    p.add_argument("-c", "--configuration", default=None, help="configuration of that folder")
    p.add_argument("--json", action="store_true", help="print the full report (every case) as JSON")
    p.add_argument("--top", type=int, default=10, help="cases shown at each end in the markdown (default 10)")
    return p


def _run(args: argparse.Namespace) -> int:
    from nninteractive_train.data.manifest import Manifest, find_manifest
    from nninteractive_train.data.supervoxels import load_supervoxel_counts
    from nninteractive_train.errors import UsageError
    from nninteractive_train.sampler.report import format_markdown, sampling_report

    if not 0 <= args.supervoxel_prob <= 1:
        raise UsageError(f"--supervoxel-prob must be in [0, 1], got {args.supervoxel_prob}")
    if not math.isfinite(args.object_size_power):
        raise UsageError(f"--object-size-power must be a finite number, got {args.object_size_power}")
    if args.draws < 0:
        raise UsageError(f"--draws must be >= 0, got {args.draws}")
    man_file = find_manifest(args.dataset_id)
    manifest = Manifest.load(man_file)
    sv_folder = _supervoxel_folder(args.dataset_id, args.plans, args.configuration)
    counts = load_supervoxel_counts(sv_folder, manifest.case_ids.tolist()) if sv_folder else None
    report = sampling_report(manifest, counts, supervoxel_prob=args.supervoxel_prob, draws=args.draws,
                             seed=args.seed, size_power=args.object_size_power)
    report["manifest"] = str(man_file)
    report["supervoxel_folder"] = str(sv_folder) if sv_folder else None
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(format_markdown(report, top=args.top), end="")
        print(f"\nmanifest: {man_file}; SuperVoxels: {sv_folder / 'supervoxels' if sv_folder else 'none found'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
