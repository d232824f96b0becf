"""What the demo report measures its model against: the demo's aim, and the ablation rows run on its data.

The aim is Dice after one prompt on the held-out generated objects, through the public inference session, and
Dice rising with follow-ups for every kind. Ablation rows are the JSON lines ``scripts/ablate_learning.py``
appends to ``DEMO_OUT/ablations/results.jsonl``, one per training run with one change to the demo config.
"""

from __future__ import annotations

import json
from pathlib import Path

from nninteractive_train.errors import UserError

__all__ = ["AIM", "against_aim", "aim_table", "read_ablations", "ablation_table"]

AIM = {"point": 0.7, "bbox": 0.8, "lasso": 0.85, "scribble": 0.7}
"""Dice after the first prompt the demo model should reach per kind (held-out generated objects)."""

KINDS = tuple(AIM)


def against_aim(per_kind: dict, aim: dict = AIM) -> list[dict]:
    """One row per kind of ``aim`` present in ``per_kind``.

    Args:
        per_kind: ``{kind: {"dice": [Dice after prompt 1, 2, …]}}`` (an evaluation summary's per-kind results;
            ``None`` for a prompt no run reached).
    Returns:
        dicts with ``kind``, ``dice1``, ``target``, ``reached`` (dice1 ≥ target), ``prompts`` (how many were scored),
        ``dice_last`` and ``rises`` (Dice after the last prompt above the first; ``None`` with one prompt).
    """
    rows = []
    for kind, target in aim.items():
        dice = [d for d in (per_kind.get(kind) or {}).get("dice", []) if d is not None]
        if not dice:
            continue
        rows.append({"kind": kind, "dice1": dice[0], "target": target, "reached": dice[0] >= target,
                     "prompts": len(dice), "dice_last": dice[-1],
                     "rises": dice[-1] > dice[0] if len(dice) > 1 else None})
    return rows


def aim_table(rows: list[dict]) -> list[str]:
    """Markdown lines of `against_aim`'s rows."""
    yes = {True: "yes", False: "**no**", None: "n/a"}
    lines = ["| kind | Dice @1 | aim @1 | reached | Dice @last | rises with follow-ups |", "|---|---:|---:|---|---:|---|"]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['dice1']:.3f} | {r['target']:.2f} | {yes[r['reached']]} | "
                     f"{r['dice_last']:.3f} (@{r['prompts']}) | {yes[r['rises']]} |")
    return lines


def read_ablations(path: str | Path) -> list[dict]:
    """The rows of an ablations ``results.jsonl`` (empty if the file does not exist).

    Raises:
        UserError: a line that is not a JSON object (the file and the line number named).
    """
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"line {number} is not JSON ({e.msg})", path,
                            "remove or fix that line; each run appends one") from None
        if not isinstance(row, dict):
            raise UserError(f"line {number} is not a JSON object", path, "remove or fix that line")
        rows.append(row)
    return rows


def ablation_table(rows: list[dict]) -> str:
    """A markdown table of ablation rows: the change, its cost, Dice after the first and the last prompt per kind,
    and their means over the kinds."""
    head = ("| run | change | train min | iterations | ms / it | objects | "
            + " | ".join(f"{k} @1 / @last" for k in KINDS) + " | mean @1 | mean @last |")
    lines = [head, "|" + "---|" * (8 + len(KINDS))]
    for r in rows:
        cells = " | ".join(f"{r['dice1'][k]:.2f} / {r['dice5'][k]:.2f}" for k in KINDS)
        change = " ".join(r["overrides"]) or "—"
        if r.get("collection"):
            change = f"collection {r['collection']}: {change}"
        mean1 = sum(r["dice1"][k] for k in KINDS) / len(KINDS)
        mean_last = sum(r["dice5"][k] for k in KINDS) / len(KINDS)
        lines.append(f"| {r['tag']} | {change} | {r['train_min']:.1f} | {r['iterations']} | "
                     f"{r['iteration_ms']:.0f} | {r.get('objects', '?')} | {cells} | {mean1:.2f} | {mean_last:.2f} |")
    return "\n".join(lines)
