"""Checkpoints and preemption: SIGTERM mid-run leaves a valid checkpoint and --resume continues exactly (issue 11:
the same weights, bit for bit, and the same per-iteration losses as an uninterrupted run, on one process, two gloo
ranks and a collection with SuperVoxels; with augmentation workers, the same sampler streams); the run folder's
config is the config of a resume; fine-tuning from an exported model folder."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
import torch

from helpers import (DEBUG_CFG, PY, REPO, prepared_collection, prepared_dataset, read_lines, run, slurm_ranks,
                     wait_for_lines)
from nninteractive_train.training.schedule import followup_probability

pytestmark = pytest.mark.slow
DS = 990
LONG = ["training.num_epochs=16", "training.save_every=1000"]
# 2 epochs of 8 iterations (enough that a SIGTERM sent after the first of epoch 1 lands inside it on a busy
# machine), a log line per iteration, no periodic checkpoint: the SIGTERM one is the only one
EXACT = ["training.num_epochs=2", "training.iterations_per_epoch=8", "training.log_steps=true",
         "training.save_every=1000"]
SAME_METRICS = ("epoch", "train_loss", "val_loss", "pseudo_dice", "p_followup", "followup_fraction",
                "mean_interactions", "lr")


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
    assert stopped_at == done and 0 < ck["iteration"] <= 4, "the epoch in progress continues at its next iteration"
    assert ck["run_config"]["training"]["num_epochs"] == 16
    assert ck["rank_states"][0]["rng"]["torch"] is not None and ck["rank_states"][0]["interaction"]["rng"]

    run([PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--output", str(run_dir), "--resume"])
    lines = _metrics(run_dir)
    assert [l["epoch"] for l in lines] == list(range(16))
    resumed = lines[stopped_at]
    assert resumed["p_followup"] == pytest.approx(followup_probability(stopped_at, 16, 0.3, 0.75))
    assert (run_dir / "checkpoint_final.pth").is_file() and not latest.exists()
    # resuming a finished run does nothing
    res = run([PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--output", str(run_dir), "--resume"])
    assert "complete" in res.stdout


def _cli(ds, run_dir, *extra):
    return [PY, "-m", "nninteractive_train.cli.train", "-d", str(ds), "--output", str(run_dir), *extra]


def _ranks(ds, run_dir, *extra, resume=False):
    return [str(REPO / "tests" / "_train_worker.py"), *(["--resume"] if resume else []), str(ds), str(DEBUG_CFG),
            str(run_dir), str(run_dir / "out"), *extra]


def _start(kind, ds, run_dir, extra=(), resume=False) -> list[subprocess.Popen]:
    """Train ``ds`` into ``run_dir`` on one process (the CLI) or two gloo ranks (SLURM-style); ``resume``: give no
    config, continue from the run folder."""
    if kind == "two_ranks":
        return slurm_ranks(_ranks(ds, run_dir, *EXACT, *extra, resume=resume))
    args = ["--resume"] if resume else ["--config", str(DEBUG_CFG), *EXACT, *extra]
    return [subprocess.Popen(_cli(ds, run_dir, *args), cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)]


def _finish(procs) -> None:
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(o[-3000:] for o in outs)


def _interrupted_and_uninterrupted(tmp_path, kind, ds, extra=()):
    """An uninterrupted run, and one stopped by SIGTERM (to one rank only: all agree) at an iteration of its
    second epoch and resumed. Returns both run folders and the (epoch, iteration) it stopped at."""
    ref, cut = tmp_path / "uninterrupted", tmp_path / "interrupted"
    _finish(_start(kind, ds, ref, extra))
    procs = _start(kind, ds, cut, extra)
    wait_for_lines(cut / "iterations.jsonl", 9, procs)  # epoch 1, iteration 0 done
    procs[-1].send_signal(signal.SIGTERM)
    _finish(procs)
    ck = torch.load(cut / "checkpoint_latest.pth", weights_only=False)
    assert not (cut / "checkpoint_final.pth").exists()
    _finish(_start(kind, ds, cut, resume=True))
    return ref, cut, (ck["current_epoch"], ck["iteration"])


@pytest.mark.parametrize("kind, dataset, extra", [("single", "generated", ()),
                                                  ("two_ranks", "generated", ("training.ema_decay=0.9",)),
                                                  ("single", "collection", ())])
def test_exact_resume(tmp_path, kind, dataset, extra):
    """As torchtitan tests its checkpoints: stopped at iteration k and resumed, the run ends with the
    uninterrupted run's weights, bit for bit, after the same per-iteration losses and batches (including the
    follow-up batches waiting in the pool at the stop, and, for the collection, the sampler's draws); with
    ``training.ema_decay`` the weights' average too, and that average is what the export writes."""
    ds = prepared_collection() if dataset == "collection" else prepared_dataset(DS)
    ref, cut, stopped = _interrupted_and_uninterrupted(tmp_path, kind, ds, extra)
    assert (1, 1) <= stopped <= (1, 8), stopped
    assert read_lines(cut / "iterations.jsonl") == read_lines(ref / "iterations.jsonl")
    assert len(read_lines(ref / "iterations.jsonl")) == 16
    ck = [torch.load(d / "checkpoint_final.pth", weights_only=False) for d in (ref, cut)]
    a, b = (c["network_weights"] for c in ck)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    if extra:
        (ea, eb) = (c["ema"] for c in ck)
        assert ea["updates"] == eb["updates"] == 16
        assert all(torch.equal(ea["weights"][k], eb["weights"][k]) for k in a)
        assert not all(torch.equal(ea["weights"][k], a[k]) for k in a)
        from nninteractive_train.export import export_run

        export_run(ref, tmp_path / "model")
        exported = torch.load(tmp_path / "model" / "fold_0" / "checkpoint_final.pth", weights_only=False)
        assert all(torch.equal(exported["network_weights"][k], ea["weights"][k]) for k in a)
    else:
        assert ck[0]["ema"] is None
    metrics = [[{k: m[k] for k in SAME_METRICS} for m in _metrics(d)] for d in (ref, cut)]
    assert metrics[0] == metrics[1] and len(metrics[0]) == 2
    if dataset == "collection":
        assert any(line["sampler_position"] for line in read_lines(ref / "iterations.jsonl"))


