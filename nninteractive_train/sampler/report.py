"""The sampling report: expected (exact) and optionally empirical shares of a collection's training samples."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..data.manifest import Manifest
from .object_sampler import ObjectSampler
from .tables import sampling_tables

SAMPLING_SUMMARY = "sampling_summary.json"
"""The run folder's copy of ``collection_summary``, written by the trainer at training start for the model card."""


def _chi2(observed: np.ndarray, expected_p: np.ndarray) -> dict[str, float]:
    from scipy.stats import chisquare

    keep = expected_p > 0
    n = observed.sum()
    if keep.sum() < 2 or n == 0:
        return {"statistic": 0.0, "p_value": 1.0, "dof": 0}
    exp = expected_p[keep] / expected_p[keep].sum() * n
    res = chisquare(observed[keep], exp)
    return {"statistic": float(res.statistic), "p_value": float(res.pvalue), "dof": int(keep.sum() - 1)}


def sampling_report(
    manifest: Manifest,
    supervoxel_counts: np.ndarray | None = None,
    *,
    supervoxel_prob: float = 0.2,
    draws: int = 0,
    seed: int = 0,
    size_power: float = 0.0,
) -> dict[str, Any]:
    """Expected shares per dataset, object type and case (exact), and with ``draws > 0`` empirical shares from
    that many sampler draws (stream ``seed``, rank 0, worker 0) with chi-square tests; ``size_power`` as in
    ``sampling_tables``. Returns a JSON-able dict."""
    t = sampling_tables(manifest, supervoxel_counts, supervoxel_prob=supervoxel_prob, size_power=size_power)
    k = manifest.objects_per_case()
    s = t.supervoxel_counts
    ds = manifest.case_dataset
    nds = len(manifest.datasets)
    obj_share = t.object_share(manifest)
    obj_case = np.repeat(np.arange(manifest.n_cases), k)
    emp_case = emp_obj = None
    emp_sv = 0.0
    if draws > 0:
        batch = ObjectSampler(manifest, seed=seed, supervoxel_prob=supervoxel_prob,
                              supervoxel_counts=supervoxel_counts, size_power=size_power).draw_many(draws)
        emp_case = np.bincount(batch.case_index, minlength=manifest.n_cases) / draws
        real = batch.object_index[batch.object_index >= 0]
        emp_obj = np.bincount(real, minlength=manifest.n_objects) / draws
        emp_sv = float((batch.supervoxel > 0).mean())

    datasets = []
    for d, info in enumerate(manifest.datasets):
        sel = ds == d
        row = {
            "name": info["name"], "weight": info["weight"], "cases": int(sel.sum()),
            "drawable_cases": int(t.dataset_cases[d]), "objects": int(k[sel].sum()),
            "objects_per_case": {"mean": float(k[sel].mean()) if sel.any() else 0.0,
                                 "min": int(k[sel].min()) if sel.any() else 0, "max": int(k[sel].max(initial=0))},
            "supervoxels_per_case": float(s[sel].mean()) if sel.any() else 0.0,
            "expected_share": float(t.dataset_share[d]),
            "expected_supervoxel_share": float(np.dot(t.case_share[sel], t.case_sv_prob[sel])),
        }
        if emp_case is not None:
            row["empirical_share"] = float(emp_case[sel].sum())
        datasets.append(row)

    types = []
    obj_ds = ds[obj_case]
    for d, info in enumerate(manifest.datasets):
        for ti, name in enumerate(info["types"]):
            sel = (obj_ds == d) & (manifest.object_type == ti)
            row = {"dataset": info["name"], "type": name, "objects": int(sel.sum()),
                   "override": info.get("object_probs", {}).get(name), "expected_share": float(obj_share[sel].sum())}
            if emp_obj is not None:
                row["empirical_share"] = float(emp_obj[sel].sum())
            types.append(row)

    cases = []
    for c in range(manifest.n_cases):
        row = {"case": str(manifest.case_ids[c]), "dataset": manifest.datasets[int(ds[c])]["name"],
               "objects": int(k[c]), "supervoxels": int(s[c]), "expected_share": float(t.case_share[c])}
        if emp_case is not None:
            row["empirical_share"] = float(emp_case[c])
        cases.append(row)

    report: dict[str, Any] = {
        "collection": manifest.meta.get("name", ""), "cases": manifest.n_cases, "objects": manifest.n_objects,
        "supervoxel_prob": supervoxel_prob, "object_size_power": float(size_power),
        "expected_supervoxel_share": t.supervoxel_share,
        "cases_with_supervoxels": int((s > 0).sum()), "datasets": datasets, "object_types": types, "case_shares": cases,
    }
    if draws > 0:
        obs_ds = np.bincount(ds[batch.case_index], minlength=nds).astype(float)
        report.update({
            "draws": draws, "seed": seed, "empirical_supervoxel_share": emp_sv,
            "chi2": {"dataset": _chi2(obs_ds, t.dataset_share),
                     "case": _chi2(np.bincount(batch.case_index, minlength=manifest.n_cases).astype(float),
                                   t.case_share)},
        })
    return report


