"""The user-simulation worker pool: per-rank processes that turn predicted batches into follow-up batches.

Arrays travel through shared-memory slots, only small metadata through (per-worker) pipes; see
`pool.SimulationPool` for the contract and `steps.followup_step` for the step used in training.

A trainer's loop::

    with SimulationPool(followup_step, 2, seed=seed, rank=rank, max_in_flight=3) as pool:
        pool.prepare(first_batch)                  # allocate the slots once, up front
        for it in range(num_iterations):
            batch = pool.poll() or next(loader)    # a ready follow-up first, else a fresh batch
            prediction = train_step(batch)         # (B, X, Y, Z) bool/uint8
            if rng.random() < p_followup:
                batch["prediction"] = prediction
                pool.submit(batch)                 # a batch from poll() goes back without copying its arrays

A batch from `poll()` holds views of its slot until the next `poll()` / `get()`; keys other than data / target /
prediction / agents / meta (e.g. nnU-Net's deep-supervision targets) are returned by reference, unchanged.
"""

from nninteractive_train.pool.pool import SimulationPool
from nninteractive_train.pool.slots import SHM_PREFIX
from nninteractive_train.pool.steps import followup_step
from nninteractive_train.pool.worker import run_batch, sample_rng

__all__ = ["SimulationPool", "followup_step", "run_batch", "sample_rng", "SHM_PREFIX"]
