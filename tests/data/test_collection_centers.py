"""Centre-biased patch-centre candidates: distribution against the exact formula, bookkeeping, frames."""

import edt
import numpy as np
import pytest
from scipy import stats

from nninteractive_train.data.centers import (
    CenterConfig,
    center_candidates,
    load_centers,
    object_bbox,
    pick_center,
    sample_voxels,
    save_centers,
    shift_bbox,
)


def _mask():
    m = np.zeros((7, 9, 8), bool)
    m[1:6, 2:8, 1:7] = True
    m[3, 1, 3] = True  # a protrusion with small distance
    return m


@pytest.mark.parametrize("power", [0.0, 1.0, 3.0])
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (3.0, 1.0, 0.5)])
def test_distribution_matches_formula(power, spacing):
    mask = _mask()
    d = edt.edt(mask.astype(np.uint8), anisotropy=spacing, black_border=True)
    w = (d[mask].astype(np.float64) / d[mask].max()) ** power
    p = w / w.sum()
    n = 40_000
    pts = sample_voxels(mask, n, spacing=spacing, power=power, rng=np.random.default_rng(7))
    assert pts.shape == (n, 3) and mask[tuple(pts.T)].all()
    flat = np.ravel_multi_index(tuple(pts.T), mask.shape)
    order = np.flatnonzero(mask.ravel())
    counts = np.bincount(np.searchsorted(order, flat), minlength=order.size)
    assert stats.chisquare(counts, p * n).pvalue > 1e-3


def test_centre_bias_is_real():
    mask = np.ones((15, 15, 15), bool)
    pts = sample_voxels(mask, 5000, power=4.0, rng=np.random.default_rng(0))
    uni = sample_voxels(mask, 5000, power=0.0, rng=np.random.default_rng(0))
    dist = lambda q: np.abs(q - 7).max(axis=1).mean()  # noqa: E731
    assert dist(pts) < dist(uni) - 1.5


def test_empty_and_errors():
    assert sample_voxels(np.zeros((3, 3, 3), bool), 5, rng=np.random.default_rng(0)).shape == (0, 3)
    with pytest.raises(ValueError, match="3D"):
        sample_voxels(np.ones((3, 3), bool), 5, rng=np.random.default_rng(0))


def test_center_candidates_bookkeeping():
    seg = np.full((1, 10, 12, 14), 0, np.int16)
    seg[0, 0] = -1  # nnU-Net's "outside the image" label is never an object
    seg[0, 2:8, 2:9, 3:12] = 1
    seg[0, 4:6, 4:6, 4:6] = 2
    objects = [[1], [2], [1, 2], [5]]
    cfg = CenterConfig(num=64)
    coords, offsets = center_candidates(seg, objects, spacing=(2, 1, 1), config=cfg, rng=np.random.default_rng(1))
    assert offsets.tolist() == [0, 64, 128, 192, 192]  # object [5] is absent → no candidates
    for j, ids in enumerate(objects[:3]):
        pts = coords[offsets[j]:offsets[j + 1]]
        assert np.isin(seg[0][tuple(pts.T)], ids).all()
    with pytest.raises(LookupError, match="no centre candidates"):
        pick_center(coords, offsets, 3, rng=np.random.default_rng(0))
    c = pick_center(coords, offsets, 1, rng=np.random.default_rng(0))
    assert c.shape == (3,) and seg[0][tuple(c)] == 2
    # precomputed boxes give the same candidates as computed ones
    boxes = np.stack([object_bbox(seg[0], ids) for ids in objects[:3]])
    again = center_candidates(seg, objects[:3], spacing=(2, 1, 1), config=cfg, bboxes=boxes,
                              rng=np.random.default_rng(1))
    assert np.array_equal(again[0], coords)


def test_pick_center_is_uniform_over_candidates():
    coords = np.arange(30).reshape(10, 3).astype(np.int32)
    offsets = np.array([0, 4, 10])
    rng = np.random.default_rng(3)
    picks = np.array([pick_center(coords, offsets, 1, rng=rng)[0] for _ in range(6000)])
    counts = np.bincount((picks // 3) - 4, minlength=6)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_shift_bbox_and_io(tmp_path):
    bbox = np.array([[5, 6, 7, 9, 10, 11], [0, 0, 0, 3, 3, 3]])
    crop = [[4, 20], [5, 30], [6, 8]]
    got = shift_bbox(bbox, crop)
    assert got.tolist() == [[1, 1, 1, 5, 5, 2], [0, 0, 0, 0, 0, 0]]
    coords, offsets = np.ones((4, 3), np.int32), np.array([0, 1, 4])
    save_centers(tmp_path / "c.npz", coords, offsets)
    c2, o2 = load_centers(tmp_path / "c.npz")
    assert np.array_equal(c2, coords) and np.array_equal(o2, offsets)
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]
