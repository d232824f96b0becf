"""Worker deaths, step errors, full pools and shutdown never hang training or leak processes or memory."""

from __future__ import annotations

import os
import signal
import time

import pytest

from nninteractive_train.pool import SimulationPool
from pool_test_steps import add_step, fail_step, make_batch, slow_step

TIMEOUT = 120.0  # deadlock guard only


def wait_for(path: str) -> int:
    deadline = time.monotonic() + TIMEOUT
    while not os.path.exists(path):
        assert time.monotonic() < deadline, f"worker never started the batch ({path})"
        time.sleep(0.05)
    with open(path) as f:
        return int(f.read())


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:  # a zombie is gone too, for our purposes
        return f.read().split(")")[-1].split()[0] == "Z"


def test_killed_worker_is_replaced_and_its_batch_dropped(tmp_path):
    marker = str(tmp_path / "started")
    with SimulationPool(slow_step, 2, max_in_flight=2) as pool:
        assert pool.submit(make_batch(0, marker=marker))
        pid = wait_for(marker)
        os.kill(pid, signal.SIGKILL)
        assert pool.get(timeout=TIMEOUT) is None  # dropped, not waited for
        stats = pool.stats()
        assert stats["dropped"] == 1 and stats["restarted"] == 1 and stats["in_flight"] == 0
        assert pid not in pool.worker_pids() and len(pool.worker_pids()) == 2
        for i in range(3):  # later batches still come back
            assert pool.submit(make_batch(i + 1))
            assert pool.get(timeout=TIMEOUT) is not None
        assert pool.stats()["completed"] == 3


@pytest.mark.parametrize("num_workers", [0, 1])
def test_step_error_drops_batch_then_recovers(num_workers):
    with SimulationPool(fail_step, num_workers) as pool:
        assert pool.submit(make_batch(0, fail=True))
        assert pool.get(timeout=TIMEOUT) is None
        assert pool.submit(make_batch(1))
        assert pool.get(timeout=TIMEOUT) is not None
        stats = pool.stats()
        assert (stats["errors"], stats["dropped"], stats["completed"], stats["restarted"]) == (1, 1, 1, 0)


def test_persistent_step_errors_raise():
    with SimulationPool(fail_step, 0, max_consecutive_failures=3) as pool:
        with pytest.raises(RuntimeError, match="in a row"):
            for i in range(3):
                pool.submit(make_batch(i, fail=True))


def test_no_free_slot_rejects_and_counts():
    with SimulationPool(add_step, 0, max_in_flight=1) as pool:
        assert pool.submit(make_batch(0))
        assert not pool.submit(make_batch(1))  # the finished batch still holds the only slot
        assert pool.poll(copy=True) is not None
        assert pool.submit(make_batch(2))
        assert pool.stats()["rejected"] == 1 and pool.stats()["submitted"] == 2


def test_get_with_nothing_in_flight_returns_at_once():
    with SimulationPool(add_step, 1) as pool:
        assert pool.get(timeout=None) is None and pool.poll() is None


def test_close_leaves_no_processes_or_segments():
    pool = SimulationPool(add_step, 2, max_in_flight=2)
    for i in range(2):
        assert pool.submit(make_batch(i))
    leased = pool.get(timeout=TIMEOUT)  # one handed out as views of its slot, one possibly still in flight
    assert leased is not None
    pids, names = pool.worker_pids(), pool.segment_names()
    assert len(pids) == 2 and len(names) == 2
    pool.close()
    pool.close()  # idempotent
    assert all(gone(p) for p in pids)
    assert not any(os.path.exists(f"/dev/shm/{n.lstrip('/')}") for n in names)
    assert leased["data"].sum() > 0  # views outlive the pool safely (the mapping stays until they go)
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit(make_batch(3))


def test_many_batches_reuse_the_same_slots():
    with SimulationPool(add_step, 1, max_in_flight=2) as pool:
        names = set()
        for i in range(40):
            pool.submit(make_batch(i))
            if i % 2:  # drain every other step, so submits sometimes find both slots taken
                while pool.get(timeout=TIMEOUT, copy=True) is not None:
                    pass
            names.update(pool.segment_names())
        stats = pool.stats()
        assert len(names) == 2 and stats["slot_mib"] < 1
        assert stats["submitted"] + stats["rejected"] == 40 and stats["dropped"] == 0


def test_stuck_batch_gets_its_worker_killed(tmp_path):
    marker = str(tmp_path / "started")
    with SimulationPool(slow_step, 1, task_timeout_s=0.5) as pool:
        assert pool.submit(make_batch(0, marker=marker))
        pid = wait_for(marker)
        assert pool.get(timeout=TIMEOUT) is None
        assert pool.stats()["dropped"] == 1 and gone(pid)


CRASHING_TRAINER = """
import os, sys, time
sys.path.insert(0, {here!r})
from nninteractive_train.pool import SimulationPool
from pool_test_steps import add_step, make_batch
if __name__ == "__main__":
    pool = SimulationPool(add_step, 2)
    pool.submit(make_batch(0))
    pool.get(timeout=120)
    print(" ".join(map(str, pool.worker_pids())), " ".join(pool.segment_names()), sep="|", flush=True)
    os.kill(os.getpid(), 9)  # no close(), no atexit: the workers and the resource tracker must clean up
"""


def test_trainer_crash_leaves_no_orphans_or_segments(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "crash.py"
    script.write_text(CRASHING_TRAINER.format(here=os.path.dirname(__file__)))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=TIMEOUT)
    pids, names = out.stdout.strip().split("|")
    pids, names = [int(p) for p in pids.split()], names.split()
    assert len(pids) == 2 and names
    deadline = time.monotonic() + 60.0
    while not (all(gone(p) for p in pids) and not any(os.path.exists(f"/dev/shm/{n}") for n in names)):
        assert time.monotonic() < deadline, "orphaned workers or segments after the trainer died"
        time.sleep(0.1)


def test_full_shared_memory_is_a_clear_error(monkeypatch):
    import errno

    def full(fd, offset, size):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    with SimulationPool(add_step, 1) as pool:
        with pytest.raises(MemoryError, match="/dev/shm"):
            pool.prepare(make_batch(0))
        assert pool.segment_names() == []
