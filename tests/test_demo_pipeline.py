"""The README's main command in miniature: the demo pipeline with --quick on generated data only."""

import json

import pytest

pytestmark = pytest.mark.slow


def test_quick_demo_writes_a_report(tmp_path, capsys):
    from nninteractive_train.demo.pipeline import main

    assert main(["--out", str(tmp_path), "--quick", "--generated-only"]) == 0
    report = tmp_path / "report"
    for name in ("README.md", "metrics.jsonl", "progress.png", "prompt_gallery.png", "sampling_report.md",
                 "eval_generated/summary.json", "eval_generated/results.csv", "eval_generated/dice_per-kind.png"):
        assert (report / name).is_file(), name
    summary = json.loads((report / "eval_generated" / "summary.json").read_text())
    assert set(summary["results"]) == {"per-kind", "segfm3d"}
    text = (report / "README.md").read_text()
    assert "| per-kind | lasso |" in text
    assert "### Against the demo's aim" in text and "| lasso |" in text.split("demo's aim")[1]
    assert str(report) in capsys.readouterr().out
