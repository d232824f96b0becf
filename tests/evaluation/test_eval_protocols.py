"""segfm3d clicks and boxes, and target objects, against brute-force references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import cdist

from nninteractive_train.evaluation.objects import find_objects
from nninteractive_train.evaluation.protocols import largest_slice_box, segfm3d_click

FULL = np.ones((3, 3, 3), bool)  # 26-connectivity


def brute_edt_max(component: np.ndarray, spacing) -> tuple[float, np.ndarray]:
    """Max over the component of the distance (mm) to the nearest voxel outside it, the volume border counting
    as outside (one padded layer), and the distance of every component voxel."""
    padded = np.pad(component, 1)
    inside = np.argwhere(padded) * np.asarray(spacing, float)
    outside = np.argwhere(~padded) * np.asarray(spacing, float)
    d = cdist(inside, outside).min(axis=1)
    return float(d.max()), d


def _row(mask: np.ndarray, voxel) -> int:
    """Position of `voxel` in np.argwhere(mask) order."""
    return int(np.flatnonzero((np.argwhere(mask) == np.asarray(voxel)).all(axis=1))[0])


def largest_error_component(target, prediction) -> np.ndarray:
    labels, n = ndimage.label(target != prediction, structure=FULL)
    sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, n + 1))
    return labels == 1 + int(np.argmax(sizes))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("spacing", [None, (1.0, 1.0, 1.0), (2.5, 1.0, 0.7)])
def test_click_is_at_edt_max_of_largest_error_component(seed, spacing):
    rng = np.random.default_rng(seed)
    shape = (10, 12, 11)
    target = ndimage.gaussian_filter(rng.normal(size=shape), 1.5) > 0
    prediction = ndimage.gaussian_filter(rng.normal(size=shape), 1.5) > 0.1
    (click, positive) = segfm3d_click(target, prediction, spacing)
    component = largest_error_component(target, prediction)
    assert component[click], "the click lies in the largest error component"
    best, dists = brute_edt_max(component, (1, 1, 1) if spacing is None else spacing)
    at_click = dists[_row(component, click)]
    assert at_click == pytest.approx(best, rel=1e-5)
    assert positive == bool(target[click])
    assert positive == (target[click] and not prediction[click])


def test_click_sign_and_largest_component():
    target = np.zeros((12, 12, 12), bool)
    target[2:6, 2:6, 2:6] = True  # a 4³ FN object (nothing predicted there)
    prediction = np.zeros_like(target)
    prediction[6:12, 6:12, 6:12] = True  # a 6³ FP blob, larger: it gets the click
    click, positive = segfm3d_click(target, prediction)
    assert not positive and prediction[click] and not target[click]
    assert all(7 <= c <= 10 for c in click), "near the FP cube's centre (it touches the border)"
    prediction[:] = False
    click, positive = segfm3d_click(target, prediction)
    assert positive and click in {(i, j, k) for i in (3, 4) for j in (3, 4) for k in (3, 4)}


def test_no_error_gives_no_click():
    target = np.zeros((5, 5, 5), bool)
    target[1:3, 1:3, 1:3] = True
    assert segfm3d_click(target, target.copy()) is None


def test_anisotropic_spacing_moves_the_click():
    # One FN component made of A (deep along axis 0, narrow in-plane) on top of B (thin along axis 0, wide).
    # In voxels A's core is farthest from the boundary; with 0.3 mm in-plane voxels B's core is.
    target = np.zeros((16, 20, 20), bool)
    target[1:10, 2:7, 2:7] = True
    target[10:13, 2:17, 2:17] = True
    prediction = np.zeros_like(target)
    for spacing, part in ((None, slice(1, 10)), ((1.0, 0.3, 0.3), slice(10, 13))):
        click, positive = segfm3d_click(target, prediction, spacing)
        best, d = brute_edt_max(target, (1, 1, 1) if spacing is None else spacing)
        assert positive and d[_row(target, click)] == pytest.approx(best)
        assert part.start <= click[0] < part.stop


def test_largest_slice_box():
    target = np.zeros((6, 10, 10), bool)
    target[1, 2:4, 2:4] = True
    target[3, 1:8, 2:9] = True  # the largest slice along axis 0
    target[3, 9, 0] = True
    assert largest_slice_box(target) == [[3, 4], [1, 10], [0, 9]]
    with pytest.raises(ValueError):
        largest_slice_box(np.zeros((2, 2, 2), bool))


def test_find_objects_components_per_label():
    label = np.zeros((10, 10, 10), np.int16)
    label[0:3, 0:3, 0:3] = 1  # 27 voxels
    label[3, 3, 3] = 1  # touches the first diagonally: same 26-connected component (28 voxels)
    label[6:9, 6:9, 6:8] = 1  # 18 voxels, separate
    label[0:2, 5:9, 0:2] = 2  # 16 voxels
    label[2, 5:9, 0:2] = 3  # touches label 2 but is another label: its own object (8 voxels)
    label[9, 0, 9] = 4  # 1 voxel: below min_size
    objs = find_objects(label, min_size=2)
    assert [(o.label, o.voxels) for o in objs] == [(1, 28), (1, 18), (2, 16), (3, 8)]
    assert [o.index for o in objs] == [0, 1, 2, 3]
    for o in objs:
        m = o.mask()
        assert m.sum() == o.voxels and np.all(label[m] == o.label)
    assert [o.voxels for o in find_objects(label, min_size=2, max_objects=2)] == [28, 18]
    picked = find_objects(label, min_size=2, max_objects=2, order="random", rng=np.random.default_rng(3))
    assert len(picked) == 2 and picked[0].voxels >= picked[1].voxels
    assert find_objects(np.zeros((3, 3, 3), np.uint8)) == []


def test_find_objects_rejects_fractional_labels():
    with pytest.raises(ValueError, match="integer"):
        find_objects(np.full((2, 2, 2), 0.5))
