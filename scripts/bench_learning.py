"""Learning-quality table for the README: Dice after 1 and after 5 prompts per kind, from an interactive evaluation
through the public inference session (the per-kind protocol of nnInteractive_evaluate).

    python scripts/bench_learning.py MODEL_DIR -d ID [--cases ...] [--split imagesTs] [--out DIR] [--no-autozoom]
    python scripts/bench_learning.py --summary DIR/summary.json      # table of an existing evaluation

Prints a Markdown table (kind, objects, Dice after 1 prompt, after 5 prompts, gain, NSD after 5, s per prompt) and
checks the issue's aims: Dice after 1 lasso ≥ 0.8, and Dice rising with follow-ups for every kind.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def table(summary: dict, at: int = 5) -> tuple[str, list[str]]:
    """Markdown table and the list of aims not met, from a summary.json dict."""
    per_kind = summary.get("results", {}).get("per-kind", {})
    if not per_kind:
        raise SystemExit("the summary has no per-kind results")
    lines = [f"| kind | objects | Dice @1 | Dice @{at} | gain | NSD @{at} | s / prompt |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    missed = []

    def f(v):
        return "n/a" if v is None else f"{v:.3f}"

    for kind, e in per_kind.items():
        first = e["dice"][0]
        last = e["dice"][at - 1] if len(e["dice"]) >= at else None
        nsd_last = e["nsd"][at - 1] if len(e["nsd"]) >= at else None
        gain = None if last is None or first is None else last - first
        lines.append(f"| {kind} | {e['runs']} | {f(first)} | {f(last)} | "
                     f"{'n/a' if gain is None else f'{gain:+.3f}'} | {f(nsd_last)} | {f(e['seconds_per_step'])} |")
        if gain is None or gain <= 0:
            missed.append(f"Dice does not rise with follow-ups for {kind}")
    lasso = per_kind.get("lasso")
    if lasso is None or lasso["dice"][0] is None or lasso["dice"][0] < 0.8:
        missed.append("Dice after 1 lasso < 0.8")
    return "\n".join(lines), missed


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", nargs="?")
    p.add_argument("-d", "--dataset", type=int)
    p.add_argument("--summary", help="print the table of an existing summary.json instead of evaluating")
    p.add_argument("--cases", nargs="+")
    p.add_argument("--split", default="imagesTr", choices=["imagesTr", "imagesTs"])
    p.add_argument("--out", default=None)
    p.add_argument("--max-objects-per-case", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", default="0")
    p.add_argument("--no-autozoom", action="store_true")
    args = p.parse_args(argv)
    if args.summary:
        summary_file = Path(args.summary)
    else:
        if not args.model_dir or args.dataset is None:
            p.error("MODEL_DIR and -d are needed (or --summary)")
        from nninteractive_train.cli import evaluate

        out = Path(args.out or f"bench_learning_{Path(args.model_dir).resolve().name}_{args.dataset}")
        cmd = [args.model_dir, "-d", str(args.dataset), "--protocol", "per-kind", "--steps", "4", "--out", str(out),
               "--split", args.split, "--device", args.device, "--seed", args.seed]
        cmd += ["--cases", *args.cases] if args.cases else []
        cmd += ["--max-objects-per-case", args.max_objects_per_case] if args.max_objects_per_case else []
        cmd += ["--no-autozoom"] if args.no_autozoom else []
        evaluate.main(cmd)
        summary_file = out / "summary.json"
    text, missed = table(json.loads(summary_file.read_text()))
    print(text)
    for m in missed:
        print(f"aim not met: {m}", file=sys.stderr)


if __name__ == "__main__":
    main()
