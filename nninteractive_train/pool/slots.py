"""Batch slots: one batch's arrays in one shared-memory segment, and the checks on what goes into them.

A slot holds the arrays a simulation step reads or writes (``data``, ``target``, ``prediction``) at 64-byte
aligned offsets of a single segment. Slots are allocated on first use and reused for every later batch of the
same layout, so memory stays flat however long training runs; only a small layout description travels to the
workers, which attach by name and keep the mapping.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any, Mapping

import numpy as np

log = logging.getLogger(__name__)

ARRAY_KEYS = ("data", "target", "prediction")
"""Batch keys that travel through shared memory (the worker reads or writes them)."""
OBJECT_KEYS = ("agents", "meta")
"""Batch keys that travel, pickled, with the task message (small per-sample objects)."""
SHM_PREFIX = "nnit"
"""Segment names start with this (``/dev/shm/nnit<pid>_<token>_<slot>`` on Linux)."""
_ALIGN = 64


@dataclass(frozen=True)
class Field:
    """Where one array lives in a slot's segment."""

    key: str
    shape: tuple[int, ...]
    dtype: str
    offset: int

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


Layout = tuple[Field, ...]


def check_batch(batch: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Validate a batch for the pool and return its shared arrays as C-contiguous-able ndarrays.

    Args:
        batch: ``data`` (B, C, X, Y, Z) float, ``target`` and ``prediction`` (B, X, Y, Z) bool/uint8 (numpy or
            CPU tensors), ``agents`` and ``meta`` lists of length B; other keys are allowed and not checked.

    Raises:
        ValueError / TypeError: a missing key or inconsistent shapes, naming the key.
    """
    if not isinstance(batch, Mapping):
        raise TypeError(f"a batch must be a dict, got {type(batch).__name__}")
    missing = [k for k in ARRAY_KEYS + OBJECT_KEYS if k not in batch]
    if missing:
        raise ValueError(f"batch is missing key(s) {missing}; needs {list(ARRAY_KEYS + OBJECT_KEYS)}")
    arrays = {k: np.asarray(batch[k]) for k in ARRAY_KEYS}
    data = arrays["data"]
    if data.ndim < 3:
        raise ValueError(f"batch['data'] must be (B, C, *spatial), got shape {data.shape}")
    if data.dtype.kind != "f":
        raise TypeError(f"batch['data'] must be a float array, got {data.dtype}")
    if min(data.shape) < 1:
        raise ValueError(f"batch['data'] has an empty axis: shape {data.shape}")
    want = (data.shape[0],) + data.shape[2:]
    for k in ("target", "prediction"):
        if arrays[k].shape != want:
            raise ValueError(f"batch[{k!r}] has shape {arrays[k].shape}; expected (B, *spatial) = {want} "
                             f"to match batch['data'] {data.shape}")
        if arrays[k].dtype.kind not in "biu":
            raise TypeError(f"batch[{k!r}] must be bool or integer (a binary mask), got {arrays[k].dtype}")
    for k in OBJECT_KEYS:
        if len(batch[k]) != data.shape[0]:
            raise ValueError(f"batch[{k!r}] has {len(batch[k])} entries; expected one per sample "
                             f"(B = {data.shape[0]})")
    return arrays


def plan_layout(arrays: Mapping[str, np.ndarray]) -> tuple[Layout, int]:
    """Aligned offsets of `arrays` in one segment; returns (layout, total bytes)."""
    fields, offset = [], 0
    for key in ARRAY_KEYS:
        a = arrays[key]
        f = Field(key, tuple(int(s) for s in a.shape), a.dtype.str, offset)
        fields.append(f)
        offset += -(-f.nbytes // _ALIGN) * _ALIGN
    return tuple(fields), max(offset, _ALIGN)


def views(buf, layout: Layout) -> dict[str, np.ndarray]:
    """ndarray views of each field of `layout` on the buffer `buf` (no copy).

    ``np.frombuffer`` (unlike ``np.ndarray(buffer=…)``) holds a buffer export, so the mapping cannot be closed
    under a live view: closing raises BufferError instead of leaving a dangling pointer.
    """
    return {f.key: np.frombuffer(buf, np.dtype(f.dtype), count=int(np.prod(f.shape, dtype=np.int64)),
                                 offset=f.offset).reshape(f.shape) for f in layout}


def same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """True when `a` and `b` are the same array in memory (same start, shape, strides, dtype)."""
    return (a.shape == b.shape and a.dtype == b.dtype and a.strides == b.strides
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


class Slot:
    """Room for one batch: a shared-memory segment (workers) or a plain buffer (in-process mode).

    Args:
        layout, size: from `plan_layout`.
        shared: allocate in shared memory; otherwise in this process.
        name: the segment name (shared only).
    """

    def __init__(self, layout: Layout, size: int, *, shared: bool, name: str | None = None):
        self.layout, self.size, self.shared = layout, size, shared
        self.shm: shared_memory.SharedMemory | None = None
        if shared:
            self.shm = shared_memory.SharedMemory(name=name, create=True, size=size)
            _reserve(self.shm, size)
            buf = self.shm.buf
        else:
            buf = bytearray(size)
        self.name = self.shm.name if self.shm is not None else None
        self.arrays = views(buf, layout)

    def fits(self, layout: Layout) -> bool:
        return layout == self.layout

    def close(self) -> None:
        """Drop the views and free the segment (unlink even if the caller still holds views into it)."""
        self.arrays = {}
        if self.shm is None:
            return
        shm, self.shm = self.shm, None
        try:
            shm.unlink()
        except FileNotFoundError:
            pass
        try:
            shm.close()
        except BufferError:
            # A caller still holds arrays from poll(copy=False): leave the mapping to them (it is unmapped
            # when the last one dies) and disarm the object, whose __del__ would try to close it again.
            log.debug("shared-memory slot %s unlinked while arrays still view it", self.name)
            detach(shm)


def detach(shm: shared_memory.SharedMemory) -> None:
    """Forget a segment whose buffer is still exported: close its descriptor, leave the mapping to the views."""
    fd = getattr(shm, "_fd", -1)
    if fd >= 0:
        os.close(fd)
        shm._fd = -1
    shm._buf = None
    shm._mmap = None


def new_name(slot: int) -> str:
    """A segment name that is unique across processes and recognisable as ours."""
    return f"{SHM_PREFIX}{os.getpid()}_{secrets.token_hex(4)}_{slot}"


def _reserve(shm: shared_memory.SharedMemory, size: int) -> None:
    """Reserve the segment's pages now, so a full /dev/shm is a clear error here, not a SIGBUS on first write."""
    fd = getattr(shm, "_fd", -1)
    if fd < 0 or not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return  # this filesystem cannot reserve: carry on unreserved
        shm.close()
        shm.unlink()
        free = _free_bytes()
        raise MemoryError(
            f"cannot reserve {size / 2**20:.0f} MiB of shared memory for a pool slot ({e}); "
            f"/dev/shm has {free / 2**20:.0f} MiB free. Enlarge it (docker: --shm-size), lower max_in_flight, "
            f"or use smaller batches") from e


def _free_bytes() -> int:
    try:
        st = os.statvfs("/dev/shm")
        return st.f_bavail * st.f_frsize
    except OSError:
        return -1
