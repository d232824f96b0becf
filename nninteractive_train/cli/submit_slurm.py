"""nnInteractive_submit_slurm: write a documented sbatch script into the run folder and submit it.

    nnInteractive_submit_slurm -d 1 --config run.yaml --output /runs/exp1 --nodes 2 --gpus-per-node 8 \
        --time 48:00:00 --partition gpu training.num_epochs=5000

Before anything is queued, everything that would otherwise fail after the queue wait is checked
(``distributed.preflight``): the config's keys and types, the global batch over nodes x processes, nnU-Net's
folders, the dataset, plans, preprocessed data and patch geometry, the SuperVoxels the config draws, and the run
folder. The resolved config is then written to RUN_DIR/config.yaml (atomically) and the job reads that file on
its first start and on every requeue. The script (RUN_DIR/submit.sbatch) starts one training process per GPU,
either directly with ``srun`` or through one ``torchrun`` per node, asks SLURM for a signal some minutes before
the time limit, lets the trainer save a checkpoint, and requeues the job, which then resumes from that checkpoint
by itself (``--resume-if-exists``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from nninteractive_train.cli.common import Parser, add_dataset_argument, run_command
from nninteractive_train.distributed.sbatch_script import SCRIPT

SCRIPT_NAME = "submit.sbatch"
CONFIG_NAME = "config.yaml"
ENV_PASSED = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_n_proc_DA")
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")
_WORD = re.compile(r"^[\w.,:@+=/\-]+$")


def parse_time(text: str) -> int:
    """Seconds of a SLURM time limit: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS."""
    m = _TIME.match(text.strip())
    if not m:
        raise ValueError(f"--time {text!r} is not a SLURM time (HH:MM:SS or D-HH:MM:SS)")
    d, a, b, c = (int(g) if g else None for g in m.groups())
    if d is not None:  # D-HH[:MM[:SS]]
        return d * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    if c is not None:
        return a * 3600 + b * 60 + c
    if b is not None:
        return a * 60 + b
    return a * 60


def _grace(signal_s: int) -> int:
    """Seconds the batch script waits for the checkpointing step before stopping it and requeueing anyway."""
    return signal_s - 60 if signal_s > 120 else max(signal_s // 2, 1)


def _tool(name: str, module: str) -> list[str]:
    """The console script `name` of this environment, else ``python -m module`` with this interpreter."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    return [found] if found else [sys.executable, "-m", module]


def run_dir_of(args: argparse.Namespace) -> Path:
    """The absolute run folder of ``--output``."""
    return Path(args.output).expanduser().absolute()


