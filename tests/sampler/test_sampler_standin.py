"""The stand-in manifest of a dataset list and the shares the sampling report gives on it: a dataset's share is
sqrt(published images x channels) x weight over the sum, evaluation-only datasets get nothing."""

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from nninteractive_train.cli import sampling_report as report_cli
from nninteractive_train.data.dataset_list import load_dataset_list
from nninteractive_train.data.manifest import Manifest
from nninteractive_train.sampler.report import sampling_report
from nninteractive_train.sampler.standin import stand_in_manifest, stand_in_types
from nninteractive_train.sampler.tables import sampling_tables

REPO = Path(__file__).resolve().parents[2]
V1 = REPO / "dataset_lists" / "nninteractive_v1.yaml"

SMALL = """
    name: Small
    defaults: {weight: 1.0}
    datasets:
      - {name: A, source: null, images: 9, targets: [13 Abdominal Organs]}
      - {name: B, source: null, images: 4, weight: 3, channels: [0, 1], targets: [Lung Lesion, Lung]}
      - {name: C, source: null, images: 5, weight: 0, instance_labels: cell, objects: whole}
      - {name: H, source: null, images: 100, evaluation_only: true}
      - name: L
        source: null
        images: 30
        labels: {liver: {objects: whole}}
        combinations: {liver_with_tumours: [liver, cancer]}
        object_probs: {liver_with_tumours: 0.25, liver: 0.25, cancer: 0.5}
"""


def _write(tmp_path, text, name="list.yaml"):
    f = tmp_path / name
    f.write_text(textwrap.dedent(text))
    return f


def reference_shares(list_file: Path) -> dict[str, float]:
    """sqrt(images x channels) x weight over the sum, straight from the YAML (not through the loader)."""
    doc = yaml.safe_load(list_file.read_text())
    w0 = (doc.get("defaults") or {}).get("weight", 1.0)
    budget = {e["name"]: math.sqrt(e["images"] * len(e.get("channels", [0]))) * e.get("weight", w0)
              for e in doc["datasets"] if not e.get("evaluation_only")}
    total = sum(budget.values())
    return {k: v / total for k, v in budget.items()}


@pytest.mark.parametrize("list_file", ["small", "v1"])
def test_shares_follow_sqrt_images_times_weight(tmp_path, list_file):
    f = _write(tmp_path, SMALL) if list_file == "small" else V1
    man = stand_in_manifest(load_dataset_list(f), seed=3)
    rep = sampling_report(man)
    ref = reference_shares(f)
    assert [r["name"] for r in rep["datasets"]] == list(ref)  # evaluation-only left out, list order kept
    got = {r["name"]: r["expected_share"] for r in rep["datasets"]}
    np.testing.assert_allclose([got[k] for k in ref], [ref[k] for k in ref], rtol=1e-12, atol=0)
    # and the sampler itself: 100,000 draws land on the datasets in those proportions
    emp = sampling_report(man, draws=100_000, seed=1)
    assert emp["chi2"]["dataset"]["p_value"] > 1e-4


def test_small_stand_in_shape(tmp_path):
    man = stand_in_manifest(load_dataset_list(_write(tmp_path, SMALL)), seed=0)
    assert man.dataset_names == ["A", "B", "C", "L"]
    np.testing.assert_array_equal(np.bincount(man.case_dataset), [9, 8, 5, 30])  # B: 4 images x 2 channels
    k = man.objects_per_case()
    assert np.all(k[man.case_dataset == 0] == 13) and np.all(k[man.case_dataset == 1] == 2)
    assert np.all(k >= 1)
    info = {d["name"]: d for d in man.datasets}
    assert info["C"]["types"] == ["cell"] and info["C"]["weight"] == 0.0
    assert info["L"]["types"] == ["liver", "cancer", "liver_with_tumours"]
    # MSD Task 3 shape: one liver per case, a combination only where a tumour makes it differ from the liver
    liver = man.case_dataset == 3
    obj_case = np.repeat(np.arange(man.n_cases), k)
    for c in np.flatnonzero(liver):
        types = man.object_type[obj_case == c].tolist()
        assert types.count(0) == 1 and types.count(2) == (1 if types.count(1) else 0)
    # object_probs apply: in a case with tumours liver 0.25, combination 0.25, the tumours 0.5 together
    q = sampling_tables(man).object_prob
    c = next(c for c in np.flatnonzero(liver) if 1 in man.object_type[obj_case == c])
    sel = obj_case == c
    for t, p in [(0, 0.25), (1, 0.5), (2, 0.25)]:
        assert q[sel][man.object_type[sel] == t].sum() == pytest.approx(p)


@pytest.mark.parametrize("entry, types", [
    ("{name: A, images: 1, targets: [13 Abdominal Organs, Aorta]}", [("13 Abdominal Organs", 13.0, True),
                                                                     ("Aorta", 1.0, True)]),
    ("{name: A, images: 1}", [("object", 1.0, True)]),
    ("{name: A, images: 1, instance_labels: nucleus}", [("nucleus", 20.0, False)]),
    ("{name: A, images: 1, targets: [x], labels: {t: {objects: whole}}, combinations: {wt: [t, u]}}",
     [("t", 1.0, True), ("u", 2.0, False)]),
])
def test_stand_in_types(tmp_path, entry, types):
    spec = load_dataset_list(_write(tmp_path, f"datasets:\n  - {entry}\n")).datasets[0]
    assert stand_in_types(spec)[0] == types


def test_missing_image_count_names_file_and_dataset(tmp_path):
    f = _write(tmp_path, "datasets:\n  - {name: A, images: 3}\n  - {name: NoCount}\n")
    with pytest.raises(ValueError, match=r"list\.yaml: dataset 'NoCount' has no 'images'"):
        stand_in_manifest(load_dataset_list(f))
    f = _write(tmp_path, "datasets:\n  - {name: H, evaluation_only: true}\n", "held.yaml")
    with pytest.raises(ValueError, match="no training datasets"):
        stand_in_manifest(load_dataset_list(f))


def test_script_and_sampling_report_on_the_saved_stand_in(tmp_path, capsys):
    out = tmp_path / "standin.npz"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "collection_standin.py"), str(V1), "--out",
                          str(out)], capture_output=True, text=True, check=True, env=env)
    ref = reference_shares(V1)
    cells = [[x.strip() for x in line.strip().strip("|").split("|")] for line in res.stdout.splitlines()
             if line.startswith("| ")]
    rows = {c[1]: c for c in cells[1:] if c[0] != "…"}  # cells[0]: the header
    assert cells[1][1] == "AbdomenAtlas_1Mini" and int(cells[-1][0]) == 114  # largest first, the smallest shown
    for name in ("AbdomenAtlas_1Mini", "CAP", "BBBC046_FiloData3D", "SegThy_1", "EPEI_Mito"):
        assert rows[name][6] == f"{100 * ref[name]:.3f} %"
    assert (rows["CAP"][4], rows["BBBC046_FiloData3D"][4], rows["SegThy_1"][4]) == ("0.5", "0.5", "2")
    assert "14 evaluation-only datasets left out" in res.stdout
    # the report needs nothing but the manifest file
    man = Manifest.load(out)
    assert man.n_cases == 34_982 and man.meta["standin"] is True
    assert report_cli.main(["-d", str(out), "--top", "2"]) == 0
    assert "| CAP | 0.5 | 1637 |" in capsys.readouterr().out
