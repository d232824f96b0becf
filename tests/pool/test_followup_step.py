"""`followup_step` hands the interaction channels to the simulation package and counts prompts."""

from __future__ import annotations

import numpy as np
import pytest

from nninteractive_train.pool import SimulationPool, followup_step
from nninteractive_train.pool import steps


def fake_followup(interactions, target, prediction, agent, *, rng, spacing, decay):
    assert interactions.shape[0] == 7
    interactions[1:] *= decay
    interactions[0] = prediction
    if agent == "silent":
        return None
    interactions[3][target & ~prediction] = 1.0
    return "a prompt"


@pytest.mark.parametrize("agent,added", [("clicker", 1), ("silent", 0)])
def test_followup_step_writes_last_seven_channels(monkeypatch, agent, added):
    monkeypatch.setattr(steps, "_followup", lambda: fake_followup)
    rng = np.random.default_rng(0)
    sample = rng.random((8, 6, 6, 6), dtype=np.float32)
    image = sample[0].copy()
    target, prediction = rng.random((2, 6, 6, 6)) < 0.5
    _, meta = followup_step(sample, target, prediction, agent, {"num_interactions": 1}, rng=rng)
    np.testing.assert_array_equal(sample[0], image)  # the image channel is not an interaction channel
    np.testing.assert_array_equal(sample[1], prediction)
    assert meta["num_interactions"] == 1 + added


def test_followup_step_with_the_simulation_package():
    sim = pytest.importorskip("nninteractive_train.simulation")
    rng = np.random.default_rng(1)
    shape = (24, 24, 24)
    target = np.zeros(shape, bool)
    target[6:18, 6:18, 6:18] = True
    prediction = np.zeros(shape, bool)
    prediction[6:18, 6:12, 6:18] = True
    data = np.zeros((2, 8, *shape), np.float32)
    batch = {"data": data, "target": np.stack([target] * 2), "prediction": np.stack([prediction] * 2),
             "agents": [sim.draw_agent(rng=rng) for _ in range(2)],
             "meta": [{"num_interactions": 1, "spacing": (1.0, 1.0, 2.0)} for _ in range(2)]}
    with SimulationPool(followup_step, 1) as pool:
        assert pool.submit(batch)
        got = pool.get(timeout=120, copy=True)
    assert got is not None, "the real follow-up step failed in the worker (see the log)"
    assert [m["num_interactions"] for m in got["meta"]] == [2, 2]
    np.testing.assert_array_equal(got["data"][:, 1], batch["prediction"])
    assert got["data"][:, 2:].max() > 0  # some prompt was drawn
