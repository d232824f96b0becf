"""Checks a cluster submission runs before it queues: everything that would otherwise fail only once the job
starts (after its queue wait) or, worse, change the training silently.

Each check raises a :class:`~nninteractive_train.errors.UserError`: :class:`~nninteractive_train.errors.SetupError`
for the data and folders, :class:`~nninteractive_train.config.ConfigError` for the config; what is wrong, the
file concerned, and the fix as the hint.
"""

from __future__ import annotations

import json
from pathlib import Path

from nninteractive_train.config import ConfigError, RunConfig, to_dict
from nninteractive_train.distributed.env import split_batch
from nninteractive_train.errors import SetupError
from nninteractive_train.paths import require_env


def check_world(cfg: RunConfig, nodes: int, procs_per_node: int, source: str | None) -> int:
    """The number of training processes (nodes × processes per node); ``model.global_batch_size`` of ``source``
    (the config file; None for the defaults) must divide evenly over them."""
    world = nodes * procs_per_node
    try:
        split_batch(cfg.model.global_batch_size, world)
    except ValueError:
        raise ConfigError(f"model.global_batch_size={cfg.model.global_batch_size} cannot be split evenly over "
                          f"{world} processes ({nodes} node(s) x {procs_per_node})", source,
                          f"use a multiple of {world}, or other --nodes / --gpus-per-node") from None
    return world


def check_supervoxels(preprocessed: Path, data_dir: Path, cfg: RunConfig, dataset_id: int | str) -> int | None:
    """For a collection (a manifest beside the preprocessed data) with ``data.supervoxel_prob > 0``, the
    SuperVoxel index must exist, name at least one SuperVoxel, and every case it counts must have its file
    (the sampler would otherwise draw none, silently, or fail mid-training). Returns the number of SuperVoxels,
    or None when the run draws none."""
    from nninteractive_train.data.supervoxels.generate import INDEX_NAME, SUPERVOXEL_DIR
    from nninteractive_train.training.collection import has_manifest

    if cfg.data.supervoxel_prob <= 0 or not has_manifest(preprocessed):
        return None
    index = data_dir / SUPERVOXEL_DIR / INDEX_NAME
    fix = f"run nnInteractive_generate_supervoxels -d {dataset_id}, or set data.supervoxel_prob=0"
    if not index.is_file():
        raise SetupError(f"no SuperVoxels, but data.supervoxel_prob={cfg.data.supervoxel_prob}", index, fix)
    try:
        counts = {str(k): int(v) for k, v in json.loads(index.read_text())["counts"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise SetupError(f"not a SuperVoxel index ({e})", index, fix) from None
    if sum(counts.values()) == 0:
        raise SetupError("the SuperVoxel index lists no SuperVoxel in any case", index, fix)
    missing = [c for c, n in counts.items() if n > 0 and not (index.parent / f"{c}.npz").is_file()]
    if missing:
        raise SetupError(f"SuperVoxels of {len(missing)} case(s) in the index have no file (first: "
                         f"{missing[0]}.npz)", index, f"run nnInteractive_generate_supervoxels -d {dataset_id} again")
    return sum(counts.values())


def check_validation_raw(cfg: RunConfig) -> None:
    """``training.interactive_val_raw`` (when the validation runs) must be a raw dataset holding the named cases."""
    t = cfg.training
    if not t.interactive_val_raw or t.interactive_val_every <= 0:
        return
    from nninteractive_train.data.paths import find_dataset
    from nninteractive_train.evaluation.runner import list_cases

    try:
        folder = find_dataset(t.interactive_val_raw)
    except SetupError as e:
        raise SetupError(f"training.interactive_val_raw={t.interactive_val_raw}: {e.what}", e.file, e.hint) from None
    if not (folder / "dataset.json").is_file():
        raise SetupError("training.interactive_val_raw: the dataset has no dataset.json", folder / "dataset.json")
    ending = json.loads((folder / "dataset.json").read_text()).get("file_ending", ".nii.gz")
    have = set(list_cases(folder, "imagesTr", ending))
    missing = sorted(set(t.interactive_val_case_names or []) - have)
    if missing or not have:
        raise SetupError(f"training.interactive_val_raw: case(s) {missing or '(any)'} not in imagesTr",
                         folder / "imagesTr")


def check_run_folder(run_dir: Path, cfg: RunConfig) -> bool:
    """A run folder that already holds a run must hold this same config (a re-submission); returns whether it
    holds one. A different config would be overwritten under the checkpoints of the old one."""
    import yaml

    saved_file = run_dir / "config.yaml"
    if not saved_file.is_file():
        return False
    try:
        saved = yaml.safe_load(saved_file.read_text())
    except yaml.YAMLError as e:
        raise SetupError(f"the run folder's config is invalid YAML ({e})", saved_file,
                         "choose another --output") from None
    new = to_dict(cfg)
    if saved != new:
        diff = sorted(_differences(saved if isinstance(saved, dict) else {}, new))
        raise SetupError(f"the run folder holds another run's config (differs in {', '.join(diff[:6])}"
                         f"{' …' if len(diff) > 6 else ''})", saved_file,
                         f"continue that run with `sbatch {run_dir / 'submit.sbatch'}` or choose another --output")
    return True


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    out = []
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _differences(x, y, f"{prefix}{k}.")
        elif x != y:
            out.append(f"{prefix}{k}")
    return out


def preflight(dataset_id: int | str, cfg: RunConfig, *, nodes: int, procs_per_node: int, run_dir: Path,
              source: str | None) -> list[str]:
    """Every check above plus nnU-Net's folders, dataset, plans, preprocessed data and the patch geometry
    (``training.launch.load_plans``); returns one summary line per check for the user."""
    from nninteractive_train.data.paths import dataset_id_of_ref
    from nninteractive_train.training.launch import load_plans

    world = check_world(cfg, nodes, procs_per_node, source)
    for var in ("nnUNet_raw", "nnUNet_results"):
        require_env(var)
    dataset_id = dataset_id_of_ref(dataset_id, var="nnUNet_preprocessed")  # a name: its folder must exist
    plans, dataset_json, pre = load_plans(dataset_id, cfg)
    data_dir = pre / plans["configurations"]["3d_fullres"]["data_identifier"]
    if cfg.training.fold != "all" and world > 1 and not (pre / "splits_final.json").is_file():
        raise SetupError(f"training.fold={cfg.training.fold} needs splits_final.json, which every rank would write",
                         pre / "splits_final.json",
                         "create it first (nnU-Net's generate_crossval_split) or use training.fold=all")
    supervoxels = check_supervoxels(pre, data_dir, cfg, dataset_id)
    check_validation_raw(cfg)
    existing = check_run_folder(run_dir, cfg)
    per_rank = cfg.model.global_batch_size // world
    return [f"config {source or '(defaults)'}: valid; global batch {cfg.model.global_batch_size} = {world} processes x {per_rank}",
            f"data: {data_dir} ({len(dataset_json['channel_names'])} channel(s)), plans {cfg.plans_identifier}, "
            f"configuration {cfg.model.configuration} patch {cfg.model.patch_size}",
            "SuperVoxels: " + (f"{supervoxels} in {data_dir / 'supervoxels'}" if supervoxels else "not drawn"),
            f"run folder {run_dir}: " + ("re-submission of the same config" if existing else "new run")]
