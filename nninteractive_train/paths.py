"""nnU-Net's environment variables (nnUNet_raw, nnUNet_preprocessed, nnUNet_results) with clear errors."""

from __future__ import annotations

import os
from pathlib import Path


class SetupError(RuntimeError):
    """The environment or the inputs are not ready for the requested command."""


def require_env(name: str) -> Path:
    """Return the folder named by environment variable ``name``, creating it; a clear error if unset."""
    value = os.environ.get(name)
    if not value:
        raise SetupError(
            f"environment variable {name} is not set; point nnUNet_raw, nnUNet_preprocessed and nnUNet_results "
            f"at folders (see README, 'Setup')"
        )
    path = Path(value)
    path.mkdir(parents=True, exist_ok=True)
    return path


def find_dataset(root: Path, dataset_id: int) -> Path:
    """The ``DatasetXXX_*`` folder of ``dataset_id`` under ``root``; a clear error if missing or ambiguous."""
    hits = sorted(p for p in Path(root).glob(f"Dataset{int(dataset_id):03d}_*") if p.is_dir())
    if not hits:
        raise SetupError(f"no dataset with id {dataset_id} in {root} (expected a folder Dataset{int(dataset_id):03d}_*)")
    if len(hits) > 1:
        raise SetupError(f"dataset id {dataset_id} is ambiguous in {root}: {[h.name for h in hits]}")
    return hits[0]
