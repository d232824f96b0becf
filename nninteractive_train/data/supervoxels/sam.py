"""The paper's SuperVoxel route: SAM "segment everything" on axial slices, propagated through the volume by SAM2.

Only local checkpoints are used: the user passes the files, nothing is ever downloaded. A missing package or
checkpoint raises :class:`SamUnavailable` with what to install or pass. The packages (``segment_anything``,
``sam2``) are imported only when this backend is used.

Per case: the image is rescaled to uint8 and written as a folder of JPEG frames (SAM2's video predictor reads
frames from disk); masks from automatic mask generation on ``prompt_slices`` axial slices with predicted IoU ≥
``pred_iou_thresh`` are propagated forward and backward with the video predictor; the 3D masks are painted into a
label map (larger first, so smaller structures stay visible) and filtered like the offline backends.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .backends import rescale


class SamUnavailable(RuntimeError):
    """The SAM backend cannot run: a package or checkpoint is missing."""


@dataclass(frozen=True)
class SamConfig:
    """Settings of the SAM + SAM2 backend."""

    sam2_checkpoint: str | None = None
    """Local SAM2 checkpoint (``.pt``) for propagation (and mask generation if no SAM checkpoint is given)."""
    sam2_config: str | None = None
    """SAM2 model config name inside the ``sam2`` package, e.g. ``configs/sam2.1/sam2.1_hiera_l.yaml``."""
    sam_checkpoint: str | None = None
    """Optional local SAM (v1) checkpoint for automatic mask generation, as in the paper."""
    sam_model_type: str = "vit_h"
    """SAM (v1) model type matching ``sam_checkpoint``: vit_h, vit_l or vit_b."""
    device: str = "cuda"
    """Torch device."""
    pred_iou_thresh: float = 0.92
    """Keep generated masks with at least this predicted IoU (the paper: 0.92)."""
    prompt_slices: int = 3
    """Axial slices (evenly spaced inside the image) on which masks are generated."""
    max_candidates: int = 40
    """Most masks propagated per case."""


def check_sam(cfg: SamConfig) -> None:
    """Raise :class:`SamUnavailable` unless packages and local checkpoints for ``cfg`` are present."""
    if not cfg.sam2_checkpoint or not cfg.sam2_config:
        raise SamUnavailable("the sam backend needs --sam2-checkpoint FILE and --sam2-config NAME "
                             "(local files; nothing is downloaded)")
    if importlib.util.find_spec("sam2") is None:
        raise SamUnavailable("the sam backend needs the 'sam2' package (pip install it from "
                             "github.com/facebookresearch/sam2); it is not installed")
    if not Path(cfg.sam2_checkpoint).is_file():
        raise SamUnavailable(f"SAM2 checkpoint {cfg.sam2_checkpoint} does not exist (nothing is downloaded)")
    if cfg.sam_checkpoint is not None:
        if importlib.util.find_spec("segment_anything") is None:
            raise SamUnavailable("--sam-checkpoint needs the 'segment_anything' package; it is not installed")
        if not Path(cfg.sam_checkpoint).is_file():
            raise SamUnavailable(f"SAM checkpoint {cfg.sam_checkpoint} does not exist (nothing is downloaded)")


class SamSegmenter:
    """Callable ``(image, valid, *, spacing) -> (Z, Y, X) int32 labels``; models load on first use."""

    def __init__(self, cfg: SamConfig):
        check_sam(cfg)
        self.cfg = cfg
        self._amg = None
        self._video = None

    def _load(self):
        if self._video is not None:
            return
        from sam2.build_sam import build_sam2, build_sam2_video_predictor

        cfg = self.cfg
        self._video = build_sam2_video_predictor(cfg.sam2_config, cfg.sam2_checkpoint, device=cfg.device)
        if cfg.sam_checkpoint is not None:
            from segment_anything import SamAutomaticMaskGenerator, sam_model_registry

            sam = sam_model_registry[cfg.sam_model_type](checkpoint=cfg.sam_checkpoint).to(cfg.device)
            self._amg = SamAutomaticMaskGenerator(sam, pred_iou_thresh=cfg.pred_iou_thresh)
        else:
            from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

            model = build_sam2(cfg.sam2_config, cfg.sam2_checkpoint, device=cfg.device)
            self._amg = SAM2AutomaticMaskGenerator(model, pred_iou_thresh=cfg.pred_iou_thresh)

    def __call__(self, image: np.ndarray, valid: np.ndarray, *, spacing: Sequence[float]) -> np.ndarray:
        import torch
        from PIL import Image

        self._load()
        cfg = self.cfg
        zs = np.flatnonzero(valid.any(axis=(1, 2)))
        if zs.size == 0:
            return np.zeros(image.shape, np.int32)
        u8 = (rescale(image, valid) * 255).astype(np.uint8)
        prompts = np.unique(np.linspace(zs[0], zs[-1], cfg.prompt_slices + 2)[1:-1].round().astype(int))
        cands = []
        for z in prompts:
            rgb = np.repeat(u8[z][..., None], 3, axis=2)
            for m in self._amg.generate(rgb):
                if m["predicted_iou"] >= cfg.pred_iou_thresh:
                    cands.append((float(m["predicted_iou"]), int(z), m["segmentation"].astype(bool)))
        cands.sort(key=lambda t: -t[0])
        cands = cands[: cfg.max_candidates]
        if not cands:
            return np.zeros(image.shape, np.int32)
        masks = np.zeros((len(cands), *image.shape), bool)
        with tempfile.TemporaryDirectory() as frames, torch.inference_mode():
            for z in range(image.shape[0]):
                Image.fromarray(np.repeat(u8[z][..., None], 3, axis=2)).save(Path(frames) / f"{z:05d}.jpg")
            state = self._video.init_state(video_path=frames)
            for reverse in (False, True):
                self._video.reset_state(state)
                for i, (_, z, m) in enumerate(cands):
                    self._video.add_new_mask(inference_state=state, frame_idx=z, obj_id=i, mask=m)
                for f, obj_ids, logits in self._video.propagate_in_video(state, reverse=reverse):
                    hit = (logits[:, 0] > 0).cpu().numpy()
                    for j, oid in enumerate(obj_ids):
                        masks[int(oid), f] |= hit[j]
        labels = np.zeros(image.shape, np.int32)
        order = np.argsort([-m.sum() for m in masks], kind="stable")
        for rank, i in enumerate(order):
            labels[masks[i] & valid] = rank + 1
        return labels
