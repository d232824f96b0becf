"""`SimulationPool`: the per-rank process pool that turns predicted batches into follow-up batches.

Data flow (one rank)::

    trainer --submit(batch)--> slot (shared memory) --task: slot id, agents, meta--> worker k
       ^                                                                               | step_fn per sample,
       +--- poll()/get(): views of the slot <-- reply: agents, meta <------------------+ in place in the slot

Each worker has its own pipe, so a worker killed mid-message corrupts nothing shared; the pool sees it die
(process sentinel / EOF), drops the batch it held, frees the slot and starts a replacement. Nothing waits
without a timeout, and a batch stuck longer than ``task_timeout_s`` gets its worker killed the same way.

Public methods are serialised by one lock. With ``copy_in_background`` a helper thread copies a fresh batch into
its slot and dispatches it to a worker as soon as the copy is done, so neither the copy nor the wait for the next
call lands on the training thread.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import pickle
import threading
import time
import traceback
import weakref
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing import connection, resource_tracker
from typing import Any

import numpy as np

from nninteractive_train.pool.records import copy_arrays, locked, Resources, shutdown, Task, Worker
from nninteractive_train.pool.slots import ARRAY_KEYS, OBJECT_KEYS, Slot, check_batch, new_name, plan_layout, \
    same_memory
from nninteractive_train.pool.worker import StepFn, layout_message, run_batch, serve

log = logging.getLogger(__name__)

_STARTUP_FAILURES = 3  # workers in a row that die before saying "ready": the step cannot even be imported


class SimulationPool:
    """A pool of user-simulation workers for one training rank.

    Args:
        step_fn: picklable top-level function applied to every sample (see `worker.StepFn`); "spawn"
            workers import it by name, so lambdas and closures are refused.
        num_workers: worker processes; 0 runs the same code in this process, synchronously in `submit`.
        seed, rank: seed the per-sample generators from (seed, rank, batch counter, sample index).
        max_in_flight: batch slots, i.e. batches owned by the pool at once (queued, running, ready, or handed
            out by ``poll(copy=False)`` and not yet resubmitted). Each slot is one batch of shared memory
            (3 × 8 × 192³ float32 plus masks ≈ 0.72 GB).
        start_method: multiprocessing start method ("spawn", "forkserver" or "fork").
        task_timeout_s: a batch held by a worker longer than this gets the worker killed and the batch dropped.
        max_consecutive_failures: this many batches lost in a row (errors or deaths, no success between) raise
            RuntimeError, so a broken step function fails loudly instead of silently disabling follow-ups.
        copy_in_background: `submit` of a fresh batch returns at once; a helper thread copies it into the slot
            (192³, batch 3: 688 MiB, 40–90 ms) and dispatches it. The arrays are read after `submit` returns, so
            the caller must not modify them afterwards (the trainer never reuses a batch). Ignored with
            ``num_workers=0``.
    """

    def __init__(self, step_fn: StepFn, num_workers: int = 2, *, seed: int = 0, rank: int = 0,
                 max_in_flight: int = 2, start_method: str = "spawn", task_timeout_s: float = 600.0,
                 max_consecutive_failures: int = 20, copy_in_background: bool = False):
        if num_workers < 0 or max_in_flight < 1:
            raise ValueError(f"need num_workers >= 0 and max_in_flight >= 1, got {num_workers}, {max_in_flight}")
        if seed < 0 or rank < 0:
            raise ValueError(f"seed and rank must be >= 0, got {seed}, {rank}")
        if num_workers:
            try:
                pickle.dumps(step_fn)
            except Exception as e:
                raise TypeError(f"step_fn must be a picklable top-level function (workers import it by name): "
                                f"{step_fn!r}: {e}") from e
        self.step_fn, self.num_workers, self.seed, self.rank = step_fn, num_workers, seed, rank
        self.max_in_flight, self.task_timeout_s = max_in_flight, task_timeout_s
        self.max_consecutive_failures = max_consecutive_failures
        self._res = Resources(slots=[None] * max_in_flight)
        self._state = ["free"] * max_in_flight  # free | filling | busy | ready | leased
        self._tasks: dict[int, Task] = {}
        self._ready: deque = deque()
        self._lock = threading.RLock()
        self._filling: dict[int, tuple[Future, Task, list, list]] = {}  # slot -> copy in progress
        self._copier = ThreadPoolExecutor(1, "nnit-pool-copy") if copy_in_background and num_workers else None
        self._seq = 0
        self._counts = dict(submitted=0, rejected=0, completed=0, dropped=0, errors=0, restarted=0)
        self._latency: deque = deque(maxlen=1000)
        self._compute: deque = deque(maxlen=1000)
        self._failures_in_row = self._startup_failures = 0
        self._last_error = ""
        self._closed = False
        self._finalizer = weakref.finalize(self, shutdown, self._res)
        self._ctx = mp.get_context(start_method) if num_workers else None
        if num_workers:
            resource_tracker.ensure_running()  # children must share it, or theirs would unlink our segments
            for i in range(num_workers):
                self._start(i)

    # ------------------------------------------------------------------ public API
    @locked
    def submit(self, batch: dict) -> bool:
        """Hand a predicted batch to the pool; False (counted as rejected) when every slot is taken.

        Args:
            batch: ``data`` (B, C, X, Y, Z) float32 whose last 7 channels are the interactions, ``target`` and
                ``prediction`` (B, X, Y, Z) bool/uint8, ``agents`` and ``meta`` (lists of B picklable objects);
                any other key is kept here and returned unchanged (by reference). Arrays are copied into a slot,
                except those that already are the slot's (a batch from ``poll(copy=False)`` coming back).

        Raises:
            ValueError / TypeError: malformed batch. RuntimeError: the pool is closed or keeps failing.
        """
        self._check_open()
        arrays = check_batch(batch)
        self._pump()
        own = self._lease_of(arrays["data"])
        if own is not None:
            self._state[own] = "free"
        free = [i for i, s in enumerate(self._state) if s == "free"]
        if not free:
            self._counts["rejected"] += 1
            return False
        if own is not None:
            idx = own
        else:  # a slot already laid out for this shape, so mixed shapes do not reallocate back and forth
            layout = plan_layout(arrays)[0]
            idx = next((i for i in free if self._res.slots[i] is not None and self._res.slots[i].fits(layout)),
                       free[0])
        slot = self._slot_for(idx, arrays)
        pending = {k: v for k, v in arrays.items() if not same_memory(v, slot.arrays[k])}
        rest = {k: v for k, v in batch.items() if k not in ARRAY_KEYS + OBJECT_KEYS}
        task = Task(slot=idx, seq=self._seq, t_submit=time.monotonic(), rest=rest)
        agents, metas = list(batch["agents"]), list(batch["meta"])
        self._seq += 1
        self._counts["submitted"] += 1
        if pending and self._copier is not None:
            self._state[idx] = "filling"
            future = self._copier.submit(copy_arrays, slot.arrays, pending)
            self._filling[idx] = (future, task, agents, metas)
            future.add_done_callback(self._filled)  # runs on the copy thread: dispatch without waiting for us
            return True
        copy_arrays(slot.arrays, pending)
        self._state[idx] = "busy"
        if self.num_workers == 0:
            self._run_here(task, agents, metas)
        else:
            self._dispatch(task, agents, metas)
        return True

    @locked
    def prepare(self, batch: dict) -> None:
        """Allocate every free slot for batches shaped like `batch` and touch its pages, now rather than
        during training (a one-off ~0.5–1.5 s per 0.7 GB slot; a too-small /dev/shm fails here, clearly)."""
        self._check_open()
        arrays = check_batch(batch)
        for i, state in enumerate(self._state):
            if state == "free":
                for a in self._slot_for(i, arrays).arrays.values():
                    a.fill(0)

    @locked
    def poll(self, *, copy: bool = False) -> dict | None:
        """A finished batch, or None; never blocks.

        With ``copy=False`` the arrays are views of the pool's slot, valid until the next `poll`/`get` call
        (which takes the slot back) unless the batch is passed to `submit` first (then nothing is copied).
        ``copy=True`` returns private arrays and frees the slot at once.
        """
        self._check_open()
        self._release_leases()
        self._pump()
        return self._pop(copy)

    def get(self, timeout: float | None = None, *, copy: bool = False) -> dict | None:
        """Like `poll`, but waits up to `timeout` seconds (None: until a batch or nothing left in flight)."""
        with self._lock:
            self._check_open()
            self._release_leases()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                self._pump()
                if self._ready:
                    return self._pop(copy)
                if not self._tasks and not self._filling:
                    return None
                waitables = [w.conn for w in self._res.workers.values()] + \
                    [w.proc.sentinel for w in self._res.workers.values()]
            left = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
            if left <= 0:
                return None
            connection.wait(waitables, timeout=left)

    @locked
    def release(self, batch: dict) -> bool:
        """Give back the slot of a batch from ``poll(copy=False)`` early; False if it holds none."""
        idx = self._lease_of(np.asarray(batch.get("data")))
        if idx is None:
            return False
        self._state[idx] = "free"
        return True

    @locked
    def stats(self) -> dict:
        """Counters since start and latency (submit → result received, ms) over the last 1000 batches."""
        lat, comp = np.asarray(self._latency), np.asarray(self._compute)
        out: dict[str, Any] = dict(self._counts)
        out.update(
            in_flight=sum(s in ("busy", "filling") for s in self._state),
            ready=len(self._ready),
            leased=sum(s == "leased" for s in self._state),
            workers_alive=sum(w.proc.is_alive() for w in self._res.workers.values()),
            latency_ms_median=float(np.median(lat)) if lat.size else None,
            latency_ms_p95=float(np.percentile(lat, 95)) if lat.size else None,
            compute_ms_median=float(np.median(comp)) if comp.size else None,
            slot_mib=sum(s.size for s in self._res.slots if s is not None) / 2**20,
        )
        return out

    @locked
    def state_dict(self, *, include_ready: bool = False) -> dict:
        """What resuming needs to continue the same random streams: the batch counter, and with
        ``include_ready`` copies of the finished batches not yet polled, in order (``ready``: dicts of ``data``,
        ``target``, ``prediction``, ``agents``, ``meta``). Batches still being copied or simulated are not included:
        call `settle` first to let them finish."""
        state = {"seed": self.seed, "rank": self.rank, "seq": self._seq}
        if include_ready:
            state["ready"] = [{**{k: v.copy() for k, v in self._res.slots[task.slot].arrays.items()},
                               "agents": list(agents), "meta": [dict(m) for m in metas]}
                              for task, agents, metas in self._ready]
        return state

    @locked
    def load_state_dict(self, state: dict) -> None:
        """Continue the batch counter of ``state`` and queue its ``ready`` batches (if any) as ready, in order:
        the next `poll` returns the first. Raises RuntimeError when they do not fit in the free slots."""
        self._check_open()
        if int(state.get("seed", self.seed)) != self.seed:
            log.warning("pool state was saved with seed %s, this pool uses %s", state.get("seed"), self.seed)
        self._seq = int(state["seq"])
        for batch in state.get("ready") or []:
            arrays = check_batch(batch)
            free = [i for i, st in enumerate(self._state) if st == "free"]
            if not free:
                raise RuntimeError(f"{len(state['ready'])} saved follow-up batches do not fit in this pool's "
                                   f"{self.max_in_flight} slots (max_in_flight)")
            slot = self._slot_for(free[0], arrays)
            copy_arrays(slot.arrays, arrays)
            self._state[free[0]] = "ready"
            self._ready.append((Task(slot=free[0], seq=-1, t_submit=time.monotonic(), rest={}),
                                list(batch["agents"]), list(batch["meta"])))

    def settle(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for the batches being copied or simulated to finish (they become
        ready; nothing is popped). Returns how many are still in flight (0: all settled)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                self._check_open()
                self._pump()
                left = len(self._tasks) + len(self._filling)
                waitables = [w.conn for w in self._res.workers.values()] + \
                    [w.proc.sentinel for w in self._res.workers.values()]
            wait = min(0.05 if self._filling else 1.0, deadline - time.monotonic())
            if left == 0 or wait <= 0:
                return left
            connection.wait(waitables, timeout=wait)

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring and tests)."""
        return [w.proc.pid for w in self._res.workers.values() if w.proc.pid is not None]

    def segment_names(self) -> list[str]:
        """Names of the shared-memory segments currently allocated."""
        return [s.name for s in self._res.slots if s is not None and s.name]

    def close(self) -> None:
        """Stop the workers and free shared memory; idempotent. Also runs at interpreter exit."""
        with self._lock:
            self._closed = True
        if self._copier is not None:  # outside the lock: a finishing copy's callback takes it
            self._copier.shutdown(wait=True)  # a copy must not write into a slot being unmapped
        with self._lock:
            self._filling.clear()
            self._ready.clear()
            self._tasks.clear()
            self._finalizer()

    def __enter__(self) -> "SimulationPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ slots and results
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("SimulationPool is closed")

    def _lease_of(self, data: np.ndarray) -> int | None:
        for i, s in enumerate(self._state):
            slot = self._res.slots[i]
            if s == "leased" and slot is not None and same_memory(data, slot.arrays["data"]):
                return i
        return None

    def _release_leases(self) -> None:
        self._state = ["free" if s == "leased" else s for s in self._state]

    def _slot_for(self, idx: int, arrays: dict) -> Slot:
        layout, size = plan_layout(arrays)
        slot = self._res.slots[idx]
        if slot is not None and slot.fits(layout):
            return slot
        if slot is not None:
            log.info("pool slot %d reallocated for a batch of a new shape %s", idx, arrays["data"].shape)
            slot.close()
            self._res.slots[idx] = None
        shared = self.num_workers > 0
        slot = Slot(layout, size, shared=shared, name=new_name(idx) if shared else None)
        self._res.slots[idx] = slot
        return slot

    def _pop(self, copy: bool) -> dict | None:
        if not self._ready:
            return None
        task, agents, metas = self._ready.popleft()
        slot = self._res.slots[task.slot]
        arrays = {k: (v.copy() if copy else v) for k, v in slot.arrays.items()}
        self._state[task.slot] = "free" if copy else "leased"
        return {**task.rest, **arrays, "agents": agents, "meta": metas}

    def _finish(self, bid: int, agents: list, metas: list, t_start: float, t_done: float) -> None:
        task = self._tasks.pop(bid)
        self._state[task.slot] = "ready"
        self._ready.append((task, agents, metas))
        self._counts["completed"] += 1
        self._failures_in_row = 0
        self._latency.append((t_done - task.t_submit) * 1e3)
        self._compute.append((t_done - t_start) * 1e3)

    def _drop(self, bid: int, why: str, error: bool = False) -> None:
        task = self._tasks.pop(bid)
        self._state[task.slot] = "free"
        self._counts["dropped"] += 1
        self._counts["errors"] += int(error)
        self._failures_in_row += 1
        self._last_error = why
        if error:
            log.error("simulation step failed; batch %d dropped:\n%s", bid, why)
        else:
            log.warning("simulation batch %d dropped: %s", bid, why)

    def _check_failures(self) -> None:
        if self._failures_in_row >= self.max_consecutive_failures:
            raise RuntimeError(f"{self._failures_in_row} simulation batches in a row were lost; last: "
                               f"{self._last_error}")

    def _run_here(self, task: Task, agents: list, metas: list) -> None:
        bid = task.seq
        self._tasks[bid] = task
        t0 = time.monotonic()
        try:
            agents, metas = run_batch(self._res.slots[task.slot].arrays, agents, metas, self.step_fn,
                                      seed=self.seed, rank=self.rank, seq=task.seq)
        except Exception:
            self._drop(bid, traceback.format_exc(), error=True)
            self._check_failures()
            return
        self._finish(bid, agents, metas, t0, time.monotonic())

    # ------------------------------------------------------------------ workers
    def _start(self, index: int) -> None:
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=serve, args=(child_end, self.step_fn, index), daemon=True,
                                 name=f"nnit-sim-r{self.rank}-w{index}")
        proc.start()
        child_end.close()  # so the worker's death reads as EOF here
        self._res.workers[index] = Worker(index, proc, parent_end)

    def _dispatch(self, task: Task, agents: list, metas: list) -> None:
        bid = task.seq
        self._tasks[bid] = task
        alive = [w for w in self._res.workers.values() if not w.broken]
        if not alive:
            self._drop(bid, "no live simulation worker to take it")
            return
        w = min(alive, key=lambda w: (len(w.tasks), (w.index - bid) % self.num_workers))
        task.worker = w.index
        w.tasks.add(bid)
        slot = self._res.slots[task.slot]
        try:
            w.conn.send(layout_message(bid, task.slot, slot.name, slot.layout, agents, metas,
                                       self.seed, self.rank, task.seq))
        except (OSError, ValueError) as e:
            w.broken = True  # picked up by _reap on the next call
            log.debug("send to worker %d failed: %s", w.index, e)

    def _pump(self) -> None:
        """Collect replies, replace dead or stuck workers; never blocks for long."""
        if self.num_workers == 0:
            return
        for w in list(self._res.workers.values()):
            self._drain(w)
        self._reap()
        self._check_failures()

    def _filled(self, _future: Future) -> None:
        with self._lock:
            if not self._closed:
                self._dispatch_filled()

    def _dispatch_filled(self) -> None:
        for idx, (future, task, agents, metas) in list(self._filling.items()):
            if not future.done():
                continue
            del self._filling[idx]
            if future.exception() is not None:
                self._tasks[task.seq] = task
                self._drop(task.seq, f"copy into slot {idx} failed: {future.exception()!r}", error=True)
                continue
            self._state[idx] = "busy"
            self._dispatch(task, agents, metas)

    def _drain(self, w: Worker) -> None:
        if w.broken:
            return
        try:
            while w.conn.poll():
                msg = w.conn.recv()
                if msg[0] == "ready":
                    w.ready = True
                    self._startup_failures = 0
                    continue
                w.tasks.discard(msg[1])
                if msg[1] not in self._tasks:
                    continue
                if msg[0] == "done":
                    self._finish(*msg[1:])
                else:
                    self._drop(msg[1], msg[2], error=True)
        except (EOFError, OSError, pickle.UnpicklingError) as e:
            w.broken = True
            log.debug("worker %d channel closed: %s", w.index, e)

    def _reap(self) -> None:
        now = time.monotonic()
        for w in list(self._res.workers.values()):
            stuck = [b for b in w.tasks if now - self._tasks[b].t_submit > self.task_timeout_s]
            if stuck and w.proc.is_alive():
                log.warning("simulation worker %d (pid %s) held batch %s for more than %.0f s; killing it",
                            w.index, w.proc.pid, stuck[0], self.task_timeout_s)
                w.proc.kill()
                w.proc.join(5.0)
            if not w.broken and w.proc.is_alive():
                continue
            self._replace(w)

    def _replace(self, w: Worker) -> None:
        w.proc.join(1.0)
        if w.proc.is_alive():  # channel broken but process alive: do not leave it behind
            w.proc.kill()
            w.proc.join(1.0)
        code = w.proc.exitcode
        w.conn.close()
        for bid in sorted(w.tasks):
            if bid in self._tasks:
                self._drop(bid, f"simulation worker {w.index} (pid {w.proc.pid}) died with exit code {code}")
        del self._res.workers[w.index]
        if not w.ready:
            self._startup_failures += 1
            if self._startup_failures >= _STARTUP_FAILURES:
                raise RuntimeError(
                    f"{self._startup_failures} simulation workers in a row died before starting (last exit code "
                    f"{code}); check that step_fn {self.step_fn!r} can be imported in a fresh process and that "
                    f"the main script has an `if __name__ == '__main__':` guard")
        log.warning("simulation worker %d (pid %s) exited with code %s; starting a replacement",
                    w.index, w.proc.pid, code)
        self._counts["restarted"] += 1
        self._start(w.index)