def check_args(args: argparse.Namespace) -> None:
    """The SLURM options alone (no config, no data): counts, time, and text that #SBATCH lines must hold.

    Raises:
        ValueError: the first bad option, named.
    """
    run_dir = run_dir_of(args)
    if re.search(r"[\s%\"'\\]", str(run_dir)):
        raise ValueError(f"--output {run_dir} contains whitespace, quotes or %, which #SBATCH --output cannot hold")
    for name in ("nodes", "gpus_per_node", "cpus_per_task", "signal_seconds"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    limit = parse_time(args.time)
    if args.signal_seconds >= limit:
        raise ValueError(f"--signal-seconds {args.signal_seconds} must be shorter than --time {args.time}")
    for name in ("partition", "account", "mem", "job_name"):
        value = getattr(args, name)
        if value is not None and not _WORD.match(value):
            raise ValueError(f"--{name.replace('_', '-')} {value!r} has characters an #SBATCH line cannot hold")
    for extra in args.sbatch_arg:
        if not extra.startswith("--") or "\n" in extra:
            raise ValueError(f"--sbatch-arg {extra!r} must be one option starting with -- (e.g. --qos=high)")


def render(args: argparse.Namespace) -> str:
    """The sbatch script for parsed arguments (see `build_parser`); its processes read RUN_DIR/config.yaml.

    Raises:
        ValueError: a bad SLURM option (`check_args`).
    """
    check_args(args)
    run_dir = run_dir_of(args)
    train_args = ["-d", str(args.dataset_id), "--config", str(run_dir / CONFIG_NAME), "--output", str(run_dir),
                  "--resume-if-exists", *(["--cpu"] if args.cpu else [])]

    g, n = args.gpus_per_node, args.nodes
    if args.launcher == "srun":
        tasks, cpus = g, args.cpus_per_task
        cmd = _tool("nnInteractive_train", "nninteractive_train.cli.train")
        what = "One CPU process per task (gloo)" if args.cpu else \
            "One process per GPU; each sees the node's GPUs and uses cuda:SLURM_LOCALID"
        launch = (f"# {what}.\n"
                  f"LAUNCH=( srun --kill-on-bad-exit=1 --nodes={n} --ntasks-per-node={g} \"${{IGNORE_USR[@]}}\" "
                  f"{shlex.join(cmd)} \"${{TRAIN_ARGS[@]}}\" )")
        launcher_doc = "srun, one process per " + ("task" if args.cpu else "GPU")
        cpus_doc = "one task = one training process"
    else:
        tasks, cpus = 1, args.cpus_per_task * g
        cmd = _tool("torchrun", "torch.distributed.run")
        launch = (f"# One torchrun per node; it starts {g} processes and they meet at the c10d rendezvous.\n"
                  f"LAUNCH=( srun --kill-on-bad-exit=1 --nodes={n} --ntasks-per-node=1 \"${{IGNORE_USR[@]}}\"\n"
                  f"    {shlex.join(cmd)} --nnodes=\"$SLURM_NNODES\" --nproc-per-node={g}\n"
                  f"    --rdzv-backend=c10d --rdzv-endpoint=\"$MASTER_ADDR:$MASTER_PORT\" --rdzv-id=\"$SLURM_JOB_ID\"\n"
                  f"    --max-restarts=0 -m nninteractive_train.cli.train \"${{TRAIN_ARGS[@]}}\" )")
        launcher_doc = f"srun starts one torchrun per node, each with {g} processes"
        cpus_doc = f"one task = one node's torchrun: {args.cpus_per_task} per GPU x {g}"

    optional = [f"#SBATCH --partition={args.partition}" if args.partition else "",
                f"#SBATCH --account={args.account}" if args.account else "",
                f"#SBATCH --mem={args.mem}" if args.mem else "",
                *(f"#SBATCH {shlex.quote(e)}" for e in args.sbatch_arg)]
    optional = [line for line in optional if line]
    if optional:
        optional.insert(0, "# Site options (partition, account, memory, extra --sbatch-arg):")
    exports = [f"export {k}={shlex.quote(os.environ[k])}" for k in ENV_PASSED if os.environ.get(k)]
    if args.cpu:
        gpu_request = "# CPU training (--cpu, gloo): no GPUs requested"
    else:
        gpu_request = "# GPUs on every node:\n#SBATCH " + (
            f"--gpus-per-node={g}" if args.gpu_request == "gpus-per-node" else f"--gres=gpu:{g}")
    return SCRIPT.substitute(
        date=datetime.datetime.now().isoformat(timespec="seconds"), run_dir=run_dir,
        script=run_dir / SCRIPT_NAME, nodes=n, gpus=g, world=n * g, launcher_doc=launcher_doc,
        unit="CPU process(es)" if args.cpu else "GPU(s)", config=run_dir / CONFIG_NAME,
        signal_s=args.signal_seconds, signal_opt=f"B:USR1@{args.signal_seconds}", grace_s=_grace(args.signal_seconds),
        job_name=args.job_name or f"nnit_{args.dataset_id}_{run_dir.name}"[:64], tasks_per_node=tasks,
        gpu_request=gpu_request, cpus_doc=cpus_doc, cpus_per_task=cpus, time=args.time,
        optional_sbatch="\n".join(optional),
        env_exports="\n".join(exports) or "# (none of nnUNet_raw / _preprocessed / _results was set at submit time)",
        train_args=shlex.join(train_args), launch=launch)


class _Parser(Parser):
    """Overrides may stand between options (``… model.global_batch_size=16 --nodes 2 …``)."""

    def parse_args(self, args=None, namespace=None):
        return self.parse_intermixed_args(args, namespace)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="nnInteractive_submit_slurm", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataset_argument(p, "nnU-Net dataset in nnUNet_preprocessed")
    p.add_argument("--config", default=None, help="run config YAML (default: the trainer's defaults)")
    p.add_argument("--output", default=None,
                   help="run folder: script, logs, checkpoints (created); default: nnU-Net's layout, as "
                        "nnInteractive_train")
    p.add_argument("--nodes", type=int, default=1, help="nodes (default 1)")
    p.add_argument("--gpus-per-node", type=int, default=8, help="GPUs, i.e. training processes, per node (8)")
    p.add_argument("--cpus-per-task", type=int, default=8,
                   help="CPUs per training process (data workers + simulation pool; default 8); with "
                        "--launcher torchrun the task is the node's torchrun and gets this × GPUs")
    p.add_argument("--time", default="24:00:00", help="wall-clock limit, HH:MM:SS or D-HH:MM:SS (24:00:00)")
    p.add_argument("--signal-seconds", type=int, default=300,
                   help="send the checkpoint signal this long before the time limit (300)")
    p.add_argument("--partition", default=None)
    p.add_argument("--account", default=None)
    p.add_argument("--mem", default=None, help="memory per node, e.g. 0 (all) or 480G (default: site default)")
    p.add_argument("--job-name", default=None, help="default nnit_<dataset>_<run folder name>")
    p.add_argument("--gpu-request", choices=("gpus-per-node", "gres"), default="gpus-per-node",
                   help="ask for GPUs with --gpus-per-node (default) or --gres=gpu:N (older clusters)")
    p.add_argument("--sbatch-arg", action="append", default=[], metavar="--OPT=VALUE",
                   help="extra #SBATCH option, repeatable (e.g. --sbatch-arg=--qos=high)")
    p.add_argument("--launcher", choices=("srun", "torchrun"), default="srun",
                   help="srun: one process per GPU (default); torchrun: one torchrun per node")
    p.add_argument("--cpu", action="store_true",
                   help="train on CPUs with gloo (no GPU request; --gpus-per-node counts processes per node)")
    p.add_argument("--dry-run", action="store_true",
                   help="run every check and print the script; write and submit nothing")
    p.add_argument("overrides", nargs="*",
                   help="config overrides, section.key=value; resolved into RUN_DIR/config.yaml at submission")
    return p


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)


