"""The paper's SuperVoxel route: SAM "segment everything" on axial slices, propagated through the volume by SAM2.

Only local checkpoints are used, nothing is ever downloaded: models are built from the ``sam2`` package's configs
and ``segment_anything``'s registry, then loaded from the user's files. A missing package, checkpoint or config
raises :class:`SamUnavailable` saying what to install or pass. The packages are imported only when this backend
is used. Written against ``sam2`` 1.1.0 and ``segment_anything`` 1.0.

Per case: on ``prompt_slices`` axial slices of the uint8-rescaled image, automatic mask generation (SAM v1 if
``sam_checkpoint`` is given, else SAM2) keeps masks with predicted IoU ≥ ``pred_iou_thresh``. Per prompt slice,
its masks that no other object covers are propagated forward, then backward, by SAM2's video predictor (which
only reads a folder of JPEG frames ``00000.jpg, …``). The 3D masks are painted into a label map (larger first),
which the caller filters like the offline backends.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nninteractive_train.errors import SetupError

from .backends import rescale


class SamUnavailable(SetupError):
    """The SAM backend cannot run: a package, checkpoint or config is missing or they do not match."""


@dataclass(frozen=True)
class SamConfig:
    """Settings of the SAM + SAM2 backend."""

    sam2_checkpoint: str | None = None
    """Local SAM2 checkpoint (``.pt``, ``{"model": state_dict}``) for propagation (and mask generation if no SAM
    checkpoint is given)."""
    sam2_config: str | None = None
    """SAM2 model config name inside the ``sam2`` package, e.g. ``configs/sam2.1/sam2.1_hiera_l.yaml``."""
    sam_checkpoint: str | None = None
    """Optional local SAM (v1) checkpoint (a state dict) for automatic mask generation, as in the paper."""
    sam_model_type: str = "vit_h"
    """SAM (v1) model type matching ``sam_checkpoint``: vit_h, vit_l or vit_b."""
    device: str = "cuda"
    """Torch device."""
    pred_iou_thresh: float = 0.92
    """Keep generated masks with at least this predicted IoU (the paper: 0.92)."""
    stability_score_thresh: float = 0.95
    """Mask generator's stability filter (SAM's default; ≤ 0 turns it off)."""
    points_per_side: int = 32
    """Mask generator's point grid per side (SAM's default; the mask decoder runs once per point)."""
    prompt_slices: int = 3
    """Axial slices (evenly spaced inside the image) on which masks are generated."""
    max_candidates: int = 40
    """Most masks propagated per case (highest predicted IoU first)."""
    dedup_iou: float = 0.5
    """A mask is not propagated if an object already propagated or chosen overlaps it on its slice by this IoU."""


def _sam2_root() -> Path | None:
    spec = importlib.util.find_spec("sam2")
    return Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None


def sam2_config_file(name: str) -> Path | None:
    """The file of SAM2 config ``name`` (e.g. ``configs/sam2.1/sam2.1_hiera_t.yaml``, ``.yaml`` optional) in the
    installed ``sam2`` package, or None: sam2's hydra compose only finds names inside the package."""
    root = _sam2_root()
    if root is None or Path(name).is_absolute():
        return None
    return next((f for f in (root / name, root / f"{name}.yaml") if f.suffix == ".yaml" and f.is_file()), None)


