"""SuperVoxels: offline backends, selection filter, generation over a preprocessed folder, SAM checks."""

import json

import numpy as np
import pytest

from nninteractive_train.errors import SetupError
from nninteractive_train.data.supervoxels import (
    SamConfig,
    SamUnavailable,
    SupervoxelConfig,
    check_sam,
    felzenszwalb_segments,
    generate_supervoxels,
    load_case_supervoxels,
    load_supervoxel_counts,
    select_segments,
    slic_segments,
)

BLOCKS = [(slice(6, 18), slice(8, 20), slice(8, 22), 3.0), (slice(20, 28), slice(22, 34), slice(6, 16), -2.5)]


def _phantom(seed=0, shape=(34, 40, 40)):
    rng = np.random.default_rng(seed)
    img = rng.normal(size=shape).astype(np.float32) * 0.2
    truth = np.zeros(shape, np.int32)
    for k, (a, b, c, v) in enumerate(BLOCKS):
        img[a, b, c] += v
        truth[a, b, c] = k + 1
    valid = np.ones(shape, bool)
    valid[:, :, :2] = False
    return img, valid, truth


@pytest.mark.parametrize("segment", [slic_segments, felzenszwalb_segments])
def test_backends_find_planted_blocks(segment):
    img, valid, truth = _phantom()
    cfg = SupervoxelConfig(fz_scale=2000, max_voxels=10**7)
    seg = segment(img, valid, spacing=(1.0, 1.0, 1.0), config=cfg)
    assert seg.shape == img.shape and not seg[~valid].any()
    sv = select_segments(seg, img, valid, config=cfg)
    assert sv.dtype == np.uint8 and 1 <= sv.max() <= cfg.max_objects
    # every planted block is covered mostly by SuperVoxels that lie inside it
    for k in (1, 2):
        inside = np.unique(sv[(truth == k) & (sv > 0)])
        purity = [((sv == i) & (truth == k)).sum() / (sv == i).sum() for i in inside]
        assert inside.size >= 1 and max(purity) > 0.9


def test_slic_on_strided_copy_keeps_shape():
    img, valid, _ = _phantom()
    seg = slic_segments(img, valid, spacing=(1, 1, 1), config=SupervoxelConfig(max_voxels=5000))
    assert seg.shape == img.shape and seg.max() > 1


def test_select_segments_filters():
    img = np.zeros((20, 20, 20), np.float32)
    valid = np.ones_like(img, bool)
    seg = np.zeros(img.shape, np.int32)
    seg[5:10, 5:10, 5:10] = 1  # good cube
    img[5:10, 5:10, 5:10] = 5
    seg[0:4, 0:4, 0:4] = 2  # touches the border
    seg[12:14, 12:14, 12:14] = 3  # too small (8 voxels)
    seg[12:19, 3, 3:10] = 4  # thin plate... fill 1.0 but 49 voxels < min_voxels
    cfg = SupervoxelConfig(min_voxels=64, min_fraction=0.0)
    sv = select_segments(seg, img, valid, config=cfg)
    assert sv.max() == 1 and np.array_equal(sv == 1, seg == 1)
    assert select_segments(seg, img, np.zeros_like(valid), config=cfg).max() == 0
    with pytest.raises(ValueError, match="255"):
        select_segments(seg, img, valid, config=SupervoxelConfig(max_objects=300))
    many = np.zeros((40, 40, 40), np.int32)
    for i in range(30):
        z, y = divmod(i, 6)
        many[2 + 7 * z:7 + 7 * z, 2 + 6 * y:6 + 6 * y, 10:15] = i + 1
    sv = select_segments(many, np.zeros(many.shape, np.float32), np.ones(many.shape, bool),
                         config=SupervoxelConfig(min_voxels=10, min_fraction=0.0, max_objects=20))
    assert sv.max() == 20


def _preprocessed(folder, cases):
    from nnunetv2.training.dataloading.nnunet_dataset import nnUNetDatasetBlosc2, comp_blosc2_params

    folder.mkdir(parents=True)
    for name, seed in cases:
        img, valid, _ = _phantom(seed)
        seg = np.where(valid, 0, -1).astype(np.int16)[None]
        data = img[None]
        blocks, chunks = comp_blosc2_params(data.shape, (32, 32, 32), 4)
        bseg, cseg = comp_blosc2_params(seg.shape, (32, 32, 32), 2)
        nnUNetDatasetBlosc2.save_case(data, seg, {"spacing": [1.0, 1.0, 1.0]}, str(folder / name), chunks=chunks,
                                      blocks=blocks, chunks_seg=cseg, blocks_seg=bseg)


def test_generate_over_preprocessed_folder(tmp_path):
    folder = tmp_path / "Dataset990_X" / "plans_3d"
    _preprocessed(folder, [("a", 0), ("b", 1), ("c", 2)])
    (folder / "c.b2nd").write_bytes(b"broken")  # this case fails and simply gets no SuperVoxels
    index = generate_supervoxels(folder, progress=False)
    assert set(index["counts"]) == {"a", "b"} and set(index["failed"]) == {"c"}
    assert index["backend"] == "slic" and index["sam"] is None  # the SAM settings are recorded only for sam
    assert json.loads((folder / "supervoxels" / "index.json").read_text()) == index
    sv = load_case_supervoxels(folder / "supervoxels" / "a.npz")
    assert sv.supervoxels.shape == (34, 40, 40) and sv.supervoxels.dtype == np.uint8
    assert sv.count == index["counts"]["a"] >= 2
    assert sv.center_offsets[-1] == sv.centers.shape[0]
    for i in range(sv.count):
        pts = sv.centers[sv.center_offsets[i]:sv.center_offsets[i + 1]]
        assert (sv.supervoxels[tuple(pts.T)] == i + 1).all()
        assert sv.voxels[i] == (sv.supervoxels == i + 1).sum()
    assert not (folder / "supervoxels" / "c.npz").exists()
    assert load_supervoxel_counts(folder, ["b", "a", "zz"]).tolist() == [index["counts"]["b"], sv.count, 0]
    # a re-run keeps finished cases (same counts), and reproduces them with --overwrite
    before = (folder / "supervoxels" / "a.npz").read_bytes()
    again = generate_supervoxels(folder, progress=False)
    assert again["counts"] == index["counts"]
    generate_supervoxels(folder, progress=False, overwrite=True)
    assert np.array_equal(load_case_supervoxels(folder / "supervoxels" / "a.npz").supervoxels, sv.supervoxels)
    assert len(before) > 0


def test_unknown_backend_and_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="unknown SuperVoxel backend"):
        generate_supervoxels(tmp_path, config=SupervoxelConfig(backend="magic"), progress=False)
    with pytest.raises(SetupError, match="no preprocessed cases"):
        generate_supervoxels(tmp_path, progress=False)


@pytest.mark.parametrize("cfg, needle", [
    (SamConfig(), "--sam2-checkpoint"),
    (SamConfig(sam2_checkpoint="/nope/sam2.pt", sam2_config="configs/x.yaml"), "sam2|does not exist"),
])
def test_sam_backend_needs_local_package_and_checkpoint(cfg, needle, tmp_path):
    with pytest.raises(SamUnavailable, match=needle):
        check_sam(cfg)
    with pytest.raises(SamUnavailable):
        generate_supervoxels(tmp_path, config=SupervoxelConfig(backend="sam"), sam=cfg, progress=False)
