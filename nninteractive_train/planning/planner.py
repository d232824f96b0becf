"""The nnU-Net experiment planner for interactive training and the plan+preprocess entry point."""

from __future__ import annotations

import os

from nninteractive_train.config import RunConfig
from nninteractive_train.files import atomic_write_json
from nninteractive_train.paths import SetupError, find_dataset, require_env


def _planner_class():
    from nnunetv2.experiment_planning.experiment_planners.resampling.planners_no_resampling import (
        nnUNetPlannerResEncL_noResampling,
    )

    class nnInteractivePlanner(nnUNetPlannerResEncL_noResampling):
        """ResEnc-L, native spacing, identity transpose, per-image z-score on every channel."""

        def determine_transpose(self):
            return [0, 1, 2], [0, 1, 2]

        def determine_normalization_scheme_and_whether_mask_is_used_for_norm(self):
            n = len(self.dataset_json["channel_names"])
            return ["ZScoreNormalization"] * n, [False] * n

    return nnInteractivePlanner


def plan_and_preprocess(dataset_id: int, cfg: RunConfig, num_processes: int = 2, verify: bool = True) -> dict:
    """Fingerprint, plan and preprocess ``dataset_id`` for the interactive configuration of ``cfg``.

    Writes ``$nnUNet_preprocessed/DatasetXXX_*/<cfg.plans_identifier>.json`` with ``3d_fullres`` and
    ``cfg.model.configuration`` (which shares 3d_fullres's preprocessed data), and the preprocessed cases.
    Returns the plans dict.
    """
    raw = require_env("nnUNet_raw")
    pre = require_env("nnUNet_preprocessed")
    require_env("nnUNet_results")
    raw_folder = find_dataset(raw, dataset_id)
    if not (raw_folder / "dataset.json").is_file():
        raise SetupError(f"{raw_folder / 'dataset.json'} is missing")

    from batchgenerators.utilities.file_and_folder_operations import load_json
    from nnunetv2.experiment_planning.plan_and_preprocess_api import extract_fingerprint_dataset

    from nninteractive_train.planning.plans import interactive_configuration
    from nninteractive_train.planning.preprocessor import preprocess

    extract_fingerprint_dataset(dataset_id, num_processes=num_processes, check_dataset_integrity=verify,
                                clean=True, verbose=False)
    planner = _planner_class()(dataset_id, plans_name=cfg.plans_identifier)
    # nnU-Net's planner sets torch's thread count from nnUNet_n_proc_DA, which crashes on the debugging value 0
    saved = os.environ.get("nnUNet_n_proc_DA")
    if saved == "0":
        os.environ["nnUNet_n_proc_DA"] = "1"
    try:
        plans = planner.plan_experiment()
    finally:
        if saved is not None:
            os.environ["nnUNet_n_proc_DA"] = saved
    if "3d_fullres" not in plans["configurations"]:
        raise SetupError(f"nnU-Net planned no 3d_fullres configuration for {raw_folder.name} (2D data?)")
    conf = interactive_configuration(plans["configurations"]["3d_fullres"], cfg.model)
    plans["configurations"]["3d_fullres"]["normalization_schemes"] = conf["normalization_schemes"]
    plans["configurations"]["3d_fullres"]["use_mask_for_norm"] = conf["use_mask_for_norm"]
    plans["configurations"][cfg.model.configuration] = conf
    plans_file = pre / raw_folder.name / f"{cfg.plans_identifier}.json"
    atomic_write_json(plans_file, plans)
    # The interactive configuration inherits 3d_fullres's data identifier: one preprocessed copy serves both.
    preprocess(dataset_id, cfg.plans_identifier, "3d_fullres", num_processes)
    from nninteractive_train.training.collection import write_center_candidates

    # a built collection: its manifest travels with the preprocessed data, plus per-object patch centres
    write_center_candidates(raw_folder, pre / raw_folder.name,
                            pre / raw_folder.name / plans["configurations"]["3d_fullres"]["data_identifier"],
                            num_processes, seed=cfg.training.seed, center_bias=cfg.data.center_bias)
    return load_json(str(plans_file))
