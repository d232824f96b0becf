"""Exact sampling probabilities against a brute-force reference of the paper's formula."""

import math

import numpy as np
import pytest

from nninteractive_train.data.manifest import Manifest, ManifestError
from nninteractive_train.sampler.fake import fake_manifest
from nninteractive_train.sampler.tables import sampling_tables


def reference(man: Manifest, sv_counts, p_sv):
    """The formula written out case by case (slow, obviously right)."""
    k = man.objects_per_case()
    s = np.asarray(sv_counts)
    e = [k[c] if k[c] > 0 else s[c] for c in range(man.n_cases)]
    budget = []
    for d, info in enumerate(man.datasets):
        n_d = sum(1 for c in range(man.n_cases) if man.case_dataset[c] == d and e[c] > 0)
        budget.append(info["weight"] * math.sqrt(n_d))
    p_d = [b / sum(budget) for b in budget]
    case_p, sv_p, obj_q = [], [], []
    for c in range(man.n_cases):
        d = man.case_dataset[c]
        norm = sum(math.sqrt(e[x]) for x in range(man.n_cases) if man.case_dataset[x] == d)
        case_p.append(p_d[d] * math.sqrt(e[c]) / norm if e[c] > 0 else 0.0)
        sv_p.append(1.0 if k[c] == 0 and s[c] > 0 else (p_sv if s[c] > 0 and k[c] > 0 else 0.0))
        objs = list(man.object_range(c))
        probs = man.datasets[d].get("object_probs") or {}
        types = [man.datasets[d]["types"][man.object_type[o]] for o in objs]
        if not objs:
            continue
        if not probs:
            obj_q += [1 / len(objs)] * len(objs)
            continue
        rest = max(0.0, 1 - sum(probs.values()))
        n_unlisted = sum(t not in probs for t in types)
        w = [probs[t] / types.count(t) if t in probs else rest / n_unlisted for t in types]
        tot = sum(w)
        obj_q += [x / tot for x in w] if tot > 0 else [1 / len(objs)] * len(objs)
    return np.array(p_d), np.array(case_p), np.array(sv_p), np.array(obj_q)


def _case(cid, ds, types, ids=None):
    n = len(types)
    ids = ids or [[i + 1] for i in range(n)]
    offs = np.concatenate([[0], np.cumsum([len(i) for i in ids])]).tolist()
    return {"case_id": cid, "source": cid, "dataset": ds, "shape": [8, 8, 8], "spacing": [1, 1, 1],
            "instances": n, "types": types, "kinds": [0] * n, "voxels": [5] * n, "bbox": [[0, 0, 0, 2, 2, 2]] * n,
            "ids": sum(ids, []), "id_offsets": offs}


def edge_manifest():
    """Overrides with absent and unlisted types, an all-zero case, unlabeled cases and a zero-weight dataset."""
    meta = {"name": "edge", "datasets": [
        {"name": "liver", "weight": 1.0, "types": ["liver", "tumour", "lwt", "vessel"],
         "object_probs": {"lwt": 0.25, "liver": 0.25, "tumour": 0.5}},
        {"name": "plain", "weight": 3.0, "types": ["a"], "object_probs": {}},
        {"name": "zero", "weight": 0.0, "types": ["a"], "object_probs": {}},
        {"name": "only_listed_zero", "weight": 1.0, "types": ["a", "b"], "object_probs": {"a": 0.0, "b": 1.0}},
    ]}
    cases = [
        _case("l0", 0, [0, 1, 1, 2]),  # liver, two tumours, liver-with-tumour
        _case("l1", 0, [0]),  # no tumour: the combination collapsed into the liver
        _case("l2", 0, [0, 1, 2, 3]),  # an unlisted vessel gets nothing (listed sum to 1)
        _case("l3", 0, [3, 3]),  # only unlisted objects: all weights 0 → uniform
        _case("p0", 1, [0, 0, 0]), _case("p1", 1, []), _case("p2", 1, []),
        _case("z0", 2, [0]),
        _case("o0", 3, [0, 0]), _case("o1", 3, [0, 1]),
    ]
    return Manifest.from_cases(meta, cases)


