"""The demo list end to end: generate, build, plan + preprocess, SuperVoxels, sampling report, centres.

Training with the sampler is covered by the training tests (the loader wiring lives there).
"""

import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_collection_end_to_end(tmp_path, monkeypatch, capsys):
    from nninteractive_train.cli import build_collection, generate_supervoxels, make_synthetic, plan_and_preprocess
    from nninteractive_train.cli import sampling_report

    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (tmp_path / var).mkdir()
        monkeypatch.setenv(var, str(tmp_path / var))
    make_synthetic.main(["-d", "991", "--num-cases", "3", "--seed", "1", "--name", "SynthA"])
    make_synthetic.main(["-d", "992", "--num-cases", "2", "--seed", "2", "--name", "SynthB"])
    assert build_collection.main([str(REPO / "dataset_lists" / "demo.yaml"), "-d", "990", "--quiet"]) == 0
    plan_and_preprocess.main(["-d", "990", "--config", str(REPO / "configs" / "debug_cpu.yaml"), "-np", "1"])
    assert generate_supervoxels.main(["-d", "990", "--quiet"]) == 0
    capsys.readouterr()
    assert sampling_report.main(["-d", "990", "--draws", "5000", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in rep["datasets"]] == ["SynthA", "SynthB"] and rep["cases"] == 5
    assert rep["cases_with_supervoxels"] >= 1
    assert abs(rep["empirical_supervoxel_share"] - rep["expected_supervoxel_share"]) < 0.03

    # the preprocessed _seg keeps the instance map, and manifest objects find their voxels in it
    from nnunetv2.training.dataloading.nnunet_dataset import nnUNetDatasetBlosc2

    from nninteractive_train.data.centers import case_center_candidates
    from nninteractive_train.data.manifest import Manifest, find_manifest
    from nninteractive_train.data.paths import find_preprocessed_config

    man = Manifest.load(find_manifest(990))
    folder = find_preprocessed_config(990)
    ds = nnUNetDatasetBlosc2(str(folder))
    case = str(man.case_ids[0])
    _, seg, _, props = ds.load_case(case)
    seg = np.asarray(seg[:])
    assert seg.max() == man.case_instances[0]
    coords, offsets = case_center_candidates(seg, props, man, case, rng=np.random.default_rng(0))
    for k, j in enumerate(man.object_range(0)):
        pts = coords[offsets[k]:offsets[k + 1]]
        assert pts.shape[0] > 0 and np.isin(seg[0][tuple(pts.T)], man.instance_ids(j)).all()
