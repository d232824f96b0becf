"""Everything between ``nnInteractive_train`` and the trainer: checks before any work, ranks, run folder,
resume and fine-tuning start."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

from nninteractive_train.config import RunConfig, from_dict, resume_config, save_config
from nninteractive_train.files import atomic_write_json
from nninteractive_train.distributed import DistEnv, init_distributed, resolve_env, split_batch
from nninteractive_train.nnunet_env import apply_env
from nninteractive_train.paths import SetupError, find_dataset, require_env

CHECKPOINTS = {"final": "checkpoint_final.pth", "best": "checkpoint_best.pth", "latest": "checkpoint_latest.pth"}


def load_plans(dataset_id: int, cfg: RunConfig) -> tuple[dict, dict, Path]:
    """The plans with the interactive configuration derived from ``cfg.model``, the dataset.json, and the
    preprocessed dataset folder. Clear errors for anything missing."""
    from nninteractive_train.planning.plans import interactive_configuration

    pre = find_dataset(require_env("nnUNet_preprocessed"), dataset_id)
    plans_file = pre / f"{cfg.plans_identifier}.json"
    if not plans_file.is_file():
        raise SetupError(f"no plans {cfg.plans_identifier} for dataset {dataset_id}", plans_file,
                         hint=f"run nnInteractive_plan_and_preprocess -d {dataset_id} first")
    plans = json.loads(plans_file.read_text())
    base = plans["configurations"].get("3d_fullres")
    if base is None:
        raise SetupError(f"{plans_file} has no 3d_fullres configuration")
    data_dir = pre / base["data_identifier"]
    if not data_dir.is_dir() or not any(data_dir.iterdir()):
        raise SetupError(f"the preprocessed data of dataset {dataset_id} are missing", data_dir,
                         hint=f"run nnInteractive_plan_and_preprocess -d {dataset_id}")
    # derived from the config, not read from the plans, so model.* overrides need no re-planning
    try:
        plans["configurations"][cfg.model.configuration] = interactive_configuration(base, cfg.model)
    except ValueError as e:
        raise SetupError(str(e)) from None
    dataset_json = json.loads((pre / "dataset.json").read_text())
    return plans, dataset_json, pre


def adopt_pretrained(cfg: RunConfig, model_dir: str | os.PathLike) -> tuple[RunConfig, int]:
    """``cfg`` with the network of an nnInteractive model folder (the official release or any export): its
    architecture, and its inference patch as the export patch unless one is set. The training patch, batch, data
    and schedule stay the run's. Returns (new config, the folder's number of image channels)."""
    from nninteractive_train.planning.plans import read_model_folder

    try:
        info = read_model_folder(model_dir)
    except ValueError as e:
        raise SetupError(str(e)) from None
    new = copy.deepcopy(cfg)
    new.model.architecture = info["architecture"]
    new.model.pretrained = str(Path(model_dir).resolve())
    if new.model.export_patch_size is None:
        new.model.export_patch_size = info["patch_size"]
    return new, info["channels"]


def prepare_run_dir(run_dir: Path, cfg: RunConfig, dataset_id: int, resume: bool, env: DistEnv,
                    pretrained: str | None = None) -> None:
    """Create the run folder (rank 0) and write the resolved config and ``run_info.json`` (dataset, start time,
    commit, pretrained folder, kept on resume); refuse to overwrite another run. A pretrained folder's
    ``LICENSE`` is copied into the run folder: derived weights carry its terms (``export/card.py``)."""
    if env.rank != 0:
        return
    import shutil

    from nninteractive_train.export.card import PRETRAINED_LICENSE, now_iso, repository_commit

    config_file = run_dir / "config.yaml"
    if config_file.exists() and not resume:
        raise SetupError("the run folder already holds a run", run_dir,
                         hint="pass --resume to continue it, or choose another --output")
    run_dir.mkdir(parents=True, exist_ok=True)
    if not config_file.exists() or run_config_of(run_dir) != cfg:  # a resume rewrites it only for allowed changes
        save_config(cfg, config_file)
    info_file = run_dir / "run_info.json"
    info = json.loads(info_file.read_text()) if resume and info_file.is_file() else {
        "started": now_iso(), "commit": repository_commit(),
        "pretrained": str(Path(pretrained).resolve()) if pretrained else None}
    info.update(dataset_id=dataset_id, configuration=cfg.model.configuration,
                plans_identifier=cfg.plans_identifier, trainer="nnInteractiveTrainer")
    atomic_write_json(info_file, info)
    if pretrained and (Path(pretrained) / "LICENSE").is_file():
        shutil.copyfile(Path(pretrained) / "LICENSE", run_dir / PRETRAINED_LICENSE)


def resume_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint to resume from: latest, else final (a finished run that ``--allow-config-change
    training.num_epochs`` may extend), else None."""
    for name in ("latest", "final"):
        if (run_dir / CHECKPOINTS[name]).is_file():
            return run_dir / CHECKPOINTS[name]
    return None


