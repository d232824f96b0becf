"""The SAM + SAM2 backend's pure parts (prompt slices, de-duplication, painting) and its checks, without sam2:
the route itself needs sam2 + segment_anything + torchvision, which the CPU venv cannot hold
(scripts/check_sam_backend.py runs it end to end in a separate venv)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from nninteractive_train.data.supervoxels.sam import (
    SamConfig,
    SamUnavailable,
    check_sam,
    mask_iou,
    novel_masks,
    paint_labels,
    prompt_slices,
    sam2_config_file,
)


@pytest.mark.parametrize("zs, n, want", [
    ((0, 10), 3, [2, 5, 8]),        # evenly inside the span, end slices skipped
    ((4, 7), 1, [6]),               # the middle (5.5, numpy rounds half to even)
    ((3, 4), 5, [3, 4]),            # more asked than slices: distinct indices only
    ((6, 7), 2, [6, 7]),
    ((5, 5), 2, [5]),               # one valid slice
    (None, 3, []),                  # empty valid mask
    ((0, 10), 0, []),
])
def test_prompt_slices(zs, n, want):
    """Only the span of slices holding valid voxels counts (here: voxels on the two end slices only)."""
    valid = np.zeros((12, 4, 4), bool)
    if zs is not None:
        valid[list(zs), 1, 1] = True
    assert prompt_slices(valid, n).tolist() == want


def test_mask_iou_against_definition():
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 16, 16)) < 0.4
    assert mask_iou(a, b) == pytest.approx((a & b).sum() / (a | b).sum())
    assert mask_iou(a, a) == 1.0 and mask_iou(np.zeros_like(a), np.zeros_like(a)) == 0.0


def test_novel_masks_drops_covered_and_repeated():
    m = np.zeros((3, 10, 10), bool)
    m[0, :5] = True        # covered by an object already propagated
    m[1, 6:] = True        # new
    m[2, 6:, :9] = True    # nearly m[1]: a repeat within this slice
    covered = [m[0].copy()]
    assert novel_masks(list(m), covered, 0.5) == [1]
    assert novel_masks(list(m), [], 0.5) == [0, 1]
    assert novel_masks(list(m), [], 1.1) == [0, 1, 2]  # threshold above 1: nothing is a duplicate
    assert novel_masks([], covered, 0.5) == []


def test_paint_labels_larger_first_inside_valid():
    valid = np.ones((4, 8, 8), bool)
    valid[3] = False
    big = {z: np.ones((8, 8), bool) for z in range(4)}
    small = {1: np.zeros((8, 8), bool)}
    small[1][2:4, 2:4] = True
    labels = paint_labels([small, big], valid)
    assert labels.dtype == np.int32 and labels.shape == valid.shape
    assert (labels[1, 2:4, 2:4] == 2).all()  # the small object stays visible on top of the big one
    assert (labels[:3][labels[:3] != 2] == 1).all() and (labels[3] == 0).all()
    assert (paint_labels([], valid) == 0).all()


@pytest.mark.skipif(importlib.util.find_spec("sam2") is not None, reason="sam2 installed: the check passes on")
def test_without_sam2_config_lookup_and_check_say_so(tmp_path):
    assert sam2_config_file("configs/sam2.1/sam2.1_hiera_t.yaml") is None
    ckpt = tmp_path / "sam2.pt"
    ckpt.write_bytes(b"x")
    with pytest.raises(SamUnavailable, match="'sam2' package"):
        check_sam(SamConfig(sam2_checkpoint=str(ckpt), sam2_config="configs/sam2.1/sam2.1_hiera_t.yaml"))
