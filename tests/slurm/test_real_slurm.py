"""The job nnInteractive_submit_slurm writes, on a real SLURM (tests/slurm/conftest.py): 2 gloo tasks train to
the end; the pre-timeout signal checkpoints, the job requeues itself and the requeued job resumes and finishes;
scancel leaves no process and no shared-memory segment behind."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import time
from pathlib import Path

import pytest
import torch

from helpers import DEBUG_CFG, prepared_dataset
from nninteractive_train.cli.submit_slurm import main as submit_main
from nninteractive_train.pool.slots import SHM_PREFIX
from nninteractive_train.training.loop import read_metrics

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
DS = 990
# 2 tasks x 1 sample, 2 iterations per epoch of the debug network: 1-4 s per epoch on 2 shared cores
EPOCHS = 6
TINY = [f"training.num_epochs={EPOCHS}", "training.iterations_per_epoch=2", "training.save_every=1000"]
SIGNAL_S = 120
JOB_TIMEOUT = 240.0
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE")


def submit(run_dir: Path, *extra: str) -> str:
    """Submit the tiny config as 1 node x 2 CPU tasks with nnInteractive_submit_slurm; returns the job id."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = submit_main(["-d", str(DS), "--config", str(DEBUG_CFG), "--output", str(run_dir), "--cpu",
                            "--nodes", "1", "--gpus-per-node", "2", "--cpus-per-task", "1", "--time", "10",
                            "--signal-seconds", str(SIGNAL_S), *TINY, *extra])
    assert code == 0, err.getvalue()
    return re.search(r"submitted job (\d+)", out.getvalue()).group(1)


def ended(info: dict) -> bool:
    return info.get("JobState") in ENDED


def job_output(run_dir: Path, job: str) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(run_dir.glob(f"slurm-{job}.*")))


def epochs(run_dir: Path) -> list[int]:
    return [m["epoch"] for m in read_metrics(run_dir)]


