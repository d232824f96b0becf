"""Interactive validation during training: the per-kind protocol through the real inference session, run on the
model in memory (no export), cheap enough for every epoch or every N epochs on rank 0."""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from nninteractive_train.evaluation.protocols import evaluate_case
from nninteractive_train.evaluation.session import session_from_network

__all__ = ["interactive_validation", "load_raw_validation_cases", "load_validation_cases"]


@contextlib.contextmanager
def _inference_mode_of(network: torch.nn.Module, set_deep_supervision: Callable[[bool], None] | None) -> Iterator:
    """eval() and deep supervision off for the duration; both restored afterwards (also on errors)."""
    was_training = network.training
    decoder = getattr(network, "decoder", None)
    had_ds = getattr(decoder, "deep_supervision", None)
    if set_deep_supervision is not None:
        set_deep_supervision(False)
    elif had_ds is not None:
        decoder.deep_supervision = False
    network.eval()
    try:
        yield
    finally:
        network.train(was_training)
        if set_deep_supervision is not None:
            set_deep_supervision(bool(had_ds) if had_ds is not None else True)
        elif had_ds is not None:
            decoder.deep_supervision = had_ds


def interactive_validation(
    network: torch.nn.Module,
    plans: dict,
    configuration: str,
    dataset_json: dict,
    cases: Sequence[tuple[np.ndarray, np.ndarray, Sequence[float]]],
    *,
    rng: np.random.Generator,
    device: str | torch.device | None = None,
    kinds: Sequence[str] = ("point", "bbox", "lasso", "scribble"),
    steps: int = 2,
    max_objects_per_case: int = 2,
    min_object_size: int = 10,
    decay: float = 0.9,
    export_patch: Sequence[int] | None = None,
    autozoom: bool = False,
    nsd_tolerance: float | None = None,
    set_deep_supervision: Callable[[bool], None] | None = None,
) -> dict:
    """Dice after 1, 2, …, ``steps + 1`` prompts of simulated users, through ``nnInteractiveInferenceSession``
    built around the in-memory network (the same session, inference_info and export patch as an exported model).

    Args:
        network: the bare network (unwrap DDP / torch.compile first, e.g. ``trainer.module``). It is put in eval
            mode with deep supervision off for the call and restored afterwards.
        plans, configuration, dataset_json: the run's plans, configuration name and dataset.json.
        cases: held-out cases, each (image float32 (C, X, Y, Z), label int (X, Y, Z), spacing (3,) mm per array
            axis); only the first image channel is used. The label's objects are the 26-connected components of
            each value > 0 (instance or semantic maps both work). The session z-scores the image itself, so raw
            or nnU-Net-preprocessed intensities both work.
        rng: random source (objects are the largest ones; the prompts are drawn from rng).
        device: where the session runs (None: the network's device).
        kinds: per-kind runs (subset of point, bbox, lasso, scribble, random).
        steps: follow-ups after the initial prompt (2 gives Dice after 1, 2 and 3 prompts).
        max_objects_per_case: the largest objects of each case are evaluated.
        decay, export_patch: as written at export (``inference_info.json`` decay, inference patch).
        autozoom: the session's AutoZoom (off: cheaper, one forward pass per prompt for small objects).
        nsd_tolerance: also report NSD at this tolerance (mm); None skips NSD (cheaper).
        set_deep_supervision: e.g. ``trainer.set_deep_supervision_enabled``; None toggles
            ``network.decoder.deep_supervision`` directly.

    Returns:
        ``val_dice_1`` … ``val_dice_<steps + 1>`` (mean over objects and kinds; NaN when nothing was evaluated),
        ``val_dice_1_<kind>`` (Dice after the first prompt, per kind),
        ``val_nsd_<k>`` likewise when `nsd_tolerance` is given, ``val_objects`` (objects evaluated),
        ``val_failures`` (cases or runs that raised) and ``val_seconds`` (wall time of the call).
    """
    t0 = time.perf_counter()
    rows, failures = [], 0
    with _inference_mode_of(network, set_deep_supervision):
        session = session_from_network(network, plans, configuration, dataset_json, device=device, decay=decay,
                                       export_patch=export_patch, autozoom=autozoom)
        try:
            for i, (image, label, spacing) in enumerate(cases):
                image = np.asarray(image, np.float32)
                if image.ndim == 3:
                    image = image[None]
                try:
                    got, failed = evaluate_case(
                        session, image[:1], np.asarray(label), spacing, rng=rng, protocols=("per-kind",),
                        kinds=tuple(kinds), steps=steps, tolerance=nsd_tolerance, min_object_size=min_object_size,
                        max_objects=max_objects_per_case, case=str(i))
                except ValueError:  # a case without usable objects is skipped, not fatal for training
                    failures += 1
                    continue
                rows.extend(got)
                failures += len(failed)
        finally:
            executor = getattr(session, "executor", None)  # the session's preprocessing threads
            if executor is not None:
                executor.shutdown(wait=True)
    out: dict = {}
    for k in range(1, steps + 2):
        dices = [r["dice"] for r in rows if r["prompts"] == k]
        out[f"val_dice_{k}"] = float(np.mean(dices)) if dices else float("nan")
        if nsd_tolerance is not None:
            nsds = [r["nsd"] for r in rows if r["prompts"] == k]
            out[f"val_nsd_{k}"] = float(np.mean(nsds)) if nsds else float("nan")
    for kind in kinds:
        dices = [r["dice"] for r in rows if r["prompts"] == 1 and r["kind"] == kind]
        out[f"val_dice_1_{kind}"] = float(np.mean(dices)) if dices else float("nan")
    out["val_objects"] = len({(r["case"], r["object"]) for r in rows})
    out["val_failures"] = failures
    out["val_seconds"] = time.perf_counter() - t0
    return out


