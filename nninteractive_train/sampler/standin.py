"""A stand-in manifest for a dataset list: the shape of the collection the list would build, without any image.

Used to see a collection's expected sampling shares before any dataset is downloaded or mapped (the sampling
report needs only the manifest). Each training entry of the list (``evaluation_only`` entries are left out, as the
build leaves them out) becomes one manifest dataset with ``images × len(channels)`` cases — exactly the cases the
build would write from the published image count. What the list cannot know is generated and labelled as such:
objects per case (from the targets, see :func:`stand_in_types`), voxel counts, boxes, shapes.
"""

from __future__ import annotations

import re

import numpy as np

from ..data.dataset_list import CollectionSpec, DatasetSpec
from ..data.manifest import Manifest

INSTANCES_PER_CASE = 20
"""Mean instances per case of an ``instance_labels`` dataset (cells, nuclei, ...) in the stand-in."""
COMPONENTS_PER_CASE = 2.0
"""Mean objects per case of a declared ``components`` label (e.g. MSD Task 3's tumours; 13 % of cases get none)."""


def _leading_count(target: str) -> int:
    """``'13 Abdominal Organs'`` → 13; a target without a leading number is one structure."""
    m = re.match(r"\s*(\d+)\s", target)
    return int(m.group(1)) if m else 1


def stand_in_types(spec: DatasetSpec) -> tuple[list[tuple[str, float, bool]], dict[str, tuple[str, ...]]]:
    """Object types of one dataset in the stand-in.

    Returns ``(labels, combinations)``: ``labels`` lists ``(type name, objects per case, fixed)``; a ``fixed``
    type has exactly that many objects in every case, the others a Poisson number with that mean. The types are

    * the list's own names where it declares them (labels, combination parts, ``object_probs`` keys, so that
      overrides such as MSD Task 3's apply): a ``whole`` label is one object per case, a ``components`` label
      Poisson(``COMPONENTS_PER_CASE``) objects (0 allowed: a liver without tumour);
    * the ``instance_labels`` type: Poisson(``INSTANCES_PER_CASE``) instances;
    * else one type per target with its leading count, fixed: ``'13 Abdominal Organs'`` → 13 objects,
      ``'Lung Lesion'`` → 1.
    """
    if spec.instance_labels is not None:
        return [(spec.instance_labels, float(INSTANCES_PER_CASE), False)], {}
    named = list(spec.labels)
    for parts in spec.combinations.values():
        named += [p for p in parts if p not in named]
    named += [t for t in spec.object_probs if t not in named and t not in spec.combinations]
    if named:
        whole = {n: spec.labels.get(n, spec.rule).objects == "whole" for n in named}
        return [(n, 1.0 if whole[n] else COMPONENTS_PER_CASE, whole[n]) for n in named], dict(spec.combinations)
    targets = [str(t) for t in spec.info.get("targets") or []] or ["object"]
    return [(t, float(_leading_count(t)), True) for t in targets], {}


def _case_objects(labels, combos, rng: np.random.Generator) -> tuple[list[int], list[int], list[list[int]]]:
    """One generated case: type index, kind (0 instance, 1 combination) and instance ids of each object; a case
    always has at least one object (Poisson draws of zero everywhere are redrawn)."""
    while True:
        types, kinds, ids, by_type = [], [], [], {}
        next_id = 1
        for ti, (_, mean, fixed) in enumerate(labels):
            n = int(round(mean)) if fixed else int(rng.poisson(mean))
            by_type[ti] = list(range(next_id, next_id + n))
            next_id += n
            types += [ti] * n
            kinds += [0] * n
            ids += [[i] for i in by_type[ti]]
        if types:
            break
    names = [n for n, _, _ in labels]
    for ci, parts in enumerate(combos.values()):
        members = sorted(i for p in parts for i in by_type[names.index(p)])
        # the build does not add a combination equal to an existing object (e.g. liver alone, no tumour)
        if members and members not in ids:
            types.append(len(labels) + ci)
            kinds.append(1)
            ids.append(members)
    return types, kinds, ids


def stand_in_manifest(spec: CollectionSpec, *, seed: int = 0) -> Manifest:
    """A manifest of the shape ``spec`` would build: per training dataset ``images × len(channels)`` cases.

    Raises ``ValueError`` naming the list file and dataset when a training entry has no published ``images``.
    Case ids are ``<dataset>_<k>``; shapes (64, 64, 64), spacing 1 mm, boxes and voxel counts are placeholders.
    """
    rng = np.random.default_rng(seed)
    metas, cases = [], []
    for d, ds in enumerate(spec.selected()):
        images = ds.info.get("images")
        if images is None:
            raise ValueError(f"{spec.path}: dataset {ds.name!r} has no 'images' count; the stand-in needs one for "
                             f"every training dataset")
        labels, combos = stand_in_types(ds)
        types = [n for n, _, _ in labels] + list(combos)
        metas.append({"name": ds.name, "source": None, "weight": ds.weight, "types": types,
                      "object_probs": ds.object_probs, "info": ds.info, "channels": list(ds.channels)})
        for k in range(int(images) * len(ds.channels)):
            t, kinds, ids = _case_objects(labels, combos, rng)
            n_inst = max(max(i) for i in ids)
            cases.append({
                "case_id": f"{ds.name}_{k:05d}", "source": f"standin_{k:05d}", "dataset": len(metas) - 1,
                "shape": (64, 64, 64), "spacing": (1.0, 1.0, 1.0), "instances": n_inst, "types": t, "kinds": kinds,
                "voxels": rng.integers(100, 100_000, len(t)), "bbox": np.tile([0, 0, 0, 8, 8, 8], (len(t), 1)),
                "ids": [i for g in ids for i in g], "id_offsets": np.cumsum([0] + [len(g) for g in ids]),
            })
    if not metas:
        raise ValueError(f"{spec.path}: no training datasets (every entry is evaluation_only)")
    return Manifest.from_cases({"name": spec.name, "standin": True, "list_file": str(spec.path),
                                "list_sha256": spec.sha256, "datasets": metas}, cases)