def final_weights(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoint_final.pth", map_location="cpu", weights_only=False)["network_weights"]


def seconds_of(run_time: str) -> int:
    """Seconds of scontrol's RunTime ([D-]HH:MM:SS)."""
    days, _, hms = run_time.rpartition("-")
    h, m, sec = (int(x) for x in hms.split(":"))
    return int(days or 0) * 86400 + h * 3600 + m * 60 + sec


def wait_for(predicate, timeout: float, what: str, describe=None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout:.0f} s; {describe() if describe else ''}")
        time.sleep(0.3)


@contextlib.contextmanager
def cluster_env(cluster):
    """The cluster's SLURM_CONF & co. in the environment for a module-scoped fixture (``monkeypatch`` is
    function-scoped: the conftest's ``slurm`` fixture does the same per test)."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in cluster.env.items():
            mp.setenv(k, v)
        yield


@pytest.fixture(scope="module")
def full_run(slurm_cluster, tmp_path_factory):
    """One uninterrupted job of the tiny config: (run folder, job id, final job info, wall seconds)."""
    prepared_dataset(DS)
    run_dir = tmp_path_factory.mktemp("full") / "run"
    with cluster_env(slurm_cluster):
        t0 = time.monotonic()
        job = submit(run_dir)
        info = slurm_cluster.wait_job(job, ended, JOB_TIMEOUT, "the end of the job")
    return run_dir, job, info, time.monotonic() - t0


def test_two_gloo_tasks_train_to_the_end(full_run):
    run_dir, job, info, seconds = full_run
    out = job_output(run_dir, job)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", f"{info}\n{out[-3000:]}"
    assert epochs(run_dir) == list(range(EPOCHS))
    assert (run_dir / "checkpoint_final.pth").is_file()
    assert "--config " + str(run_dir / "config.yaml") in out  # the launch line: the run folder's config
    for rank in (0, 1):  # nnU-Net's own line, one per process of the step
        assert f"I am local rank {rank}. 0 GPUs are available. The world size is 2." in out, out[-3000:]
    print(f"uninterrupted job {job}: {seconds:.1f} s from submission to COMPLETED")


@pytest.fixture(scope="module")
def requeued_run(slurm_cluster, tmp_path_factory):
    """The tiny config again. After its first epoch the trainers are paused (SIGSTOP: a long epoch, whatever the
    machine's speed) and the time limit is cut so that SLURM's time-limit check (every 30 s) sends the pre-timeout
    signal (USR1 to the batch script, --signal-seconds before the limit); once the script has it, the trainers
    continue: they checkpoint, the script requeues the job, and the requeued job (the 10-minute limit back; it
    starts again after the cluster's cred_expire, 15 s) resumes and finishes.
    Returns (run folder, job id, epoch at the checkpoint, final job info, wall seconds)."""
    prepared_dataset(DS)
    run_dir = tmp_path_factory.mktemp("requeue") / "run"
    with cluster_env(slurm_cluster):
        t0 = time.monotonic()
        job = submit(run_dir)
        wait_for(lambda: len(epochs(run_dir)) >= 1, JOB_TIMEOUT, "the first epoch", lambda: slurm_cluster.job(job))
        trainers = [p for p, cmd in job_processes(job).items() if "nnInteractive_train -d" in cmd
                    and not cmd.startswith(("srun", "bash", "/bin/bash"))]
        assert len(trainers) == 2, job_processes(job)
        for pid in trainers:
            os.kill(pid, signal.SIGSTOP)
        try:
            # the shortest whole-minute limit that leaves 60-120 s (<= SIGNAL_S: the signal is due at once)
            elapsed = seconds_of(slurm_cluster.job(job)["RunTime"])
            slurm_cluster.run("scontrol", "update", f"JobId={job}", f"TimeLimit={(elapsed + 60) // 60 + 1}")
            wait_for(lambda: "pre-timeout signal" in job_output(run_dir, job), 60, "SLURM's pre-timeout signal",
                     lambda: slurm_cluster.job(job))
        finally:
            for pid in trainers:
                os.kill(pid, signal.SIGCONT)
        info = slurm_cluster.wait_job(job, lambda i: i.get("Restarts") == "1" and i.get("JobState") == "PENDING"
                                      or ended(i), 120, "the requeue")
        assert not ended(info), f"{info}\n{job_output(run_dir, job)[-3000:]}"
        stopped_at = torch.load(run_dir / "checkpoint_latest.pth", map_location="cpu",
                                weights_only=False)["current_epoch"]
        slurm_cluster.run("scontrol", "update", f"JobId={job}", "TimeLimit=10")
        info = slurm_cluster.wait_job(job, ended, JOB_TIMEOUT, "the end of the requeued job")
    return run_dir, job, stopped_at, info, time.monotonic() - t0


def test_pre_timeout_signal_checkpoints_requeues_and_resumes(requeued_run):
    run_dir, job, stopped_at, info, seconds = requeued_run
    out = job_output(run_dir, job)
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0" and info["Restarts"] == "1", \
        f"{info}\n{out[-3000:]}"
    assert 1 <= stopped_at < EPOCHS, stopped_at
    assert "pre-timeout signal: asking the trainer to checkpoint, then requeueing" in out
    assert "(restart 0)" in out and "(restart 1)" in out
    assert f"signal {signal.SIGUSR1.value}: saved checkpoint_latest.pth at epoch {stopped_at}" in out, out[-3000:]
    logs = "".join(p.read_text() for p in sorted(run_dir.glob("training_log_*.txt")))
    assert f"resumed from {run_dir / 'checkpoint_latest.pth'} at epoch {stopped_at}" in logs
    # every epoch exactly once: the requeued job trained the rest, from the checkpoint, to the end
    assert epochs(run_dir) == list(range(EPOCHS))
    assert (run_dir / "checkpoint_final.pth").is_file() and not (run_dir / "checkpoint_latest.pth").exists()
    print(f"requeued job {job}: stopped at epoch {stopped_at}, {seconds:.1f} s from submission to COMPLETED")


def test_requeued_weights_equal_uninterrupted(requeued_run, full_run):
    """The requeued run ends with the uninterrupted run's weights, bit for bit (training/state.py)."""
    a, b = final_weights(requeued_run[0]), final_weights(full_run[0])
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{len(differ)} of {len(a)} tensors differ, e.g. {differ[:3]}"


def job_processes(job: str) -> dict[int, str]:
    """pid → command line of every process whose environment carries SLURM_JOB_ID=job (the batch script, srun,
    the trainers and their helper processes)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"SLURM_JOB_ID={job}".encode() in env:
            found[int(proc.name)] = cmd
    return found


def pool_segments(pids=None) -> set[str]:
    """Our simulation pool's shared-memory segments in /dev/shm (``nnit<creator pid>_…``), of ``pids`` if given."""
    names = {p.name for p in Path("/dev/shm").glob(f"{SHM_PREFIX}*")}
    if pids is None:
        return names
    return {n for n in names if re.match(rf"{SHM_PREFIX}(\d+)_", n) and int(n[len(SHM_PREFIX):].split("_")[0]) in pids}


def test_scancel_leaves_no_process_and_no_segment(slurm, tmp_path):
    """A cancelled job (SIGTERM to the batch script and every step process, SIGKILL 20 s later) leaves none of
    its processes and none of its pool's /dev/shm segments."""
    prepared_dataset(DS)
    run_dir = tmp_path / "run"
    job = submit(run_dir, "interaction.num_sim_workers=1", "training.num_epochs=200")
    wait_for(lambda: len(epochs(run_dir)) >= 1, JOB_TIMEOUT, "the first epoch", lambda: slurm.job(job))
    pids = job_processes(job)
    segments = pool_segments(set(pids))
    assert len(pids) >= 5, pids  # batch script, srun, 2 trainers, their pool workers
    assert segments, f"the pool made no segment: {sorted(pool_segments())}"  # so that the check below can fail
    slurm.run("scancel", job)
    info = slurm.wait_job(job, ended, 90, "the end of the cancelled job")
    assert info["JobState"] == "CANCELLED", info
    def alive():
        return sorted(set(job_processes(job)) | {p for p in pids if Path(f"/proc/{p}").exists()})

    wait_for(lambda: not alive(), 30, "no process of the job left", alive)
    wait_for(lambda: not pool_segments(set(pids)), 10, "no pool segment left", lambda: pool_segments(set(pids)))
    out = job_output(run_dir, job)
    assert "SIGTERM (cancelled or preempted)" in out, out[-3000:]