@pytest.mark.parametrize("p_sv", [0.0, 0.2, 1.0])
def test_edge_cases_match_reference(p_sv):
    man = edge_manifest()
    sv = np.array([0, 4, 0, 2, 1, 5, 0, 3, 0, 0])
    t = sampling_tables(man, sv, supervoxel_prob=p_sv)
    p_d, case_p, sv_p, q = reference(man, sv, p_sv)
    assert np.allclose(t.dataset_share, p_d) and np.allclose(t.case_share, case_p)
    assert np.allclose(t.case_sv_prob, sv_p) and np.allclose(t.object_prob, q)
    assert t.dataset_share[2] == 0 and t.case_share[6] == 0  # zero weight; no objects and no SuperVoxels
    assert t.case_sv_prob[5] == 1.0  # unlabeled case with SuperVoxels: SuperVoxels only
    assert np.isclose(t.case_share.sum(), 1.0)
    assert q[:4].tolist() == [0.25, 0.25, 0.25, 0.25]  # MSD Task 3 style split
    assert q[4] == 1.0  # the collapsed case has only the liver
    assert q[5:9].tolist() == [0.25, 0.5, 0.25, 0.0]  # the unlisted vessel gets the rest, 0
    assert q[9:11].tolist() == [0.5, 0.5]  # all weights 0 → uniform


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_manifests_match_reference(seed):
    rng = np.random.default_rng(seed)
    man = fake_manifest(n_datasets=6, n_cases=60, n_objects=250, override_every=2, rng=rng)
    sv = rng.integers(0, 4, man.n_cases)
    t = sampling_tables(man, sv, supervoxel_prob=0.2)
    p_d, case_p, sv_p, q = reference(man, sv, 0.2)
    assert np.allclose(t.dataset_share, p_d) and np.allclose(t.case_share, case_p)
    assert np.allclose(t.case_sv_prob, sv_p) and np.allclose(t.object_prob, q)
    assert np.isclose(t.object_share(man).sum() + t.supervoxel_share, 1.0)


@pytest.mark.parametrize("power", [0.0, 0.5, 1.0, -0.5])
@pytest.mark.parametrize("seed", [0, 1])
def test_size_power_reweights_within_each_case(seed, power):
    rng = np.random.default_rng(seed)
    man = fake_manifest(n_datasets=4, n_cases=30, n_objects=120, override_every=2, rng=rng)
    man.object_voxels[:] = rng.integers(0, 5000, man.n_objects)  # 0 included: counted as 1 voxel
    base = sampling_tables(man, None)
    t = sampling_tables(man, None, size_power=power)
    assert np.array_equal(t.case_share, base.case_share)  # datasets and cases are drawn as before
    for c in range(man.n_cases):
        objs = list(man.object_range(c))
        if not objs:
            continue
        w = np.array([base.object_prob[o] * max(man.object_voxels[o], 1) ** power for o in objs])
        expected = w / w.sum() if w.sum() > 0 else base.object_prob[objs]
        assert np.allclose(t.object_prob[objs], expected)
    if power == 0:
        assert np.array_equal(t.object_prob, base.object_prob)


@pytest.mark.parametrize("kw, needle", [
    ({"size_power": float("nan")}, "finite"),
    ({"supervoxel_counts": np.zeros(3)}, "shape"),
    ({"supervoxel_counts": -np.ones(10)}, "non-negative"),
    ({"supervoxel_prob": 1.5}, r"\[0, 1\]"),
])
def test_bad_arguments(kw, needle):
    with pytest.raises(ValueError, match=needle):
        sampling_tables(edge_manifest(), **kw)


def test_nothing_drawable():
    meta = {"name": "x", "datasets": [{"name": "a", "weight": 1.0, "types": ["a"], "object_probs": {}}]}
    man = Manifest.from_cases(meta, [_case("c", 0, [])])
    with pytest.raises(ManifestError, match="no drawable case"):
        sampling_tables(man)
