"""The pool returns the same, modified batches in-process and with worker processes."""

from __future__ import annotations

import time

import numpy as np
import pytest

from nninteractive_train.pool import SimulationPool
from pool_test_steps import add_step, make_batch, rng_step

TIMEOUT = 120.0  # deadlock guard only


def run(step, num_workers: int, n: int = 4, **kw) -> list[dict]:
    out = []
    with SimulationPool(step, num_workers, seed=3, rank=1, **kw) as pool:
        for i in range(n):
            assert pool.submit(make_batch(i))
            got = pool.get(timeout=TIMEOUT, copy=True)
            assert got is not None, pool.stats()
            out.append(got)
        assert pool.stats()["completed"] == n
    return out


@pytest.mark.parametrize("step", [add_step, rng_step])
def test_inprocess_and_workers_agree(step):
    here, there = run(step, 0), run(step, 2)
    for a, b in zip(here, there):
        np.testing.assert_array_equal(a["data"], b["data"])
        assert a["meta"] == b["meta"] and a["agents"] == b["agents"]


@pytest.mark.parametrize("num_workers", [0, 1])
def test_data_comes_back_modified_with_extras(num_workers):
    batch = make_batch(7)
    batch["target_ds"] = np.arange(6.0).reshape(2, 3)
    batch["keys"] = ["case_a", "case_b"]
    want = batch["data"].copy()
    for i in range(2):
        want[i, 1:] *= 0.9
        want[i, 1] = batch["prediction"][i]
        want[i, 4][batch["target"][i] & ~batch["prediction"][i].astype(bool)] += 1.0
    with SimulationPool(add_step, num_workers) as pool:
        assert pool.submit(batch)
        got = pool.get(timeout=TIMEOUT)
        np.testing.assert_allclose(got["data"], want, rtol=1e-6)
        np.testing.assert_array_equal(got["target"], batch["target"])
        assert got["target_ds"] is batch["target_ds"] and got["keys"] == ["case_a", "case_b"]
        assert got["agents"] == [1, 1] and [m["num_interactions"] for m in got["meta"]] == [1, 1]


@pytest.mark.parametrize("num_workers", [0, 1])
def test_zero_copy_resubmit_and_lease_release(num_workers):
    with SimulationPool(add_step, num_workers, max_in_flight=1) as pool:
        assert pool.submit(make_batch(1))
        got = pool.get(timeout=TIMEOUT)
        name = pool.segment_names()
        got["prediction"] = np.zeros_like(got["prediction"])  # a new prediction, as the trainer would give
        assert pool.submit(got)  # the only slot is this batch's own: resubmitting must reuse it
        again = pool.get(timeout=TIMEOUT)
        assert [m["num_interactions"] for m in again["meta"]] == [2, 2]
        assert again["agents"] == [2, 2] and pool.segment_names() == name
        assert pool.stats()["leased"] == 1
        assert pool.poll() is None  # the next poll takes the slot back
        assert pool.stats()["leased"] == 0 and pool.submit(make_batch(2))


def test_state_dict_continues_the_stream():
    with SimulationPool(rng_step, 0, seed=5) as pool:
        for i in range(2):
            pool.submit(make_batch(i))
            pool.get()
        state = pool.state_dict()
        pool.submit(make_batch(9))
        first = pool.get(copy=True)
    with SimulationPool(rng_step, 0, seed=5) as pool:
        pool.load_state_dict(state)
        pool.submit(make_batch(9))
        second = pool.get(copy=True)
    np.testing.assert_array_equal(first["data"], second["data"])
    assert first["meta"] == second["meta"]


@pytest.mark.parametrize("num_workers", [0, 1])
def test_state_dict_carries_ready_batches(num_workers):
    """A checkpoint of the pool holds the batches waiting to be polled (after `settle`, also those a worker was
    still simulating); a new pool loaded from it hands them out in the same order, then continues the stream
    exactly as the old pool does."""
    with SimulationPool(rng_step, num_workers, seed=5, max_in_flight=3) as pool:
        for i in range(2):
            assert pool.submit(make_batch(i))
        assert pool.settle(TIMEOUT) == 0
        state = pool.state_dict(include_ready=True)
        want = [pool.poll(copy=True) for _ in range(2)]
        pool.submit(make_batch(9))
        want.append(pool.get(timeout=TIMEOUT, copy=True))
    assert [len(state["ready"]), state["seq"]] == [2, 2]
    with SimulationPool(rng_step, num_workers, seed=5, max_in_flight=3) as pool:
        pool.load_state_dict(state)
        got = [pool.poll(copy=True) for _ in range(2)]
        pool.submit(make_batch(9))
        got.append(pool.get(timeout=TIMEOUT, copy=True))
        assert pool.poll() is None
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a["data"], b["data"])
        np.testing.assert_array_equal(a["prediction"], b["prediction"])
        assert a["meta"] == b["meta"] and a["agents"] == b["agents"]


