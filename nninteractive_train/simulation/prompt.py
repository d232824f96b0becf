"""The `Prompt` record: one simulated prompt, stored compactly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Prompt", "KINDS"]

KINDS = ("point", "bbox", "lasso", "scribble")


@dataclass(frozen=True, eq=False)
class Prompt:
    """One simulated prompt, as a user would give it in a viewer.

    The prompt is stored compactly as a float32 `patch` placed at `offset` in a volume of `shape`; `mask`
    builds the full volume on access (it is not cached, so the record stays small when pickled).

    Attributes:
        kind: "point", "bbox", "lasso" or "scribble".
        positive: True for an include prompt (target / false negative), False for exclude (false positive).
        patch: float32 array in [0, 1], the non-zero part of the mask.
        offset: (x, y, z) voxel index of patch[0, 0, 0] in the volume.
        shape: (X, Y, Z) of the volume.
        axis, index: the slice of a 2D prompt (bbox, lasso, scribble): mask is non-zero only where
            `volume index along axis == index`; None for points.
        coords: (x, y, z) ints, the point's centre (point kind; None otherwise), as for
            `nnInteractiveInferenceSession.add_point_interaction`.
        bbox: [[lo, hi), [lo, hi), [lo, hi)] ints, hi - lo == 1 on the slice axis (bbox kind; None otherwise), as
            for `add_bbox_interaction`.
    """

    kind: str
    positive: bool
    patch: np.ndarray
    offset: tuple[int, int, int]
    shape: tuple[int, int, int]
    axis: int | None = None
    index: int | None = None
    coords: tuple[int, int, int] | None = None
    bbox: list[list[int]] | None = None

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        """Where `patch` lies in the volume."""
        return tuple(slice(o, o + s) for o, s in zip(self.offset, self.patch.shape))

    @property
    def mask(self) -> np.ndarray:
        """float32 (X, Y, Z) in [0, 1]: the prompt as the inference package writes it into its channel."""
        out = np.zeros(self.shape, np.float32)
        out[self.slices] = self.patch
        return out

    def __repr__(self) -> str:
        where = f"coords={self.coords}" if self.coords is not None else f"axis={self.axis}, index={self.index}"
        return (f"Prompt({self.kind}, {'positive' if self.positive else 'negative'}, {where}, "
                f"voxels={int(np.count_nonzero(self.patch))})")
