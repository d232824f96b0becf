"""Building a collection: dataset list → one merged nnU-Net raw dataset with instance labels + manifest.

Every case is written into a hidden staging folder next to the output (``$nnUNet_raw/.DatasetXXX_NAME.building``),
each file through a temporary name and a rename, with a per-case result record written last; the finished staging
folder then replaces the output folder. So a bad input or an interruption never touches the output folder, and a
re-run reuses every finished case whose inputs and conversion settings are unchanged (from the staging folder of an
interrupted run or from the previous output).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import SetupError
from ..files import atomic_write_json, replace_dir
from .case_io import CaseError, link_or_copy, place_image, read_image, read_label, write_label
from .dataset_list import CollectionSpec, DatasetListError, LabelRule, load_dataset_list, resolve_labels
from .instances import instance_stats, make_objects, to_instances
from .manifest import MANIFEST_NAME, Manifest
from .paths import dataset_folder_name, env_folder, find_dataset

log = logging.getLogger(__name__)

RESULTS_DIR = ".nninteractive_build"
SKIPPED_NAME = "nnInteractive_skipped.json"


@dataclass(frozen=True)
class CaseJob:
    """Everything needed to convert one source case (picklable for worker processes)."""

    key: str
    dataset: int
    source_case: str
    label_file: str
    image_files: tuple[str, ...]  # one per output case
    out_ids: tuple[str, ...]
    out_sources: tuple[str, ...]
    rules: dict[int, LabelRule]
    ignore: frozenset[int]
    label_types: dict[int, int]
    combinations: dict[int, tuple[int, ...]]
    allow_empty: bool
    instance_rule: LabelRule | None = None
    link_images: bool = False
    signature: str = ""


@dataclass
class BuildResult:
    """What a build produced."""

    folder: Path
    manifest: Manifest
    skipped: dict[str, str] = field(default_factory=dict)  # file → problem
    reused: int = 0
    converted: int = 0


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", s)


def plan_jobs(spec: CollectionSpec, *, evaluation: bool = False) -> tuple[list[CaseJob], list[dict]]:
    """Resolve the training datasets of ``spec`` (or, with ``evaluation``, its ``evaluation_only`` datasets) and
    list their case jobs; the other datasets are skipped with a log line.

    Returns ``(jobs, dataset_meta)``. Raises :class:`DatasetListError` (naming the list file and dataset) for an
    unresolvable source or label, :class:`CaseError` for a case with missing image channels.
    """
    from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets

    jobs, metas = [], []
    for spec_ds in spec.datasets:
        where = f"{spec.path}: dataset {spec_ds.name!r}"
        if spec_ds.evaluation_only != evaluation:
            # held-out test sets must never reach a training collection (and training sets not an evaluation one)
            log.info("%s is %s; skipped", where, "evaluation-only" if spec_ds.evaluation_only else "a training dataset")
            continue
        if spec_ds.source is None:
            log.warning("%s has no source (not mapped to a local dataset); skipped", where)
            continue
        try:
            folder = find_dataset(spec_ds.source)
        except SetupError as e:
            raise DatasetListError(f"{where}: source {spec_ds.source!r} not found ({e.what})", e.file) from None
        dj_file = folder / "dataset.json"
        if not dj_file.is_file():
            raise DatasetListError(f"{where}: {dj_file} is missing")
        try:
            dj = json.loads(dj_file.read_text())
        except json.JSONDecodeError as e:
            raise DatasetListError(f"{dj_file}: not valid JSON ({e})") from None
        for k in ("labels", "file_ending"):
            if k not in dj:
                raise DatasetListError(f"{dj_file}: no '{k}' entry")
        resolved = resolve_labels(spec_ds, dj["labels"], where)
        ds_index = len(metas)
        metas.append({
            "name": spec_ds.name, "source": str(folder), "weight": spec_ds.weight, "types": list(resolved.types),
            "object_probs": spec_ds.object_probs, "info": spec_ds.info, "channels": list(spec_ds.channels),
        })
        type_index = {t: i for i, t in enumerate(resolved.types)}
        label_types = {v: type_index[n] for v, n in resolved.names.items()}
        combos = {type_index[c]: vals for c, vals in resolved.combinations.items()}
        files = get_filenames_of_train_images_and_targets(str(folder), dj)
        skip = set(spec_ds.skip_cases)
        _check_orphan_labels(folder, dj, files, skip)
        for case in sorted(files):
            if case in skip:
                continue
            images = files[case]["images"]
            if max(spec_ds.channels) >= len(images):
                expected = f"{case}_{max(spec_ds.channels):04d}{dj['file_ending']}"
                raise CaseError(folder / "imagesTr" / expected, f"image channel {max(spec_ds.channels)} is missing "
                                f"(dataset {spec_ds.name!r} uses channels {list(spec_ds.channels)})")
            multi = len(spec_ds.channels) > 1 or spec_ds.channels != (0,)
            base = _safe(f"{spec_ds.name}_{case}")
            out_ids = tuple(f"{base}_c{c}" if multi else base for c in spec_ds.channels)
            out_src = tuple(f"{case}@c{c}" if c else case for c in spec_ds.channels)
            job = CaseJob(
                key=base, dataset=ds_index, source_case=case, label_file=files[case]["label"],
                image_files=tuple(images[c] for c in spec_ds.channels), out_ids=out_ids, out_sources=out_src,
                rules=resolved.rules, ignore=resolved.ignore, label_types=label_types, combinations=combos,
                allow_empty=spec_ds.allow_empty, instance_rule=resolved.instance_rule,
            )
            jobs.append(_with_signature(job))
    if not jobs:
        which = "evaluation_only" if evaluation else "training (not evaluation_only)"
        raise DatasetListError(f"{spec.path}: no cases to build from its {which} datasets (are the sources mapped?)")
    ids = [i for j in jobs for i in j.out_ids]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise DatasetListError(f"{spec.path}: merged case identifiers collide, e.g. {dupes}")
    return jobs, metas


def _check_orphan_labels(folder: Path, dj: dict, files: dict, skip: set[str]) -> None:
    # nnU-Net lists cases by their images, so a case whose image is missing would silently disappear
    if "dataset" in dj or not (folder / "labelsTr").is_dir():
        return
    ending = dj["file_ending"]
    for p in sorted((folder / "labelsTr").iterdir()):
        case = p.name[: -len(ending)]
        if p.name.endswith(ending) and not p.name.startswith(".") and case not in files and case not in skip:
            raise CaseError(folder / "imagesTr" / f"{case}_0000{ending}", f"image file is missing (label {p} exists)")


def _with_signature(job: CaseJob) -> CaseJob:
    def stat(f):
        try:
            st = os.stat(f)
            return [str(f), st.st_size, st.st_mtime_ns]
        except OSError:
            return [str(f), None, None]

    payload = {
        "rules": {str(k): asdict(v) for k, v in job.rules.items()}, "ignore": sorted(job.ignore),
        "types": {str(k): v for k, v in job.label_types.items()},
        "combos": {str(k): list(v) for k, v in job.combinations.items()}, "allow_empty": job.allow_empty,
        "instance_rule": asdict(job.instance_rule) if job.instance_rule else None,
        "out": list(job.out_ids), "src": list(job.out_sources), "dataset": job.dataset,
        "files": [stat(job.label_file)] + [stat(f) for f in job.image_files], "version": 1,
    }
    sig = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]
    return CaseJob(**{**job.__dict__, "signature": sig})


def _case_files(folder: Path, case_id: str) -> tuple[Path, Path]:
    return folder / "imagesTr" / f"{case_id}_0000.nii.gz", folder / "labelsTr" / f"{case_id}.nii.gz"


def convert_case(job: CaseJob, staging: str) -> dict:
    """Validate and convert one source case into ``staging``; returns its result record.

    The record (``{"key", "signature", "cases": [...]}``, one manifest record per output case) is also written to
    ``staging/.nninteractive_build/<key>.json`` after all files are in place. Raises :class:`CaseError`.
    """
    staging = Path(staging)
    labels, props = read_label(job.label_file)
    shape, spacing = labels.shape, [float(s) for s in props["spacing"]]
    for f in job.image_files:
        read_image(f, shape=shape, spacing=spacing, label_file=job.label_file)
    rules, label_types = job.rules, job.label_types
    if job.instance_rule is not None:
        # already an instance map: every positive value is its own instance of type 0
        values = [int(v) for v in np.unique(labels) if v > 0 and int(v) not in job.ignore]
        rules, label_types = {v: job.instance_rule for v in values}, {v: 0 for v in values}
    try:
        inst, owners = to_instances(labels, rules, ignore=job.ignore)
    except ValueError as e:
        raise CaseError(job.label_file, str(e)) from None
    if owners.size == 0 and not job.allow_empty:
        raise CaseError(job.label_file, "label map has no objects (empty, or everything ignored or below min_size); "
                                        "set allow_empty: true for this dataset to keep such cases")
    voxels, bbox = instance_stats(inst, owners.size)
    objs = make_objects(owners, voxels, bbox, label_types=label_types, combinations=job.combinations)
    first_label = None
    cases = []
    for case_id, src_id, img in zip(job.out_ids, job.out_sources, job.image_files):
        img_out, lab_out = _case_files(staging, case_id)
        place_image(Path(img), img_out, link=job.link_images)
        if first_label is None:
            write_label(inst, props, lab_out)
            first_label = lab_out
        else:
            link_or_copy(first_label, lab_out)
        cases.append({
            "case_id": case_id, "source": src_id, "dataset": job.dataset, "shape": list(shape), "spacing": spacing,
            "instances": int(owners.size), "types": objs.types.tolist(), "kinds": objs.kinds.tolist(),
            "voxels": objs.voxels.tolist(), "bbox": objs.bbox.tolist(), "ids": objs.ids.tolist(),
            "id_offsets": objs.id_offsets.tolist(),
        })
    record = {"key": job.key, "signature": job.signature, "cases": cases}
    _write_json(staging / RESULTS_DIR / f"{job.key}.json", record)
    return record


def _write_json(path: Path, obj) -> None:
    atomic_write_json(path, obj, indent=None)


def _reuse(job: CaseJob, folder: Path, staging: Path) -> dict | None:
    """The finished record of ``job`` from ``folder`` (staging or a previous output), with its files linked into
    ``staging``; None if absent or stale."""
    rec_file = folder / RESULTS_DIR / f"{job.key}.json"
    try:
        rec = json.loads(rec_file.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if rec.get("signature") != job.signature:
        return None
    files = [p for c in job.out_ids for p in _case_files(folder, c)]
    if not all(p.is_file() for p in files):
        return None
    if folder != staging:
        for src in files:
            link_or_copy(src, staging / src.parent.name / src.name)
        _write_json(staging / RESULTS_DIR / rec_file.name, rec)
    return rec


def _run(job_and_staging):
    job, staging = job_and_staging
    try:
        return convert_case(job, staging)
    except CaseError as e:
        return {"key": job.key, "error": str(e), "file": e.file, "problem": e.problem}


def build_collection(
    list_file: str | os.PathLike,
    dataset_id: int,
    *,
    name: str | None = None,
    skip_bad: bool = False,
    num_processes: int = 1,
    link_images: bool = False,
    progress: bool = True,
    evaluation: bool = False,
) -> BuildResult:
    """Build the collection declared in ``list_file`` as ``$nnUNet_raw/Dataset{dataset_id:03d}_{name}``.

    Args:
        list_file: dataset list YAML (format in ``dataset_lists/README.md``).
        dataset_id: nnU-Net id of the merged dataset.
        name: dataset name; default the list's ``name``.
        skip_bad: leave out bad cases (listed in ``nnInteractive_skipped.json``) instead of stopping at the first.
        num_processes: worker processes for conversion (1 = in this process).
        link_images: hard-link ``.nii.gz`` source images instead of copying them (saves disk; an in-place edit
            of a source then changes the merged dataset too).
        evaluation: build only the datasets marked ``evaluation_only`` (held-out test sets) instead of the
            training datasets.

    Raises :class:`~nninteractive_train.data.dataset_list.DatasetListError` or
    :class:`~nninteractive_train.data.case_io.CaseError` (naming the file) and leaves the output folder as it was.
    """
    spec = load_dataset_list(list_file)
    raw = env_folder("nnUNet_raw")
    out = raw / dataset_folder_name(dataset_id, name or spec.name)
    clash = [p.name for p in raw.glob(f"Dataset{int(dataset_id):03d}_*") if p.is_dir() and p != out]
    if clash:
        raise DatasetListError(f"{spec.path}: dataset id {dataset_id} is already used by {clash} in {raw}")
    _restore_interrupted_swap(out)
    jobs, metas = plan_jobs(spec, evaluation=evaluation)
    if link_images:
        jobs = [CaseJob(**{**j.__dict__, "link_images": True}) for j in jobs]
    staging = raw / f".{out.name}.building"
    for sub in ("imagesTr", "labelsTr", RESULTS_DIR):
        (staging / sub).mkdir(parents=True, exist_ok=True)

    records: dict[str, dict] = {}
    todo = []
    for job in jobs:
        rec = _reuse(job, staging, staging) or (_reuse(job, out, staging) if out.is_dir() else None)
        if rec is None:
            todo.append(job)
        else:
            records[job.key] = rec
    skipped: dict[str, str] = {}
    bar = tqdm(total=len(jobs), initial=len(records), desc="Building collection", disable=not progress)
    args = [(j, str(staging)) for j in todo]
    try:
        if num_processes > 1 and len(todo) > 1:
            with multiprocessing.get_context("spawn").Pool(num_processes) as pool:
                _collect(pool.imap(_run, args), records, skipped, skip_bad, bar)
        else:
            _collect(map(_run, args), records, skipped, skip_bad, bar)
    finally:
        bar.close()

    cases = [c for j in jobs if j.key in records for c in records[j.key]["cases"]]
    meta = {"name": name or spec.name, "list_file": str(spec.path), "list_sha256": spec.sha256, "datasets": metas,
            "evaluation": evaluation}  # an evaluation build holds only held-out (evaluation_only) datasets
    manifest = Manifest.from_cases(meta, cases)
    _finalise(staging, out, manifest, skipped, {j.key for j in jobs if j.key in records})
    log.info("built %s: %d cases, %d objects (%d converted, %d reused, %d skipped)", out, manifest.n_cases,
             manifest.n_objects, len(todo) - len(skipped), len(jobs) - len(todo), len(skipped))
    return BuildResult(folder=out, manifest=manifest, skipped=skipped, reused=len(jobs) - len(todo),
                       converted=len(todo) - len(skipped))


def _collect(results, records, skipped, skip_bad, bar) -> None:
    for rec in results:
        bar.update(1)
        if "error" in rec:
            if not skip_bad:
                raise CaseError(rec["file"], rec["problem"])
            log.warning("skipping bad case: %s", rec["error"])
            skipped[rec["file"]] = rec["problem"]
        else:
            records[rec["key"]] = rec


def _restore_interrupted_swap(out: Path) -> None:
    # a crash between the two renames of _finalise leaves only the old output under its hidden name
    olds = sorted(out.parent.glob(f".{out.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds and not out.exists():
        log.warning("restoring %s from an interrupted build", out)
        os.replace(olds[-1], out)


def _finalise(staging: Path, out: Path, manifest: Manifest, skipped: dict, keys: set[str]) -> None:
    """Remove leftovers of other builds from ``staging``, write dataset.json, the manifest and the skip list, then
    swap ``staging`` in as ``out``."""
    want = set(manifest.case_ids.tolist())
    for p in (staging / "imagesTr").iterdir():
        if p.name[:-len("_0000.nii.gz")] not in want or not p.name.endswith("_0000.nii.gz"):
            p.unlink()
    for p in (staging / "labelsTr").iterdir():
        if p.name[:-len(".nii.gz")] not in want or not p.name.endswith(".nii.gz"):
            p.unlink()
    for p in (staging / RESULTS_DIR).iterdir():
        if p.stem not in keys:
            p.unlink()
    max_inst = max(1, int(manifest.case_instances.max(initial=0)))
    labels = {"background": 0, **{f"instance_{i}": i for i in range(1, max_inst + 1)}}
    dataset_json = {
        "channel_names": {"0": "image"}, "labels": labels, "numTraining": manifest.n_cases,
        "file_ending": ".nii.gz", "name": manifest.meta["name"],
        "description": "nnInteractive training collection: label maps hold instances 1..N per case; objects "
                       f"(instance id sets) are in {MANIFEST_NAME}",
        "nninteractive": {"format": 1, "label_kind": "instances", "manifest": MANIFEST_NAME,
                          "max_instances": max_inst, "list_file": manifest.meta["list_file"],
                          "list_sha256": manifest.meta["list_sha256"]},
    }
    _write_json(staging / "dataset.json", dataset_json)
    manifest.save(staging / MANIFEST_NAME)
    _write_json(staging / SKIPPED_NAME, skipped)
    replace_dir(staging, out)

