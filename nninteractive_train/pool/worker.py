"""What runs in a simulation worker: the per-batch step loop (shared with in-process mode) and the serve loop.

Everything here is top-level and importable, because "spawn" workers re-import it by name.
"""

from __future__ import annotations

import os
import pickle
import signal
import time
import traceback
from multiprocessing import shared_memory
from multiprocessing.connection import Connection
from typing import Any, Callable

import numpy as np

from nninteractive_train.pool.slots import Layout, detach, views

StepFn = Callable[..., tuple[Any, dict]]
"""``step_fn(data_sample (C, X, Y, Z) float32 modified in place, target (X, Y, Z) bool,
prediction (X, Y, Z) bool, agent, meta: dict, *, rng) -> (agent, meta)``."""


def sample_rng(seed: int, rank: int, seq: int, index: int) -> np.random.Generator:
    """The generator for sample `index` of the `seq`-th accepted batch of rank `rank`.

    Seeding per batch (not per worker) makes results independent of which worker ran the batch, so
    in-process and multi-worker runs agree, and resuming needs only the batch counter.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(rank, seq, index)))


def run_batch(arrays: dict[str, np.ndarray], agents: list, metas: list, step_fn: StepFn, *,
              seed: int, rank: int, seq: int) -> tuple[list, list]:
    """Apply `step_fn` to each sample of a batch in place; returns the updated (agents, metas).

    Args:
        arrays: ``data`` (B, C, X, Y, Z), ``target`` and ``prediction`` (B, X, Y, Z) (bool or 0/1 integers).
        agents, metas: one per sample.
        seed, rank, seq: seed the per-sample generators (see `sample_rng`).
    """
    data, target, prediction = arrays["data"], arrays["target"], arrays["prediction"]
    out_agents, out_metas = [], []
    for i in range(data.shape[0]):
        agent, meta = step_fn(data[i], _mask(target[i]), _mask(prediction[i]), agents[i], metas[i],
                              rng=sample_rng(seed, rank, seq, i))
        out_agents.append(agent)
        out_metas.append(meta)
    return out_agents, out_metas


def _mask(a: np.ndarray) -> np.ndarray:
    return a if a.dtype == bool else a != 0


def serve(conn: Connection, step_fn: StepFn, index: int) -> None:
    """Worker main loop: receive tasks on `conn`, run them on the shared slots, reply; stop on None or EOF.

    Task: ``(bid, slot, segment name, layout, agents, metas, seed, rank, seq)``. Reply: ``("done", bid,
    agents, metas, t_start, t_done)`` (``time.monotonic``) or ``("error", bid, traceback text)``.
    """
    # The trainer decides when to stop: Ctrl-C and SLURM's pre-timeout signals (sent to every process of the
    # step) must not kill workers mid-batch.
    for name in ("SIGINT", "SIGUSR1", "SIGUSR2"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    parent = os.getppid()
    attached: dict[int, shared_memory.SharedMemory] = {}
    try:
        conn.send(("ready", index, os.getpid()))
        while True:
            if not conn.poll(1.0):
                if os.getppid() != parent:  # orphaned: the trainer died without closing us
                    return
                continue
            msg = conn.recv()
            if msg is None:
                return
            conn.send_bytes(_handle(msg, attached, step_fn))
    except (EOFError, OSError):
        return
    finally:
        for shm in attached.values():
            _close(shm)


def _handle(msg: tuple, attached: dict, step_fn: StepFn) -> bytes:
    bid, slot, name, layout, agents, metas, seed, rank, seq = msg
    t0 = time.monotonic()
    try:
        arrays = views(_attach(attached, slot, name).buf, layout)
        try:
            agents, metas = run_batch(arrays, agents, metas, step_fn, seed=seed, rank=rank, seq=seq)
        finally:
            del arrays  # views must go before the segment can ever be closed
        return pickle.dumps(("done", bid, agents, metas, t0, time.monotonic()), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return pickle.dumps(("error", bid, traceback.format_exc()))


def _attach(attached: dict, slot: int, name: str) -> shared_memory.SharedMemory:
    """The segment of `slot`, mapped once and kept; a new name means the slot was reallocated."""
    shm = attached.get(slot)
    if shm is not None and shm.name.lstrip("/") == name.lstrip("/"):
        return shm
    if shm is not None:
        _close(shm)
    shm = attached[slot] = shared_memory.SharedMemory(name=name)
    return shm


def _close(shm: shared_memory.SharedMemory) -> None:
    try:
        shm.close()
    except BufferError:  # a step function kept a view (e.g. in its agent); let that view own the mapping
        detach(shm)


def layout_message(bid: int, slot: int, name: str, layout: Layout, agents: list, metas: list,
                   seed: int, rank: int, seq: int) -> tuple:
    """The task tuple `serve` expects (kept next to `_handle` so both sides change together)."""
    return (bid, slot, name, layout, agents, metas, seed, rank, seq)
