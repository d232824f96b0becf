"""Evaluation outputs: results.csv (one row per case, object, protocol, kind and step), the summary dict
(per-step means, AUCs, finals, timings, counts) and Dice/NSD-vs-interaction plots; all written atomically."""

from __future__ import annotations

import csv
import io
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from nninteractive_train.files import atomic_write_json, atomic_write_text
from nninteractive_train.evaluation.metrics import auc

__all__ = ["COLUMNS", "write_csv", "summarize", "plot", "plot_learning_curve", "write_summary"]

COLUMNS = ("case", "object", "label", "voxels", "protocol", "kind", "step", "prompts", "prompt", "positive",
           "dice", "nsd", "seconds")


def _fmt(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def write_csv(rows: Iterable[dict], path: str | os.PathLike) -> None:
    """results.csv with `COLUMNS` (floats with 6 significant digits; `positive` empty where no prompt was given)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([_fmt(r[c]) for c in COLUMNS])
    atomic_write_text(path, buf.getvalue())


def _mean(values) -> float | None:
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], np.float64)
    return float(v.mean()) if v.size else None


def _runs(rows: Sequence[dict]) -> dict[tuple[str, str], list[list[dict]]]:
    """Rows grouped into runs (case, object, protocol, kind), each sorted by step, keyed by (protocol, kind)."""
    grouped = defaultdict(list)
    for r in rows:
        grouped[(r["case"], r["object"], r["protocol"], r["kind"])].append(r)
    out = defaultdict(list)
    for (_, _, protocol, kind), run in grouped.items():
        out[(protocol, kind)].append(sorted(run, key=lambda r: r["step"]))
    return out


def summarize(rows: Sequence[dict]) -> dict:
    """Per protocol and kind: number of runs, mean Dice / NSD / seconds per step (index = step, 0 = initial
    prompt), mean AUC of Dice and NSD over the steps (`metrics.auc`, in [0, 1]), mean final Dice / NSD, and the
    mean time of a session call (steps where a prompt was given). NSD entries are None when NSD was skipped."""
    result: dict = {}
    for (protocol, kind), runs in sorted(_runs(rows).items()):
        n_steps = max(len(r) for r in runs)
        per_step = {m: [_mean(run[s][m] for run in runs if len(run) > s) for s in range(n_steps)]
                    for m in ("dice", "nsd")}
        seconds = [_mean(run[s]["seconds"] for run in runs if len(run) > s and run[s]["prompt"] != "none")
                   for s in range(n_steps)]
        given = [r["seconds"] for run in runs for r in run if r["prompt"] != "none"]
        entry = {
            "runs": len(runs),
            "dice": per_step["dice"],
            "nsd": per_step["nsd"],
            "seconds": seconds,
            "dice_auc": _mean(auc([r["dice"] for r in run]) for run in runs),
            "nsd_auc": _mean(auc([r["nsd"] for r in run]) for run in runs),
            "final_dice": _mean(run[-1]["dice"] for run in runs),
            "final_nsd": _mean(run[-1]["nsd"] for run in runs),
            "seconds_per_step": _mean(given),
            "prompts_given": len(given),
        }
        result.setdefault(protocol, {})[kind] = entry
    return result


def write_summary(summary: dict, path: str | os.PathLike) -> None:
    atomic_write_json(path, summary)


def plot(results: dict, out_dir: str | os.PathLike, *, title: str = "") -> list[Path]:
    """One PNG per protocol, ``dice_<protocol>.png``: mean Dice (left) and NSD (right) vs the number of prompts,
    one line per kind. Returns the written files."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    written = []
    for protocol, kinds in results.items():
        with plt.style.context("default"):  # as plot_learning_curve: independent of nnU-Net's global style
            fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
            for ax, metric in zip(axes, ("dice", "nsd")):
                for kind, entry in kinds.items():
                    y = [np.nan if v is None else v for v in entry[metric]]
                    ax.plot(np.arange(1, len(y) + 1), y, marker="o", label=f"{kind} (n={entry['runs']})")
                ax.set_xlabel("interaction (prompts given)")
                ax.set_ylabel("Dice" if metric == "dice" else "NSD")
                ax.set_ylim(0, 1)
                ax.grid(alpha=0.3)
            axes[0].legend(loc="lower right", fontsize=8)
            fig.suptitle(f"{title} protocol {protocol}".strip())
        path = out_dir / f"dice_{protocol}.png"
        tmp = path.with_name(f".{path.name}.tmp.png")
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        os.replace(tmp, path)
        written.append(path)
    return written


def plot_learning_curve(records: Sequence[dict], path: str | os.PathLike, *, title: str = "") -> Path | None:
    """Held-out Dice after the first prompt, per kind, against training minutes, from ``metrics.jsonl`` records
    (``train_minutes`` and ``val_dice_1_<kind>`` of the epochs with interactive validation). Written atomically;
    None when no record has a validation."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = [r for r in records if "val_dice_1" in r and "train_minutes" in r]
    if not rows:
        return None
    kinds = sorted({k[len("val_dice_1_"):] for r in rows for k in r if k.startswith("val_dice_1_")})
    with plt.style.context("default"):  # nnU-Net's progress plot leaves seaborn's large fonts set globally
        fig = _learning_curve_figure(plt, rows, kinds, title)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _learning_curve_figure(plt, rows: Sequence[dict], kinds: Sequence[str], title: str):
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    x = [r["train_minutes"] for r in rows]
    for kind in kinds:
        ax.plot(x, [r.get(f"val_dice_1_{kind}", np.nan) for r in rows], marker="o", label=kind)
    ax.plot(x, [r["val_dice_1"] for r in rows], color="black", linestyle="--", label="mean")
    ax.set_xlabel("training time (minutes, without validation)")
    ax.set_ylabel("held-out Dice after 1 prompt")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or "learning curve", fontsize=10)
    return fig
