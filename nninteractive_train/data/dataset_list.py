"""Dataset lists: the YAML file that declares a training collection (format in ``dataset_lists/README.md``).

Parsing is strict: an unknown key, a wrong type or an impossible value is an error that names the list file and
the dataset entry. Label names are resolved against each source's ``dataset.json`` later, in
:func:`resolve_labels`, because the list does not know them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nninteractive_train.errors import UserError

FORMAT_VERSION = 1
OBJECT_MODES = ("components", "whole")


class DatasetListError(UserError):
    """A problem in a dataset list file; the message names the file and the entry."""


@dataclass(frozen=True)
class LabelRule:
    """How one semantic label becomes objects."""

    objects: str = "components"
    """``components``: each connected component is an object; ``whole``: all voxels of the label are one object."""
    connectivity: int = 26
    """Voxel connectivity for connected components: 6, 18 or 26."""
    min_size: int = 10
    """Components (or whole labels) smaller than this many voxels are dropped (set to background)."""
    opening: int = 0
    """Radius (voxels) of a morphological opening applied to the label before components; 0 = none."""
    closing: int = 0
    """Radius (voxels) of a morphological closing applied to the label before components; 0 = none. Closing
    only claims background voxels, never another label's."""


_RULE_KEYS = {f.name for f in dataclasses.fields(LabelRule)}


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of a collection, as declared in the list (labels not yet resolved)."""

    name: str
    """Short name: prefix of the merged case identifiers and the name in reports."""
    source: str | None
    """nnU-Net raw dataset id, folder name or path; None = not mapped to a local dataset (skipped)."""
    weight: float = 1.0
    """Manual sampling weight; the dataset's budget is ∝ sqrt(number of cases) × weight."""
    rule: LabelRule = LabelRule()
    """Default rule for every label of this dataset."""
    labels: dict[str, LabelRule] = field(default_factory=dict)
    """Per-label rules by label name (or integer value as a string)."""
    ignore: tuple[str, ...] = ()
    """Labels that form no object; their voxels become background."""
    combinations: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Extra objects: name → labels whose instances are united (e.g. liver with tumour)."""
    object_probs: dict[str, float] = field(default_factory=dict)
    """Optional share of real-object draws per object type (label or combination name); see README."""
    allow_empty: bool = False
    """Accept cases whose label map has no object (they are kept for SuperVoxels only)."""
    instance_labels: str | None = None
    """The label maps already hold instances (every positive value is one instance, e.g. microscopy): the object
    type name of all of them. The values need not be declared in the source dataset.json; ``labels`` and
    ``combinations`` are not allowed, the default rule applies to every value."""
    channels: tuple[int, ...] = (0,)
    """Image channels to use; each listed channel becomes its own case with the same labels."""
    skip_cases: tuple[str, ...] = ()
    """Source case identifiers to leave out."""
    info: dict[str, Any] = field(default_factory=dict)
    """Informational fields (images, modality, targets, reference, notes, ...): copied into the manifest, not
    used for building or sampling."""
    evaluation_only: bool = False
    """A held-out dataset (e.g. the paper's Table A2): never built into a training collection, only into an
    evaluation collection (``build_collection(..., evaluation=True)``)."""


@dataclass(frozen=True)
class CollectionSpec:
    """A parsed dataset list."""

    name: str
    datasets: tuple[DatasetSpec, ...]
    path: Path
    sha256: str

    def selected(self, *, evaluation: bool = False) -> tuple[DatasetSpec, ...]:
        """The training datasets (default) or, with ``evaluation=True``, the ``evaluation_only`` ones, in list
        order."""
        return tuple(d for d in self.datasets if d.evaluation_only == evaluation)


_INFO_KEYS = {"images", "modality", "targets", "notes", "paper_name", "url", "license", "reference",
              "reference_from", "targets_from"}
TARGETS_FROM = ("table", "public")
_DATASET_KEYS = (
    {"name", "source", "weight", "labels", "ignore", "combinations", "object_probs", "allow_empty", "channels",
     "skip_cases", "instance_labels", "evaluation_only"} | _RULE_KEYS | _INFO_KEYS
)


def load_dataset_list(path: str | os.PathLike) -> CollectionSpec:
    """Parse and check a dataset list YAML file.

    Returns a :class:`CollectionSpec`; raises :class:`DatasetListError` naming the file and entry on any problem.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetListError(f"{path}: dataset list not found")
    raw_bytes = path.read_bytes()
    try:
        doc = yaml.safe_load(raw_bytes)
    except yaml.YAMLError as e:
        raise DatasetListError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise DatasetListError(f"{path}: expected a mapping with 'name' and 'datasets'")
    _check_keys(doc, {"format", "name", "defaults", "datasets", "description"}, f"{path}")
    if doc.get("format", FORMAT_VERSION) != FORMAT_VERSION:
        raise DatasetListError(
            f"{path}: unsupported format {doc.get('format')!r} (this version reads {FORMAT_VERSION})")
    name = str(doc.get("name") or path.stem)
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise DatasetListError(f"{path}: 'defaults' must be a mapping")
    _check_keys(defaults, _DATASET_KEYS - {"name", "source", "labels", "combinations", "object_probs",
                                           "skip_cases", "evaluation_only"} - _INFO_KEYS, f"{path}: defaults")
    entries = doc.get("datasets")
    if not isinstance(entries, list) or not entries:
        raise DatasetListError(f"{path}: 'datasets' must be a non-empty list")
    specs = []
    for i, entry in enumerate(entries):
        where = f"{path}: datasets[{i}]"
        if not isinstance(entry, dict):
            raise DatasetListError(f"{where}: expected a mapping")
        specs.append(_parse_dataset({**defaults, **entry}, where))
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DatasetListError(f"{path}: dataset names must be unique; repeated: {dupes}")
    return CollectionSpec(name=name, datasets=tuple(specs), path=path.resolve(),
                          sha256=hashlib.sha256(raw_bytes).hexdigest())


def _check_keys(d: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in d if k not in allowed)
    if unknown:
        raise DatasetListError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def _parse_rule(d: dict, base: LabelRule, where: str) -> LabelRule:
    kw = {k: d[k] for k in _RULE_KEYS if k in d}
    rule = dataclasses.replace(base, **kw)
    if rule.objects not in OBJECT_MODES:
        raise DatasetListError(f"{where}: objects must be one of {OBJECT_MODES}, got {rule.objects!r}")
    if rule.connectivity not in (6, 18, 26):
        raise DatasetListError(f"{where}: connectivity must be 6, 18 or 26, got {rule.connectivity!r}")
    for k in ("min_size", "opening", "closing"):
        v = getattr(rule, k)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise DatasetListError(f"{where}: {k} must be a non-negative integer, got {v!r}")
    return rule


def _str_tuple(v: Any, key: str, where: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, (str, int)):
        v = [v]
    if not isinstance(v, list):
        raise DatasetListError(f"{where}: {key} must be a list")
    return tuple(str(x) for x in v)


def _parse_dataset(d: dict, where: str) -> DatasetSpec:
    _check_keys(d, _DATASET_KEYS, where)
    source = d.get("source")
    name = d.get("name")
    if name is None:
        if source is None:
            raise DatasetListError(f"{where}: needs a 'name' or a 'source'")
        name = Path(str(source)).name if not str(source).isdigit() else f"D{int(source):03d}"
    name = str(name)
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise DatasetListError(f"{where}: name {name!r} may only contain letters, digits, '_' and '-'")
    where = f"{where} ({name})"
    weight = d.get("weight", 1.0)
    if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not math.isfinite(weight) or weight < 0:
        raise DatasetListError(f"{where}: weight must be a finite number >= 0, got {weight!r}")
    rule = _parse_rule(d, LabelRule(), where)
    labels = {}
    for lab, r in (d.get("labels") or {}).items():
        if not isinstance(r, dict):
            raise DatasetListError(f"{where}: labels.{lab} must be a mapping of rule keys")
        _check_keys(r, _RULE_KEYS, f"{where}: labels.{lab}")
        labels[str(lab)] = _parse_rule(r, rule, f"{where}: labels.{lab}")
    combos = {}
    for cname, parts in (d.get("combinations") or {}).items():
        parts = _str_tuple(parts, f"combinations.{cname}", where)
        if len(parts) < 1:
            raise DatasetListError(f"{where}: combination {cname!r} lists no labels")
        combos[str(cname)] = parts
    probs = {}
    for t, p in (d.get("object_probs") or {}).items():
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not (0 <= p <= 1):
            raise DatasetListError(f"{where}: object_probs.{t} must be a probability in [0, 1], got {p!r}")
        probs[str(t)] = float(p)
    if sum(probs.values()) > 1 + 1e-6:
        raise DatasetListError(f"{where}: object_probs sum to {sum(probs.values()):.4f} > 1")
    channels = d.get("channels", [0])
    channels = [channels] if isinstance(channels, int) else channels
    if (not isinstance(channels, list) or not channels
            or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in channels)
            or len(set(channels)) != len(channels)):
        raise DatasetListError(f"{where}: channels must be a list of distinct non-negative integers")
    allow_empty = d.get("allow_empty", False)
    if not isinstance(allow_empty, bool):
        raise DatasetListError(f"{where}: allow_empty must be true or false")
    evaluation_only = d.get("evaluation_only", False)
    if not isinstance(evaluation_only, bool):
        raise DatasetListError(f"{where}: evaluation_only must be true or false")
    inst = d.get("instance_labels")
    if inst is not None:
        if not isinstance(inst, str) or not inst:
            raise DatasetListError(f"{where}: instance_labels must be the object type name of the instances")
        if labels or combos:
            raise DatasetListError(f"{where}: instance_labels cannot be combined with labels or combinations")
    return DatasetSpec(
        name=name, source=None if source is None else str(source), weight=float(weight), rule=rule, labels=labels,
        ignore=_str_tuple(d.get("ignore"), "ignore", where), combinations=combos, object_probs=probs,
        allow_empty=allow_empty, instance_labels=inst, channels=tuple(channels),
        skip_cases=_str_tuple(d.get("skip_cases"), "skip_cases", where),
        info=_parse_info(d, where), evaluation_only=evaluation_only,
    )


