"""Real 3D images with labels from Debian packages, converted into nnU-Net raw datasets for the demo.

Each source is one volume; it is resampled to a moderate spacing and split into non-overlapping crops (a grid of
``parts`` pieces per axis, >= 48 voxels each), one training case per crop. ``held_out`` crop indices are listed
in dataset.json (``"held_out"``: case names) for evaluation; they stay in imagesTr so nnU-Net sees a normal
dataset, and the caller keeps them out of training (e.g. a dataset list's ``skip_cases``). Defaults:

| source  | package                  | image; labels                          | spacing mm   | crops | held out |
|---------|--------------------------|----------------------------------------|--------------|-------|----------|
| colin27 | mricron-data             | ch2 T1 1 mm; AAL -> 15 structures      | 1.5 iso      | 2×2×2 | 0, 7     |
| inia19  | mricron-data             | macaque T1 0.5 mm; NeuroMaps -> 12     | 0.75 iso     | 1×2×2 | 3        |
| cranium | invesalius-examples      | CT .96×.96×1.5; 3 threshold classes    | 1.5×1.9×1.9  | 2×2×1 | 3        |
| kmeans  | insighttoolkit5-examples | T1 head 2×2×3; 5 k-means classes       | native 3×2×2 | 1×2×2 | 3        |

(crops in numpy axis order z, y, x; crop i = np.ravel_multi_index(piece, parts)). The downsampling keeps a CPU
demo fast and lets a small patch see whole structures.
"""

from __future__ import annotations

import argparse
import os
import plistlib
import tarfile
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import SimpleITK as sitk

from nninteractive_train.demo import labels as L
from nninteractive_train.demo.locate import SOURCES, find_files, install_hint, missing_packages
from nninteractive_train.demo.volume import SourceError, grid_boxes, onto, read, resample, write_dataset

DEFAULT_FIRST_ID = 960


def _with_array(arr: np.ndarray, ref: sitk.Image) -> sitk.Image:
    img = sitk.GetImageFromArray(arr)
    img.CopyInformation(ref)
    return img


def _source(package: str, *paths: os.PathLike) -> dict:
    return {"package": package, "files": [str(p) for p in paths]}


def convert_colin27(raw_root, dataset_id: int, *, image, label, names, spacing: Sequence[float] = (1.5, 1.5, 1.5),
                    parts: Sequence[int] = (2, 2, 2), held_out: Sequence[int] = (0, -1),
                    min_size: int = 48) -> tuple[Path, list[str]]:
    """Colin27 T1 (``ch2.nii.gz``) with AAL (``aal.nii.gz`` + name table ``aal.nii.txt``) grouped into 15 labels
    (``labels.AAL_GROUPS``). Returns the dataset folder and the held-out case names."""
    t1 = read(image)
    aal = onto(read(label), t1)
    if not Path(names).is_file():
        raise SourceError(names, "AAL name table not found")
    grouped, unmapped = L.group_aal(sitk.GetArrayFromImage(aal), L.parse_aal_names(Path(names).read_text()))
    if unmapped:
        print(f"colin27: AAL regions in no group (background): {unmapped}")
    lab = resample(_with_array(grouped, aal), spacing, label=True)
    img = resample(t1, spacing)
    return write_dataset(
        raw_root, dataset_id, "Colin27AAL", img, lab,
        boxes=grid_boxes(lab.GetSize()[::-1], parts, min_size=min_size), held_out=held_out,
        labels=L.aal_label_names(), channel="T1", case_prefix="colin27",
        extra={"description": "Colin27 T1 head (ch2) with AAL regions grouped into 7 structures per hemisphere "
                              "+ vermis; resampled and cropped by nninteractive_train.demo",
               "spacing_mm": list(spacing), "aal_groups": {k: list(v) for k, v in L.AAL_GROUPS.items()},
               "source": _source("mricron-data", image, label, names)})


