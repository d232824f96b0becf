"""The interactive data loader: one sampled object per sample, its binary target, augmentation, and the
first simulated prompt — all inside nnU-Net's data-loading workers.

Each sample: draw a case and an object (from the collection sampler when the dataset has a manifest, else a
connected component of a random foreground label) and a voxel of it as the patch centre, draw the spatial
transform and crop only the source region it reads, resample it into the patch, run the other augmentations on
image + binary target, then draw a user agent and simulate its first prompt from the target.
Output batch: ``data`` float32 (B, 1 + 7, X, Y, Z), ``target`` uint8 (B, 1, X, Y, Z), ``agents``, ``meta``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from nninteractive_train.simulation.encoding import NUM_INTERACTION_CHANNELS
from nninteractive_train.training.schedule import int_seed, stream_seed
from nninteractive_train.training.spatial import SpatialAug, crop_box, draw_affine, patch_centre, source_box, warp


def component_at(mask: np.ndarray, point: Sequence[int]) -> np.ndarray:
    """The 26-connected component of bool ``mask`` (X, Y, Z) that contains ``point``; empty if it is outside."""
    import cc3d

    if not mask[tuple(point)]:
        return np.zeros_like(mask, dtype=bool)
    labels = cc3d.connected_components(mask, connectivity=26)
    return labels == labels[tuple(point)]


def _nnunet_loader_base():
    from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader

    return nnUNetDataLoader


class InteractiveDataLoader(_nnunet_loader_base()):
    """nnU-Net's data loader, drawing objects instead of classes. Arguments as nnUNetDataLoader, plus:

    Args:
        sim_params: keyword arguments for ``simulation.draw_agent`` (``kinds``, ``weights``, ``agent_weights``)
            and ``simulation.initial`` (``slice_power``).
        spacing: (3,) voxel size in mm of the preprocessed data, handed to the simulators.
        seed, rank: stream identity; each worker process adds its thread id.
        sampler_factory: optional callable ``(seed: int) -> sampler`` for a collection; None = per-label
            connected components.
        spatial: rotation / scaling drawn per sample (``spatial.SpatialAug``); None = plain crops. ``transforms``
            then runs on the patch-sized result.
        resume: per worker (thread id), the ``stream`` record of the last batch the trainer consumed from it in
            an earlier run (see ``generate_train_batch``); that worker continues its streams from there.

    Every batch carries ``stream``: the worker's id and its random stream and sampler state after the batch, so
    the trainer can record where each worker's streams stand in what it has consumed (``data.TrackedLoader``).
    """

    def __init__(self, data, batch_size, patch_size, label_manager, *, transforms, sim_params: dict,
                 spacing: Sequence[float], seed: int, rank: int, epoch: int = 0, sampler_factory=None,
                 spatial: SpatialAug | None = None, resume: dict | None = None):
        super().__init__(data, batch_size, patch_size, patch_size, label_manager,
                         oversample_foreground_percent=1.0, transforms=transforms)
        self.spatial = spatial
        self.sim_params = dict(sim_params)
        self.spacing = tuple(float(s) for s in spacing)
        self.seed, self.rank, self.epoch = seed, rank, epoch
        self.sampler_factory = sampler_factory
        self.resume = dict(resume or {})
        self._rng = None
        self._sampler = None

    @property
    def rng(self) -> np.random.Generator:
        # created lazily: the worker's thread id is only known once the augmenter has started it
        if self._rng is None:
            saved = self.resume.get(self.thread_id)
            # a new stream per start epoch, so a run restarted without saved streams does not replay old draws
            self._rng = np.random.default_rng(stream_seed(self.seed, self.rank, self.thread_id, self.epoch))
            if saved is not None:
                self._rng.bit_generator.state = saved["rng"]
            if self.sampler_factory is not None:
                sampler_seed = (saved["sampler"]["seed"] if saved is not None and saved.get("sampler")
                                else int_seed(self.seed, self.rank, self.thread_id, self.epoch, 3))
                self._sampler = self.sampler_factory(sampler_seed)
                if saved is not None and saved.get("sampler"):
                    self._sampler.load_state_dict(saved["sampler"])
        return self._rng

    def stream_state(self) -> dict:
        """This worker's id, random stream and sampler position (JSON-able apart from the generator's ints)."""
        _ = self.rng
        return {"worker": int(self.thread_id), "rng": self._rng.bit_generator.state,
                "sampler": self._sampler.state_dict() if self._sampler is not None else None}

    def _sample(self, rng):
        pick = self._sampler.draw_sample(rng=rng) if self._sampler is not None else None
        key = pick.key if pick is not None else self.indices[rng.integers(len(self.indices))]
        data, seg, _, properties = self._data.load_case(key)
        if pick is None:
            locations = {k: v for k, v in properties["class_locations"].items() if len(v) > 0}
            if not locations:
                raise RuntimeError(f"case {key} has no foreground voxels; remove it from the training cases")
            label = sorted(locations)[rng.integers(len(locations))]
            center, ids, labels = locations[label][rng.integers(len(locations[label]))][1:], (label,), seg
        else:
            center, ids = pick.center, pick.ids
            labels = seg if pick.labels is None else pick.labels
        # draw the spatial transform first, then read only the source region it maps from (spatial.py)
        affine = draw_affine(self.spatial, rng=rng) if self.spatial is not None else None
        centre = patch_centre(center, self.final_patch_size)
        lo, hi = source_box(centre, affine, self.final_patch_size)
        image = torch.from_numpy(crop_box(data, lo, hi, 0)).float()
        label_crop = crop_box(labels if labels.ndim == 4 else labels[None], lo, hi, 0)[0]
        obj = np.isin(label_crop, ids)
        if pick is None:  # one instance of a semantic label: the component through the drawn voxel
            obj = component_at(obj, np.asarray(center, int) - lo)
        target = torch.from_numpy(obj[None].astype(np.int16))
        image, target = warp(image, target, centre - lo, affine, self.final_patch_size)
        if self.transforms is not None:
            out = self.transforms(image=image, segmentation=target)
            image, target = out["image"], out["segmentation"]
        return key, image, target > 0

    def generate_train_batch(self) -> dict:
        from threadpoolctl import threadpool_limits

        from nninteractive_train.simulation import draw_agent, initial

        rng = self.rng
        # every voxel is written below: the image, then zeroed prompt channels that the first prompt draws into
        data = torch.empty((self.batch_size, 1 + NUM_INTERACTION_CHANNELS, *self.final_patch_size), dtype=torch.float32)
        target = torch.empty((self.batch_size, 1, *self.final_patch_size), dtype=torch.uint8)
        agents, meta, keys = [], [], []
        agent_kw = {k: self.sim_params[k] for k in ("kinds", "weights", "agent_weights") if k in self.sim_params}
        prompt_kw = {k: self.sim_params[k] for k in ("slice_power",) if k in self.sim_params}
        with torch.no_grad(), threadpool_limits(limits=1, user_api=None):
            for b in range(self.batch_size):
                key, image, tgt = self._sample(rng)
                data[b, :1] = image
                target[b] = tgt
                agent = draw_agent(rng=rng, **agent_kw)
                interactions = data[b, 1:].zero_().numpy()  # a view: the prompt is drawn in place
                prompt = initial(interactions, tgt[0].numpy(), agent, rng=rng, spacing=self.spacing, **prompt_kw)
                agents.append(agent)
                meta.append({"num_interactions": int(prompt is not None), "case": key, "spacing": self.spacing})
                keys.append(key)
        return {"data": data, "target": target, "agents": agents, "meta": meta, "keys": keys,
                "stream": self.stream_state()}