def check_sam(cfg: SamConfig) -> None:
    """Raise :class:`SamUnavailable` unless packages, local checkpoints, config and device for ``cfg`` are there."""
    if not cfg.sam2_checkpoint or not cfg.sam2_config:
        raise SamUnavailable("the sam backend needs --sam2-checkpoint FILE and --sam2-config NAME "
                             "(local files; nothing is downloaded)")
    root = _sam2_root()
    if root is None:
        raise SamUnavailable("the sam backend needs the 'sam2' package (pip install it from "
                             "github.com/facebookresearch/sam2); it is not installed")
    if not Path(cfg.sam2_checkpoint).is_file():
        raise SamUnavailable(f"SAM2 checkpoint {cfg.sam2_checkpoint} does not exist (nothing is downloaded)")
    if sam2_config_file(cfg.sam2_config) is None:
        names = sorted(str(f.relative_to(root)) for f in root.glob("configs/sam2*/*.yaml"))
        raise SamUnavailable(f"SAM2 config {cfg.sam2_config!r} is not in the installed sam2 package; "
                             f"use one of: {', '.join(names)}")
    if cfg.sam_checkpoint is not None:
        if cfg.sam_model_type not in ("vit_h", "vit_l", "vit_b"):
            raise SamUnavailable(f"unknown SAM model type {cfg.sam_model_type!r}; use vit_h, vit_l or vit_b")
        if importlib.util.find_spec("segment_anything") is None:
            raise SamUnavailable("--sam-checkpoint needs the 'segment_anything' package; it is not installed")
        if not Path(cfg.sam_checkpoint).is_file():
            raise SamUnavailable(f"SAM checkpoint {cfg.sam_checkpoint} does not exist (nothing is downloaded)")
    import torch

    if str(cfg.device).startswith("cuda") and not torch.cuda.is_available():
        raise SamUnavailable(f"device {cfg.device!r} requested but CUDA is not available (use --device cpu)")


