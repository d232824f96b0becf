import os

import pytest
import torch

from nninteractive_train.training.checkpoint import CheckpointError, atomic_save, clean_state_dict, load


def test_clean_state_dict_strips_wrappers():
    sd = {"module._orig_mod.a.weight": 1, "_orig_mod.module.b": 2, "c": 3}
    assert clean_state_dict(sd) == {"a.weight": 1, "b": 2, "c": 3}


def test_atomic_save_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "ck.pth"
    atomic_save({"x": torch.ones(2)}, target)
    assert torch.equal(load(target)["x"], torch.ones(2))

    def boom(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        atomic_save({"x": torch.zeros(2)}, target)
    assert torch.equal(load(target)["x"], torch.ones(2))  # the old file is intact
    assert sorted(os.listdir(tmp_path)) == ["ck.pth"]  # and no temp file is left


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pth"):  # a user error: one line naming the file
        load(bad)
