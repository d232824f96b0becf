"""The generated dataset: deterministic per seed whatever the number of processes; --shape sets the size."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from nninteractive_train.cli import make_synthetic
from nninteractive_train.data.synthetic import write_dataset


def _arrays(folder):
    return {p.name: sitk.GetArrayFromImage(sitk.ReadImage(str(p)))
            for sub in ("imagesTr", "labelsTr") for p in sorted((folder / sub).iterdir())}


def test_parallel_writes_the_same_files(tmp_path):
    serial = write_dataset(tmp_path / "a", 7, 3, seed=4)
    parallel = write_dataset(tmp_path / "b", 7, 3, seed=4, num_processes=2)
    a, b = _arrays(serial), _arrays(parallel)
    assert sorted(a) == sorted(b) and len(a) == 6
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert not [p for p in (tmp_path / "b").iterdir() if p.name.startswith(".")]  # no temp folder left


def test_shape_option(tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path))
    make_synthetic.main(["-d", "8", "--num-cases", "2", "--shape", "20", "22", "30", "30", "24", "26"])
    folder = tmp_path / "Dataset008_Synthetic"
    for name, arr in _arrays(folder).items():
        assert 20 <= arr.shape[0] <= 22 and arr.shape[1] == 30 and 24 <= arr.shape[2] <= 26, (name, arr.shape)
    assert json.loads((folder / "dataset.json").read_text())["numTraining"] == 2


@pytest.mark.parametrize("shape", [["5", "4", "8", "8", "8", "8"], ["0", "4", "8", "8", "8", "8"]])
def test_bad_shape_is_refused(tmp_path, monkeypatch, shape):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path))
    with pytest.raises(SystemExit) as e:
        make_synthetic.main(["-d", "9", "--shape", *shape])
    assert e.value.code == 2 and not list(tmp_path.iterdir())


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("spacing", [(2.0, 1.0, 1.0), (3.0, 0.8, 0.8), (1.5, 1.2, 1.2)])
def test_every_object_is_big_enough_and_visible(seed, spacing):
    """Each connected object has >= MIN_OBJECT_VOXELS voxels and its class intensity differs from the background
    mean by the contrast floor (checked on the image before blur and noise: the class's median voxel)."""
    import cc3d

    from nninteractive_train.data import synthetic as S

    rng = np.random.default_rng(seed)
    image, label = S.make_case(rng, (40, 64, 64), spacing)
    pieces = cc3d.connected_components(label, connectivity=26)
    assert np.bincount(pieces.ravel())[1:].min() >= S.MIN_OBJECT_VOXELS
    values = [v for v in np.unique(label) if v]
    assert len(values) >= 3  # the shape classes survive the fragment rule
    background = np.median(image[label == 0])
    for v in values:
        inner = label == v
        # the blurred, noisy interior median is within noise of the class intensity
        assert abs(np.median(image[inner]) - background) > S.CONTRAST[0] * 0.5, v
