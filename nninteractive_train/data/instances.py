"""Semantic label maps → instance maps and objects.

An *instance map* holds consecutive integers 1..N (0 = background); every instance comes from exactly one source
label. An *object* is a set of instance ids; its target mask is ``np.isin(instance_map, ids)``. Real objects are
single instances and label combinations (unions of all instances of some labels).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cc3d
import numpy as np
from scipy import ndimage

from .dataset_list import LabelRule

MAX_INSTANCES = 32767
"""nnU-Net stores preprocessed segmentations as int16, so instance ids must stay below 2**15."""

KIND_INSTANCE = 0
KIND_COMBINATION = 1


@dataclass(frozen=True)
class CaseObjects:
    """The objects of one case (all arrays indexed by object).

    ``bbox`` rows are ``(start0, start1, start2, stop0, stop1, stop2)``, half-open, in the array axes of the
    instance map; ``ids`` is the concatenation of every object's instance ids, split by ``id_offsets``.
    """

    types: np.ndarray  # (n,) int32: index into the dataset's object types
    kinds: np.ndarray  # (n,) int8: KIND_INSTANCE or KIND_COMBINATION
    voxels: np.ndarray  # (n,) int64
    bbox: np.ndarray  # (n, 6) int32
    ids: np.ndarray  # (m,) uint16
    id_offsets: np.ndarray  # (n + 1,) int64

    def __len__(self) -> int:
        return int(self.types.shape[0])


def ball(radius: int) -> np.ndarray:
    """A 3D ball structuring element of ``radius`` voxels, shape (2r+1,)*3, bool."""
    r = int(radius)
    z, y, x = np.ogrid[-r:r + 1, -r:r + 1, -r:r + 1]
    return (z * z + y * y + x * x) <= r * r


def to_instances(
    label_map: np.ndarray,
    rules: Mapping[int, LabelRule],
    *,
    ignore: frozenset[int] | set[int] = frozenset(),
) -> tuple[np.ndarray, np.ndarray]:
    """Convert a semantic label map into an instance map.

    Args:
        label_map: (Z, Y, X) integer array of source label values (0 = background).
        rules: label value → :class:`LabelRule`. Values present in ``label_map`` but neither in ``rules`` nor in
            ``ignore`` raise ``ValueError``.
        ignore: label values that become background.

    Returns:
        ``(instances, instance_label)``: (Z, Y, X) uint16 instance map with ids 1..N in order of label value, then
        raster order of each component's first voxel; and (N,) int64 source label value of each instance.
        ``ValueError`` if N exceeds :data:`MAX_INSTANCES`.
    """
    if label_map.ndim != 3:
        raise ValueError(f"label map must be 3D (Z, Y, X), got shape {label_map.shape}")
    lab = np.asarray(label_map)
    present = np.unique(lab)
    unknown = [int(v) for v in present if v != 0 and int(v) not in rules and int(v) not in ignore]
    if unknown:
        raise ValueError(f"label values {unknown} are not declared in the source dataset.json")
    if not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"label map must have an integer dtype, got {lab.dtype}")
    if present.size and present[0] < 0:
        raise ValueError(f"label map has negative values (min {present[0]})")
    # morphology may only claim background voxels, so track them before any label is processed
    free = lab == 0
    out = np.zeros(lab.shape, dtype=np.uint16)
    owners: list[int] = []
    todo = [int(v) for v in present if v != 0 and int(v) in rules and int(v) not in ignore]
    boxes = ndimage.find_objects(lab) if todo else []
    for v in todo:
        rule = rules[v]
        sl = boxes[v - 1] if v - 1 < len(boxes) else None
        if sl is None:
            continue
        pad = max(rule.opening, rule.closing) + 1
        sl = tuple(slice(max(s.start - pad, 0), min(s.stop + pad, n)) for s, n in zip(sl, lab.shape))
        mask = lab[sl] == v
        if rule.opening:
            mask = ndimage.binary_opening(mask, ball(rule.opening))
        if rule.closing:
            closed = ndimage.binary_closing(np.pad(mask, rule.closing), ball(rule.closing))
            closed = closed[(slice(rule.closing, -rule.closing),) * 3]
            mask |= closed & free[sl]
        # a voxel can only belong to one instance (closings of earlier labels may have claimed it)
        mask &= out[sl] == 0
        if not mask.any():
            continue
        if rule.objects == "whole":
            comps, n = mask.astype(np.uint8), 1
            sizes = np.array([0, int(mask.sum())])
        else:
            comps, n = cc3d.connected_components(mask, connectivity=rule.connectivity, return_N=True,
                                                 out_dtype=np.uint32)
            sizes = np.bincount(comps.ravel(), minlength=n + 1)
        keep = np.flatnonzero(sizes[1:] >= max(rule.min_size, 1)) + 1
        if keep.size == 0:
            continue
        if len(owners) + keep.size > MAX_INSTANCES:
            raise ValueError(f"more than {MAX_INSTANCES} instances (the int16 limit of nnU-Net's preprocessed "
                             f"segmentations); raise min_size or use objects: whole")
        remap = np.zeros(n + 1, dtype=np.uint16)
        remap[keep] = np.arange(len(owners) + 1, len(owners) + 1 + keep.size, dtype=np.uint16)
        new = remap[comps]
        region = out[sl]
        region[new > 0] = new[new > 0]
        owners.extend([v] * keep.size)
    return out, np.asarray(owners, dtype=np.int64)


def instance_stats(instances: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Voxel counts (n,) int64 and bounding boxes (n, 6) int32 (half-open) of instances 1..n."""
    if n == 0:
        return np.zeros(0, np.int64), np.zeros((0, 6), np.int32)
    stats = cc3d.statistics(instances.astype(np.uint32, copy=False), no_slice_conversion=True)
    counts = np.asarray(stats["voxel_counts"], dtype=np.int64)[1:n + 1]
    bb = np.asarray(stats["bounding_boxes"], dtype=np.int64)[1:n + 1]
    # cc3d gives (min0, max0, min1, max1, min2, max2) with inclusive maxima
    bbox = np.stack([bb[:, 0], bb[:, 2], bb[:, 4], bb[:, 1] + 1, bb[:, 3] + 1, bb[:, 5] + 1], axis=1)
    if counts.shape[0] < n or np.any(counts == 0):
        raise ValueError("instance map is not consecutive 1..n")
    return counts, bbox.astype(np.int32)


