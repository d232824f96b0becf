"""nnInteractive_submit_slurm refuses, before anything is written or queued, every input that would otherwise
fail only after the job's queue wait (or change the training silently): one clear line naming the file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from helpers import DEBUG_CFG, REPO, prepared_dataset
from nninteractive_train.cli.submit_slurm import main

DS = 990


@pytest.fixture(scope="module", autouse=True)
def dataset():
    return prepared_dataset(DS)


@pytest.fixture
def fake_sbatch(tmp_path, monkeypatch) -> Path:
    """An sbatch on PATH that records its calls: a rejected submission must never reach it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "sbatch.log"
    (bin_dir / "sbatch").write_text(f'#!/bin/bash\necho "$*" >> {log}\necho "77"\n')
    (bin_dir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def submit(tmp_path, *args, config=DEBUG_CFG, dataset=DS):
    """Run the command; returns its exit code."""
    argv = ["-d", str(dataset), "--output", str(tmp_path / "run"), *(["--config", str(config)] if config else []),
            "--gpus-per-node", "2", *args]  # 2 x 1: the debug config's batch of 2 splits; later options win
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    return code


def refused(tmp_path, capsys, fake_sbatch, *args, **kw) -> str:
    """Assert a refusal (exit 2, nothing written, sbatch not called); returns the one-line message."""
    code = submit(tmp_path, *args, **kw)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2, err
    assert err.startswith("nnInteractive_submit_slurm: error: "), err
    assert not (tmp_path / "run").exists() and not fake_sbatch.exists()
    return err


@pytest.mark.parametrize("args, message", [
    (["training.bogus=1"], "override 'training.bogus=1': unknown key 'bogus' in training"),
    (["training.num_epoch=3"], "unknown key 'num_epoch' in training (did you mean 'num_epochs'?)"),
    (["bogus.key=1"], "override 'bogus.key=1': unknown key 'bogus' in the config"),
    (["training.num_epochs=ten"], "training.num_epochs: expected an integer, got 'ten'"),
    (["interaction.decay=0"], "interaction.decay must be in (0, 1]"),
    (["not-an-override"], "is not of the form section.key=value"),
])
def test_config_keys_and_types(tmp_path, capsys, fake_sbatch, args, message):
    err = refused(tmp_path, capsys, fake_sbatch, *args)
    assert message in err


def test_bad_yaml_file_is_named(tmp_path, capsys, fake_sbatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  num_epochs: 3\n  iterations: 4\n")
    err = refused(tmp_path, capsys, fake_sbatch, config=bad)
    assert err.endswith(f"unknown key 'iterations' (did you mean 'iterations_per_epoch'?) ({bad})"), err
    err = refused(tmp_path, capsys, fake_sbatch, config=tmp_path / "missing.yaml")
    assert f"config file {tmp_path / 'missing.yaml'} does not exist" in err


@pytest.mark.parametrize("nodes, gpus, batch", [(2, 5, 24), (1, 8, 12), (3, 1, 2), (4, 8, 16)])
def test_global_batch_must_divide(tmp_path, capsys, fake_sbatch, nodes, gpus, batch):
    err = refused(tmp_path, capsys, fake_sbatch, "--nodes", str(nodes), "--gpus-per-node", str(gpus),
                  f"model.global_batch_size={batch}")
    assert f"model.global_batch_size={batch} cannot be split evenly over {nodes * gpus} processes" in err
    assert str(DEBUG_CFG) in err


@pytest.mark.parametrize("nodes, gpus, batch", [(2, 4, 24), (1, 2, 2), (3, 1, 3)])
def test_global_batch_that_divides_is_accepted(tmp_path, capsys, fake_sbatch, nodes, gpus, batch):
    assert submit(tmp_path, "--nodes", str(nodes), "--gpus-per-node", str(gpus),
                  f"model.global_batch_size={batch}") == 0
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["model"]["global_batch_size"] == batch
    assert fake_sbatch.read_text().split() == ["--parsable", str(tmp_path / "run" / "submit.sbatch")]


def test_missing_dataset(tmp_path, capsys, fake_sbatch):
    assert "no dataset with id 977" in refused(tmp_path, capsys, fake_sbatch, dataset=977)


def test_missing_plans(tmp_path, capsys, fake_sbatch):
    err = refused(tmp_path, capsys, fake_sbatch, "plans_identifier=OtherPlans")
    assert "no plans OtherPlans for dataset 990" in err and "OtherPlans.json)" in err
    assert err.endswith("run nnInteractive_plan_and_preprocess -d 990 first")


def test_missing_preprocessed_data(tmp_path, capsys, fake_sbatch, nnunet_dirs):
    """Plans written but preprocessing interrupted before any case (a copy of 990 without its data folder)."""
    src = next(nnunet_dirs["nnUNet_preprocessed"].glob("Dataset990_*"))
    dst = nnunet_dirs["nnUNet_preprocessed"] / "Dataset978_NoData"
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir()
    for name in ("nnInteractivePlans.json", "dataset.json"):
        shutil.copy(src / name, dst / name)
    try:
        err = refused(tmp_path, capsys, fake_sbatch, dataset=978)
    finally:
        shutil.rmtree(dst)
    assert "the preprocessed data of dataset 978 are missing" in err and "Dataset978_NoData" in err


def test_patch_the_network_cannot_pool(tmp_path, capsys, fake_sbatch):
    assert "cannot be pooled evenly" in refused(tmp_path, capsys, fake_sbatch, "model.patch_size=[33,32,32]")


def test_nnunet_folder_unset(tmp_path, capsys, fake_sbatch, monkeypatch):
    monkeypatch.delenv("nnUNet_preprocessed")
    assert "environment variable nnUNet_preprocessed is not set" in refused(tmp_path, capsys, fake_sbatch)


def test_validation_dataset_missing(tmp_path, capsys, fake_sbatch):
    err = refused(tmp_path, capsys, fake_sbatch, "training.interactive_val_every=1",
                  "training.interactive_val_raw=976")
    assert "training.interactive_val_raw=976" in err
    # named cases that the raw dataset lacks
    err = refused(tmp_path, capsys, fake_sbatch, "training.interactive_val_every=1",
                  f"training.interactive_val_raw={DS}", "training.interactive_val_case_names=[nope_0001]")
    assert "case(s) ['nope_0001'] not in imagesTr" in err


def test_fold_without_splits_on_several_processes(tmp_path, capsys, fake_sbatch):
    err = refused(tmp_path, capsys, fake_sbatch, "training.fold=0", "--gpus-per-node", "2")
    assert "training.fold=0 needs splits_final.json" in err and "splits_final.json);" in err


@pytest.mark.parametrize("args", [
    ["--time", "soon"], ["--time", "00:05:00"], ["--nodes", "0"], ["--partition", "gpu; rm -rf /"],
    ["--sbatch-arg=qos"], ["--signal-seconds", "0"],
])
def test_bad_slurm_options(tmp_path, capsys, fake_sbatch, args):
    refused(tmp_path, capsys, fake_sbatch, *args)


def test_output_with_spaces_refused(tmp_path, capsys, fake_sbatch):
    with pytest.raises(SystemExit) as e:
        main(["-d", str(DS), "--config", str(DEBUG_CFG), "--output", str(tmp_path / "my run")])
    assert e.value.code == 2 and "whitespace" in capsys.readouterr().err
    assert not (tmp_path / "my run").exists() and not fake_sbatch.exists()


def test_run_folder_of_another_config(tmp_path, capsys, fake_sbatch):
    """Submitting the same config again is a re-submission; another config into the same folder is refused."""
    assert submit(tmp_path, "training.num_epochs=3") == 0
    first = (tmp_path / "run" / "config.yaml").read_text()
    assert submit(tmp_path, "training.num_epochs=3") == 0  # same config: fine
    fake_sbatch.unlink()
    assert submit(tmp_path, "training.num_epochs=4", "training.seed=1") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "holds another run's config (differs in training.num_epochs, training.seed)" in err
    assert str(tmp_path / "run" / "config.yaml") in err
    assert (tmp_path / "run" / "config.yaml").read_text() == first and not fake_sbatch.exists()


@pytest.mark.slow
def test_supervoxels_the_config_draws(tmp_path, capsys, fake_sbatch, monkeypatch):
    """A collection (manifest) with data.supervoxel_prob > 0 needs its SuperVoxels; without them the sampler
    would silently draw none. Accepted with supervoxel_prob=0, or once they are generated."""
    from nninteractive_train.cli import build_collection, generate_supervoxels, make_synthetic, plan_and_preprocess

    make_synthetic.main(["-d", "971", "--num-cases", "2", "--seed", "1", "--name", "SynthA"])
    make_synthetic.main(["-d", "972", "--num-cases", "1", "--seed", "2", "--name", "SynthB"])
    lst = tmp_path / "list.yaml"
    lst.write_text((REPO / "dataset_lists" / "demo.yaml").read_text().replace("source: 991", "source: 971")
                   .replace("source: 992", "source: 972"))
    assert build_collection.main([str(lst), "-d", "973", "--quiet"]) == 0
    plan_and_preprocess.main(["-d", "973", "--config", str(DEBUG_CFG), "-np", "1"])
    err = refused(tmp_path, capsys, fake_sbatch, dataset=973)
    assert "no SuperVoxels, but data.supervoxel_prob=0.2" in err and "supervoxels/index.json)" in err
    assert "nnInteractive_generate_supervoxels -d 973" in err
    assert submit(tmp_path, "data.supervoxel_prob=0", "--dry-run", dataset=973) == 0
    assert generate_supervoxels.main(["-d", "973", "--quiet"]) == 0
    index = next(Path(os.environ["nnUNet_preprocessed"]).glob("Dataset973_*/*/supervoxels/index.json"))
    counts = json.loads(index.read_text())["counts"]
    case = next(c for c, n in counts.items() if n > 0)
    (index.parent / f"{case}.npz").rename(index.parent / "moved.npz")
    assert f"{case}.npz" in refused(tmp_path, capsys, fake_sbatch, dataset=973)
    (index.parent / "moved.npz").rename(index.parent / f"{case}.npz")
    assert submit(tmp_path, dataset=973) == 0
    out = capsys.readouterr().out
    assert f"SuperVoxels: {sum(counts.values())} in" in out
