"""Dice, NSD and AUC against reference computations on hand-made and small random masks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import cdist

from nninteractive_train.evaluation.metrics import auc, dice, nsd, surface


def brute_surface(mask: np.ndarray) -> np.ndarray:
    """Mask voxels with a 6-neighbour outside the mask (or outside the volume), by explicit neighbour checks."""
    padded = np.pad(mask, 1)
    out = np.zeros_like(mask)
    for idx in zip(*np.nonzero(mask)):
        p = tuple(i + 1 for i in idx)
        for axis, step in itertools.product(range(3), (-1, 1)):
            q = list(p)
            q[axis] += step
            if not padded[tuple(q)]:
                out[idx] = True
    return out


def brute_nsd(a, b, spacing, tol) -> float:
    sa, sb = brute_surface(a), brute_surface(b)
    if not sa.any() and not sb.any():
        return 1.0
    if not sa.any() or not sb.any():
        return 0.0
    pa = np.argwhere(sa) * np.asarray(spacing)
    pb = np.argwhere(sb) * np.asarray(spacing)
    d = cdist(pa, pb)
    good = np.count_nonzero(d.min(axis=1) <= tol + 1e-9) + np.count_nonzero(d.min(axis=0) <= tol + 1e-9)
    return good / (len(pa) + len(pb))


def blob(rng, shape, threshold=0.3):
    return ndimage.gaussian_filter(rng.normal(size=shape), 1.2) > threshold * 0.3


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("spacing", [(1, 1, 1), (2.0, 0.8, 0.8), (3.0, 1.0, 0.5)])
@pytest.mark.parametrize("tol", [0.0, 1.0, 2.0, 3.5])
def test_nsd_matches_brute_force(seed, spacing, tol):
    rng = np.random.default_rng(seed)
    a, b = blob(rng, (9, 11, 10)), blob(rng, (9, 11, 10))
    assert a.any() and b.any()
    assert nsd(a, b, spacing, tol) == pytest.approx(brute_nsd(a, b, spacing, tol), abs=1e-12)
    assert nsd(b, a, spacing, tol) == pytest.approx(nsd(a, b, spacing, tol), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_surface_matches_brute_force(seed):
    m = blob(np.random.default_rng(seed), (8, 9, 7))
    np.testing.assert_array_equal(surface(m), brute_surface(m))


@pytest.mark.parametrize("seed, spacing, tol", [(0, (1, 1, 1), 1.0), (1, (2.0, 0.8, 0.8), 2.0),
                                               (2, (3.0, 1.0, 0.5), 1.5)])
@pytest.mark.filterwarnings("ignore::FutureWarning")  # MONAI's own deprecation notice
def test_nsd_matches_monai(seed, spacing, tol):
    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("monai.metrics")
    rng = np.random.default_rng(seed)
    a, b = blob(rng, (12, 14, 13)), blob(rng, (12, 14, 13))

    def onehot(m):
        return torch.from_numpy(np.stack([~m, m])[None].astype(np.float32))

    ref = metrics.compute_surface_dice(onehot(a), onehot(b), [tol], spacing=list(spacing))
    assert nsd(a, b, spacing, tol) == pytest.approx(float(ref[0, 0]), abs=1e-6)


def _vox(shape, *points):
    m = np.zeros(shape, bool)
    for p in points:
        m[p] = True
    return m


@pytest.mark.parametrize("a, b, spacing, tol, want_dice, want_nsd", [
    (_vox((4, 4, 4)), _vox((4, 4, 4)), (1, 1, 1), 2.0, 1.0, 1.0),  # empty vs empty: perfect agreement
    (_vox((4, 4, 4)), _vox((4, 4, 4), (1, 1, 1)), (1, 1, 1), 2.0, 0.0, 0.0),  # empty vs one voxel
    (_vox((4, 4, 4), (1, 1, 1)), _vox((4, 4, 4)), (1, 1, 1), 2.0, 0.0, 0.0),
    (_vox((4, 4, 4), (1, 2, 3)), _vox((4, 4, 4), (1, 2, 3)), (1, 1, 1), 0.0, 1.0, 1.0),  # one voxel, same
    (_vox((4, 4, 4), (0, 0, 0)), _vox((4, 4, 4), (1, 0, 0)), (1, 1, 1), 0.5, 0.0, 0.0),  # neighbours, tight
    (_vox((4, 4, 4), (0, 0, 0)), _vox((4, 4, 4), (1, 0, 0)), (1, 1, 1), 1.0, 0.0, 1.0),  # within tolerance
    (_vox((4, 4, 4), (0, 0, 0)), _vox((4, 4, 4), (1, 0, 0)), (3, 1, 1), 2.0, 0.0, 0.0),  # anisotropic: 3 mm apart
    (_vox((4, 4, 4), (0, 0, 0)), _vox((4, 4, 4), (0, 1, 0)), (3, 1, 1), 2.0, 0.0, 1.0),  # ... but 1 mm this way
    (_vox((4, 4, 4), (0, 0, 0)), _vox((4, 4, 4), (1, 1, 1)), (1, 1, 1), 3 ** 0.5, 0.0, 1.0),  # tie at √3: "≤"
    (_vox((3, 3, 3), (0, 0, 0), (2, 2, 2)), _vox((3, 3, 3), (0, 0, 0)), (1, 1, 1), 1.0, 2 / 3, 2 / 3),
])
def test_edge_cases(a, b, spacing, tol, want_dice, want_nsd):
    assert dice(a, b) == pytest.approx(want_dice)
    assert nsd(a, b, spacing, tol) == pytest.approx(want_nsd)


def test_full_volume_masks_use_the_border_as_surface():
    a = np.ones((5, 5, 5), bool)
    b = a.copy()
    b[0] = False  # one face moved by one voxel
    assert nsd(a, b, (1, 1, 1), 1.0) == pytest.approx(brute_nsd(a, b, (1, 1, 1), 1.0))
    assert nsd(a, b, (1, 1, 1), 0.0) < 1.0


@pytest.mark.parametrize("bad", [dict(a=np.zeros((2, 2, 2)), b=np.zeros((2, 2, 3))),
                                 dict(a=np.zeros((2, 2, 2)), b=np.zeros((2, 2, 2)), spacing=(1, 0, 1)),
                                 dict(a=np.zeros((2, 2, 2)), b=np.zeros((2, 2, 2)), tolerance=-1.0)])
def test_bad_arguments_are_clear_errors(bad):
    with pytest.raises(ValueError):
        nsd(**bad)


@pytest.mark.parametrize("values, want", [([0.5], 0.5), ([0.0, 1.0], 0.5), ([1, 1, 1, 1], 1.0),
                                          ([0.2, 0.4, 0.4, 1.0], (0.3 + 0.4 + 0.7) / 3)])
def test_auc_is_normalised_trapezoid(values, want):
    assert auc(values) == pytest.approx(want)
    if len(values) > 1:
        assert auc(values) == pytest.approx(np.trapezoid(values) / (len(values) - 1))


def test_auc_rejects_empty():
    with pytest.raises(ValueError):
        auc([])
