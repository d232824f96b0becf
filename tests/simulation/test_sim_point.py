"""Point prompts: the ball profile of the inference package, locations ∝ D^α inside the component."""

import numpy as np
import pytest
from scipy import ndimage, stats
from sim_shapes import CASES, ellipsoid

from nninteractive_train.simulation import simulate_prompt
from nninteractive_train.simulation.point import ball_profile, point_prompt, sample_point


def test_ball_profile_equals_inference_package():
    build_point = pytest.importorskip("nnInteractive.interaction.point").build_point
    reference = build_point((4, 4, 4), True, False)
    reference = reference.numpy() if hasattr(reference, "numpy") else np.asarray(reference)
    np.testing.assert_allclose(ball_profile(4), reference.astype(np.float32), atol=1e-6)
    # The values docs/model_folder.md lists along an axis from the centre.
    np.testing.assert_allclose(ball_profile(4)[4:, 4, 4], [1.0, 0.77, 0.54, 0.34, 0.24], atol=0.02)


def test_point_mask_matches_inference_placement_at_border():
    torch = pytest.importorskip("torch")
    stub = pytest.importorskip("nnInteractive.interaction.point").PointInteraction_stub(4, use_distance_transform=True)
    shape = (20, 15, 10)
    for coords in [(0, 0, 0), (19, 7, 9), (10, 7, 3), (2, 14, 5)]:
        reference = stub.place_point(coords, torch.zeros(shape), binarize=False).numpy()
        np.testing.assert_allclose(point_prompt(coords, shape).mask, reference, atol=1e-6)


def _reference_probs(mask, spacing, alpha):
    distance = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    d = distance[mask]
    w = (d / d.max()) ** alpha
    return w / w.sum()


def _binned_counts(observed, expected, min_expected=15):
    """Group voxels (sorted by expected probability) into bins with enough expected counts."""
    order = np.argsort(expected)
    obs, exp, o, e = [], [], 0.0, 0.0
    for i in order:
        o, e = o + observed[i], e + expected[i]
        if e >= min_expected:
            obs.append(o), exp.append(e)
            o = e = 0.0
    obs[-1] += o
    exp[-1] += e
    return np.asarray(obs), np.asarray(exp)


@pytest.mark.parametrize("alpha,spacing", [(1.0, (1.0, 1.0, 1.0)), (8.0, (1.0, 1.0, 1.0)), (1.0, (1.0, 1.0, 2.5))])
def test_point_distribution_matches_edt_power(alpha, spacing):
    mask = ellipsoid(shape=(11, 11, 9), radii=(4.5, 4.5, 3.5))
    rng = np.random.default_rng(0)
    n = 3000
    index = np.flatnonzero(mask)
    lookup = {int(v): i for i, v in enumerate(index)}
    counts = np.zeros(index.size)
    for _ in range(n):
        c = sample_point(mask, rng=rng, alpha=alpha, spacing=spacing)
        counts[lookup[int(np.ravel_multi_index(c, mask.shape))]] += 1
    expected = n * _reference_probs(mask, spacing, alpha)
    obs, exp = _binned_counts(counts, expected)
    assert stats.chisquare(obs, exp).pvalue > 1e-3
    # The test can fail: the other exponent's reference is rejected.
    other = n * _reference_probs(mask, spacing, 8.0 if alpha == 1.0 else 1.0)
    obs, exp = _binned_counts(counts, other)
    assert stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue < 1e-6


def test_alpha8_nearer_centre_than_alpha1():
    target = ellipsoid(shape=(40, 40, 40), radii=(15, 12, 10))
    centre = np.argwhere(target).mean(0)
    dist = {}
    for alpha in (1.0, 8.0):
        rng = np.random.default_rng(1)
        coords = [simulate_prompt("point", target, rng=rng, alphas=(alpha,), alpha_probs=(1.0,)).coords
                  for _ in range(200)]
        dist[alpha] = np.linalg.norm(np.asarray(coords) - centre, axis=1)
    assert dist[8.0].mean() < 0.6 * dist[1.0].mean()
    assert stats.mannwhitneyu(dist[8.0], dist[1.0], alternative="less").pvalue < 1e-6


@pytest.mark.parametrize("case", sorted(CASES))
def test_points_inside_component(case):
    target, spacing = CASES[case]()
    rng = np.random.default_rng(2)
    for _ in range(30):
        p = simulate_prompt("point", target, rng=rng, spacing=spacing)
        assert p.kind == "point" and p.positive and p.axis is None and p.bbox is None
        assert target[p.coords]
        mask = p.mask
        assert mask.dtype == np.float32 and mask.shape == target.shape
        assert mask[p.coords] == 1.0 and 0 <= mask.min() and mask.max() == 1.0
        # The ball is in voxel units whatever the spacing, as in the inference package.
        assert np.count_nonzero(mask) <= np.count_nonzero(ball_profile(4))


def test_point_outside_volume_raises():
    with pytest.raises(ValueError, match="outside"):
        point_prompt((5, 5, 12), (10, 10, 10))


def test_large_masks_use_a_strided_edt_with_the_same_bias():
    mask = ellipsoid(shape=(41, 41, 41), radii=(18, 18, 18))
    centre = np.argwhere(mask).mean(0)
    for alpha, limit in ((8.0, 6.0), (1.0, None)):
        dist = {}
        for max_exact in (mask.size, 1000):  # exact / every second voxel
            rng = np.random.default_rng(0)
            pts = [sample_point(mask, rng=rng, alpha=alpha, max_exact=max_exact) for _ in range(300)]
            assert all(mask[p] for p in pts)
            dist[max_exact] = np.linalg.norm(np.asarray(pts) - centre, axis=1)
        assert abs(dist[1000].mean() - dist[mask.size].mean()) < 1.0
        if limit is not None:
            assert dist[1000].mean() < limit