def make_objects(
    instance_label: np.ndarray,
    voxels: np.ndarray,
    bbox: np.ndarray,
    *,
    label_types: Mapping[int, int],
    combinations: Mapping[int, tuple[int, ...]],
) -> CaseObjects:
    """Build the objects of a case from its instances.

    Args:
        instance_label: (N,) source label value of instances 1..N.
        voxels, bbox: per-instance voxel counts (N,) and boxes (N, 6) from :func:`instance_stats`.
        label_types: label value → object type index of its instances.
        combinations: object type index → label values united by that combination.

    Every instance is an object. A combination becomes an object when at least one of its labels is present and
    its instance set differs from every object made so far (e.g. "liver with tumour" in a case without tumour is
    the liver itself and is not added twice).
    """
    n = instance_label.shape[0]
    types = [label_types[int(v)] for v in instance_label]
    kinds = [KIND_INSTANCE] * n
    id_lists = [np.array([i + 1], dtype=np.uint16) for i in range(n)]
    seen = {(i + 1,) for i in range(n)}
    for t, vals in combinations.items():
        ids = np.flatnonzero(np.isin(instance_label, vals)).astype(np.uint16) + 1
        key = tuple(int(i) for i in ids)
        if ids.size == 0 or key in seen:
            continue
        seen.add(key)
        types.append(t)
        kinds.append(KIND_COMBINATION)
        id_lists.append(ids)
    m = len(types)
    vox = np.empty(m, np.int64)
    box = np.empty((m, 6), np.int32)
    for j, ids in enumerate(id_lists):
        k = ids.astype(np.int64) - 1
        vox[j] = voxels[k].sum()
        box[j, :3] = bbox[k, :3].min(axis=0)
        box[j, 3:] = bbox[k, 3:].max(axis=0)
    offsets = np.zeros(m + 1, np.int64)
    offsets[1:] = np.cumsum([len(i) for i in id_lists])
    return CaseObjects(
        types=np.asarray(types, np.int32), kinds=np.asarray(kinds, np.int8), voxels=vox, bbox=box,
        ids=np.concatenate(id_lists) if id_lists else np.zeros(0, np.uint16), id_offsets=offsets,
    )