def load_pretrained(module, model_dir: str | os.PathLike) -> None:
    """Copy weights from an nnInteractive model folder (``fold_0/checkpoint_final.pth``) into ``module``.

    Raises:
        SetupError: the folder has no checkpoint, or tensors differ in name or shape (all mismatches listed).
    """
    from nninteractive_train.training import checkpoint as ckpt

    model_dir = Path(model_dir)
    files = sorted(model_dir.glob("fold_*/checkpoint_final.pth")) or sorted(model_dir.glob("checkpoint_*.pth"))
    if not files:
        raise SetupError(f"{model_dir} holds no fold_*/checkpoint_final.pth (an nnInteractive model folder)")
    weights = ckpt.clean_state_dict(ckpt.model_weights(ckpt.load(files[0])))
    own = module.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    shape = [f"{k}: model {tuple(own[k].shape)} vs checkpoint {tuple(weights[k].shape)}"
             for k in sorted(set(own) & set(weights)) if own[k].shape != weights[k].shape]
    if missing or unexpected or shape:
        lines = [f"the architecture in {files[0]} does not match this run's:"]
        lines += [f"  missing in checkpoint: {k}" for k in missing[:10]] + (["  …"] if len(missing) > 10 else [])
        lines += [f"  not in model: {k}" for k in unexpected[:10]] + (["  …"] if len(unexpected) > 10 else [])
        lines += [f"  shape {s}" for s in shape[:10]] + (["  …"] if len(shape) > 10 else [])
        lines.append("the folder's plans.json does not describe its checkpoint's network")
        raise SetupError("\n".join(lines))
    module.load_state_dict(weights)


def resolve_config(run_dir: Path, cfg: RunConfig | None, resume: bool,
                   allow_config_change: tuple[str, ...] | list[str] = ()) -> RunConfig:
    """The config this process trains with. A new run: ``cfg``. A resume: the run folder's ``config.yaml``, with
    only the keys in ``allow_config_change`` taken from ``cfg`` (the config given again, None = none given); any
    other difference is a ``ConfigError`` listing the keys (``config.resume_config``)."""
    config_file = run_dir / "config.yaml"
    if not (resume and config_file.is_file()):
        if cfg is None:
            raise SetupError(f"{config_file} not found: {run_dir} is not a run folder to resume")
        return cfg
    return resume_config(run_config_of(run_dir), cfg, allow_config_change, where=str(config_file))


def read_resume_state(ckpt_file: Path, cfg: RunConfig):
    """The training state in ``ckpt_file``, checked before any work: one ``CheckpointError`` naming the file
    when it is truncated, foreign, or was written under a config that differs from the run's in keys that may
    not change."""
    from nninteractive_train.config import CHANGEABLE_ON_RESUME, config_diff
    from nninteractive_train.training import checkpoint as ckpt
    from nninteractive_train.training.state import TrainState

    state = TrainState.from_checkpoint(ckpt.load(ckpt_file), ckpt_file)
    fixed = [k for k in config_diff(state.config, cfg) if k not in CHANGEABLE_ON_RESUME]
    if fixed:
        raise ckpt.CheckpointError(f"the checkpoint was written by a run with another config than the run folder's "
                                   f"config.yaml (differing: {', '.join(fixed)})", ckpt_file,
                                   hint="it is not this run's checkpoint, or config.yaml was edited")
    return state


