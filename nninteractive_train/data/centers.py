"""Patch centres: centre-biased random voxels of an object.

The centre of a training patch is a voxel ``x`` of the chosen object drawn with probability

    p(x) ∝ (D(x) / max D) ** power,

where ``D`` is the Euclidean distance transform of the object mask (in mm, using ``spacing``; voxels outside the
object have distance 0 and are never drawn). ``power = 1`` (the default) favours the interior mildly while still
reaching every voxel; larger powers pull centres towards the object's medial core. The power is the run config's
``data.center_bias``: the preprocessing draws the candidates with it and records it (:func:`save_centers_info`),
SuperVoxel generation reuses the recorded value, and training checks its own against it
(:func:`check_center_bias`). Computing an EDT per draw is
too slow for data loading (≈200 ms for 192³), so :func:`center_candidates` draws ``num`` candidates per object once,
on the preprocessed instance map, and :func:`pick_center` picks one of them uniformly at train time — together an
i.i.d. sample from ``p`` up to the candidate set.

Coordinates index the array they were computed on (the preprocessed, cropped map); :func:`shift_bbox` moves the
manifest's raw-case boxes into that frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import edt
import numpy as np


@dataclass(frozen=True)
class CenterConfig:
    """How patch-centre candidates are drawn."""

    num: int = 512
    """Candidates per object (drawn with replacement, so small objects repeat voxels)."""
    power: float = 1.0
    """Exponent of the normalised EDT; 0 = uniform over the object."""


def shift_bbox(bbox: np.ndarray, crop_bbox: Sequence[Sequence[int]]) -> np.ndarray:
    """Move (…, 6) half-open boxes of the raw case into the frame of nnU-Net's cropped case.

    ``crop_bbox`` is ``properties['bbox_used_for_cropping']`` (``[[start, stop], ...]`` per axis) of the
    preprocessed case. Boxes are clipped to the crop.
    """
    starts = np.array([int(b[0]) for b in crop_bbox])
    size = np.array([int(b[1]) - int(b[0]) for b in crop_bbox])
    b = np.asarray(bbox, dtype=np.int64).copy()
    b[..., :3] = np.clip(b[..., :3] - starts, 0, size)
    b[..., 3:] = np.clip(b[..., 3:] - starts, 0, size)
    return b


def object_bbox(instance_map: np.ndarray, ids: Sequence[int] | np.ndarray) -> np.ndarray | None:
    """(6,) half-open box of the voxels with an id in ``ids``; None if there are none."""
    mask = np.isin(instance_map, np.asarray(ids))
    if not mask.any():
        return None
    lo, hi = [], []
    for ax in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != ax)))
        lo.append(hit[0])
        hi.append(hit[-1] + 1)
    return np.array(lo + hi, dtype=np.int64)


def sample_voxels(
    mask: np.ndarray,
    num: int,
    *,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    power: float = 1.0,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw ``num`` voxels of a 3D boolean ``mask`` with probability ∝ normalised EDT ** ``power``.

    Returns a (num, 3) int64 array of indices into ``mask`` (empty (0, 3) if ``mask`` is empty). The EDT treats
    everything outside ``mask`` as background, including beyond the array border.
    """
    if mask.ndim != 3:
        raise ValueError(f"mask must be 3D, got shape {mask.shape}")
    idx = np.flatnonzero(mask)
    if idx.size == 0 or num <= 0:
        return np.zeros((0, 3), np.int64)
    if power == 0:
        w = None
    else:
        # black_border: the array border counts as outside the object
        d = edt.edt(np.ascontiguousarray(mask, dtype=np.uint8), anisotropy=tuple(float(s) for s in spacing),
                    black_border=True, parallel=1)
        w = d.ravel()[idx].astype(np.float64)
        w = (w / w.max()) ** power
        w /= w.sum()
    pick = idx[rng.choice(idx.size, size=num, replace=True, p=w)]
    return np.stack(np.unravel_index(pick, mask.shape), axis=1).astype(np.int64)


