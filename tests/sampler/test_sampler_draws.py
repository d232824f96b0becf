"""The object sampler: empirical frequencies vs the exact formula, streams, checkpoints."""

import numpy as np
import pytest
from scipy import stats

from nninteractive_train.sampler import ObjectSampler
from nninteractive_train.sampler.fake import fake_manifest

N = 200_000


@pytest.fixture(scope="module")
def manifest():
    return fake_manifest(n_datasets=8, n_cases=80, n_objects=400, override_every=3, rng=np.random.default_rng(5))


@pytest.fixture(scope="module")
def sv_counts(manifest):
    c = np.random.default_rng(6).integers(0, 5, manifest.n_cases)
    c[:10] = 0
    return c


@pytest.fixture(scope="module")
def batch(manifest, sv_counts):
    s = ObjectSampler(manifest, seed=11, supervoxel_counts=sv_counts)
    return s, s.draw_many(N)


def _p(observed, expected_p):
    keep = expected_p > 0
    assert observed[~keep].sum() == 0  # impossible outcomes never happen
    return stats.chisquare(observed[keep], expected_p[keep] / expected_p[keep].sum() * observed.sum()).pvalue


def test_dataset_and_case_frequencies(batch, manifest):
    s, b = batch
    t = s.tables
    ds = manifest.case_dataset[b.case_index]
    assert _p(np.bincount(ds, minlength=len(manifest.datasets)), t.dataset_share) > 1e-3
    assert _p(np.bincount(b.case_index, minlength=manifest.n_cases), t.case_share) > 1e-3
    # the test has power: uniform case probabilities are clearly rejected
    assert _p(np.bincount(b.case_index, minlength=manifest.n_cases), np.ones(manifest.n_cases)) < 1e-6


def test_object_frequencies_and_overrides(batch, manifest):
    s, b = batch
    real = b.object_index >= 0
    counts = np.bincount(b.object_index[real], minlength=manifest.n_objects)
    expected = s.tables.object_share(manifest)
    assert _p(counts, expected) > 1e-3
    # objects always belong to the drawn case
    starts = manifest.case_object_start
    c, o = b.case_index[real], b.object_index[real]
    assert np.all((starts[c] <= o) & (o < starts[c + 1]))
    # override datasets: per object type shares within the dataset are the overrides
    obj_ds = np.repeat(manifest.case_dataset, manifest.objects_per_case())
    tested = 0
    for d, info in enumerate(manifest.datasets):
        exp = np.array([expected[(obj_ds == d) & (manifest.object_type == t)].sum() for t in range(3)])
        if not info["object_probs"] or (exp > 0).sum() < 2:
            continue
        got = np.bincount(manifest.object_type[o[obj_ds[o] == d]], minlength=3)
        assert _p(got, exp) > 1e-3
        tested += 1
    assert tested >= 1


def test_supervoxel_share(batch, manifest, sv_counts):
    s, b = batch
    is_sv = b.supervoxel > 0
    exp = s.tables.supervoxel_share
    assert stats.binomtest(int(is_sv.sum()), N, exp).pvalue > 1e-3
    assert np.all(b.object_index[is_sv] == -1) and np.all(b.supervoxel[~is_sv] == 0)
    assert np.all(b.supervoxel[is_sv] <= sv_counts[b.case_index[is_sv]])
    # uniform among a case's SuperVoxels
    case = int(np.argmax(sv_counts))
    picks = b.supervoxel[is_sv & (b.case_index == case)]
    assert stats.chisquare(np.bincount(picks - 1, minlength=sv_counts[case])).pvalue > 1e-3
    # the paper's 0.2 when every case has real objects and SuperVoxels
    full = ObjectSampler(manifest, seed=1, supervoxel_counts=np.full(manifest.n_cases, 3))
    assert full.tables.supervoxel_share == pytest.approx(0.2)
    assert stats.binomtest(int((full.draw_many(50_000).supervoxel > 0).sum()), 50_000, 0.2).pvalue > 1e-3


def test_draw_objects_match_manifest(manifest, sv_counts):
    s = ObjectSampler(manifest, seed=3, supervoxel_counts=sv_counts)
    for _ in range(300):
        d = s.draw()
        assert d.case == manifest.case_ids[d.case_index] and d.dataset == manifest.dataset_names[d.dataset_index]
        if d.kind == "object":
            assert np.array_equal(d.instance_ids, manifest.instance_ids(d.object_index))
            assert d.object_type == manifest.object_type_name(d.object_index) and d.supervoxel == 0
        else:
            assert d.kind == "supervoxel" and d.instance_ids.size == 0
            assert 1 <= d.supervoxel <= sv_counts[d.case_index]


def _stream(s, n):
    return [(d.case_index, d.object_index, d.supervoxel) for d in (s.draw() for _ in range(n))]


def test_reproducible_and_independent_streams(manifest):
    a = _stream(ObjectSampler(manifest, seed=1, block_size=64), 500)
    assert a == _stream(ObjectSampler(manifest, seed=1, block_size=64), 500)
    for kw in ({"seed": 2}, {"seed": 1, "rank": 1}, {"seed": 1, "worker": 1}):
        other = _stream(ObjectSampler(manifest, block_size=64, **kw), 500)
        assert sum(x == y for x, y in zip(a, other)) < 100  # agreement only by chance
    # rank 1 / worker 0 and rank 0 / worker 1 are different streams too
    r1 = _stream(ObjectSampler(manifest, seed=1, rank=1, block_size=64), 200)
    w1 = _stream(ObjectSampler(manifest, seed=1, worker=1, block_size=64), 200)
    assert r1 != w1


