"""CPU-seconds per training sample of the data loader, against nnU-Net's stock pipeline, in one run.

    python scripts/bench_loader.py [--work DIR] [--cases 6] [--samples 16] [--patches 192,192,192 32,64,64]

Generates paper-sized volumes (200–240³, the paper config's preprocessing: native spacing, per-image z-score) once
into ``--work``, then times ``generate_train_batch`` (batch 1, one core, process CPU time, after ``--warmup``
untimed samples that fill one-off caches such as the Gaussian blur's conv-vs-FFT choice) for:

- ``worst-case crop``: the interactive loader as it was: a crop sized for every augmentation at once
  (``initial_patch_size``: zoom-out ×2, rotation, transposition), then batchgeneratorsv2's SpatialTransform;
- ``per-sample crop``: the interactive loader now (``training/spatial.py``): the transform is drawn first and only
  the source region it reads is cropped;
- ``nnU-Net stock``: ``nnUNetDataLoader`` + ``nnUNetTrainer.get_training_transforms`` (its initial patch, mirroring,
  deep-supervision targets) on the same preprocessed cases.

All three draw from the same cases with fixed seeds; each interactive sample includes the first simulated prompt.
"cores / GPU" is the CPU time per sample × the paper's demand (3 samples per GPU per 0.8 s step = 3.75 samples/s).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATASET_ID = 978
SAMPLES_PER_GPU_S = 3 / 0.8  # paper: batch 3 per GPU, 0.8 s per step
TARGET_CPU_S, TARGET_CORES = 0.6, 3.0


def prepare(work: Path, cases: int) -> Path:
    """Generated paper-sized cases, preprocessed with the paper config; reused when present."""
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ[var] = str(work / var)
    pre = work / "nnUNet_preprocessed" / f"Dataset{DATASET_ID}_LoaderBench"
    if not (pre / "nnInteractivePlans.json").is_file():
        from nninteractive_train.data.synthetic import write_dataset

        write_dataset(work / "nnUNet_raw", DATASET_ID, cases, seed=5, name="LoaderBench",
                      shape_range=((200, 240),) * 3, spacings=((1.0, 1.0, 1.0),), num_processes=2)
        subprocess.run([sys.executable, "-m", "nninteractive_train.cli.plan_and_preprocess", "-d", str(DATASET_ID),
                        "--config", str(REPO / "configs" / "nninteractive_v1.yaml"), "-np", "2"], check=True,
                       stdout=subprocess.DEVNULL)
    return pre


def _dataset(pre: Path):
    from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
    import json

    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    folder = pre / "nnInteractivePlans_3d_fullres"
    ds = infer_dataset_class(str(folder))(str(folder))
    plans = PlansManager(str(pre / "nnInteractivePlans.json"))
    label_manager = plans.get_label_manager(json.loads((pre / "dataset.json").read_text()))
    spacing = plans.get_configuration("3d_fullres").spacing
    return ds, label_manager, spacing


def _worst_case_loader_class():
    """The interactive loader as it was before per-sample crops (kept here as the benchmark's reference)."""
    import torch

    from nninteractive_train.training.loader import InteractiveDataLoader, component_at
    from nninteractive_train.training.spatial import crop_box

    class WorstCaseCropLoader(InteractiveDataLoader):
        def __init__(self, *args, initial_patch, **kwargs):
            super().__init__(*args, **kwargs)
            self.initial_patch = initial_patch

        def _sample(self, rng):
            key = self.indices[rng.integers(len(self.indices))]
            data, seg, _, properties = self._data.load_case(key)
            locations = {k: v for k, v in properties["class_locations"].items() if len(v) > 0}
            label = sorted(locations)[rng.integers(len(locations))]
            center = locations[label][rng.integers(len(locations[label]))][1:]
            lo = np.asarray(center, int) - np.asarray(self.initial_patch) // 2
            hi = lo + np.asarray(self.initial_patch)
            image = torch.from_numpy(crop_box(np.asarray(data), lo, hi, 0)).float()  # as before: whole case read
            obj = crop_box(np.asarray(seg), lo, hi, 0)[0] == label
            obj = component_at(obj, [s // 2 for s in self.initial_patch])
            out = self.transforms(image=image, segmentation=torch.from_numpy(obj[None].astype(np.int16)))
            return key, out["image"], out["segmentation"] > 0

    return WorstCaseCropLoader


def build_loaders(pre: Path, patch: list[int]) -> dict:
    from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
    from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
    from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.training.data_augmentation.compute_initial_patch_size import get_patch_size

    from nninteractive_train.config import load_config
    from nninteractive_train.training.augmentation import spatial_augmentation, training_transforms, \
        transposable_axes
    from nninteractive_train.training.data import ROTATION, sim_params
    from nninteractive_train.training.loader import InteractiveDataLoader
    from nninteractive_train.training.schedule import initial_patch_size

    cfg = load_config(str(REPO / "configs" / "nninteractive_v1.yaml"), [])
    ds, label_manager, spacing = _dataset(pre)
    common = dict(sim_params=sim_params(cfg), spacing=spacing, seed=0, rank=0)
    new = InteractiveDataLoader(ds, 1, patch, label_manager, transforms=training_transforms(patch, cfg.data),
                                spatial=spatial_augmentation(cfg.data, ROTATION), **common)
    first = initial_patch_size(patch, cfg.data.scaling, ROTATION, transposable=bool(transposable_axes(patch)))
    aug = spatial_augmentation(cfg.data, ROTATION)
    old_spatial = SpatialTransform(patch, 0, False, p_rotation=aug.p_rotation, rotation=(-ROTATION, ROTATION),
                                   p_scaling=aug.p_scaling, scaling=aug.scaling,
                                   p_synchronize_scaling_across_axes=aug.p_synchronize_scaling,
                                   border_mode_seg="constant", padding_value_seg=0)
    old_tf = ComposeTransforms([old_spatial, *training_transforms(patch, cfg.data).transforms])
    old = _worst_case_loader_class()(ds, 1, patch, label_manager, transforms=old_tf, initial_patch=first, **common)
    rot = (-30 / 360 * 2 * np.pi, 30 / 360 * 2 * np.pi)
    stock_first = get_patch_size(patch, rot, rot, rot, (0.85, 1.25))
    strides = [[1, 1, 1]] + [[2, 2, 2]] * 5
    ds_scales = list(list(i) for i in 1 / np.cumprod(np.vstack(strides), axis=0))[:-1]
    stock_tf = nnUNetTrainer.get_training_transforms(patch, rot, ds_scales, (0, 1, 2), False, use_mask_for_norm=[False],
                                                     foreground_labels=label_manager.foreground_labels)
    stock = nnUNetDataLoader(ds, 1, stock_first, patch, label_manager, oversample_foreground_percent=0.33,
                             transforms=stock_tf)
    return {"worst-case crop": (old, first), "per-sample crop": (new, list(patch)),
            "nnU-Net stock": (stock, [int(s) for s in stock_first])}


def time_loader(loader, samples: int, seed: int, warmup: int) -> list[float]:
    """CPU seconds of each of ``samples`` calls of ``generate_train_batch`` (batch 1), after ``warmup`` calls."""
    np.random.seed(seed)  # nnU-Net's loader and batchgeneratorsv2 draw from numpy's global state
    import torch

    torch.manual_seed(seed)
    for _ in range(warmup):  # imports, and the Gaussian blur's one-off conv-vs-FFT benchmark per kernel size
        loader.generate_train_batch()
    out = []
    for _ in range(samples):
        t0 = time.process_time()
        loader.generate_train_batch()
        out.append(time.process_time() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="/tmp/nni_bench_loader", help="data folder (kept and reused)")
    p.add_argument("--cases", type=int, default=6)
    p.add_argument("--samples", type=int, default=16, help="timed samples per pipeline and patch")
    p.add_argument("--warmup", type=int, default=12, help="untimed samples first (fills one-off caches)")
    p.add_argument("--patches", nargs="+", default=["192,192,192", "32,64,64"])
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    pre = prepare(Path(args.work), args.cases)
    print(f"data: {args.cases} generated cases of 200–240³ in {pre} ({time.perf_counter() - t0:.0f} s)\n")
    rows = []
    with threadpool_limits(limits=1):
        for spec in args.patches:
            patch = [int(s) for s in spec.split(",")]
            for name, (loader, crop) in build_loaders(pre, patch).items():
                cpu = time_loader(loader, args.samples, seed=1, warmup=args.warmup)
                rows.append((spec.replace(",", "×"), name, crop, cpu))
                print(f"  {spec} {name}: median {np.median(cpu):.2f} CPU-s", flush=True)
    print(f"\n| patch | pipeline | crop before spatial aug. | CPU-s / sample median (mean, max) | cores / GPU at "
          f"the paper's demand | vs nnU-Net stock |")
    print("|---|---|---|---|---:|---:|")
    for patch, name, crop, cpu in rows:
        stock = next(np.mean(c) for pt, n, _, c in rows if pt == patch and n == "nnU-Net stock")
        crop_txt = "per sample" if name == "per-sample crop" else "×".join(str(c) for c in crop)
        print(f"| {patch} | {name} | {crop_txt} | {np.median(cpu):.2f} ({np.mean(cpu):.2f}, {np.max(cpu):.2f}) | "
              f"{np.mean(cpu) * SAMPLES_PER_GPU_S:.1f} | {np.mean(cpu) / stock:.2f}× |")
    new = next(np.mean(c) for pt, n, _, c in rows if pt == "192×192×192" and n == "per-sample crop") \
        if any(pt == "192×192×192" for pt, *_ in rows) else None
    if new is not None:
        ok = new <= TARGET_CPU_S and new * SAMPLES_PER_GPU_S <= TARGET_CORES
        print(f"\ntarget at 192³: ≤ {TARGET_CPU_S} CPU-s per sample and ≤ {TARGET_CORES:.0f} cores per GPU: "
              f"{'met' if ok else 'NOT met'} ({new:.2f} CPU-s, {new * SAMPLES_PER_GPU_S:.1f} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
