"""nnInteractive_plan_and_preprocess: fingerprint, interactive plans and preprocessing for one dataset."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="nnInteractive_plan_and_preprocess", description=__doc__)
    p.add_argument("-d", "--dataset-id", type=int, required=True, nargs="+", help="nnU-Net dataset id(s)")
    p.add_argument("--config", default=None, help="run config YAML (patch size, global batch, network width)")
    p.add_argument("-np", "--num-processes", type=int, default=2, help="preprocessing processes (default 2)")
    p.add_argument("--no-verify", action="store_true", help="skip nnU-Net's dataset integrity check")
    p.add_argument("overrides", nargs="*", help="config overrides, section.key=value")
    args = p.parse_args(argv)
    from nninteractive_train.config import load_config
    from nninteractive_train.planning.planner import plan_and_preprocess

    cfg = load_config(args.config, args.overrides)
    for d in args.dataset_id:
        plans = plan_and_preprocess(d, cfg, args.num_processes, verify=not args.no_verify)
        conf = plans["configurations"][cfg.model.configuration]
        print(f"dataset {d}: configuration {cfg.model.configuration} patch {conf['patch_size']} "
              f"global batch {conf['batch_size']} in {cfg.plans_identifier}.json")


if __name__ == "__main__":
    main()
