"""`simulate_prompt`: the entry point of the prompt simulation (input checks, region choice, dispatch by kind)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from nninteractive_train.simulation.bbox import draw_bbox
from nninteractive_train.simulation.errors import Region, fragment, pick_error, pick_target
from nninteractive_train.simulation.lasso import draw_lasso
from nninteractive_train.simulation.params import SimulationParams, make_params
from nninteractive_train.simulation.point import draw_point
from nninteractive_train.simulation.prompt import KINDS, Prompt
from nninteractive_train.simulation.scribble import draw_scribble

__all__ = ["simulate_prompt", "check_spacing"]

_DRAW = {"point": draw_point, "bbox": draw_bbox, "lasso": draw_lasso, "scribble": draw_scribble}


def check_spacing(spacing: Sequence[float] | None) -> tuple[float, float, float]:
    """Validated voxel size (mm per axis, 3 positive numbers); None means isotropic 1."""
    if spacing is None:
        return (1.0, 1.0, 1.0)
    out = tuple(float(s) for s in spacing)
    if len(out) != 3 or not all(np.isfinite(s) and s > 0 for s in out):
        raise ValueError(f"spacing must be 3 positive finite numbers (mm per axis), got {spacing!r}")
    return out


def _as_mask(name: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 3:
        raise ValueError(f"{name} must be a 3D (X, Y, Z) array, got shape {array.shape}")
    if array.dtype != bool:
        # Accept {0, 1} masks (e.g. uint8 argmax output), but never silently threshold other values.
        binary = array.astype(bool)
        if array.size and (array.min() < 0 or array.max() > 1 or not np.array_equal(binary, array)):
            raise ValueError(f"{name} must be boolean or contain only 0 and 1 (dtype {array.dtype})")
        array = binary
    return array


def simulate_prompt(
    kind: str,
    target: np.ndarray,
    prediction: np.ndarray | None = None,
    *,
    rng: np.random.Generator,
    spacing: Sequence[float] | None = None,
    params: SimulationParams | None = None,
    **overrides,
) -> Prompt | None:
    """Simulate one user prompt of `kind`, initial (no prediction) or follow-up (from the prediction's error).

    Args:
        kind: "point", "bbox", "lasso" or "scribble".
        target: bool (X, Y, Z), the object.
        prediction: bool (X, Y, Z) or None. None: an initial, positive prompt on the target. Otherwise a
            follow-up: false negatives and false positives are split into 26-connected components, one is
            chosen with probability ∝ its size; FN gives a positive prompt, FP a negative one.
        rng: the only source of randomness (same generator state → same prompt).
        spacing: voxel size (mm per axis); used by the point's EDT and the fragmentation noise.
        params: a `SimulationParams`; keyword `overrides` replace single fields (e.g. ``alphas=(8.0,)``).

    Returns:
        The prompt, or None when the target is empty (initial) or there is no error left (follow-up). When
        `kind` cannot be drawn on the chosen component (a scribble on a tiny component), a point is returned
        instead unless ``fallback=False`` (then None).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown prompt kind {kind!r}; expected one of {KINDS}")
    p = make_params(params, **overrides)
    spacing = check_spacing(spacing)
    target = _as_mask("target", target)
    if prediction is None:
        region = pick_target(target)
    else:
        prediction = _as_mask("prediction", prediction)
        if prediction.shape != target.shape:
            raise ValueError(f"prediction shape {prediction.shape} differs from target shape {target.shape}")
        region = pick_error(target, prediction, rng=rng)
        if region is not None and kind in ("bbox", "lasso") and p.fragment:
            region = fragment(region, rng=rng, spacing=spacing, period=p.noise_period,
                              threshold=p.noise_threshold)
    if region is None:
        return None
    prompt = _draw(kind, region, rng=rng, spacing=spacing, params=p)
    if prompt is None and p.fallback and kind != "point":
        prompt = _draw("point", region, rng=rng, spacing=spacing, params=p)
    return prompt


def _draw(kind: str, region: Region, *, rng: np.random.Generator, spacing, params: SimulationParams) -> Prompt | None:
    return _DRAW[kind](region, rng=rng, spacing=spacing, params=params)