def format_markdown(report: dict[str, Any], *, top: int = 10) -> str:
    """The report as markdown tables (datasets, object types, the ``top`` most and least likely cases)."""
    emp = "draws" in report
    pct = lambda x: f"{100 * x:.3f} %"  # noqa: E731
    lines = [f"# Sampling report: {report['collection']}", "",
             f"{report['cases']} cases, {report['objects']} objects; SuperVoxel probability "
             f"{report['supervoxel_prob']}, {report['cases_with_supervoxels']} cases with SuperVoxels; expected "
             f"SuperVoxel share {pct(report['expected_supervoxel_share'])}"
             + (f"; objects drawn ∝ voxels^{report['object_size_power']:g}" if report.get("object_size_power") else "")
             + (f", empirical {pct(report['empirical_supervoxel_share'])} over {report['draws']} draws (seed "
                f"{report['seed']})" if emp else ""), ""]
    if emp:
        c = report["chi2"]
        lines += [f"Chi-square, datasets: {c['dataset']['statistic']:.1f} (dof {c['dataset']['dof']}, p = "
                  f"{c['dataset']['p_value']:.3g}); cases: {c['case']['statistic']:.1f} (dof {c['case']['dof']}, "
                  f"p = {c['case']['p_value']:.3g})", ""]
    head = "| dataset | weight | cases | objects/case (mean, min–max) | SV/case | expected | of which SV |"
    lines += ["## Datasets", "", head + (" empirical |" if emp else ""),
              "|" + "---|" * (7 + emp)]
    for r in report["datasets"]:
        o = r["objects_per_case"]
        lines.append(f"| {r['name']} | {r['weight']:g} | {r['cases']} | {o['mean']:.2f} ({o['min']}–{o['max']}) | "
                     f"{r['supervoxels_per_case']:.2f} | {pct(r['expected_share'])} | "
                     f"{pct(r['expected_supervoxel_share'])} |" + (f" {pct(r['empirical_share'])} |" if emp else ""))
    lines += ["", "## Object types", "", "| dataset | type | objects | override | expected |"
              + (" empirical |" if emp else ""), "|" + "---|" * (5 + emp)]
    for r in report["object_types"]:
        ov = "" if r["override"] is None else f"{r['override']:g}"
        lines.append(f"| {r['dataset']} | {r['type']} | {r['objects']} | {ov} | {pct(r['expected_share'])} |"
                     + (f" {pct(r['empirical_share'])} |" if emp else ""))
    cases = sorted(report["case_shares"], key=lambda r: -r["expected_share"])
    shown = cases if len(cases) <= 2 * top else cases[:top] + cases[-top:]
    which = "all" if len(shown) == len(cases) else f"the {top} most and {top} least likely; --json lists all"
    lines += ["", f"## Cases ({which})",
              "", "| case | dataset | objects | SV | expected |" + (" empirical |" if emp else ""),
              "|" + "---|" * (5 + emp)]
    for r in shown:
        lines.append(f"| {r['case']} | {r['dataset']} | {r['objects']} | {r['supervoxels']} | "
                     f"{pct(r['expected_share'])} |" + (f" {pct(r['empirical_share'])} |" if emp else ""))
    return "\n".join(lines) + "\n"


def collection_summary(preprocessed_base: str | os.PathLike, data_dir: str | os.PathLike,
                       supervoxel_prob: float, *, size_power: float = 0.0) -> dict[str, Any] | None:
    """The per-dataset part of the sampling report for a run's training data, for the run folder and the model
    card: None when the dataset is not a collection (no manifest in ``preprocessed_base``). ``data_dir`` is the
    preprocessed configuration folder (its SuperVoxel index gives the SuperVoxel counts)."""
    from nninteractive_train.data.manifest import MANIFEST_NAME
    from nninteractive_train.data.supervoxels import load_supervoxel_counts

    man_file = Path(preprocessed_base) / MANIFEST_NAME
    if not man_file.is_file():
        return None
    manifest = Manifest.load(man_file)
    report = sampling_report(manifest, load_supervoxel_counts(data_dir, manifest.case_ids.tolist()),
                             supervoxel_prob=supervoxel_prob, size_power=size_power)
    keep = ("collection", "cases", "objects", "supervoxel_prob", "object_size_power", "expected_supervoxel_share",
            "datasets")
    return {k: report[k] for k in keep}
