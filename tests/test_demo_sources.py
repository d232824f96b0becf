"""The demo's real-data converters, on tiny fake versions of the Debian packages' files (no apt, no network).

The fakes are laid out like the packages (``ROOT/usr/share/...``) so ``write_demo_sources(roots=[ROOT])`` finds
them. One extra test converts the real packages when they are installed, and is skipped otherwise.
"""

from __future__ import annotations

import functools
import io
import json
import os
import plistlib
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nninteractive_train.demo import labels as L
from nninteractive_train.demo import locate, sources, volume
from nninteractive_train.demo.sources import (convert_colin27, convert_cranium, convert_inia19, convert_kmeans,
                                              read_inv3, write_demo_sources)
from nninteractive_train.demo.volume import SourceError, grid_boxes, resample

REPO = Path(__file__).resolve().parents[1]
SMALL = {"min_size": 4}  # fake volumes are tiny; the real default is 48 voxels per crop axis
AAL_TXT = "1 Precentral_L 2001\n2 Precentral_R 2002\n37 Hippocampus_L 4101\n38 Hippocampus_R 4102\n" \
          "89 Temporal_Inf_L 8301\n90 Temporal_Inf_R 8302\n109 Vermis_1_2 9100\n120 Mystery_Region 1\n"


def _nifti(path: Path, arr: np.ndarray, spacing, *, origin=(0.0, 0.0, 0.0), direction=None) -> Path:
    """Write a (Z, Y, X) array with ``spacing`` per array axis."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing([float(s) for s in spacing[::-1]])
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(direction)
    sitk.WriteImage(img, str(path), True)
    return path


def _ellipsoid(shape, frac=0.8) -> np.ndarray:
    grid = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    return sum(g**2 for g in grid) <= frac**2


def fake_mricron(root: Path) -> None:
    t = root / "usr/share/mricron/templates"
    shape = (24, 30, 24)
    brain = _ellipsoid(shape)
    aal = np.zeros(shape, np.uint8)
    left = np.zeros(shape, bool)
    left[:, :, shape[2] // 2:] = True  # with the (-1, -1, 1) direction, high x indices are the left side
    for (z0, z1), (li, ri) in zip([(0, 6), (6, 12), (12, 24)], [(89, 90), (37, 38), (1, 2)]):
        part = np.zeros(shape, bool)
        part[z0:z1] = True
        aal[brain & part & left] = li
        aal[brain & part & ~left] = ri
    aal[11:13, 14:16, 11:13] = 109
    aal[2, 2, 2] = 120  # a region in no group
    ras = (-1.0, 0, 0, 0, -1.0, 0, 0, 0, 1.0)
    t1 = (brain * 100 + 20).astype(np.uint8)
    _nifti(t / "ch2.nii.gz", t1, (1, 1, 1), origin=(90, 125, -71), direction=ras)
    _nifti(t / "aal.nii.gz", aal, (1, 1, 1), origin=(90, 125, -71), direction=ras)
    (t / "aal.nii.txt").write_text(AAL_TXT)
    shape = (20, 24, 24)
    nm = np.zeros(shape, np.int16)
    nm[4:16, 2:22, 2:12] = 55       # largest pair, left ...
    nm[4:16, 2:22, 12:22] = 1055    # ... and right
    nm[16:19, 4:20, 4:12] = 2
    nm[16:19, 4:20, 12:20] = 1002
    nm[1:3, 10:12, 10:12] = 7       # small: dropped with pairs=2
    _nifti(t / "inia19-t1-brain.nii.gz", (nm > 0).astype(np.float32) * 50, (0.5, 0.5, 0.5), direction=ras)
    _nifti(t / "inia19-NeuroMaps.nii.gz", nm, (0.5, 0.5, 0.5), direction=ras)


def phantom_ct(shape=(24, 32, 32)) -> np.ndarray:
    """Air, a head (soft tissue) with a bone shell, an air cavity, a bone speck, and a separate bone 'holder'."""
    hu = np.full(shape, -1000, np.int16)
    head = _ellipsoid(shape, 0.8)
    hu[head] = 40
    hu[head & ~_ellipsoid(shape, 0.65)] = 700
    hu[10:14, 14:18, 14:18] = -1000  # a sinus
    hu[6, 16, 16] = 700              # a one-voxel calcification: becomes soft tissue
    hu[:, 0, :] = 300                # the head holder: not connected to the head, dropped
    return hu


def fake_inv3(path: Path, hu: np.ndarray, *, spacing=(0.5, 0.5, 2.0), plist_extra=None, drop=()) -> Path:
    meta = {"matrix": {"dtype": "int16", "filename": "matrix.dat", "shape": list(hu.shape)}, "modality": "CT",
            "name": "fake", **(plist_extra or {})}
    if spacing is not None:
        meta["spacing"] = list(spacing)
    files = {"main.plist": plistlib.dumps(meta), "matrix.dat": hu.astype(np.int16).tobytes()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            if name in drop:
                continue
            info = tarfile.TarInfo(f"tmpabc/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def fake_itk(root: Path) -> None:
    d = root / "usr/share/doc/insighttoolkit5-examples/examples/Data"
    shape = (10, 16, 16)
    classes = np.ones(shape, np.uint8)  # class 1 = air, the most frequent
    head = _ellipsoid(shape, 0.9)
    classes[head] = 2
    classes[_ellipsoid(shape, 0.6)] = 6
    classes[0, 0, :3] = 0  # a tiny class: dropped
    t1 = (classes * 30).astype(np.int16)
    rot = (1.0, 0, 0, 0, 0, -1.0, 0, 1.0, 0)
    _nifti(d / "KmeansTest_T1UCharRaw.nii.gz", t1, (3, 2, 2), origin=(0, 254, 0), direction=rot)
    _nifti(d / "KmeansTest_T1KmeansPrelimSegmentation.nii.gz", classes, (3, 2, 2), origin=(0, 254, 0),
           direction=rot)


@pytest.fixture
def fake_root(tmp_path) -> Path:
    root = tmp_path / "debian"
    fake_mricron(root)
    fake_inv3(root / "usr/share/doc/invesalius-examples/examples/Cranium.inv3", phantom_ct())
    fake_itk(root)
    return root


def _files(root: Path, name: str) -> dict:
    src = next(s for s in locate.SOURCES if s.name == name)
    files = locate.find_files(src, [root])
    assert files is not None
    return files


def check_dataset(folder: Path, spacing=None) -> dict:
    """Every case: image and label on one grid, integer labels within dataset.json's, non-empty."""
    dj = json.loads((folder / "dataset.json").read_text())
    assert dj["file_ending"] == ".nii.gz" and dj["channel_names"] == {"0": dj["channel_names"]["0"]}
    assert dj["labels"]["background"] == 0 and sorted(dj["labels"].values()) == list(range(len(dj["labels"])))
    cases = sorted(dj["crops"])
    assert dj["numTraining"] == len(cases) == len(list((folder / "imagesTr").iterdir()))
    assert set(dj["held_out"]) <= set(cases) and dj["held_out"]
    for case in cases:
        img = sitk.ReadImage(str(folder / "imagesTr" / f"{case}_0000.nii.gz"))
        lab = sitk.ReadImage(str(folder / "labelsTr" / f"{case}.nii.gz"))
        assert volume.same_grid(img, lab)
        arr = sitk.GetArrayFromImage(lab)
        assert np.issubdtype(arr.dtype, np.integer) and arr.any()
        assert set(np.unique(arr)) <= set(dj["labels"].values())
        box = dj["crops"][case]
        assert arr.shape == tuple(b - a for a, b in box)
        if spacing is not None:
            np.testing.assert_allclose(lab.GetSpacing()[::-1], spacing, rtol=1e-5)
    return dj


