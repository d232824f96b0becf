"""The lighter foreground index: at most LOCATIONS_PER_LABEL int32 coordinates per label, each on its label."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from helpers import prepared_dataset
from nninteractive_train.planning.preprocessor import LOCATIONS_PER_LABEL, nnInteractivePreprocessor

sample = nnInteractivePreprocessor._sample_foreground_locations


def _seg(shape=(20, 24, 28)) -> np.ndarray:
    return np.zeros((1, *shape), np.int16)


def _cases():
    empty = _seg()
    one = _seg()
    one[0, 0, 0, 0] = 2  # a single voxel in the corner (border-touching)
    big = _seg((40, 40, 40))
    big[0, 5:30, 5:30, 5:30] = 1  # 15 625 voxels: subsampled
    many = _seg((30, 30, 30))
    ids = np.arange(1, 301)
    many[0].reshape(-1)[: 300 * 20] = np.repeat(ids, 20)  # 300 instances of 20 voxels
    thin = _seg((4, 64, 64))  # anisotropic: a slab
    thin[0, 1, 10:50, 10:50] = 3
    return {"empty": (empty, [1, 2]), "one voxel": (one, [1, 2]), "big": (big, [1]),
            "300 instances": (many, list(range(1, 301)) + [301]), "thin slab": (thin, [3])}


@pytest.mark.parametrize("name", list(_cases()))
def test_locations_are_capped_int32_and_on_their_label(name):
    seg, labels = _cases()[name]
    locs = sample(seg, labels, seed=1)
    assert sorted(locs) == sorted(labels)
    for label in labels:
        n_vox = int((seg == label).sum())
        loc = locs[label]
        if n_vox == 0:
            assert len(loc) == 0
            continue
        assert loc.dtype == np.int32 and loc.shape == (min(n_vox, LOCATIONS_PER_LABEL), 4)
        assert (seg[tuple(loc.T)] == label).all()  # every row is a voxel of the label
        assert len(np.unique(loc, axis=0)) == len(loc)  # drawn without replacement


def test_same_seed_same_locations():
    seg, labels = _cases()["big"]
    np.testing.assert_array_equal(sample(seg, labels, seed=3)[1], sample(seg, labels, seed=3)[1])


def test_preprocessed_cases_use_the_light_index():
    prepared_dataset(990)
    pkl = sorted(Path(os.environ["nnUNet_preprocessed"]).glob("Dataset990_*/*/*.pkl"))
    assert pkl
    for f in pkl:
        with open(f, "rb") as fh:
            locs = pickle.load(fh)["class_locations"]
        present = [v for v in locs.values() if len(v)]
        assert present and all(v.dtype == np.int32 and len(v) <= LOCATIONS_PER_LABEL for v in present), f
    gt = sorted(Path(os.environ["nnUNet_preprocessed"]).glob("Dataset990_*/gt_segmentations/*.nii.gz"))
    assert len(gt) == 4
