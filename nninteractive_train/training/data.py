"""Builds the training and validation loaders of the trainer (nnU-Net's augmenter processes around
``InteractiveDataLoader``)."""

from __future__ import annotations

import numpy as np

from nninteractive_train.training.augmentation import train_augmentation, validation_transforms
from nninteractive_train.training.loader import InteractiveDataLoader
from nninteractive_train.training.schedule import int_seed

ROTATION = np.pi / 6  # ±30°, nnU-Net's default for isotropic-ish 3D data


def sim_params(cfg) -> dict:
    """Agent parameters from the interaction config, in ``simulation.draw_agent``'s keywords, and the first
    prompt's simulation parameters (``slice_power``)."""
    it = cfg.interaction
    return {"kinds": tuple(it.kinds), "weights": it.kind_weights, "agent_weights": dict(it.agent_weights),
            "slice_power": float(it.slice_power)}


def num_workers(cfg) -> int:
    from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA

    n = cfg.training.num_data_workers
    return get_allowed_n_proc_DA() if n is None else int(n)


class TrackedLoader:
    """An augmenter (single- or multi-process) that remembers, per data worker, the ``stream`` record of the
    last batch it handed out: the loader's part of the training state. Batches prefetched by a worker but never
    handed out are not counted, so a resume continues each worker's streams right after what was trained on."""

    def __init__(self, augmenter):
        self.augmenter = augmenter
        self.streams: dict[int, dict] = {}

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        batch = next(self.augmenter)
        stream = batch.get("stream")
        if stream is not None:
            self.streams[stream["worker"]] = stream
        return batch

    @property
    def data_loader(self):
        """The ``InteractiveDataLoader`` (in this process only without augmentation workers)."""
        return getattr(self.augmenter, "data_loader", None) or getattr(self.augmenter, "generator", None)

    def state_dict(self) -> dict[int, dict]:
        return {w: dict(s) for w, s in self.streams.items()}

    def _finish(self) -> None:
        finish = getattr(self.augmenter, "_finish", None)
        if finish is not None:
            finish()


def build_dataloaders(trainer, resume: dict | None = None):
    """(train, val) ``TrackedLoader``s yielding interactive batches; each worker's streams start from
    (seed, rank, worker, epoch), or continue from ``resume`` (``{"train": {worker: stream}, "val": …}``)."""
    from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter
    from batchgenerators.dataloading.single_threaded_augmenter import SingleThreadedAugmenter

    cfg, env = trainer.run_config, trainer.dist_env
    patch = [int(p) for p in trainer.configuration_manager.patch_size]
    spacing = trainer.configuration_manager.spacing
    dataset_tr, dataset_val = trainer.get_tr_and_val_datasets()
    from nninteractive_train.training.collection import sampler_factory_for

    sampler_factory = sampler_factory_for(trainer, dataset_tr.identifiers)
    resume = resume or {}
    common = dict(sim_params=sim_params(cfg), spacing=spacing, seed=cfg.training.seed, rank=env.rank,
                  epoch=trainer.current_epoch)
    transforms, spatial = train_augmentation(patch, cfg.data, ROTATION)
    dl_tr = InteractiveDataLoader(dataset_tr, trainer.batch_size, patch, trainer.label_manager,
                                  transforms=transforms, spatial=spatial,
                                  sampler_factory=sampler_factory, resume=resume.get("train"), **common)
    dl_val = InteractiveDataLoader(dataset_val, trainer.batch_size, patch, trainer.label_manager,
                                   transforms=validation_transforms(), resume=resume.get("val"),
                                   **dict(common, seed=common["seed"] + 1))
    n = num_workers(cfg)
    if n == 0:
        return (TrackedLoader(SingleThreadedAugmenter(dl_tr, None)),
                TrackedLoader(SingleThreadedAugmenter(dl_val, None)))
    pin = trainer.device.type == "cuda"
    seeds = [int_seed(cfg.training.seed, env.rank, i, trainer.current_epoch) for i in range(n)]
    n_val = max(1, n // 2)
    val_seeds = [int_seed(cfg.training.seed + 1, env.rank, i, trainer.current_epoch) for i in range(n_val)]
    tr = NonDetMultiThreadedAugmenter(dl_tr, None, n, num_cached=max(6, n // 2), seeds=seeds, pin_memory=pin,
                                      wait_time=0.002)
    val = NonDetMultiThreadedAugmenter(dl_val, None, n_val, num_cached=max(3, n // 4), seeds=val_seeds,
                                       pin_memory=pin, wait_time=0.002)
    return TrackedLoader(tr), TrackedLoader(val)