def _parse_info(d: dict, where: str) -> dict[str, Any]:
    """The informational keys of a dataset entry, type-checked (they are never used for building or sampling,
    but a published count or link that does not parse is a typo worth stopping for)."""
    info = {k: d[k] for k in _INFO_KEYS if k in d}
    images = info.get("images")
    if images is not None and (not isinstance(images, int) or isinstance(images, bool) or images < 0):
        raise DatasetListError(f"{where}: images (the published image count) must be a non-negative integer or "
                               f"null, got {images!r}")
    for k in ("reference", "url"):
        v = info.get(k)
        if v is not None and (not isinstance(v, str) or not v.startswith(("http://", "https://"))):
            raise DatasetListError(f"{where}: {k} must be an http(s) link or null, got {v!r}")
    for k in ("paper_name", "reference_from", "modality", "notes", "license"):
        if info.get(k) is not None and not isinstance(info[k], str):
            raise DatasetListError(f"{where}: {k} must be a string, got {info[k]!r}")
    if info.get("reference_from") is not None and info.get("reference") is None:
        raise DatasetListError(f"{where}: reference_from names the table row a reference was taken from, but "
                               f"there is no reference")
    if "targets_from" in info and info["targets_from"] not in TARGETS_FROM:
        raise DatasetListError(f"{where}: targets_from must be one of {TARGETS_FROM}, got {info['targets_from']!r}")
    targets = info.get("targets")
    if targets is not None and (not isinstance(targets, list) or not all(isinstance(t, str) for t in targets)):
        raise DatasetListError(f"{where}: targets must be a list of strings, got {targets!r}")
    return info


