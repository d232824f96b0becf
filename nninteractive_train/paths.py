"""nnU-Net's environment variables (nnUNet_raw, nnUNet_preprocessed, nnUNet_results) with clear errors."""

from __future__ import annotations

import os
from pathlib import Path

from nninteractive_train.errors import SetupError

__all__ = ["SetupError", "find_dataset", "require_env"]


def require_env(name: str) -> Path:
    """Return the folder named by environment variable ``name``, creating it; a clear error if unset."""
    value = os.environ.get(name)
    if not value:
        raise SetupError(f"environment variable {name} is not set",
                         hint="point nnUNet_raw, nnUNet_preprocessed and nnUNet_results at folders (README, 'Setup')")
    path = Path(value)
    path.mkdir(parents=True, exist_ok=True)
    return path


def find_dataset(root: Path, dataset: int | str) -> Path:
    """The folder of ``dataset`` (an id or a ``DatasetXXX_Name``) under ``root``; a clear error if missing or
    ambiguous (the hint names the command that creates it)."""
    from nninteractive_train.data.paths import find_dataset as find

    var = {os.environ.get(v): v for v in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}.get(
        str(root), "nnUNet_raw")
    return find(dataset if isinstance(dataset, str) else int(dataset), root, var=var)
