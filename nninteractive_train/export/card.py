"""Provenance of an exported model: its licence and a model card (``model_card.json`` + ``model_card.md``).

The inference session reads ``LICENSE`` from the model folder (and shows "!!MISSING!!" without one). A model
fine-tuned from a released folder inherits that folder's licence terms: the training launcher copies the
pretrained folder's ``LICENSE`` into the run folder (``LICENSE.pretrained``), and export writes it unless
``--license FILE`` names another.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from pathlib import Path

from nninteractive_train.sampler.report import SAMPLING_SUMMARY

PRETRAINED_LICENSE = "LICENSE.pretrained"


def repository_commit() -> str | None:
    """The git commit of this package's checkout (``+dirty`` when it has local changes); None if not a checkout."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def license_source(run_dir: Path, license_file: str | os.PathLike | None) -> tuple[Path | None, str | None]:
    """(file to copy as LICENSE, where it came from): ``--license`` first, else the pretrained folder's."""
    if license_file is not None:
        return Path(license_file), f"--license {license_file}"
    inherited = run_dir / PRETRAINED_LICENSE
    if inherited.is_file():
        return inherited, "inherited from the pretrained model folder"
    return None, None


def latest_validation(run_dir: Path) -> dict | None:
    """The last metrics.jsonl record with interactive validation (held-out Dice per prompt and per kind)."""
    from nninteractive_train.training.loop import read_metrics

    last = next((r for r in reversed(read_metrics(run_dir)) if "val_dice_1" in r), None)
    if last is None:
        return None
    return {k: v for k, v in last.items() if k.startswith("val_") or k in ("epoch", "train_minutes")}


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def weights_kind(state: dict) -> str | None:
    """What the exported weights are when not simply the checkpoint's last ones."""
    ema = state.get("ema")
    if not ema:
        return None
    return f"moving average of the weights (decay {ema['decay']:g}, {ema['updates']} updates)"


def model_card(run_dir: Path, state: dict, dataset_json: dict, checkpoint: str, license_from: str | None) -> dict:
    """Everything the folder's user should know about where the weights came from."""
    info_file = run_dir / "run_info.json"
    info = json.loads(info_file.read_text()) if info_file.is_file() else {}
    seconds = state.get("train_seconds")
    return {
        "exported_at": now_iso(),
        "exported_with_commit": repository_commit(),
        "trained_with_commit": info.get("commit"),
        "run_dir": str(run_dir),
        "checkpoint": checkpoint,
        "weights": weights_kind(state),
        "epochs_trained": state.get("current_epoch"),
        "training_minutes": None if seconds is None else round(seconds / 60, 2),
        "dataset": {"id": info.get("dataset_id"), "name": dataset_json.get("name"),
                    "training_cases": dataset_json.get("numTraining")},
        "pretrained_from": info.get("pretrained"),
        "license": license_from,
        "collection": _read_json(run_dir / SAMPLING_SUMMARY),
        "validation": latest_validation(run_dir),
        "config": state.get("run_config"),
    }


def card_markdown(card: dict) -> str:
    cfg = card.get("config") or {}
    model, training = cfg.get("model", {}), cfg.get("training", {})
    lines = [
        "# Model card", "",
        "An nnInteractive-style promptable 3D segmentation model trained with nninteractive_train; it loads in the "
        "public `nninteractive` inference package (napari, MITK, 3D Slicer, ITK-SNAP).", "",
        "| | |", "|---|---|",
        f"| dataset | {card['dataset']['name']} (id {card['dataset']['id']}, {card['dataset']['training_cases']} "
        f"training cases) |",
        f"| fine-tuned from | {card['pretrained_from'] or '— (trained from scratch)'} |",
        f"| training | {card['epochs_trained']} epochs × {training.get('iterations_per_epoch')} iterations, "
        f"{'n/a' if card['training_minutes'] is None else card['training_minutes']} min, optimiser {training.get('optimizer', 'sgd')} |",
        f"| network | patch {model.get('patch_size')}, features {model.get('base_features')}→"
        f"{model.get('max_features')}, blocks {model.get('blocks_per_stage')} |",
        f"| checkpoint | {card['checkpoint']} of {card['run_dir']}"
        + (f"; {card['weights']}" if card.get("weights") else "") + " |",
        f"| code | trained with commit {card['trained_with_commit']}, exported with {card['exported_with_commit']} |",
        f"| licence | {card['license'] or 'none given (pass --license FILE)'} |",
        f"| exported | {card['exported_at']} |", "",
    ]
    coll = card.get("collection")
    if coll:
        lines += [f"## Training data: collection {coll['collection']}", "",
                  f"{coll['cases']} cases, {coll['objects']} objects; SuperVoxel pseudo-objects in "
                  f"{100 * coll['expected_supervoxel_share']:.1f} % of the samples (probability "
                  f"{coll['supervoxel_prob']} where a case has them"
                  + (f"; a case's objects drawn ∝ voxels^{coll['object_size_power']:g}"
                     if coll.get("object_size_power") else "")
                  + "). Expected share of training samples per dataset (√cases × weight):", "",
                  "| dataset | weight | cases | objects | share | of which SuperVoxels |", "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {d['name']} | {d['weight']:g} | {d['cases']} | {d['objects']} | {100 * d['expected_share']:.1f} % "
                  f"| {100 * d['expected_supervoxel_share']:.1f} % |" for d in coll["datasets"]]
        lines += [""]
    val = card.get("validation")
    if val:
        kinds = sorted(k[len("val_dice_1_"):] for k in val if k.startswith("val_dice_1_"))
        lines += ["## Held-out interactive validation (last epoch that ran it)", "",
                  "| after 1 prompt | " + " | ".join(kinds) + " | mean |",
                  "|---|" + "---:|" * (len(kinds) + 1),
                  "| Dice | " + " | ".join(f"{val[f'val_dice_1_{k}']:.3f}" for k in kinds)
                  + f" | {val['val_dice_1']:.3f} |", "",
                  f"Epoch {val.get('epoch')}, {val.get('val_objects')} objects; "
                  "Dice after more prompts: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(val.items())
                                                          if k.startswith("val_dice_") and k[9:].isdigit()), ""]
    lines += ["The resolved training configuration is in `model_card.json` (`config`)."]
    return "\n".join(lines) + "\n"
