"""Builds the training and validation loaders of the trainer (nnU-Net's augmenter processes around
``InteractiveDataLoader``)."""

from __future__ import annotations

import numpy as np

from nninteractive_train.training.augmentation import (spatial_augmentation, training_transforms,
                                                        validation_transforms)
from nninteractive_train.training.loader import InteractiveDataLoader
from nninteractive_train.training.schedule import int_seed

ROTATION = np.pi / 6  # ±30°, nnU-Net's default for isotropic-ish 3D data


def sim_params(cfg) -> dict:
    """Agent parameters from the interaction config, in ``simulation.draw_agent``'s keywords."""
    it = cfg.interaction
    return {"kinds": tuple(it.kinds), "weights": it.kind_weights, "agent_weights": dict(it.agent_weights)}


def num_workers(cfg) -> int:
    from nnunetv2.utilities.default_n_proc_DA import get_allowed_n_proc_DA

    n = cfg.training.num_data_workers
    return get_allowed_n_proc_DA() if n is None else int(n)


def build_dataloaders(trainer):
    """(train, val) iterables yielding interactive batches; workers seeded from (seed, rank, worker, epoch)."""
    from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter
    from batchgenerators.dataloading.single_threaded_augmenter import SingleThreadedAugmenter

    cfg, env = trainer.run_config, trainer.dist_env
    patch = [int(p) for p in trainer.configuration_manager.patch_size]
    spacing = trainer.configuration_manager.spacing
    dataset_tr, dataset_val = trainer.get_tr_and_val_datasets()
    from nninteractive_train.training.collection import sampler_factory_for

    sampler_factory = sampler_factory_for(trainer, dataset_tr.identifiers)
    common = dict(sim_params=sim_params(cfg), spacing=spacing, seed=cfg.training.seed, rank=env.rank,
                  epoch=trainer.current_epoch)
    dl_tr = InteractiveDataLoader(dataset_tr, trainer.batch_size, patch, trainer.label_manager,
                                  transforms=training_transforms(patch, cfg.data),
                                  spatial=spatial_augmentation(cfg.data, ROTATION),
                                  sampler_factory=sampler_factory, **common)
    dl_val = InteractiveDataLoader(dataset_val, trainer.batch_size, patch, trainer.label_manager,
                                   transforms=validation_transforms(), **dict(common, seed=common["seed"] + 1))
    n = num_workers(cfg)
    if n == 0:
        return SingleThreadedAugmenter(dl_tr, None), SingleThreadedAugmenter(dl_val, None)
    pin = trainer.device.type == "cuda"
    seeds = [int_seed(cfg.training.seed, env.rank, i, trainer.current_epoch) for i in range(n)]
    n_val = max(1, n // 2)
    val_seeds = [int_seed(cfg.training.seed + 1, env.rank, i, trainer.current_epoch) for i in range(n_val)]
    tr = NonDetMultiThreadedAugmenter(dl_tr, None, n, num_cached=max(6, n // 2), seeds=seeds, pin_memory=pin,
                                      wait_time=0.002)
    val = NonDetMultiThreadedAugmenter(dl_val, None, n_val, num_cached=max(3, n // 4), seeds=val_seeds,
                                       pin_memory=pin, wait_time=0.002)
    return tr, val
