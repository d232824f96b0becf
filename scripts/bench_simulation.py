"""Benchmark of the prompt simulation on 192³ samples, against MONAI's deepgrow click transforms (the peer).

Run on one core:  OMP_NUM_THREADS=1 python scripts/bench_simulation.py [--quick]

Samples are ellipsoids and irregular blobs (random size up to filling the volume, orientation, border contact,
anisotropic spacing for half of them) with predictions that are shifted, scaled, dilated or eroded versions
plus spurious blobs and a missing chunk — the errors a network makes early in training; 10 % miss the object
entirely. For each kind we time the initial prompt (from the target) and the follow-up prompt (from the
error), and a whole follow-up step (`followup`: prompt + decay + prev_seg on 7 interaction channels). The peer
is one deepgrow click (FindDiscrepancyRegionsd → AddRandomGuidanced → AddGuidanceSignald) on the same samples.
Times are process CPU time. Peak extra memory is measured with tracemalloc in a separate pass (tracing slows
the code down), relative to the sample volume in float32; tracemalloc sees numpy's allocations, not the C++
scratch buffers inside cc3d / edt.

Targets (issue 3): median <= 50 ms and p95 <= 150 ms per kind; peak extra memory <= 3 x the volume.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

from nninteractive_train.simulation import (  # noqa: E402
    KINDS,
    SingleInteractionAgent,
    empty_interactions,
    followup,
    simulate_prompt,
)

SHAPE = (192, 192, 192)
MEDIAN_BUDGET_MS, P95_BUDGET_MS, MEMORY_BUDGET = 50.0, 150.0, 3.0


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return (q * np.sign(np.diag(r))).astype(np.float32)


def _implicit(shape, centre, radii, rotation, wobble, phases) -> np.ndarray:
    """float32 field, <= 1 inside a (wobbly) ellipsoid; evaluated slab by slab to bound memory."""
    out = np.empty(shape, np.float32)
    ys, zs = np.meshgrid(np.arange(shape[1], dtype=np.float32), np.arange(shape[2], dtype=np.float32),
                         indexing="ij")
    for x in range(shape[0]):
        p = np.stack([np.full_like(ys, x), ys, zs], -1) - centre
        q = p @ rotation.T / radii
        f = (q**2).sum(-1)
        if wobble:
            f += wobble * np.sin(q[..., 0] * 2.1 + phases[0]) * np.sin(q[..., 1] * 1.7 + phases[1]) * np.sin(
                q[..., 2] * 2.3 + phases[2])
        out[x] = f
    return out


def make_sample(rng: np.random.Generator):
    """(target bool, prediction bool, spacing) of SHAPE with a realistic mix of errors."""
    # Mostly organ- and lesion-sized objects; 15 % fill most of the patch (a liver in a 192³ crop).
    radii = rng.uniform(12, 60, 3).astype(np.float32) if rng.random() > 0.15 else rng.uniform(70, 110, 3).astype(
        np.float32)
    centre = rng.uniform(0.15, 0.85, 3).astype(np.float32) * np.asarray(SHAPE, np.float32)
    if rng.random() < 0.2:  # cut by the volume border
        axis = int(rng.integers(3))
        centre[axis] = rng.choice([0.1, 0.9]) * SHAPE[axis]
    rotation = _rotation(rng)
    wobble = float(rng.choice([0.0, 0.3]))
    phases = rng.uniform(0, 2 * np.pi, 3)
    field = _implicit(SHAPE, centre, radii, rotation, wobble, phases)
    target = field <= 1
    # Prediction: the same shape shifted, rescaled and grown or shrunk ...
    shift = rng.normal(0, 3.0, 3).astype(np.float32)
    scale = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    level = rng.uniform(0.8, 1.2)
    mode = rng.random()
    if mode < 0.1:  # a missed object: the whole target is one false-negative component
        level = -1.0
    elif mode < 0.2:  # a grossly over-segmented one
        level = rng.uniform(1.5, 2.0)
    prediction = _implicit(SHAPE, centre + shift, radii * scale, rotation, wobble, phases) <= level
    grid = np.ogrid[tuple(slice(0, s) for s in SHAPE)]
    # ... with a missing chunk and a few spurious blobs.
    surface = np.argwhere(target[::4, ::4, ::4]) * 4
    if len(surface):
        c = surface[rng.integers(len(surface))]
        r = rng.uniform(0.2, 0.5) * radii.min()
        prediction &= sum((g - v) ** 2 for g, v in zip(grid, c)) > r * r
    for _ in range(int(rng.integers(0, 4))):
        c = rng.uniform(0, 1, 3) * np.asarray(SHAPE)
        r = rng.uniform(2, 8)
        prediction |= sum((g - v) ** 2 for g, v in zip(grid, c)) <= r * r
    spacing = (1.0, 1.0, 1.0) if rng.random() < 0.5 else (0.8, 0.8, 2.5)
    return target, prediction, spacing


def _ms(f) -> tuple[float, object]:
    # Process CPU time, as in docs/nnunet.md: on a shared machine wall time mostly measures the neighbours.
    t = time.process_time()
    out = f()
    return 1000 * (time.process_time() - t), out


def _peak(f) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    f()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def peer_click(target: np.ndarray, prediction: np.ndarray, seed: int):
    """One deepgrow click: discrepancy, a random guidance point, the Gaussian guidance signal."""
    from monai.apps.deepgrow.transforms import AddGuidanceSignald, AddRandomGuidanced, FindDiscrepancyRegionsd

    data = {
        "image": np.zeros((1, *target.shape), np.float32),
        "label": target[None].astype(np.float32),
        "pred": prediction[None].astype(np.float32),
        "guidance": json.dumps([[[-1, -1, -1, -1]], [[-1, -1, -1, -1]]]),
        "probability": 1.0,
    }
    guide = AddRandomGuidanced()
    guide.set_random_state(seed)
    for t in (FindDiscrepancyRegionsd(), guide, AddGuidanceSignald()):
        data = t(data)
    return data


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="3 samples, 1 peer click: a smoke run")
    p.add_argument("--samples", type=int, default=None, help="number of 192³ samples (default 16; quick 3)")
    p.add_argument("--reps", type=int, default=3, help="prompts per sample, kind and phase (default 3)")
    p.add_argument("--peer", type=int, default=None, help="peer clicks (default 4; quick 1)")
    args = p.parse_args(argv)
    n_samples = args.samples or (3 if args.quick else 16)
    reps = 1 if args.quick else args.reps
    n_peer = args.peer if args.peer is not None else (1 if args.quick else 4)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass

    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    samples = [make_sample(rng) for _ in range(n_samples)]
    gen_s = time.perf_counter() - t0
    volume_bytes = int(np.prod(SHAPE)) * 4
    err_fraction = [np.count_nonzero(t ^ q) / t.size for t, q, _ in samples]

    for kind in KINDS:  # warm-up: lazy imports and caches are not part of a prompt's cost
        simulate_prompt(kind, samples[0][0], samples[0][1], rng=np.random.default_rng(0), spacing=samples[0][2])
    times: dict[tuple[str, str], list[float]] = {}
    peaks: dict[tuple[str, str], int] = {}
    fallbacks = {k: 0 for k in KINDS}
    interactions = empty_interactions(SHAPE)
    interactions += 1.0  # touch every page once, as a reused training buffer would be
    for i, (target, prediction, spacing) in enumerate(samples):
        for kind in KINDS:
            for r in range(reps):
                seed = [i, r, KINDS.index(kind)]
                ms, _ = _ms(lambda: simulate_prompt(kind, target, None, rng=np.random.default_rng(seed),
                                                    spacing=spacing))
                times.setdefault((kind, "initial"), []).append(ms)
                ms, pr = _ms(lambda: simulate_prompt(kind, target, prediction, rng=np.random.default_rng(seed),
                                                     spacing=spacing))
                times.setdefault((kind, "follow-up"), []).append(ms)
                fallbacks[kind] += int(pr is not None and pr.kind != kind)
                ms, _ = _ms(lambda: followup(interactions, target, prediction, SingleInteractionAgent(kinds=(kind,)),
                                             rng=np.random.default_rng(seed), spacing=spacing))
                times.setdefault((kind, "follow-up step"), []).append(ms)
    del interactions
    # Memory: one traced pass per kind and phase on every sample, keeping the worst.
    for i, (target, prediction, spacing) in enumerate(samples):
        for kind in KINDS:
            for phase, pred in (("initial", None), ("follow-up", prediction)):
                peak = _peak(lambda: simulate_prompt(kind, target, pred, rng=np.random.default_rng(i),
                                                     spacing=spacing))
                peaks[(kind, phase)] = max(peaks.get((kind, phase), 0), peak)

    peer_times, peer_peak = [], 0
    for i in range(n_peer):
        target, prediction, _ = samples[i % n_samples]
        ms, _ = _ms(lambda: peer_click(target, prediction, i))
        peer_times.append(ms)
    if n_peer:
        target, prediction, _ = samples[0]
        peer_peak = _peak(lambda: peer_click(target, prediction, 0))

    print(f"## Prompt simulation, {SHAPE[0]}³, one core, process CPU time "
          f"({n_samples} samples × {reps} prompts per cell; "
          f"error {100 * np.mean(err_fraction):.1f} % of voxels on average; sample generation {gen_s:.1f} s)\n")
    print("| prompt | phase | n | median ms | p95 ms | peak extra memory | × volume (f32) | within target |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    ok_all = True
    for kind in KINDS:
        for phase in ("initial", "follow-up", "follow-up step"):
            t = np.asarray(times[(kind, phase)])
            med, p95 = float(np.median(t)), float(np.percentile(t, 95))
            peak = peaks.get((kind, phase))
            mem = f"{peak / 2**20:.1f} MiB" if peak is not None else "–"
            ratio = f"{peak / volume_bytes:.2f}" if peak is not None else "–"
            within_memory = peak is None or peak <= MEMORY_BUDGET * volume_bytes
            ok = med <= MEDIAN_BUDGET_MS and p95 <= P95_BUDGET_MS and within_memory
            if phase != "follow-up step":
                ok_all &= ok
            verdict = ("yes" if ok else "**no**") if phase != "follow-up step" else "(info)"
            print(f"| {kind} | {phase} | {t.size} | {med:.1f} | {p95:.1f} | {mem} | {ratio} | {verdict} |")
    if peer_times:
        t = np.asarray(peer_times)
        print(f"| MONAI deepgrow click (peer) | follow-up | {t.size} | {np.median(t):.1f} | "
              f"{np.percentile(t, 95):.1f} | {peer_peak / 2**20:.1f} MiB | {peer_peak / volume_bytes:.2f} | – |")
    print(f"\nTargets: median ≤ {MEDIAN_BUDGET_MS:.0f} ms, p95 ≤ {P95_BUDGET_MS:.0f} ms per kind and phase, peak extra "
          f"memory ≤ {MEMORY_BUDGET:.0f} × volume in float32 ({MEMORY_BUDGET * volume_bytes / 2**20:.0f} MiB). "
          f"'follow-up step' = `followup()` incl. decay of 6 channels and prev_seg (informational). "
          f"Fallbacks to a point: {fallbacks}. All within target: {'yes' if ok_all else 'NO'}.")


if __name__ == "__main__":
    main()
