"""The public ``nninteractive`` inference session as the evaluation's model: loading it from an exported model
folder or around an in-memory network, and handing it prompts through its public ``add_*_interaction`` calls."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from nninteractive_train.paths import SetupError

__all__ = ["ModelLoadError", "load_session", "session_from_network", "apply_prompt", "quiet", "num_channels"]


class ModelLoadError(SetupError):
    """The model folder is missing, incomplete or does not load in the inference session."""


@contextlib.contextmanager
def quiet(enabled: bool = True) -> Iterator[None]:
    """Swallow the session's progress prints (it prints on every prediction, verbose or not)."""
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def _session_class():
    try:
        from nnInteractive.inference.inference_session import nnInteractiveInferenceSession
    except ImportError as e:  # the package is an optional dependency of the training framework
        raise ModelLoadError(f"the nninteractive inference package is not importable ({e}); "
                             f"install it with: pip install nninteractive==2.6.0") from e
    return nnInteractiveInferenceSession


def _new_session(device: torch.device, autozoom: bool):
    cls = _session_class()
    threads = torch.get_num_threads()  # the session sets the global thread count: keep the caller's
    session = cls(device=device, use_torch_compile=False, verbose=False, torch_n_threads=threads,
                  do_autozoom=autozoom, interactions_storage="auto", enable_undo=False)
    torch.set_num_threads(threads)
    return session


def load_session(model_dir: str | os.PathLike, *, device: str | torch.device = "cpu", autozoom: bool = True,
                 verbose: bool = False):
    """An ``nnInteractiveInferenceSession`` initialised from an exported model folder.

    Raises:
        ModelLoadError: the folder lacks a required file or the session cannot load it (message names both).
    """
    model_dir = Path(model_dir)
    device = torch.device(device)
    if not model_dir.is_dir():
        raise ModelLoadError(f"model folder {model_dir} does not exist")
    missing = [n for n in ("plans.json", "dataset.json") if not (model_dir / n).is_file()]
    if not (model_dir / "inference_info.json").is_file() and not (model_dir / "inference_session_class.json").is_file():
        missing.append("inference_info.json")
    folds = sorted(p for p in model_dir.glob("fold_*") if (p / "checkpoint_final.pth").is_file())
    if not folds:
        missing.append("fold_*/checkpoint_final.pth")
    if missing:
        raise ModelLoadError(f"model folder {model_dir} is incomplete: missing {', '.join(missing)} "
                             f"(write it with nnInteractive_export)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("--device cuda was requested but CUDA is not available")
    try:
        with quiet(not verbose):
            session = _new_session(device, autozoom)
            session.initialize_from_trained_model_folder(str(model_dir), use_fold=folds[0].name.split("_", 1)[1])
    except ModelLoadError:
        raise
    except Exception as e:  # anything the package raises while loading means the folder is unusable
        raise ModelLoadError(f"model folder {model_dir} does not load in nnInteractiveInferenceSession: "
                             f"{type(e).__name__}: {e}") from e
    return session


def num_channels(session) -> int:
    """Number of image channels the loaded model takes (its dataset.json ``channel_names``)."""
    return len(session.dataset_json["channel_names"])


def session_from_network(
    network: torch.nn.Module,
    plans: dict,
    configuration: str,
    dataset_json: dict,
    *,
    device: str | torch.device | None = None,
    decay: float = 0.9,
    export_patch: Sequence[int] | None = None,
    autozoom: bool = False,
):
    """An inference session around an in-memory network, configured exactly as an exported model folder would be.

    Args:
        network: the bare network (no DDP / torch.compile wrapper), deep supervision off while the session runs.
        plans, configuration, dataset_json: as in training; the session gets the export patch (≥ 96 per axis,
            see ``planning.plans.export_configuration``) and the first image channel only.
        device: where the session runs (None: the network's device).
        decay: the interaction decay written to ``inference_info.json`` at export.
        export_patch: the inference patch (None: the training patch raised to ≥ 96 per axis).
        autozoom: the session's AutoZoom (off keeps validation cheap and deterministic in cost).
    """
    from nnInteractive.interaction.point import PointInteraction_stub
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    from nninteractive_train.export import STUB_TRAINER, inference_info
    from nninteractive_train.planning.plans import export_configuration

    if device is None:
        device = next(network.parameters()).device
    device = torch.device(device)
    info = inference_info(decay)
    plans_manager = PlansManager(export_configuration(plans, configuration, export_patch))
    first = sorted(dataset_json["channel_names"], key=int)[0]
    ds_json = {"channel_names": {"0": dataset_json["channel_names"][first]},
               "labels": {"background": 0, "foreground": 1},
               "file_ending": dataset_json.get("file_ending", ".nii.gz")}
    artifacts = {
        "capability_content": info,
        "point_interaction": PointInteraction_stub(info["point_radius"], True),
        "preferred_scribble_thickness": list(info["preferred_scribble_thickness"]),
        "interaction_decay": info["interaction_decay"],
        "pad_mode_data": info["pad_mode_image"],
        "network": network,
        "plans_manager": plans_manager,
        "configuration_manager": plans_manager.get_configuration(configuration),
        "dataset_json": ds_json,
        "trainer_name": STUB_TRAINER,
        "label_manager": plans_manager.get_label_manager(ds_json),
        "license": None,
    }
    with quiet():
        session = _new_session(device, autozoom)
        session.initialize_from_loaded_artifacts(artifacts)
    return session


def apply_prompt(session, kind: str, positive: bool, *, coords=None, bbox=None, patch: np.ndarray | None = None,
                 offset: Sequence[int] | None = None) -> None:
    """Hand one prompt to the session through its public call, which runs a prediction into the target buffer.

    Args:
        kind: "point" (needs `coords`), "bbox" (needs `bbox`, [[lo, hi)] × 3 with size 1 on the slice axis),
            "lasso" or "scribble" (need `patch`, the prompt's non-zero crop, and its `offset` in the volume; the
            crop is passed with ``interaction_bbox`` so the session never copies a full volume).
        positive: include (True) or exclude (False).
    """
    if kind == "point":
        session.add_point_interaction(tuple(int(c) for c in coords), include_interaction=bool(positive))
    elif kind == "bbox":
        session.add_bbox_interaction([[int(lo), int(hi)] for lo, hi in bbox], include_interaction=bool(positive))
    elif kind in ("lasso", "scribble"):
        region = [[int(o), int(o) + int(s)] for o, s in zip(offset, patch.shape)]
        call = session.add_lasso_interaction if kind == "lasso" else session.add_scribble_interaction
        call(np.ascontiguousarray(patch, dtype=np.float32), include_interaction=bool(positive),
             interaction_bbox=region)
    else:
        raise ValueError(f"unknown prompt kind {kind!r}")
