"""The collection commands: build, SuperVoxels (folder discovery) and their error handling."""

import json

import numpy as np
import pytest
from collection_helpers import tiny_collection

from nninteractive_train.cli import build_collection, generate_supervoxels, sampling_report
from nninteractive_train.data.paths import dataset_folder_name, find_dataset, find_preprocessed_config
from nninteractive_train.errors import SetupError, UsageError


def exit_code(main, argv) -> int:
    """The status a console script of ``main`` exits with."""
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


@pytest.fixture
def env(tmp_path, monkeypatch):
    raw, pre = tmp_path / "raw", tmp_path / "pre"
    raw.mkdir()
    pre.mkdir()
    monkeypatch.setenv("nnUNet_raw", str(raw))
    monkeypatch.setenv("nnUNet_preprocessed", str(pre))
    return raw, pre


def test_build_cli(env, tmp_path, capsys):
    raw, _ = env
    lst = tiny_collection(raw, tmp_path)
    assert build_collection.main([str(lst), "-d", "950", "-n", "Mine", "--quiet"]) == 0
    assert "7 cases" in capsys.readouterr().out
    assert (raw / "Dataset950_Mine" / "nnInteractive_manifest.npz").is_file()
    (raw / "Dataset901_A" / "labelsTr" / "case_000.nii.gz").unlink()
    assert exit_code(build_collection.main, [str(lst), "-d", "950", "-n", "Mine", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nnInteractive_build_collection: error: ") and "case_000.nii.gz" in err and "missing" in err


def _fake_preprocessed(pre, name, configs):
    for c in configs:
        (pre / name / c).mkdir(parents=True)
        (pre / name / c / "x.b2nd").write_bytes(b"")


def test_find_preprocessed_config(env):
    _, pre = env
    _fake_preprocessed(pre, "Dataset950_X", ["P_3d_fullres"])
    assert find_preprocessed_config(950).name == "P_3d_fullres"
    _fake_preprocessed(pre, "Dataset950_X", ["Q_3d_fullres"])
    with pytest.raises(SetupError, match="2 preprocessed folders"):
        find_preprocessed_config(950)
    assert find_preprocessed_config(950, "Q").name == "Q_3d_fullres"
    assert find_preprocessed_config(950, "P", "3d_fullres").name == "P_3d_fullres"
    # the plans file's data_identifier wins (configurations may share one folder)
    (pre / "Dataset950_X" / "Q.json").write_text(json.dumps(
        {"configurations": {"3d_fullres": {"data_identifier": "Q_3d_fullres"},
                            "big": {"inherits_from": "3d_fullres", "patch_size": [8, 8, 8]}}}))
    assert find_preprocessed_config(950, "Q", "big").name == "Q_3d_fullres"
    with pytest.raises(SetupError, match="no configuration 'nope'"):
        find_preprocessed_config(950, "Q", "nope")


def test_find_dataset_and_names(env, tmp_path):
    raw, _ = env
    (raw / "Dataset007_Seven").mkdir()
    assert find_dataset(7).name == "Dataset007_Seven"
    assert find_dataset("Dataset007_Seven") == raw / "Dataset007_Seven"
    assert find_dataset(str(raw / "Dataset007_Seven")) == (raw / "Dataset007_Seven").resolve()
    with pytest.raises(SetupError, match="no dataset with id 8"):
        find_dataset(8)
    with pytest.raises(UsageError):
        dataset_folder_name(1000, "X")
    with pytest.raises(UsageError):
        dataset_folder_name(5, "bad name")


def test_supervoxel_cli_errors(env, capsys):
    _, pre = env
    assert exit_code(generate_supervoxels.main, ["-d", "950", "--quiet"]) == 2
    assert "error:" in capsys.readouterr().err
    _fake_preprocessed(pre, "Dataset950_X", ["P_3d_fullres"])
    assert exit_code(generate_supervoxels.main, ["-d", "950", "--backend", "sam", "--quiet"]) == 2
    assert "--sam2-checkpoint" in capsys.readouterr().err


def test_report_cli_on_built_collection(env, tmp_path, capsys):
    raw, pre = env
    lst = tiny_collection(raw, tmp_path)
    build_collection.main([str(lst), "-d", "950", "--quiet"])
    capsys.readouterr()
    assert sampling_report.main(["-d", "950", "--draws", "2000"]) == 0
    out = capsys.readouterr().out
    assert "| A | 2 | 3 |" in out and "empirical" in out and "none found" in out
    # SuperVoxel counts are picked up from the preprocessed folder's index
    sv = pre / "Dataset950_Tiny" / "P_3d" / "supervoxels"
    sv.mkdir(parents=True)
    (sv / "index.json").write_text(json.dumps({"counts": {"A_case_000": 3, "B_case_000_c0": 2}}))
    assert sampling_report.main(["-d", "950", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["cases_with_supervoxels"] == 2 and rep["supervoxel_folder"].endswith("P_3d")
    assert np.isclose(sum(r["expected_share"] for r in rep["case_shares"]), 1.0)
    assert exit_code(sampling_report.main, ["-d", "999"]) == 2
    assert sampling_report.main(["-d", "950", "--json", "--object-size-power", "0.5"]) == 0
    assert json.loads(capsys.readouterr().out)["object_size_power"] == 0.5
    assert exit_code(sampling_report.main, ["-d", "950", "--object-size-power", "nan"]) == 2
    assert "--object-size-power must be a finite number" in capsys.readouterr().err
    # the one-call loader the data loader uses: a training split + SuperVoxel counts
    from nninteractive_train.sampler import collection_sampler

    s = collection_sampler(950, seed=0, case_ids=["A_case_000", "B_case_000_c0"], preprocessed_folder=sv.parent)
    assert s.manifest.n_cases == 2 and s.tables.supervoxel_counts.tolist() == [3, 2]
