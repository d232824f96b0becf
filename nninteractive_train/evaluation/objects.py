"""Target objects of an evaluation case: the 26-connected components of each foreground label."""

from __future__ import annotations

from dataclasses import dataclass

import cc3d
import numpy as np

__all__ = ["TargetObject", "find_objects"]


@dataclass(frozen=True, eq=False)
class TargetObject:
    """One object, stored compactly as a bool crop of its bounding box.

    Attributes:
        label: the label value the component belongs to.
        index: 0-based rank of the object in its case (by size, largest first, before any random subsetting).
        voxels: number of voxels.
        offset: (x, y, z) voxel index of ``crop[0, 0, 0]`` in the volume.
        crop: bool array, the component inside its tight bounding box.
        shape: (X, Y, Z) of the volume.
    """

    label: int
    index: int
    voxels: int
    offset: tuple[int, int, int]
    crop: np.ndarray
    shape: tuple[int, int, int]

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(o, o + s) for o, s in zip(self.offset, self.crop.shape))

    def mask(self) -> np.ndarray:
        """bool (X, Y, Z), the object in the full volume (built on each call)."""
        out = np.zeros(self.shape, bool)
        out[self.slices] = self.crop
        return out


def find_objects(
    label: np.ndarray,
    *,
    min_size: int = 10,
    max_objects: int | None = None,
    order: str = "largest",
    rng: np.random.Generator | None = None,
) -> list[TargetObject]:
    """The 26-connected components of every label value > 0, largest first.

    Components of different label values never merge (touching objects with different labels stay apart).

    Args:
        label: int (X, Y, Z) label map; values ≤ 0 are background.
        min_size: components with fewer voxels are skipped.
        max_objects: keep at most this many (None: all).
        order: how the cap picks objects: "largest" keeps the largest ones (deterministic); "random" keeps a
            uniformly drawn subset (needs `rng`), reported largest first.
        rng: random source for ``order="random"``.

    Returns:
        The objects, sorted by size (descending, ties by label value then position).
    """
    label = np.asarray(label)
    if label.ndim != 3:
        raise ValueError(f"label must be a 3D (X, Y, Z) array, got shape {label.shape}")
    if not np.issubdtype(label.dtype, np.integer):
        if not np.all(np.isfinite(label)) or not np.array_equal(label, np.round(label)):
            raise ValueError(f"label must contain integer values, got dtype {label.dtype} with fractional values")
        label = label.astype(np.int64)
    if order not in ("largest", "random"):
        raise ValueError(f"order must be 'largest' or 'random', got {order!r}")
    fg = np.where(label > 0, label, 0)
    if fg.max(initial=0) <= np.iinfo(np.uint32).max:
        fg = fg.astype(np.uint32, copy=False)
    components = cc3d.connected_components(fg, connectivity=26, out_dtype=np.uint32)
    stats = cc3d.statistics(components)
    counts = np.asarray(stats["voxel_counts"])
    boxes = stats["bounding_boxes"]
    found = []
    for cid in range(1, len(counts)):
        if counts[cid] < max(min_size, 1):
            continue
        box = tuple(boxes[cid])
        crop = components[box] == cid
        value = int(fg[box][crop].flat[0])
        found.append((int(counts[cid]), value, tuple(int(b.start) for b in box), crop))
    found.sort(key=lambda f: (-f[0], f[1], f[2]))
    objects = [TargetObject(value, i, n, offset, np.ascontiguousarray(crop), tuple(label.shape))
               for i, (n, value, offset, crop) in enumerate(found)]
    if max_objects is not None and len(objects) > max_objects:
        if order == "largest":
            objects = objects[:max_objects]
        else:
            if rng is None:
                raise ValueError("order='random' needs an rng")
            keep = np.sort(rng.choice(len(objects), size=max_objects, replace=False))
            objects = [objects[int(i)] for i in keep]
    return objects
