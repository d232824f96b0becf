"""Building a collection: merged raw dataset, manifest, idempotence, resumption and bad inputs."""

import json

import numpy as np
import pytest
import SimpleITK as sitk
from collection_helpers import LIST_YAML, make_label, snapshot, tiny_collection, write_nifti, write_raw_dataset

from nninteractive_train.cli import build_collection as build_cli
from nninteractive_train.data import build as build_mod
from nninteractive_train.data.build import build_collection
from nninteractive_train.data.case_io import CaseError
from nninteractive_train.data.dataset_list import DatasetListError
from nninteractive_train.data.manifest import MANIFEST_NAME, Manifest


@pytest.fixture
def raw(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    monkeypatch.setenv("nnUNet_raw", str(raw))
    return raw


def _read(path):
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def test_build_tiny_collection(raw, tmp_path):
    lst = tiny_collection(raw, tmp_path)
    res = build_collection(lst, 950, progress=False)
    out = raw / "Dataset950_Tiny"
    assert res.folder == out and res.converted == 5 and res.reused == 0
    m = Manifest.load(out / MANIFEST_NAME)
    assert m.case_ids.tolist() == ["A_case_000", "A_case_001", "A_case_002", "B_case_000_c0", "B_case_000_c1",
                                   "B_case_001_c0", "B_case_001_c1"]
    assert m.case_source.tolist()[3:5] == ["case_000", "case_000@c1"]
    assert m.dataset_names == ["A", "B"]  # the unmapped entry is skipped
    assert m.datasets[0]["types"] == ["liver", "tumour", "liver_with_tumour"]
    dj = json.loads((out / "dataset.json").read_text())
    assert dj["numTraining"] == 7 and dj["channel_names"] == {"0": "image"}
    assert dj["labels"] == {"background": 0, **{f"instance_{i}": i for i in range(1, 5)}}
    # A: vessel ignored → liver + 2 tumours + liver_with_tumour; B: 3 (or 4 with vessel) instances, no combination
    assert m.objects_per_case().tolist() == [4, 4, 4, 3, 3, 4, 4]
    for c in range(m.n_cases):
        seg = _read(out / "labelsTr" / f"{m.case_ids[c]}.nii.gz")
        assert np.array_equal(np.unique(seg), np.arange(m.case_instances[c] + 1))
        for j in m.object_range(c):
            mask = np.isin(seg, m.instance_ids(j))
            assert mask.sum() == m.object_voxels[j]
            idx = np.argwhere(mask)
            assert m.object_bbox[j].tolist() == idx.min(0).tolist() + (idx.max(0) + 1).tolist()
    # the channel-1 image of B is the source's channel 1, byte for byte
    src = (raw / "Dataset902_B" / "imagesTr" / "case_000_0001.nii.gz").read_bytes()
    assert (out / "imagesTr" / "B_case_000_c1_0000.nii.gz").read_bytes() == src
    assert not list(raw.glob(".Dataset950*"))  # no staging left behind


def test_rerun_is_idempotent(raw, tmp_path):
    lst = tiny_collection(raw, tmp_path)
    first = build_collection(lst, 950, progress=False)
    out = first.folder
    before = snapshot(out / "labelsTr")
    dj = (out / "dataset.json").read_text()
    again = build_collection(lst, 950, progress=False)
    assert again.converted == 0 and again.reused == 5
    assert snapshot(out / "labelsTr") == before  # files were kept, not rewritten
    assert (out / "dataset.json").read_text() == dj
    assert again.manifest.fingerprint() == first.manifest.fingerprint()
    # a changed conversion rule re-converts only the affected dataset
    lst.write_text(LIST_YAML.replace("closing: 1", "closing: 0"))
    third = build_collection(lst, 950, progress=False)
    assert third.converted == 3 and third.reused == 2


def test_interrupted_build_resumes(raw, tmp_path, monkeypatch):
    lst = tiny_collection(raw, tmp_path)
    real = build_mod.convert_case
    calls = []

    def flaky(job, staging):
        calls.append(job.key)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(job, staging)

    monkeypatch.setattr(build_mod, "convert_case", flaky)
    with pytest.raises(KeyboardInterrupt):
        build_collection(lst, 950, progress=False)
    assert not (raw / "Dataset950_Tiny").exists()
    staging = raw / ".Dataset950_Tiny.building"
    assert len(list((staging / build_mod.RESULTS_DIR).glob("*.json"))) == 2
    monkeypatch.setattr(build_mod, "convert_case", real)
    res = build_collection(lst, 950, progress=False)
    assert res.reused == 2 and res.converted == 3 and res.manifest.n_cases == 7


def _corrupt(raw, kind):
    a = raw / "Dataset901_A"
    img, lab = a / "imagesTr" / "case_001_0000.nii.gz", a / "labelsTr" / "case_001.nii.gz"
    good = make_label(variant=1)
    if kind == "shape":
        write_nifti(np.zeros((16, 20, 23), np.float32), img)
        return img
    if kind == "spacing":
        write_nifti(np.zeros(good.shape, np.float32), img, spacing=(1.0, 1.0, 1.0))
        return img
    if kind == "nan":
        arr = np.zeros(good.shape, np.float32)
        arr[3, 3, 3] = np.nan
        write_nifti(arr, img)
        return img
    if kind == "fraction":
        write_nifti(good.astype(np.float32) * 0.5, lab)
        return lab
    if kind == "missing_image":
        img.unlink()
        return "case_001_0000"
    if kind == "missing_label":
        lab.unlink()
        return lab
    if kind == "unknown_value":
        write_nifti(np.where(good == 3, 7, good).astype(np.uint8), lab)
        return lab
    if kind == "empty":
        write_nifti(np.zeros(good.shape, np.uint8), lab)
        return lab
    if kind == "unreadable":
        lab.write_bytes(b"garbage")
        return lab
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, needle", [
    ("shape", "image shape"), ("spacing", "spacing"), ("nan", "NaN"), ("fraction", "non-integer"),
    ("missing_image", "missing"), ("missing_label", "missing"), ("unknown_value", "not declared"),
    ("empty", "no objects"), ("unreadable", "cannot read"),
])
def test_bad_case_names_file_and_leaves_output(raw, tmp_path, kind, needle):
    lst = tiny_collection(raw, tmp_path)
    out = build_collection(lst, 950, progress=False).folder
    before = snapshot(out)
    culprit = _corrupt(raw, kind)
    with pytest.raises(CaseError, match=needle) as e:
        build_collection(lst, 950, progress=False)
    assert str(culprit) in str(e.value)
    assert snapshot(out) == before


