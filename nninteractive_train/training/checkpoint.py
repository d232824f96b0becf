"""Checkpoint files: atomic writes that keep the previous file when a write fails, clean state-dict keys, and
clear errors for files that cannot be read. What a checkpoint holds is ``state.TrainState``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from nninteractive_train.paths import SetupError


class CheckpointError(SetupError):
    """A checkpoint file that cannot be read or resumed from (truncated, foreign, newer format); the message
    names the file."""

_PREFIXES = ("module.", "_orig_mod.")


def clean_state_dict(state: dict) -> dict:
    """Strip DDP (``module.``) and torch.compile (``_orig_mod.``) prefixes, which the inference package
    cannot load (docs/model_folder.md)."""
    out = {}
    for k, v in state.items():
        changed = True
        while changed:
            changed = False
            for p in _PREFIXES:
                if k.startswith(p):
                    k, changed = k[len(p):], True
        out[k] = v
    return out


def model_weights(ck: dict) -> dict:
    """The weights a model is made of from a training checkpoint dict: the moving average when the run kept one
    (``training.ema_decay``), else the last weights; the last weights are what a resume continues."""
    return ck["ema"]["weights"] if ck.get("ema") else ck["network_weights"]


def atomic_save(obj, path: str | os.PathLike) -> None:
    """torch.save through a temp file in the same folder and a rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_or_keep(obj, path: str | os.PathLike) -> str | None:
    """``atomic_save``, but a failed write (full disk, quota, I/O error: any ``OSError``) only returns its
    reason: the previous file at ``path``, if any, is untouched and no temp file is left. None on success."""
    try:
        atomic_save(obj, path)
    except OSError as e:
        return f"{e.strerror or e} (errno {e.errno})" if e.errno else str(e)
    return None


def load(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint with a clear error for a missing or unreadable file.

    Raises:
        FileNotFoundError: no such file. CheckpointError: the file is truncated or not a torch file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch raises several types for truncated / foreign files
        first = str(e).splitlines()[0] if str(e) else ""
        raise CheckpointError(f"the checkpoint cannot be read (truncated or not a torch checkpoint: "
                              f"{type(e).__name__}: {first})", path,
                              hint="resume from another checkpoint of the run (rename it to this name)") from e
