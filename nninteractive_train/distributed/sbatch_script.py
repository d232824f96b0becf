"""The sbatch script template of nnInteractive_submit_slurm (``cli/submit_slurm.py`` fills it in).

Every ``@@{name}`` is substituted; bash's own ``$`` stays as it is. The script documents itself: what it asks
SLURM for, how the trainer checkpoints on the pre-timeout signal, and how the job requeues and resumes.
"""

from __future__ import annotations

from string import Template


class _Script(Template):
    """string.Template with ``@@`` as the delimiter."""

    delimiter = "@@"  # bash uses $ everywhere; @@ never appears in the script text


SCRIPT = _Script("""\
#!/bin/bash
# nnInteractive training job, written by nnInteractive_submit_slurm on @@{date}.
# Run folder: @@{run_dir}
# Re-submit by hand with:  sbatch @@{script}
#
# Layout: @@{nodes} node(s) x @@{gpus} @@{unit} = @@{world} training processes (@@{launcher_doc}).
# Config: @@{config} (validated and written at submission; every start and every requeue reads it, so edit
# that file, not the YAML you submitted, to change a queued or requeued run).
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
@@{gpu_request}
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

# The training command of every process (the run folder's config; overrides are already in it).
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
