"""Generated manifests of any size, for tests and the sampler benchmark (no images behind them)."""

from __future__ import annotations

import numpy as np

from ..data.manifest import Manifest


def fake_manifest(
    *,
    n_datasets: int = 120,
    n_cases: int = 64_518,
    n_objects: int = 717_148,
    override_every: int = 10,
    rng: np.random.Generator,
) -> Manifest:
    """A random manifest with exactly the requested totals (defaults: the paper's collection).

    Case counts per dataset are log-normal (a few large datasets, many small ones); objects per case are
    1 + multinomial. Every dataset has object types ``organ``, ``lesion`` and the combination ``organ_with_lesion``;
    every ``override_every``-th dataset sets ``object_probs`` (0.25 / 0.5 / 0.25). Each object is one or two
    instances. Raises ``ValueError`` if the totals are inconsistent (each dataset needs a case, each case an object).
    """
    if not n_datasets <= n_cases <= n_objects:
        raise ValueError("need n_datasets <= n_cases <= n_objects")
    w = rng.lognormal(0.0, 1.5, n_datasets)
    per_ds = 1 + rng.multinomial(n_cases - n_datasets, w / w.sum())
    case_dataset = np.repeat(np.arange(n_datasets, dtype=np.int32), per_ds)
    k = 1 + rng.multinomial(n_objects - n_cases, rng.dirichlet(np.full(n_cases, 2.0)))
    starts = np.zeros(n_cases + 1, np.int64)
    starts[1:] = np.cumsum(k)
    obj_case = np.repeat(np.arange(n_cases), k)
    rank_in_case = np.arange(n_objects) - starts[obj_case]
    object_type = np.where(rank_in_case == 0, 0, np.where(rank_in_case == k[obj_case] - 1, 2, 1)).astype(np.int32)
    object_type[k[obj_case] == 1] = 0
    n_ids = 1 + (object_type == 2)
    id_start = np.zeros(n_objects + 1, np.int64)
    id_start[1:] = np.cumsum(n_ids)
    ids = (np.arange(id_start[-1]) - np.repeat(id_start[:-1], n_ids) + 1 + np.repeat(rank_in_case, n_ids))
    datasets = [
        {"name": f"D{d:03d}", "source": f"Dataset{d:03d}_Fake", "weight": float(1 + (d % 3 == 0)),
         "types": ["organ", "lesion", "organ_with_lesion"],
         "object_probs": ({"organ": 0.25, "lesion": 0.5, "organ_with_lesion": 0.25} if override_every and
                          d % override_every == 0 else {}), "info": {}, "channels": [0]}
        for d in range(n_datasets)
    ]
    case_ids = np.char.add("c", np.arange(n_cases).astype(str))
    man = Manifest(
        meta={"name": "fake", "datasets": datasets, "format": 1},
        case_ids=case_ids, case_source=case_ids.copy(), case_dataset=case_dataset,
        case_shape=np.full((n_cases, 3), 64, np.int32), case_spacing=np.ones((n_cases, 3), np.float32),
        case_instances=k.astype(np.int32) + 1, case_object_start=starts, object_type=object_type,
        object_kind=(object_type == 2).astype(np.int8), object_voxels=rng.integers(10, 10_000, n_objects),
        object_bbox=np.tile(np.array([0, 0, 0, 8, 8, 8], np.int32), (n_objects, 1)),
        object_id_start=id_start, object_ids=ids.astype(np.uint16),
    )
    man.validate("fake manifest")
    return man