def test_grid_boxes_tile_the_volume():
    boxes = grid_boxes((10, 20, 31), (1, 2, 3), min_size=5)
    assert len(boxes) == 6 and boxes[0] == ((0, 10), (0, 10), (0, 10)) and boxes[1][2] == (10, 21)
    cover = np.zeros((10, 20, 31), int)
    for box in boxes:
        cover[tuple(slice(a, b) for a, b in box)] += 1
    assert (cover == 1).all()  # no gap, no overlap
    with pytest.raises(ValueError, match="axis 2 of length 31 into 3 crops of >= 11"):
        grid_boxes((30, 30, 31), (1, 2, 3), min_size=11)


def test_resample_keeps_extent_and_label_values():
    img = sitk.GetImageFromArray(np.arange(8 * 12 * 12, dtype=np.float32).reshape(8, 12, 12))
    img.SetSpacing((1.0, 1.0, 2.0))
    out = resample(img, (2.0, 3.0, 3.0))
    assert out.GetSize() == (4, 4, 8) and out.GetPixelID() == sitk.sitkFloat32
    corner = lambda im: np.array(im.GetOrigin()) - np.array(im.GetSpacing()) / 2  # noqa: E731
    np.testing.assert_allclose(corner(out), corner(img))
    lab = sitk.GetImageFromArray((np.arange(8 * 12 * 12) % 5).astype(np.uint8).reshape(8, 12, 12))
    lab.SetSpacing((1.0, 1.0, 2.0))
    lout = resample(lab, (2.0, 2.0, 2.0), label=True)
    assert lout.GetPixelID() == sitk.sitkUInt8 and set(np.unique(sitk.GetArrayFromImage(lout))) <= set(range(5))


