"""Per-sample spatial augmentation (training/spatial.py): the crop covers every voxel the transform reads, the
result equals the old worst-case-crop pipeline for fixed parameters, and the parameter distribution is
batchgeneratorsv2's."""

import numpy as np
import pytest
import torch
from scipy import ndimage, stats

from nninteractive_train.training.schedule import initial_patch_size
from nninteractive_train.training.spatial import (SpatialAug, crop_box, draw_affine, patch_centre,
                                                  rotation_scaling_matrix, sampling_grid, source_box, warp)

ROT = np.pi / 6
EXTREMES = [  # (angles, scales): identity-free corners of the paper's ranges
    ((0, 0, 0), (0.5, 0.5, 0.5)),
    ((0, 0, 0), (2.0, 2.0, 2.0)),
    ((0, 0, 0), (2.0, 0.5, 2.0)),
    ((ROT, -ROT, ROT), (2.0, 2.0, 2.0)),
    ((-ROT, ROT, -ROT), (0.5, 2.0, 1.0)),
    ((0.3, 0.0, -0.1), (1.0, 1.0, 1.0)),
]


def _random_affines(n, rng):
    out = [rotation_scaling_matrix(a, s) for a, s in EXTREMES]
    for _ in range(n):
        out.append(rotation_scaling_matrix(rng.uniform(-ROT, ROT, 3), rng.uniform(0.5, 2.0, 3)))
    return out


@pytest.mark.parametrize("patch", [(8, 8, 8), (7, 12, 9), (4, 16, 16)])
def test_source_box_covers_every_read(patch):
    """Property: for random and extreme transforms and centres, every voxel that linear interpolation reads
    (floor and floor + 1 of each sample position) lies inside the cropped box."""
    rng = np.random.default_rng(0)
    for affine in _random_affines(40, rng):
        centre = patch_centre(rng.integers(-20, 60, 3), patch) + rng.uniform(-0.5, 0.5, 3) * (rng.random() < 0.5)
        lo, hi = source_box(centre, affine, patch)
        shape = hi - lo
        grid = sampling_grid(centre - lo, affine, patch, shape).double()
        # back from grid_sample's normalised coordinates (align_corners=False) to crop voxel coordinates
        pos = (grid.flip(-1) + 1) * torch.tensor(shape, dtype=torch.float64) / 2 - 0.5
        assert torch.all(torch.floor(pos) >= 0), (affine, centre)
        assert torch.all(torch.floor(pos) + 1 <= torch.tensor(shape - 1, dtype=torch.float64)), (affine, centre)