def convert_inia19(raw_root, dataset_id: int, *, image, label, spacing: Sequence[float] = (0.75, 0.75, 0.75),
                   parts: Sequence[int] = (1, 2, 2), held_out: Sequence[int] = (-1,), pairs: int = 6,
                   min_size: int = 48) -> tuple[Path, list[str]]:
    """INIA19 macaque T1 brain (``inia19-t1-brain.nii.gz``) with its NeuroMaps labels (``inia19-NeuroMaps.nii.gz``,
    the same grid in the package; resampled nearest-neighbour onto the T1 otherwise): the ``pairs`` largest
    bilateral regions, one label per hemisphere."""
    t1 = read(image)
    nm = onto(read(label), t1)
    kept, names = L.largest_neuromaps(sitk.GetArrayFromImage(nm), pairs)
    if not names:
        raise SourceError(label, "no NeuroMaps region found")
    lab = resample(_with_array(kept, nm), spacing, label=True)
    img = resample(t1, spacing)
    return write_dataset(
        raw_root, dataset_id, "INIA19Macaque", img, lab,
        boxes=grid_boxes(lab.GetSize()[::-1], parts, min_size=min_size), held_out=held_out,
        labels=names, channel="T1", case_prefix="inia19",
        extra={"description": f"INIA19 rhesus macaque T1 brain with the {pairs} largest bilateral NeuroMaps "
                              "regions (label value = left NeuroMaps id; right = id + 1000); resampled and cropped "
                              "by nninteractive_train.demo",
               "spacing_mm": list(spacing), "source": _source("mricron-data", image, label)})


def read_inv3(path: str | os.PathLike) -> tuple[np.ndarray, tuple[float, float, float], dict]:
    """Read an InVesalius project (a tar.gz holding ``main.plist`` and the raw volume it names).

    Returns:
        (Z, Y, X) array of the stored dtype (HU for CT), spacing in mm per array axis, and the plist dict.
        The spacing comes from the plist; only if it has none, Cranium.inv3's 0.957×0.957×1.5 mm is assumed.
    """
    path = Path(path)
    if not path.is_file():
        raise SourceError(path, "file not found")
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
            if "main.plist" not in members:
                raise SourceError(path, "no main.plist inside (not an InVesalius .inv3 project?)")
            meta = plistlib.loads(tar.extractfile(members["main.plist"]).read())
            matrix = meta.get("matrix", {})
            fname, shape = matrix.get("filename", "matrix.dat"), tuple(int(s) for s in matrix.get("shape", ()))
            dtype = np.dtype(matrix.get("dtype", "int16"))
            if len(shape) != 3:
                raise SourceError(path, f"main.plist gives no 3D matrix shape ({shape})")
            if fname not in members:
                raise SourceError(path, f"{fname} named by main.plist is not in the archive")
            raw = tar.extractfile(members[fname]).read()
    except (tarfile.TarError, plistlib.InvalidFileException, OSError, EOFError) as e:
        raise SourceError(path, f"not a readable InVesalius project ({e})") from e
    if len(raw) != int(np.prod(shape)) * dtype.itemsize:
        raise SourceError(path, f"{fname} holds {len(raw)} bytes, main.plist says {shape} {dtype}")
    arr = np.frombuffer(raw, dtype).reshape(shape).copy()
    xyz = meta.get("spacing")
    if xyz is None:
        print(f"{path}: main.plist has no spacing; assuming Cranium.inv3's 0.957 x 0.957 x 1.5 mm")
        xyz = (0.9570312, 0.9570312, 1.5)
    return arr, tuple(float(s) for s in xyz[::-1]), meta


def convert_cranium(raw_root, dataset_id: int, *, inv3, inplane_factor: int = 2, parts: Sequence[int] = (2, 2, 1),
                    held_out: Sequence[int] = (-1,), bone_hu: float = 226, soft_hu: float = -142,
                    min_voxels: int = 64, min_size: int = 48) -> tuple[Path, list[str]]:
    """InVesalius ``Cranium.inv3`` head CT: soft tissue / bone / air-cavity labels by thresholds
    (``labels.ct_labels``; the defaults are the file's own two masks), computed at full resolution, then the
    in-plane axes downsampled by ``inplane_factor``."""
    hu, spacing, meta = read_inv3(inv3)
    ct = sitk.GetImageFromArray(hu)
    ct.SetSpacing(spacing[::-1])
    lab = _with_array(L.ct_labels(hu, bone_hu=bone_hu, soft_hu=soft_hu, min_voxels=min_voxels), ct)
    target = (spacing[0], spacing[1] * inplane_factor, spacing[2] * inplane_factor)
    lab, img = resample(lab, target, label=True), resample(ct, target)
    return write_dataset(
        raw_root, dataset_id, "CraniumCT", img, lab,
        boxes=grid_boxes(lab.GetSize()[::-1], parts, min_size=min_size), held_out=held_out,
        labels=L.CT_LABELS, channel="CT", case_prefix="cranium",
        extra={"description": f"InVesalius example head CT ({meta.get('name', 'Cranium')}); soft tissue = largest "
                              f"head component >= {soft_hu} HU, bone >= {bone_hu} HU, air cavity = holes of the "
                              "head per axial slice; downsampled in-plane and cropped by nninteractive_train.demo",
               "spacing_mm": [round(s, 4) for s in target], "source": _source("invesalius-examples", inv3)})