def test_unknown_label_in_combination(raw, tmp_path):
    lst = tiny_collection(raw, tmp_path, LIST_YAML.replace("[liver, tumour]", "[liver, kidney]"))
    with pytest.raises(DatasetListError, match="unknown label 'kidney'") as e:
        build_collection(lst, 950, progress=False)
    assert str(lst) in str(e.value)
    assert not (raw / "Dataset950_Tiny").exists() and not list(raw.glob(".Dataset950*"))


def test_skip_bad_and_allow_empty(raw, tmp_path):
    lst = tiny_collection(raw, tmp_path)
    _corrupt(raw, "nan")
    res = build_collection(lst, 950, skip_bad=True, progress=False)
    assert "A_case_001" not in res.manifest.case_ids.tolist() and res.manifest.n_cases == 6
    skipped = json.loads((res.folder / "nnInteractive_skipped.json").read_text())
    assert len(skipped) == 1 and "NaN" in next(iter(skipped.values()))
    assert len(list((res.folder / "imagesTr").iterdir())) == 6
    # an empty label map is accepted when the dataset allows it (a case without objects)
    write_nifti(np.zeros((16, 20, 24), np.uint8), raw / "Dataset901_A" / "labelsTr" / "case_002.nii.gz")
    lst.write_text(LIST_YAML.replace("    weight: 2\n", "    weight: 2\n    allow_empty: true\n"))
    res = build_collection(lst, 950, skip_bad=True, progress=False)
    assert res.manifest.objects_per_case()[res.manifest.case_index("A_case_002")] == 0


def test_id_clash_and_missing_source(raw, tmp_path):
    lst = tiny_collection(raw, tmp_path)
    (raw / "Dataset950_Other").mkdir()
    with pytest.raises(DatasetListError, match="already used"):
        build_collection(lst, 950, progress=False)
    lst.write_text(LIST_YAML.replace("source: 902", "source: 903"))
    with pytest.raises(DatasetListError, match="source '903' not found"):
        build_collection(lst, 951, progress=False)