def prepare(args: argparse.Namespace):
    """Validate the options, the config and the data (`distributed.preflight`); returns (resolved config, the
    check summary lines, the script text). Nothing is written.

    Raises:
        ValueError: a bad SLURM option (`check_args`).
        UserError: ConfigError or SetupError from the checks, one line naming the file.
    """
    from nninteractive_train.config import load_config
    from nninteractive_train.distributed.preflight import preflight

    script = render(args)
    cfg = load_config(args.config, args.overrides)
    source = str(Path(args.config).expanduser().absolute()) if args.config else None
    summary = preflight(args.dataset_id, cfg, nodes=args.nodes, procs_per_node=args.gpus_per_node,
                        run_dir=run_dir_of(args), source=source)
    return cfg, summary, script


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    return run_command(parser, lambda args: _run(parser, args), argv)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from nninteractive_train.config import save_config
    from nninteractive_train.errors import SetupError, UserError

    if args.output is None:  # the folder nnInteractive_train would choose (README, "Where runs go")
        from nninteractive_train.cli.train import run_folder

        args.output = str(run_folder(argparse.Namespace(output=None, dataset_id=args.dataset_id, config=args.config,
                                                        overrides=args.overrides)))
    try:
        cfg, summary, script = prepare(args)
    except ValueError as e:  # a bad option (ConfigError and SetupError are UserErrors: run_command prints them)
        parser.error(str(e))
    if args.dry_run:
        sys.stdout.write(script)
        print("\n".join(["checked:", *summary]), file=sys.stderr)
        return 0
    run_dir = run_dir_of(args)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run_dir / CONFIG_NAME)  # atomic; the job reads it on every start
    path = run_dir / SCRIPT_NAME
    _write(path, script)
    print("\n".join(["checked:", *summary]))
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise SetupError("`sbatch` was not found on PATH; the script is written", path,
                         f"submit it on a SLURM login node with `sbatch {path}`, or use --dry-run")
    done = subprocess.run([sbatch, "--parsable", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        why = "; ".join(line.strip() for line in done.stderr.splitlines() if line.strip())
        raise UserError(f"sbatch refused the job (exit status {done.returncode}): {why}", path)
    job = done.stdout.strip().split(";")[0]
    print(f"submitted job {job}: script {path}, config {run_dir / CONFIG_NAME}, logs {run_dir}/slurm-{job}.out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
