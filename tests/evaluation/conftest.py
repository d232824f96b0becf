"""Fixtures of the evaluation tests: a tiny randomly initialised model folder and a small raw dataset with two
good cases and bad ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from eval_helpers import CONFIG, DATASET_JSON, EVAL_DS, PLANS, SPACING, build_network, small_case, write_nifti


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A model folder written from a random network (export patch 96³)."""
    from nninteractive_train.export import write_model_folder

    out = tmp_path_factory.mktemp("model") / "tiny_model"
    return write_model_folder(out, build_network().state_dict(), PLANS, CONFIG, DATASET_JSON)


@pytest.fixture(scope="session")
def eval_dataset(nnunet_dirs) -> int:
    """Raw Dataset969: cases good_0, good_1, and bad ones: a label whose shape differs from the image (bad_shape),
    an all-background label (bad_empty), a label with another spacing (bad_spacing)."""
    root = nnunet_dirs["nnUNet_raw"] / f"Dataset{EVAL_DS}_EvalTest"
    if root.exists():
        return EVAL_DS
    for sub in ("imagesTr", "labelsTr"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(2):
        image, label = small_case(i)
        write_nifti(image, SPACING, root / "imagesTr" / f"good_{i}_0000.nii.gz")
        write_nifti(label, SPACING, root / "labelsTr" / f"good_{i}.nii.gz")
    image, label = small_case(7)
    write_nifti(image, SPACING, root / "imagesTr" / "bad_shape_0000.nii.gz")
    write_nifti(label[:, :-3], SPACING, root / "labelsTr" / "bad_shape.nii.gz")
    write_nifti(image, SPACING, root / "imagesTr" / "bad_empty_0000.nii.gz")
    write_nifti(np.zeros_like(label), SPACING, root / "labelsTr" / "bad_empty.nii.gz")
    write_nifti(image, SPACING, root / "imagesTr" / "bad_spacing_0000.nii.gz")
    write_nifti(label, (2.0, 1.0, 1.5), root / "labelsTr" / "bad_spacing.nii.gz")
    (root / "dataset.json").write_text(json.dumps(dict(DATASET_JSON, numTraining=5)))
    return EVAL_DS
