"""nnInteractive_evaluate end to end on a tiny exported model: outputs, every step and metric, bad cases."""

from __future__ import annotations

import csv
import json
import math
import shutil

import numpy as np
import pytest

from nninteractive_train.cli import evaluate
from nninteractive_train.evaluation import PER_KIND, SEGFM3D_KIND

STEPS = 1


@pytest.fixture(scope="module")
def evaluated(tiny_model, eval_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "out"
    evaluate.main([str(tiny_model), "-d", str(eval_dataset), "--out", str(out), "--steps", str(STEPS),
                   "--max-objects-per-case", "1", "--no-autozoom", "--no-progress", "--seed", "3",
                   "--cases", "good_0", "bad_shape", "good_1", "bad_empty", "bad_spacing", "no_such_case"])
    return out


def test_outputs_have_every_step_and_metric(evaluated):
    with open(evaluated / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and list(rows[0]) == ["case", "object", "label", "voxels", "protocol", "kind", "step", "prompts",
                                      "prompt", "positive", "dice", "nsd", "seconds"]
    runs = {(r["case"], r["object"], r["protocol"], r["kind"]) for r in rows}
    want = {(c, "0", "per-kind", k) for c in ("good_0", "good_1") for k in PER_KIND}
    want |= {(c, "0", "segfm3d", SEGFM3D_KIND) for c in ("good_0", "good_1")}
    assert runs == want
    for run in runs:
        steps = sorted(int(r["step"]) for r in rows if (r["case"], r["object"], r["protocol"], r["kind"]) == run)
        assert steps == list(range(STEPS + 1))
    for r in rows:
        assert 0.0 <= float(r["dice"]) <= 1.0 and 0.0 <= float(r["nsd"]) <= 1.0
        assert float(r["seconds"]) >= 0.0 and int(r["prompts"]) == int(r["step"]) + 1
        assert r["prompt"] in ("point", "bbox", "lasso", "scribble", "none")
        if r["prompt"] != "none":
            assert r["positive"] in ("True", "False") and float(r["seconds"]) > 0
    first = [r for r in rows if r["step"] == "0"]
    assert all(r["positive"] == "True" for r in first), "initial prompts are positive"
    assert {r["prompt"] for r in first if r["protocol"] == "segfm3d"} == {"bbox"}
    assert {r["prompt"] for r in rows if r["protocol"] == "segfm3d" and r["step"] != "0"} <= {"point", "none"}


def test_summary_and_plots(evaluated):
    summary = json.loads((evaluated / "summary.json").read_text())
    assert summary["counts"]["cases"] == 6 and summary["counts"]["cases_evaluated"] == 2
    assert summary["counts"]["objects"] == 2 and summary["counts"]["runs"] == 12
    assert summary["options"]["steps"] == STEPS and summary["options"]["nsd_tolerance"] == 2.0
    res = summary["results"]
    assert set(res) == {"per-kind", "segfm3d"}
    assert set(res["per-kind"]) == set(PER_KIND) and set(res["segfm3d"]) == {SEGFM3D_KIND}
    for kinds in res.values():
        for e in kinds.values():
            assert e["runs"] == 2
            assert len(e["dice"]) == len(e["nsd"]) == len(e["seconds"]) == STEPS + 1
            for key in ("dice_auc", "nsd_auc", "final_dice", "final_nsd"):
                assert 0.0 <= e[key] <= 1.0
            assert e["final_dice"] == pytest.approx(e["dice"][-1])
            assert e["dice_auc"] == pytest.approx(np.mean(e["dice"]))  # two steps: the trapezoid is the mean
            assert e["seconds_per_step"] > 0
    for name in ("dice_per-kind.png", "dice_segfm3d.png"):
        assert (evaluated / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(evaluated.glob(".*")), "no temporary files left"


def test_segfm3d_cases_are_the_challenge_metrics_of_the_rows(evaluated):
    """segfm3d_cases.csv: per case, the challenge's class means with the NSD gate, from results.csv's rows."""
    with open(evaluated / "results.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["protocol"] == "segfm3d"]
    with open(evaluated / "segfm3d_cases.csv") as f:
        cases = {c["CaseName"]: c for c in csv.DictReader(f)}
    assert set(cases) == {"good_0", "good_1"}
    for name, c in cases.items():
        mine = [r for r in rows if r["case"] == name]
        for step in range(STEPS + 1):
            at = [r for r in mine if int(r["step"]) == step]
            dsc = np.mean([float(r["dice"]) for r in at])
            nsd = np.mean([float(r["nsd"]) for r in at]) if dsc > 0.2 else 0.0
            assert float(c[f"DSC_{step + 1}"]) == pytest.approx(dsc, abs=1e-5)
            assert float(c[f"NSD_{step + 1}"]) == pytest.approx(nsd, abs=1e-5)
        assert float(c["DSC_Final"]) == pytest.approx(float(c[f"DSC_{STEPS + 1}"]))
        assert c["DSC_AUC"] == "nan", "one click: no area (the challenge's AUC needs >= 2 click steps)"
        assert int(c["num_class"]) == 1 and int(c["runtime_upperbound"]) == 90
    challenge = json.loads((evaluated / "summary.json").read_text())["results"]["segfm3d"][SEGFM3D_KIND]["challenge"]
    assert challenge["cases"] == 2 and challenge["DSC_AUC"] is None
    assert challenge["DSC_Final"] == pytest.approx(np.mean([float(c["DSC_Final"]) for c in cases.values()]))


def test_bad_cases_are_reported_with_reasons(evaluated):
    failed = {f["case"]: f["error"] for f in json.loads((evaluated / "summary.json").read_text())["failed_cases"]}
    assert set(failed) == {"bad_shape", "bad_empty", "bad_spacing", "no_such_case"}
    assert "bad_shape" in failed["bad_shape"] and "differs from label shape" in failed["bad_shape"]
    assert "empty label" in failed["bad_empty"]
    assert "spacing" in failed["bad_spacing"] and "(2.0, 1.0, 1.5)" in failed["bad_spacing"]
    assert "no_such_case" in failed["no_such_case"]


def test_same_seed_same_prompts(tiny_model, eval_dataset, tmp_path, evaluated):
    """A case's results depend on (seed, case) only, not on the other cases in the run."""
    out = tmp_path / "again"
    evaluate.main([str(tiny_model), "-d", str(eval_dataset), "--out", str(out), "--steps", str(STEPS),
                   "--max-objects-per-case", "1", "--no-autozoom", "--no-progress", "--seed", "3",
                   "--cases", "good_1", "--protocol", "per-kind", "--kinds", "lasso"])

    def key(path):
        with open(path) as f:
            return [(r["kind"], r["step"], r["prompt"], r["positive"], r["dice"]) for r in csv.DictReader(f)
                    if r["case"] == "good_1" and r["kind"] == "lasso"]

    assert key(out / "results.csv") == key(evaluated / "results.csv")


@pytest.mark.parametrize("damage", ["missing", "no_checkpoint", "corrupt_checkpoint"])
def test_model_that_does_not_load_is_exit_2(tiny_model, eval_dataset, tmp_path, capsys, damage):
    model = tmp_path / "model"
    if damage != "missing":
        shutil.copytree(tiny_model, model)
        ckpt = model / "fold_0" / "checkpoint_final.pth"
        if damage == "no_checkpoint":
            ckpt.unlink()
        else:
            ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit) as e:
        evaluate.main([str(model), "-d", str(eval_dataset), "--out", str(tmp_path / "o"), "--no-progress"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "nnInteractive_evaluate: error:" in err and str(model) in err
    assert not (tmp_path / "o" / "results.csv").exists()


def test_unknown_dataset_is_exit_2(tiny_model, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        evaluate.main([str(tiny_model), "-d", "998", "--out", str(tmp_path / "o"), "--no-progress"])
    assert e.value.code == 2 and "no dataset with id 998" in capsys.readouterr().err


def test_nan_free_summary(evaluated):
    text = (evaluated / "summary.json").read_text()
    assert "NaN" not in text and not math.isnan(json.loads(text)["results"]["per-kind"]["point"]["final_nsd"])
