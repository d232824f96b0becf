"""The demo list end to end: generate, build, plan + preprocess, SuperVoxels, sampling report, centres.

Then the tiny config trains with objects drawn through the collection sampler.
"""

import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _build_demo_collection(tmp_path, monkeypatch, dataset_id: int) -> None:
    """Fresh nnU-Net folders in tmp_path; generate the demo list's sources, build, preprocess, SuperVoxels."""
    from nninteractive_train.cli import build_collection, generate_supervoxels, make_synthetic, plan_and_preprocess

    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        (tmp_path / var).mkdir()
        monkeypatch.setenv(var, str(tmp_path / var))
    make_synthetic.main(["-d", "991", "--num-cases", "3", "--seed", "1", "--name", "SynthA"])
    make_synthetic.main(["-d", "992", "--num-cases", "2", "--seed", "2", "--name", "SynthB"])
    d = str(dataset_id)
    assert build_collection.main([str(REPO / "dataset_lists" / "demo.yaml"), "-d", d, "--quiet"]) == 0
    plan_and_preprocess.main(["-d", d, "--config", str(REPO / "configs" / "debug_cpu.yaml"), "-np", "1"])
    assert generate_supervoxels.main(["-d", d, "--quiet"]) == 0


@pytest.mark.slow
def test_demo_collection_end_to_end(tmp_path, monkeypatch, capsys):
    from nninteractive_train.cli import sampling_report

    _build_demo_collection(tmp_path, monkeypatch, 990)
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


@pytest.mark.slow
def test_training_draws_objects_from_the_collection(tmp_path, monkeypatch):
    """Build the demo list, preprocess (with centre candidates), SuperVoxels, then train the tiny config: the
    loader draws through the collection sampler, and its position is saved in the checkpoint."""
    import torch

    from nninteractive_train.config import load_config
    from nninteractive_train.training.collection import CollectionDraws
    from nninteractive_train.training.launch import train

    _build_demo_collection(tmp_path, monkeypatch, 989)
    cfg = load_config(REPO / "configs" / "debug_cpu.yaml", ["training.iterations_per_epoch=6"])
    trainer = train(989, cfg, tmp_path / "run", use_cuda=False)
    dl = trainer.dataloader_train.data_loader
    assert isinstance(dl._sampler, CollectionDraws)
    state = dl._sampler.state_dict()
    lines = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    fresh = sum(round((1 - l["followup_fraction"]) * 6) for l in lines)  # follow-up batches draw nothing
    assert state["position"] == 2 * fresh > 0  # batch size 2
    ck = torch.load(tmp_path / "run" / "checkpoint_final.pth", weights_only=False)
    assert ck["rank_states"][0]["loaders"]["train"][0]["sampler"]["position"] == state["position"]
    # the run folder records the collection's sample shares for the model card
    summary = json.loads((tmp_path / "run" / "sampling_summary.json").read_text())
    assert summary["cases"] > 0 and abs(sum(d["expected_share"] for d in summary["datasets"]) - 1) < 1e-9

    # data.center_bias: the candidates were drawn with the config's power (recorded beside them, reused for the
    # SuperVoxels); a run configured with another one is a clear error before any step
    from nninteractive_train.data.paths import find_preprocessed_config
    from nninteractive_train.paths import SetupError

    folder = find_preprocessed_config(989)
    assert json.loads((folder / "centers" / "info.json").read_text())["power"] == cfg.data.center_bias == 1.0
    assert json.loads((folder / "supervoxels" / "index.json").read_text())["centers"]["power"] == 1.0
    other = load_config(REPO / "configs" / "debug_cpu.yaml", ["data.center_bias=2"])
    with pytest.raises(SetupError, match="centers/info.json: patch-centre candidates were drawn with center_bias 1"):
        train(989, other, tmp_path / "run_bias", use_cuda=False)
