"""Model card and licence resolution of an export (export/card.py)."""

import json

from nninteractive_train.export.card import (PRETRAINED_LICENSE, card_markdown, latest_validation, license_source,
                                             model_card)


def _run_dir(tmp_path, validation=True):
    run = tmp_path / "run"
    run.mkdir(parents=True)
    (run / "run_info.json").write_text(json.dumps({"dataset_id": 7, "commit": "abc", "pretrained": None}))
    lines = [{"epoch": 0, "train_minutes": 1.0}]
    if validation:
        lines += [{"epoch": 1, "train_minutes": 2.0, "val_dice_1": 0.5, "val_dice_2": 0.6, "val_dice_1_point": 0.4,
                   "val_dice_1_lasso": 0.6, "val_objects": 4, "train_loss": 0.3}]
    lines += [{"epoch": 2, "train_minutes": 3.0}, "not json"]
    (run / "metrics.jsonl").write_text("\n".join(l if isinstance(l, str) else json.dumps(l) for l in lines))
    return run


def test_licence_order(tmp_path):
    run = _run_dir(tmp_path)
    assert license_source(run, None) == (None, None)
    (run / PRETRAINED_LICENSE).write_text("Apache-2.0\n")
    path, source = license_source(run, None)
    assert path == run / PRETRAINED_LICENSE and "inherited" in source
    own = tmp_path / "MY_LICENSE"
    assert license_source(run, own) == (own, f"--license {own}")


def test_latest_validation_skips_epochs_without_it(tmp_path):
    val = latest_validation(_run_dir(tmp_path))
    assert val["epoch"] == 1 and val["val_dice_1_point"] == 0.4 and "train_loss" not in val
    assert latest_validation(_run_dir(tmp_path / "b", validation=False)) is None


def test_card(tmp_path):
    run = _run_dir(tmp_path)
    state = {"current_epoch": 3, "train_seconds": 180.0,
             "run_config": {"model": {"patch_size": [32, 32, 32]}, "training": {"iterations_per_epoch": 4}}}
    card = model_card(run, state, {"name": "Demo", "numTraining": 5}, "final", None)
    assert card["training_minutes"] == 3.0 and card["dataset"] == {"id": 7, "name": "Demo", "training_cases": 5}
    assert card["trained_with_commit"] == "abc" and card["validation"]["val_dice_1"] == 0.5
    md = card_markdown(card)
    assert "trained from scratch" in md and "| Dice | 0.600 | 0.400 | 0.500 |" in md and "none given" in md
    json.dumps(card)  # serialisable


def test_collection_summary_reaches_the_card(tmp_path):
    """The run folder's sampling summary (a stand-in manifest of the paper's list, no SuperVoxels) becomes the
    card's collection table with the sampler's sqrt(cases) x weight shares."""
    import math
    from pathlib import Path

    from nninteractive_train.data.dataset_list import load_dataset_list
    from nninteractive_train.data.manifest import MANIFEST_NAME
    from nninteractive_train.export.card import SAMPLING_SUMMARY
    from nninteractive_train.sampler.report import collection_summary
    from nninteractive_train.sampler.standin import stand_in_manifest

    spec = load_dataset_list(Path(__file__).parents[1] / "dataset_lists" / "nninteractive_v1.yaml")
    base = tmp_path / "pre"
    base.mkdir()
    stand_in_manifest(spec).save(base / MANIFEST_NAME)
    assert collection_summary(tmp_path / "empty", base, 0.2) is None  # not a collection
    summary = collection_summary(base, base / "no_supervoxels", 0.2)
    assert summary["expected_supervoxel_share"] == 0.0
    budgets = {d["name"]: math.sqrt(d["cases"]) * d["weight"] for d in summary["datasets"]}
    total = sum(budgets.values())
    for d in summary["datasets"]:
        assert math.isclose(d["expected_share"], budgets[d["name"]] / total, rel_tol=1e-9), d["name"]
    run = _run_dir(tmp_path)
    (run / SAMPLING_SUMMARY).write_text(json.dumps(summary))
    card = model_card(run, {"run_config": {}}, {"name": "V1"}, "final", None)
    md = card_markdown(card)
    cap = next(d for d in summary["datasets"] if d["name"] == "CAP")
    assert f"| CAP | 0.5 | {cap['cases']} | {cap['objects']} | {100 * cap['expected_share']:.1f} % |" in md
    assert md.count("\n| ") >= len(summary["datasets"]) + 2
    assert "voxels^" not in md and summary["object_size_power"] == 0.0
    sized = collection_summary(base, base / "no_supervoxels", 0.2, size_power=0.5)
    (run / SAMPLING_SUMMARY).write_text(json.dumps(sized))
    assert "a case's objects drawn ∝ voxels^0.5" in card_markdown(model_card(run, {"run_config": {}}, {"name": "V1"},
                                                                             "final", None))
    assert model_card(_run_dir(tmp_path / "b"), {}, {}, "final", None)["collection"] is None
