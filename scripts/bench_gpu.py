"""GPU training throughput at the paper's size: one ResEnc-L step on a (3, 8, 192, 192, 192) batch, and real
training iterations with the data loader and the user-simulation pool, against the paper's ≈ 0.8 s / iteration
(8× A100, epoch of 250 iterations ≈ 200 s).

    python scripts/bench_gpu.py --work /tmp/gpu_bench [--out DIR] [--cases 12] [--shape 200 240] [-np 12]
                                [--step-iters 20] [--train-iters 60] [--compile] [--budget-s 480]

Stages, each timed on its own and skipped once ``--budget-s`` is spent (their results are written as they come,
to ``--out``/bench_gpu.json and bench_gpu.md):

1. data: a generated dataset of ``--cases`` paper-sized volumes, planned and preprocessed with the paper config.
2. step: ``nnInteractiveTrainer.train_step`` on random pinned batches (AMP, GradScaler, deep supervision, SGD):
   the GPU's compute floor, no data loading.
3. train: ``nnInteractive_train`` for two epochs of ``--train-iters`` iterations (the second is reported) in a subprocess (the real loader,
   augmentation workers, simulation pool and follow-up rounds); metrics.jsonl gives iteration time, data-wait
   share, pool latency and the submit copy.
4. compile (with ``--compile``): the step of stage 2 under torch.compile (first step = compile time).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAPER_ITER_S = 200 / 250  # docs/method.md: epoch ≈ 200 s of 250 iterations on 8× A100 40GB, 3 per GPU
DATASET_ID = 995


CONFIG = ROOT / "configs" / "nninteractive_v1.yaml"
OVERRIDES = ["model.global_batch_size=3"]  # one GPU's share of the paper's global batch 24


def _config(extra: list[str]):
    from nninteractive_train.config import load_config

    return load_config(CONFIG, [*OVERRIDES, *extra])


def stage_data(args) -> dict:
    from nninteractive_train.cli import plan_and_preprocess
    from nninteractive_train.data.synthetic import write_dataset

    t0 = time.perf_counter()
    lo, hi = args.shape
    write_dataset(os.environ["nnUNet_raw"], DATASET_ID, args.cases, shape_range=((lo, hi),) * 3,
                  spacings=((1.0, 1.0, 1.0),), num_processes=args.num_processes)
    t1 = time.perf_counter()
    plan_and_preprocess.main(["-d", str(DATASET_ID), "--config", str(CONFIG), "-np", str(args.num_processes),
                              *OVERRIDES])
    return {"cases": args.cases, "shape": [lo, hi], "generate_s": t1 - t0, "preprocess_s": time.perf_counter() - t1}


def stage_step(args, compile_: bool) -> dict:
    """Median seconds of train_step on random batches, peak GPU memory; the first step is reported apart."""
    import numpy as np
    import torch

    from nninteractive_train.distributed import resolve_env
    from nninteractive_train.training.launch import load_plans
    from nninteractive_train.training.trainer import build_trainer

    cfg = _config([f"training.compile={str(compile_).lower()}"])
    plans, djson, _ = load_plans(DATASET_ID, cfg)
    run_dir = Path(args.work) / f"step_{'compiled' if compile_ else 'eager'}"
    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")  # cpu: smoke test
    torch.manual_seed(0)
    trainer = build_trainer(cfg, plans, djson, run_dir, resolve_env({}), device)
    trainer.initialize()
    b, ps = trainer.batch_size, trainer.configuration_manager.patch_size
    cuda = device.type == "cuda"
    data = torch.randn(b, trainer.num_input_channels, *ps, pin_memory=cuda)
    target = torch.randint(0, 2, (b, 1, *ps), dtype=torch.uint8, pin_memory=cuda)
    batch = {"data": data, "target": target}
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.train_step(batch)
    first_s = time.perf_counter() - t0
    for _ in range(2):  # cudnn autotuning of the remaining shapes
        trainer.train_step(batch)
    times = []
    for _ in range(args.step_iters):
        t0 = time.perf_counter()
        trainer.train_step(batch)  # ends in loss.cpu(): synchronous
        times.append(time.perf_counter() - t0)
    out = {"batch": b, "patch": list(ps), "first_step_s": first_s, "step_s_median": float(np.median(times)),
           "step_s_p90": float(np.percentile(times, 90)),
           "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
           "params_M": sum(p.numel() for p in trainer.module.parameters()) / 1e6}
    del trainer
    if cuda:
        torch.cuda.empty_cache()
    return out


def stage_train(args) -> dict:
    """One epoch of the real training command; the figures come from its metrics.jsonl."""
    run = Path(args.work) / "train_run"
    # epoch 0 warms up (worker start, cudnn autotuning, follow-up ramp at 0.3); epoch 1 is read (ramp end 0.75)
    overrides = [*OVERRIDES, "training.num_epochs=2", "training.compile=false",
                 f"training.iterations_per_epoch={args.train_iters}", "training.val_iterations_per_epoch=2",
                 "training.interactive_val_every=0", f"training.num_data_workers={args.data_workers}",
                 f"interaction.num_sim_workers={args.sim_workers}"]
    cmd = [sys.executable, "-m", "nninteractive_train.cli.train", "-d", str(DATASET_ID), "--config", str(CONFIG),
           "--output", str(run), *overrides]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.train_timeout_s)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"training exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    first, m = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()[-2:]]
    keys = ("iteration_ms", "data_wait_ms", "data_wait_share", "followup_fraction", "mean_interactions",
            "sim_latency_ms", "sim_submit_ms", "sim_dropped")
    return {"iterations": args.train_iters, "wall_s": wall, "data_workers": args.data_workers,
            "sim_workers": args.sim_workers, **{k: m.get(k) for k in keys},
            "epoch0": {k: first.get(k) for k in keys}}


def report(results: dict) -> str:
    def f(v, spec=".3f"):
        return "n/a" if v is None else format(v, spec)

    lines = ["| stage | figure | value | paper / budget |", "|---|---|---:|---:|"]
    for name in ("step_eager", "step_compiled"):
        r = results.get(name)
        if isinstance(r, dict) and "step_s_median" in r:
            lines += [f"| {name} | s / step (median, p90) | {f(r['step_s_median'])} ({f(r['step_s_p90'])}) | "
                      f"{PAPER_ITER_S:.2f} |",
                      f"| {name} | first step s | {f(r['first_step_s'], '.1f')} | |",
                      f"| {name} | peak GPU memory GiB | {f(r['peak_mem_gib'], '.1f')} | 40 (A100) |"]
    r = results.get("train")
    if isinstance(r, dict) and "iteration_ms" in r:
        it = None if r["iteration_ms"] is None else r["iteration_ms"] / 1e3
        lines += [f"| train | s / iteration (median) | {f(it)} | {PAPER_ITER_S:.2f} |",
                  f"| train | data-wait share | {f(r['data_wait_share'])} | ≤ 0.05 |",
                  f"| train | data wait ms (median) | {f(r['data_wait_ms'], '.1f')} | |",
                  f"| train | follow-up fraction | {f(r['followup_fraction'])} | ≈ 0.75 (ramp end) |",
                  f"| train | pool latency ms (median) | {f(r['sim_latency_ms'], '.0f')} | |",
                  f"| train | submit copy ms (median) | {f(r['sim_submit_ms'], '.1f')} | ≤ 50 |",
                  f"| train | 5000×250 iterations, days | {f(None if it is None else it * 1.25e6 / 86400, '.1f')} "
                  f"| 11–12 |"]
    for k, v in results.items():
        if isinstance(v, dict) and "error" in v:
            lines.append(f"| {k} | error | {v['error'][:200]!r} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True, help="scratch folder (nnUNet_raw/preprocessed/results, runs)")
    p.add_argument("--out", default=None, help="where bench_gpu.json / .md go (default --work)")
    p.add_argument("--cases", type=int, default=12)
    p.add_argument("--shape", type=int, nargs=2, default=[200, 240], help="voxels per axis, low high")
    p.add_argument("-np", "--num-processes", type=int, default=12)
    p.add_argument("--step-iters", type=int, default=20)
    p.add_argument("--train-iters", type=int, default=40, help="iterations per epoch; two epochs run")
    p.add_argument("--data-workers", type=int, default=12)
    p.add_argument("--sim-workers", type=int, default=4)
    p.add_argument("--train-timeout-s", type=int, default=300)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--stages", nargs="+", default=["data", "step", "train", "compile"])
    p.add_argument("--budget-s", type=float, default=480, help="skip stages that start after this many seconds")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="extra config overrides for every stage (e.g. a small patch for a CPU smoke run)")
    args = p.parse_args(argv)
    OVERRIDES.extend(args.set)
    work = Path(args.work).resolve()
    out = Path(args.out or work)
    out.mkdir(parents=True, exist_ok=True)
    for var in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        os.environ.setdefault(var, str(work / var))
        Path(os.environ[var]).mkdir(parents=True, exist_ok=True)
    import torch

    results: dict = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU",
                     "torch": torch.__version__}
    stages = {"data": lambda: stage_data(args), "step": lambda: stage_step(args, False),
              "train": lambda: stage_train(args), "compile": lambda: stage_step(args, True)}
    names = {"step": "step_eager", "compile": "step_compiled"}
    t_start = time.perf_counter()
    for stage in args.stages:
        if stage == "compile" and not args.compile:
            continue
        key = names.get(stage, stage)
        if time.perf_counter() - t_start > args.budget_s:
            results[key] = {"skipped": "budget spent"}
            continue
        t0 = time.perf_counter()
        try:
            results[key] = {**stages[stage](), "stage_s": time.perf_counter() - t0}
        except Exception as e:  # keep the other stages' figures
            results[key] = {"error": f"{type(e).__name__}: {e}", "stage_s": time.perf_counter() - t0}
        print(f"[{time.perf_counter() - t_start:6.1f} s] {key}: {json.dumps(results[key])}", flush=True)
        (out / "bench_gpu.json").write_text(json.dumps(results, indent=2))
        (out / "bench_gpu.md").write_text(f"{results['device']}, torch {results['torch']}\n\n{report(results)}\n")
    print(f"\n{results['device']}, torch {results['torch']}\n\n{report(results)}")


if __name__ == "__main__":
    main()
