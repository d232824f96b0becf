"""Step functions for the pool tests; a module of their own so "spawn" workers can import them by name."""

from __future__ import annotations

import os
import time

import numpy as np


def add_step(data, target, prediction, agent, meta, *, rng):
    """Deterministic: decay, prediction into prev-seg, +1 on the positive-point channel over false negatives."""
    data[-7:] *= 0.9
    data[-7] = prediction
    data[-4][target & ~prediction] += 1.0
    meta["num_interactions"] = meta.get("num_interactions", 0) + 1
    return agent + 1, meta


def rng_step(data, target, prediction, agent, meta, *, rng):
    """Uses the sample's generator, so results show which stream a sample got."""
    data[-1] += rng.random(data.shape[1:], dtype=np.float32)
    meta["draw"] = float(rng.random())
    return agent, meta


def slow_step(data, target, prediction, agent, meta, *, rng):
    """Writes its pid to meta['marker'] and then blocks (bounded), so a test can kill it mid-batch."""
    marker = meta.get("marker")
    if marker:
        with open(marker + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(marker + ".tmp", marker)
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline:
            time.sleep(0.05)
    return add_step(data, target, prediction, agent, meta, rng=rng)


def fail_step(data, target, prediction, agent, meta, *, rng):
    if meta.get("fail"):
        raise ValueError("boom from fail_step")
    return add_step(data, target, prediction, agent, meta, rng=rng)


def make_batch(seed: int, b: int = 2, c: int = 8, size: int = 12, **meta_extra) -> dict:
    """A small random batch in the pool's layout: data (B, C, X, Y, Z) float32, masks (B, X, Y, Z)."""
    rng = np.random.default_rng(seed)
    shape = (size,) * 3
    return {
        "data": rng.random((b, c, *shape), dtype=np.float32),
        "target": rng.random((b, *shape)) < 0.3,
        "prediction": (rng.random((b, *shape)) < 0.3).astype(np.uint8),
        "agents": [0] * b,
        "meta": [{"id": (seed, i), **meta_extra} for i in range(b)],
    }
