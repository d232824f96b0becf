"""nnInteractive_build_collection: build a dataset list into one merged nnU-Net raw dataset with instance labels
and a collection manifest (see dataset_lists/README.md)."""

from __future__ import annotations

import argparse
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nnInteractive_build_collection", description=__doc__)
    p.add_argument("list_file", help="dataset list YAML")
    p.add_argument("-d", "--dataset-id", type=int, required=True, help="nnU-Net id of the merged dataset")
    p.add_argument("-n", "--name", default=None, help="dataset name (default: the list's 'name')")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out bad cases (listed in nnInteractive_skipped.json) instead of stopping")
    p.add_argument("--link-images", action="store_true",
                   help="hard-link .nii.gz source images instead of copying them (saves disk)")
    p.add_argument("-np", "--num-processes", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--evaluation", action="store_true",
                   help="build only the datasets marked evaluation_only (held-out test sets), not the training ones")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from nninteractive_train.data.build import build_collection
    from nninteractive_train.data.case_io import CaseError
    from nninteractive_train.data.dataset_list import DatasetListError

    try:
        res = build_collection(args.list_file, args.dataset_id, name=args.name, skip_bad=args.skip_bad,
                               num_processes=args.num_processes, link_images=args.link_images,
                               progress=not args.quiet, evaluation=args.evaluation)
    except (CaseError, DatasetListError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    m = res.manifest
    print(f"built {res.folder}: {m.n_cases} cases, {m.n_objects} objects from {len(m.datasets)} datasets "
          f"({res.converted} converted, {res.reused} reused, {len(res.skipped)} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