def test_aal_grouping():
    names = L.parse_aal_names(AAL_TXT)
    ids = L.aal_label_names()
    assert len(ids) == 15 and ids["frontal_L"] == 1 and ids["vermis"] == 15
    assert L.aal_group_of("Frontal_Sup_Orb_R") == "frontal_R" and L.aal_group_of("Cerebelum_Crus1_L") == "cerebellum_L"
    aal = np.array([[[0, 1, 2, 37, 38, 89, 109, 120]]])
    out, unmapped = L.group_aal(aal, names)
    assert out.tolist() == [[[0, 1, 2, 9, 10, 5, 15, 0]]] and unmapped == ["Mystery_Region"]
    with pytest.raises(ValueError, match=r"\[77\] have no name"):
        L.group_aal(np.array([77]), names)


def test_ct_labels_on_a_phantom():
    hu = phantom_ct()
    lab = L.ct_labels(hu, min_voxels=4)
    c = L.CT_LABELS
    assert (lab[:, 0, :] == 0).all()                     # the holder is not part of the head
    assert lab[12, 16, 16] == c["air_cavity"] and lab[6, 16, 16] == c["soft_tissue"]
    assert (lab[hu == 700] == c["bone"]).mean() > 0.99 and lab[12, 16, 10] == c["soft_tissue"]
    assert set(np.unique(lab)) == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="soft-tissue threshold"):
        L.ct_labels(np.full((4, 4, 4), -1000, np.int16))


def test_kmeans_and_neuromaps_labels():
    classes = np.array([1] * 20 + [0] * 2 + [3] * 5 + [5] * 6)
    out, names = L.kmeans_labels(classes, min_voxels=3)
    assert names == {"kmeans_class_3": 1, "kmeans_class_5": 2} and out.tolist() == [0] * 22 + [1] * 5 + [2] * 6
    nm = np.array([0, 55, 55, 1055, 1055, 1055, 2, 1002, 7, 7, 7])
    out, names = L.largest_neuromaps(nm, pairs=2)
    assert list(names) == ["neuromaps_55_L", "neuromaps_55_R", "neuromaps_7_L"]  # 7 has no right partner
    assert out.tolist() == [0, 1, 1, 2, 2, 2, 0, 0, 3, 3, 3]


