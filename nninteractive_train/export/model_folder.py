"""Export a run as a model folder that the public ``nninteractive`` inference package loads unchanged
(docs/model_folder.md): plans.json, dataset.json (image channel only), inference_info.json and
fold_0/checkpoint_final.pth with clean weights and the stub trainer name."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

from nninteractive_train.config import from_dict
from nninteractive_train.files import atomic_write_json, atomic_write_text, replace_dir
from nninteractive_train.paths import SetupError

STUB_TRAINER = "nnInteractiveTrainer_stub"


def inference_info(decay: float) -> dict:
    """The capability file: which prompts the model takes, where they go, and how the viewer draws them."""
    from nninteractive_train.simulation.encoding import (
        NUM_INTERACTION_CHANNELS,
        POINT_RADIUS,
        SCRIBBLE_THICKNESS,
        channel_mapping,
    )

    return {
        "inference_class": "nnInteractiveInferenceSession",
        "supported_interactions": {"points": True, "bbox2d": True, "bbox3d": False, "scribble": True, "lasso": True},
        "supports_initial_label": True,
        "channel_mapping": channel_mapping(),
        "interaction_channels": NUM_INTERACTION_CHANNELS - 1,  # the package counts them without prev_seg
        "point_radius": POINT_RADIUS,
        "preferred_scribble_thickness": list(SCRIBBLE_THICKNESS),
        "interaction_decay": float(decay),
        "pad_mode_image": "constant",
    }


def write_model_folder(
    out_dir: str | os.PathLike,
    network_weights: dict,
    plans: dict,
    configuration: str,
    dataset_json: dict,
    *,
    decay: float = 0.9,
    export_patch: Sequence[int] | None = None,
    extra: dict | None = None,
    license_file: str | os.PathLike | None = None,
    card: dict | None = None,
) -> Path:
    """Write the model folder atomically (built under a temp name, then renamed over ``out_dir``).

    Args:
        network_weights: state dict of the bare network (prefixes are stripped again here).
        plans: nnU-Net plans containing ``configuration``.
        dataset_json: the training dataset.json; only its first image channel is kept.
        decay: the prompt decay used in training (written as ``interaction_decay``).
        export_patch: patch for inference; None = the training patch raised to ≥ 96 per axis.
        extra: additional keys for the checkpoint (e.g. the run config, for provenance).
        license_file: copied as ``LICENSE`` (the session reports it; "!!MISSING!!" without one).
        card: written as ``model_card.json`` and ``model_card.md`` (``export/card.py``).
    """
    from nninteractive_train.planning.plans import export_configuration
    from nninteractive_train.training.checkpoint import atomic_save, clean_state_dict

    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        channels = dict(dataset_json["channel_names"])
        first = sorted(channels, key=int)[0]
        atomic_write_json(tmp / "plans.json", export_configuration(plans, configuration, export_patch))
        atomic_write_json(tmp / "dataset.json", {
            "channel_names": {"0": channels[first]},
            "labels": {"background": 0, "foreground": 1},
            "numTraining": int(dataset_json.get("numTraining", 0)),
            "file_ending": dataset_json.get("file_ending", ".nii.gz"),
        })
        atomic_write_json(tmp / "inference_info.json", inference_info(decay))
        checkpoint = {
            "network_weights": clean_state_dict(network_weights),
            "trainer_name": STUB_TRAINER,
            "init_args": {"configuration": configuration, "fold": 0},
            "inference_allowed_mirroring_axes": None,
            **(extra or {}),
        }
        atomic_save(checkpoint, tmp / "fold_0" / "checkpoint_final.pth")
        if license_file is not None:
            shutil.copyfile(license_file, tmp / "LICENSE")
        if card is not None:
            from nninteractive_train.export.card import card_markdown

            atomic_write_json(tmp / "model_card.json", card)
            atomic_write_text(tmp / "model_card.md", card_markdown(card))
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def export_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike, checkpoint: str = "final",
               license_file: str | os.PathLike | None = None) -> Path:
    """Export the ``checkpoint`` (final | best | latest) of a training run folder, with its licence (``license_file``,
    else the one inherited from a ``--pretrained`` folder) and a model card."""
    from nninteractive_train.export.card import license_source, model_card
    from nninteractive_train.training import checkpoint as ckpt
    from nninteractive_train.training.launch import CHECKPOINTS

    run_dir = Path(run_dir)
    if checkpoint not in CHECKPOINTS:
        raise SetupError(f"--checkpoint must be one of {sorted(CHECKPOINTS)}, got {checkpoint!r}")
    if license_file is not None and not Path(license_file).is_file():
        raise SetupError("licence file not found", license_file)
    if not run_dir.is_dir():
        raise SetupError("run folder does not exist", run_dir, hint="give the --output of nnInteractive_train")
    ckpt_file = run_dir / CHECKPOINTS[checkpoint]
    for needed in (ckpt_file, run_dir / "plans.json", run_dir / "dataset.json"):
        if not needed.is_file():
            hint = ("for an unfinished run try --checkpoint latest" if needed == ckpt_file and
                    (run_dir / "config.yaml").is_file() else "is it a run folder of nnInteractive_train?")
            raise SetupError(f"the run has no {needed.name}", needed, hint=hint)
    try:
        state = ckpt.load(ckpt_file)
    except RuntimeError as e:  # checkpoint.load's own "cannot be read" (truncated or foreign file), nothing else
        raise SetupError("the checkpoint cannot be read (truncated or not a checkpoint)", ckpt_file) from e
    if "run_config" not in state:
        raise SetupError("the checkpoint has no run_config: not written by nnInteractive_train", ckpt_file)
    cfg = from_dict(state["run_config"])
    plans = json.loads((run_dir / "plans.json").read_text())
    dataset_json = json.loads((run_dir / "dataset.json").read_text())
    license_path, license_from = license_source(run_dir, license_file)
    return write_model_folder(
        out_dir, ckpt.model_weights(state), plans, cfg.model.configuration, dataset_json,
        decay=cfg.interaction.decay, export_patch=cfg.model.export_patch_size,
        extra={"run_config": state["run_config"], "current_epoch": state.get("current_epoch")},
        license_file=license_path, card=model_card(run_dir, state, dataset_json, checkpoint, license_from),
    )
