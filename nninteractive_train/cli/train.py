"""nnInteractive_train: train an interactive model (single process, torchrun, or srun under SLURM).

Without --output the run goes where nnU-Net puts its runs:
$nnUNet_results/DatasetXXX_Name/nnInteractiveTrainer__<plans>__<configuration>/fold_<fold>."""

from __future__ import annotations

import argparse
import sys

from nninteractive_train.cli.common import Parser, add_dataset_argument, run_command


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="nnInteractive_train", description=__doc__)
    add_dataset_argument(p, "nnU-Net dataset in nnUNet_preprocessed")
    p.add_argument("--config", default=None, help="run config YAML (default: the paper's settings)")
    p.add_argument("--output", default=None,
                   help="run folder (created; holds config, logs, checkpoints); default: nnU-Net's "
                        "$nnUNet_results/DatasetXXX_Name/nnInteractiveTrainer__<plans>__<configuration>/fold_<fold>")
    p.add_argument("--resume", action="store_true", help="continue the run from its checkpoint_latest.pth")
    p.add_argument("--resume-if-exists", action="store_true",
                   help="resume when the run folder already holds a run, else start one (for requeued SLURM jobs)")
    p.add_argument("--pretrained", default=None, help="start from the weights of an nnInteractive model folder")
    p.add_argument("--allow-config-change", nargs="+", default=[], metavar="KEY",
                   help="on resume, keys whose value may differ from the run folder's config.yaml (e.g. "
                        "training.num_epochs); any other difference is an error")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is present")
    p.add_argument("overrides", nargs="*", help="config overrides, section.key=value (e.g. training.num_epochs=10)")
    return p


def run_folder(args: argparse.Namespace):
    """The run folder: ``--output``, else nnU-Net's layout for the given config (the one the run started with:
    a resume names the same ``--config`` and overrides, or relies on the defaults)."""
    from pathlib import Path

    if args.output is not None:
        return Path(args.output)
    from nninteractive_train.config import load_config
    from nninteractive_train.layout import default_run_dir

    return default_run_dir(args.dataset_id, load_config(args.config, args.overrides))


def _run(args: argparse.Namespace) -> int:
    from nninteractive_train.config import load_config
    from nninteractive_train.data.paths import dataset_id_of_ref
    from nninteractive_train.paths import SetupError
    from nninteractive_train.training.launch import train
    from nninteractive_train.training.loop import TrainingInterrupted

    # --allow-config-change KEY... swallows the key=value overrides that follow it: hand those back
    args.overrides += [a for a in args.allow_config_change if "=" in a]
    args.allow_config_change = [a for a in args.allow_config_change if "=" not in a]
    dataset_id = dataset_id_of_ref(args.dataset_id, var="nnUNet_preprocessed")
    output = run_folder(args)
    saved = output / "config.yaml"
    resume = args.resume or (args.resume_if_exists and saved.exists())
    if resume and args.pretrained:
        raise SetupError("--pretrained starts a new run; it cannot be combined with --resume")
    # on resume the run folder's config.yaml is the config; one given again must equal it (training/launch.py)
    cfg = (None if resume and args.config is None and not args.overrides else
           load_config(saved if resume and args.config is None and saved.is_file() else args.config, args.overrides))
    if args.output is None:
        print(f"run folder: {output}", flush=True)
    try:
        train(dataset_id, cfg, output, resume=resume, pretrained=args.pretrained,
              use_cuda=False if args.cpu else None, allow_config_change=args.allow_config_change)
    except TrainingInterrupted as e:  # a requested stop, not an error: the checkpoint is saved
        print(f"nnInteractive_train: stopped by signal {e.args[0]} after saving checkpoint_latest.pth",
              file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), _run, argv)


if __name__ == "__main__":
    sys.exit(main())
