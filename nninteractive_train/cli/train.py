"""nnInteractive_train: train an interactive model (single process, torchrun, or srun under SLURM)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="nnInteractive_train", description=__doc__)
    p.add_argument("-d", "--dataset-id", type=int, required=True, help="nnU-Net dataset id")
    p.add_argument("--config", default=None, help="run config YAML (default: the paper's settings)")
    p.add_argument("--output", required=True, help="run folder (created; holds config, logs, checkpoints)")
    p.add_argument("--resume", action="store_true", help="continue the run in --output from checkpoint_latest.pth")
    p.add_argument("--resume-if-exists", action="store_true",
                   help="resume when --output already holds a run, else start one (for requeued SLURM jobs)")
    p.add_argument("--pretrained", default=None, help="start from the weights of an nnInteractive model folder")
    p.add_argument("--allow-config-change", nargs="+", default=[], metavar="KEY",
                   help="on resume, keys whose value may differ from the run folder's config.yaml (e.g. "
                        "training.num_epochs); any other difference is an error")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even if a GPU is present")
    p.add_argument("overrides", nargs="*", help="config overrides, section.key=value (e.g. training.num_epochs=10)")
    args = p.parse_args(argv)
    # --allow-config-change KEY... swallows the key=value overrides that follow it: hand those back
    args.overrides += [a for a in args.allow_config_change if "=" in a]
    args.allow_config_change = [a for a in args.allow_config_change if "=" not in a]

    from pathlib import Path

    from nninteractive_train.config import ConfigError, load_config
    from nninteractive_train.paths import SetupError
    from nninteractive_train.training.launch import train
    from nninteractive_train.training.loop import TrainingError, TrainingInterrupted

    try:
        saved = Path(args.output) / "config.yaml"
        resume = args.resume or (args.resume_if_exists and saved.exists())
        if resume and args.pretrained:
            raise SetupError("--pretrained starts a new run; it cannot be combined with --resume")
        # on resume the run folder's config.yaml is the config; one given again must equal it (launch.py)
        cfg = (None if resume and args.config is None and not args.overrides else
               load_config(saved if resume and args.config is None and saved.is_file() else args.config,
                           args.overrides))
        train(args.dataset_id, cfg, args.output, resume=resume, pretrained=args.pretrained,
              use_cuda=False if args.cpu else None, allow_config_change=args.allow_config_change)
    except (ConfigError, SetupError) as e:
        print(f"nnInteractive_train: error: {e}", file=sys.stderr)
        sys.exit(2)
    except TrainingError as e:
        print(f"nnInteractive_train: error: {e}", file=sys.stderr)
        sys.exit(1)
    except TrainingInterrupted as e:
        print(f"nnInteractive_train: stopped by signal {e.args[0]} after saving checkpoint_latest.pth", file=sys.stderr)
        sys.exit(0)


if __name__ == "__main__":
    main()
