"""nnInteractive_build_collection: build a dataset list into one merged nnU-Net raw dataset with instance labels
and a collection manifest (see dataset_lists/README.md)."""

from __future__ import annotations

import argparse
import logging
import sys

from nninteractive_train.cli.common import Parser, add_dataset_argument, add_processes_argument, run_command


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="nnInteractive_build_collection", description=__doc__)
    p.add_argument("list_file", help="dataset list YAML")
    add_dataset_argument(p, "the merged dataset to write; a name DatasetXXX_Name also sets --name")
    p.add_argument("-n", "--name", default=None, help="dataset name (default: the list's 'name')")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out bad cases (listed in nnInteractive_skipped.json) instead of stopping")
    p.add_argument("--link-images", action="store_true",
                   help="hard-link .nii.gz source images instead of copying them (saves disk)")
    add_processes_argument(p, 1, "worker processes")
    p.add_argument("--evaluation", action="store_true",
                   help="build only the datasets marked evaluation_only (held-out test sets), not the training ones")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from nninteractive_train.cli.make_synthetic import id_and_name
    from nninteractive_train.data.build import build_collection

    dataset_id, name = (args.dataset_id, args.name) if isinstance(args.dataset_id, int) else \
        id_and_name(args.dataset_id, args.name)
    res = build_collection(args.list_file, dataset_id, name=name, skip_bad=args.skip_bad,
                           num_processes=args.num_processes, link_images=args.link_images,
                           progress=not args.quiet, evaluation=args.evaluation)
    m = res.manifest
    print(f"built {res.folder}: {m.n_cases} cases, {m.n_objects} objects from {len(m.datasets)} datasets "
          f"({res.converted} converted, {res.reused} reused, {len(res.skipped)} skipped)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