def test_read_inv3_spacing_and_errors(tmp_path):
    hu = phantom_ct()
    arr, spacing, meta = read_inv3(fake_inv3(tmp_path / "a.inv3", hu, spacing=(0.7, 0.8, 2.5)))
    assert (arr == hu).all() and spacing == (2.5, 0.8, 0.7) and meta["modality"] == "CT"
    _, spacing, _ = read_inv3(fake_inv3(tmp_path / "b.inv3", hu, spacing=None))
    assert spacing == (1.5, 0.9570312, 0.9570312)
    bad = fake_inv3(tmp_path / "c.inv3", hu, drop=("main.plist",))
    with pytest.raises(SourceError, match=r"c\.inv3: no main\.plist"):
        read_inv3(bad)
    short = fake_inv3(tmp_path / "d.inv3", hu, plist_extra={"matrix": {"dtype": "int16", "filename": "matrix.dat",
                                                                      "shape": [25, 32, 32]}})
    with pytest.raises(SourceError, match=r"d\.inv3: matrix\.dat holds 49152 bytes"):
        read_inv3(short)
    (tmp_path / "e.inv3").write_bytes(b"not a tar")
    with pytest.raises(SourceError, match=r"e\.inv3: not a readable InVesalius project"):
        read_inv3(tmp_path / "e.inv3")


def test_colin27(fake_root, tmp_path):
    folder, held = convert_colin27(tmp_path / "raw", 970, **_files(fake_root, "colin27"), **SMALL)
    dj = check_dataset(folder, spacing=(1.5, 1.5, 1.5))
    assert folder.name == "Dataset970_Colin27AAL" and len(dj["crops"]) == 8
    assert held == dj["held_out"] == ["colin27_000", "colin27_007"]
    assert dj["labels"] == {"background": 0, **L.aal_label_names()}
    lab = sitk.ReadImage(str(folder / "labelsTr/colin27_000.nii.gz"))
    np.testing.assert_allclose(lab.GetDirection(), (-1, 0, 0, 0, -1, 0, 0, 0, 1))


def test_inia19_resamples_labels_onto_t1(fake_root, tmp_path):
    files = _files(fake_root, "inia19")
    shifted = sitk.ReadImage(str(files["label"]))
    shifted.SetOrigin((0.5, 0, 0))  # another grid: must be resampled onto the T1 (nearest neighbour)
    sitk.WriteImage(shifted, str(files["label"]))
    folder, held = convert_inia19(tmp_path / "raw", 971, **files, spacing=(1.0, 1.0, 1.0), parts=(1, 2, 2), pairs=2,
                                  **SMALL)
    dj = check_dataset(folder, spacing=(1.0, 1.0, 1.0))
    assert list(dj["labels"]) == ["background", "neuromaps_55_L", "neuromaps_55_R", "neuromaps_2_L", "neuromaps_2_R"]
    assert held == ["inia19_003"]


def test_cranium_reads_spacing_from_plist(fake_root, tmp_path):
    folder, held = convert_cranium(tmp_path / "raw", 972, **_files(fake_root, "cranium"), parts=(2, 2, 1),
                                   min_voxels=4, **SMALL)
    dj = check_dataset(folder, spacing=(2.0, 1.0, 1.0))  # plist (x, y, z) 0.5, 0.5, 2.0; in-plane x2
    assert dj["labels"] == {"background": 0, **L.CT_LABELS} and dj["channel_names"] == {"0": "CT"}
    assert len(dj["crops"]) == 4 and held == ["cranium_003"]


