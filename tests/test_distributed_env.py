import pytest

from nninteractive_train.distributed import first_host, resolve_env, split_batch
from nninteractive_train.distributed.env import slurm_port


@pytest.mark.parametrize("nodelist, host", [
    ("gpu01", "gpu01"),
    ("gpu[03-05,09]", "gpu03"),
    ("gpu[7,9]", "gpu7"),
    ("node-a[001-004],node-b2", "node-a001"),
    ("a1,b2", "a1"),
])
def test_first_host(nodelist, host):
    assert first_host(nodelist) == host


def test_torchrun_variables_win():
    env = resolve_env({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "MASTER_ADDR": "h", "MASTER_PORT": "1234",
                       "SLURM_PROCID": "0", "SLURM_NTASKS": "8"})
    assert (env.rank, env.local_rank, env.world_size, env.master_addr, env.master_port, env.source) == \
        (3, 1, 4, "h", 1234, "torchrun")


def test_slurm_variables():
    env = resolve_env({"SLURM_PROCID": "9", "SLURM_LOCALID": "1", "SLURM_NTASKS": "16",
                       "SLURM_JOB_NODELIST": "gpu[12-13]", "SLURM_JOB_ID": "4242"})
    assert (env.rank, env.local_rank, env.world_size, env.source) == (9, 1, 16, "slurm")
    assert env.master_addr == "gpu12"
    assert env.master_port == slurm_port("4242")
    assert env.is_distributed


def test_single_task_slurm_allocation_is_single_process():
    env = resolve_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "1", "SLURM_JOB_NODELIST": "gpu1"})
    assert env.source == "single" and env.world_size == 1


def test_no_variables():
    env = resolve_env({})
    assert (env.rank, env.world_size, env.is_distributed) == (0, 1, False)


def test_bad_integer_is_named():
    with pytest.raises(ValueError, match="SLURM_PROCID"):
        resolve_env({"SLURM_PROCID": "x", "SLURM_NTASKS": "2", "SLURM_JOB_NODELIST": "a"})


@pytest.mark.parametrize("batch, world, expected", [(24, 8, [3] * 8), (2, 2, [1, 1]), (5, 1, [5]), (6, 3, [2, 2, 2])])
def test_split_batch(batch, world, expected):
    assert split_batch(batch, world) == expected


@pytest.mark.parametrize("batch, world", [(24, 5), (2, 4), (7, 2)])
def test_split_batch_refuses_uneven(batch, world):
    with pytest.raises(ValueError, match="cannot be split evenly"):
        split_batch(batch, world)
