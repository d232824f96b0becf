"""Does fine-tuning pay? Start from a model trained on generated data, fine-tune it on the demo's real crops, and
compare held-out Dice on the real crops with the starting model and with a model trained from scratch on the same
real crops for the same number of steps.

    python scripts/bench_finetune.py --demo-out demo_output [--start-epochs 14] [--epochs 10]

Needs a demo output folder with its data prepared (``bash scripts/demo.sh`` or ``--quick`` once). Builds two
collections from the demo's dataset list — generated only (id 997) and real only (id 998), held-out cases skipped
as in the demo — trains the starting model on 997, then fine-tunes it on 998 (``--pretrained``, a 1-epoch warm-up,
the encoder frozen for 2 epochs, AdamW at a quarter of the demo's rate) and trains the same config from scratch
on 998. All three are exported and evaluated through the public inference session on the held-out real crops
(Dice after the first prompt of each kind, the 2 largest objects per crop). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
GENERATED_ONLY, REAL_ONLY = 997, 998
KINDS = ("point", "bbox", "lasso", "scribble")
COMMON = ["training.interactive_val_every=0"]


def build(demo_out: Path, datasets: list[dict], dataset_id: int, name: str) -> None:
    from nninteractive_train.cli import build_collection, generate_supervoxels, plan_and_preprocess

    list_file = demo_out / "finetune_bench" / f"{name}.yaml"
    list_file.write_text(yaml.safe_dump({"format": 1, "name": name, "datasets": datasets}, sort_keys=False))
    for p in Path(os.environ["nnUNet_raw"]).glob(f"Dataset{dataset_id}_*"):
        shutil.rmtree(p)
    for p in Path(os.environ["nnUNet_preprocessed"]).glob(f"Dataset{dataset_id}_*"):
        shutil.rmtree(p)
    if build_collection.main([str(list_file), "-d", str(dataset_id), "--quiet"]) != 0:
        raise SystemExit(f"building {name} failed")
    plan_and_preprocess.main(["-d", str(dataset_id), "--config", str(REPO / "configs" / "demo_cpu.yaml"), "-np", "2"])
    generate_supervoxels.main(["-d", str(dataset_id), "-np", "2", "--quiet"])


def train(dataset_id: int, run_dir: Path, overrides: list[str], pretrained: Path | None = None) -> float:
    from nninteractive_train.cli import export, train as train_cli

    if run_dir.exists():
        shutil.rmtree(run_dir)
    t0 = time.perf_counter()
    train_cli.main(["-d", str(dataset_id), "--config", str(REPO / "configs" / "demo_cpu.yaml"), "--output",
                    str(run_dir), *COMMON, *overrides, *(["--pretrained", str(pretrained)] if pretrained else [])])
    minutes = (time.perf_counter() - t0) / 60
    export.main([str(run_dir), str(run_dir.with_name(run_dir.name + "_model"))])
    return minutes


def evaluate(model: Path, held_out: dict[int, list[str]], out: Path) -> dict[str, float]:
    """Mean Dice after the first prompt per kind over every held-out real crop."""
    from nninteractive_train.cli import evaluate as evaluate_cli

    dice: dict[str, list[float]] = {k: [] for k in KINDS}
    for dataset_id, cases in held_out.items():
        folder = out / str(dataset_id)
        evaluate_cli.main([str(model), "-d", str(dataset_id), "--cases", *cases, "--protocol", "per-kind",
                           "--kinds", *KINDS, "--steps", "0", "--max-objects-per-case", "2", "--no-autozoom",
                           "--no-progress", "--out", str(folder)])
        per_kind = json.loads((folder / "summary.json").read_text())["results"]["per-kind"]
        for k in KINDS:
            dice[k] += [per_kind[k]["dice"][0]] * per_kind[k]["runs"]
    return {k: sum(v) / len(v) for k, v in dice.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo-out", required=True)
    p.add_argument("--start-epochs", type=int, default=14, help="epochs of the starting model on generated data")
    p.add_argument("--epochs", type=int, default=10, help="epochs of fine-tuning and of training from scratch")
    args = p.parse_args(argv)
    demo_out = Path(args.demo_out).resolve()
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ.setdefault(var, str(demo_out / var))
    work = demo_out / "finetune_bench"
    work.mkdir(exist_ok=True)
    datasets = yaml.safe_load((demo_out / "demo_collection.yaml").read_text())["datasets"]
    generated, real = datasets[:1], datasets[1:]
    if not real:
        raise SystemExit("the demo ran without real sources (install the Debian packages, scripts/demo.sh)")
    held_out = {int(d["source"]): list(d["skip_cases"]) for d in real}
    build(demo_out, generated, GENERATED_ONLY, "GeneratedOnly")
    build(demo_out, real, REAL_ONLY, "RealOnly")
    epochs = [f"training.num_epochs={args.epochs}"]
    minutes = {"start": train(GENERATED_ONLY, work / "start", [f"training.num_epochs={args.start_epochs}"])}
    start_model = work / "start_model"
    minutes["fine-tuned"] = train(REAL_ONLY, work / "finetuned", epochs + [
        "training.initial_lr=0.0005", "training.warmup_epochs=1", "training.freeze_encoder_epochs=2"],
        pretrained=start_model)
    minutes["scratch"] = train(REAL_ONLY, work / "scratch", epochs)
    rows = {
        "starting model (generated data only)": ("start", start_model),
        f"fine-tuned on the real crops, {args.epochs} epochs": ("fine-tuned", work / "finetuned_model"),
        f"from scratch on the real crops, {args.epochs} epochs": ("scratch", work / "scratch_model"),
    }
    dice = {label: evaluate(model, held_out, work / f"eval_{key}") for label, (key, model) in rows.items()}
    print("\n| model | training min | " + " | ".join(f"{k} @1" for k in KINDS) + " | mean |")
    print("|---|---:|" + "---:|" * (len(KINDS) + 1))
    for label, (key, _model) in rows.items():
        d = dice[label]
        print(f"| {label} | {minutes[key]:.1f} | " + " | ".join(f"{d[k]:.2f}" for k in KINDS)
              + f" | {sum(d.values()) / len(d):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
