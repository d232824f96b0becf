"""Where runs live: nnU-Net's results tree, built with nnU-Net's own helpers.

    $nnUNet_results/DatasetXXX_Name/nnInteractiveTrainer__<plans>__<configuration>/fold_<fold>

``<plans>`` is the run config's ``plans_identifier`` (default ``nnInteractivePlans``), ``<configuration>`` its
``model.configuration`` (e.g. ``3d_fullres_ps192_bs24``), ``<fold>`` its ``training.fold`` (default ``all``), as
``nnunetv2.utilities.file_path_utilities.get_output_folder`` joins them for ``nnUNetv2_train``. ``--output``
still puts a run anywhere; ``export`` and ``evaluate`` find a run of this tree from ``-d`` (and ``-c``, ``-p``,
``-f`` where a dataset has several).
"""

from __future__ import annotations

import os
from pathlib import Path

from nninteractive_train.errors import SetupError

TRAINER_NAME = "nnInteractiveTrainer"
"""The trainer's name in folder names (``training.trainer.nnInteractiveTrainer.__name__``; a test keeps them
equal without importing the trainer here)."""


def dataset_name(dataset: int | str, var: str = "nnUNet_preprocessed") -> str:
    """``DatasetXXX_Name`` of an id or name, from the folder under ``$var`` (where the step reads its data)."""
    from nninteractive_train.data.paths import find_dataset

    return find_dataset(dataset, var=var).name


def run_dir(dataset: str, plans_identifier: str, configuration: str, fold: int | str) -> Path:
    """nnU-Net's output folder of a run of ``dataset`` (a ``DatasetXXX_Name``) under ``$nnUNet_results``."""
    from nninteractive_train.paths import require_env

    require_env("nnUNet_results")
    from nnunetv2.utilities.file_path_utilities import get_output_folder

    return Path(get_output_folder(dataset, TRAINER_NAME, plans_identifier, configuration, fold))


def default_run_dir(dataset: int | str, cfg) -> Path:
    """The run folder ``nnInteractive_train -d DATASET`` uses without ``--output`` for RunConfig ``cfg``."""
    return run_dir(dataset_name(dataset), cfg.plans_identifier, cfg.model.configuration, cfg.training.fold)


def is_run_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a training run folder (a ``config.yaml`` written by ``nnInteractive_train``)."""
    return (Path(path) / "config.yaml").is_file()


def find_run_dir(dataset: int | str, configuration: str | None = None, plans_identifier: str | None = None,
                 fold: int | str | None = None) -> Path:
    """The one run folder of ``dataset`` under ``$nnUNet_results`` that matches the given parts.

    Args:
        dataset: id or ``DatasetXXX_Name``.
        configuration, plans_identifier, fold: narrow the search (None: any).

    Raises:
        SetupError: no run, or several (the message lists them and which option tells them apart).
    """
    from nnunetv2.utilities.file_path_utilities import convert_identifier_to_trainer_plans_config

    from nninteractive_train.data.paths import find_dataset

    base = find_dataset(dataset, var="nnUNet_results")
    found = []
    for folder in sorted(base.glob(f"{TRAINER_NAME}__*__*")):
        _, plans, conf = convert_identifier_to_trainer_plans_config(folder.name)
        if (configuration is not None and conf != configuration) or (
                plans_identifier is not None and plans != plans_identifier):
            continue
        for run in sorted(folder.glob("fold_*")):
            if is_run_dir(run) and (fold is None or run.name == f"fold_{fold}"):
                found.append(run)
    wanted = ", ".join(f"{k} {v}" for k, v in (("configuration", configuration), ("plans", plans_identifier),
                                                ("fold", fold)) if v is not None)
    if not found:
        raise SetupError(f"no run of {base.name}{' with ' + wanted if wanted else ''}", base,
                         hint=f"train one with nnInteractive_train -d {base.name}, or give the run folder")
    if len(found) > 1:
        names = ", ".join(str(r.relative_to(base)) for r in found)
        raise SetupError(f"{len(found)} runs of {base.name}: {names}", base,
                         hint="choose one with -c CONFIGURATION, -p PLANS and -f FOLD, or give the run folder")
    return found[0]
