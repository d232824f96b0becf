"""Ready-made step functions for `SimulationPool` (top-level, so "spawn" workers can import them)."""

from __future__ import annotations

import importlib
from typing import Any, Callable

import numpy as np


def _followup() -> Callable:
    # Imported lazily: the pool must not depend on the simulation package at import time.
    try:
        mod = importlib.import_module("nninteractive_train.simulation")
        fn = getattr(mod, "followup", None)
        if fn is None or not callable(fn):  # absent, or the submodule rather than the function
            fn = getattr(importlib.import_module("nninteractive_train.simulation.followup"), "followup")
    except (ImportError, AttributeError) as e:
        raise ImportError("followup_step needs nninteractive_train.simulation.followup(interactions, target, "
                          f"prediction, agent, *, rng, spacing, decay), which is not available: {e}") from e
    return fn


def followup_step(data_sample: np.ndarray, target: np.ndarray, prediction: np.ndarray, agent: Any, meta: dict,
                  *, rng: np.random.Generator, decay: float = 0.9) -> tuple[Any, dict]:
    """One simulated user correction of one sample, in place.

    Calls ``nninteractive_train.simulation.followup`` on the interaction channels ``data_sample[-7:]``
    (prev-seg, bbox+/-, point+/-, scribble+/-; docs/model_folder.md) with the sample's agent, and counts the prompt.

    Args:
        data_sample: (C, X, Y, Z) float32, C = image channels + 7; modified in place.
        target, prediction: (X, Y, Z) bool.
        agent: the sample's user agent (may update itself and is returned).
        meta: per-sample dict; ``spacing`` (mm per axis) is read if present, ``num_interactions`` is
            incremented when a prompt was added.
        rng: the sample's generator.
        decay: factor on existing prompt channels when a prompt is added (bind another value with
            ``functools.partial(followup_step, decay=…)``, which stays picklable).

    Returns:
        (agent, meta).
    """
    prompt = _followup()(data_sample[-7:], target, prediction, agent, rng=rng, spacing=meta.get("spacing"),
                         decay=decay)
    if prompt is not None:
        meta["num_interactions"] = int(meta.get("num_interactions", 0)) + 1
    return agent, meta
