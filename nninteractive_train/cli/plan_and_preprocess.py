"""nnInteractive_plan_and_preprocess: fingerprint, interactive plans and preprocessing for one dataset."""

from __future__ import annotations

import argparse
import sys

from nninteractive_train.cli.common import Parser, add_dataset_argument, add_processes_argument, run_command


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="nnInteractive_plan_and_preprocess", description=__doc__)
    add_dataset_argument(p, "nnU-Net dataset(s) in nnUNet_raw", nargs="+")
    p.add_argument("--config", default=None, help="run config YAML (patch size, global batch, network width)")
    add_processes_argument(p, 2, "fingerprint and preprocessing processes")
    p.add_argument("--no-verify", action="store_true", help="skip nnU-Net's dataset integrity check")
    p.add_argument("overrides", nargs="*", help="config overrides, section.key=value")
    return p


def _run(args: argparse.Namespace) -> int:
    from nninteractive_train.config import load_config
    from nninteractive_train.data.paths import dataset_id_of_ref
    from nninteractive_train.planning.planner import plan_and_preprocess

    cfg = load_config(args.config, args.overrides)
    for ref in args.dataset_id:
        d = dataset_id_of_ref(ref, var="nnUNet_raw")
        plans = plan_and_preprocess(d, cfg, args.num_processes, verify=not args.no_verify)
        conf = plans["configurations"][cfg.model.configuration]
        print(f"dataset {d}: configuration {cfg.model.configuration} patch {conf['patch_size']} "
              f"global batch {conf['batch_size']} in {cfg.plans_identifier}.json")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
