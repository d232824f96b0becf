"""Everything between ``nnInteractive_train`` and the trainer: checks before any work, ranks, run folder,
resume and fine-tuning start."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

from nninteractive_train.config import RunConfig, from_dict, save_config
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
    """The checkpoint to resume from: latest, else None (with final present, the run is complete)."""
    latest = run_dir / CHECKPOINTS["latest"]
    return latest if latest.is_file() else None


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
    weights = ckpt.clean_state_dict(ckpt.load(files[0])["network_weights"])
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


def train(dataset_id: int, cfg: RunConfig, run_dir: str | os.PathLike, *, resume: bool = False,
          pretrained: str | None = None, use_cuda: bool | None = None):
    """Train ``dataset_id`` with ``cfg`` into ``run_dir`` on this process's rank.

    Returns the trainer after training, or None when ``resume`` finds the run already complete.
    """
    import torch

    try:
        env = resolve_env()
        split_batch(cfg.model.global_batch_size, env.world_size)  # fails before any work
    except ValueError as e:
        raise SetupError(str(e)) from None
    run_dir = Path(run_dir).resolve()
    require_env("nnUNet_raw")
    require_env("nnUNet_results")
    cfg = apply_env(cfg)  # nnUNet_compile / nnUNet_n_proc_DA, as nnU-Net reads them (nnunet_env.py)
    if resume and (run_dir / "config.yaml").is_file() and cfg.model.architecture is None:
        # a run started from a model folder keeps that network whatever config the resume was given
        saved = run_config_of(run_dir).model
        cfg = copy.deepcopy(cfg)
        cfg.model.architecture, cfg.model.pretrained = saved.architecture, saved.pretrained
        cfg.model.export_patch_size = cfg.model.export_patch_size or saved.export_patch_size
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
    ckpt_file = resume_checkpoint(run_dir) if resume else None
    if resume and ckpt_file is None:
        if (run_dir / CHECKPOINTS["final"]).is_file():
            print(f"{run_dir} is complete (checkpoint_final.pth exists); nothing to resume")
            return None
        if (run_dir / "config.yaml").exists():
            print(f"{run_dir} has no checkpoint_latest.pth yet; starting from epoch 0")
    use_cuda = torch.cuda.is_available() if use_cuda is None else use_cuda
    device = init_distributed(env, use_cuda)
    try:
        prepare_run_dir(run_dir, cfg, dataset_id, resume, env, pretrained)
        if env.is_distributed:
            torch.distributed.barrier()
        from nninteractive_train.training.trainer import build_trainer

        torch.manual_seed(cfg.training.seed)  # the same initial weights for a seed (DDP broadcasts rank 0's anyway)
        trainer = build_trainer(cfg, plans, dataset_json, run_dir, env, device)
        if ckpt_file is not None:
            trainer.load_checkpoint(str(ckpt_file))
            trainer.print_to_log_file(f"resumed from {ckpt_file} at epoch {trainer.current_epoch}")
        elif pretrained is not None:
            trainer.initialize()
            load_pretrained(trainer.module, pretrained)
            trainer.print_to_log_file(f"initialised from pretrained weights in {pretrained}")
        trainer.run_training()
    finally:
        if env.is_distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return trainer


def run_config_of(run_dir: str | os.PathLike) -> RunConfig:
    """The resolved config saved in a run folder; a clear error naming the file if it is missing or broken."""
    import yaml

    from nninteractive_train.config import ConfigError

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise SetupError("not a run folder: it has no config.yaml", run_dir,
                         hint="start the run without --resume, or give the run folder")
    hint = "give --config FILE (the run's config) to resume with it"
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