def prompt_slices(valid: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` distinct axial indices evenly spaced strictly inside the slices of ``valid`` (Z, Y, X) that
    hold valid voxels (the end slices are skipped: they often show little); empty if none."""
    zs = np.flatnonzero(valid.any(axis=(1, 2)))
    if zs.size == 0 or n < 1:
        return np.zeros(0, int)
    return np.unique(np.linspace(zs[0], zs[-1], n + 2)[1:-1].round().astype(int))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two bool masks of one shape (0 if both are empty)."""
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0


def novel_masks(masks: Sequence[np.ndarray], covered: Sequence[np.ndarray], max_iou: float) -> list[int]:
    """Indices of ``masks`` (2D bool, in order) whose IoU with each of ``covered`` and with each mask selected
    before it stays below ``max_iou``: one object is propagated once, not once per prompt slice."""
    keep: list[int] = []
    for i, m in enumerate(masks):
        if all(mask_iou(m, c) < max_iou for c in [*covered, *(masks[k] for k in keep)]):
            keep.append(i)
    return keep


def paint_labels(objects: Sequence[dict[int, np.ndarray]], valid: np.ndarray) -> np.ndarray:
    """(Z, Y, X) int32 labels from 3D objects given as ``{z: (Y, X) bool mask}``: larger objects are painted first,
    so smaller ones stay visible where they overlap; 0 outside ``valid`` and where no object is."""
    labels = np.zeros(valid.shape, np.int32)
    sizes = [sum(int(np.count_nonzero(m)) for m in o.values()) for o in objects]
    for rank, i in enumerate(np.argsort([-s for s in sizes], kind="stable")):
        for z, m in objects[i].items():
            labels[z][m & valid[z]] = rank + 1
    return labels


class SamSegmenter:
    """Callable ``(image, valid, *, spacing) -> (Z, Y, X) int32 labels``. Models load at construction, so a
    checkpoint that does not match its config fails once, before any case."""

    def __init__(self, cfg: SamConfig):
        check_sam(cfg)
        self.cfg = cfg
        # of the last call: masks generated (after the generator's own filters), kept (IoU, max_candidates),
        # propagated (not covered by another object)
        self.last_stats: dict[str, int] = {}
        from sam2.build_sam import build_sam2_video_predictor

        try:  # a strict load_state_dict error lists every key; sam2's own checks raise a bare RuntimeError
            self._video = build_sam2_video_predictor(cfg.sam2_config, cfg.sam2_checkpoint, device=cfg.device)
        except RuntimeError as e:
            raise SamUnavailable(f"SAM2 checkpoint {cfg.sam2_checkpoint} does not fit config {cfg.sam2_config}: "
                                 f"{str(e)[:300] or 'missing/unexpected keys, see the log'}") from e
        amg = {"points_per_side": cfg.points_per_side, "pred_iou_thresh": cfg.pred_iou_thresh,
               "stability_score_thresh": cfg.stability_score_thresh}
        if cfg.sam_checkpoint is not None:
            import torch
            from segment_anything import SamAutomaticMaskGenerator, sam_model_registry

            sam = sam_model_registry[cfg.sam_model_type](checkpoint=None)
            # loaded here rather than by the registry: its torch.load has no map_location (CUDA-saved files fail
            # on CPU machines)
            try:
                sam.load_state_dict(torch.load(cfg.sam_checkpoint, map_location="cpu", weights_only=True))
            except RuntimeError as e:
                raise SamUnavailable(f"SAM checkpoint {cfg.sam_checkpoint} does not fit model type "
                                     f"{cfg.sam_model_type}: {str(e)[:300]}") from e
            self._amg = SamAutomaticMaskGenerator(sam.to(cfg.device), **amg)
        else:
            from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

            # the video predictor is a SAM2Base too: one model in memory serves both
            self._amg = SAM2AutomaticMaskGenerator(self._video, **amg)

    def __call__(self, image: np.ndarray, valid: np.ndarray, *, spacing: Sequence[float]) -> np.ndarray:
        """Labels for ``image`` (Z, Y, X) inside ``valid`` (Z, Y, X bool); ``spacing`` is unused (slice-wise)."""
        import torch
        from PIL import Image

        cfg = self.cfg
        u8 = (rescale(image, valid) * 255).astype(np.uint8)
        gen = []  # (predicted IoU, z, (Y, X) mask)
        for z in prompt_slices(valid, cfg.prompt_slices):
            gen += [(float(m["predicted_iou"]), int(z), np.asarray(m["segmentation"], bool))
                    for m in self._amg.generate(np.repeat(u8[z][..., None], 3, axis=2))]
        # the generators drop IoU ≤ thresh themselves (strictly, and only for thresh > 0): filtered again for ≥
        cands = sorted((c for c in gen if c[0] >= cfg.pred_iou_thresh), key=lambda t: -t[0])[: cfg.max_candidates]
        objects: list[dict[int, np.ndarray]] = []
        self.last_stats = {"generated": len(gen), "kept": len(cands), "propagated": 0}
        if not cands:
            return paint_labels(objects, valid)
        with tempfile.TemporaryDirectory() as frames, torch.inference_mode():
            for z in range(image.shape[0]):
                Image.fromarray(np.repeat(u8[z][..., None], 3, axis=2)).save(Path(frames) / f"{z:05d}.jpg",
                                                                              quality=95)
            # frames stay in host memory (moved per frame): 12 MB each at 1024², too many for a GPU on big volumes
            state = self._video.init_state(video_path=frames, offload_video_to_cpu=True)
            for z in sorted({c[1] for c in cands}):
                here = [m for _, cz, m in cands if cz == z]
                new = [here[i] for i in novel_masks(here, [o[z] for o in objects if z in o], cfg.dedup_iou)]
                if not new:  # propagate_in_video raises without any prompt
                    continue
                first = len(objects)
                objects += [{} for _ in new]
                self.last_stats["propagated"] += len(new)
                # one state per direction: without the reset, backward tracking would take the forward pass's
                # slices as its "previous" memory frames
                for reverse in (False, True):
                    self._video.reset_state(state)
                    for i, m in enumerate(new):
                        self._video.add_new_mask(state, frame_idx=int(z), obj_id=first + i, mask=m)
                    for f, obj_ids, logits in self._video.propagate_in_video(state, start_frame_idx=int(z),
                                                                             reverse=reverse):
                        hit = (logits[:, 0] > 0).cpu().numpy()  # (objects, Y, X) at the frames' size
                        for j, oid in enumerate(obj_ids):
                            if hit[j].any():
                                o = objects[oid]
                                o[f] = o[f] | hit[j] if f in o else hit[j]
        return paint_labels(objects, valid)
