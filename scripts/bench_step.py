"""Time one training step (forward, deep-supervision loss, backward, AdamW) of the demo network on the CPU, in
the default and the channels-last memory layout, and channels-last under bfloat16 autocast (``training.cpu_bf16``,
where the CPU has native bf16), for a few batch / patch shapes.

    python scripts/bench_step.py [B,X,Y,Z ...] [--threads 2] [--reps 4]

Prints the median seconds per step of each and the speed-ups over the default layout; the network is the demo's
(ResEnc U-Net, 8 → 64 features, 5 stages, 8 input channels, deep supervision).
"""

from __future__ import annotations

import argparse
import time

import torch


def demo_network(channels_last: bool) -> torch.nn.Module:
    from dynamic_network_architectures.architectures.unet import ResidualEncoderUNet

    net = ResidualEncoderUNet(8, 5, [8, 16, 32, 64, 64], torch.nn.Conv3d, 3, [1, 2, 2, 2, 2], [1, 2, 2, 2, 2], 2,
                              [1, 1, 1, 1], conv_bias=True, norm_op=torch.nn.InstanceNorm3d,
                              norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=torch.nn.LeakyReLU,
                              nonlin_kwargs={"inplace": True}, deep_supervision=True)
    return net.to(memory_format=torch.channels_last_3d) if channels_last else net


def step_seconds(shape: tuple[int, ...], channels_last: bool, reps: int, bf16: bool = False) -> float:
    torch.manual_seed(0)
    net = demo_network(channels_last)
    opt = torch.optim.AdamW(net.parameters(), 1e-3)
    x = torch.randn(shape[0], 8, *shape[1:])
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    times = []
    for _ in range(reps + 1):  # the first step warms up oneDNN's kernels
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net(x)
        loss = sum(o.float().mean() for o in out)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return sorted(times[1:])[len(times[1:]) // 2]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("shapes", nargs="*", default=["4,32,64,64", "1,64,96,96"], help="B,X,Y,Z per shape")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=4)
    args = p.parse_args(argv)
    from nninteractive_train.training.trainer import cpu_has_bf16

    torch.set_num_threads(args.threads)
    bf16 = cpu_has_bf16()
    print(f"native bfloat16 on this CPU: {bf16}" + ("" if bf16 else " (the bf16 column is emulated: slow)"))
    print("| batch × patch | default layout s / step | channels-last | channels-last + bf16 | speed-ups |")
    print("|---|---:|---:|---:|---|")
    for spec in args.shapes:
        shape = tuple(int(v) for v in spec.split(","))
        plain, last = (step_seconds(shape, cl, args.reps) for cl in (False, True))
        half = step_seconds(shape, True, args.reps, bf16=True)
        print(f"| {shape[0]} × {'×'.join(map(str, shape[1:]))} | {plain:.2f} | {last:.2f} | {half:.2f} | "
              f"{plain / last:.2f}× / {plain / half:.2f}× |")


if __name__ == "__main__":
    main()
