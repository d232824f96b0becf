"""Small nnU-Net raw datasets for the collection tests (written with SimpleITK, a few 16³–24³ cases)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

LABELS = {"background": 0, "liver": 1, "tumour": 2, "vessel": 3}


def write_nifti(arr: np.ndarray, path: Path, spacing=(1.5, 1.0, 1.0)) -> None:
    """Write a (Z, Y, X) array with ``spacing`` given per array axis (SimpleITK wants it reversed)."""
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing([float(s) for s in spacing[::-1]])
    sitk.WriteImage(img, str(path), True)


def make_label(shape=(16, 20, 24), *, variant: int = 0) -> np.ndarray:
    """A liver block with one tumour inside, a second tumour apart, and (odd variants) a vessel."""
    lab = np.zeros(shape, np.uint8)
    lab[2:9, 3:12, 4:14] = 1
    lab[4:7, 5:8, 6:9] = 2
    lab[11:14, 13:17, 16:21] = 2
    if variant % 2:
        lab[12:15, 2:6, 2:6] = 3
    return lab


def write_raw_dataset(root: Path, dataset_id: int, name: str, labels_list, *, channels: int = 1,
                      spacing=(1.5, 1.0, 1.0), labels: dict | None = None, seed: int = 0) -> Path:
    """Write ``DatasetXXX_name`` with one case per label map in ``labels_list`` (images = noise + label)."""
    rng = np.random.default_rng(seed)
    d = Path(root) / f"Dataset{dataset_id:03d}_{name}"
    (d / "imagesTr").mkdir(parents=True)
    (d / "labelsTr").mkdir()
    for i, lab in enumerate(labels_list):
        for c in range(channels):
            img = (rng.normal(size=lab.shape) + 3 * lab + 10 * c).astype(np.float32)
            write_nifti(img, d / "imagesTr" / f"case_{i:03d}_{c:04d}.nii.gz", spacing)
        write_nifti(lab, d / "labelsTr" / f"case_{i:03d}.nii.gz", spacing)
    dj = {"channel_names": {str(c): f"MR{c}" for c in range(channels)}, "labels": labels or LABELS,
          "numTraining": len(labels_list), "file_ending": ".nii.gz"}
    (d / "dataset.json").write_text(json.dumps(dj))
    return d


LIST_YAML = """
name: Tiny
defaults:
  min_size: 5
datasets:
  - name: A
    source: 901
    weight: 2
    labels:
      liver: {objects: whole, closing: 1}
    ignore: [vessel]
    combinations:
      liver_with_tumour: [liver, tumour]
    object_probs: {liver_with_tumour: 0.25, liver: 0.25, tumour: 0.5}
  - name: B
    source: 902
    channels: [0, 1]
  - name: Unmapped
    source: null
"""


def tiny_collection(raw: Path, list_dir: Path, yaml_text: str = LIST_YAML) -> Path:
    """Write source datasets 901 (3 cases) and 902 (2 cases, 2 channels) and the list; returns the list file."""
    write_raw_dataset(raw, 901, "A", [make_label(variant=i) for i in range(3)])
    write_raw_dataset(raw, 902, "B", [make_label(variant=i) for i in range(2)], channels=2, seed=1)
    f = Path(list_dir) / "tiny.yaml"
    f.write_text(yaml_text)
    return f


def snapshot(folder: Path) -> dict:
    """Relative path → (size, mtime_ns) of every file under ``folder`` (empty if absent)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}
