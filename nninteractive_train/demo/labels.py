"""Label maps of the demo sources, arrays in / arrays out (numpy order, axis 0 = z).

- AAL (Colin27): the 116 AAL regions grouped into 7 structures per hemisphere plus the vermis (``AAL_GROUPS``).
- NeuroMaps (INIA19 macaque): 362 region pairs without names in the package (right = left + 1000); the
  ``pairs`` largest pairs by volume are kept, one label per hemisphere, the rest becomes background.
- Head CT (Cranium.inv3, slices along axis 0 are coronal): thresholds in HU, soft tissue / bone / air cavities,
  with small-component cleanup.
- k-means (ITK): the class with most voxels is background, classes under ``min_voxels`` are dropped.
"""

from __future__ import annotations

import re

import cc3d
import numpy as np
from scipy import ndimage

# AAL region name prefix -> structure. Lobes after Tzourio-Mazoyer et al. 2002, with the central region split
# between frontal (precentral, rolandic operculum, paracentral lobule) and parietal (postcentral), fusiform to
# temporal, and insula + cingulate + medial temporal (hippocampus, parahippocampal, amygdala) as "limbic".
# Regions of one structure are adjacent, so each group is one compact object per hemisphere.
AAL_GROUPS: dict[str, tuple[str, ...]] = {
    "frontal": ("Precentral", "Frontal_", "Rolandic_Oper", "Supp_Motor_Area", "Olfactory", "Rectus",
                "Paracentral_Lobule"),
    "parietal": ("Postcentral", "Parietal_", "SupraMarginal", "Angular", "Precuneus"),
    "temporal": ("Temporal_", "Heschl", "Fusiform"),
    "occipital": ("Calcarine", "Cuneus", "Lingual", "Occipital_"),
    "limbic": ("Insula", "Cingulum_", "Hippocampus", "ParaHippocampal", "Amygdala"),
    "deep_grey": ("Caudate", "Putamen", "Pallidum", "Thalamus"),
    "cerebellum": ("Cerebelum_",),  # AAL's spelling
    "vermis": ("Vermis",),          # midline: no hemisphere
}


def aal_label_names() -> dict[str, int]:
    """The grouped AAL labels: ``{"frontal_L": 1, "frontal_R": 2, ..., "cerebellum_R": 14, "vermis": 15}``."""
    names = [f"{g}_{h}" for g in AAL_GROUPS if g != "vermis" for h in "LR"] + ["vermis"]
    return {n: i + 1 for i, n in enumerate(names)}


