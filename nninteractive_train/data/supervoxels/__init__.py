"""SuperVoxels: up to 20 pseudo-label objects per case, stored beside the preprocessed data (see ``generate``)."""

from .backends import SupervoxelConfig, felzenszwalb_segments, select_segments, slic_segments
from .generate import (
    CaseSupervoxels,
    generate_supervoxels,
    load_case_supervoxels,
    load_supervoxel_counts,
    supervoxels_for_case,
)
from .sam import SamConfig, SamUnavailable, check_sam

__all__ = [
    "CaseSupervoxels", "SamConfig", "SamUnavailable", "SupervoxelConfig", "check_sam", "felzenszwalb_segments",
    "generate_supervoxels", "load_case_supervoxels", "load_supervoxel_counts", "select_segments", "slic_segments",
    "supervoxels_for_case",
]
