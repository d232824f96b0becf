"""The interaction round: after each prediction, maybe send the batch to user simulation; before each step,
prefer a ready follow-up batch over a fresh one.

The pool (``nninteractive_train.pool``) runs the simulation in separate processes, so a follow-up batch is
usually ready one or two steps after its prediction, and the trainer never waits for it.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from nninteractive_train.training.schedule import followup_probability, stream_seed

log = logging.getLogger(__name__)


class InteractionRound:
    """Per-rank follow-up logic and its epoch statistics.

    Args:
        cfg: the run config (``interaction`` and ``training`` sections are read).
        rank: global rank (seeds the stream).
        num_epochs: for the follow-up ramp.
    """

    def __init__(self, cfg, rank: int, num_epochs: int):
        from functools import partial

        from nninteractive_train.pool import SimulationPool, followup_step

        it = cfg.interaction
        self.start, self.end, self.max_interactions = it.p_followup_start, it.p_followup_end, it.max_interactions
        self.num_epochs = num_epochs
        self.rng = np.random.default_rng(stream_seed(cfg.training.seed, rank, 7))
        # 3 slots: one being filled by a worker, one ready, one leased to the step in progress
        self.pool = SimulationPool(partial(followup_step, decay=it.decay), it.num_sim_workers, seed=cfg.training.seed,
                                   rank=rank, max_in_flight=3, copy_in_background=True)
        self.reset_epoch()

    def reset_epoch(self) -> None:
        self.n_batches = self.n_followup_batches = 0
        self.n_samples = self.n_interactions = 0
        self.waits_ms: list[float] = []
        self.submit_ms: list[float] = []

    def probability(self, epoch: int) -> float:
        return followup_probability(epoch, self.num_epochs, self.start, self.end)

    def next_batch(self, loader) -> dict:
        """A ready follow-up batch if one is waiting, else the loader's next fresh batch."""
        t0 = time.perf_counter()
        batch = self.pool.poll()
        followup = batch is not None
        if followup:
            batch["target"] = batch["target"][:, None]  # the pool holds (B, X, Y, Z); the loss wants (B, 1, X, Y, Z)
        else:
            batch = next(loader)
        self.waits_ms.append((time.perf_counter() - t0) * 1e3)
        self.n_batches += 1
        self.n_followup_batches += int(followup)
        self.n_samples += len(batch["meta"])
        self.n_interactions += sum(m["num_interactions"] for m in batch["meta"])
        return batch

    def after_step(self, batch: dict, logits: torch.Tensor, epoch: int) -> bool:
        """Maybe submit the batch with its prediction (argmax of ``logits`` (B, 2, X, Y, Z)) for a follow-up."""
        if self.rng.random() >= self.probability(epoch):
            return False
        if all(m["num_interactions"] >= self.max_interactions for m in batch["meta"]):
            return False
        prediction = logits.argmax(1).to(torch.uint8).cpu().numpy()
        t0 = time.perf_counter()
        accepted = self.pool.submit({
            "data": np.asarray(torch.as_tensor(batch["data"]).cpu().numpy(), dtype=np.float32),
            "target": np.asarray(torch.as_tensor(batch["target"])[:, 0].cpu().numpy(), dtype=np.uint8),
            "prediction": prediction,
            "agents": list(batch["agents"]),
            "meta": [dict(m) for m in batch["meta"]],
        })
        self.submit_ms.append((time.perf_counter() - t0) * 1e3)  # the hand-off; the copy runs on the pool's thread
        return accepted

    def epoch_stats(self) -> dict:
        stats = self.pool.stats()
        return {
            "followup_fraction": self.n_followup_batches / max(self.n_batches, 1),
            "mean_interactions": self.n_interactions / max(self.n_samples, 1),
            "sim_latency_ms": stats.get("latency_ms_median"),
            "data_wait_ms": float(np.median(self.waits_ms)) if self.waits_ms else None,
            "sim_submit_ms": float(np.median(self.submit_ms)) if self.submit_ms else None,
            "sim_dropped": stats.get("dropped", 0),
            "sim_restarted_workers": stats.get("restarted", 0),
        }

    def prepare(self, batch_shape: tuple[int, ...]) -> None:
        """Allocate the pool's shared-memory slots for batches of ``batch_shape`` (B, C, X, Y, Z) now, so that a
        /dev/shm too small for them is one clear error before the first step (``MemoryError`` naming the free
        space) rather than a failure hours into the run."""
        if self.pool.num_workers == 0:
            return  # in-process slots are plain memory, allocated on first use
        b, spatial = batch_shape[0], tuple(batch_shape[2:])
        zeros = {"data": np.broadcast_to(np.float32(0), batch_shape),  # no memory: only shapes are read
                 "target": np.broadcast_to(np.uint8(0), (b, *spatial)),
                 "prediction": np.broadcast_to(np.uint8(0), (b, *spatial)),
                 "agents": [None] * b, "meta": [{}] * b}
        self.pool.prepare(zeros)

    def state_dict(self, include_pending: bool = True, settle_s: float = 60.0) -> dict:
        """The round's stream (follow-up draws, pool batch counter), this epoch's counters and, with
        ``include_pending``, the follow-up batches waiting in the pool (those a worker is simulating are given
        ``settle_s`` seconds to finish)."""
        if include_pending and self.pool.settle(settle_s):
            log.warning("follow-up batches still in simulation after %.0f s are not saved", settle_s)
        counters = {k: getattr(self, k) for k in ("n_batches", "n_followup_batches", "n_samples", "n_interactions")}
        return {"rng": self.rng.bit_generator.state, "pool": self.pool.state_dict(include_ready=include_pending),
                "epoch_counters": counters}

    def load_state_dict(self, state: dict | None) -> None:
        if not state:
            return
        self.rng.bit_generator.state = state["rng"]
        if state.get("pool") is not None:
            self.pool.load_state_dict(state["pool"])
        for k, v in (state.get("epoch_counters") or {}).items():
            setattr(self, k, v)

    def close(self) -> None:
        self.pool.close()
