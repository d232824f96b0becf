"""The training state's small parts, without training: config truth on resume, the config hash, checkpoint
checks, RNG capture, failed writes that keep the previous file, and the centre-bias record."""

from __future__ import annotations

import errno
import json
import os
import random

import numpy as np
import pytest
import torch

from helpers import DEBUG_CFG
from nninteractive_train.config import (CHANGEABLE_ON_RESUME, ConfigError, config_diff, config_hash, load_config,
                                        resume_config, to_dict)
from nninteractive_train.training.checkpoint import CheckpointError, load, save_or_keep
from nninteractive_train.training.state import FORMAT, VERSION, RankState, TrainState, rng_state, set_rng_state


def _cfg(*overrides):
    return load_config(DEBUG_CFG, list(overrides))


@pytest.mark.parametrize("given, allow, want_keys", [
    ([], [], []),
    (["training.num_epochs=7"], ["training.num_epochs"], ["training.num_epochs"]),
    (["training.num_epochs=7", "interaction.num_sim_workers=2"], ["training.num_epochs", "interaction.num_sim_workers"],
     ["interaction.num_sim_workers", "training.num_epochs"]),
])
def test_resume_config_takes_only_allowed_changes(given, allow, want_keys):
    saved = _cfg()
    out = resume_config(saved, _cfg(*given), allow)
    assert config_diff(saved, out) == want_keys
    assert config_diff(out, _cfg(*given)) == []


@pytest.mark.parametrize("given, allow, message", [
    (["training.initial_lr=0.5"], [], "in 1 key(s): training.initial_lr: run 0.01, given 0.5 (RUN/config.yaml)"),
    (["training.initial_lr=0.5", "model.patch_size=[16,32,32]", "training.num_epochs=9"], ["training.num_epochs"],
     "in 2 key(s): model.patch_size: run [32, 32, 32], given [16, 32, 32]; training.initial_lr"),
    (["training.num_epochs=9"], [], "training.num_epochs"),
])
def test_resume_config_lists_every_forbidden_difference(given, allow, message):
    with pytest.raises(ConfigError) as e:
        resume_config(_cfg(), _cfg(*given), allow, where="RUN/config.yaml")
    assert message in str(e.value) and "RUN/config.yaml" in str(e.value)


@pytest.mark.parametrize("allow, message", [
    (["model.patch_size"], "cannot change on resume"),
    (["training.no_such_key"], "no such config key"),
])
def test_allow_config_change_is_checked(allow, message):
    with pytest.raises(ConfigError, match=message):
        resume_config(_cfg(), None, allow)


def test_every_changeable_key_exists():
    from nninteractive_train.config.resume import flatten

    assert set(CHANGEABLE_ON_RESUME) <= set(flatten(to_dict(_cfg())))


def test_fields_set_from_a_model_folder_count_as_equal():
    saved = _cfg("model.pretrained=/models/v1", "model.export_patch_size=[96,96,96]")
    saved.model.architecture = {"network_class_name": "X", "arch_kwargs": {"n_stages": 4}}
    out = resume_config(saved, _cfg(), [])  # the YAML given again knows nothing of the folder
    assert out.model.architecture == saved.model.architecture and out.model.pretrained == "/models/v1"


def test_keys_of_the_environment_are_the_runs():
    saved = _cfg("training.compile=true", "training.num_data_workers=1")  # as nnUNet_compile / n_proc_DA said
    out = resume_config(saved, _cfg(), [])
    assert out.training.compile is True and out.training.num_data_workers == 1
    out = resume_config(saved, _cfg("training.num_data_workers=3"), ["training.num_data_workers"])
    assert out.training.num_data_workers == 3 and out.training.compile is True


def test_config_hash():
    assert config_hash(_cfg()) == config_hash(to_dict(_cfg())) and len(config_hash(_cfg())) == 16
    assert config_hash(_cfg()) != config_hash(_cfg("training.seed=1"))


def _state(**kw) -> TrainState:
    args = dict(epoch=3, iteration=2, network={"w": torch.ones(2)}, optimizer={"state": {}}, grad_scaler=None,
                logging={}, best_ema=0.5, train_seconds=12.0, config=to_dict(_cfg()),
                ranks=[RankState(0, rng_state(), {"rng": 1}, {"train": {0: {"worker": 0}}}, [0.4, 0.3])],
                extra={"trainer_name": "nnInteractiveTrainer"})
    return TrainState(**dict(args, **kw))


