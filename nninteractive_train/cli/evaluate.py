"""nnInteractive_evaluate: evaluate an exported model through the public nnInteractive inference session with
simulated users (per-kind: point / bbox / lasso / scribble / random mix, each with follow-ups; segfm3d: the
CVPR 2025 box + clicks protocol with the challenge's own rules and metrics). Writes results.csv, summary.json,
Dice/NSD-vs-interaction plots and, with segfm3d, segfm3d_cases.csv (the challenge's per-case metrics).

MODEL is an exported model folder or a training run folder (exported first, into OUT/model); without MODEL the
run of the -d dataset is found in $nnUNet_results (-c / -p / -f narrow it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nninteractive_train.cli.common import Parser, add_dataset_argument, require_dataset, run_command
from nninteractive_train.cli.export import add_run_arguments, locate_run


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="nnInteractive_evaluate", description=__doc__)
    p.add_argument("model_dir", nargs="?", default=None, metavar="MODEL",
                   help="exported model folder (nnInteractive_export) or training run folder; default: the run of "
                        "-d in $nnUNet_results")
    add_dataset_argument(p, "dataset in nnUNet_raw whose cases are evaluated", aliases=("--dataset",))
    add_run_arguments(p)
    p.add_argument("--checkpoint", default="final", choices=["final", "best", "latest"],
                   help="checkpoint of a run folder to evaluate (default final)")
    p.add_argument("--cases", nargs="+", default=None, help="case names (default: every case of the split)")
    p.add_argument("--split", default="imagesTr", choices=["imagesTr", "imagesTs"],
                   help="images folder; labels come from labelsTr / labelsTs")
    p.add_argument("--protocol", default="all", choices=["per-kind", "segfm3d", "all"])
    p.add_argument("--kinds", nargs="+", default=None, choices=["point", "bbox", "lasso", "scribble", "random"],
                   help="per-kind runs (default: all five)")
    p.add_argument("--out", default=None, help="output folder (default: ./eval_<model>_<dataset>)")
    p.add_argument("--steps", type=int, default=5, help="follow-up prompts after the initial one (default 5)")
    p.add_argument("--nsd-tolerance", type=float, default=2.0, help="NSD tolerance in mm (default 2.0)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--max-objects-per-case", type=int, default=None,
                   help="evaluate at most N objects per case (default: all)")
    p.add_argument("--object-order", default="largest", choices=["largest", "random"],
                   help="which objects the cap keeps: the largest, or a seeded random subset")
    p.add_argument("--min-object-size", type=int, default=10, help="skip components smaller than this (voxels)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-autozoom", action="store_true", help="turn the session's AutoZoom off (faster on CPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--verbose", action="store_true", help="show the inference session's own messages")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    return run_command(parser, lambda args: _run(parser, args), argv)


def _model_folder(model: Path, out: Path, checkpoint: str) -> Path:
    """The model folder to load: ``model`` itself, or the export of a run folder into OUT/model, so that the
    evaluated weights stay beside their results."""
    from nninteractive_train.export import export_run
    from nninteractive_train.layout import is_run_dir

    if not is_run_dir(model):
        return model
    exported = export_run(model, out / "model", checkpoint)
    print(f"nnInteractive_evaluate: exported the {checkpoint} checkpoint of {model} to {exported}", file=sys.stderr)
    return exported


def _default_out(model: Path, dataset) -> Path:
    """``./eval_<model>_<dataset>``; a run folder of nnU-Net's tree (``.../<trainer>__<plans>__<conf>/fold_<f>``)
    is named by its configuration and fold."""
    model = model.resolve()
    name = f"{model.parent.name.split('__')[-1]}_{model.name}" if model.name.startswith("fold_") else model.name
    return Path(f"eval_{name}_{dataset}")


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from nninteractive_train.errors import UsageError
    from nninteractive_train.evaluation.protocols import PER_KIND, PROTOCOLS
    from nninteractive_train.evaluation.runner import EvalOptions, evaluate_dataset

    require_dataset(parser, args)
    if args.steps < 0:
        raise UsageError(f"--steps must be >= 0, got {args.steps}")
    if args.nsd_tolerance < 0:
        raise UsageError(f"--nsd-tolerance must be >= 0 mm, got {args.nsd_tolerance}")
    if args.max_objects_per_case is not None and args.max_objects_per_case < 1:
        raise UsageError(f"--max-objects-per-case must be >= 1, got {args.max_objects_per_case}")
    protocols = list(PROTOCOLS) if args.protocol == "all" else [args.protocol]
    model = Path(args.model_dir) if args.model_dir is not None else locate_run(
        args.dataset_id, args.configuration, args.plans, args.fold)
    out = Path(args.out) if args.out else _default_out(model, args.dataset_id)
    options = EvalOptions(
        protocols=protocols, kinds=tuple(args.kinds or PER_KIND), steps=args.steps,
        nsd_tolerance=args.nsd_tolerance, max_objects_per_case=args.max_objects_per_case,
        min_object_size=args.min_object_size, object_order=args.object_order, seed=args.seed, device=args.device,
        autozoom=not args.no_autozoom, split=args.split, cases=args.cases, progress=not args.no_progress,
        verbose=args.verbose,
    )
    summary = evaluate_dataset(_model_folder(model, out, args.checkpoint), args.dataset_id, out, options)
    _print_table(summary)
    counts = summary["counts"]
    for f in summary["failed_cases"]:
        print(f"failed: {f['error']}", file=sys.stderr)
    print(f"evaluated {counts['cases_evaluated']}/{counts['cases']} cases, {counts['objects']} objects; "
          f"results in {out.resolve()}")
    return 1 if counts["cases_evaluated"] == 0 else 0


def _print_table(summary: dict) -> None:
    def f(v):
        return "  n/a" if v is None else f"{v:.3f}"

    print(f"{'protocol':<10} {'kind':<12} {'runs':>5} {'dice@1':>7} {'final':>7} {'AUC':>7} {'NSD fin':>7} {'s/step':>7}")
    for protocol, kinds in summary["results"].items():
        for kind, e in kinds.items():
            print(f"{protocol:<10} {kind:<12} {e['runs']:>5} {f(e['dice'][0]):>7} {f(e['final_dice']):>7} "
                  f"{f(e['dice_auc']):>7} {f(e['final_nsd']):>7} {f(e['seconds_per_step']):>7}")
            c = e.get("challenge")
            if c:
                print(f"  segfm3d as the challenge scores it ({c['cases']} cases): DSC_AUC {f(c['DSC_AUC'])}  "
                      f"NSD_AUC {f(c['NSD_AUC'])}  DSC_Final {f(c['DSC_Final'])}  NSD_Final {f(c['NSD_Final'])}")


if __name__ == "__main__":
    sys.exit(main())
