"""A real one-node SLURM cluster for the tests: munged, slurmctld and slurmd on localhost, started once per test
session in a temporary folder (its own ports, munge socket and key, state and logs; nothing under /etc) and
stopped at the end, leaving no process behind.

Needs Debian's ``slurm-wlm`` and ``munge`` (``apt-get install -y slurm-wlm munge``; `.ci/run` installs them) and
root (the daemons run as root, SlurmUser=root). Elsewhere every test marked ``slurm`` is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "scontrol", "sinfo", "squeue", "scancel")
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
START_TIMEOUT = 60.0

SLURM_CONF = """\
# One-node test cluster written by tests/slurm/conftest.py.
ClusterName=nnit-test
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a revoked job credential blocks a requeued job from starting again for this long (default 120 s)
AuthInfo=socket={root}/munge/munge.socket,cred_expire=15
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
# No systemd cgroups in containers: track processes through /proc, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/builtin
# Look at pending jobs every 2 s (default 60 s): a requeued job starts as soon as it may.
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# The node is what this file says even on a 1-core machine (no drain for "low CPU count").
SlurmdParameters=config_overrides
ReturnToService=2
# SIGTERM -> SIGKILL after 20 s on scancel: the trainer checkpoints within that.
KillWait=20
# Finished jobs stay visible to scontrol for 5 minutes (the tests read their state).
MinJobAge=300
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""
CGROUP_CONF = "# unused: proctrack/linuxproc and task/none need no cgroups\nCgroupAutomount=no\n"


def missing_reason() -> str | None:
    """Why the cluster cannot run here, or None."""
    absent = [b for b in DAEMONS + CLIENTS if shutil.which(b, path=SBIN_PATH) is None]
    if absent:
        return (f"SLURM is not installed ({', '.join(absent)} missing): apt-get install -y slurm-wlm munge "
                f"(as root; scripts/test.sh does it)")
    if os.geteuid() != 0:
        return "the one-node test SLURM runs munged, slurmctld and slurmd as root; not root here"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """The running test cluster: its folder, and the environment its clients need (SLURM_CONF)."""

    root: Path
    env: dict = field(default_factory=dict)
    daemons: list = field(default_factory=list)

    def run(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        done = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **self.env})
        if check and done.returncode != 0:
            raise AssertionError(f"{cmd} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def job(self, job_id: str) -> dict:
        """``scontrol show job`` as a dict (JobState, Restarts, ExitCode, …); {} once SLURM forgot the job."""
        done = self.run("scontrol", "-o", "show", "job", job_id, check=False)
        return dict(kv.split("=", 1) for kv in done.stdout.split() if "=" in kv) if done.returncode == 0 else {}

    def wait_job(self, job_id: str, until, timeout: float, what: str) -> dict:
        """Poll the job until ``until(info)`` is true; fails with the job's state and log tail after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.job(job_id)
            if until(info):
                return info
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id}: {what} not reached in {timeout:.0f} s; state {info}\n"
                                     f"{self.log_tail()}")
            time.sleep(0.5)

    def log_tail(self, lines: int = 15) -> str:
        out = []
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.root / "log" / name
            if path.is_file():
                out += [f"--- {name}"] + path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(out)


def _start(cluster: Cluster, *cmd: str) -> None:
    """Start a daemon in the foreground of a child process (so that the fixture owns and stops it)."""
    log = open(cluster.root / "log" / f"{Path(cmd[0]).name}.stdout", "w")
    proc = subprocess.Popen([shutil.which(cmd[0], path=SBIN_PATH), *cmd[1:]], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **cluster.env}, start_new_session=True)
    cluster.daemons.append(proc)


def _stop(cluster: Cluster) -> None:
    """Cancel what is left, then stop the daemons in reverse order (TERM, then KILL after 15 s)."""
    if cluster.daemons:
        cluster.run("scancel", "--full", "--partition=debug", check=False, timeout=30)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and cluster.run("squeue", "-h", check=False).stdout.strip():
            time.sleep(0.5)
    for proc in reversed(cluster.daemons):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    cluster.daemons.clear()
    left = _processes_of(cluster.root)
    if left:
        raise RuntimeError(f"processes of the test cluster are still running: {left}")


def _processes_of(root: Path) -> dict[int, str]:
    """pid → command line of every process that names the cluster's folder or has its SLURM_CONF in its
    environment (daemons, slurmstepd, job scripts and everything they started); the test process's own helpers
    (e.g. multiprocessing's resource tracker, started while SLURM_CONF was set) are not the cluster's."""
    found, mark = {}, f"SLURM_CONF={root / 'slurm.conf'}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            env = (proc / "environ").read_bytes().split(b"\0")
            ppid = int(next(line.split()[1] for line in (proc / "status").read_text().splitlines()
                            if line.startswith("PPid:")))
        except (OSError, StopIteration, ValueError):
            continue
        if ppid != os.getpid() and (str(root) in cmd or mark in env):
            found[int(proc.name)] = cmd
    return found


def _wait_idle(cluster: Cluster) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        for proc in cluster.daemons:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}\n{cluster.log_tail()}")
        state = cluster.run("sinfo", "-h", "-N", "-o", "%T", check=False).stdout.strip()
        if state == "idle":
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the test node is {state!r}, not idle, after {START_TIMEOUT:.0f} s\n"
                               f"{cluster.log_tail()}")
        time.sleep(0.3)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """Start munged, slurmctld and slurmd; yield the :class:`Cluster`; stop everything at the end."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("slurm")
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir(mode=0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    conf = root / "slurm.conf"
    conf.write_text(SLURM_CONF.format(root=root, ctld_port=free_port(), slurmd_port=free_port()))
    (root / "cgroup.conf").write_text(CGROUP_CONF)
    cluster = Cluster(root, env={"SLURM_CONF": str(conf)})
    try:
        _start(cluster, "munged", "--foreground", "--force", f"--socket={root}/munge/munge.socket",
               f"--key-file={key}", f"--log-file={root}/log/munged.log", f"--pid-file={root}/munge/munged.pid",
               f"--seed-file={root}/munge/munged.seed")
        deadline = time.monotonic() + START_TIMEOUT
        while not (root / "munge" / "munge.socket").exists():
            if time.monotonic() > deadline or cluster.daemons[0].poll() is not None:
                raise RuntimeError(f"munged did not start: {(root / 'log' / 'munged.log').read_text()}")
            time.sleep(0.1)
        _start(cluster, "slurmctld", "-D", "-i", "-f", str(conf))
        _start(cluster, "slurmd", "-D", "-N", "localhost", "-f", str(conf))
        _wait_idle(cluster)
        yield cluster
    finally:
        _stop(cluster)


@pytest.fixture
def slurm(slurm_cluster, monkeypatch) -> Cluster:
    """The cluster, with SLURM_CONF set in this test's environment (sbatch and scontrol find it; jobs inherit it)."""
    for k, v in slurm_cluster.env.items():
        monkeypatch.setenv(k, v)
    return slurm_cluster
