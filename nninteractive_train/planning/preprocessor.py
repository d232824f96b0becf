"""nnU-Net's preprocessing with a lighter per-case foreground index.

nnU-Net keeps, in every case's ``.pkl``, up to max(10 000, 1 % of the label's voxels) int64 coordinates per label,
and unpickles them on every load of the case. With instance labels (hundreds to thousands per case in
microscopy or lesion datasets) that is tens of MB to GB per case, read for every sample. Our loaders use those
coordinates only to pick a voxel of a label uniformly as the patch centre (datasets without a collection
manifest, and validation), which ``LOCATIONS_PER_LABEL`` int32 coordinates do as well; collections draw their
centres from the candidates of ``data/centers.py`` instead. The preprocessed files keep nnU-Net's format.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor

LOCATIONS_PER_LABEL = 1000
"""Foreground coordinates kept per label and case (fewer when the label has fewer voxels)."""


class nnInteractivePreprocessor(DefaultPreprocessor):
    """DefaultPreprocessor with ``class_locations`` of at most ``LOCATIONS_PER_LABEL`` int32 rows per label."""

    @staticmethod
    def _sample_foreground_locations(seg: np.ndarray, classes_or_regions, seed: int = 1234, verbose: bool = False,
                                     **_ignored) -> dict:
        """{label: (n, 1 + 3) int32 [channel, x, y, z] voxel coordinates, or [] when absent} for ``seg``
        (1, X, Y, Z); n = min(LOCATIONS_PER_LABEL, voxels of the label), drawn uniformly without replacement."""
        locs = DefaultPreprocessor._sample_foreground_locations(
            seg, classes_or_regions, seed, verbose, min_num_samples=LOCATIONS_PER_LABEL, min_percent_coverage=0.0)
        return {k: (np.asarray(v, dtype=np.int32) if len(v) else v) for k, v in locs.items()}


def preprocess(dataset_id: int, plans_identifier: str, configuration: str, num_processes: int) -> None:
    """What nnU-Net's ``preprocess_dataset`` does for one configuration, with :class:`nnInteractivePreprocessor`
    (nnU-Net looks preprocessors up by name inside its own package only)."""
    from nnunetv2.paths import nnUNet_preprocessed, nnUNet_raw
    from nnunetv2.utilities.dataset_name_id_conversion import convert_id_to_dataset_name
    from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets

    name = convert_id_to_dataset_name(dataset_id)
    pre = nnInteractivePreprocessor(verbose=False)
    pre.run(dataset_id, configuration, plans_identifier, num_processes=num_processes)
    # nnU-Net's copy of the reference segmentations, so validation runs where only preprocessed data is present
    gt = Path(nnUNet_preprocessed) / name / "gt_segmentations"
    gt.mkdir(parents=True, exist_ok=True)
    raw = Path(nnUNet_raw) / name
    dataset_json = json.loads((raw / "dataset.json").read_text())
    for key, files in get_filenames_of_train_images_and_targets(str(raw), dataset_json).items():
        dst = gt / f"{key}{dataset_json['file_ending']}"
        src = Path(files["label"])
        if not dst.exists() or dst.stat().st_mtime < src.stat().st_mtime:
            tmp = dst.with_name(f".{dst.name}.tmp")
            shutil.copy2(src, tmp)
            tmp.replace(dst)
