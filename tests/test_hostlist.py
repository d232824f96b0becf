"""SLURM host lists: our parser against known expansions and against `scontrol show hostnames` itself."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from nninteractive_train.distributed import first_host, resolve_env
from nninteractive_train.distributed.hostlist import HostlistError, expand_hostlist, hostnames, scontrol_hostnames

KNOWN = [
    ("gpu01", ["gpu01"]),
    ("a,b", ["a", "b"]),
    ("gpu[03-05,09]", ["gpu03", "gpu04", "gpu05", "gpu09"]),
    ("gpu[7,9]", ["gpu7", "gpu9"]),
    ("n[9-11]", ["n9", "n10", "n11"]),  # width of the lower bound: no padding
    ("n[08-10]", ["n08", "n09", "n10"]),
    ("n[009-011]", ["n009", "n010", "n011"]),
    ("n[01-1]", ["n01"]),
    ("n[1-02]", ["n1", "n2"]),
    ("n[0-0]", ["n0"]),
    ("n[5]", ["n5"]),
    ("rack[1-2]-node[01-04]", [f"rack{r}-node0{n}" for r in (1, 2) for n in range(1, 5)]),
    ("n[1-2][3-4]", ["n13", "n14", "n23", "n24"]),
    ("n[1,3-4]-r[01-02]", ["n1-r01", "n1-r02", "n3-r01", "n3-r02", "n4-r01", "n4-r02"]),
    ("a[1-2,5],b-[01-03]", ["a1", "a2", "a5", "b-01", "b-02", "b-03"]),
    ("node-a[001-004],node-b2", ["node-a001", "node-a002", "node-a003", "node-a004", "node-b2"]),
    ("n[01-03],m", ["n01", "n02", "n03", "m"]),
    ("foo,bar[1-2],baz", ["foo", "bar1", "bar2", "baz"]),
    ("n[1-3,2]", ["n1", "n2", "n3", "n2"]),  # scontrol keeps duplicates
    ("a[1-2],,b", ["a1", "a2", "b"]),  # and skips empty items
    ("x1.cluster.org", ["x1.cluster.org"]),
    ("gpu[1-2].dc", ["gpu1.dc", "gpu2.dc"]),  # text after the group (SLURM 22.05's scontrol refuses it)
    ("a[1-2,5],b-[01-03]x", ["a1", "a2", "a5", "b-01x", "b-02x", "b-03x"]),
]
BAD = ["", " ", ",", "n[3-1]", "n[]", "n[1-2", "n1-2]", "n[1-2]]", "n[a]", "n[[1]]", "n[1-]", "n[ 1-2]",
       "n[1-2000000]", "a b"]


@pytest.mark.parametrize("text, hosts", KNOWN)
def test_known_expansions(text, hosts):
    assert expand_hostlist(text) == hosts


@pytest.mark.parametrize("text", BAD)
def test_malformed_lists_are_errors(text):
    with pytest.raises(HostlistError):
        expand_hostlist(text)


def test_large_list_is_cheap():
    hosts = expand_hostlist("n[0000-9999],m[1-3]-g[1-8]")
    assert len(hosts) == 10024 and hosts[0] == "n0000" and hosts[9999] == "n9999" and hosts[-1] == "m3-g8"


@pytest.fixture(scope="module")
def scontrol_env(tmp_path_factory):
    """scontrol with a minimal slurm.conf (it parses host lists without a running controller)."""
    if shutil.which("scontrol") is None:
        pytest.skip("scontrol is not installed (apt-get install slurm-client or slurm-wlm)")
    conf = tmp_path_factory.mktemp("slurmconf") / "slurm.conf"
    conf.write_text("ClusterName=hostlist\nSlurmctldHost=localhost\n")
    return {"SLURM_CONF": str(conf)}


@pytest.mark.parametrize("text, hosts", KNOWN)
def test_agrees_with_scontrol(text, hosts, scontrol_env, monkeypatch):
    for k, v in scontrol_env.items():
        monkeypatch.setenv(k, v)
    done = subprocess.run(["scontrol", "show", "hostnames", text], capture_output=True, text=True, timeout=30)
    if done.returncode != 0 or not done.stdout.strip():  # 22.05 says "Invalid hostlist" on stderr, exit 0
        assert "]" in text and not text.endswith("]"), done.stderr  # only the text-after-group form may be refused
        assert scontrol_hostnames(text) is None and hostnames(text) == hosts  # the parser steps in
        pytest.skip(f"this scontrol refuses {text!r}: {done.stderr.strip()}")
    assert done.stdout.split() == hosts
    assert scontrol_hostnames(text) == hosts == hostnames(text)


@pytest.mark.parametrize("text", ["n[3-1]", "n[]", "n[1-2]]", "n[a]"])
def test_scontrol_refuses_what_we_refuse(text, scontrol_env, monkeypatch):
    for k, v in scontrol_env.items():
        monkeypatch.setenv(k, v)
    assert scontrol_hostnames(text) is None
    with pytest.raises(HostlistError):
        hostnames(text)  # falls back to the parser, which names the problem


def test_parser_is_the_fallback_without_scontrol(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert scontrol_hostnames("n[1-2]") is None
    assert hostnames("rack[1-2]-node[01-04]")[:2] == ["rack1-node01", "rack1-node02"]


@pytest.mark.parametrize("nodelist, host", [("rack[1-2]-node[01-04]", "rack1-node01"), ("gpu[03-05,09]", "gpu03"),
                                            ("node-a[001-004],node-b2", "node-a001"), ("a1,b2", "a1")])
def test_first_host_is_the_rendezvous(nodelist, host):
    assert first_host(nodelist) == host
    env = resolve_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_JOB_NODELIST": nodelist})
    assert env.master_addr == host
