"""Generated 3D datasets: the embedded default for demos and tests.

Each case holds several objects of different shapes and sizes (spheres, ellipsoids, tubes, irregular blobs),
some touching each other, some cut by the volume border, on a textured background with a per-case contrast and
noise level and anisotropic voxel spacing. Every object stays visible (a contrast floor against the background
texture) and pieces under ``MIN_OBJECT_VOXELS`` are dropped (docs/method.md). Labels are semantic (one value per
shape class); the sphere class has several instances per case, so instance conversion has something to separate.

Arrays are in nnU-Net's numpy axis order (axis 0 = the slowest axis on disk, i.e. SimpleITK's z); ``spacing``
is given per array axis in mm.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage

from nninteractive_train.data.paths import dataset_folder_name  # checks the id (1..999) and the name
from nninteractive_train.errors import SetupError, UsageError
from nninteractive_train.files import atomic_write_json, replace_dir

LABELS = {"background": 0, "sphere": 1, "ellipsoid": 2, "tube": 3, "blob": 4}
BACKGROUND_MEAN, BACKGROUND_SD = 100.0, 40.0
CONTRAST = (90.0, 350.0)
"""Range of |object mean - background mean|: at least 2.25 texture sd (visible), at most the former range's."""
# Object sizes as fractions of the volume's shortest physical extent (``scale`` in make_case), chosen so that
# nearly every object has 250 voxels or more (docs/method.md, "The embedded generated data").
SPHERE_RADIUS = (0.09, 0.16)
ELLIPSOID_RADII = (0.10, 0.22)
TUBE_RADIUS = (0.045, 0.08)
BLOB_RADIUS = (0.13, 0.20)
MIN_OBJECT_VOXELS = 100
"""Connected pieces smaller than this (slivers left where shapes overlap or the border cuts) become background."""


def _grid(shape, spacing):
    return np.meshgrid(*[np.arange(s, dtype=np.float32) * sp for s, sp in zip(shape, spacing)], indexing="ij")


def _ellipsoid(grid, center, radii, rotation) -> np.ndarray:
    coords = np.stack([g - c for g, c in zip(grid, center)], -1) @ rotation.T
    return (((coords / np.asarray(radii, np.float32)) ** 2).sum(-1)) <= 1.0


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return (q * np.sign(np.diag(r))).astype(np.float32)


def _tube(grid, start, end, radius) -> np.ndarray:
    p = np.stack(grid, -1)
    d = np.asarray(end, np.float32) - np.asarray(start, np.float32)
    t = np.clip(((p - start) @ d) / max(float(d @ d), 1e-6), 0, 1)
    closest = np.asarray(start, np.float32) + t[..., None] * d
    return ((p - closest) ** 2).sum(-1) <= radius**2


def _blob(shape, spacing, center, radius, *, rng) -> np.ndarray:
    """An irregular blob: a thresholded, smoothed noise field inside a sphere-ish envelope."""
    grid = _grid(shape, spacing)
    dist = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, center)))
    noise = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), sigma=2.0)
    noise /= noise.std() + 1e-6
    return dist < radius * (1.0 + 0.35 * noise)


def _drop_fragments(label: np.ndarray, min_voxels: int) -> np.ndarray:
    """``label`` with every 26-connected piece of a label value smaller than ``min_voxels`` set to 0."""
    import cc3d

    pieces = cc3d.connected_components(label, connectivity=26)
    counts = np.bincount(pieces.ravel())
    small = counts < min_voxels
    small[0] = False
    return np.where(small[pieces], 0, label).astype(label.dtype)


