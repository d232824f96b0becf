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


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_checkpoint_and_resume(tmp_path, signum):
    prepared_dataset(DS)
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--config", str(DEBUG_CFG),
                             "--output", str(run_dir), *LONG], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while len(_metrics(run_dir)) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[0][-3000:]
    proc.send_signal(signum)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out[-3000:]
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


def test_pretrained_start_and_mismatch(tmp_path):
    prepared_dataset(DS)
    first = tmp_path / "first"
    run([PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--config", str(DEBUG_CFG), "--output", str(first)])
    model = tmp_path / "model"
    licence = tmp_path / "LICENSE.txt"
    licence.write_text("CC BY-NC-SA 4.0\nhttps://creativecommons.org/licenses/by-nc-sa/4.0/\n")
    run([PY, "-m", "nninteractive_train.cli.export", str(first), str(model), "--license", str(licence)])
    assert (model / "LICENSE").read_text() == licence.read_text()
    fine = tmp_path / "fine"
    res = run([PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--config", str(DEBUG_CFG),
               "--output", str(fine), "--pretrained", str(model), "training.num_epochs=1"])
    assert "pretrained weights" in (fine.glob("training_log_*.txt").__next__()).read_text()
    # provenance travels: the fine-tuned export carries the pretrained licence and says where it came from
    fine_model = tmp_path / "fine_model"
    run([PY, "-m", "nninteractive_train.cli.export", str(fine), str(fine_model)])
    assert (fine_model / "LICENSE").read_text() == licence.read_text()
    card = json.loads((fine_model / "model_card.json").read_text())
    assert card["pretrained_from"] == str(model.resolve()) and "inherited" in card["license"]
    assert card["epochs_trained"] == 1 and card["config"]["training"]["num_epochs"] == 1
    assert "fine-tuned from" in (fine_model / "model_card.md").read_text()
    from nninteractive_train.evaluation.session import load_session

    assert load_session(fine_model, autozoom=False).license == "CC BY-NC-SA 4.0"  # what the viewers show
    bad = run([PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--config", str(DEBUG_CFG),
               "--output", str(tmp_path / "bad"), "--pretrained", str(model), "model.base_features=8"], check=False)
    assert bad.returncode == 2
    assert "does not match" in bad.stderr and "shape" in bad.stderr
    del res
