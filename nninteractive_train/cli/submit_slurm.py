"""nnInteractive_submit_slurm: write a documented sbatch script into the run folder and submit it.

    nnInteractive_submit_slurm -d 1 --config run.yaml --output /runs/exp1 --nodes 2 --gpus-per-node 8 \
        --time 48:00:00 --partition gpu training.num_epochs=5000

The script (RUN_DIR/submit.sbatch) starts one training process per GPU, either directly with ``srun`` or through
one ``torchrun`` per node, asks SLURM for a signal some minutes before the time limit, lets the trainer save a
checkpoint, and requeues the job, which then resumes from that checkpoint by itself (``--resume-if-exists``).
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
from string import Template

from nninteractive_train.cli.common import Parser, add_dataset_argument, run_command

SCRIPT_NAME = "submit.sbatch"
ENV_PASSED = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results", "nnUNet_n_proc_DA")
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")
_WORD = re.compile(r"^[\w.,:@+=/\-]+$")
_OVERRIDE = re.compile(r"^[A-Za-z_][\w.\-]*=")


class _Script(Template):
    delimiter = "@@"  # bash uses $ everywhere; @@ never appears in the script text


SCRIPT = _Script("""\
#!/bin/bash
# nnInteractive training job, written by nnInteractive_submit_slurm on @@{date}.
# Run folder: @@{run_dir}
# Re-submit by hand with:  sbatch @@{script}
#
# Layout: @@{nodes} node(s) x @@{gpus} GPU(s) = @@{world} training processes (@@{launcher_doc}).
# The launcher in nninteractive_train reads SLURM_PROCID / SLURM_LOCALID / SLURM_NTASKS / SLURM_JOB_NODELIST
# (srun) or RANK / LOCAL_RANK / WORLD_SIZE (torchrun), plus MASTER_ADDR / MASTER_PORT exported below.
#
# Preemption and time limits: SLURM sends USR1 to this script @@{signal_s} s before the time limit
# (--signal=@@{signal_opt}). The trap below forwards it to the training step (srun passes it to every process
# of the step; the trainer saves checkpoint_latest.pth and exits, helper processes ignore it), waits for the
# step to end (at most @@{grace_s} s), then requeues the job with `scontrol requeue`. The requeued job runs this
# script again, and `--resume-if-exists` continues from the checkpoint. A preemption (SIGTERM) is forwarded
# the same way; SLURM requeues preempted jobs itself because of --requeue.
#
# Job name shown by squeue:
#SBATCH --job-name=@@{job_name}
# Nodes, and how many tasks srun starts on each (one per GPU, or one torchrun per node):
#SBATCH --nodes=@@{nodes}
#SBATCH --ntasks-per-node=@@{tasks_per_node}
# GPUs on every node:
#SBATCH @@{gpu_request}
# CPUs per task (data-augmentation workers + user-simulation pool; @@{cpus_doc}):
#SBATCH --cpus-per-task=@@{cpus_per_task}
# Wall-clock limit:
#SBATCH --time=@@{time}
# Pre-timeout signal to this batch script (B:), so the trainer can checkpoint before the limit:
#SBATCH --signal=@@{signal_opt}
# Allow requeueing (by the trap below and after preemption):
#SBATCH --requeue
# Append to the logs across requeues instead of truncating them:
#SBATCH --open-mode=append
# Logs (%j = job id, the same after a requeue):
#SBATCH --output=@@{run_dir}/slurm-%j.out
#SBATCH --error=@@{run_dir}/slurm-%j.err
@@{optional_sbatch}
set -uo pipefail

# nnU-Net folders as they were when the job was submitted (requeued jobs must find the same data):
@@{env_exports}
export PYTHONUNBUFFERED=1

# Rendezvous: the first host of the allocation; the port follows from the job id (as
# nninteractive_train.distributed.env.slurm_port), so two jobs on one node do not collide.
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
export MASTER_ADDR
export MASTER_PORT=$((20000 + SLURM_JOB_ID % 20000))
# srun (SLURM >= 22.05) no longer inherits --cpus-per-task from the allocation:
export SRUN_CPUS_PER_TASK="${SLURM_CPUS_PER_TASK:-@@{cpus_per_task}}"

# The training command of every process; trailing key=value arguments are config overrides.
TRAIN_ARGS=( @@{train_args} )
# Every process of the step starts with USR1/USR2 ignored (torchrun, nnU-Net's and the pool's workers must
# survive the pre-timeout signal); the trainer installs its own handler, which saves the checkpoint.
IGNORE_USR=( bash -c 'trap "" USR1 USR2; exec "$@"' nnit-task )
@@{launch}

SRUN_PID=
REQUEUE=0
DEADLINE=
on_usr1() {
    echo "[$(date)] pre-timeout signal: asking the trainer to checkpoint, then requeueing job $SLURM_JOB_ID"
    REQUEUE=1
    DEADLINE=$((SECONDS + @@{grace_s}))
    kill -USR1 "$SRUN_PID" 2>/dev/null
}
on_term() {
    echo "[$(date)] SIGTERM (cancelled or preempted): forwarding to the training step"
    kill -TERM "$SRUN_PID" 2>/dev/null
}
trap on_usr1 USR1
trap on_term TERM

