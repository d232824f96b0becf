"""Exact sampling probabilities of a collection (the paper's formula), as flat tables.

For dataset d with manual weight w_d, case c with k_c real objects and s_c SuperVoxels:

* effective object count e_c = k_c, or s_c for a case without real objects (it is then drawn for SuperVoxels only);
  cases with e_c = 0 are never drawn and do not count as cases of their dataset;
* P(d) ∝ w_d · sqrt(n_d), n_d = number of drawable cases of d;
* P(c | d) ∝ sqrt(e_c);
* P(SuperVoxel | c) = p_sv if 0 < s_c and k_c > 0, 1 if k_c = 0, else 0 (no SuperVoxels → a real object);
  the SuperVoxel is uniform among the case's s_c;
* a real object o of c: P(o | c, real) = q_o, uniform 1/k_c, or from the dataset's ``object_probs``: each listed
  object type t gets its probability split evenly among its objects in the case, the objects of unlisted types
  share 1 − Σ listed probabilities evenly, and the weights of the objects present are renormalised to 1 (uniform
  if they are all 0);
* with a size power a ≠ 0 (``data.object_size_power``, not the paper's rule), q_o is then multiplied by v_o^a,
  v_o the object's voxels, and renormalised within its case: a > 0 draws the larger objects of a case more often.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.manifest import Manifest, ManifestError


@dataclass(frozen=True)
class SamplingTables:
    """Exact probabilities, indexed like the manifest."""

    dataset_share: np.ndarray  # (D,) P(d)
    dataset_cases: np.ndarray  # (D,) drawable cases n_d
    case_share: np.ndarray  # (n,) P(c) = P(d) P(c | d)
    case_sv_prob: np.ndarray  # (n,) P(SuperVoxel | c)
    supervoxel_counts: np.ndarray  # (n,) s_c
    object_prob: np.ndarray  # (m,) q_o = P(o | c, real)
    supervoxel_prob: float

    @property
    def supervoxel_share(self) -> float:
        """Overall share of draws that are SuperVoxels."""
        return float(np.dot(self.case_share, self.case_sv_prob))

    def object_share(self, manifest: Manifest) -> np.ndarray:
        """(m,) overall probability of each real object."""
        per_case = self.case_share * (1.0 - self.case_sv_prob)
        return np.repeat(per_case, manifest.objects_per_case()) * self.object_prob


def object_probabilities(manifest: Manifest, size_power: float = 0.0) -> np.ndarray:
    """(m,) P(o | c, real) for every real object (see the module docstring)."""
    starts = manifest.case_object_start
    counts = np.diff(starts)
    obj_case = np.repeat(np.arange(manifest.n_cases), counts)
    obj_ds = manifest.case_dataset[obj_case]
    q = np.repeat(1.0 / np.maximum(counts, 1), counts)
    for d, info in enumerate(manifest.datasets):
        probs = info.get("object_probs") or {}
        if not probs:
            continue
        sel = np.flatnonzero(obj_ds == d)
        if sel.size == 0:
            continue
        types = manifest.object_type[sel]
        ntypes = len(info["types"])
        listed = np.zeros(ntypes, bool)
        tprob = np.zeros(ntypes)
        for t, p in probs.items():
            ti = info["types"].index(t)
            listed[ti], tprob[ti] = True, p
        rest = max(0.0, 1.0 - float(tprob.sum()))
        # per (case, type) object counts, through a combined key
        local_case = obj_case[sel]
        key = local_case.astype(np.int64) * ntypes + types
        _, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        per_type_n = cnt[inv.ravel()]
        n_unlisted = np.bincount(local_case, weights=(~listed[types]).astype(float), minlength=manifest.n_cases)
        w = np.where(listed[types], tprob[types] / per_type_n, rest / np.maximum(n_unlisted[local_case], 1))
        tot = np.bincount(local_case, weights=w, minlength=manifest.n_cases)[local_case]
        q[sel] = np.where(tot > 0, w / np.where(tot > 0, tot, 1.0), 1.0 / counts[local_case])
    return q if size_power == 0 else size_weighted(q, manifest.object_voxels, obj_case, manifest.n_cases, size_power)


def size_weighted(q: np.ndarray, voxels: np.ndarray, obj_case: np.ndarray, n_cases: int, power: float) -> np.ndarray:
    """(m,) ``q`` × voxels^power, renormalised within each case (a case whose weights are all 0 keeps ``q``)."""
    if not np.isfinite(power):
        raise ValueError(f"object size power must be finite, got {power}")
    w = q * np.maximum(np.asarray(voxels, np.float64), 1.0) ** power
    tot = np.bincount(obj_case, weights=w, minlength=n_cases)[obj_case]
    return np.where(tot > 0, w / np.where(tot > 0, tot, 1.0), q)


def sampling_tables(
    manifest: Manifest,
    supervoxel_counts: np.ndarray | None = None,
    *,
    supervoxel_prob: float = 0.2,
    size_power: float = 0.0,
) -> SamplingTables:
    """Compute the exact probabilities of ``manifest``.

    Args:
        manifest: the collection.
        supervoxel_counts: (n,) SuperVoxels per case (aligned with ``manifest.case_ids``); None = none.
        supervoxel_prob: probability of a SuperVoxel for a case that has real objects and SuperVoxels.
        size_power: exponent a of the object-size weighting v^a within a case (0: the paper's rule).
    """
    if not 0.0 <= supervoxel_prob <= 1.0:
        raise ValueError(f"supervoxel_prob must be in [0, 1], got {supervoxel_prob}")
    n = manifest.n_cases
    k = manifest.objects_per_case().astype(np.int64)
    s = np.zeros(n, np.int64) if supervoxel_counts is None else np.asarray(supervoxel_counts, np.int64)
    if s.shape != (n,):
        raise ValueError(f"supervoxel_counts must have shape ({n},), got {s.shape}")
    if np.any(s < 0):
        raise ValueError("supervoxel_counts must be non-negative")
    e = np.where(k > 0, k, s)
    nds = len(manifest.datasets)
    ds = manifest.case_dataset
    drawable = e > 0
    n_d = np.bincount(ds[drawable], minlength=nds).astype(np.float64)
    weights = np.array([float(d["weight"]) for d in manifest.datasets]) if nds else np.zeros(0)
    budget = weights * np.sqrt(n_d)
    if budget.sum() <= 0:
        raise ManifestError("no drawable case: every dataset has weight 0 or no case with objects or SuperVoxels")
    p_d = budget / budget.sum()
    root = np.sqrt(e.astype(np.float64))
    root_sum = np.bincount(ds, weights=root, minlength=nds)
    case_share = np.where(drawable, p_d[ds] * root / np.where(root_sum[ds] > 0, root_sum[ds], 1.0), 0.0)
    sv = np.where(k == 0, (s > 0).astype(np.float64), np.where(s > 0, supervoxel_prob, 0.0))
    return SamplingTables(dataset_share=p_d, dataset_cases=n_d.astype(np.int64), case_share=case_share,
                          case_sv_prob=sv, supervoxel_counts=s, object_prob=object_probabilities(manifest, size_power),
                          supervoxel_prob=float(supervoxel_prob))