def parse_aal_names(text: str) -> dict[int, str]:
    """AAL's ``aal.nii.txt`` (lines ``INDEX NAME CODE``) -> {index: name}."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            out[int(parts[0])] = parts[1]
    return out


def aal_group_of(region: str) -> str | None:
    """The grouped label name of AAL region ``region`` (e.g. "Frontal_Sup_Orb_L" -> "frontal_L"), or None."""
    for group, prefixes in AAL_GROUPS.items():
        if region.startswith(prefixes):
            if group == "vermis":
                return group
            m = re.search(r"_([LR])$", region)
            return f"{group}_{m.group(1)}" if m else None
    return None


def group_aal(aal: np.ndarray, regions: dict[int, str]) -> tuple[np.ndarray, list[str]]:
    """Map an AAL index map to the grouped labels of ``aal_label_names()``.

    Args:
        aal: integer array, AAL region index per voxel (0 = none).
        regions: {index: AAL region name}, from ``parse_aal_names``.

    Returns:
        uint8 array of the same shape, and the names of regions present in ``aal`` but in no group (background).
    """
    ids = aal_label_names()
    lut = np.zeros(max(int(aal.max()), max(regions, default=0)) + 1, np.uint8)
    present = set(np.unique(aal).tolist()) - {0}
    unknown = sorted(present - set(regions))
    if unknown:
        raise ValueError(f"AAL indices {unknown[:10]} have no name in the name table")
    unmapped = []
    for idx, region in regions.items():
        group = aal_group_of(region)
        if group is not None:
            lut[idx] = ids[group]
        elif idx in present:
            unmapped.append(region)
    return lut[aal], unmapped


def largest_neuromaps(label: np.ndarray, pairs: int = 6) -> tuple[np.ndarray, dict[str, int]]:
    """Keep the ``pairs`` largest bilateral NeuroMaps regions, one label per hemisphere.

    NeuroMaps numbers a right-hemisphere region as its left partner + 1000. Regions are ranked by the voxel count
    of both sides together.

    Returns:
        uint8 array (labels 1..), and {"neuromaps_<id>_L": 1, "neuromaps_<id>_R": 2, ...} (id = left value).
    """
    values, counts = np.unique(label[label > 0], return_counts=True)
    per_region: dict[int, int] = {}
    for v, c in zip(values.tolist(), counts.tolist()):
        per_region[v % 1000] = per_region.get(v % 1000, 0) + c
    keep = sorted(per_region, key=lambda r: (-per_region[r], r))[:pairs]
    out = np.zeros(label.shape, np.uint8)
    names: dict[str, int] = {}
    for region in keep:
        for side, value in (("L", region), ("R", region + 1000)):
            if value in values:
                names[f"neuromaps_{region}_{side}"] = len(names) + 1
                out[label == value] = len(names)
    return out, names


CT_LABELS = {"soft_tissue": 1, "bone": 2, "air_cavity": 3}


def _dust(mask: np.ndarray, min_voxels: int) -> np.ndarray:
    return cc3d.dust(mask, threshold=min_voxels, connectivity=26, in_place=False) if min_voxels > 1 else mask


def ct_labels(hu: np.ndarray, *, bone_hu: float = 226, soft_hu: float = -142, min_voxels: int = 64) -> np.ndarray:
    """Soft tissue / bone / air-cavity labels of a head CT by thresholds (``CT_LABELS``).

    - head: the largest 6-connected component of ``hu >= soft_hu`` (drops the head holder, table, noise);
    - bone: head voxels with ``hu >= bone_hu``; soft tissue: the other head voxels. Bone components under
      ``min_voxels`` become soft tissue and soft-tissue islands under ``min_voxels`` (marrow) become bone, so the
      head outline does not change;
    - air cavity: holes of the head in each slice along axis 0 (sinuses, airways, mastoid), components >=
      ``min_voxels`` (slice-wise, because airways open to the outside in 3D).

    Args:
        hu: (Z, Y, X) intensities in Hounsfield units.

    Returns:
        uint8 (Z, Y, X) label map.
    """
    labels, n = cc3d.connected_components(hu >= soft_hu, connectivity=6, return_N=True)
    if n == 0:
        raise ValueError(f"no voxel reaches the soft-tissue threshold {soft_hu} HU")
    head = labels == (np.argmax(np.bincount(labels.ravel())[1:]) + 1)
    bone = head & (hu >= bone_hu)
    bone = _dust(bone, min_voxels)
    soft = head & ~bone
    bone |= soft & ~_dust(soft, min_voxels)
    filled = np.stack([ndimage.binary_fill_holes(s) for s in head])
    air = _dust(filled & ~head, min_voxels)
    out = np.zeros(hu.shape, np.uint8)
    out[head] = CT_LABELS["soft_tissue"]
    out[bone] = CT_LABELS["bone"]
    out[air] = CT_LABELS["air_cavity"]
    return out


def kmeans_labels(classes: np.ndarray, *, min_voxels: int = 1000) -> tuple[np.ndarray, dict[str, int]]:
    """k-means class map -> labels: the most frequent class is background (the air around the head), classes
    with fewer than ``min_voxels`` voxels are dropped (background), the rest are numbered 1.. in class order.

    Returns:
        uint8 array, and {"kmeans_class_<original class>": label}.
    """
    values, counts = np.unique(classes, return_counts=True)
    if values.min() < 0:
        raise ValueError("negative k-means class values")
    background = values[np.argmax(counts)]
    keep = [int(v) for v, c in zip(values, counts) if v != background and c >= min_voxels]
    lut = np.zeros(int(values.max()) + 1, np.uint8)
    names = {}
    for i, v in enumerate(keep):
        lut[v] = i + 1
        names[f"kmeans_class_{v}"] = i + 1
    return lut[classes], names