def convert_kmeans(raw_root, dataset_id: int, *, image, label, parts: Sequence[int] = (1, 2, 2),
                   held_out: Sequence[int] = (-1,), min_voxels: int = 1000,
                   min_size: int = 48) -> tuple[Path, list[str]]:
    """ITK's ``KmeansTest_T1UCharRaw.nii.gz`` T1 head with ``KmeansTest_T1KmeansPrelimSegmentation.nii.gz``
    (7 k-means classes: background + 5 tissue classes kept, one 126-voxel class dropped), native spacing."""
    t1 = sitk.Cast(read(image), sitk.sitkFloat32)
    km = onto(read(label), t1)
    arr, names = L.kmeans_labels(sitk.GetArrayFromImage(km), min_voxels=min_voxels)
    if not names:
        raise SourceError(label, "no k-means class besides the background")
    lab = _with_array(arr, km)
    return write_dataset(
        raw_root, dataset_id, "KmeansT1", t1, lab,
        boxes=grid_boxes(lab.GetSize()[::-1], parts, min_size=min_size), held_out=held_out,
        labels=names, channel="T1", case_prefix="kmeans",
        extra={"description": "ITK example T1 head with its k-means classes (label name = original class); "
                              "cropped by nninteractive_train.demo",
               "spacing_mm": [round(s, 4) for s in t1.GetSpacing()[::-1]],
               "source": _source("insighttoolkit5-examples", image, label)})


CONVERTERS: dict[str, Callable[..., tuple[Path, list[str]]]] = {
    "colin27": convert_colin27, "inia19": convert_inia19, "cranium": convert_cranium, "kmeans": convert_kmeans,
}


def write_demo_sources(raw_root: str | os.PathLike, *, first_id: int = DEFAULT_FIRST_ID,
                       roots: list[str | os.PathLike] | None = None, only: Sequence[str] | None = None,
                       log: Callable[[str], None] = print) -> dict[str, tuple[int, Path, list[str]]]:
    """Write every available demo source as a raw dataset under ``raw_root``.

    Source ``SOURCES[i]`` gets dataset id ``first_id + i`` (colin27, inia19, cranium, kmeans), stable whether or
    not the others are present. A source whose package is not found is skipped with a message saying how to
    install it. ``roots`` overrides where packages are searched (see ``locate.package_roots``); ``only`` limits
    the sources by name.

    Returns:
        {source name: (dataset id, dataset folder, held-out case names)} for the sources written.
    """
    out = {}
    for i, src in enumerate(SOURCES):
        if only is not None and src.name not in only:
            continue
        files = find_files(src, roots)
        if files is None:
            log(f"skipping {src.name}: package {src.package} not found. {install_hint([src.package])}")
            continue
        t0 = time.perf_counter()
        folder, held = CONVERTERS[src.name](raw_root, first_id + i, **files)
        log(f"{src.name}: wrote {folder} in {time.perf_counter() - t0:.1f} s (held out: {', '.join(held)})")
        out[src.name] = (first_id + i, folder, held)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Convert the demo's Debian-packaged images into nnU-Net raw datasets.")
    p.add_argument("raw_root", nargs="?", help="output folder (default: $nnUNet_raw)")
    p.add_argument("--first-id", type=int, default=DEFAULT_FIRST_ID)
    p.add_argument("--only", nargs="+", choices=list(CONVERTERS))
    p.add_argument("--check", action="store_true", help="only report missing packages")
    a = p.parse_args(argv)
    if a.check:
        print(install_hint() or "all demo packages found")
        return 1 if missing_packages() else 0
    raw = a.raw_root or os.environ.get("nnUNet_raw")
    if not raw:
        p.error("give RAW_ROOT or set nnUNet_raw")
    write_demo_sources(raw, first_id=a.first_id, only=a.only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
