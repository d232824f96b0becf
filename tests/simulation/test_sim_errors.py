"""Follow-up error components: FN → positive, FP → negative, choice ∝ size, fragmentation, Perlin noise."""

import cc3d
import numpy as np
import pytest
from scipy import stats
from sim_shapes import box, ellipsoid

from nninteractive_train.simulation import KINDS, simulate_prompt
from nninteractive_train.simulation.errors import Region, error_labels, fragment, pick_error, pick_target
from nninteractive_train.simulation.noise import perlin, smooth_field


@pytest.mark.parametrize("kind", KINDS)
def test_fn_positive_fp_negative(kind):
    target = ellipsoid(shape=(40, 40, 30), radii=(12, 10, 8))
    eroded = ellipsoid(shape=(40, 40, 30), radii=(9, 7, 5))
    dilated = ellipsoid(shape=(40, 40, 30), radii=(15, 13, 11))
    rng = np.random.default_rng(0)
    for _ in range(5):
        fn = simulate_prompt(kind, target, eroded, rng=rng)  # prediction too small: only false negatives
        fp = simulate_prompt(kind, target, dilated, rng=rng)  # too large: only false positives
        assert fn.positive and not fp.positive
        # The prompt is drawn on the error: its strongest voxels lie in the error region, not in the prediction.
        error_fn, error_fp = target & ~eroded, dilated & ~target
        if kind in ("point", "scribble"):
            assert (fn.mask[error_fn] > 0).any() and (fp.mask[error_fp] > 0).any()


def test_no_error_and_empty_inputs_give_none():
    target = ellipsoid()
    rng = np.random.default_rng(0)
    empty = np.zeros_like(target)
    for kind in KINDS:
        assert simulate_prompt(kind, target, target.copy(), rng=rng) is None
        assert simulate_prompt(kind, empty, rng=rng) is None
        assert simulate_prompt(kind, empty, empty, rng=rng) is None
        # An empty target with a non-empty prediction: everything predicted is a false positive.
        assert simulate_prompt(kind, empty, target, rng=rng).positive is False


def test_component_choice_proportional_to_size():
    shape = (40, 12, 12)
    target = np.zeros(shape, bool)
    sizes = {}
    for lo, edge in [(1, 2), (8, 3), (16, 4), (26, 6)]:  # separated cubes: 8, 27, 64, 216 voxels
        target |= box(shape, (lo, 2, 2), (lo + edge, 2 + edge, 2 + edge))
        sizes[lo] = edge**3
    labels = cc3d.connected_components(target, connectivity=26)
    starts = sorted(sizes)
    rng = np.random.default_rng(3)
    n = 1500
    counts = np.zeros(len(starts))
    for _ in range(n):
        region = pick_error(target, np.zeros(shape, bool), rng=rng)
        counts[starts.index(region.offset[0])] += 1
        assert region.positive and region.mask.sum() == sizes[region.offset[0]]
    expected = np.array([sizes[s] for s in starts], float)
    assert stats.chisquare(counts, n * expected / expected.sum()).pvalue > 1e-3
    # The test can fail: a uniform choice among components is rejected.
    assert stats.chisquare(counts, np.full(len(starts), n / len(starts))).pvalue < 1e-6
    assert labels.max() == len(starts)


def test_fn_and_fp_touching_are_separate_components():
    shape = (20, 10, 10)
    target = box(shape, (2, 2, 2), (10, 8, 8))
    prediction = box(shape, (6, 2, 2), (14, 8, 8))  # FN x in [2, 6), FP x in [10, 14): separated
    prediction |= box(shape, (0, 0, 0), (2, 10, 10))  # FP slab touching the FN block
    labels, positive = error_labels(target, prediction)
    assert labels.max() == 3 and positive[1:].sum() == 1
    rng = np.random.default_rng(0)
    for _ in range(50):
        region = pick_error(target, prediction, rng=rng)
        truth = target[region.slices][region.mask]
        assert truth.all() if region.positive else not truth.any()


def test_pick_target_covers_all_components():
    shape = (30, 10, 10)
    target = box(shape, (1, 1, 1), (4, 4, 4)) | box(shape, (20, 5, 5), (28, 9, 9))
    region = pick_target(target)
    assert region.positive and region.mask.sum() == target.sum()
    assert region.offset == (1, 1, 1) and region.mask.shape == (27, 8, 8)


@pytest.mark.parametrize("max_points", [200_000, 2_000])  # exact noise per voxel / coarse grid for big ones
def test_fragment_pieces_are_connected_subsets(max_points):
    shell = ellipsoid(shape=(50, 50, 50), radii=(20, 20, 20)) & ~ellipsoid(shape=(50, 50, 50), radii=(19, 19, 19))
    region = pick_target(shell)
    rng = np.random.default_rng(0)
    sizes = []
    for _ in range(20):
        piece = fragment(region, rng=rng, spacing=(1.0, 1.0, 1.0), period=12.0, max_points=max_points)
        full = np.zeros(shell.shape, bool)
        full[piece.slices] = piece.mask
        assert (full <= shell).all() and cc3d.connected_components(full, connectivity=26).max() == 1
        sizes.append(full.sum())
    # The rim breaks into local pieces instead of being one large component.
    assert np.median(sizes) < 0.5 * shell.sum()
    # Nothing survives / everything survives: the component comes back whole.
    assert fragment(region, rng=rng, spacing=(1, 1, 1), threshold=5.0).mask.sum() == shell.sum()
    assert fragment(region, rng=rng, spacing=(1, 1, 1), threshold=-5.0).mask.sum() == shell.sum()


def test_fragment_one_voxel():
    region = Region(np.ones((1, 1, 1), bool), (3, 3, 3), (8, 8, 8), False)
    piece = fragment(region, rng=np.random.default_rng(0), spacing=(1, 1, 1))
    assert piece.mask.sum() == 1 and piece.offset == (3, 3, 3) and not piece.positive


def test_perlin_properties():
    rng = np.random.default_rng(0)
    nodes = np.indices((4, 4, 4)).reshape(3, -1).T.astype(np.float32)
    np.testing.assert_allclose(perlin(nodes, rng=rng), 0.0, atol=1e-6)
    points = rng.uniform(0, 8, (20000, 3)).astype(np.float32)
    values = perlin(points, rng=np.random.default_rng(1))
    assert abs(values.mean()) < 0.05 and 0.4 < (values > 0).mean() < 0.6 and np.abs(values).max() < 0.9
    # Smooth: a tiny step changes the value by a tiny amount.
    both = perlin(np.concatenate([points, points + 1e-3]), rng=np.random.default_rng(1))
    assert np.abs(both[len(points):] - both[: len(points)]).max() < 1e-2
    field = smooth_field((30, 40), 10.0, rng=rng)
    assert field.shape == (30, 40) and field.dtype == np.float32 and np.abs(field).max() <= 1.0
