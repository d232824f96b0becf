"""Evaluate an exported model on an nnU-Net raw dataset: the core of ``nnInteractive_evaluate``.

Cases are read with nnU-Net's reader for the dataset's file ending (SimpleITKIO for NIfTI), so arrays follow
nnU-Net's numpy axis order and spacing is per array axis. Each case gets its own random stream, seeded from
(seed, CRC32 of the case name), so a case's results do not depend on which other cases are evaluated.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from nninteractive_train.evaluation.protocols import PER_KIND, PROTOCOLS, evaluate_case
from nninteractive_train.evaluation.report import (challenge_cases, plot, summarize, write_challenge_csv, write_csv,
                                                   write_summary)
from nninteractive_train.evaluation.session import load_session, num_channels
from nninteractive_train.errors import CaseError  # one case cannot be evaluated (message names it)
from nninteractive_train.paths import SetupError, find_dataset, require_env

__all__ = ["CaseError", "EvalOptions", "list_cases", "load_case", "evaluate_dataset"]

SPLITS = {"imagesTr": "labelsTr", "imagesTs": "labelsTs"}


@dataclass
class EvalOptions:
    """What ``evaluate_dataset`` runs (the CLI's options)."""

    protocols: Sequence[str] = ("per-kind", "segfm3d")  # subset of protocols.PROTOCOLS
    kinds: Sequence[str] = PER_KIND  # per-kind runs to do
    steps: int = 5  # follow-ups after the initial prompt
    nsd_tolerance: float = 2.0  # mm
    max_objects_per_case: int | None = None  # None: every object
    min_object_size: int = 10  # voxels
    object_order: str = "largest"  # how the cap picks objects: largest | random (seeded)
    seed: int = 0
    device: str = "cpu"
    autozoom: bool = True
    split: str = "imagesTr"  # imagesTr | imagesTs (labels from labelsTr | labelsTs)
    cases: Sequence[str] | None = None  # None: all cases of the split
    progress: bool = True
    verbose: bool = False  # let the session print


def list_cases(raw: Path, split: str, file_ending: str) -> list[str]:
    """Case names of ``raw/split``: files named ``<case>_0000<file_ending>``."""
    folder = raw / split
    if not folder.is_dir():
        raise SetupError(f"the dataset has no {split} folder", folder)
    suffix = f"_0000{file_ending}"
    return sorted(p.name[: -len(suffix)] for p in folder.iterdir() if p.name.endswith(suffix))


def _reader(file_ending: str, example: Path):
    if file_ending in (".nii.gz", ".nii", ".nrrd", ".mha", ".gipl"):
        from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

        return SimpleITKIO()
    from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_file_ending

    return determine_reader_writer_from_file_ending(file_ending, str(example), allow_nonmatching_filename=True,
                                                    verbose=False)()


def load_case(raw: Path, case: str, *, split: str = "imagesTr", file_ending: str = ".nii.gz",
              channels: int = 1) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Read one case.

    Returns:
        image: float32 (C, X, Y, Z), the first `channels` image files of the case.
        label: int32 (X, Y, Z).
        spacing: mm per array axis.

    Raises:
        CaseError: a file is missing or unreadable, the label is not integer, or image and label differ in
            shape or spacing.
    """
    images = [raw / split / f"{case}_{c:04d}{file_ending}" for c in range(channels)]
    label_file = raw / SPLITS[split] / f"{case}{file_ending}"
    for f in (*images, label_file):
        if not f.is_file():
            raise CaseError(None, f"case {case}: {f} not found")
    reader = _reader(file_ending, images[0])
    try:
        image, props = reader.read_images([str(f) for f in images])
        label, label_props = reader.read_seg(str(label_file))
    except Exception as e:
        raise CaseError(None, f"case {case}: cannot read its files: {type(e).__name__}: {e}") from e
    image = np.asarray(image, np.float32)
    label = np.asarray(label)[0]
    if image.shape[1:] != label.shape:
        raise CaseError(None, f"case {case}: image shape {tuple(image.shape[1:])} differs from label shape "
                        f"{tuple(label.shape)} ({label_file.name})")
    spacing = tuple(float(s) for s in props["spacing"])
    label_spacing = tuple(float(s) for s in label_props["spacing"])
    if not np.allclose(spacing, label_spacing, rtol=1e-3, atol=1e-6):
        raise CaseError(None, f"case {case}: image spacing {spacing} differs from label spacing {label_spacing}")
    if not np.array_equal(label, np.round(label)):
        raise CaseError(None, f"case {case}: label {label_file.name} has non-integer values")
    return image, label.astype(np.int32), spacing


def _case_rng(seed: int, case: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(case.encode())])


def evaluate_dataset(model_dir: str | os.PathLike, dataset_id: int, out_dir: str | os.PathLike,
                     options: EvalOptions | None = None) -> dict:
    """Evaluate every selected case of a raw dataset and write results.csv, summary.json and the plots (and, with
    segfm3d, segfm3d_cases.csv: the challenge's per-case metrics).

    results.csv is rewritten after every case, so an interrupted run keeps what it finished. A bad case (unreadable,
    mismatched, empty label, or the session failing on its image) is recorded with its reason under
    ``failed_cases`` and the next case goes on.

    Raises:
        ModelLoadError: the model folder does not load (nothing is evaluated).
        SetupError: the dataset or the split is missing, or a requested case does not exist.

    Returns:
        The summary (as written to summary.json).
    """
    from tqdm import tqdm

    o = options or EvalOptions()
    bad = [p for p in o.protocols if p not in PROTOCOLS]
    if bad or not o.protocols:
        raise SetupError(f"unknown protocol(s) {bad}; expected some of {list(PROTOCOLS)}")
    if o.split not in SPLITS:
        raise SetupError(f"split must be one of {list(SPLITS)}, got {o.split!r}")
    raw = find_dataset(require_env("nnUNet_raw"), dataset_id)
    ds_file = raw / "dataset.json"
    if not ds_file.is_file():
        raise SetupError("the dataset has no dataset.json", ds_file)
    ds_json = json.loads(ds_file.read_text())
    file_ending = ds_json.get("file_ending", ".nii.gz")
    available = list_cases(raw, o.split, file_ending)
    cases = list(o.cases) if o.cases else available
    if not cases:
        raise SetupError(f"no cases in {raw / o.split} (expected files <case>_0000{file_ending})")
    session = load_session(model_dir, device=o.device, autozoom=o.autozoom, verbose=o.verbose)
    channels = num_channels(session)
    if len(ds_json.get("channel_names", {"0": None})) < channels:
        raise SetupError(f"the model takes {channels} image channels but {ds_file} lists fewer")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    failed_cases: list[dict] = []
    failed_runs: list[dict] = []
    bar = tqdm(total=len(cases), unit="case", desc="nnInteractive_evaluate", disable=not o.progress)

    def on_run(got: list[dict]) -> None:
        bar.set_postfix_str(f"{got[0]['case']} obj {got[0]['object']} {got[0]['kind']}: "
                            f"dice {got[0]['dice']:.2f}->{got[-1]['dice']:.2f}")

    for case in cases:
        try:
            if case not in available:
                raise CaseError(None, f"case {case}: no image {case}_0000{file_ending} in {raw / o.split}")
            image, label, spacing = load_case(raw, case, split=o.split, file_ending=file_ending, channels=channels)
            got, failures = evaluate_case(
                session, image, label, spacing, rng=_case_rng(o.seed, case), protocols=o.protocols, kinds=o.kinds,
                steps=o.steps, tolerance=o.nsd_tolerance, min_object_size=o.min_object_size,
                max_objects=o.max_objects_per_case, object_order=o.object_order, case=case, on_run=on_run,
                verbose=o.verbose)
            rows.extend(got)
            failed_runs.extend(failures)
        except Exception as e:  # one bad case must not lose the others' results
            if isinstance(e, CaseError):
                msg = str(e)
            elif type(e) is ValueError:  # evaluate_case's own checks: the message says what is wrong
                msg = f"case {case}: {e}"
            else:
                msg = f"case {case}: {type(e).__name__}: {e}"
            failed_cases.append({"case": case, "error": msg})
            bar.write(f"nnInteractive_evaluate: skipped {msg}")
        write_csv(rows, out_dir / "results.csv")
        if "segfm3d" in o.protocols:
            write_challenge_csv(challenge_cases(rows), out_dir / "segfm3d_cases.csv")
        bar.update(1)
    bar.close()
    results = summarize(rows)
    plots = plot(results, out_dir, title=f"{Path(model_dir).name} on {raw.name}") if results else []
    summary = {
        "model_dir": str(Path(model_dir).resolve()),
        "dataset": raw.name,
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(o).items()
                    if k not in ("progress", "verbose")},
        "counts": {
            "cases": len(cases),
            "cases_evaluated": len(cases) - len(failed_cases),
            "cases_failed": len(failed_cases),
            "objects": len({(r["case"], r["object"]) for r in rows}),
            "runs": sum(e["runs"] for kinds in results.values() for e in kinds.values()),
            "runs_failed": len(failed_runs),
        },
        "results": results,
        "failed_cases": failed_cases,
        "failed_runs": failed_runs,
        "files": {"results": "results.csv", "plots": [p.name for p in plots],
                  **({"segfm3d_cases": "segfm3d_cases.csv"} if "segfm3d" in o.protocols else {})},
    }
    write_summary(summary, out_dir / "summary.json")
    return summary