echo "[$(date)] job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}) on $SLURM_JOB_NODELIST," \\
     "rendezvous $MASTER_ADDR:$MASTER_PORT"
echo "launch: ${LAUNCH[*]}"
"${LAUNCH[@]}" &
SRUN_PID=$!
# Poll until the step ends (a bare `wait` cannot time out). After the pre-timeout signal, a step still running
# @@{grace_s} s later is stopped, so that the requeue below happens before the time limit kills this script.
while kill -0 "$SRUN_PID" 2>/dev/null; do
    if [ -n "$DEADLINE" ] && [ "$SECONDS" -ge "$DEADLINE" ]; then
        echo "[$(date)] the step did not end within @@{grace_s} s of the signal: stopping it"
        kill -TERM "$SRUN_PID" 2>/dev/null
        DEADLINE=
    fi
    sleep 1 & wait $!
done
wait "$SRUN_PID"
STATUS=$?
echo "[$(date)] training step ended with status $STATUS"
if [ "$REQUEUE" = 1 ]; then
    scontrol requeue "$SLURM_JOB_ID"
fi
exit "$STATUS"
""")


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


def render(args: argparse.Namespace) -> str:
    """The sbatch script for parsed arguments (see `build_parser`)."""
    run_dir = Path(args.output).expanduser().absolute()
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
    bad = [o for o in args.overrides if not _OVERRIDE.match(o)]
    if bad:
        raise ValueError(f"overrides must be section.key=value, got {bad}")

    train_args = ["-d", str(args.dataset_id)]
    if args.config:
        config = Path(args.config).expanduser().absolute()
        if not config.is_file():
            raise ValueError(f"--config {config} does not exist")
        train_args += ["--config", str(config)]
    train_args += ["--output", str(run_dir), "--resume-if-exists", *args.overrides]

    g, n = args.gpus_per_node, args.nodes
    if args.launcher == "srun":
        tasks, cpus = g, args.cpus_per_task
        cmd = _tool("nnInteractive_train", "nninteractive_train.cli.train")
        launch = (f"# One process per GPU; each sees the node's GPUs and uses cuda:SLURM_LOCALID.\n"
                  f"LAUNCH=( srun --kill-on-bad-exit=1 --nodes={n} --ntasks-per-node={g} \"${{IGNORE_USR[@]}}\" "
                  f"{shlex.join(cmd)} \"${{TRAIN_ARGS[@]}}\" )")
        launcher_doc, cpus_doc = "srun, one process per GPU", "one task = one GPU process"
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
    gpu_request = f"--gpus-per-node={g}" if args.gpu_request == "gpus-per-node" else f"--gres=gpu:{g}"
    return SCRIPT.substitute(
        date=datetime.datetime.now().isoformat(timespec="seconds"), run_dir=run_dir,
        script=run_dir / SCRIPT_NAME, nodes=n, gpus=g, world=n * g, launcher_doc=launcher_doc,
        signal_s=args.signal_seconds, signal_opt=f"B:USR1@{args.signal_seconds}", grace_s=_grace(args.signal_seconds),
        job_name=args.job_name or f"nnit_{args.dataset_id}_{run_dir.name}"[:64], tasks_per_node=tasks,
        gpu_request=gpu_request, cpus_doc=cpus_doc, cpus_per_task=cpus, time=args.time,
        optional_sbatch="\n".join(optional),
        env_exports="\n".join(exports) or "# (none of nnUNet_raw / _preprocessed / _results was set at submit time)",
        train_args=shlex.join(train_args), launch=launch)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="nnInteractive_submit_slurm", description=__doc__,
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
    p.add_argument("--dry-run", action="store_true", help="print the script; write and submit nothing")
    p.add_argument("overrides", nargs="*", help="config overrides passed to nnInteractive_train, section.key=value")
    return p


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    return run_command(parser, lambda args: _run(parser, args), argv)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.output is None:  # the folder nnInteractive_train would choose (README, "Where runs go")
        from nninteractive_train.cli.train import run_folder

        args.output = str(run_folder(argparse.Namespace(output=None, dataset_id=args.dataset_id, config=args.config,
                                                        overrides=args.overrides)))
    try:
        script = render(args)
    except ValueError as e:
        parser.error(str(e))
    if args.dry_run:
        sys.stdout.write(script)
        return 0
    run_dir = Path(args.output).expanduser().absolute()
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / SCRIPT_NAME
    _write(path, script)
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        print(f"nnInteractive_submit_slurm: error: `sbatch` was not found on PATH; the script is written to {path} "
              f"(submit it on a SLURM login node with `sbatch {path}`, or use --dry-run)", file=sys.stderr)
        return 2
    done = subprocess.run([sbatch, "--parsable", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"nnInteractive_submit_slurm: error: sbatch failed ({done.returncode}): {done.stderr.strip()}",
              file=sys.stderr)
        return done.returncode
    job = done.stdout.strip().split(";")[0]
    print(f"submitted job {job}: script {path}, logs {run_dir}/slurm-{job}.out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
