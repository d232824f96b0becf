import numpy as np
import pytest

from nninteractive_train.training.schedule import followup_probability, initial_patch_size, stream_seed


@pytest.mark.parametrize("epoch, expected", [(0, 0.3), (4999, 0.75), (2499.5, 0.525), (-3, 0.3), (9999, 0.75)])
def test_followup_ramp(epoch, expected):
    assert followup_probability(epoch, 5000, 0.3, 0.75) == pytest.approx(expected)


def test_followup_ramp_single_epoch():
    assert followup_probability(0, 1, 0.3, 0.75) == 0.75


def test_streams_differ_and_repeat():
    a = np.random.default_rng(stream_seed(0, 0, 0)).random(4)
    b = np.random.default_rng(stream_seed(0, 1, 0)).random(4)
    c = np.random.default_rng(stream_seed(0, 0, 0)).random(4)
    assert not np.allclose(a, b) and np.allclose(a, c)


def test_initial_patch_covers_zoom_out():
    size = initial_patch_size([32, 48, 48], [0.5, 2.0], 0.0, transposable=False)
    assert size == [64, 96, 96]
    assert initial_patch_size([32, 48, 48], [0.5, 2.0], 0.0, transposable=True) == [96, 96, 96]
    assert all(s >= 2 * p for s, p in zip(initial_patch_size([192] * 3, [0.5, 2.0], np.pi / 6, True), [192] * 3))