def test_saved_ready_batches_must_fit():
    with SimulationPool(add_step, 0, max_in_flight=2) as pool:
        for i in range(2):
            pool.submit(make_batch(i))
        state = pool.state_dict(include_ready=True)
    with SimulationPool(add_step, 0, max_in_flight=1) as pool:
        with pytest.raises(RuntimeError, match="do not fit"):
            pool.load_state_dict(state)


def test_new_shape_reallocates_slot():
    with SimulationPool(add_step, 0, max_in_flight=1) as pool:
        pool.submit(make_batch(0, size=8))
        pool.get(copy=True)
        assert pool.submit(make_batch(1, size=10))
        assert pool.get()["data"].shape == (2, 8, 10, 10, 10)


@pytest.mark.parametrize("change,error", [
    (lambda b: b.pop("meta"), ValueError),
    (lambda b: b.update(target=b["target"][:, :5]), ValueError),
    (lambda b: b.update(agents=[0]), ValueError),
    (lambda b: b.update(data=b["data"].astype(np.int32)), TypeError),
])
def test_bad_batch_is_a_clear_error(change, error):
    batch = make_batch(0)
    change(batch)
    with SimulationPool(add_step, 0) as pool, pytest.raises(error):
        pool.submit(batch)


def test_unpicklable_step_refused_for_workers():
    with pytest.raises(TypeError, match="picklable"):
        SimulationPool(lambda *a, **k: a[3:5], 1)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_prepare_allocates_every_slot_once(num_workers):
    with SimulationPool(add_step, num_workers, max_in_flight=3) as pool:
        pool.prepare(make_batch(0))
        names = pool.segment_names()
        assert pool.stats()["slot_mib"] > 0 and len(names) == (3 if num_workers else 0)
        for i in range(3):
            assert pool.submit(make_batch(i))
        assert pool.segment_names() == names and not pool.submit(make_batch(4))


def test_background_copy_gives_the_same_batches():
    """copy_in_background only moves the copy into a slot off the caller's thread: same outputs, same streams."""
    plain = run(rng_step, 1)
    background = run(rng_step, 1, copy_in_background=True)
    for a, b in zip(plain, background):
        np.testing.assert_array_equal(a["data"], b["data"])
        assert a["meta"] == b["meta"] and a["agents"] == b["agents"]


def test_background_copy_counts_in_flight_and_closes_cleanly():
    batch = make_batch(3, size=48)
    pool = SimulationPool(add_step, 1, max_in_flight=2, copy_in_background=True)
    try:
        assert pool.submit(batch) and pool.submit(make_batch(4, size=48))
        assert pool.stats()["in_flight"] == 2  # filling or running: both slots are taken
        assert not pool.submit(make_batch(5, size=48))  # and a third batch is refused, not queued
        got = pool.get(timeout=TIMEOUT, copy=True)
        assert got is not None and [m["num_interactions"] for m in got["meta"]] == [1, 1]
        assert pool.submit(make_batch(6, size=48))
    finally:
        pool.close()  # with a copy possibly still running: must not crash or leak the segments
    assert pool.segment_names() == []


def test_background_copy_dispatches_without_another_call():
    """The copy thread hands the batch to a worker itself: after a pause, the very next poll() has it."""
    with SimulationPool(add_step, 1, copy_in_background=True) as pool:
        pool.submit(make_batch(1))  # warm-up: the worker's start-up and first mapping of the slot
        assert pool.get(timeout=TIMEOUT, copy=True) is not None
        assert pool.submit(make_batch(2, size=32))
        time.sleep(5.0)  # no pool call while the batch is copied, dispatched and simulated (milliseconds of work)
        got = pool.poll(copy=True)  # without the copy thread's dispatch this call would only start the batch
        assert got is not None and [m["num_interactions"] for m in got["meta"]] == [1, 1]
