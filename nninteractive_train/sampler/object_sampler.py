"""The object sampler: which case and which object each training sample is about.

Draws follow :mod:`nninteractive_train.sampler.tables` exactly. Each sampler owns one random stream derived from
``(seed, rank, worker)`` (``SeedSequence(seed, spawn_key=(..., rank, worker))`` → PCG64), so every rank and data
worker draws an independent, reproducible sequence. Draw number ``i`` of a stream depends only on ``i``: the
stream is consumed in blocks of ``block_size`` draws × 3 uniforms, and block ``b`` starts after exactly
``3 · block_size · b`` PCG64 steps, which :meth:`ObjectSampler.seek` reaches with ``PCG64.advance``. The state is
therefore just the draw position (plus checks), cheap to save with a checkpoint and exact to restore.

Per block, three uniforms per draw pick (1) the case by ``searchsorted`` on the cumulative case probabilities,
(2) SuperVoxel vs real object, (3) the SuperVoxel (uniform) or the real object, by ``searchsorted`` on a table
whose keys are ``case index + cumulative within-case object probability`` (monotone over all objects).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.manifest import Manifest
from .tables import SamplingTables, sampling_tables

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Draw:
    """One sampled training target."""

    dataset: str
    """Name of the source dataset."""
    dataset_index: int
    case: str
    """Case identifier in the merged nnU-Net dataset."""
    case_index: int
    """Index into the manifest's cases."""
    kind: str
    """``"object"`` (a real object) or ``"supervoxel"``."""
    object_index: int
    """Index into the manifest's objects; -1 for a SuperVoxel."""
    object_type: str
    """Object type name (label or combination), or ``"supervoxel"``."""
    instance_ids: np.ndarray
    """uint16 instance ids of the object (target = ``np.isin(seg, instance_ids)``); empty for a SuperVoxel."""
    supervoxel: int
    """1-based SuperVoxel label in the case's SuperVoxel map (target = ``sv == supervoxel``); 0 for real objects."""


@dataclass(frozen=True)
class DrawBatch:
    """Many draws as arrays (see :class:`Draw` for the fields)."""

    case_index: np.ndarray  # (n,) int64
    object_index: np.ndarray  # (n,) int64, -1 for SuperVoxels
    supervoxel: np.ndarray  # (n,) int64, 0 for real objects

    def __len__(self) -> int:
        return int(self.case_index.shape[0])


