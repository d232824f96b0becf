"""2D prompts: slice choice ∝ voxels per slice, boxes within their jitter / shift / scale limits."""

import numpy as np
import pytest
from scipy import stats
from sim_shapes import CASES, box, ellipsoid

from nninteractive_train.simulation import simulate_prompt
from nninteractive_train.simulation.bbox import jitter_box
from nninteractive_train.simulation.errors import pick_target
from nninteractive_train.simulation.planar import dilate, directional_size, erode, pick_slice, run_distance


@pytest.mark.parametrize("power", [1.0, 0.5, 0.0])
def test_slice_choice_proportional_to_voxels_per_slice(power):
    shape = (8, 6, 5)
    target = np.zeros(shape, bool)
    target[1:4, 1:3, 1:4] = True  # 3 × 2 × 3 = 18 voxels
    target[4, 2, 2] = True
    region = pick_target(target)
    expected = {}
    for axis in range(3):
        counts = target.sum(axis=tuple(a for a in range(3) if a != axis))
        for index in np.flatnonzero(counts):
            expected[(axis, int(index))] = counts[index]
    weight = {k: float(v) ** power for k, v in expected.items()}
    keys = sorted(expected)
    rng = np.random.default_rng(0)
    n = 3000
    observed = dict.fromkeys(keys, 0)
    for _ in range(n):
        plane = pick_slice(region, rng=rng, power=power)
        observed[(plane.axis, plane.index)] += 1
        assert plane.mask.sum() == expected[(plane.axis, plane.index)]
    exp = np.array([weight[k] for k in keys], float)
    obs = np.array([observed[k] for k in keys], float)
    assert stats.chisquare(obs, n * exp / exp.sum()).pvalue > 1e-3
    if power > 0:  # larger cross-sections are drawn more often than under a uniform draw over the slices
        assert stats.chisquare(obs, np.full(len(keys), n / len(keys))).pvalue < 1e-6


def test_slice_power_reaches_the_simulators():
    """slice_power=0 puts 2D prompts on the object's edge slices far more often than the default."""
    target = np.zeros((40, 9, 9), bool)
    zz = np.arange(40)[:, None, None]
    yy, xx = np.mgrid[:9, :9]
    target[:] = ((zz - 19.5) / 18) ** 2 + ((yy - 4) / 4) ** 2 + ((xx - 4) / 4) ** 2 <= 1  # a long ellipsoid along z

    def edge_share(**kw):
        rng, edge = np.random.default_rng(1), 0
        for _ in range(300):
            prompt = simulate_prompt("lasso", target, None, rng=rng, **kw)
            edge += prompt.axis == 0 and abs(prompt.index - 19.5) > 12
        return edge / 300

    assert edge_share(slice_power=0.0) > 2 * edge_share() > 0


def test_run_distance_and_directional_size():
    m = np.array([[0, 1, 1, 1, 0, 1], [1, 1, 1, 1, 1, 1]], bool)
    np.testing.assert_array_equal(run_distance(m, 1), [[0, 1, 2, 1, 0, 1], [1, 2, 3, 3, 2, 1]])
    np.testing.assert_array_equal(run_distance(m, 0), m.astype(int))
    wide = box((60, 60), (10, 25), (50, 35))  # 40 × 10 rectangle
    size = directional_size(wide)
    assert size[0] > 3 * size[1]


def test_ellipse_morphology_matches_definition():
    mask = np.zeros((31, 31), bool)
    mask[15, 15] = True
    grown = dilate(mask, (6, 3))
    yy, xx = np.mgrid[:31, :31]
    np.testing.assert_array_equal(grown, ((yy - 15) / 6) ** 2 + ((xx - 15) / 3) ** 2 <= 1)
    np.testing.assert_array_equal(erode(grown, (6, 3)), mask)


@pytest.mark.parametrize("seed", range(3))
def test_jitter_box_limits(seed):
    rng = np.random.default_rng(seed)
    lo, hi = np.array([10.0, 20.0]), np.array([50.0, 30.0])
    d = hi - lo
    for _ in range(500):
        a, b = jitter_box(lo, hi, rng=rng)
        extent = b - a
        # Edges ±5 % d each, then ×[0.8, 1.2]: the extent stays in [0.8·0.9, 1.2·1.1]·d.
        assert ((extent >= 0.72 * d - 1e-9) & (extent <= 1.32 * d + 1e-9)).all()
        # The centre moves by at most 5 % (edge jitter) + 5 % (shift) of d; scaling keeps it.
        assert (np.abs((a + b) / 2 - (lo + hi) / 2) <= 0.1 * d + 1e-9).all()


def test_jitter_box_same_scale_probability():
    rng = np.random.default_rng(0)
    lo, hi = np.zeros(2), np.array([1000.0, 1000.0])
    n, same = 2000, 0
    for _ in range(n):
        a, b = jitter_box(lo, hi, rng=rng, jitter=0.0, shift=0.0)
        same += abs((b - a)[0] - (b - a)[1]) < 1e-6
    # p = 0.3 exactly (independent factors are never equal): a two-sided binomial test.
    assert stats.binomtest(same, n, 0.3).pvalue > 1e-3
    assert stats.binomtest(same, n, 0.5).pvalue < 1e-6


@pytest.mark.parametrize("case", sorted(CASES))
def test_bbox_prompt_fields(case):
    target, spacing = CASES[case]()
    rng = np.random.default_rng(1)
    for _ in range(20):
        p = simulate_prompt("bbox", target, rng=rng, spacing=spacing)
        assert p.kind == "bbox" and p.positive and p.coords is None
        (x0, x1), (y0, y1), (z0, z1) = p.bbox
        sizes = [x1 - x0, y1 - y0, z1 - z0]
        assert sizes[p.axis] == 1 and p.bbox[p.axis][0] == p.index and min(sizes) >= 1
        assert all(0 <= a < b <= n for (a, b), n in zip(p.bbox, target.shape))
        expected = np.zeros(target.shape, np.float32)
        expected[x0:x1, y0:y1, z0:z1] = 1
        np.testing.assert_array_equal(p.mask, expected)


def test_bbox_covers_the_component_slice():
    target = ellipsoid(shape=(60, 60, 40), radii=(20, 14, 10))
    rng = np.random.default_rng(4)
    coverage, ratio = [], []
    for _ in range(200):
        p = simulate_prompt("bbox", target, rng=rng)
        on_slice = np.take(target, p.index, axis=p.axis)
        box2d = np.take(p.mask, p.index, axis=p.axis) > 0
        coverage.append((box2d & on_slice).sum() / on_slice.sum())
        dims = [d for d in range(3) if d != p.axis]
        for k, d in enumerate(dims):
            hits = np.flatnonzero(on_slice.any(axis=1 - k))
            extent = hits[-1] - hits[0] + 1
            size = p.bbox[d][1] - p.bbox[d][0]
            ratio.append(size / extent)
            # Within the jitter / shift / scale limits, plus one voxel of rounding.
            assert 0.72 * extent - 1 <= size <= 1.32 * extent + 1
    assert np.mean(coverage) > 0.85 and np.min(coverage) > 0.5
    assert 0.95 < np.mean(ratio) < 1.05 and np.std(ratio) > 0.05  # perturbed, but unbiased


def test_bbox_clipped_at_border():
    target = box((20, 20, 20), (0, 0, 5), (6, 20, 9))
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = simulate_prompt("bbox", target, rng=rng)
        assert all(0 <= a < b <= 20 for a, b in p.bbox)
