"""Resolving nnU-Net dataset folders from ids, names or paths.

nnU-Net's own helpers (``nnunetv2.paths``) read ``nnUNet_raw`` / ``nnUNet_preprocessed`` once at import time;
these read the environment on every call so that tests (and long-lived processes) can change it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_DATASET_RE = re.compile(r"^Dataset(\d{3})_(.+)$")


def env_folder(var: str) -> Path:
    """The folder named by environment variable ``var`` (e.g. ``"nnUNet_raw"``); a clear error if unset."""
    value = os.environ.get(var)
    if not value:
        raise RuntimeError(f"environment variable {var} is not set; nnU-Net needs it to locate datasets")
    return Path(value)


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """nnU-Net's folder name for a dataset: ``Dataset{id:03d}_{name}``."""
    if not 0 < int(dataset_id) < 1000:
        raise ValueError(f"dataset id must be in 1..999, got {dataset_id}")
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
        raise ValueError(f"dataset name {name!r} may only contain letters, digits, '_' and '-'")
    return f"Dataset{int(dataset_id):03d}_{name}"


def find_dataset(ref: int | str, root: str | os.PathLike | None = None, *, var: str = "nnUNet_raw") -> Path:
    """Locate a dataset folder.

    Args:
        ref: an integer id (``991``), a string id (``"991"``), a folder name (``"Dataset991_Demo"``) or a path
            to an existing folder.
        root: the folder to search; default the folder in environment variable ``var``.
        var: which nnU-Net environment variable holds the root.

    Returns:
        The dataset folder. Raises ``FileNotFoundError`` (naming the root) if none or several match.
    """
    if isinstance(ref, (str, os.PathLike)) and not str(ref).isdigit():
        p = Path(ref).expanduser()
        if p.is_dir():
            return p.resolve()
        if os.sep in str(ref) or str(ref).startswith("."):
            raise FileNotFoundError(f"dataset folder {p} does not exist")
    base = Path(root) if root is not None else env_folder(var)
    if not base.is_dir():
        raise FileNotFoundError(f"{var} folder {base} does not exist")
    if str(ref).isdigit():
        prefix = f"Dataset{int(ref):03d}_"
        hits = sorted(p for p in base.iterdir() if p.is_dir() and p.name.startswith(prefix))
    else:
        hits = [base / str(ref)] if (base / str(ref)).is_dir() else []
    if len(hits) != 1:
        what = "no" if not hits else f"{len(hits)} ({', '.join(h.name for h in hits)})"
        raise FileNotFoundError(f"{what} dataset folder for {ref!r} in {base}")
    return hits[0]


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
                raise ValueError(f"{plans_file}: no configuration {configuration!r}; has {sorted(cfgs)}")
            ident = _data_identifier(cfgs, configuration, plans)
            if (base / ident).is_dir():
                return base / ident
        folder = base / f"{plans}_{configuration}"
        if folder.is_dir():
            return folder
        raise FileNotFoundError(
            f"no preprocessed folder for plans {plans!r}, configuration {configuration!r} in {base}")
    cands = sorted(
        p for p in base.iterdir()
        if p.is_dir() and any(f.suffix == ".b2nd" for f in p.iterdir())
        and (plans is None or p.name.startswith(plans + "_"))
        and (configuration is None or p.name.endswith("_" + configuration))
    )
    if len(cands) != 1:
        what = "no" if not cands else f"{len(cands)}"
        names = ", ".join(c.name for c in cands)
        raise FileNotFoundError(
            f"{what} preprocessed folders with .b2nd files in {base}{': ' + names if cands else ''}; "
            f"name the plans identifier and configuration"
        )
    return cands[0]


def _data_identifier(cfgs: dict, configuration: str, plans: str) -> str:
    cfg = cfgs[configuration]
    # configurations may inherit their data_identifier from a parent configuration
    while "data_identifier" not in cfg and "inherits_from" in cfg:
        cfg = {**cfgs[cfg["inherits_from"]], **{k: v for k, v in cfg.items() if k != "inherits_from"}}
    return cfg.get("data_identifier", f"{plans}_{configuration}")
