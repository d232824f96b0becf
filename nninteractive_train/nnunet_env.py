"""nnU-Net's switches in the environment, read as nnU-Net 2.8.1 reads them.

| variable | nnU-Net reads it in | there it means | here |
|---|---|---|---|
| ``nnUNet_compile`` | ``nnUNetTrainer._do_i_compile`` | ``torch.compile`` the network iff the value lower-cased is one of ``true``/``1``/``t``; never on CPU, MPS or Windows; unset = compile | set: decides ``training.compile``; unset: the config decides (default off; the paper config on). Only CUDA compiles (the trainer) |
| ``nnUNet_n_proc_DA`` | ``default_n_proc_DA.get_allowed_n_proc_DA`` | augmentation processes per GPU, at most ``os.cpu_count()``; 0 = single-threaded (debugging) | set: replaces ``training.num_data_workers`` (same cap); unset: the config, else nnU-Net's host table |
| ``nnUNet_def_n_proc`` | ``nnunetv2.configuration.default_num_processes`` (import time) | default process count of fingerprinting, exports and evaluations (8 when unset) | default of every ``-np`` (data generation, collection build, preprocessing, SuperVoxels) |

All three are read on every call (nnU-Net reads ``nnUNet_def_n_proc`` once at import), so tests and long-lived
processes may change them.
"""

from __future__ import annotations

import copy
import os
from typing import Mapping

from nninteractive_train.errors import SetupError

TRUE_VALUES = ("true", "1", "t")  # nnU-Net's spelling of "on"; anything else is off


def _int_env(name: str, env: Mapping[str, str]) -> int | None:
    """The integer in ``env[name]``, None when unset or empty; a clear error for anything else."""
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise SetupError(f"environment variable {name}={value!r} is not an integer",
                         hint=f"unset it or give a number of processes") from None
    if number < 0:
        raise SetupError(f"environment variable {name}={value!r} is negative", hint="give a number >= 0")
    return number


def compile_from_env(configured: bool, env: Mapping[str, str] | None = None) -> bool:
    """Whether to ``torch.compile``: ``nnUNet_compile`` when set (on iff ``true``/``1``/``t``, any case, as
    nnU-Net), else ``configured`` (``training.compile``). The device rule (CUDA only) is the trainer's."""
    env = os.environ if env is None else env
    value = env.get("nnUNet_compile")
    return configured if value is None else value.lower() in TRUE_VALUES


def data_workers_from_env(configured: int | None, env: Mapping[str, str] | None = None) -> int | None:
    """Augmentation processes per rank: ``nnUNet_n_proc_DA`` when set (capped at ``os.cpu_count()`` as
    nnU-Net's ``get_allowed_n_proc_DA``), else ``configured`` (``training.num_data_workers``; None lets the
    trainer ask nnU-Net's host table)."""
    env = os.environ if env is None else env
    number = _int_env("nnUNet_n_proc_DA", env)
    return configured if number is None else min(number, os.cpu_count() or 1)


def default_num_processes(fallback: int, env: Mapping[str, str] | None = None) -> int:
    """``nnUNet_def_n_proc`` when set (nnU-Net's default process count), else ``fallback``; at least 1."""
    env = os.environ if env is None else env
    number = _int_env("nnUNet_def_n_proc", env)
    return fallback if number is None else max(number, 1)


def apply_env(cfg, env: Mapping[str, str] | None = None):
    """A copy of the RunConfig ``cfg`` with ``training.compile`` and ``training.num_data_workers`` as the
    environment decides (the run folder's config.yaml then records what ran); ``cfg`` itself is unchanged."""
    new = copy.deepcopy(cfg)
    new.training.compile = compile_from_env(cfg.training.compile, env)
    new.training.num_data_workers = data_workers_from_env(cfg.training.num_data_workers, env)
    return new
