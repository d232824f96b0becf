"""Target objects (per-kind: components; segfm3d: classes) against hand-made label maps. The segfm3d rules
themselves are tested in test_eval_segfm3d.py."""

from __future__ import annotations

import numpy as np
import pytest

from nninteractive_train.evaluation.objects import find_objects
from nninteractive_train.evaluation.protocols import class_targets

def test_class_targets_are_whole_classes_largest_first():
    label = np.zeros((10, 10, 10), np.int16)
    label[0:3, 0:3, 0:3] = 1
    label[6:9, 6:9, 6:8] = 1  # a second component of class 1: the same segfm3d target (45 voxels)
    label[0:2, 5:9, 0:2] = 2  # 16 voxels
    label[9, 0, 9] = 7  # 1 voxel: the challenge has no minimum size
    targets = class_targets(label)
    assert [(t.label, t.voxels, t.index) for t in targets] == [(1, 45, 0), (2, 16, 1), (7, 1, 2)]
    for t in targets:
        np.testing.assert_array_equal(t.mask(), label == t.label)
    assert [t.label for t in class_targets(label, max_objects=2)] == [1, 2]
    picked = class_targets(label, max_objects=2, order="random", rng=np.random.default_rng(0))
    assert len(picked) == 2 and picked[0].voxels >= picked[1].voxels
    assert class_targets(np.zeros((3, 3, 3), np.uint8)) == []


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