def test_source_box_plain_crop_is_the_patch():
    for patch in [(8, 8, 8), (7, 9, 10)]:
        centre = patch_centre((20, 21, 22), patch)
        lo, hi = source_box(centre, None, patch)
        assert list(lo) == [c - s // 2 for c, s in zip((20, 21, 22), patch)]
        assert list(hi - lo) == list(patch)


def _volume(shape, rng):
    img = ndimage.gaussian_filter(rng.normal(size=shape), 2).astype(np.float32)
    lab = (ndimage.gaussian_filter(rng.normal(size=shape), 3) > 0.05).astype(np.int16)
    return img[None], lab[None]


def _old_pipeline(img, lab, center, patch, angles, scales):
    """The loader as it was: a worst-case crop around ``center`` (initial_patch_size), then batchgeneratorsv2's
    SpatialTransform with the given parameters, centred on the crop."""
    from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform

    size = initial_patch_size(patch, (0.5, 2.0), ROT, transposable=False)
    lbs = [int(c) - s // 2 for c, s in zip(center, size)]
    box = [[a, a + s] for a, s in zip(lbs, size)]
    from acvl_utils.cropping_and_padding.bounding_boxes import crop_and_pad_nd

    big_img = torch.from_numpy(crop_and_pad_nd(img, box, 0)).float()
    big_lab = torch.from_numpy(crop_and_pad_nd(lab, box, 0))
    t = SpatialTransform(list(patch), 0, False, p_rotation=1, rotation=lambda image, dim: angles[dim], p_scaling=1,
                         scaling=lambda image, dim: scales[dim], p_synchronize_scaling_across_axes=0,
                         border_mode_seg="constant", padding_value_seg=0)
    out = t(image=big_img, segmentation=big_lab)
    # the old crop's transform centre sits half a voxel up on axes where the crop size is odd
    centre = np.asarray(center, float) + 0.5 * (np.asarray(size) % 2)
    return out["image"], out["segmentation"], centre


@pytest.mark.parametrize("angles,scales", EXTREMES + [((0.1, -0.2, 0.25), (0.7, 1.6, 1.1))])
@pytest.mark.parametrize("center", [(20, 24, 24), (2, 45, 3)])  # inside, and at the image border (padding)
def test_equals_old_pipeline_for_fixed_parameters(angles, scales, center):
    rng = np.random.default_rng(1)
    img, lab = _volume((40, 48, 48), rng)
    patch = (16, 16, 16)
    old_img, old_lab, centre = _old_pipeline(img, lab, center, patch, angles, scales)
    affine = rotation_scaling_matrix(angles, scales)
    lo, hi = source_box(centre, affine, patch)
    new_img, new_lab = warp(torch.from_numpy(crop_box(img, lo, hi)).float(), torch.from_numpy(crop_box(lab, lo, hi)),
                            centre - lo, affine, patch)
    assert new_img.shape == old_img.shape == (1, *patch)
    np.testing.assert_allclose(new_img.numpy(), old_img.numpy(), atol=1e-4)
    # labels: identical except where float rounding moves a sample across an exact tie
    assert (new_lab != old_lab).float().mean() <= 1e-3


def test_plain_crop_equals_old_crop():
    rng = np.random.default_rng(2)
    img, lab = _volume((30, 30, 30), rng)
    patch = (10, 12, 14)
    centre = patch_centre((3, 15, 28), patch)
    lo, hi = source_box(centre, None, patch)
    new_img, new_lab = warp(torch.from_numpy(crop_box(img, lo, hi)), torch.from_numpy(crop_box(lab, lo, hi)),
                            centre - lo, None, patch)
    from acvl_utils.cropping_and_padding.bounding_boxes import crop_and_pad_nd

    box = [[c - s // 2, c - s // 2 + s] for c, s in zip((3, 15, 28), patch)]
    np.testing.assert_array_equal(new_img.numpy(), crop_and_pad_nd(img, box, 0))
    np.testing.assert_array_equal(new_lab.numpy(), crop_and_pad_nd(lab, box, 0))


def _summaries(affines):
    """Per drawn transform: None, or (column norms = scales, rotation's trace)."""
    none = np.mean([a is None for a in affines])
    drawn = [a for a in affines if a is not None]
    norms = np.array([np.linalg.norm(a, axis=0) for a in drawn])
    traces = np.array([np.trace(a / np.linalg.norm(a, axis=0)) for a in drawn])
    synced = np.mean([np.allclose(n, n[0]) for n in norms])
    return none, norms, traces, synced


def test_distribution_matches_batchgeneratorsv2():
    from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform

    aug = SpatialAug()  # the paper's values
    n = 6000
    rng = np.random.default_rng(3)
    ours = [draw_affine(aug, rng=rng) for _ in range(n)]
    np.random.seed(3)  # batchgeneratorsv2 draws from numpy's global state
    ref_t = SpatialTransform((2, 2, 2), 0, False, p_rotation=aug.p_rotation, rotation=(-aug.rotation, aug.rotation),
                             p_scaling=aug.p_scaling, scaling=aug.scaling,
                             p_synchronize_scaling_across_axes=aug.p_synchronize_scaling)
    dummy = torch.zeros((1, 2, 2, 2))
    ref = [ref_t.get_parameters(image=dummy)["affine"] for _ in range(n)]
    a_none, a_norms, a_tr, a_sync = _summaries(ours)
    b_none, b_norms, b_tr, b_sync = _summaries(ref)
    assert abs(a_none - b_none) < 0.03  # P(no transform) = 0.8 * 0.7 = 0.56
    assert stats.ks_2samp(a_norms.ravel(), b_norms.ravel()).pvalue > 1e-3
    assert stats.ks_2samp(a_tr, b_tr).pvalue > 1e-3
    assert abs(a_sync - b_sync) < 0.05


@pytest.mark.parametrize("augment", [True, False])
def test_augment_switch(augment):
    """``data.augment=False`` trains on plain crops: no spatial transform and only the label clean-up, so a sample
    passes through unchanged; the default keeps the full pipeline."""
    from nninteractive_train.config import DataConfig
    from nninteractive_train.training.augmentation import train_augmentation

    transforms, spatial = train_augmentation([8, 16, 16], DataConfig(augment=augment), np.pi / 6)
    assert (spatial is not None) == augment
    assert (len(transforms.transforms) > 1) == augment
    if not augment:
        image = torch.randn(1, 8, 16, 16)
        seg = (torch.rand(1, 8, 16, 16) > 0.5).to(torch.int16)
        out = transforms(image=image.clone(), segmentation=seg.clone())
        assert torch.equal(out["image"], image) and torch.equal(out["segmentation"], seg)
