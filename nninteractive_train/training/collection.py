"""Hook between a built collection (manifest, centre candidates, SuperVoxels) and the data loader.

A dataset built by ``nnInteractive_build_collection`` carries a manifest; its objects are then drawn by the
collection sampler (dataset ∝ sqrt(cases) × weight, case ∝ sqrt(objects), SuperVoxel with p 0.2, object uniform
or by the dataset's overrides), and each patch is centred on a precomputed centre-biased voxel of the object.
Any other dataset trains on connected components of its labels (``loader.py``).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CENTERS_DIR = "centers"


@dataclass
class Pick:
    """One sampled object: case key, centre voxel (3,), and how to build its mask from a label map."""

    key: str
    center: np.ndarray
    ids: np.ndarray
    """Values of ``labels`` that form the object."""
    labels: np.ndarray | None = None
    """The label map to use instead of the case's seg (a SuperVoxel map), (X, Y, Z) or (1, X, Y, Z)."""


class CollectionDraws:
    """Per-worker: the collection sampler plus per-case centre candidates and SuperVoxel maps (lazily read)."""

    def __init__(self, sampler, data_dir: str):
        self.sampler = sampler
        self.data_dir = Path(data_dir)

    def draw_sample(self, *, rng: np.random.Generator) -> Pick:
        from nninteractive_train.data.centers import load_centers, pick_center

        d = self.sampler.draw()
        m = self.sampler.manifest
        if d.kind == "supervoxel":
            from nninteractive_train.data.supervoxels.generate import load_case_supervoxels

            sv = load_case_supervoxels(self.data_dir / "supervoxels" / f"{d.case}.npz")
            center = pick_center(sv.centers, sv.center_offsets, d.supervoxel - 1, rng=rng)
            return Pick(d.case, center, np.array([d.supervoxel]), labels=sv.supervoxels)
        coords, offsets = load_centers(self.data_dir / CENTERS_DIR / f"{d.case}.npz")
        local = d.object_index - int(m.case_object_start[d.case_index])
        return Pick(d.case, pick_center(coords, offsets, local, rng=rng), np.asarray(d.instance_ids))

    def state_dict(self) -> dict:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state)


@dataclass
class CollectionFactory:
    """Picklable: builds a worker's ``CollectionDraws`` from its stream seed (in the worker process)."""

    dataset: str
    data_dir: str
    case_ids: list
    rank: int
    supervoxel_prob: float
    size_power: float = 0.0

    def __call__(self, seed: int) -> CollectionDraws:
        from nninteractive_train.sampler.collection import collection_sampler

        # ``seed`` already identifies (run seed, rank, worker, start epoch) and is recorded in the sampler's state,
        # so a resume rebuilds the same stream from its saved state
        sampler = collection_sampler(self.dataset, seed=int(seed), rank=self.rank, worker=0,
                                     case_ids=self.case_ids, preprocessed_folder=self.data_dir,
                                     supervoxel_prob=self.supervoxel_prob, size_power=self.size_power)
        return CollectionDraws(sampler, self.data_dir)


def has_manifest(preprocessed_dataset_dir: str | os.PathLike) -> bool:
    from nninteractive_train.data.manifest import MANIFEST_NAME

    return (Path(preprocessed_dataset_dir) / MANIFEST_NAME).is_file()


def sampler_factory_for(trainer, identifiers) -> CollectionFactory | None:
    """The loader's sampler factory when the dataset has a manifest, else None."""
    from nninteractive_train.data.centers import check_center_bias
    from nninteractive_train.paths import SetupError

    base = Path(trainer.preprocessed_dataset_folder_base)
    if not has_manifest(base):
        return None
    try:
        check_center_bias(trainer.preprocessed_dataset_folder, trainer.run_config.data.center_bias)
    except ValueError as e:
        raise SetupError(str(e)) from None
    return CollectionFactory(dataset=str(base), data_dir=str(trainer.preprocessed_dataset_folder),
                             case_ids=sorted(identifiers), rank=trainer.dist_env.rank,
                             supervoxel_prob=trainer.run_config.data.supervoxel_prob,
                             size_power=trainer.run_config.data.object_size_power)


def _case_centers(args) -> str | None:
    data_dir, manifest_file, case, seed, config = args
    from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class

    from nninteractive_train.data.centers import case_center_candidates, save_centers
    from nninteractive_train.data.manifest import Manifest

    manifest = Manifest.load(manifest_file)
    ds = infer_dataset_class(data_dir)(data_dir, [case])
    _, seg, _, props = ds.load_case(case)
    rng = np.random.default_rng(np.random.SeedSequence([seed, manifest.case_index(case)]))
    coords, offsets = case_center_candidates(seg, props, manifest, case, config=config, rng=rng)
    save_centers(Path(data_dir) / CENTERS_DIR / f"{case}.npz", coords, offsets)
    return case


def write_center_candidates(raw_dataset_dir: Path, preprocessed_dataset_dir: Path, data_dir: Path,
                            num_processes: int = 1, seed: int = 0, center_bias: float = 1.0) -> int:
    """Copy the manifest next to the preprocessed data and store every case's centre candidates, drawn with
    power ``center_bias`` (``data.center_bias``; recorded in ``centers/info.json``), under ``data_dir/centers/``.
    Returns the number of cases (0 when the raw dataset has no manifest)."""
    from multiprocessing import get_context

    from tqdm import tqdm

    from nninteractive_train.data.centers import CenterConfig, save_centers_info
    from nninteractive_train.data.manifest import MANIFEST_NAME, Manifest

    src = Path(raw_dataset_dir) / MANIFEST_NAME
    if not src.is_file():
        return 0
    dst = Path(preprocessed_dataset_dir) / MANIFEST_NAME
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    (Path(data_dir) / CENTERS_DIR).mkdir(exist_ok=True)
    config = CenterConfig(power=float(center_bias))
    cases = Manifest.load(dst).case_ids.tolist()
    jobs = [(str(data_dir), str(dst), c, seed, config) for c in cases]
    if num_processes <= 1:
        for j in tqdm(jobs, desc="centre candidates"):
            _case_centers(j)
    else:
        with get_context("spawn").Pool(num_processes) as pool:
            list(tqdm(pool.imap_unordered(_case_centers, jobs), total=len(jobs), desc="centre candidates"))
    save_centers_info(Path(data_dir) / CENTERS_DIR, config)
    return len(cases)
