"""Issue 12: nnU-Net's results layout by default, -d as an id or a name, and nnU-Net's environment switches."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from helpers import DEBUG_CFG, PY, prepared_dataset, run
from nninteractive_train.cli.common import Parser, add_dataset_argument, dataset_ref, run_command
from nninteractive_train.config import load_config
from nninteractive_train.errors import SetupError
from nninteractive_train.layout import TRAINER_NAME, find_run_dir, run_dir
from nninteractive_train.nnunet_env import apply_env, compile_from_env, data_workers_from_env, default_num_processes

DS = 990


# ---- -d: an id or a name -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("990", 990), ("5", 5), ("Dataset990_Synthetic", "Dataset990_Synthetic"), ("Dataset001_A_b-2", "Dataset001_A_b-2"),
    ("abc", None), ("Dataset99_X", None), ("Dataset990", None), ("Dataset990_", None), ("-3", None),
])
def test_dataset_ref(text, expected):
    if expected is None:
        with pytest.raises(Exception, match="neither a dataset id"):
            dataset_ref(text)
    else:
        assert dataset_ref(text) == expected


@pytest.mark.parametrize("ref, found", [("990", "Dataset990_Synthetic"), ("Dataset990_Synthetic", "Dataset990_Synthetic"),
                                        ("Dataset990_Other", None), ("991", None)])
def test_name_or_id_resolves_to_one_folder(tmp_path, monkeypatch, ref, found):
    from nninteractive_train.data.paths import dataset_id_of_ref
    from nninteractive_train.paths import find_dataset

    (tmp_path / "Dataset990_Synthetic").mkdir()
    monkeypatch.setenv("nnUNet_preprocessed", str(tmp_path))
    if found is None:
        with pytest.raises(SetupError, match=ref.replace("991", "id 991")):
            find_dataset(tmp_path, dataset_ref(ref))
        return
    assert find_dataset(tmp_path, dataset_ref(ref)).name == found
    assert dataset_id_of_ref(dataset_ref(ref), var="nnUNet_preprocessed") == 990


def test_old_spelling_is_a_hidden_alias(capsys):
    p = Parser(prog="P")
    add_dataset_argument(p, "data", aliases=("--dataset",))
    got = []
    run_command(p, got.append, ["--dataset", "Dataset007_X"])
    run_command(p, got.append, ["-d", "7"])
    assert [a.dataset_id for a in got] == ["Dataset007_X", 7]
    assert "--dataset " not in p.format_help() and "--dataset-id" in p.format_help()


# ---- the run folder --------------------------------------------------------------------------------------------
def test_trainer_name_is_the_class_name():
    from nninteractive_train.training.trainer import nnInteractiveTrainer

    assert TRAINER_NAME == nnInteractiveTrainer.__name__


@pytest.mark.parametrize("fold", ["all", "0", 3])
def test_run_dir_is_nnunets_output_folder(tmp_path, monkeypatch, fold):
    from nnunetv2.utilities.file_path_utilities import get_output_folder

    monkeypatch.setenv("nnUNet_results", str(tmp_path))
    got = run_dir("Dataset990_Synthetic", "nnInteractivePlans", "3d_fullres_ps32_bs2", fold)
    assert got == tmp_path / "Dataset990_Synthetic" / "nnInteractiveTrainer__nnInteractivePlans__3d_fullres_ps32_bs2" \
        / f"fold_{fold}"
    assert str(got) == get_output_folder("Dataset990_Synthetic", "nnInteractiveTrainer", "nnInteractivePlans",
                                         "3d_fullres_ps32_bs2", fold)


def test_find_run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_results", str(tmp_path))
    base = tmp_path / "Dataset990_Synthetic"
    runs = {}
    for conf, fold in (("a", "all"), ("b", "all"), ("b", "0")):
        runs[conf, fold] = base / f"{TRAINER_NAME}__P__{conf}" / f"fold_{fold}"
        runs[conf, fold].mkdir(parents=True)
        (runs[conf, fold] / "config.yaml").write_text("{}")
    (base / "nnUNetTrainer__P__a" / "fold_all").mkdir(parents=True)  # another trainer's run: never picked
    (base / f"{TRAINER_NAME}__P__c" / "fold_all").mkdir(parents=True)  # no config.yaml: not a run
    assert find_run_dir(990, "a") == runs["a", "all"]
    assert find_run_dir("Dataset990_Synthetic", "b", fold="0") == runs["b", "0"]
    assert find_run_dir(990, fold="0", plans_identifier="P") == runs["b", "0"]
    with pytest.raises(SetupError, match="3 runs of Dataset990_Synthetic") as e:
        find_run_dir(990)
    assert "-c CONFIGURATION" in e.value.hint
    with pytest.raises(SetupError, match="2 runs"):
        find_run_dir(990, fold="all")
    with pytest.raises(SetupError, match="no run of Dataset990_Synthetic with configuration c"):
        find_run_dir(990, "c")
    with pytest.raises(SetupError, match="no dataset with id 991"):
        find_run_dir(991)


# ---- environment switches --------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, configured, expected", [
    (None, False, False), (None, True, True),  # unset: the config decides
    ("true", False, True), ("True", False, True), ("1", False, True), ("t", False, True), ("T", False, True),
    ("false", True, False), ("0", True, False), ("f", True, False), ("yes", True, False), ("", True, False),
])
def test_nnunet_compile(value, configured, expected):
    env = {} if value is None else {"nnUNet_compile": value}
    assert compile_from_env(configured, env) is expected


@pytest.mark.parametrize("device, compile_, expected", [("cuda", True, True), ("cpu", True, False),
                                                        ("cuda", False, False)])
def test_trainer_compiles_only_on_cuda(device, compile_, expected):
    """The trainer's device rule, as nnU-Net's (CPU never compiles), on the config apply_env wrote."""
    import torch

    from nninteractive_train.training.trainer import nnInteractiveTrainer

    trainer = nnInteractiveTrainer.__new__(nnInteractiveTrainer)
    trainer.run_config = apply_env(load_config(DEBUG_CFG), {"nnUNet_compile": "t" if compile_ else "f"})
    trainer.device = torch.device(device)
    assert trainer._do_i_compile() is expected


@pytest.mark.parametrize("value, configured, expected", [
    (None, 0, 0), (None, None, None), ("3", 0, min(3, os.cpu_count())), ("1", 0, 1), ("0", 4, 0), ("100000", None, os.cpu_count()), (" ", 2, 2),
])
def test_nnunet_n_proc_da(value, configured, expected):
    env = {} if value is None else {"nnUNet_n_proc_DA": value}
    assert data_workers_from_env(configured, env) == expected


@pytest.mark.parametrize("value, expected", [(None, 2), ("6", 6), ("0", 1)])
def test_nnunet_def_n_proc(value, expected):
    assert default_num_processes(2, {} if value is None else {"nnUNet_def_n_proc": value}) == expected


@pytest.mark.parametrize("name", ["nnUNet_def_n_proc", "nnUNet_n_proc_DA"])
@pytest.mark.parametrize("value", ["many", "-1", "2.5"])
def test_bad_process_counts(name, value):
    with pytest.raises(SetupError, match=name):
        (default_num_processes(2, {name: value}) if name == "nnUNet_def_n_proc"
         else data_workers_from_env(0, {name: value}))


def test_apply_env_copies():
    cfg = load_config(DEBUG_CFG)
    new = apply_env(cfg, {"nnUNet_compile": "1", "nnUNet_n_proc_DA": "1"})
    assert (new.training.compile, new.training.num_data_workers) == (True, 1)
    assert (cfg.training.compile, cfg.training.num_data_workers) == (False, 0)


@pytest.mark.parametrize("module, fallback", [("make_synthetic", 1), ("build_collection", 1),
                                              ("plan_and_preprocess", 2), ("generate_supervoxels", 1)])
@pytest.mark.parametrize("env, given, expected", [({}, None, "fallback"), ({"nnUNet_def_n_proc": "5"}, None, 5),
                                                  ({"nnUNet_def_n_proc": "5"}, "3", 3)])
def test_np_default_of_every_command(monkeypatch, module, fallback, env, given, expected):
    import importlib

    monkeypatch.delenv("nnUNet_def_n_proc", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    parser = importlib.import_module(f"nninteractive_train.cli.{module}").build_parser()
    argv = {"build_collection": ["l.yaml", "-d", "9"]}.get(module, ["-d", "9"]) + (["-np", given] if given else [])
    got = []
    run_command(parser, got.append, argv)
    assert got[0].num_processes == (fallback if expected == "fallback" else expected)


# ---- end to end: the first run without --output ---------------------------------------------------------------
@pytest.mark.slow
def test_first_run_in_nnunets_layout(tmp_path):
    """make_synthetic → plan → train without --output (nnUNet_n_proc_DA=1 overrides the debug config's 0) →
    export and evaluate found with -d alone, the dataset given by name."""
    prepared_dataset(DS)
    results = Path(os.environ["nnUNet_results"])
    expected = results / "Dataset990_Synthetic" / "nnInteractiveTrainer__nnInteractivePlans__3d_fullres_ps32_bs2" \
        / "fold_all"
    res = run([PY, "-m", "nninteractive_train.cli.train", "-d", "Dataset990_Synthetic", "--config", str(DEBUG_CFG)],
              env={"nnUNet_n_proc_DA": "1", "nnUNet_compile": "t"})
    assert f"run folder: {expected}" in res.stdout
    assert (expected / "checkpoint_final.pth").is_file() and (expected / "progress.png").is_file()
    saved = yaml.safe_load((expected / "config.yaml").read_text())["training"]
    assert saved["num_data_workers"] == 1 and saved["compile"] is True  # as the environment said (CPU: not compiled)
    assert json.loads((expected / "run_info.json").read_text())["dataset_id"] == DS
    # a resume finds the same folder from the same config
    res = run([PY, "-m", "nninteractive_train.cli.train", "-d", str(DS), "--config", str(DEBUG_CFG), "--resume"])
    assert "is complete" in res.stdout
    model = tmp_path / "model"
    run([PY, "-m", "nninteractive_train.cli.export", "-d", str(DS), str(model)])
    assert (model / "fold_0" / "checkpoint_final.pth").is_file()
    out = tmp_path / "eval"
    run([PY, "-m", "nninteractive_train.cli.evaluate", "-d", "Dataset990_Synthetic", "-f", "all", "--cases",
         "synthetic_0000", "--protocol", "per-kind", "--kinds", "point", "--steps", "0",
         "--max-objects-per-case", "1", "--no-autozoom", "--no-progress", "--out", str(out)])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["cases_evaluated"] == 1 and summary["model_dir"] == str((out / "model").resolve())
