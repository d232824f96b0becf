"""Semantic → instance conversion and objects, checked against scipy references."""

import numpy as np
import pytest
from scipy import ndimage

from nninteractive_train.data.dataset_list import LabelRule
from nninteractive_train.data.instances import (
    KIND_COMBINATION,
    KIND_INSTANCE,
    instance_stats,
    make_objects,
    to_instances,
)

CONN = {6: 1, 18: 2, 26: 3}


def _random_labels(rng, shape=(14, 16, 18), n_labels=3, p=0.25):
    lab = np.zeros(shape, np.int32)
    for v in range(1, n_labels + 1):
        lab[(rng.random(shape) < p / n_labels) & (lab == 0)] = v
    return lab


@pytest.mark.parametrize("connectivity", [6, 18, 26])
@pytest.mark.parametrize("min_size", [1, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_components_match_scipy(connectivity, min_size, seed):
    lab = _random_labels(np.random.default_rng(seed))
    rules = {v: LabelRule(connectivity=connectivity, min_size=min_size) for v in (1, 2, 3)}
    inst, owner = to_instances(lab, rules)
    assert inst.dtype == np.uint16
    n = owner.size
    assert set(np.unique(inst)) == set(range(n + 1))  # consecutive 1..N
    struct = ndimage.generate_binary_structure(3, CONN[connectivity])
    expected = 0
    for v in (1, 2, 3):
        comps, k = ndimage.label(lab == v, struct)
        sizes = np.bincount(comps.ravel())[1:]
        expected += int((sizes >= min_size).sum())
        # every kept reference component is exactly one instance of label v
        for i in np.flatnonzero(sizes >= min_size) + 1:
            ids = np.unique(inst[comps == i])
            assert ids.size == 1 and ids[0] > 0 and owner[ids[0] - 1] == v
    assert n == expected
    # dropped components are background, kept voxels keep their label
    assert np.all((inst > 0) <= (lab > 0))


def test_whole_ignore_and_order():
    lab = np.zeros((10, 10, 10), np.int32)
    lab[1:3, 1:3, 1:3] = 2
    lab[6:8, 6:8, 6:8] = 2
    lab[4, 4, 4] = 1
    lab[0, 9, 9] = 5
    inst, owner = to_instances(lab, {1: LabelRule(), 2: LabelRule(objects="whole", min_size=1)}, ignore={5})
    # label 1 (one voxel) is below the default min_size of 10; label 2 is one object despite two parts
    assert owner.tolist() == [2]
    assert np.array_equal(inst > 0, lab == 2)


def test_closing_only_claims_background():
    lab = np.zeros((12, 12, 12), np.int32)
    lab[2:10, 2:10, 2:10] = 1
    lab[5:7, 5:7, 5:7] = 2  # a "tumour" hole inside the "liver"
    lab[2:10, 2:10, 6] = 0  # a one-voxel gap splitting the liver
    rules = {1: LabelRule(closing=1, min_size=1), 2: LabelRule(min_size=1)}
    inst, owner = to_instances(lab, rules)
    liver = inst == 1
    assert owner.tolist() == [1, 2]
    assert liver[3:9, 3:9, 6].all()  # the gap is closed inside
    assert not np.any(liver & (lab == 2))  # the tumour is never absorbed
    assert np.array_equal(inst == 2, lab == 2)


def test_opening_removes_thin_parts():
    lab = np.zeros((12, 12, 12), np.int32)
    lab[2:8, 2:8, 2:8] = 1
    lab[5, 5, 8:12] = 1  # a one-voxel spur
    inst, _ = to_instances(lab, {1: LabelRule(opening=1, min_size=1)})
    assert inst[5, 5, 10] == 0 and inst[4, 4, 4] == 1


@pytest.mark.parametrize("lab, kw, needle", [
    (np.full((3, 3, 3), 7, np.int32), {}, "not declared"),
    (np.full((3, 3, 3), 1.0, np.float32), {}, "integer dtype"),
    (np.full((3, 3), 1, np.int32), {}, "3D"),
])
def test_errors(lab, kw, needle):
    with pytest.raises(ValueError, match=needle):
        to_instances(lab, {1: LabelRule(min_size=1)}, **kw)


def test_too_many_instances():
    lab = np.zeros((4, 256, 256), np.int32)
    lab[::2, ::2, ::2] = 1  # 2 * 128 * 128 = 32,768 isolated voxels
    with pytest.raises(ValueError, match="int16"):
        to_instances(lab, {1: LabelRule(connectivity=6, min_size=1)})


def test_instance_stats_reference():
    rng = np.random.default_rng(3)
    inst, owner = to_instances(_random_labels(rng), {v: LabelRule(min_size=1) for v in (1, 2, 3)})
    voxels, bbox = instance_stats(inst, owner.size)
    for i, sl in enumerate(ndimage.find_objects(inst.astype(np.int32))):
        assert voxels[i] == (inst == i + 1).sum()
        assert bbox[i].tolist() == [s.start for s in sl] + [s.stop for s in sl]


def test_make_objects_combinations_and_dedup():
    owner = np.array([1, 2, 2])  # liver, two tumours
    voxels = np.array([100, 5, 7])
    bbox = np.array([[0, 0, 0, 10, 10, 10], [2, 2, 2, 4, 4, 4], [12, 1, 1, 14, 3, 3]])
    types = {1: 0, 2: 1}
    objs = make_objects(owner, voxels, bbox, label_types=types, combinations={2: (1, 2), 3: (2,), 4: (3,)})
    # combination 3 (tumours only) differs from each single tumour → added; combination 4 (absent label) → no object
    assert objs.types.tolist() == [0, 1, 1, 2, 3]
    assert objs.kinds.tolist() == [KIND_INSTANCE] * 3 + [KIND_COMBINATION] * 2
    ids = [objs.ids[objs.id_offsets[j]:objs.id_offsets[j + 1]].tolist() for j in range(len(objs))]
    assert ids == [[1], [2], [3], [1, 2, 3], [2, 3]]
    assert objs.voxels.tolist() == [100, 5, 7, 112, 12]
    assert objs.bbox[3].tolist() == [0, 0, 0, 14, 10, 10]
    # a combination equal to an existing object (liver with tumour in a case without tumour) is not added twice
    one = make_objects(np.array([1]), np.array([9]), bbox[:1], label_types=types, combinations={2: (1, 2)})
    assert one.types.tolist() == [0]
