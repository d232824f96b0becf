"""Resolving nnU-Net dataset folders from ids, names or paths.

nnU-Net's own helpers (``nnunetv2.paths``) read ``nnUNet_raw`` / ``nnUNet_preprocessed`` once at import time;
these read the environment on every call so that tests (and long-lived processes) can change it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from nninteractive_train.errors import SetupError, UsageError

_DATASET_RE = re.compile(r"^Dataset(\d{3})_(.+)$")


def env_folder(var: str) -> Path:
    """The folder named by environment variable ``var`` (e.g. ``"nnUNet_raw"``); a clear error if unset."""
    value = os.environ.get(var)
    if not value:
        raise SetupError(f"environment variable {var} is not set; nnU-Net needs it to locate datasets",
                         hint="export nnUNet_raw, nnUNet_preprocessed and nnUNet_results (README, 'Setup')")
    return Path(value)


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """nnU-Net's folder name for a dataset: ``Dataset{id:03d}_{name}``."""
    if not 0 < int(dataset_id) < 1000:
        raise UsageError(f"dataset id must be in 1..999, got {dataset_id}")
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        raise UsageError(f"dataset name {name!r} may only contain letters, digits, '_' and '-'")
    return f"Dataset{int(dataset_id):03d}_{name}"


def find_dataset(ref: int | str, root: str | os.PathLike | None = None, *, var: str = "nnUNet_raw") -> Path:
    """Locate a dataset folder.

    Args:
        ref: an integer id (``991``), a string id (``"991"``), a folder name (``"Dataset991_Demo"``) or a path
            to an existing folder.
        root: the folder to search; default the folder in environment variable ``var``.
        var: which nnU-Net environment variable holds the root.

    Returns:
        The dataset folder. Raises :class:`SetupError` (naming the root) if none or several match.
    """
    if isinstance(ref, (str, os.PathLike)) and not str(ref).isdigit():
        p = Path(ref).expanduser()
        if p.is_dir():
            return p.resolve()
        if os.sep in str(ref) or str(ref).startswith("."):
            raise SetupError("dataset folder does not exist", p)
    base = Path(root) if root is not None else env_folder(var)
    if not base.is_dir():
        raise SetupError(f"the {var} folder does not exist", base)
    if str(ref).isdigit():
        prefix = f"Dataset{int(ref):03d}_"
        hits = sorted(p for p in base.iterdir() if p.is_dir() and p.name.startswith(prefix))
    else:
        hits = [base / str(ref)] if (base / str(ref)).is_dir() else []
    if len(hits) > 1:
        raise SetupError(f"{len(hits)} dataset folders for {ref!r} ({', '.join(h.name for h in hits)})", base,
                         hint="dataset ids must be unique: rename or remove one")
    if not hits:
        what = (f"no dataset with id {int(ref)}: no folder Dataset{int(ref):03d}_* in {var}" if str(ref).isdigit()
                else f"no dataset folder {ref} in {var}")
        raise SetupError(what, base, hint=_missing_hint(ref, var))
    return hits[0]


def _missing_hint(ref, var: str) -> str:
    """The step that creates a dataset's folder under ``var``."""
    if var == "nnUNet_raw":
        return "put the raw dataset there (nnU-Net's format) or generate one with nnInteractive_make_synthetic"
    if var == "nnUNet_preprocessed":
        return f"run nnInteractive_plan_and_preprocess -d {ref} first"
    return f"train it first (nnInteractive_train -d {ref})"


def dataset_id_of_ref(ref: int | str, var: str = "nnUNet_raw") -> int:
    """The numeric id of ``-d``'s value: an id as is; a ``DatasetXXX_Name`` after checking that the folder exists
    under ``$var`` (so that a misspelt name is an error, not another dataset with the same id)."""
    if isinstance(ref, int) or str(ref).isdigit():
        return int(ref)
    return dataset_id_of(find_dataset(str(ref), var=var))


def dataset_id_of(folder: str | os.PathLike) -> int | None:
    """The numeric id of a ``DatasetXXX_NAME`` folder, or None for other names."""
    m = _DATASET_RE.match(Path(folder).name)
    return int(m.group(1)) if m else None


def find_preprocessed_config(dataset: int | str, plans: str | None = None, configuration: str | None = None) -> Path:
    """Locate the folder of preprocessed cases (``.b2nd``) of a dataset.

    Args:
        dataset: id, name or path of the dataset in ``$nnUNet_preprocessed``.
        plans: plans identifier (e.g. ``"nnUNetResEncUNetLPlans_noResampling"``); None: any.
        configuration: configuration name in the plans (e.g. ``"3d_fullres"``); None: any.

    The folder is the configuration's ``data_identifier`` from ``<plans>.json`` when both are given and the plans
    file exists, else ``<plans>_<configuration>``; with either missing, the single subfolder holding ``.b2nd``
    files that matches the given parts is used, and several candidates are an error that lists them.
    """
    base = find_dataset(dataset, var="nnUNet_preprocessed")
    if plans and configuration:
        plans_file = base / f"{plans}.json"
        if plans_file.is_file():
            import json

            cfgs = json.loads(plans_file.read_text()).get("configurations", {})
            if configuration not in cfgs:
                raise SetupError(f"no configuration {configuration!r} in the plans (it has {sorted(cfgs)})",
                                 plans_file)
            ident = _data_identifier(cfgs, configuration, plans)
            if (base / ident).is_dir():
                return base / ident
        folder = base / f"{plans}_{configuration}"
        if folder.is_dir():
            return folder
        raise SetupError(f"no preprocessed folder for plans {plans!r}, configuration {configuration!r}", base,
                         hint=f"run nnInteractive_plan_and_preprocess -d {dataset} first")
    cands = sorted(
        p for p in base.iterdir()
        if p.is_dir() and any(f.suffix == ".b2nd" for f in p.iterdir())
        and (plans is None or p.name.startswith(plans + "_"))
        and (configuration is None or p.name.endswith("_" + configuration))
    )
    if len(cands) != 1:
        what = "no" if not cands else f"{len(cands)}"
        names = ", ".join(c.name for c in cands)
        raise SetupError(f"{what} preprocessed folders with .b2nd files{': ' + names if cands else ''}", base,
                         hint="name the plans identifier and configuration (-p, -c)" if cands else
                         f"run nnInteractive_plan_and_preprocess -d {dataset} first")
    return cands[0]


def _data_identifier(cfgs: dict, configuration: str, plans: str) -> str:
    cfg = cfgs[configuration]
    # configurations may inherit their data_identifier from a parent configuration
    while "data_identifier" not in cfg and "inherits_from" in cfg:
        cfg = {**cfgs[cfg["inherits_from"]], **{k: v for k, v in cfg.items() if k != "inherits_from"}}
    return cfg.get("data_identifier", f"{plans}_{configuration}")