def test_state_round_trip(tmp_path):
    path = tmp_path / "ck.pth"
    assert save_or_keep(_state().to_checkpoint(), path) is None
    ck = load(path)
    assert ck["format"] == FORMAT and ck["format_version"] == VERSION and ck["config_hash"] == _state().config_hash
    assert ck["current_epoch"] == 3 and ck["trainer_name"] == "nnInteractiveTrainer"  # nnU-Net's key names
    back = TrainState.from_checkpoint(ck, path)
    assert (back.epoch, back.iteration, back.train_seconds) == (3, 2, 12.0)
    assert back.ranks[0].epoch_losses == [0.4, 0.3] and back.ranks[0].loaders == {"train": {0: {"worker": 0}}}
    assert back.rank_state(0, 1) is back.ranks[0] and back.rank_state(0, 2) is None  # another world size


@pytest.mark.parametrize("content, message", [
    ([1, 2], "holds a list"),
    ({"state_dict": {}}, "missing network_weights, optimizer_state, current_epoch, run_config"),
    ("newer", "version 99"),
])
def test_foreign_checkpoints_are_named(tmp_path, content, message):
    if content == "newer":
        content = dict(_state().to_checkpoint(), format_version=99)
    with pytest.raises(CheckpointError) as e:
        TrainState.from_checkpoint(content, tmp_path / "ck.pth")
    assert message in str(e.value) and e.value.file == str(tmp_path / "ck.pth")


def test_truncated_checkpoint_is_named(tmp_path):
    path = tmp_path / "checkpoint_latest.pth"
    save_or_keep(_state().to_checkpoint(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError) as e:
        load(path)
    assert "the checkpoint cannot be read (truncated" in str(e.value) and e.value.file == str(path)


def test_legacy_checkpoint_resumes_at_its_epoch():
    ck = _state().to_checkpoint()
    for k in ("format", "format_version", "iteration"):
        del ck[k]
    ck["rank_states"] = [{"rng": {"s": 1}, "pool": {"seq": 4}}]  # version 1: each rank's interaction state
    state = TrainState.from_checkpoint(ck)
    assert state.iteration == 0 and state.ranks[0].interaction == {"rng": {"s": 1}, "pool": {"seq": 4}}
    assert state.ranks[0].rng is None


def test_rng_state_restores_every_generator():
    state = rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1]) and first[2] == again[2]


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint_latest.pth"
    assert save_or_keep({"epoch": 1}, path) is None
    real_save = torch.save

    def full_disk(obj, f, *a, **k):
        real_save({"epoch": "partial"}, f)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    message = save_or_keep({"epoch": 2}, path)
    assert "No space left on device" in message and "errno 28" in message
    monkeypatch.undo()
    assert load(path) == {"epoch": 1} and os.listdir(tmp_path) == [path.name]


@pytest.mark.parametrize("recorded, supervoxels, configured, bad_file", [
    (None, None, 1.0, None),  # candidates from before the record: power 1
    (2.0, 2.0, 2.0, None),
    (2.0, None, 1.0, "centers/info.json"),
    (1.0, 3.0, 1.0, "supervoxels/index.json"),
])
def test_center_bias_must_match_the_candidates(tmp_path, recorded, supervoxels, configured, bad_file):
    from nninteractive_train.data.centers import CenterConfig, check_center_bias, save_centers_info

    (tmp_path / "centers").mkdir()
    if recorded is not None:
        save_centers_info(tmp_path / "centers", CenterConfig(power=recorded))
    if supervoxels is not None:
        (tmp_path / "supervoxels").mkdir()
        (tmp_path / "supervoxels" / "index.json").write_text(json.dumps({"centers": {"power": supervoxels}}))
    if bad_file is None:
        check_center_bias(tmp_path, configured)
    else:
        with pytest.raises(ValueError, match=f"{tmp_path / bad_file}.*data.center_bias"):
            check_center_bias(tmp_path, configured)