def test_kmeans_crops_are_exact(fake_root, tmp_path):
    files = _files(fake_root, "kmeans")
    folder, held = convert_kmeans(tmp_path / "raw", 973, **files, min_voxels=5, **SMALL)
    dj = check_dataset(folder, spacing=(3.0, 2.0, 2.0))
    assert dj["labels"] == {"background": 0, "kmeans_class_2": 1, "kmeans_class_6": 2}
    src = sitk.ReadImage(str(files["image"]))
    full = sitk.GetArrayFromImage(src)
    for case, box in dj["crops"].items():
        img = sitk.ReadImage(str(folder / "imagesTr" / f"{case}_0000.nii.gz"))
        assert (sitk.GetArrayFromImage(img) == full[tuple(slice(a, b) for a, b in box)]).all()
        start = src.TransformIndexToPhysicalPoint([int(box[2][0]), int(box[1][0]), int(box[0][0])])
        np.testing.assert_allclose(img.GetOrigin(), start, atol=1e-6)  # crops stay in place physically
        np.testing.assert_allclose(img.GetDirection(), src.GetDirection())
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    seg, props = SimpleITKIO().read_seg(str(folder / "labelsTr" / f"{held[0]}.nii.gz"))
    assert seg.shape[1:] == (10, 8, 8) and tuple(props["spacing"]) == (3.0, 2.0, 2.0)


def test_write_demo_sources_and_missing_packages(fake_root, tmp_path, monkeypatch):
    assert locate.missing_packages([fake_root]) == []
    msgs = []
    # the real defaults need >= 48-voxel crops: relax them for the tiny fakes
    for name, fn in list(sources.CONVERTERS.items()):
        kw = {"min_size": 4} | ({"min_voxels": 4} if name in ("cranium", "kmeans") else {})
        monkeypatch.setitem(sources.CONVERTERS, name, functools.partial(fn, **kw))
    out = write_demo_sources(tmp_path / "raw", first_id=980, roots=[fake_root], log=msgs.append)
    assert {k: v[0] for k, v in out.items()} == {"colin27": 980, "inia19": 981, "cranium": 982, "kmeans": 983}
    for _, folder, held in out.values():
        assert held == json.loads((folder / "dataset.json").read_text())["held_out"]
    # without mricron-data: its two sources are skipped with the install command; ids of the others do not move
    empty = tmp_path / "empty"
    empty.mkdir()
    assert locate.missing_packages([empty]) == list(locate.PACKAGES)
    msgs.clear()
    out = write_demo_sources(tmp_path / "raw2", first_id=980, roots=[empty], log=msgs.append)
    assert out == {} and len(msgs) == 4 and all("install_demo_data.sh" in m and "apt-get install" in m for m in msgs)
    assert "mricron-data" in locate.install_hint(["mricron-data"]) and locate.install_hint([]) == ""


def test_missing_or_bad_files_name_the_file(fake_root, tmp_path):
    files = _files(fake_root, "colin27")
    with pytest.raises(SourceError, match=r"nowhere/ch2\.nii\.gz: file not found"):
        convert_colin27(tmp_path / "raw", 974, **{**files, "image": tmp_path / "nowhere/ch2.nii.gz"}, **SMALL)
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"junk")
    with pytest.raises(SourceError, match=r"junk\.nii\.gz: cannot be read"):
        convert_colin27(tmp_path / "raw", 974, **{**files, "label": junk}, **SMALL)
    with pytest.raises(SourceError, match=r"aal\.txt: AAL name table not found"):
        convert_colin27(tmp_path / "raw", 974, **{**files, "names": tmp_path / "aal.txt"}, **SMALL)
    assert not (tmp_path / "raw").exists()  # nothing written


