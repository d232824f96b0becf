"""Issue 5, checkpoints and preemption: SIGTERM mid-run leaves a valid checkpoint, --resume continues the same
epoch counter and follow-up ramp; fine-tuning from an exported model folder."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
import torch

from helpers import DEBUG_CFG, PY, REPO, prepared_dataset, run
from nninteractive_train.training.schedule import followup_probability

pytestmark = pytest.mark.slow
DS = 990
LONG = ["training.num_epochs=16", "training.save_every=1000"]


def _metrics(run_dir):
    path = run_dir / "metrics.jsonl"
    return [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []


def _interrupt_after(cmd, run_dir, epochs: int, signum=signal.SIGTERM):
    """Run ``cmd`` until ``epochs`` metrics lines exist, then send ``signum`` (a preemption); returns its output
    after checking that the trainer exited cleanly."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while len(_metrics(run_dir)) < epochs and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[0][-3000:]
    proc.send_signal(signum)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out[-3000:]
    return out


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_checkpoint_and_resume(tmp_path, signum):
    prepared_dataset(DS)
    run_dir = tmp_path / "run"
    _interrupt_after([PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--config", str(DEBUG_CFG),
                      "--output", str(run_dir), *LONG], run_dir, 2, signum)
    latest = run_dir / "checkpoint_latest.pth"
    assert latest.is_file() and not (run_dir / "checkpoint_final.pth").exists()
    ck = torch.load(latest, weights_only=False)
    stopped_at = ck["current_epoch"]
    done = len(_metrics(run_dir))
    assert stopped_at == done, "the interrupted epoch is redone on resume"
    assert ck["run_config"]["training"]["num_epochs"] == 16
    assert ck["rank_states"][0]["rng"] is not None

    run([PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--output", str(run_dir), "--resume"])
    lines = _metrics(run_dir)
    assert [l["epoch"] for l in lines] == list(range(16))
    resumed = lines[stopped_at]
    assert resumed["p_followup"] == pytest.approx(followup_probability(stopped_at, 16, 0.3, 0.75))
    assert (run_dir / "checkpoint_final.pth").is_file() and not latest.exists()
    # resuming a finished run does nothing
    res = run([PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--output", str(run_dir), "--resume"])
    assert "complete" in res.stdout


def _weights(path):
    return torch.load(path, weights_only=False, map_location="cpu")["network_weights"]


def test_finetune_from_a_model_folder(tmp_path):
    """The model folder defines the network: a run whose config would plan another network (other widths and
    depth) fine-tunes the folder's, is preempted and resumed (with its config given again), and exports a folder
    that loads in the public session, with changed weights, the licence carried and the card saying where the
    weights came from. A folder whose channel count does not fit the dataset is one clear error."""
    prepared_dataset(DS)
    first = tmp_path / "first"
    run([PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--config", str(DEBUG_CFG), "--output", str(first)])
    model = tmp_path / "model"
    licence = tmp_path / "LICENSE.txt"
    licence.write_text("CC BY-NC-SA 4.0\nhttps://creativecommons.org/licenses/by-nc-sa/4.0/\n")
    run([PY, "-m", "nninteractive_train.cli.export", str(first), str(model), "--license", str(licence)])
    assert (model / "LICENSE").read_text() == licence.read_text()

    fine = tmp_path / "fine"
    other = ["model.base_features=8", "model.max_features=64", "model.max_stages=5", "model.blocks_per_stage=[2]",
             "model.patch_size=[16,32,32]"]  # a network and training patch of its own, were it not fine-tuning
    cmd = [PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--config", str(DEBUG_CFG), "--output",
           str(fine), *LONG, *other]
    _interrupt_after(cmd + ["--pretrained", str(model)], fine, 2)
    assert "pretrained weights" in next(fine.glob("training_log_*.txt")).read_text()
    run(cmd + ["--resume"])
    assert [m["epoch"] for m in _metrics(fine)] == list(range(16))
    saved = json.loads((fine / "plans.json").read_text())["configurations"]
    folder = json.loads((model / "plans.json").read_text())["configurations"]
    (conf_name, folder_conf), = folder.items()
    assert saved[conf_name]["architecture"]["arch_kwargs"] == folder_conf["architecture"]["arch_kwargs"]
    assert saved[conf_name]["patch_size"] == [16, 32, 32]

    fine_model = tmp_path / "fine_model"
    run([PY, "-m", "nninteractive_train.cli.export", str(fine), str(fine_model)])
    assert json.loads((fine_model / "plans.json").read_text())["configurations"][conf_name]["patch_size"] == \
        folder_conf["patch_size"]  # the folder's inference patch
    before, after = _weights(model / "fold_0" / "checkpoint_final.pth"), _weights(
        fine_model / "fold_0" / "checkpoint_final.pth")
    assert before.keys() == after.keys() and any(not torch.equal(before[k], after[k]) for k in before)
    assert (fine_model / "LICENSE").read_text() == licence.read_text()
    card = json.loads((fine_model / "model_card.json").read_text())
    assert card["pretrained_from"] == str(model.resolve()) and "inherited" in card["license"]
    assert card["epochs_trained"] == 16 and card["config"]["model"]["pretrained"] == str(model.resolve())
    assert "fine-tuned from" in (fine_model / "model_card.md").read_text()
    from nninteractive_train.evaluation.session import load_session

    assert load_session(fine_model, autozoom=False).license == "CC BY-NC-SA 4.0"  # what the viewers show

    # the recipe: configs/finetune.yaml trains (warm-up, frozen encoder) at a CPU-sized patch
    recipe = tmp_path / "recipe"
    run([PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--config", str(REPO / "configs" / "finetune.yaml"),
         "--output", str(recipe), "--pretrained", str(model), "model.patch_size=[16,32,32]",
         "training.num_epochs=3", "training.iterations_per_epoch=2", "training.val_iterations_per_epoch=1",
         "training.warmup_epochs=1", "training.freeze_encoder_epochs=2", "training.interactive_val_every=0",
         "training.num_data_workers=0", "interaction.num_sim_workers=0"])
    lrs = [m["lr"] for m in _metrics(recipe)]
    assert lrs[0] == pytest.approx(0.0005) and lrs[1] == pytest.approx(0.001) and 0 < lrs[2] < 0.001
    enc = [k for k in before if k.startswith("encoder.")]
    recipe_w = _weights(recipe / "checkpoint_final.pth")
    assert enc and any(not torch.equal(before[k], recipe_w[k]) for k in enc)  # thawed in the last epoch

    two = tmp_path / "two_channels"
    import shutil

    shutil.copytree(model, two)
    djson = json.loads((two / "dataset.json").read_text())
    djson["channel_names"] = {"0": "T1", "1": "T2"}
    (two / "dataset.json").write_text(json.dumps(djson))
    bad = run([PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--config", str(DEBUG_CFG),
               "--output", str(tmp_path / "bad"), "--pretrained", str(two)], check=False)
    assert bad.returncode == 2 and "takes 2 image channel(s)" in bad.stderr, bad.stderr[-2000:]
    odd = run([PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--config", str(DEBUG_CFG),
               "--output", str(tmp_path / "odd"), "--pretrained", str(model), "model.patch_size=[18,32,32]"],
              check=False)
    assert odd.returncode == 2 and "total stride" in odd.stderr, odd.stderr[-2000:]
