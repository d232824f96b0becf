"""The demo report's comparison with the demo's aim, and its ablation table."""

import json

import pytest

from nninteractive_train.demo.aim import AIM, ablation_table, against_aim, aim_table, read_ablations


@pytest.mark.parametrize("dice, reached, rises", [
    ([0.85, 0.9], True, True),      # exactly at the aim counts as reached
    ([0.849, 0.84], False, False),  # below the aim, and falling with follow-ups
    ([0.9, 0.9], True, False),      # flat is not rising
    ([0.5], False, None),           # one prompt: nothing to say about follow-ups
    ([0.5, None, None], False, None),  # prompts no run reached are not scored
])
def test_against_aim_lasso(dice, reached, rises):
    (row,) = against_aim({"lasso": {"dice": dice}})
    assert row["kind"] == "lasso" and row["target"] == AIM["lasso"] == 0.85
    assert row["reached"] is reached and row["rises"] is rises
    assert row["dice1"] == dice[0] and row["prompts"] == len([d for d in dice if d is not None])


def test_against_aim_keeps_the_aims_order_and_skips_missing_and_other_kinds():
    per_kind = {"random": {"dice": [0.9]}, "scribble": {"dice": [0.71, 0.8]}, "point": {"dice": [0.69, 0.7]},
                "bbox": {"dice": []}}
    rows = against_aim(per_kind)
    assert [r["kind"] for r in rows] == ["point", "scribble"]
    assert [r["reached"] for r in rows] == [False, True]
    lines = aim_table(rows)
    assert len(lines) == 2 + len(rows)
    assert "| point | 0.690 | 0.70 | **no** | 0.700 (@2) | yes |" in lines


def _row(tag, dice1, dice_last, **extra):
    return {"tag": tag, "overrides": extra.pop("overrides", []), "train_min": 20.0, "iterations": 1000,
            "iteration_ms": 1200.0, "objects": 18, "dice1": dice1, "dice5": dice_last, **extra}


def test_ablation_table_means_and_change(tmp_path):
    d1 = {"point": 0.6, "bbox": 0.7, "lasso": 0.8, "scribble": 0.5}
    d3 = {"point": 0.7, "bbox": 0.8, "lasso": 0.9, "scribble": 0.6}
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps(_row("K0", d1, d3)) + "\n\n"
                    + json.dumps(_row("F0", d1, d1, overrides=["a.b=1"], collection=997)) + "\n")
    rows = read_ablations(path)
    assert [r["tag"] for r in rows] == ["K0", "F0"]
    header, rule, k0, f0 = ablation_table(rows).splitlines()
    assert header.count("|") == rule.count("|")
    assert k0.startswith("| K0 | — | 20.0 | 1000 | 1200 | 18 | 0.60 / 0.70 |") and k0.endswith("| 0.65 | 0.75 |")
    assert "| collection 997: a.b=1 |" in f0 and f0.endswith("| 0.65 | 0.65 |")


def test_read_ablations_without_a_file(tmp_path):
    assert read_ablations(tmp_path / "none.jsonl") == []


def test_demo_report_shows_the_aim_and_the_ablations(tmp_path):
    from nninteractive_train.demo.pipeline import write_report

    (tmp_path / "eval_generated").mkdir()
    summary = {"results": {"per-kind": {k: {"runs": 18, "dice": [0.7, 0.75, 0.8, 0.8, 0.81], "nsd": [0.8] * 5}
                                        for k in ("point", "bbox", "lasso", "scribble", "random")}}}
    (tmp_path / "eval_generated" / "summary.json").write_text(json.dumps(summary))
    d = {"point": 0.6, "bbox": 0.7, "lasso": 0.8, "scribble": 0.5}
    write_report(tmp_path, {"generated": (991, ["generated_0015"], "all")}, {"train": 1.0}, {}, trained=False,
                 ablations=[_row("K0", d, d)])
    text = (tmp_path / "README.md").read_text()
    assert "### Against the demo's aim" in text
    assert "| lasso | 0.700 | 0.85 | **no** | 0.810 (@5) | yes |" in text
    assert "| point | 0.700 | 0.70 | yes |" in text and "| random |" not in text.split("demo's aim")[1]
    assert "## Ablations" in text and "| K0 | — |" in text


def test_demo_report_without_ablations_says_how_to_run_them(tmp_path):
    from nninteractive_train.demo.pipeline import write_report

    write_report(tmp_path, {}, {"train": 1.0}, {}, trained=False)
    text = (tmp_path / "README.md").read_text()
    assert "scripts/ablate_learning.py" in text and "| run | change |" not in text


@pytest.mark.parametrize("text, problem", [("{\"tag\": \"K0\"}\n{broken\n", "line 2 is not JSON"),
                                           ("[1, 2]\n", "line 1 is not a JSON object")])
def test_read_ablations_names_the_file_and_the_line(tmp_path, text, problem):
    from nninteractive_train.errors import UserError

    path = tmp_path / "results.jsonl"
    path.write_text(text)
    with pytest.raises(UserError) as e:
        read_ablations(path)
    assert problem in str(e.value) and str(path) in str(e.value)


def test_ablate_learning_table_writes_the_reports_page_or_one_error_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "ablate_learning.py"
    (tmp_path / "ablations").mkdir()
    results = tmp_path / "ablations" / "results.jsonl"
    d = {"point": 0.6, "bbox": 0.7, "lasso": 0.8, "scribble": 0.5}
    results.write_text(json.dumps(_row("K0", d, d)) + "\n")
    cmd = [sys.executable, str(script), "--demo-out", str(tmp_path), "--table"]
    ok = subprocess.run(cmd, capture_output=True, text=True)
    assert ok.returncode == 0 and "| K0 | — |" in ok.stdout
    assert "| K0 | — |" in (tmp_path / "report" / "ablations.md").read_text()
    results.write_text("{broken\n")
    bad = subprocess.run(cmd, capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "error: line 1 is not JSON" in bad.stderr and str(results) in bad.stderr