def test_interrupted_write_leaves_nothing_half_written(fake_root, tmp_path, monkeypatch):
    files, raw = _files(fake_root, "kmeans"), tmp_path / "raw"
    folder, _ = convert_kmeans(raw, 975, **files, min_voxels=5, **SMALL)
    before = (folder / "dataset.json").read_text()
    calls = []

    def failing_write(img, path):
        calls.append(path)
        if len(calls) % 3 == 0:
            raise KeyboardInterrupt  # like Ctrl-C in the middle of the cases
        sitk.WriteImage(img, str(path), True)

    monkeypatch.setattr(volume, "_write", failing_write)
    with pytest.raises(KeyboardInterrupt):
        convert_kmeans(raw, 975, **files, min_voxels=5, **SMALL)
    assert sorted(p.name for p in raw.iterdir()) == [folder.name]  # no hidden temp folder left
    assert (folder / "dataset.json").read_text() == before and len(list((folder / "labelsTr").iterdir())) == 4
    with pytest.raises(KeyboardInterrupt):
        convert_kmeans(tmp_path / "raw_new", 976, **files, min_voxels=5, **SMALL)
    assert list((tmp_path / "raw_new").iterdir()) == []
    # a crop without labels is a clear error, not an empty case
    monkeypatch.undo()
    with pytest.raises(ValueError, match="holds no labelled voxel"):
        convert_kmeans(tmp_path / "raw3", 977, **files, parts=(1, 8, 8), min_voxels=5, min_size=2)


def test_install_script_knows_the_same_files(tmp_path):
    script = REPO / "scripts" / "install_demo_data.sh"
    text = script.read_text()
    for package, key in locate.KEY_FILES.items():
        assert f"[{package}]={key}" in text
        src = next(s for s in locate.SOURCES if s.package == package)
        assert key in src.files.values()
    subprocess.run(["bash", "-n", str(script)], check=True)
    # --check installs nothing; with every key file under $NNI_DEMO_DATA/<package> it reports all found
    for package, key in locate.KEY_FILES.items():
        (tmp_path / package / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / package / key).write_bytes(b"x")
    r = subprocess.run(["bash", str(script), "--check"], env={**os.environ, "NNI_DEMO_DATA": str(tmp_path)},
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.count("found") == 3, r.stdout + r.stderr


REAL = {s.name: locate.find_files(s) for s in locate.SOURCES}


@pytest.mark.skipif(not all(REAL.values()), reason="demo Debian packages not installed (scripts/install_demo_data.sh)")
def test_real_packages(tmp_path):
    out = write_demo_sources(tmp_path, first_id=960)
    expect = {"colin27": (8, 16, (1.5, 1.5, 1.5)), "inia19": (4, 13, (0.75, 0.75, 0.75)),
              "cranium": (4, 4, (1.5, 2 * 0.9570312, 2 * 0.9570312)), "kmeans": (4, 6, (3.0, 2.0, 2.0))}
    for name, (n_cases, n_labels, spacing) in expect.items():
        dj = check_dataset(out[name][1], spacing=spacing)
        assert len(dj["crops"]) == n_cases and len(dj["labels"]) == n_labels, name
        assert min(min(b - a for a, b in box) for box in dj["crops"].values()) >= 48


@pytest.mark.parametrize("trained", [False, True])
def test_collection_list_trains_real_sources_only_when_asked(tmp_path, trained):
    from nninteractive_train.demo.pipeline import GENERATED_ID, collection_list, write_report

    real = {"colin27": (960, "Dataset960_Colin27AAL", ["colin27_000"])}
    trained_real = real if trained else {}
    datasets = collection_list(trained_real, ["generated_0015"])["datasets"]
    assert [d["source"] for d in datasets] == [GENERATED_ID] + ([960] if trained else [])
    assert datasets[0]["skip_cases"] == ["generated_0015"]  # held-out cases are never trained on
    assert all(d["skip_cases"] == ["colin27_000"] for d in datasets[1:])
    write_report(tmp_path, {}, {"train": 1.0}, real, trained=trained)
    header = (tmp_path / "README.md").read_text().splitlines()[2]
    assert ("(trained on" in header) == trained and ("zero-shot" in header) == (not trained)
