"""The 7 interaction channels of the nnInteractive network input (docs/model_folder.md) and how prompts are written.

Interaction channel c here is network input channel c + 1 (channel 0 of the network is the image):

====  =================================  ===========================
chan  content                            values
====  =================================  ===========================
0     previous prediction (prev_seg)     {0, 1}
1, 2  bbox (2D/3D) and lasso, pos / neg  filled box / filled region
3, 4  point, pos / neg                   radius-4 ball, EDT profile
5, 6  scribble, pos / neg                scribble mask
====  =================================  ===========================
"""

from __future__ import annotations

import numpy as np

from nninteractive_train.simulation.prompt import Prompt

__all__ = [
    "PREV_SEG",
    "BBOX",
    "LASSO",
    "POINT",
    "SCRIBBLE",
    "NUM_INTERACTION_CHANNELS",
    "POINT_RADIUS",
    "SCRIBBLE_THICKNESS",
    "channel_mapping",
    "channels_of",
    "add_prompt",
    "set_prev_seg",
    "empty_interactions",
]

PREV_SEG = 0
BBOX = (1, 2)
LASSO = BBOX  # the inference package writes lassos into the bbox channels
POINT = (3, 4)
SCRIBBLE = (5, 6)
NUM_INTERACTION_CHANNELS = 7

POINT_RADIUS = 4
"""Radius (voxels) of the point ball; exported as `point_radius`."""
SCRIBBLE_THICKNESS = (2, 2, 2)
"""Scribble width per axis (voxels); exported as `preferred_scribble_thickness` (the package default)."""

_CHANNELS = {"bbox": BBOX, "lasso": LASSO, "point": POINT, "scribble": SCRIBBLE}


def channel_mapping() -> dict:
    """The `channel_mapping` entry of an exported `inference_info.json` (interaction channel indices)."""
    return {
        "prev_seg": PREV_SEG,
        "bbox2d": list(BBOX),
        "bbox3d": list(BBOX),
        "lasso": list(LASSO),
        "points": list(POINT),
        "scribble": list(SCRIBBLE),
    }


def channels_of(kind: str) -> tuple[int, int]:
    """(positive, negative) interaction channels of a prompt kind."""
    try:
        return _CHANNELS[kind]
    except KeyError:
        raise ValueError(f"unknown prompt kind {kind!r}; expected one of {sorted(_CHANNELS)}") from None


def empty_interactions(shape: tuple[int, int, int]) -> np.ndarray:
    """Zeroed float32 interactions (7, X, Y, Z)."""
    return np.zeros((NUM_INTERACTION_CHANNELS, *shape), np.float32)


def _check(interactions: np.ndarray) -> None:
    if not isinstance(interactions, np.ndarray) or interactions.dtype != np.float32:
        raise TypeError(f"interactions must be a float32 numpy array, got {type(interactions).__name__} "
                        f"{getattr(interactions, 'dtype', '')}")
    if interactions.ndim != 4 or interactions.shape[0] != NUM_INTERACTION_CHANNELS:
        raise ValueError(f"interactions must have shape (7, X, Y, Z), got {interactions.shape}")


def add_prompt(interactions: np.ndarray, prompt: Prompt, *, decay: float | None = None) -> np.ndarray:
    """Write a prompt into its channel, in place.

    Args:
        interactions: float32 (7, X, Y, Z); modified in place and returned.
        prompt: the prompt; its mask is merged with np.maximum into its positive or negative channel.
        decay: for a follow-up, every prompt channel (1..6, not prev_seg) is first multiplied by it (0.9 in
            training), so that older prompts weigh less, as the inference session does.
    """
    _check(interactions)
    if tuple(prompt.shape) != interactions.shape[1:]:
        raise ValueError(f"prompt shape {prompt.shape} does not match interactions {interactions.shape[1:]}")
    if decay is not None:
        if not 0 < decay <= 1:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        if decay != 1:
            prompts = interactions[1:]
            np.multiply(prompts, np.float32(decay), out=prompts)
    channel = channels_of(prompt.kind)[0 if prompt.positive else 1]
    # Only the prompt's small patch is touched; the full-volume mask is never built here.
    region = interactions[(channel, *prompt.slices)]
    np.maximum(region, prompt.patch, out=region)
    return interactions


def set_prev_seg(interactions: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Write the latest prediction (bool or {0, 1}, (X, Y, Z)) into the prev_seg channel, in place."""
    _check(interactions)
    if prediction.shape != interactions.shape[1:]:
        raise ValueError(f"prediction shape {prediction.shape} does not match interactions {interactions.shape[1:]}")
    interactions[PREV_SEG] = prediction
    return interactions
