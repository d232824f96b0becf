"""The pool's records (workers, tasks, what shutdown frees) and the helpers its methods share."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Worker:
    index: int
    proc: Any
    conn: Any
    ready: bool = False
    tasks: set = field(default_factory=set)
    broken: bool = False


@dataclass
class Task:
    slot: int
    seq: int
    t_submit: float
    rest: dict
    worker: int = -1


def locked(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return wrapper


def copy_arrays(dst: dict, src: dict) -> None:
    for key, value in src.items():
        np.copyto(dst[key], value)  # numpy drops the GIL for plain copies: the caller's thread keeps running


@dataclass
class Resources:
    """What must be released at shutdown; held apart from the pool so the finaliser does not keep it alive."""

    workers: dict = field(default_factory=dict)
    slots: list = field(default_factory=list)


def shutdown(res: Resources, timeout: float = 5.0) -> None:
    """Stop workers (ask, then terminate, then kill; every wait bounded) and free all shared memory."""
    workers = list(res.workers.values())
    res.workers.clear()
    for w in workers:
        try:
            w.conn.send(None)
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + timeout
    for w in workers:
        w.proc.join(max(0.0, deadline - time.monotonic()))
    for w in workers:
        if w.proc.is_alive():
            w.proc.terminate()
            w.proc.join(1.0)
        if w.proc.is_alive():
            w.proc.kill()
            w.proc.join(1.0)
        w.conn.close()
    for i, slot in enumerate(res.slots):
        if slot is not None:
            slot.close()
            res.slots[i] = None
