"""Test-session set-up: nnU-Net reads its folder variables at import time, so they are pointed at a fresh
temporary tree here, before any test imports nnunetv2."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

_ROOT = Path(tempfile.mkdtemp(prefix="nni_test_"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
for _name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
    os.environ[_name] = str(_ROOT / _name)
    (_ROOT / _name).mkdir(parents=True, exist_ok=True)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def nnunet_dirs() -> dict:
    """The session's nnU-Net folders (raw, preprocessed, results)."""
    return {k: Path(os.environ[k]) for k in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