def test_evaluation_only_datasets_are_never_trained_on(raw, tmp_path):
    lst = tiny_collection(raw, tmp_path, LIST_YAML.replace("    channels: [0, 1]\n",
                                                          "    channels: [0, 1]\n    evaluation_only: true\n"))
    train = build_collection(lst, 952, progress=False).manifest
    assert train.dataset_names == ["A"] and train.n_cases == 3
    held = build_collection(lst, 953, evaluation=True, progress=False).manifest
    assert held.dataset_names == ["B"] and held.n_cases == 4  # 2 cases x 2 channels
    assert (train.meta["evaluation"], held.meta["evaluation"]) == (False, True)
    assert not set(train.case_ids.tolist()) & set(held.case_ids.tolist())
    assert build_cli.main([str(lst), "-d", "955", "--evaluation", "--quiet"]) == 0
    assert Manifest.load(raw / "Dataset955_Tiny" / MANIFEST_NAME).dataset_names == ["B"]
    only_held = tmp_path / "held.yaml"
    only_held.write_text("datasets:\n  - {name: B, source: 902, evaluation_only: true}\n")
    with pytest.raises(DatasetListError, match="no cases to build from its training"):
        build_collection(only_held, 954, progress=False)


def test_multiprocess_build_matches_and_passes_nnunet_checks(raw, tmp_path):
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    write_raw_dataset(raw, 901, "A", [make_label(variant=i) for i in range(3)])
    lst = tmp_path / "one.yaml"
    lst.write_text("name: One\ndatasets:\n  - {name: A, source: 901, min_size: 5}\n")
    seq = build_collection(lst, 960, progress=False).manifest
    par = build_collection(lst, 961, num_processes=2, progress=False).manifest
    assert par.fingerprint() == seq.fingerprint()
    assert np.array_equal(par.object_bbox, seq.object_bbox)
    verify_dataset_integrity(str(raw / "Dataset961_One"), num_processes=1)


def test_case_error_str():
    e = CaseError("/x/y.nii.gz", "broken")
    assert str(e) == "/x/y.nii.gz: broken" and e.file == "/x/y.nii.gz"


def test_centre_candidates_on_a_cropped_case(raw, tmp_path):
    from nninteractive_train.data.centers import CenterConfig, case_center_candidates

    lst = tiny_collection(raw, tmp_path)
    res = build_collection(lst, 950, progress=False)
    m = res.manifest
    seg = _read(res.folder / "labelsTr" / "A_case_000.nii.gz").astype(np.int16)
    crop = [[1, 15], [2, 18], [3, 23]]  # what nnU-Net's crop_to_nonzero would record
    cropped = seg[tuple(slice(a, b) for a, b in crop)][None]
    props = {"spacing": [1.5, 1.0, 1.0], "bbox_used_for_cropping": crop}
    coords, offsets = case_center_candidates(cropped, props, m, "A_case_000", config=CenterConfig(num=32),
                                             rng=np.random.default_rng(0))
    assert offsets.tolist() == [0, 32, 64, 96, 128]
    for k, j in enumerate(m.object_range(0)):
        pts = coords[offsets[k]:offsets[k + 1]]
        assert np.isin(cropped[0][tuple(pts.T)], m.instance_ids(j)).all()


def test_instance_label_datasets(raw, tmp_path):
    lab = np.zeros((16, 20, 24), np.uint16)
    lab[1:4, 1:4, 1:4] = 500  # values are instance ids, not declared in dataset.json
    lab[6:9, 6:9, 6:9] = 9
    lab[10:12, 10:12, 10:12] = 9  # the same instance in two pieces stays one object (objects: whole)
    lab[13:15, 1:3, 1:3] = 7
    write_raw_dataset(raw, 905, "Cells", [lab], labels={"background": 0})
    lst = tmp_path / "cells.yaml"
    lst.write_text("name: Cells\ndatasets:\n  - {source: 905, instance_labels: cell, objects: whole, min_size: 1,"
                   " object_probs: {cell: 1.0}}\n")
    m = build_collection(lst, 970, progress=False).manifest
    assert m.datasets[0]["types"] == ["cell"] and m.objects_per_case().tolist() == [3]
    assert sorted(m.object_voxels.tolist()) == [8, 27, 35]
    lst.write_text("datasets:\n  - {source: 905, instance_labels: cell, combinations: {a: [b]}}\n")
    with pytest.raises(DatasetListError, match="instance_labels cannot"):
        build_collection(lst, 971, progress=False)
