"""Generating SuperVoxels for every preprocessed case of a dataset.

Storage (beside the preprocessed cases, so it is aligned with them and goes away when they are regenerated):

``<preprocessed config folder>/supervoxels/<case>.npz``
    ``supervoxels`` (Z, Y, X) uint8 map of the preprocessed (cropped) case, 0 = none, 1..n SuperVoxels;
    ``voxels`` (n,) int64; ``bbox`` (n, 6) int32 half-open boxes; ``centers`` (M, 3) int32 and
    ``center_offsets`` (n + 1,) int64 patch-centre candidates (see :mod:`nninteractive_train.data.centers`).
``<preprocessed config folder>/supervoxels/index.json``
    ``{"format": 1, "backend": ..., "config": {...}, "sam": {...} | null, "counts": {case: n},
    "failed": {case: message}}``.

A case whose generation fails has no file and is listed under ``failed`` (and logged); it then simply has no
SuperVoxels.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import uuid
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ...errors import SetupError
from ..centers import CenterConfig, center_candidates
from ..instances import instance_stats
from .backends import SupervoxelConfig, felzenszwalb_segments, select_segments, slic_segments
from .sam import SamConfig, SamSegmenter, check_sam

log = logging.getLogger(__name__)

SUPERVOXEL_DIR = "supervoxels"
INDEX_NAME = "index.json"
BACKENDS = ("slic", "felzenszwalb", "sam")


@dataclass(frozen=True)
class CaseSupervoxels:
    """The SuperVoxels of one case (arrays as stored, see the module docstring)."""

    supervoxels: np.ndarray
    voxels: np.ndarray
    bbox: np.ndarray
    centers: np.ndarray
    center_offsets: np.ndarray

    @property
    def count(self) -> int:
        return int(self.voxels.shape[0])


def supervoxels_for_case(
    image: np.ndarray,
    valid: np.ndarray,
    *,
    spacing,
    config: SupervoxelConfig = SupervoxelConfig(),
    centers: CenterConfig = CenterConfig(),
    segmenter=None,
    rng: np.random.Generator,
) -> CaseSupervoxels:
    """SuperVoxels of one (Z, Y, X) image.

    Args:
        image: preprocessed intensities; valid: bool mask of voxels inside the image (nnU-Net: ``seg >= 0``).
        spacing: mm per axis; config: backend and filter settings; centers: centre-candidate settings.
        segmenter: for ``backend="sam"``, a :class:`~.sam.SamSegmenter`.
        rng: random generator (centre candidates).
    """
    if config.backend == "slic":
        seg = slic_segments(image, valid, spacing=spacing, config=config)
    elif config.backend == "felzenszwalb":
        seg = felzenszwalb_segments(image, valid, spacing=spacing, config=config)
    elif config.backend == "sam":
        if segmenter is None:
            raise ValueError("backend 'sam' needs a SamSegmenter")
        seg = segmenter(image, valid, spacing=spacing)
    else:
        raise ValueError(f"unknown SuperVoxel backend {config.backend!r}; choose from {BACKENDS}")
    sv = select_segments(seg, image, valid, config=config)
    n = int(sv.max())
    voxels, bbox = instance_stats(sv, n)
    coords, offsets = center_candidates(sv, [[i] for i in range(1, n + 1)], spacing=spacing, config=centers,
                                        bboxes=bbox, rng=rng)
    return CaseSupervoxels(sv, voxels, bbox, coords, offsets)


def save_case_supervoxels(path: Path, sv: CaseSupervoxels) -> None:
    """Write one case's SuperVoxels atomically (compressed ``.npz``)."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, supervoxels=sv.supervoxels, voxels=sv.voxels, bbox=sv.bbox, centers=sv.centers,
                                center_offsets=sv.center_offsets)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_case_supervoxels(path: str | os.PathLike) -> CaseSupervoxels:
    """Read one case's SuperVoxels written by :func:`save_case_supervoxels`."""
    with np.load(path, allow_pickle=False) as z:
        return CaseSupervoxels(z["supervoxels"], z["voxels"], z["bbox"], z["centers"], z["center_offsets"])


def load_supervoxel_counts(folder: str | os.PathLike, case_ids) -> np.ndarray:
    """(n,) int64 SuperVoxels per case for ``case_ids`` from ``folder/supervoxels/index.json`` (0 where absent;
    all 0 if there is no index). ``folder`` is the preprocessed configuration folder."""
    index = Path(folder) / SUPERVOXEL_DIR / INDEX_NAME
    counts = json.loads(index.read_text()).get("counts", {}) if index.is_file() else {}
    return np.array([int(counts.get(str(c), 0)) for c in case_ids], np.int64)


# --- driver --------------------------------------------------------------------------------------------------

_SEGMENTER = None


def _init_worker(sam_cfg):
    global _SEGMENTER
    _SEGMENTER = SamSegmenter(sam_cfg) if sam_cfg is not None else None


