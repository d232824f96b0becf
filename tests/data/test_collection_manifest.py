"""The collection manifest: round trip, checks, lookup."""

import numpy as np
import pytest

from nninteractive_train.data.manifest import MANIFEST_NAME, Manifest, ManifestError, find_manifest
from nninteractive_train.errors import SetupError
from nninteractive_train.sampler.fake import fake_manifest


def _records():
    meta = {"name": "m", "datasets": [{"name": "A", "weight": 1.0, "types": ["a", "b"], "object_probs": {}},
                                      {"name": "B", "weight": 2.0, "types": ["x"], "object_probs": {}}]}
    cases = [
        {"case_id": "A_0", "source": "0", "dataset": 0, "shape": [4, 5, 6], "spacing": [1, 1, 2], "instances": 2,
         "types": [0, 1, 1], "kinds": [0, 0, 1], "voxels": [3, 4, 7], "bbox": [[0, 0, 0, 1, 1, 1]] * 3,
         "ids": [1, 2, 1, 2], "id_offsets": [0, 1, 2, 4]},
        {"case_id": "B_0", "source": "0@c1", "dataset": 1, "shape": [4, 5, 6], "spacing": [1, 1, 1],
         "instances": 0, "types": [], "kinds": [], "voxels": [], "bbox": [], "ids": [], "id_offsets": [0]},
        {"case_id": "B_1", "source": "1", "dataset": 1, "shape": [4, 5, 6], "spacing": [1, 1, 1], "instances": 1,
         "types": [0], "kinds": [0], "voxels": [9], "bbox": [[1, 1, 1, 2, 2, 2]], "ids": [1], "id_offsets": [0, 1]},
    ]
    return meta, cases


def test_from_cases_and_accessors():
    m = Manifest.from_cases(*_records())
    assert (m.n_cases, m.n_objects) == (3, 4)
    assert m.objects_per_case().tolist() == [3, 0, 1]
    assert m.instance_ids(2).tolist() == [1, 2]
    assert [ids.tolist() for ids in m.case_objects(0)] == [[1], [2], [1, 2]]
    assert list(m.object_range(1)) == [] and list(m.object_range(2)) == [3]
    assert m.object_type_name(3) == "x" and m.object_type_name(2) == "b"
    assert m.case_index("B_1") == 2


def test_round_trip(tmp_path):
    m = Manifest.from_cases(*_records())
    path = m.save(tmp_path / MANIFEST_NAME)
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST_NAME]  # no temp file left
    back = Manifest.load(path)
    for k in ("case_ids", "case_source", "case_dataset", "case_object_start", "object_type", "object_kind",
              "object_voxels", "object_bbox", "object_id_start", "object_ids", "case_shape", "case_spacing"):
        assert np.array_equal(getattr(back, k), getattr(m, k)), k
    assert back.datasets == m.datasets and back.fingerprint() == m.fingerprint()


def test_paper_sized_round_trip_is_fast_and_compact(tmp_path):
    m = fake_manifest(rng=np.random.default_rng(0))
    assert (m.n_cases, m.n_objects, len(m.datasets)) == (64_518, 717_148, 120)
    path = m.save(tmp_path / "big.npz")
    assert path.stat().st_size < 80e6
    back = Manifest.load(path)
    assert back.fingerprint() == m.fingerprint()


@pytest.mark.parametrize("breakage, needle", [
    (lambda m: setattr(m, "case_dataset", m.case_dataset[:-1]), "case_dataset"),
    (lambda m: setattr(m, "case_object_start", m.case_object_start[::-1].copy()), "case_object_start"),
    (lambda m: setattr(m, "case_ids", np.array(["A_0", "A_0", "B_1"])), "unique"),
    (lambda m: setattr(m, "object_type", np.array([0, 1, 5, 0], np.int32)), "object_type"),
    (lambda m: setattr(m, "case_dataset", np.array([0, 1, 7], np.int32)), "unknown dataset"),
])
def test_validate_catches(breakage, needle):
    m = Manifest.from_cases(*_records())
    breakage(m)
    with pytest.raises(ManifestError, match=needle):
        m.validate("here")


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        Manifest.load(tmp_path / "x.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, a=np.zeros(3))
    with pytest.raises(ManifestError, match=str(bad)):
        Manifest.load(bad)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ManifestError, match="cannot read"):
        Manifest.load(junk)


def test_find_manifest_prefers_preprocessed(tmp_path, monkeypatch):
    raw, pre = tmp_path / "raw", tmp_path / "pre"
    for root in (raw, pre):
        (root / "Dataset123_X").mkdir(parents=True)
    monkeypatch.setenv("nnUNet_raw", str(raw))
    monkeypatch.setenv("nnUNet_preprocessed", str(pre))
    m = Manifest.from_cases(*_records())
    with pytest.raises(SetupError, match="no collection manifest"):
        find_manifest(123)
    m.save(raw / "Dataset123_X" / MANIFEST_NAME)
    assert find_manifest(123) == raw / "Dataset123_X" / MANIFEST_NAME
    m.save(pre / "Dataset123_X" / MANIFEST_NAME)
    assert find_manifest("123") == pre / "Dataset123_X" / MANIFEST_NAME
    assert find_manifest(str(raw / "Dataset123_X")) == raw / "Dataset123_X" / MANIFEST_NAME
