"""nnInteractive_prompt_gallery writes a PNG, from generated data and from an nnU-Net raw dataset."""

import numpy as np
import pytest
from sim_shapes import ellipsoid

from nninteractive_train.cli import prompt_gallery

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_gallery_synthetic(tmp_path, capsys):
    out = tmp_path / "gallery.png"
    prompt_gallery.main(["--out", str(out), "--seed", "3"])
    assert out.read_bytes()[:8] == PNG_MAGIC and out.stat().st_size > 20_000
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left behind
    assert "wrote" in capsys.readouterr().out


def test_gallery_from_raw_dataset(tmp_path, monkeypatch):
    sitk = pytest.importorskip("SimpleITK")
    raw = tmp_path / "raw"
    folder = raw / "Dataset901_Tiny"
    (folder / "imagesTr").mkdir(parents=True)
    (folder / "labelsTr").mkdir()
    label = ellipsoid(shape=(20, 36, 40), radii=(6, 11, 13)).astype(np.uint8)  # (Z, Y, X) as SimpleITK stores it
    image = (label * 100 + np.random.default_rng(0).normal(0, 10, label.shape)).astype(np.float32)
    for array, path in ((image, folder / "imagesTr" / "tiny_000_0000.nii.gz"),
                        (label, folder / "labelsTr" / "tiny_000.nii.gz")):
        img = sitk.GetImageFromArray(array)
        img.SetSpacing((0.8, 0.8, 2.0))
        sitk.WriteImage(img, str(path))
    loaded_image, loaded_label, spacing = prompt_gallery.load_raw_case(901, raw)
    assert loaded_image.shape == (40, 36, 20) and spacing == pytest.approx((0.8, 0.8, 2.0))  # (X, Y, Z)
    np.testing.assert_array_equal(loaded_label, label.transpose(2, 1, 0))
    monkeypatch.setenv("nnUNet_raw", str(raw))
    out = tmp_path / "raw.png"
    prompt_gallery.main(["-d", "901", "--out", str(out)])
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_gallery_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("nnUNet_raw", str(tmp_path))
    with pytest.raises(SystemExit) as e:
        prompt_gallery.main(["-d", "42", "--out", str(tmp_path / "x.png")])
    assert e.value.code == 2 and "Dataset042_*" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        prompt_gallery.main(["--out", str(tmp_path / "x.jpg")])
    assert e.value.code == 2 and "x.jpg" in capsys.readouterr().err
