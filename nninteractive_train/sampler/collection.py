"""One call from a built collection to a sampler: manifest + training split + SuperVoxel counts."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..data.manifest import Manifest, find_manifest
from .object_sampler import ObjectSampler


def load_collection(
    dataset: int | str,
    *,
    case_ids: Sequence[str] | None = None,
    preprocessed_folder: str | os.PathLike | None = None,
) -> tuple[Manifest, np.ndarray]:
    """The manifest of ``dataset`` (restricted to ``case_ids``, e.g. a fold's training cases) and its (n,)
    SuperVoxel counts from ``preprocessed_folder/supervoxels/index.json`` (zeros without a folder or index)."""
    from ..data.supervoxels.generate import load_supervoxel_counts

    manifest = Manifest.load(find_manifest(dataset))
    if case_ids is not None:
        manifest = manifest.subset(case_ids)
    if preprocessed_folder is None:
        return manifest, np.zeros(manifest.n_cases, np.int64)
    return manifest, load_supervoxel_counts(preprocessed_folder, manifest.case_ids.tolist())


def collection_sampler(
    dataset: int | str,
    *,
    seed: int | np.random.SeedSequence,
    rank: int = 0,
    worker: int = 0,
    case_ids: Sequence[str] | None = None,
    preprocessed_folder: str | os.PathLike | None = None,
    supervoxel_prob: float = 0.2,
    size_power: float = 0.0,
) -> ObjectSampler:
    """An :class:`ObjectSampler` over a built collection (see :func:`load_collection` for the arguments)."""
    manifest, counts = load_collection(dataset, case_ids=case_ids, preprocessed_folder=preprocessed_folder)
    return ObjectSampler(manifest, seed=seed, rank=rank, worker=worker, supervoxel_prob=supervoxel_prob,
                         supervoxel_counts=counts, size_power=size_power)
