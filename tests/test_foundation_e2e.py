"""Issue 2 end to end: generate → plan → train (1 process, torchrun ×2, SLURM-style ×2) → export → load
in the public nnInteractive inference session."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch

from helpers import DEBUG_CFG, PY, prepared_dataset, run

pytestmark = pytest.mark.slow
DS = 990


@pytest.fixture(scope="module")
def dataset():
    return prepared_dataset(DS)


@pytest.fixture(scope="module")
def trained_run(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run990"
    run([PY, "-m", "nninteractive_train.cli.train", "-d", str(dataset), "--config", str(DEBUG_CFG),
         "--output", str(out)])
    return out


def test_run_folder_contents(trained_run):
    for name in ("config.yaml", "plans.json", "dataset.json", "checkpoint_final.pth", "metrics.jsonl", "progress.png"):
        assert (trained_run / name).is_file(), name
    ck = torch.load(trained_run / "checkpoint_final.pth", weights_only=False)
    assert ck["run_config"]["model"]["patch_size"] == [32, 32, 32]
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in ck["network_weights"])
    first = next(iter(ck["network_weights"].values()))
    conv = [v for k, v in ck["network_weights"].items() if v.ndim == 5][0]
    assert conv.shape[1] == 8, "1 image + 7 interaction channels in"
    lines = [json.loads(l) for l in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == [0, 1]
    assert first is not None


def _session(model_dir):
    from nnInteractive.inference.inference_session import nnInteractiveInferenceSession

    s = nnInteractiveInferenceSession(device=torch.device("cpu"), torch_n_threads=1, verbose=False)
    s.initialize_from_trained_model_folder(str(model_dir))
    return s


def test_export_loads_in_inference_session(trained_run, tmp_path):
    import SimpleITK as sitk

    model = tmp_path / "model990"
    run([PY, "-m", "nninteractive_train.cli.export", str(trained_run), str(model)])
    info = json.loads((model / "inference_info.json").read_text())
    assert info["interaction_decay"] == 0.9 and info["interaction_channels"] == 6
    plans = json.loads((model / "plans.json").read_text())
    (conf,) = plans["configurations"].values()
    assert min(conf["patch_size"]) >= 96
    assert json.loads((model / "dataset.json").read_text())["channel_names"] == {"0": "MRI"}
    ck = torch.load(model / "fold_0" / "checkpoint_final.pth", weights_only=False)
    assert ck["trainer_name"] == "nnInteractiveTrainer_stub"
    card = json.loads((model / "model_card.json").read_text())
    assert card["license"] is None and card["pretrained_from"] is None and card["epochs_trained"] == 2
    assert card["dataset"]["id"] == DS and card["training_minutes"] > 0

    import os
    raw = next(iter(__import__("pathlib").Path(os.environ["nnUNet_raw"]).glob(f"Dataset{DS}_*")))
    img = sitk.GetArrayFromImage(sitk.ReadImage(str(raw / "imagesTr" / "synthetic_0000_0000.nii.gz")))
    img = img[None].astype(np.float32)
    s = _session(model)
    s.set_do_autozoom(False)  # AutoZoom of an untrained model zooms out to the maximum: slow on a CPU
    s.set_image(img)
    shape = img.shape[1:]
    c = [d // 2 for d in shape]
    mask = np.zeros(shape, np.uint8)
    mask[c[0], c[1] - 5:c[1] + 5, c[2] - 5:c[2] + 5] = 1
    for add in (
        lambda: s.add_point_interaction(tuple(c), include_interaction=True),
        lambda: s.add_bbox_interaction([[c[0], c[0] + 1], [c[1] - 8, c[1] + 8], [c[2] - 8, c[2] + 8]],
                                       include_interaction=True),
        lambda: s.add_scribble_interaction(mask, include_interaction=True),
        lambda: s.add_lasso_interaction(mask, include_interaction=False),
    ):
        target = np.zeros(shape, np.uint8)
        s.set_target_buffer(target)
        add()
        assert target.shape == shape and set(np.unique(target)) <= {0, 1}
        s.reset_interactions()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _assert_identical_ranks(out):
    r0 = torch.load(out / "rank0.pt", weights_only=False)
    r1 = torch.load(out / "rank1.pt", weights_only=False)
    assert r0["batch_size"] == r1["batch_size"] == 1  # global batch 2 split over 2 ranks
    assert r0["env"].world_size == 2 and {r0["env"].rank, r1["env"].rank} == {0, 1}
    for k, v in r0["weights"].items():
        assert torch.equal(v, r1["weights"][k]), k


def test_torchrun_two_ranks_gloo(dataset, tmp_path, repo):
    out = tmp_path / "ranks"
    run([PY, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
         "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{_free_port()}",
         str(repo / "tests" / "_train_worker.py"), str(dataset), str(DEBUG_CFG), str(tmp_path / "run"), str(out)])
    _assert_identical_ranks(out)


def test_slurm_style_two_tasks(dataset, tmp_path, repo):
    """Two processes with only SLURM_* variables (as `srun --ntasks 2` sets them), no torchrun."""
    import subprocess
    import os

    out = tmp_path / "ranks"
    port = str(_free_port())
    procs = []
    for rank in range(2):
        env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
        env.update(SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank), SLURM_NTASKS="2", SLURM_JOB_ID="77",
                   SLURM_JOB_NODELIST="localhost", MASTER_PORT=port)
        procs.append(subprocess.Popen(
            [PY, str(repo / "tests" / "_train_worker.py"), str(dataset), str(DEBUG_CFG), str(tmp_path / "run"),
             str(out)], env=env, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(l[-3000:] for l in logs)
    _assert_identical_ranks(out)
    assert torch.load(out / "rank0.pt", weights_only=False)["env"].source == "slurm"


@pytest.mark.parametrize("args, env, message", [
    (["-d", "991"], {}, "no dataset with id 991"),
    (["-d", str(DS), "model.global_batch_size=3"], {"WORLD_SIZE": "2", "RANK": "0"}, "cannot be split evenly"),
    (["-d", str(DS), "plans_identifier=NoSuchPlans"], {}, "run nnInteractive_plan_and_preprocess"),
    (["-d", str(DS)], {"nnUNet_results": ""}, "nnUNet_results is not set"),
    (["-d", str(DS), "training.num_epochs=x"], {}, "expected an integer"),
])
def test_clear_errors_before_any_work(dataset, tmp_path, args, env, message):
    res = run([PY, "-m", "nninteractive_train.cli.train", *args[:2], "--config", str(DEBUG_CFG),
               "--output", str(tmp_path / "r"), *args[2:]], env=env, check=False, timeout=120)
    assert res.returncode == 2, res.stderr[-2000:]
    assert message in res.stderr
    assert not (tmp_path / "r").exists()


def test_existing_run_is_not_overwritten(trained_run):
    res = run([PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--config", str(DEBUG_CFG),
               "--output", str(trained_run)], check=False, timeout=120)
    assert res.returncode == 2 and "--resume" in res.stderr


def test_export_of_a_non_run_is_a_clear_error(tmp_path):
    res = run([PY, "-m", "nninteractive_train.cli.export", str(tmp_path), str(tmp_path / "m")], check=False)
    assert res.returncode == 2 and "checkpoint_final.pth" in res.stderr
    assert not (tmp_path / "m").exists()