def _case_job(args) -> tuple[str, int | None, str | None]:
    folder, case, config, centers, seed = args
    try:
        from nnunetv2.training.dataloading.nnunet_dataset import nnUNetDatasetBlosc2

        data, seg, _, props = nnUNetDatasetBlosc2(folder, [case]).load_case(case)
        image = np.asarray(data[0], dtype=np.float32)
        valid = np.asarray(seg[0]) >= 0
        spacing = [float(s) for s in props.get("spacing", (1.0, 1.0, 1.0))]
        rng = np.random.default_rng([seed, zlib.crc32(case.encode())])
        sv = supervoxels_for_case(image, valid, spacing=spacing, config=config, centers=centers,
                                  segmenter=_SEGMENTER, rng=rng)
        save_case_supervoxels(Path(folder) / SUPERVOXEL_DIR / f"{case}.npz", sv)
        return case, sv.count, None
    except Exception as e:  # a failing case simply gets no SuperVoxels
        return case, None, f"{type(e).__name__}: {e}"


def generate_supervoxels(
    folder: str | os.PathLike,
    *,
    config: SupervoxelConfig = SupervoxelConfig(),
    centers: CenterConfig | None = None,
    sam: SamConfig | None = None,
    num_processes: int = 1,
    overwrite: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Generate SuperVoxels for every case in a preprocessed configuration folder (``.b2nd`` files).

    Cases that already have a file are kept unless ``overwrite``. Returns the index written to
    ``folder/supervoxels/index.json``. ``backend="sam"`` needs ``sam`` (checked before any work; raises
    :class:`~.sam.SamUnavailable`) and runs in one process per GPU (``num_processes`` is capped at 1).
    ``centers`` None: the centre-candidate settings the preprocessing recorded (``centers/info.json``, the run
    config's ``data.center_bias``), so objects and SuperVoxels share one centre bias.
    """
    from nnunetv2.training.dataloading.nnunet_dataset import nnUNetDatasetBlosc2

    folder = Path(folder)
    if centers is None:
        from ..centers import recorded_center_config

        centers = recorded_center_config(folder / "centers")
    if config.backend not in BACKENDS:
        raise ValueError(f"unknown SuperVoxel backend {config.backend!r}; choose from {BACKENDS}")
    if config.backend == "sam":
        check_sam(sam or SamConfig())
        num_processes = 1
    cases = sorted(nnUNetDatasetBlosc2.get_identifiers(str(folder)))
    if not cases:
        raise SetupError("no preprocessed cases (.b2nd) in the folder", folder,
                         hint="run nnInteractive_plan_and_preprocess for this dataset first")
    out = folder / SUPERVOXEL_DIR
    out.mkdir(exist_ok=True)
    index_file = out / INDEX_NAME
    old = json.loads(index_file.read_text()) if index_file.is_file() else {}
    counts: dict[str, int] = {}
    failed: dict[str, str] = {}
    todo = []
    for c in cases:
        f = out / f"{c}.npz"
        if f.is_file() and not overwrite:
            counts[c] = int(old.get("counts", {}).get(c, -1))
            if counts[c] < 0:
                counts[c] = load_case_supervoxels(f).count
        else:
            todo.append(c)
    args = [(str(folder), c, config, centers, seed) for c in todo]
    sam_cfg = sam if config.backend == "sam" else None
    with tqdm(total=len(cases), initial=len(cases) - len(todo), desc="SuperVoxels", disable=not progress) as bar:
        if num_processes > 1 and len(todo) > 1:
            with multiprocessing.get_context("spawn").Pool(num_processes, _init_worker, (sam_cfg,)) as pool:
                results = pool.imap_unordered(_case_job, args)
                _gather(results, counts, failed, bar)
        else:
            _init_worker(sam_cfg)
            _gather(map(_case_job, args), counts, failed, bar)
    for c in failed:
        (out / f"{c}.npz").unlink(missing_ok=True)
    index = {"format": 1, "backend": config.backend, "config": asdict(config), "centers": asdict(centers),
             "sam": asdict(sam_cfg) if sam_cfg is not None else None, "seed": seed,
             "counts": dict(sorted(counts.items())), "failed": dict(sorted(failed.items()))}
    tmp = index_file.with_name(f".{INDEX_NAME}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(index, indent=1))
    os.replace(tmp, index_file)
    log.info("SuperVoxels for %d cases in %s (%.2f per case, %d failed)", len(counts), out,
             float(np.mean(list(counts.values()))) if counts else 0.0, len(failed))
    return index


def _gather(results, counts, failed, bar) -> None:
    for case, n, err in results:
        bar.update(1)
        if err is None:
            counts[case] = n
        else:
            log.warning("SuperVoxels failed for case %s: %s", case, err)
            failed[case] = err
