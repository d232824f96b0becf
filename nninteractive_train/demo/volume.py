"""Generic steps of the demo converters: grids, resampling, crops, and writing an nnU-Net raw dataset atomically.

Arrays are in nnU-Net's numpy order (SimpleITK's arrays as they come: axis 0 = z); ``spacing`` is in mm per
array axis. SimpleITK's own spacing / size / index order is the reverse (x, y, z).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from nninteractive_train.errors import CaseError
from nninteractive_train.files import atomic_write_json, replace_dir

Box = tuple[tuple[int, int], ...]  # (start, stop) per array axis


class SourceError(CaseError):
    """A demo source file is missing or not what the converter expects; ``str()`` is ``"<file>: <problem>"``."""


def read(path: str | os.PathLike) -> sitk.Image:
    """Read an image with SimpleITK; a ``SourceError`` naming the file if it is missing or unreadable."""
    if not Path(path).is_file():
        raise SourceError(path, "file not found")
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as e:
        raise SourceError(path, f"cannot be read as an image ({str(e).strip().splitlines()[-1]})") from e


def same_grid(a: sitk.Image, b: sitk.Image, tol: float = 1e-4) -> bool:
    """Whether ``a`` and ``b`` have the same size, spacing, origin and direction."""
    return (a.GetSize() == b.GetSize()
            and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=tol)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=tol)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=tol))


def resample(img: sitk.Image, spacing: Sequence[float], *, label: bool = False) -> sitk.Image:
    """Resample ``img`` to ``spacing`` (mm per array axis) over the same physical extent.

    Images: float32, Gaussian anti-aliasing (sigma = (factor - 1) / 2 voxels on downsampled axes), linear
    interpolation. Labels (``label=True``): nearest neighbour, pixel type kept.
    """
    old = np.array(img.GetSpacing(), float)
    new = np.array(spacing, float)[::-1]  # -> SimpleITK (x, y, z)
    if np.allclose(old, new):
        return img if label else sitk.Cast(img, sitk.sitkFloat32)
    size = [max(1, int(round(n * o / s))) for n, o, s in zip(img.GetSize(), old, new)]
    # Align the outer voxel corners: origin is a voxel centre, so it moves by half the spacing change.
    direction = np.array(img.GetDirection()).reshape(3, 3)
    origin = np.array(img.GetOrigin()) + direction @ ((new - old) / 2)
    if not label:
        arr = sitk.GetArrayFromImage(img).astype(np.float32)
        sigma = np.maximum((new / old - 1) / 2, 0)[::-1]  # voxels, numpy order
        if sigma.any():
            arr = ndimage.gaussian_filter(arr, sigma)
        smooth = sitk.GetImageFromArray(arr)
        smooth.CopyInformation(img)
        img = smooth
    return sitk.Resample(img, size, sitk.Transform(), sitk.sitkNearestNeighbor if label else sitk.sitkLinear,
                         origin.tolist(), new.tolist(), img.GetDirection(), 0,
                         img.GetPixelID() if label else sitk.sitkFloat32)


def onto(label: sitk.Image, ref: sitk.Image) -> sitk.Image:
    """``label`` on ``ref``'s grid: unchanged when the grids agree, else nearest-neighbour resampled."""
    if same_grid(label, ref):
        return label
    return sitk.Resample(label, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, label.GetPixelID())


def grid_boxes(shape: Sequence[int], parts: Sequence[int], *, min_size: int = 48) -> list[Box]:
    """Split a volume into ``prod(parts)`` non-overlapping crops, ``parts[i]`` near-equal pieces along axis i.

    Crops are ordered with the last axis fastest (crop index = np.ravel_multi_index(piece, parts)).
    Raises ValueError if a piece would be shorter than ``min_size`` voxels.
    """
    if len(parts) != len(shape):
        raise ValueError(f"parts {tuple(parts)} must give one count per axis of shape {tuple(shape)}")
    edges = []
    for ax, (s, n) in enumerate(zip(shape, parts)):
        if n < 1 or s // n < min_size:
            raise ValueError(f"cannot split axis {ax} of length {s} into {n} crops of >= {min_size} voxels")
        cuts = np.linspace(0, s, n + 1).round().astype(int)
        edges.append([(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])])
    return [tuple(box) for box in itertools.product(*edges)]


def crop(img: sitk.Image, box: Box) -> sitk.Image:
    """The sub-image of ``img`` in ``box`` (numpy order), with its origin moved so it stays in place."""
    (z0, z1), (y0, y1), (x0, x1) = box
    return img[x0:x1, y0:y1, z0:z1]


def _write(img: sitk.Image, path: Path) -> None:
    sitk.WriteImage(img, str(path), True)


def write_dataset(
    raw_root: str | os.PathLike,
    dataset_id: int,
    name: str,
    image: sitk.Image,
    label: sitk.Image,
    *,
    boxes: Sequence[Box],
    held_out: Sequence[int],
    labels: dict[str, int],
    channel: str,
    case_prefix: str,
    extra: dict | None = None,
) -> tuple[Path, list[str]]:
    """Write ``raw_root/DatasetXXX_<name>``: one case per crop box (imagesTr/CASE_0000.nii.gz, labelsTr/CASE.nii.gz)
    and a dataset.json with ``channel_names`` {"0": channel}, ``labels``, ``held_out`` (case names), ``crops``
    (case -> box in voxels, numpy order) and ``extra``'s keys.

    The image and label must share a grid. Built in a hidden temporary folder next to the target and renamed at
    the end, so an interrupted run leaves no half-written dataset (an existing one is replaced only then).

    Returns:
        the dataset folder and the held-out case names.
    """
    if not same_grid(image, label):
        raise ValueError(f"{name}: image and label grids differ")
    n = len(boxes)
    bad = [i for i in held_out if not -n <= i < n]
    if bad:
        raise ValueError(f"{name}: held-out crop indices {bad} out of range for {n} crops")
    raw_root = Path(raw_root)
    raw_root.mkdir(parents=True, exist_ok=True)
    final = raw_root / f"Dataset{int(dataset_id):03d}_{name}"
    for p in raw_root.glob(f"Dataset{int(dataset_id):03d}_*"):
        if p != final:
            raise FileExistsError(f"dataset id {dataset_id} is already used by {p}; pick another id")
    for stale in raw_root.glob(f".{final.name}.*"):  # left by a run that was killed
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=raw_root, prefix=f".{final.name}."))
    try:
        (tmp / "imagesTr").mkdir()
        (tmp / "labelsTr").mkdir()
        cases = [f"{case_prefix}_{i:03d}" for i in range(n)]
        label = sitk.Cast(label, sitk.sitkUInt8) if max(labels.values()) < 256 else label
        for case, box in zip(cases, boxes):
            lab = crop(label, box)
            if not sitk.GetArrayViewFromImage(lab).any():
                raise ValueError(f"{name}: crop {case} {box} holds no labelled voxel; choose other crop parts")
            _write(crop(image, box), tmp / "imagesTr" / f"{case}_0000.nii.gz")
            _write(lab, tmp / "labelsTr" / f"{case}.nii.gz")
        held = sorted({cases[i] for i in held_out})
        atomic_write_json(tmp / "dataset.json", {
            "name": name,
            "channel_names": {"0": channel},
            "labels": {"background": 0, **{k: int(v) for k, v in labels.items() if k != "background"}},
            "numTraining": n,
            "file_ending": ".nii.gz",
            "held_out": held,
            "crops": {c: [list(ab) for ab in b] for c, b in zip(cases, boxes)},
            **(extra or {}),
        })
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, held