class ObjectSampler:
    """Draws (case, object) pairs of a collection.

    Args:
        manifest: the collection manifest.
        seed: base seed of the run, or a ``SeedSequence`` (its spawn key is extended by ``(rank, worker)``).
        rank, worker: distributed rank and data-loader worker; each (seed, rank, worker) is its own stream.
        supervoxel_prob: probability of a SuperVoxel for a case that has real objects and SuperVoxels (paper: 0.2).
        supervoxel_counts: (n,) SuperVoxels per case, aligned with ``manifest.case_ids``; None = no SuperVoxels.
        size_power: objects of a case drawn ∝ voxels^size_power (0: the paper's uniform draw; see ``tables``).
        block_size: draws generated per vectorised block (part of the stream definition).
    """

    def __init__(
        self,
        manifest: Manifest,
        *,
        seed: int | np.random.SeedSequence,
        rank: int = 0,
        worker: int = 0,
        supervoxel_prob: float = 0.2,
        supervoxel_counts: np.ndarray | None = None,
        block_size: int = 4096,
        size_power: float = 0.0,
    ):
        if block_size < 1:
            raise ValueError("block_size must be >= 1")
        self.manifest = manifest
        base = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
        self.seed, self.rank, self.worker = int(base.entropy), int(rank), int(worker)
        self._spawn_key = tuple(int(k) for k in base.spawn_key) + (self.rank, self.worker)
        self.block_size = int(block_size)
        self.tables: SamplingTables = sampling_tables(manifest, supervoxel_counts, supervoxel_prob=supervoxel_prob,
                                                         size_power=size_power)
        t = self.tables
        cum = np.cumsum(t.case_share)
        self._case_cum = cum / cum[-1]
        self._sv_prob = t.case_sv_prob
        self._sv_count = t.supervoxel_counts
        counts = manifest.objects_per_case()
        obj_case = np.repeat(np.arange(manifest.n_cases, dtype=np.int64), counts)
        cq = np.cumsum(t.object_prob)
        starts = manifest.case_object_start
        base = np.concatenate([[0.0], cq])[starts[:-1]]
        within = cq - np.repeat(base, counts)
        nonempty = counts > 0
        last = starts[1:][nonempty] - 1
        total = np.ones(manifest.n_cases)
        total[nonempty] = within[last]
        # normalise per case and pin each case's last key so rounding can never spill into the next case
        within /= np.repeat(np.where(total > 0, total, 1.0), counts)
        within[last] = 1.0
        self._obj_key = obj_case + within
        self._case_ids = manifest.case_ids.tolist()
        self._case_ds = manifest.case_dataset.tolist()
        self._ds_names = manifest.dataset_names
        self._obj_type = manifest.object_type.tolist()
        self._types = [d["types"] for d in manifest.datasets]
        self._ids, self._id_start = manifest.object_ids, manifest.object_id_start
        h = hashlib.sha1(manifest.fingerprint().encode())
        h.update(np.ascontiguousarray(self._sv_count).tobytes())
        h.update(repr(float(supervoxel_prob)).encode())
        if size_power:  # keeps the fingerprints of paper-rule streams as they were
            h.update(repr(float(size_power)).encode())
        self.fingerprint = h.hexdigest()[:16]
        self._seq = np.random.SeedSequence(self.seed, spawn_key=self._spawn_key)
        self.seek(0)

    # --- the stream -------------------------------------------------------------------------------------------

    @property
    def position(self) -> int:
        """Number of draws taken so far."""
        return self._block * self.block_size + self._offset

    def seek(self, position: int) -> None:
        """Continue the stream at draw number ``position``."""
        if position < 0:
            raise ValueError("position must be >= 0")
        block, offset = divmod(int(position), self.block_size)
        bitgen = np.random.PCG64(self._seq)
        bitgen.advance(3 * self.block_size * block)
        self._rng = np.random.Generator(bitgen)
        self._block = block - 1
        self._next_block()
        self._offset = offset

    def _next_block(self) -> None:
        u = self._rng.random((3, self.block_size))
        case, obj, sv = self.decode(u[0], u[1], u[2])
        self._b_case, self._b_obj, self._b_sv = case, obj, sv
        self._l_case, self._l_obj, self._l_sv = case.tolist(), obj.tolist(), sv.tolist()
        self._block += 1
        self._offset = 0

    def decode(self, u_case: np.ndarray, u_kind: np.ndarray, u_pick: np.ndarray):
        """Map uniforms in [0, 1) to ``(case_index, object_index, supervoxel)`` arrays (see the module docstring)."""
        case = np.minimum(np.searchsorted(self._case_cum, u_case, side="right"), len(self._case_cum) - 1)
        is_sv = u_kind < self._sv_prob[case]
        nsv = self._sv_count[case]
        sv = np.where(is_sv, np.minimum((u_pick * nsv).astype(np.int64), nsv - 1) + 1, 0)
        obj = np.searchsorted(self._obj_key, case + u_pick, side="right")
        obj = np.where(is_sv, -1, np.minimum(obj, len(self._obj_key) - 1))
        return case.astype(np.int64), obj.astype(np.int64), sv.astype(np.int64)

    def draw(self) -> Draw:
        """The next draw of this stream."""
        if self._offset >= self.block_size:
            self._next_block()
        i = self._offset
        self._offset = i + 1
        c, o, s = self._l_case[i], self._l_obj[i], self._l_sv[i]
        d = self._case_ds[c]
        if o < 0:
            return Draw(self._ds_names[d], d, self._case_ids[c], c, "supervoxel", -1, "supervoxel", self._ids[:0], s)
        return Draw(self._ds_names[d], d, self._case_ids[c], c, "object", o, self._types[d][self._obj_type[o]],
                    self._ids[self._id_start[o]:self._id_start[o + 1]], 0)

    def draw_many(self, n: int) -> DrawBatch:
        """The next ``n`` draws as arrays (the same stream as :meth:`draw`)."""
        parts: list[tuple[np.ndarray, ...]] = []
        left = int(n)
        while left > 0:
            if self._offset >= self.block_size:
                self._next_block()
            take = min(left, self.block_size - self._offset)
            sl = slice(self._offset, self._offset + take)
            parts.append((self._b_case[sl], self._b_obj[sl], self._b_sv[sl]))
            self._offset += take
            left -= take
        if not parts:
            z = np.zeros(0, np.int64)
            return DrawBatch(z, z, z)
        return DrawBatch(*(np.concatenate(p) for p in zip(*parts)))

    # --- checkpoints ------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: the stream identity and position."""
        return {"version": STATE_VERSION, "seed": self.seed, "spawn_key": list(self._spawn_key), "rank": self.rank,
                "worker": self.worker, "position": self.position, "block_size": self.block_size,
                "fingerprint": self.fingerprint}

    def load_state_dict(self, state: dict[str, Any], *, strict: bool = True) -> None:
        """Continue from a saved state.

        With ``strict`` the stream identity (seed, rank, worker, block size) and the collection fingerprint must match
        (``ValueError`` otherwise); without it, only the position is taken and a mismatch is a warning.
        """
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported sampler state version {state.get('version')!r}")
        mine = self.state_dict()
        keys = ("seed", "spawn_key", "rank", "worker", "block_size", "fingerprint")
        diff = [k for k in keys if state.get(k) != mine[k]]
        if diff:
            msg = (f"sampler state does not match this sampler in {diff} (saved "
                   f"{ {k: state.get(k) for k in diff} }, now { {k: mine[k] for k in diff} })")
            if strict:
                raise ValueError(msg)
            warnings.warn(msg + "; continuing at the saved position", stacklevel=2)
        self.seek(int(state["position"]))

    # --- inspection -------------------------------------------------------------------------------------------

    def expected_shares(self) -> SamplingTables:
        """The exact probabilities this sampler draws from."""
        return self.tables

    def to_draw(self, case: int, obj: int, supervoxel: int) -> Draw:
        """The :class:`Draw` for one row of a :class:`DrawBatch`."""
        d = int(self._case_ds[case])
        if obj < 0:
            return Draw(self._ds_names[d], d, self._case_ids[case], int(case), "supervoxel", -1, "supervoxel",
                        self._ids[:0], int(supervoxel))
        return Draw(self._ds_names[d], d, self._case_ids[case], int(case), "object", int(obj),
                    self._types[d][self._obj_type[obj]], self._ids[self._id_start[obj]:self._id_start[obj + 1]], 0)
