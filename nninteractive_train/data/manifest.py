"""The collection manifest: every case's source dataset and objects, in columnar arrays (one ``.npz``).

Layout (all plain arrays, loadable with ``allow_pickle=False``; ``n`` cases, ``m`` objects, ``k`` instance ids):

======================  =================  ===========================================================
key                     shape, dtype       meaning
======================  =================  ===========================================================
``meta``                (bytes,) uint8     UTF-8 JSON: format, collection name, per-dataset info
                                           (name, source, weight, types, object_probs, ...)
``case_ids``            (n,) str           case identifier in the merged nnU-Net raw dataset
``case_source``         (n,) str           source case identifier (``@c<k>`` appended for channel k > 0)
``case_dataset``        (n,) int32         index into ``meta["datasets"]``
``case_shape``          (n, 3) int32       array shape (Z, Y, X) of the raw case
``case_spacing``        (n, 3) float32     spacing in mm per array axis
``case_instances``      (n,) int32         number of instances N (ids 1..N in the label map)
``case_object_start``   (n + 1,) int64     objects of case i are ``case_object_start[i]:[i + 1]``
``object_type``         (m,) int32         index into the dataset's ``types``
``object_kind``         (m,) int8          0 = instance, 1 = label combination
``object_voxels``       (m,) int64         voxel count in the raw case
``object_bbox``         (m, 6) int32       (start0, start1, start2, stop0, stop1, stop2), half-open,
                                           raw array axes (preprocessing crops: subtract its offset)
``object_id_start``     (m + 1,) int64     instance ids of object j are ``object_ids[start[j]:start[j+1]]``
``object_ids``          (k,) uint16        instance ids
======================  =================  ===========================================================
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nninteractive_train.errors import UserError

MANIFEST_NAME = "nnInteractive_manifest.npz"
FORMAT_VERSION = 1

_ARRAYS = {
    "case_ids": None, "case_source": None, "case_dataset": np.int32, "case_shape": np.int32,
    "case_spacing": np.float32, "case_instances": np.int32, "case_object_start": np.int64,
    "object_type": np.int32, "object_kind": np.int8, "object_voxels": np.int64, "object_bbox": np.int32,
    "object_id_start": np.int64, "object_ids": np.uint16,
}


class ManifestError(UserError):
    """An unreadable or inconsistent manifest; the message names the file."""


@dataclass
class Manifest:
    """A collection manifest (see the module docstring for the arrays)."""

    meta: dict[str, Any]
    case_ids: np.ndarray
    case_source: np.ndarray
    case_dataset: np.ndarray
    case_shape: np.ndarray
    case_spacing: np.ndarray
    case_instances: np.ndarray
    case_object_start: np.ndarray
    object_type: np.ndarray
    object_kind: np.ndarray
    object_voxels: np.ndarray
    object_bbox: np.ndarray
    object_id_start: np.ndarray
    object_ids: np.ndarray
    _case_lookup: dict[str, int] | None = field(default=None, repr=False, compare=False)

    @property
    def n_cases(self) -> int:
        return int(self.case_ids.shape[0])

    @property
    def n_objects(self) -> int:
        return int(self.object_type.shape[0])

    @property
    def datasets(self) -> list[dict[str, Any]]:
        """Per-dataset info dicts (``name``, ``source``, ``weight``, ``types``, ``object_probs``, ...)."""
        return self.meta["datasets"]

    @property
    def dataset_names(self) -> list[str]:
        return [d["name"] for d in self.datasets]

    def objects_per_case(self) -> np.ndarray:
        """(n,) int64 number of real objects per case."""
        return np.diff(self.case_object_start)

    def case_index(self, case_id: str) -> int:
        """Index of the case called ``case_id`` (``KeyError`` if absent)."""
        if self._case_lookup is None:
            self._case_lookup = {str(c): i for i, c in enumerate(self.case_ids.tolist())}
        return self._case_lookup[case_id]

    def object_range(self, case: int) -> range:
        """Global object indices of case number ``case``."""
        return range(int(self.case_object_start[case]), int(self.case_object_start[case + 1]))

    def instance_ids(self, obj: int) -> np.ndarray:
        """(k,) uint16 instance ids of object ``obj``; its mask is ``np.isin(instance_map, ids)``."""
        return self.object_ids[self.object_id_start[obj]:self.object_id_start[obj + 1]]

    def case_objects(self, case: int) -> list[np.ndarray]:
        """Instance id arrays of every object of case number ``case``, in manifest order."""
        return [self.instance_ids(j) for j in self.object_range(case)]

    def object_type_name(self, obj: int) -> str:
        ds = int(self.case_dataset[np.searchsorted(self.case_object_start, obj, side="right") - 1])
        return self.datasets[ds]["types"][int(self.object_type[obj])]

    def subset(self, case_ids) -> "Manifest":
        """A manifest with only the named cases (in manifest order), e.g. the training split of a fold.

        Datasets are kept (a dataset without cases is then never drawn). ``KeyError`` for an unknown case id.
        """
        keep = np.zeros(self.n_cases, bool)
        for c in case_ids:
            keep[self.case_index(str(c))] = True
        idx = np.flatnonzero(keep)
        counts = np.diff(self.case_object_start)[idx]
        obj_keep = np.repeat(keep, np.diff(self.case_object_start))
        obj = np.flatnonzero(obj_keep)
        id_counts = np.diff(self.object_id_start)[obj]
        ids = self.object_ids[np.repeat(obj_keep, np.diff(self.object_id_start))]
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        id_start = np.concatenate([[0], np.cumsum(id_counts)]).astype(np.int64)
        sub = Manifest(
            meta=self.meta, case_ids=self.case_ids[idx], case_source=self.case_source[idx],
            case_dataset=self.case_dataset[idx], case_shape=self.case_shape[idx], case_spacing=self.case_spacing[idx],
            case_instances=self.case_instances[idx], case_object_start=starts, object_type=self.object_type[obj],
            object_kind=self.object_kind[obj], object_voxels=self.object_voxels[obj],
            object_bbox=self.object_bbox[obj], object_id_start=id_start, object_ids=ids.astype(np.uint16),
        )
        sub.validate("manifest subset")
        return sub

    def fingerprint(self) -> str:
        """A short hash of the sampling-relevant content (cases, objects, weights, overrides)."""
        h = hashlib.sha1()
        for k in ("case_dataset", "case_object_start", "object_type"):
            h.update(np.ascontiguousarray(getattr(self, k)).tobytes())
        h.update("\n".join(self.case_ids.tolist()).encode())
        h.update(json.dumps([[d["name"], d["weight"], d.get("object_probs", {}), d["types"]]
                             for d in self.datasets], sort_keys=True).encode())
        return h.hexdigest()[:16]

    def validate(self, where: str = "manifest") -> None:
        """Check shapes and index consistency; :class:`ManifestError` naming ``where`` on a problem."""
        n, m = self.n_cases, self.n_objects
        checks = [
            (self.case_source.shape == (n,), "case_source length"),
            (self.case_dataset.shape == (n,), "case_dataset length"),
            (self.case_shape.shape == (n, 3), "case_shape shape"),
            (self.case_spacing.shape == (n, 3), "case_spacing shape"),
            (self.case_instances.shape == (n,), "case_instances length"),
            (self.case_object_start.shape == (n + 1,), "case_object_start length"),
            (self.object_kind.shape == (m,), "object_kind length"),
            (self.object_voxels.shape == (m,), "object_voxels length"),
            (self.object_bbox.shape == (m, 6), "object_bbox shape"),
            (self.object_id_start.shape == (m + 1,), "object_id_start length"),
        ]
        for ok, what in checks:
            if not ok:
                raise ManifestError(f"{where}: inconsistent {what}")
        if n and (self.case_object_start[0] != 0 or self.case_object_start[-1] != m
                  or np.any(np.diff(self.case_object_start) < 0)):
            raise ManifestError(f"{where}: case_object_start is not a valid offset array")
        if self.object_id_start[0] != 0 or self.object_id_start[-1] != self.object_ids.shape[0] or \
                np.any(np.diff(self.object_id_start) <= 0):
            raise ManifestError(f"{where}: object_id_start is not a valid offset array (every object needs an id)")
        if n and (self.case_dataset.min() < 0 or self.case_dataset.max() >= len(self.datasets)):
            raise ManifestError(f"{where}: case_dataset refers to an unknown dataset")
        if len(set(self.case_ids.tolist())) != n:
            raise ManifestError(f"{where}: case identifiers are not unique")
        obj_ds = np.repeat(self.case_dataset, np.diff(self.case_object_start))
        ntypes = np.array([len(d["types"]) for d in self.datasets] or [0])
        if m and (self.object_type.min() < 0 or np.any(self.object_type >= ntypes[obj_ds])):
            raise ManifestError(f"{where}: object_type refers to an unknown object type")

    def save(self, path: str | os.PathLike) -> Path:
        """Write to ``path`` atomically (temp file + rename); returns the path."""
        path = Path(path)
        arrays = {k: getattr(self, k) for k in _ARRAYS}
        meta = {**self.meta, "format": FORMAT_VERSION}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Manifest":
        """Read a manifest written by :meth:`save`; :class:`ManifestError` naming the file on a problem."""
        path = Path(path)
        if not path.is_file():
            raise ManifestError(f"{path}: manifest not found")
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in ("meta", *_ARRAYS) if k not in z.files]
                if missing:
                    raise ManifestError(f"{path}: not a collection manifest (missing {missing})")
                meta = json.loads(bytes(z["meta"]).decode())
                arrays = {k: z[k] for k in _ARRAYS}
        except (OSError, ValueError, json.JSONDecodeError) as e:
            if isinstance(e, ManifestError):
                raise
            raise ManifestError(f"{path}: cannot read manifest ({e})") from None
        if meta.get("format") != FORMAT_VERSION:
            raise ManifestError(f"{path}: manifest format {meta.get('format')!r}, this version reads {FORMAT_VERSION}")
        man = cls(meta=meta, **arrays)
        man.validate(str(path))
        return man

    @classmethod
    def from_cases(cls, meta: dict[str, Any], cases: list[dict[str, Any]]) -> "Manifest":
        """Assemble a manifest from per-case records.

        Each record has ``case_id``, ``source``, ``dataset`` (index), ``shape``, ``spacing``, ``instances`` and the
        object arrays of :class:`~nninteractive_train.data.instances.CaseObjects` as ``types``, ``kinds``,
        ``voxels``, ``bbox``, ``ids``, ``id_offsets``.
        """
        n = len(cases)
        counts = np.array([len(c["types"]) for c in cases], np.int64)
        starts = np.zeros(n + 1, np.int64)
        starts[1:] = np.cumsum(counts)
        id_counts = np.concatenate([np.diff(np.asarray(c["id_offsets"], np.int64)) for c in cases]) if n else []
        id_start = np.zeros(int(starts[-1]) + 1, np.int64)
        id_start[1:] = np.cumsum(id_counts)

        def cat(key, dtype, width=None):
            parts = [np.asarray(c[key], dtype).reshape((-1, width) if width else -1) for c in cases]
            if parts:
                return np.concatenate(parts)
            return np.zeros((0, width) if width else 0, dtype)

        man = cls(
            meta={**meta, "format": FORMAT_VERSION},
            case_ids=np.array([c["case_id"] for c in cases], dtype=str),
            case_source=np.array([c["source"] for c in cases], dtype=str),
            case_dataset=np.array([c["dataset"] for c in cases], np.int32),
            case_shape=np.array([c["shape"] for c in cases], np.int32).reshape(n, 3),
            case_spacing=np.array([c["spacing"] for c in cases], np.float32).reshape(n, 3),
            case_instances=np.array([c["instances"] for c in cases], np.int32),
            case_object_start=starts,
            object_type=cat("types", np.int32), object_kind=cat("kinds", np.int8),
            object_voxels=cat("voxels", np.int64), object_bbox=cat("bbox", np.int32, 6),
            object_id_start=id_start, object_ids=cat("ids", np.uint16),
        )
        man.validate("new manifest")
        return man


def find_manifest(dataset: int | str) -> Path:
    """The manifest of a dataset: ``$nnUNet_preprocessed/<dataset>/`` first (a copy made at preprocessing), then
    ``$nnUNet_raw/<dataset>/``, or ``dataset`` itself when it is a path to a manifest file or dataset folder."""
    from ..errors import SetupError
    from .paths import find_dataset

    p = Path(str(dataset))
    if p.is_file():
        return p
    if p.is_dir() and (p / MANIFEST_NAME).is_file():
        return p / MANIFEST_NAME
    tried = []
    for var in ("nnUNet_preprocessed", "nnUNet_raw"):
        if not os.environ.get(var):
            continue
        try:
            folder = find_dataset(dataset, var=var)
        except SetupError as e:
            tried.append(f"{e.what} ({e.file})" if e.file else e.what)
            continue
        if (folder / MANIFEST_NAME).is_file():
            return folder / MANIFEST_NAME
        tried.append(f"{folder / MANIFEST_NAME} does not exist")
    raise SetupError(f"no collection manifest for dataset {dataset!r}: " + "; ".join(tried or ["nnUNet_raw is not set"]),
                     hint=f"build one with nnInteractive_build_collection LIST.yaml -d {dataset}")