def make_case(
    rng: np.random.Generator,
    shape: tuple[int, int, int] = (48, 64, 64),
    spacing: tuple[float, float, float] = (2.0, 1.0, 1.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Generate one case.

    Args:
        rng: the only source of randomness.
        shape: volume shape in voxels, per array axis.
        spacing: voxel size in mm, per array axis.

    Returns:
        image: float32 ``shape``, intensities of a CT/MR-like range with per-case contrast and noise.
        label: uint8 ``shape``, semantic labels (see ``LABELS``).
    """
    shape = tuple(int(s) for s in shape)
    spacing = tuple(float(s) for s in spacing)
    extent = np.array(shape, np.float32) * np.array(spacing, np.float32)
    grid = _grid(shape, spacing)
    label = np.zeros(shape, np.uint8)

    def place(mask, value):
        label[mask & (label == 0)] = value

    def center(margin_frac=0.15):
        return rng.uniform(extent * margin_frac, extent * (1 - margin_frac))

    scale = float(extent.min())
    # Several sphere instances of one semantic class; one touches another, one is cut by the border.
    spheres = []
    for i in range(int(rng.integers(3, 5))):
        r = rng.uniform(*SPHERE_RADIUS) * scale
        if i == 1 and spheres:  # touching the previous sphere
            c0, r0 = spheres[-1]
            direction = rng.normal(size=3)
            direction /= np.linalg.norm(direction)
            c = c0 + direction * (r0 + r) * 0.98
        elif i == 2:  # cut by the border
            c = center()
            ax = int(rng.integers(0, 3))
            c[ax] = rng.choice([0.0, extent[ax]]) + rng.uniform(-0.3, 0.3) * r
        else:
            c = center()
        spheres.append((c, r))
        place(_ellipsoid(grid, c, (r, r, r), np.eye(3, dtype=np.float32)), LABELS["sphere"])
    radii = rng.uniform(*ELLIPSOID_RADII, 3) * scale
    place(_ellipsoid(grid, center(0.25), radii, _random_rotation(rng)), LABELS["ellipsoid"])
    a, b = center(0.1), center(0.1)
    place(_tube(grid, a, b, rng.uniform(*TUBE_RADIUS) * scale), LABELS["tube"])
    place(_blob(shape, spacing, center(0.2), rng.uniform(*BLOB_RADIUS) * scale, rng=rng), LABELS["blob"])

    label = _drop_fragments(label, MIN_OBJECT_VOXELS)
    # Per-case contrast: each class gets its own mean, brighter or darker than the background (a smooth texture,
    # mean BACKGROUND_MEAN, sd BACKGROUND_SD) by CONTRAST mean units. The floor keeps every object visible above
    # the texture: a class drawn at the background's own mean cannot be segmented from the image at all.
    background = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), sigma=3.0)
    background = BACKGROUND_MEAN + BACKGROUND_SD * background / (background.std() + 1e-6)
    image = background
    for value in range(1, len(LABELS)):
        image[label == value] = BACKGROUND_MEAN + rng.choice([-1.0, 1.0]) * rng.uniform(*CONTRAST)
    image = ndimage.gaussian_filter(image, sigma=0.7)
    image += rng.uniform(5, 60) * rng.standard_normal(shape, dtype=np.float32)
    return image.astype(np.float32), label


def _write_nifti(array: np.ndarray, spacing, path: Path) -> None:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(array)
    img.SetSpacing([float(s) for s in spacing[::-1]])  # SimpleITK spacing is (x, y, z) = reversed array axes
    tmp = path.with_name(f".{path.name}.tmp.nii.gz")
    sitk.WriteImage(img, str(tmp), True)
    os.replace(tmp, path)


def _write_case(tmp: Path, name: str, seed: int, i: int, shape_range, spacings) -> None:
    rng = np.random.default_rng(np.random.SeedSequence([seed, i]))
    shape = tuple(int(rng.integers(lo, hi + 1)) for lo, hi in shape_range)
    spacing = spacings[i % len(spacings)]
    image, label = make_case(rng, shape, spacing)
    case = f"{name.lower()}_{i:04d}"
    _write_nifti(image, spacing, tmp / "imagesTr" / f"{case}_0000.nii.gz")
    _write_nifti(label, spacing, tmp / "labelsTr" / f"{case}.nii.gz")


def write_dataset(
    raw_root: str | os.PathLike,
    dataset_id: int,
    num_cases: int,
    *,
    seed: int = 0,
    name: str = "Synthetic",
    shape_range: tuple[tuple[int, int], ...] = ((32, 48), (56, 72), (56, 72)),
    spacings: tuple[tuple[float, float, float], ...] = ((2.0, 1.0, 1.0), (3.0, 0.8, 0.8), (1.5, 1.2, 1.2)),
    num_processes: int = 1,
) -> Path:
    """Write an nnU-Net raw dataset ``raw_root/DatasetXXX_<name>`` (imagesTr, labelsTr, dataset.json).

    Deterministic for ``seed`` whatever ``num_processes``: case ``i`` is drawn from ``SeedSequence([seed, i])``.
    ``shape_range`` gives (low, high) voxels per array axis. The folder is built under a temporary name and
    renamed, so an interrupted run leaves no half-written dataset.
    """
    if num_cases < 1:
        raise UsageError(f"the number of cases must be >= 1, got {num_cases}")
    raw_root = Path(raw_root)
    raw_root.mkdir(parents=True, exist_ok=True)
    existing = [p for p in raw_root.glob(f"Dataset{int(dataset_id):03d}_*") if p.is_dir()]
    final = raw_root / dataset_folder_name(dataset_id, name)
    for p in existing:
        if p != final:
            raise SetupError(f"dataset id {dataset_id} is already used by {p.name}", p, hint="pick another id")
    tmp = Path(tempfile.mkdtemp(dir=raw_root, prefix=f".{final.name}."))
    (tmp / "imagesTr").mkdir()
    (tmp / "labelsTr").mkdir()
    jobs = [(tmp, name, seed, i, shape_range, spacings) for i in range(num_cases)]
    if num_processes > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")  # the caller may hold torch threads; fork would copy them
        with ProcessPoolExecutor(min(num_processes, num_cases), mp_context=ctx) as ex:
            for f in [ex.submit(_write_case, *j) for j in jobs]:
                f.result()
    else:
        for j in jobs:
            _write_case(*j)
    atomic_write_json(
        tmp / "dataset.json",
        {
            "name": name,
            "description": f"nninteractive_train synthetic dataset (seed {seed})",
            "channel_names": {"0": "MRI"},
            "labels": dict(LABELS),
            "numTraining": num_cases,
            "file_ending": ".nii.gz",
        },
    )
    replace_dir(tmp, final)
    return final
