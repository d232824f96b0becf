"""Dataset collections: dataset lists, instance conversion, the collection manifest, patch centres, SuperVoxels.

Heavier parts are imported from their modules: ``data.build`` (building a collection), ``data.supervoxels``.
"""

from .centers import CenterConfig, center_candidates, load_centers, pick_center, save_centers, shift_bbox
from .dataset_list import CollectionSpec, DatasetListError, DatasetSpec, LabelRule, load_dataset_list
from .instances import CaseObjects, instance_stats, make_objects, to_instances
from .manifest import MANIFEST_NAME, Manifest, ManifestError, find_manifest

__all__ = [
    "MANIFEST_NAME", "CaseObjects", "CenterConfig", "CollectionSpec", "DatasetListError", "DatasetSpec", "LabelRule",
    "Manifest", "ManifestError", "center_candidates", "find_manifest", "instance_stats", "load_centers",
    "load_dataset_list", "make_objects", "pick_center", "save_centers", "shift_bbox", "to_instances",
]