def test_resumed_workers_continue_their_sampler_streams(tmp_path):
    """With 2 augmentation workers the interleaving of their batches is not reproducible, but each worker's
    stream is: after the resume every worker continues right after the last batch the trainer consumed from it
    (prefetched batches are drawn again, none skipped or repeated), with the uninterrupted run's objects."""
    ref, cut, _ = _interrupted_and_uninterrupted(tmp_path, "single", prepared_collection(),
                                                 ["training.num_data_workers=2"])

    def streams(run_dir):
        out = {}
        for line in read_lines(run_dir / "iterations.jsonl"):
            if not line["followup"]:
                out.setdefault(line["worker"], []).append((line["sampler_position"], line["cases"]))
        return out

    got, want = streams(cut), streams(ref)
    assert sorted(got) == [0, 1]
    for worker, draws in got.items():
        positions = [p for p, _ in draws]
        assert positions == list(range(2, 2 * len(draws) + 1, 2)), (worker, positions)  # batch 2: 2 draws each
        same = [(p, c) for p, c in draws if p in dict(want.get(worker, []))]
        assert same and all(dict(want[worker])[p] == c for p, c in same)


def test_the_run_folder_is_the_config_of_a_resume(tmp_path):
    """A resume uses RUN/config.yaml; a config given again that differs is one error listing every differing
    key, unless the key is allowed to change (and may be); a finished run can be extended that way."""
    prepared_dataset(DS)
    run_dir = tmp_path / "run"
    run(_cli(DS, run_dir, "--config", str(DEBUG_CFG), "training.num_epochs=1"))
    saved = (run_dir / "config.yaml").read_text()

    bad = run(_cli(DS, run_dir, "--resume", "--config", str(DEBUG_CFG), "training.initial_lr=0.5"), check=False)
    assert bad.returncode == 2 and "2 key(s)" in bad.stderr, bad.stderr[-2000:]
    assert "training.initial_lr: run 0.01, given 0.5" in bad.stderr
    assert "training.num_epochs: run 1, given 2" in bad.stderr
    fixed = run(_cli(DS, run_dir, "--resume", "training.num_epochs=2", "--allow-config-change", "model.patch_size"),
                check=False)
    assert fixed.returncode == 2 and "cannot change on resume" in fixed.stderr
    assert (run_dir / "config.yaml").read_text() == saved and len(_metrics(run_dir)) == 1

    run(_cli(DS, run_dir, "--resume", "--allow-config-change", "training.num_epochs", "training.num_epochs=2"))
    assert [m["epoch"] for m in _metrics(run_dir)] == [0, 1]
    assert "num_epochs: 2" in (run_dir / "config.yaml").read_text()

    (run_dir / "config.yaml").write_text(saved.replace("initial_lr: 0.01", "initial_lr: 0.02"))  # edited by hand
    edited = run(_cli(DS, run_dir, "--resume", "--allow-config-change", "training.num_epochs",
                      "training.num_epochs=3"), check=False)
    assert edited.returncode == 2 and "written by a run with another config" in edited.stderr
    assert "checkpoint_final.pth" in edited.stderr
    assert "training.initial_lr" in edited.stderr


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