def load_raw_validation_cases(dataset, names: Sequence[str] | None = None, *,
                              max_cases: int = 2) -> list[tuple[np.ndarray, np.ndarray, tuple]]:
    """Held-out cases for `interactive_validation` from an nnU-Net raw dataset (id, name or folder): its
    ``imagesTr`` cases ``names`` (None: the first `max_cases`), read as ``nnInteractive_evaluate`` reads them."""
    import json

    from nninteractive_train.data.paths import find_dataset
    from nninteractive_train.evaluation.runner import list_cases, load_case

    folder = find_dataset(dataset)
    ending = json.loads((folder / "dataset.json").read_text()).get("file_ending", ".nii.gz")
    names = list(names) if names else list_cases(folder, "imagesTr", ending)[:max_cases]
    return [load_case(folder, n, file_ending=ending) for n in names]


def load_validation_cases(dataset, identifiers: Sequence[str] | None = None, *, max_cases: int = 2,
                          spacing: Sequence[float] | None = None) -> list[tuple[np.ndarray, np.ndarray, tuple]]:
    """Held-out cases for `interactive_validation` from an nnU-Net preprocessed dataset object.

    Args:
        dataset: an ``nnUNetBaseDataset`` (e.g. ``trainer.get_tr_and_val_datasets()[1]``): ``identifiers`` and
            ``load_case(identifier) -> (data, seg, seg_prev, properties)``.
        identifiers: which cases (None: the dataset's, in order); the first `max_cases` are loaded.
        spacing: mm per array axis (None: each case's ``properties["spacing"]``, i.e. the native spacing, which is
            the training spacing for the no-resampling plans).

    Returns:
        [(image float32 (1, X, Y, Z), label int32 (X, Y, Z), spacing)], loaded into memory once (decompressed).
    """
    ids = list(dataset.identifiers if identifiers is None else identifiers)[:max_cases]
    out = []
    for ident in ids:
        data, seg, _, props = dataset.load_case(ident)
        sp = tuple(float(s) for s in (props["spacing"] if spacing is None else spacing))
        out.append((np.asarray(data[:1], dtype=np.float32), np.asarray(seg[0]).astype(np.int32), sp))
    return out