@dataclass(frozen=True)
class ResolvedLabels:
    """A dataset's labels resolved against its source ``dataset.json``.

    All label references are integer values of the source label maps.
    """

    names: dict[int, str]
    """Foreground label value → object type name."""
    rules: dict[int, LabelRule]
    """Label value → rule (only labels that form objects)."""
    ignore: frozenset[int]
    """Label values whose voxels become background."""
    combinations: dict[str, tuple[int, ...]]
    """Combination name → label values."""
    types: tuple[str, ...]
    """All object type names of the dataset: label names in value order, then combinations in list order."""
    instance_rule: LabelRule | None = None
    """Set for ``instance_labels`` datasets: the rule for every (undeclared) positive value, all of type 0."""


def resolve_labels(spec: DatasetSpec, source_labels: dict[str, Any], where: str) -> ResolvedLabels:
    """Resolve the label names of ``spec`` against ``source_labels`` (the source ``dataset.json`` ``labels``).

    Integer-valued entries are labels; list-valued entries (nnU-Net regions) may be used as combination parts and
    expand to their values. The source's ``ignore`` label is always ignored. Raises :class:`DatasetListError`
    (prefixed by ``where``) for an unknown label, a name clash or an override for an unknown type.
    """
    values: dict[str, int] = {}
    regions: dict[str, tuple[int, ...]] = {}
    for k, v in source_labels.items():
        if isinstance(v, bool):
            raise DatasetListError(f"{where}: label {k!r} has a non-integer value {v!r}")
        if isinstance(v, int):
            values[str(k)] = int(v)
        elif isinstance(v, (list, tuple)) and all(isinstance(x, int) for x in v):
            regions[str(k)] = tuple(int(x) for x in v)
        else:
            raise DatasetListError(f"{where}: label {k!r} has a value that is neither an integer nor a region: {v!r}")
    ignore_vals = {v for k, v in values.items() if k == "ignore"}
    names = {v: k for k, v in values.items() if v != 0 and k != "ignore"}
    for region_vals in regions.values():
        for v in region_vals:
            names.setdefault(v, f"label_{v}")

    def value_of(ref: str, what: str) -> list[int]:
        if ref in values:
            return [values[ref]]
        if ref in regions:
            return list(regions[ref])
        if ref.lstrip("-").isdigit():
            return [int(ref)]
        known = sorted(set(values) | set(regions))
        raise DatasetListError(f"{where}: unknown label {ref!r} in {what}; the source labels are {known}")

    for ref in spec.ignore:
        ignore_vals.update(value_of(ref, "ignore"))
    if spec.instance_labels is not None:
        types = (spec.instance_labels,)
        for t in spec.object_probs:
            if t not in types:
                raise DatasetListError(f"{where}: object_probs names unknown object type {t!r}; types are "
                                       f"{list(types)}")
        return ResolvedLabels(names={}, rules={}, ignore=frozenset(ignore_vals), combinations={}, types=types,
                              instance_rule=spec.rule)
    rules = {v: spec.rule for v in names if v not in ignore_vals}
    for ref, rule in spec.labels.items():
        for v in value_of(ref, f"labels.{ref}"):
            if v == 0:
                raise DatasetListError(f"{where}: labels.{ref} refers to background (0)")
            if v not in ignore_vals:
                rules[v] = rule
                names.setdefault(v, f"label_{v}")
    combos = {}
    for cname, parts in spec.combinations.items():
        vals: list[int] = []
        for ref in parts:
            for v in value_of(ref, f"combinations.{cname}"):
                if v == 0 or v in ignore_vals:
                    raise DatasetListError(f"{where}: combination {cname!r} uses background or ignored label {ref!r}")
                vals.append(v)
        if cname in names.values():
            raise DatasetListError(f"{where}: combination name {cname!r} is also a label name")
        combos[cname] = tuple(sorted(set(vals)))
    types = tuple(names[v] for v in sorted(rules)) + tuple(combos)
    for t in spec.object_probs:
        if t not in types:
            raise DatasetListError(f"{where}: object_probs names unknown object type {t!r}; types are {list(types)}")
    return ResolvedLabels(names={v: names[v] for v in sorted(rules)}, rules=dict(sorted(rules.items())),
                          ignore=frozenset(ignore_vals), combinations=combos, types=types)
