"""nnInteractive_submit_slurm renders a valid, documented sbatch script whose trap checkpoints and requeues
(bash with a fake srun / scontrol / sbatch here; the real SLURM in tests/slurm/). Rejected inputs are in
test_submit_checks.py."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from helpers import DEBUG_CFG, prepared_dataset
from nninteractive_train.cli.submit_slurm import main, parse_time
from nninteractive_train.distributed.env import slurm_port

TIMEOUT = 60.0  # deadlock guard only
TRICKY = "name=a b'c $HOME \"q\""
DS = 990
BASE = ["-d", str(DS), "--config", str(DEBUG_CFG), "model.global_batch_size=96"]  # 96: splits over every layout here


@pytest.fixture(scope="module", autouse=True)
def dataset():
    """The submission checks the dataset, plans and preprocessed data: a real (tiny) one."""
    return prepared_dataset(DS)

FAKE_SRUN = r"""#!/bin/bash
printf '%s\0' "$@" > "$FAKE_LOG/srun.args"
echo "$MASTER_ADDR $MASTER_PORT $SRUN_CPUS_PER_TASK" > "$FAKE_LOG/srun.env"
trap 'echo USR1 >> "$FAKE_LOG/srun.sig"; exit 0' USR1
[ "${FAKE_SRUN_DEAF:-0}" = 1 ] && trap '' USR1
trap 'echo TERM >> "$FAKE_LOG/srun.sig"; exit 143' TERM
touch "$FAKE_LOG/srun.started"
[ "${FAKE_SRUN_WAIT:-0}" = 1 ] || exit "${FAKE_SRUN_EXIT:-0}"
for i in $(seq 1200); do sleep 0.05; done
"""
FAKE_SCONTROL = r"""#!/bin/bash
if [ "$1 $2" = "show hostnames" ]; then printf 'gpu01\ngpu02\n'; exit 0; fi
echo "$*" >> "$FAKE_LOG/scontrol.log"
"""
FAKE_SBATCH = r"""#!/bin/bash
echo "$*" >> "$FAKE_LOG/sbatch.log"
echo "4242;cluster"
"""


def render(tmp_path: Path, *extra: str, capsys) -> str:
    assert main([*BASE, "--output", str(tmp_path / "run"), "--dry-run", *extra]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("launcher", ["srun", "torchrun"])
def test_dry_run_is_valid_bash_with_slurm_variables(tmp_path, capsys, launcher):
    script = render(tmp_path, "--launcher", launcher, "--nodes", "2", capsys=capsys)
    path = tmp_path / "s.sh"
    path.write_text(script)
    subprocess.run(["bash", "-n", str(path)], check=True)
    for needed in ("SLURM_JOB_NODELIST", "SLURM_JOB_ID", "MASTER_ADDR", "MASTER_PORT", "scontrol requeue",
                   "#SBATCH --requeue", "#SBATCH --signal=B:USR1@300", "#SBATCH --open-mode=append",
                   f"#SBATCH --output={tmp_path / 'run'}/slurm-%j.out", "--resume-if-exists", "trap on_usr1 USR1"):
        assert needed in script, needed
    if launcher == "torchrun":
        assert "torchrun" in script and "--rdzv-backend=c10d" in script and '--nnodes="$SLURM_NNODES"' in script
        assert "-m nninteractive_train.cli.train" in script
    assert not (tmp_path / "run").exists()  # a dry run writes nothing


@pytest.mark.parametrize("nodes,gpus,cpus,launcher,tasks,task_cpus", [
    (1, 8, 8, "srun", 8, 8), (4, 8, 12, "srun", 8, 12), (2, 4, 6, "torchrun", 1, 24), (3, 1, 4, "torchrun", 1, 4),
])
def test_task_arithmetic(tmp_path, capsys, nodes, gpus, cpus, launcher, tasks, task_cpus):
    script = render(tmp_path, "--nodes", str(nodes), "--gpus-per-node", str(gpus), "--cpus-per-task", str(cpus),
                    "--launcher", launcher, capsys=capsys)
    assert f"#SBATCH --nodes={nodes}\n" in script and f"#SBATCH --gpus-per-node={gpus}\n" in script
    assert f"#SBATCH --ntasks-per-node={tasks}\n" in script and f"#SBATCH --cpus-per-task={task_cpus}\n" in script
    assert f"= {nodes * gpus} training processes" in script


def test_site_options(tmp_path, capsys):
    script = render(tmp_path, "--partition", "gpu", "--account", "proj1", "--mem", "0", "--gpu-request", "gres",
                    "--sbatch-arg=--qos=high", "--time", "2-00:00:00", "--signal-seconds", "600", capsys=capsys)
    for line in ("--partition=gpu", "--account=proj1", "--mem=0", "--gres=gpu:8", "--qos=high",
                 "--time=2-00:00:00", "--signal=B:USR1@600"):
        assert f"#SBATCH {line}\n" in script


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    bin_dir, log = tmp_path / "bin", tmp_path / "log"
    bin_dir.mkdir()
    log.mkdir()
    for name, text in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL), ("sbatch", FAKE_SBATCH)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    return log


def start_job(script: Path, **env) -> subprocess.Popen:
    env = {**os.environ, "SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "gpu[01-02]", "SLURM_NNODES": "2",
           "SLURM_CPUS_PER_TASK": "8", **env}
    return subprocess.Popen(["bash", str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def submit(tmp_path, *extra) -> Path:
    assert main([*BASE, "--output", str(tmp_path / "run"), "--nodes", "2", *extra]) == 0
    return tmp_path / "run" / "submit.sbatch"


def test_submit_writes_script_and_calls_sbatch(tmp_path, fake_slurm, capsys):
    script = submit(tmp_path)
    assert script.is_file() and "submitted job 4242" in capsys.readouterr().out
    assert (fake_slurm / "sbatch.log").read_text().split() == ["--parsable", str(script)]


def test_run_folder_config_and_rendezvous_reach_srun(tmp_path, fake_slurm):
    """Overrides (even with quotes and $) are resolved into RUN_DIR/config.yaml; srun gets that file, not the
    submitted YAML, so every start and requeue trains the validated config."""
    script = submit(tmp_path, TRICKY, "training.num_epochs=5")
    run_dir = tmp_path / "run"
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["name"] == "a b'c $HOME \"q\"" and saved["training"]["num_epochs"] == 5
    assert saved["model"]["global_batch_size"] == 96 and saved["model"]["patch_size"] == [32, 32, 32]  # the YAML's
    job = start_job(script, FAKE_SRUN_EXIT="3")
    out, _ = job.communicate(timeout=TIMEOUT)
    assert job.returncode == 3, out  # the step's status is the job's
    args = (fake_slurm / "srun.args").read_text().split("\0")[:-1]
    train = args[args.index("-d", args.index("nnit-task")):]
    assert train == ["-d", str(DS), "--config", str(run_dir / "config.yaml"), "--output", str(run_dir),
                     "--resume-if-exists"]
    assert "--ntasks-per-node=8" in args
    assert (fake_slurm / "srun.env").read_text().split() == ["gpu01", str(slurm_port("4242")), "8"]
    assert not (fake_slurm / "scontrol.log").exists()  # a normal end is not requeued


def wait_for_step(job, fake_slurm) -> None:
    """Block until the fake srun step has started (the job must still be running)."""
    deadline = time.monotonic() + TIMEOUT
    while not (fake_slurm / "srun.started").exists():
        assert time.monotonic() < deadline and job.poll() is None, "the step never started"
        time.sleep(0.05)


@pytest.mark.parametrize("launcher", ["srun", "torchrun"])
def test_usr1_is_forwarded_then_job_requeued(tmp_path, fake_slurm, launcher):
    job = start_job(submit(tmp_path, "--launcher", launcher), FAKE_SRUN_WAIT="1")
    wait_for_step(job, fake_slurm)
    job.send_signal(signal.SIGUSR1)
    out, _ = job.communicate(timeout=TIMEOUT)
    assert (fake_slurm / "srun.sig").read_text().split() == ["USR1"], out
    assert (fake_slurm / "scontrol.log").read_text().split() == ["requeue", "4242"], out
    assert job.returncode == 0


def test_step_that_ignores_the_signal_is_stopped_then_requeued(tmp_path, fake_slurm):
    job = start_job(submit(tmp_path, "--signal-seconds", "2", "--time", "10"), FAKE_SRUN_WAIT="1",
                    FAKE_SRUN_DEAF="1")
    wait_for_step(job, fake_slurm)
    job.send_signal(signal.SIGUSR1)
    out, _ = job.communicate(timeout=TIMEOUT)
    assert (fake_slurm / "srun.sig").read_text().split() == ["TERM"], out
    assert (fake_slurm / "scontrol.log").read_text().split() == ["requeue", "4242"], out


def test_cpu_layout_requests_no_gpu(tmp_path, capsys):
    script = render(tmp_path, "--cpu", "--gpus-per-node", "2", "--cpus-per-task", "1", capsys=capsys)
    assert "--gpus-per-node=" not in script and "--gres" not in script and "#SBATCH --ntasks-per-node=2\n" in script
    assert "--resume-if-exists --cpu" in script and "= 2 training processes" in script


def test_missing_sbatch_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SystemExit) as e:
        main([*BASE, "--output", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "`sbatch` was not found" in err
    assert (tmp_path / "run" / "submit.sbatch").is_file() and (tmp_path / "run" / "config.yaml").is_file()


@pytest.mark.parametrize("text,seconds", [
    ("30", 1800), ("30:15", 1815), ("01:00:00", 3600), ("2-00", 172800), ("1-02:03", 93780), ("1-00:00:05", 86405),
])
def test_parse_time(text, seconds):
    assert parse_time(text) == seconds
