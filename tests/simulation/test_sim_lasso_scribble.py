"""Lassos (filled, containing, not rectangles) and scribbles (constant width, one stroke, inside / on border)."""

import cc3d
import numpy as np
import pytest
from scipy import ndimage
from sim_shapes import CASES, ellipsoid

from nninteractive_train.simulation import SCRIBBLE_THICKNESS, simulate_prompt
from nninteractive_train.simulation.scribble import brush


def _on_slice(prompt, volume):
    return np.take(volume, prompt.index, axis=prompt.axis)


def _check_only_on_slice(prompt):
    mask = prompt.mask
    assert mask.dtype == np.float32 and mask.min() >= 0 and mask.max() == 1
    others = np.delete(mask, prompt.index, axis=prompt.axis)
    assert not others.any()


def _blob(seed, shape=(48, 48, 32)):
    """An irregular (non-convex) object: an ellipsoid with a smooth random bump and dent."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, dtype=np.float32)
    centre = np.asarray(shape, np.float32) / 2
    radii = rng.uniform([10, 8, 6], [16, 14, 10]).astype(np.float32)
    f = (((grid - centre[:, None, None, None]) / radii[:, None, None, None]) ** 2).sum(0)
    f += 0.4 * np.sin(grid[0] / 4 + rng.uniform(0, 6)) * np.sin(grid[1] / 5 + rng.uniform(0, 6))
    return f <= 1


@pytest.mark.parametrize("case", sorted(CASES))
def test_lasso_edge_cases(case):
    target, spacing = CASES[case]()
    rng = np.random.default_rng(0)
    for _ in range(10):
        p = simulate_prompt("lasso", target, rng=rng, spacing=spacing)
        assert p.kind == "lasso" and p.positive and p.bbox is None and p.coords is None
        _check_only_on_slice(p)
        lasso = _on_slice(p, p.mask) > 0
        assert (ndimage.binary_fill_holes(lasso) == lasso).all()
        assert cc3d.connected_components(lasso.astype(np.uint8), connectivity=4).max() == 1


def test_lasso_filled_containing_not_rectangle():
    contained, rectangularity, looseness = [], [], []
    for seed in range(4):
        target = _blob(seed)
        rng = np.random.default_rng(seed)
        for _ in range(15):
            p = simulate_prompt("lasso", target, rng=rng)
            lasso = _on_slice(p, p.mask) > 0
            obj = _on_slice(p, target)
            assert (ndimage.binary_fill_holes(lasso) == lasso).all()  # filled
            assert cc3d.connected_components(lasso.astype(np.uint8), connectivity=4).max() == 1
            contained.append((lasso & obj).sum() / obj.sum())
            rows, cols = np.flatnonzero(lasso.any(1)), np.flatnonzero(lasso.any(0))
            rectangularity.append(lasso.sum() / ((rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)))
            looseness.append(lasso.sum() / obj.sum())
    contained, rectangularity = np.asarray(contained), np.asarray(rectangularity)
    assert contained.mean() > 0.95 and np.percentile(contained, 10) > 0.85
    assert rectangularity.max() < 0.97 and rectangularity.mean() < 0.9
    assert np.median(looseness) > 1.05  # looser than the object


def _scribble_pixels(prompt):
    return _on_slice(prompt, prompt.mask) > 0


@pytest.mark.parametrize("case", sorted(CASES))
def test_scribble_edge_cases(case):
    target, spacing = CASES[case]()
    rng = np.random.default_rng(0)
    for _ in range(10):
        p = simulate_prompt("scribble", target, rng=rng, spacing=spacing)
        if p.kind == "point":  # fallback on too small slices
            assert target[p.coords]
            continue
        _check_only_on_slice(p)
        stroke = _scribble_pixels(p)
        assert cc3d.connected_components(stroke.astype(np.uint8), connectivity=4).max() == 1


def test_scribble_too_small_falls_back_to_point():
    target = np.zeros((10, 10, 10), bool)
    target[4, 4, 4] = True
    rng = np.random.default_rng(0)
    assert simulate_prompt("scribble", target, rng=rng).kind == "point"
    assert simulate_prompt("scribble", target, rng=rng, fallback=False) is None


@pytest.mark.parametrize("width", [SCRIBBLE_THICKNESS[0], 3])
@pytest.mark.parametrize("style", ["line", "centre", "contour"])
def test_scribble_constant_width_one_stroke(style, width):
    for seed in range(3):
        target = _blob(seed)
        rng = np.random.default_rng(seed)
        for _ in range(10):
            p = simulate_prompt("scribble", target, rng=rng, scribble_styles=(style,), scribble_width=width)
            assert p.kind == "scribble"
            stroke = _scribble_pixels(p)
            assert cc3d.connected_components(stroke.astype(np.uint8), connectivity=4).max() == 1
            # Constant width: never thicker than the brush (no blobs; a hairpin turn of a contour around a
            # thin tip may add a pixel or two) ...
            inner = ndimage.distance_transform_edt(np.pad(stroke, 1))
            assert inner.max() <= np.ceil(width / 2) + 1.5
            assert (inner > np.ceil(width / 2) + 0.5).sum() <= max(2, 0.03 * stroke.sum())
            # ... and never thinner: the stroke is a union of whole brush footprints (open under the brush).
            assert (ndimage.binary_opening(np.pad(stroke, width), brush(width)) == np.pad(stroke, width)).all()


def test_scribble_inside_or_along_border():
    inside, border_distance = {}, {}
    for style in ("line", "centre", "contour"):
        inside[style], border_distance[style] = [], []
        for seed in range(3):
            target = _blob(seed)
            rng = np.random.default_rng(seed)
            for _ in range(12):
                p = simulate_prompt("scribble", target, rng=rng, scribble_styles=(style,))
                stroke = _scribble_pixels(p)
                obj = _on_slice(p, target)
                inside[style].append((stroke & obj).sum() / stroke.sum())
                depth = ndimage.distance_transform_edt(obj)  # distance to the border, inside the object
                size = depth.max()
                border_distance[style].append(np.median(depth[stroke & obj]) / size if (stroke & obj).any() else 0)
    for style in ("line", "centre"):
        assert np.mean(inside[style]) > 0.9
    assert np.mean(inside["contour"]) > 0.75
    # The contour runs near the border, the centre line deep inside.
    assert np.mean(border_distance["contour"]) < 0.45
    assert np.mean(border_distance["centre"]) > np.mean(border_distance["contour"]) + 0.2


def test_scribble_brush():
    np.testing.assert_array_equal(brush(2), np.ones((2, 2), bool))
    np.testing.assert_array_equal(brush(3), np.ones((3, 3), bool))
    assert brush(5).sum() == 21


def test_lasso_and_scribble_on_anisotropic_target():
    target = ellipsoid(shape=(40, 40, 10), radii=(14, 10, 3))
    rng = np.random.default_rng(5)
    for kind in ("lasso", "scribble"):
        for _ in range(10):
            p = simulate_prompt(kind, target, rng=rng, spacing=(0.7, 0.7, 3.0))
            assert (p.mask > 0).sum() > 0 and p.positive
