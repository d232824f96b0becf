"""Evaluation outputs: results.csv (one row per case, object, protocol, kind and step), segfm3d_cases.csv (the
challenge's per-case metrics), the summary dict (per-step means, AUCs, finals, timings, counts) and
Dice/NSD-vs-interaction plots; all written atomically."""

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
from nninteractive_train.evaluation.segfm3d import case_metrics

__all__ = ["COLUMNS", "write_csv", "challenge_cases", "write_challenge_csv", "summarize", "plot",
           "plot_learning_curve", "write_summary"]

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


def challenge_cases(rows: Sequence[dict]) -> list[dict]:
    """The challenge's per-case metrics (its ``{teamname}_metrics.csv`` row) from the segfm3d rows.

    Per case, the segfm3d runs (one per class) give Dice and NSD (C, S); `segfm3d.case_metrics` makes the class
    means, the NSD gate (0 where the step's DSC ≤ 0.2), the AUCs over the click steps and the finals. Times: the
    challenge times one container run per step for all classes, here the session calls of all classes of that
    step are added up; runtime_upperbound is its limit of 90 s per class.

    Returns:
        One dict per case (in order of first appearance): CaseName, TotalRunningTime, RunningTime_1..S, DSC_AUC,
        NSD_AUC, DSC_Final, NSD_Final, DSC_1..S, NSD_1..S, num_class, runtime_upperbound.
    """
    by_case: dict[str, list[list[dict]]] = defaultdict(list)
    for (protocol, _), runs in _runs(rows).items():
        if protocol == "segfm3d":
            for run in runs:
                by_case[run[0]["case"]].append(run)
    out = []
    for case, runs in by_case.items():
        steps = min(len(r) for r in runs)
        dice = np.array([[r[s]["dice"] for s in range(steps)] for r in runs], np.float64)
        nsd = np.array([[r[s]["nsd"] for s in range(steps)] for r in runs], np.float64)
        m = case_metrics(dice, nsd, n_clicks=steps - 1)
        times = [float(sum(r[s]["seconds"] for r in runs)) for s in range(steps)]
        row = {"CaseName": case, "TotalRunningTime": sum(times)}
        row.update({f"RunningTime_{s + 1}": t for s, t in enumerate(times)})
        row.update({k: m[k] for k in ("DSC_AUC", "NSD_AUC", "DSC_Final", "NSD_Final")})
        row.update({f"DSC_{s + 1}": m[f"DSC_{s + 1}"] for s in range(steps)})
        row.update({f"NSD_{s + 1}": m[f"NSD_{s + 1}"] for s in range(steps)})
        row.update(num_class=m["num_class"], runtime_upperbound=90 * m["num_class"])
        out.append(row)
    return out


def write_challenge_csv(cases: Sequence[dict], path: str | os.PathLike) -> None:
    """segfm3d_cases.csv: the `challenge_cases` rows, columns as the challenge's metrics CSV."""
    columns = list(cases[0]) if cases else ["CaseName", "TotalRunningTime", "DSC_AUC", "NSD_AUC", "DSC_Final",
                                            "NSD_Final", "num_class", "runtime_upperbound"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for c in cases:
        writer.writerow([_fmt(c.get(k, "")) for k in columns])
    atomic_write_text(path, buf.getvalue())


def _challenge_summary(cases: Sequence[dict]) -> dict:
    """Means over cases of the challenge's five scores (None where NaN, e.g. AUCs with fewer than 2 clicks)."""
    out = {"cases": len(cases)}
    for key in ("DSC_AUC", "NSD_AUC", "DSC_Final", "NSD_Final", "TotalRunningTime"):
        out[key] = _mean(c[key] for c in cases)
    return out


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
    mean time of a session call (steps where a prompt was given). NSD entries are None when NSD was skipped.
    segfm3d also gets "challenge": the means over cases of the challenge's scores (`challenge_cases`)."""
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
        if protocol == "segfm3d":
            entry["challenge"] = _challenge_summary(challenge_cases(rows))
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
