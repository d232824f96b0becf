"""The demo (the README's main command): generated cases (plus, with ``--train-real``, crops of real images with
real labels) → build the collection → preprocess → SuperVoxels → sampling report → train on the CPU → export →
evaluate on held-out cases, generated and real, through the public inference session → a report folder.

    python -m nninteractive_train.demo.pipeline --out demo_output [--config configs/demo_cpu.yaml] [--quick]
        [--train-real] [--generated-only]

By default the model trains on the generated cases alone and the real crops are evaluated zero-shot: in 1000
iterations, training on the real sources too cost the held-out generated objects ~0.18 Dice after one prompt and
paid it back only on the CT crops (docs/learning.md, "Which data the demo trains on"). Without the Debian packages
(``scripts/install_demo_data.sh``) it says how to install them and skips the real rows. Dataset ids: 960–963 real
sources, 991 generated, 999 the collection.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import yaml

from nninteractive_train.demo.aim import ablation_table, against_aim, aim_table, read_ablations
from nninteractive_train.errors import UserError
from nninteractive_train.files import atomic_write_text

REPO = Path(__file__).resolve().parents[2]
GENERATED_ID, COLLECTION_ID = 991, 999
GENERATED_CASES, GENERATED_HELD_OUT = 16, 3  # 64 cases learnt no better in a short run (README, ablation A4)


def step(title: str):
    print(f"\n=== {title} ===", flush=True)
    return time.perf_counter()


def collection_list(real: dict, generated_held_out: list[str]) -> dict:
    """The demo's dataset list: the generated dataset and the real sources in ``real`` (those trained on), each
    with its held-out cases skipped (they are evaluated, not trained).

    No label combinations: the held-out objects are single instances, and a combination target (all spheres and
    ellipsoids of a case from a prompt on one of them) taught the model to spill into look-alike neighbours
    (docs/learning.md, "Label combinations, augmentation and the window at 1000 iterations")."""
    datasets = [{
        "name": "Generated", "source": GENERATED_ID, "weight": 1.0, "modality": "MR (generated)",
        "labels": {"blob": {"objects": "whole"}}, "skip_cases": list(generated_held_out),
    }]
    for name, (dataset_id, _folder, held_out) in real.items():
        datasets.append({"name": name.capitalize(), "source": dataset_id, "weight": 1.0, "min_size": 50,
                         "skip_cases": list(held_out)})
    return {"format": 1, "name": "DemoCollection", "description": "nninteractive_train demo collection",
            "datasets": datasets}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nninteractive_train.demo.pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo_output", help="folder for runs, models and the report")
    p.add_argument("--config", default=str(REPO / "configs" / "demo_cpu.yaml"))
    p.add_argument("--quick", action="store_true", help="a smoke run: tiny network, 2 epochs, 1 object per case")
    p.add_argument("--generated-only", action="store_true", help="skip the Debian-packaged real images")
    p.add_argument("--train-real", action="store_true",
                   help="train on the real crops too (default: generated cases only, real crops evaluated zero-shot)")
    p.add_argument("overrides", nargs="*", help="config overrides for the training, section.key=value")
    args = p.parse_args(argv)

    from nninteractive_train.cli import (build_collection, evaluate, export, generate_supervoxels,
                                         plan_and_preprocess, prompt_gallery, train)
    from nninteractive_train.data.synthetic import write_dataset
    from nninteractive_train.evaluation.runner import list_cases
    from nninteractive_train.demo import install_hint, missing_packages
    from nninteractive_train.paths import require_env

    out = Path(args.out).resolve()
    report = out / "report"
    report.mkdir(parents=True, exist_ok=True)
    raw = require_env("nnUNet_raw")
    require_env("nnUNet_preprocessed")
    require_env("nnUNet_results")
    config = str(REPO / "configs" / "debug_cpu.yaml") if args.quick else args.config
    overrides = list(args.overrides) + (["training.interactive_val_every=0"] if args.quick else [])
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    t = step("1/9 real images from Debian packages")
    real: dict = {}
    missing = [] if args.generated_only else missing_packages()
    if args.generated_only:
        print("skipped (--generated-only)")
    elif missing:
        print(f"missing Debian packages {missing}: the demo runs on generated data only.\n{install_hint(missing)}")
    else:
        from nninteractive_train.demo import write_demo_sources

        real = write_demo_sources(raw)
    timings["real sources"] = time.perf_counter() - t

    t = step("2/9 generated cases")
    folder = write_dataset(raw, GENERATED_ID, GENERATED_CASES, seed=1, name="Generated", num_processes=2)
    cases = list_cases(folder, "imagesTr", ".nii.gz")
    held_generated = cases[-GENERATED_HELD_OUT:]
    print(f"{folder}: {len(cases)} cases, held out {held_generated}")
    timings["generated"] = time.perf_counter() - t

    t = step("3/9 build the collection")
    list_file = out / "demo_collection.yaml"
    trained_real = real if args.train_real else {}
    list_file.write_text(yaml.safe_dump(collection_list(trained_real, held_generated), sort_keys=False))
    if build_collection.main([str(list_file), "-d", str(COLLECTION_ID), "--quiet"]) != 0:
        return 1
    timings["build"] = time.perf_counter() - t

    t = step("4/9 plan and preprocess")
    plan_and_preprocess.main(["-d", str(COLLECTION_ID), "--config", config, "-np", "2"])
    timings["preprocess"] = time.perf_counter() - t

    t = step("5/9 SuperVoxels and sampling report")
    generate_supervoxels.main(["-d", str(COLLECTION_ID), "-np", "2", "--quiet"])
    from nninteractive_train.cli import sampling_report

    with open(report / "sampling_report.md", "w") as f:
        saved, sys.stdout = sys.stdout, f
        try:
            sampling_report.main(["-d", str(COLLECTION_ID), "--draws", "100000"])
        finally:
            sys.stdout = saved
    print((report / "sampling_report.md").read_text()[:2000])
    timings["supervoxels + report"] = time.perf_counter() - t

    t = step("6/9 train")
    run_dir, model_dir = out / "runs" / "demo", out / "models" / "demo"
    if run_dir.exists():
        shutil.rmtree(run_dir)
    # the learning curve is measured on the held-out generated cases (never trained on)
    held = f"training.interactive_val_case_names=[{','.join(held_generated)}]"
    train.main(["-d", str(COLLECTION_ID), "--config", config, "--output", str(run_dir),
                f"training.interactive_val_raw={GENERATED_ID}", held, *overrides])
    timings["train"] = time.perf_counter() - t

    t = step("7/9 export")
    export.main([str(run_dir), str(model_dir)])
    timings["export"] = time.perf_counter() - t

    t = step("8/9 evaluate on held-out cases through the nnInteractive inference session")
    evals = {"generated": (GENERATED_ID, held_generated, "all")}
    for name, (dataset_id, _folder, held_out) in real.items():
        evals[name] = (dataset_id, held_out, "per-kind")
    # AutoZoom off: every demo image fits in one exported patch, and zooming an early model costs minutes
    common = ["--no-autozoom", "--object-order", "random", "--no-progress"]
    for name, (dataset_id, held_out, protocol) in evals.items():
        # every object of the generated cases (at most 7 each, 18 in all): less object-draw noise than 3 random per case
        per_object = "1" if args.quick else ("7" if name == "generated" else "2")
        cases = held_out[:1] if args.quick else held_out
        # the random mix only on the generated cases: the real rows report the four kinds (time budget)
        kinds = [] if name == "generated" else ["--kinds", "point", "bbox", "lasso", "scribble"]
        evaluate.main([str(model_dir), "-d", str(dataset_id), "--cases", *cases, "--protocol", protocol,
                       "--out", str(report / f"eval_{name}"), "--max-objects-per-case", per_object,
                       "--steps", "2" if args.quick else "4", *kinds, *common])  # 4 follow-ups: Dice @1 … @5
    timings["evaluate"] = time.perf_counter() - t

    t = step("9/9 report")
    prompt_gallery.main(["-d", str(GENERATED_ID), "--out", str(report / "prompt_gallery.png")])
    for name in ("metrics.jsonl", "progress.png", "config.yaml"):
        if (run_dir / name).exists():
            shutil.copy(run_dir / name, report / name)
    if (run_dir / "metrics.jsonl").exists():
        from nninteractive_train.evaluation.report import plot_learning_curve
        from nninteractive_train.training.loop import read_metrics

        plot_learning_curve(read_metrics(run_dir), report / "learning_curve.png",
                            title="held-out generated objects, inference session")
    timings["report"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t_all
    try:
        ablations = read_ablations(out / "ablations" / "results.jsonl")
    except UserError as e:  # a broken record of earlier ablations must not cost this run its report
        print(f"note: ablation rows left out of the report: {e}")
        ablations = []
    write_report(report, evals, timings, real, trained=args.train_real, ablations=ablations)
    print(f"\nreport: {report}\nmodel:  {model_dir}  (load it in napari / Slicer / MITK / ITK-SNAP through nninteractive)")
    return 0


def _cell(values: list, i: int) -> str:
    return f"{values[i]:.3f}" if i < len(values) and values[i] is not None else "n/a"


def write_report(report: Path, evals: dict, timings: dict, real: dict, *, trained: bool,
                 ablations: list[dict] = ()) -> None:
    """report/README.md: Dice after 1, 3 and 5 prompts per kind per evaluation, the generated rows against the
    demo's aim, the learning curve, the ablation rows run on this demo's data so far, timings, what was used."""
    if not real:
        sources = "none (Debian packages missing or --generated-only)"
    elif trained:
        sources = f"{', '.join(real)} (trained on, held-out crops evaluated)"
    else:
        sources = f"{', '.join(real)} (not trained on: evaluated zero-shot; --train-real trains on them)"
    lines = ["# nninteractive_train demo report", "",
             f"Real sources: {sources}; generated dataset {GENERATED_ID}; collection {COLLECTION_ID}.", ""]
    for name in evals:
        summary_file = report / f"eval_{name}" / "summary.json"
        if not summary_file.is_file():
            lines += [f"## {name}: no evaluation summary", ""]
            continue
        summary = json.loads(summary_file.read_text())
        lines += [f"## Held-out {name} cases", "", "| protocol | kind | runs | Dice @1 prompt | @3 prompts | @5 prompts | NSD @5 |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for protocol, kinds in summary.get("results", {}).items():
            for kind, e in kinds.items():
                lines.append(f"| {protocol} | {kind} | {e['runs']} | {_cell(e['dice'], 0)} | {_cell(e['dice'], 2)} "
                             f"| {_cell(e['dice'], 4)} | {_cell(e['nsd'], 4)} |")
        failed = summary.get("failed_cases") or []
        if failed:
            lines += ["", f"failed cases: {failed}"]
        lines += ["", f"![Dice per interaction](eval_{name}/dice_per-kind.png)", ""]
        if name == "generated":
            rows = against_aim(summary.get("results", {}).get("per-kind", {}))
            lines += ["### Against the demo's aim", "",
                      "Dice after one prompt on the held-out generated objects, and Dice rising with follow-ups:", "",
                      *aim_table(rows), ""]
    if (report / "learning_curve.png").exists():
        lines += ["## Learning curve", "", "Held-out Dice after the first prompt per kind, during training:", "",
                  "![learning curve](learning_curve.png)", ""]
    lines += ["## Ablations", "",
              "`python scripts/ablate_learning.py --demo-out OUT --tag T KEY=VALUE…` trains the demo config with one "
              "change on this demo's data and scores it on the held-out generated objects; each run adds a row to "
              "`OUT/ablations/results.jsonl` and to `ablations.md` here. The repository README's \"What limits the "
              "demo's learning\" has every row measured so far.", ""]
    if ablations:
        lines += [f"Rows run on this demo's data before this report ({len(ablations)}):", "",
                  ablation_table(list(ablations)), ""]
    lines += ["## Time (s)", "", "| step | s |", "|---|---:|"] + [f"| {k} | {v:.0f} |" for k, v in timings.items()]
    lines += ["", "Training curve: `progress.png`, per-epoch metrics: `metrics.jsonl`, prompts: `prompt_gallery.png`,",
              "sampling: `sampling_report.md`."]
    atomic_write_text(report / "README.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