def center_candidates(
    instance_map: np.ndarray,
    objects: Sequence[Sequence[int] | np.ndarray],
    *,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    config: CenterConfig = CenterConfig(),
    bboxes: np.ndarray | None = None,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Patch-centre candidates for every object of a case.

    Args:
        instance_map: (Z, Y, X) or (1, Z, Y, X) integer instance map (e.g. nnU-Net's preprocessed ``_seg``; the
            negative "outside the image" label of nnU-Net's cropping is never an object).
        objects: per object, its instance ids.
        spacing: voxel size in mm per axis (for the EDT).
        config: candidate count and EDT exponent.
        bboxes: optional (n, 6) half-open boxes of the objects in this array's frame; computed if None. Only the
            box (plus one voxel) is transformed, which keeps the EDT cheap.
        rng: random generator.

    Returns:
        ``(coords, offsets)``: (M, 3) int32 voxel indices and (n + 1,) int64 offsets; the candidates of object j are
        ``coords[offsets[j]:offsets[j + 1]]`` (empty if the object is absent from the map, e.g. cropped away).
    """
    seg = np.asarray(instance_map)
    if seg.ndim == 4:
        if seg.shape[0] != 1:
            raise ValueError(f"instance map must have one channel, got shape {seg.shape}")
        seg = seg[0]
    out, offsets = [], [0]
    for j, ids in enumerate(objects):
        ids = np.asarray(ids)
        box = object_bbox(seg, ids) if bboxes is None else np.asarray(bboxes[j])
        pts = np.zeros((0, 3), np.int64)
        if box is not None and np.all(box[3:] > box[:3]):
            sl = tuple(slice(int(a), int(b)) for a, b in zip(box[:3], box[3:]))
            pts = sample_voxels(np.isin(seg[sl], ids), config.num, spacing=spacing, power=config.power, rng=rng)
            pts = pts + box[:3]
        out.append(pts)
        offsets.append(offsets[-1] + pts.shape[0])
    coords = np.concatenate(out).astype(np.int32) if out else np.zeros((0, 3), np.int32)
    return coords, np.asarray(offsets, np.int64)


def case_center_candidates(
    seg: np.ndarray,
    properties: dict,
    manifest,
    case: int | str,
    *,
    config: CenterConfig = CenterConfig(),
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Centre candidates of every manifest object of one preprocessed case.

    Args:
        seg: the case's preprocessed ``_seg`` array, (1, Z, Y, X) or (Z, Y, X) (e.g. from
            ``nnUNetDatasetBlosc2.load_case``; a blosc2 array is read once).
        properties: the case's preprocessing properties (``spacing``, ``bbox_used_for_cropping``).
        manifest: the collection :class:`~nninteractive_train.data.manifest.Manifest`.
        case: case index or identifier in the manifest.

    Objects follow the manifest's order for the case (``manifest.object_range(case)``). The manifest's raw-case
    boxes are moved by the crop offset, which is exact for plans without resampling and with the identity
    transpose (the interactive plan); other plans should pass through :func:`center_candidates` with
    ``bboxes=None``.
    """
    idx = manifest.case_index(case) if isinstance(case, str) else int(case)
    arr = np.asarray(seg[:])
    objs = manifest.case_objects(idx)
    boxes = manifest.object_bbox[manifest.case_object_start[idx]:manifest.case_object_start[idx + 1]]
    if "bbox_used_for_cropping" in properties:
        boxes = shift_bbox(boxes, properties["bbox_used_for_cropping"])
    spacing = properties.get("spacing", manifest.case_spacing[idx].tolist())
    return center_candidates(arr, objs, spacing=spacing, config=config, bboxes=boxes, rng=rng)


def pick_center(coords: np.ndarray, offsets: np.ndarray, obj: int, *, rng: np.random.Generator) -> np.ndarray:
    """A patch centre for object ``obj``: one of its candidates, uniformly (see the module docstring).

    Returns a (3,) int64 voxel index; ``LookupError`` if the object has no candidates.
    """
    lo, hi = int(offsets[obj]), int(offsets[obj + 1])
    if hi <= lo:
        raise LookupError(f"object {obj} has no centre candidates (absent from the preprocessed map?)")
    return coords[lo + int(rng.integers(hi - lo))].astype(np.int64)


def save_centers(path, coords: np.ndarray, offsets: np.ndarray) -> None:
    """Write candidates to an ``.npz`` atomically (keys ``coords``, ``offsets``)."""
    import os
    import uuid
    from pathlib import Path

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, coords=coords, offsets=offsets)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_centers(path) -> tuple[np.ndarray, np.ndarray]:
    """Read candidates written by :func:`save_centers`: ``(coords, offsets)``."""
    with np.load(path, allow_pickle=False) as z:
        return z["coords"], z["offsets"]


CENTERS_INFO = "info.json"
"""Beside the candidates (``<data>/centers/info.json``): how they were drawn (``{"power": p, "num": n}``)."""


def save_centers_info(folder, config: CenterConfig) -> None:
    """Record ``config`` in ``folder/info.json`` (atomically)."""
    import json
    from dataclasses import asdict
    from pathlib import Path

    from nninteractive_train.files import atomic_write_text

    atomic_write_text(Path(folder) / CENTERS_INFO, json.dumps(asdict(config)))


def recorded_center_config(folder) -> CenterConfig:
    """The ``CenterConfig`` recorded in ``folder/info.json``; the defaults (power 1) for candidates written before
    it was recorded."""
    import json
    from pathlib import Path

    path = Path(folder) / CENTERS_INFO
    return CenterConfig(**json.loads(path.read_text())) if path.is_file() else CenterConfig()


def check_center_bias(data_dir, center_bias: float) -> None:
    """Raise ``ValueError`` naming the file when the centre candidates under ``data_dir`` (objects:
    ``centers/info.json``; SuperVoxels: ``supervoxels/index.json``) were drawn with another power than
    ``center_bias``."""
    import json
    from pathlib import Path

    data_dir = Path(data_dir)
    recorded = [(data_dir / "centers" / CENTERS_INFO, recorded_center_config(data_dir / "centers").power)]
    sv_index = data_dir / "supervoxels" / "index.json"
    if sv_index.is_file():
        recorded.append((sv_index, float(json.loads(sv_index.read_text()).get("centers", {}).get("power", 1.0))))
    for path, power in recorded:
        if float(power) != float(center_bias):
            raise ValueError(f"{path}: patch-centre candidates were drawn with center_bias {power:g}, but the run "
                             f"config has data.center_bias {center_bias:g}; re-run nnInteractive_plan_and_preprocess "
                             f"(and nnInteractive_generate_supervoxels --overwrite) with data.center_bias="
                             f"{center_bias:g}, or train with data.center_bias={power:g}")