def test_draw_and_draw_many_share_the_stream(manifest):
    s1, s2 = ObjectSampler(manifest, seed=4, block_size=50), ObjectSampler(manifest, seed=4, block_size=50)
    seq = _stream(s1, 137)
    head = s2.draw_many(60)
    tail = _stream(s2, 77)
    got = list(zip(head.case_index.tolist(), head.object_index.tolist(), head.supervoxel.tolist())) + tail
    assert got == seq
    assert s2.draw_many(0).case_index.size == 0


@pytest.mark.parametrize("cut", [0, 1, 49, 50, 51, 333])
def test_resume_continues_the_stream(manifest, sv_counts, cut):
    ref = ObjectSampler(manifest, seed=9, supervoxel_counts=sv_counts, block_size=50)
    full = _stream(ref, 400)
    s = ObjectSampler(manifest, seed=9, supervoxel_counts=sv_counts, block_size=50)
    _stream(s, cut)
    state = s.state_dict()
    assert state["position"] == cut
    fresh = ObjectSampler(manifest, seed=9, supervoxel_counts=sv_counts, block_size=50)
    fresh.load_state_dict(state)
    assert _stream(fresh, 400 - cut) == full[cut:]
    fresh.seek(cut)
    assert fresh.position == cut and _stream(fresh, 5) == full[cut:cut + 5]


def test_state_mismatch(manifest, sv_counts):
    s = ObjectSampler(manifest, seed=9, supervoxel_counts=sv_counts)
    s.draw_many(10)
    state = s.state_dict()
    other = ObjectSampler(manifest, seed=9, rank=1, supervoxel_counts=sv_counts)
    with pytest.raises(ValueError, match="rank"):
        other.load_state_dict(state)
    changed = ObjectSampler(manifest, seed=9, supervoxel_counts=sv_counts + 1)
    with pytest.raises(ValueError, match="fingerprint"):
        changed.load_state_dict(state)
    with pytest.warns(UserWarning, match="fingerprint"):
        changed.load_state_dict(state, strict=False)
    assert changed.position == 10
    with pytest.raises(ValueError, match="version"):
        s.load_state_dict({**state, "version": 99})
    sized = ObjectSampler(manifest, seed=9, supervoxel_counts=sv_counts, size_power=0.5)
    with pytest.raises(ValueError, match="fingerprint"):
        sized.load_state_dict(state)


def test_size_power_draws_follow_the_tables(manifest):
    s = ObjectSampler(manifest, seed=3, size_power=1.0)
    b = s.draw_many(50_000)
    counts = np.bincount(b.object_index[b.object_index >= 0], minlength=manifest.n_objects)
    assert _p(counts, s.tables.object_share(manifest)) > 1e-3
    # and the test has power: the paper's uniform draw within a case is rejected
    assert _p(counts, ObjectSampler(manifest, seed=3).tables.object_share(manifest)) < 1e-6


def test_msd_task3_overrides_empirically():
    from nninteractive_train.data.manifest import Manifest

    meta = {"name": "msd", "datasets": [{"name": "Liver", "weight": 1.0, "types": ["liver", "tumour", "lwt"],
                                         "object_probs": {"lwt": 0.25, "liver": 0.25, "tumour": 0.5}}]}
    case = {"case_id": "c", "source": "c", "dataset": 0, "shape": [8, 8, 8], "spacing": [1, 1, 1], "instances": 4,
            "types": [0, 1, 1, 1, 2], "kinds": [0, 0, 0, 0, 1], "voxels": [9] * 5, "bbox": [[0, 0, 0, 1, 1, 1]] * 5,
            "ids": [1, 2, 3, 4, 1, 2, 3, 4], "id_offsets": [0, 1, 2, 3, 4, 8]}
    man = Manifest.from_cases(meta, [case])
    b = ObjectSampler(man, seed=0, supervoxel_prob=0.2).draw_many(40_000)
    counts = np.bincount(b.object_index, minlength=5)
    assert stats.chisquare(counts, np.array([0.25, 0.5 / 3, 0.5 / 3, 0.5 / 3, 0.25]) * 40_000).pvalue > 1e-3


def test_seed_sequence_and_subset(manifest):
    a = _stream(ObjectSampler(manifest, seed=np.random.SeedSequence(5, spawn_key=(2,)), rank=1), 50)
    b = _stream(ObjectSampler(manifest, seed=np.random.SeedSequence(5, spawn_key=(2,)), rank=1), 50)
    c = _stream(ObjectSampler(manifest, seed=np.random.SeedSequence(5, spawn_key=(3,)), rank=1), 50)
    assert a == b and a != c
    s = ObjectSampler(manifest, seed=np.random.SeedSequence(5, spawn_key=(2,)))
    assert s.state_dict()["spawn_key"] == [2, 0, 0]
    # a training split: only its cases are drawn, with the formula applied to the subset
    train = manifest.case_ids[::2].tolist()
    sub = manifest.subset(train)
    assert sub.case_ids.tolist() == train and sub.n_objects == manifest.objects_per_case()[::2].sum()
    for i in (0, 5, len(train) - 1):
        j = manifest.case_index(train[i])
        assert [x.tolist() for x in sub.case_objects(i)] == [x.tolist() for x in manifest.case_objects(j)]
    drawn = {sub.case_ids[c] for c in ObjectSampler(sub, seed=0).draw_many(5000).case_index}
    assert drawn <= set(train)
    with pytest.raises(KeyError):
        manifest.subset(["nope"])