def train(dataset_id: int, cfg: RunConfig | None, run_dir: str | os.PathLike, *, resume: bool = False,
          pretrained: str | None = None, use_cuda: bool | None = None,
          allow_config_change: tuple[str, ...] | list[str] = ()):
    """Train ``dataset_id`` with ``cfg`` into ``run_dir`` on this process's rank.

    On ``resume`` the run folder's config.yaml is the config (see ``resolve_config``; ``cfg`` None = use it as
    it is) and checkpoint_latest.pth the state. Returns the trainer after training, or None when ``resume``
    finds the run already complete.
    """
    import torch

    run_dir = Path(run_dir).resolve()
    saved_config = resume and (run_dir / "config.yaml").is_file()
    cfg = resolve_config(run_dir, cfg, resume, allow_config_change)
    try:
        env = resolve_env()
        split_batch(cfg.model.global_batch_size, env.world_size)  # fails before any work
    except ValueError as e:
        raise SetupError(str(e)) from None
    require_env("nnUNet_raw")
    require_env("nnUNet_results")
    # nnUNet_compile / nnUNet_n_proc_DA, as nnU-Net reads them (nnunet_env.py); both may change on resume
    cfg = apply_env(cfg)
    ckpt_file = resume_checkpoint(run_dir) if resume else None
    state = read_resume_state(ckpt_file, cfg) if ckpt_file is not None else None
    if state is not None and state.epoch >= cfg.training.num_epochs:
        print(f"{run_dir} is complete ({ckpt_file.name} is at epoch {state.epoch} of {cfg.training.num_epochs}); "
              f"nothing to resume")
        return None
    folder_channels = None
    if pretrained is not None and not resume:
        cfg, folder_channels = adopt_pretrained(cfg, pretrained)
    plans, dataset_json, pre = load_plans(dataset_id, cfg)
    if folder_channels is not None and folder_channels != len(dataset_json["channel_names"]):
        raise SetupError(f"{pretrained} takes {folder_channels} image channel(s) (its dataset.json), but dataset "
                         f"{dataset_id} has {len(dataset_json['channel_names'])} "
                         f"({dataset_json['channel_names']}): the network's input layer cannot take them")
    if cfg.training.fold != "all" and env.is_distributed and not (pre / "splits_final.json").is_file():
        raise SetupError(f"{pre / 'splits_final.json'} is missing: every rank would write it; run one "
                         f"single-process epoch first or create it (nnU-Net's generate_crossval_split)")
    if resume and ckpt_file is None and saved_config:
        print(f"{run_dir} has no checkpoint yet; starting from epoch 0")
    use_cuda = torch.cuda.is_available() if use_cuda is None else use_cuda
    device = init_distributed(env, use_cuda, timeout_s=cfg.training.dist_timeout_s)
    peer_lost = False
    try:
        prepare_run_dir(run_dir, cfg, dataset_id, resume, env, pretrained)
        if env.is_distributed:
            torch.distributed.barrier()
        from nninteractive_train.training.trainer import build_trainer

        seed_process(cfg.training.seed, env.rank)
        trainer = build_trainer(cfg, plans, dataset_json, run_dir, env, device)
        if state is not None:
            trainer.load_checkpoint(state)
            trainer.print_to_log_file(f"resumed from {ckpt_file} at epoch {state.epoch}, iteration "
                                      f"{state.iteration}")
            state = None  # the trainer holds it until it is restored, then lets it go
        elif pretrained is not None:
            trainer.initialize()
            load_pretrained(trainer.module, pretrained)
            trainer.print_to_log_file(f"initialised from pretrained weights in {pretrained}")
        try:
            trainer.run_training()
        except RuntimeError as e:
            if env.is_distributed and is_peer_failure(e):
                peer_lost = True
                raise lost_rank_error(env, e) from None
            raise
    finally:
        # a group with a dead or hung peer is not torn down (NCCL's destroy can wait for it forever): the
        # process ends at once instead (LostRankError.exit_at_once)
        if env.is_distributed and torch.distributed.is_initialized() and not peer_lost:
            torch.distributed.destroy_process_group()
    return trainer


def seed_process(seed: int, rank: int) -> None:
    """Seed the process's global generators: torch alike on every rank (the same initial weights for a seed;
    DDP broadcasts rank 0's anyway), numpy's and Python's per rank (batchgenerators' augmentations draw from
    numpy's global generator in the trainer process when there are no augmentation workers)."""
    import random

    import numpy as np
    import torch

    from nninteractive_train.training.schedule import int_seed

    torch.manual_seed(seed)
    np.random.seed(int_seed(seed, rank, 5))
    random.seed(int_seed(seed, rank, 6))


def is_peer_failure(error: BaseException) -> bool:
    """Whether ``error`` is a collective that failed because another rank died or stopped answering."""
    import torch.distributed as dist

    if isinstance(error, getattr(dist, "DistError", ())):
        return True
    text = str(error)
    return any(s in text for s in ("gloo", "Gloo", "NCCL", "Connection reset", "Connection closed", "Timed out",
                                   "timed out", "ProcessGroup"))


def lost_rank_error(env: DistEnv, error: BaseException):
    from nninteractive_train.training.loop import LostRankError

    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return LostRankError(f"rank {env.rank} of {env.world_size} lost contact with the other ranks: another rank died "
                         f"or stopped answering ({first[:300]}); every rank stops",
                         hint="resume from the last checkpoint with --resume")


def run_config_of(run_dir: str | os.PathLike) -> RunConfig:
    """The resolved config saved in a run folder; a clear error naming the file if it is missing or broken."""
    import yaml

    from nninteractive_train.config import ConfigError

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise SetupError("not a run folder: it has no config.yaml", run_dir,
                         hint="start the run without --resume, or give the run folder")
    hint = "restore it: every checkpoint of the run holds its config (run_config)"
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"the run's config is not valid YAML: {str(e).splitlines()[0]}", path, hint) from None
    if not isinstance(data, dict):
        raise ConfigError("the run's config is empty or not a mapping", path, hint)
    try:
        return from_dict(data)
    except ConfigError as e:
        raise ConfigError(e.what, path, hint) from None


__all__ = ["train", "load_plans", "load_pretrained", "run_config_of"]
