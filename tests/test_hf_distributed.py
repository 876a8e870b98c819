"""Multi-process training: DDP with the gloo backend, two processes on the CPU loopback interface.

Two ranks, each on half of the global batch, must train the same adapter (within float
tolerance) as one process on the whole batch: DDP averages the ranks' gradients, and the mean of
two half-batch mean losses is the full-batch mean loss. Checkpoints written under DDP (module
names prefixed ``module.``) load into plain and DDP-wrapped models.
"""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import hydra

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with the gloo backend is not available")

WORLD = 2
STEPS = 4
CFG = hydra.HydraConfig(structure="toeplitz_like", k=2, pool_size=32, fixed_ratio=0.5, target_modules=["0", "2"],
                        modules_to_save=["head"])


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8))
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.body(x))


def _base():
    torch.manual_seed(0)
    return _Net()


def _model():
    return hydra.inject(_base(), CFG)


def _batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(8, 8, generator=g), torch.randn(8, 2, generator=g)


def _train(model, x, y):
    optimizer = torch.optim.SGD(hydra.trainable_parameters(model), lr=0.5, momentum=0.9)
    for _ in range(STEPS):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    return model


def _adapter(model):
    return {k.removeprefix("module."): v.detach().clone() for k, v in model.state_dict().items()
            if ".pool.trainable" in k or "head." in k}


def _worker(rank, port, folder):
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        x, y = _batch()
        half = len(x) // WORLD
        ddp = DistributedDataParallel(_model())
        _train(ddp, x[rank * half:(rank + 1) * half], y[rank * half:(rank + 1) * half])
        if rank == 0:
            hydra.save(ddp, os.path.join(folder, "ddp.safetensors"))
            hydra.save_pretrained(ddp, os.path.join(folder, "ddp_folder"))
            torch.save(_adapter(ddp), os.path.join(folder, "rank0.pt"))
        dist.barrier()
        # Every rank loads the checkpoint into a fresh DDP-wrapped model: names with `module.` round-trip.
        fresh = DistributedDataParallel(_model())
        hydra.load(fresh, os.path.join(folder, "ddp.safetensors"))
        mine, loaded = _adapter(ddp), _adapter(fresh)
        assert all(torch.equal(mine[k], loaded[k]) for k in mine), f"rank {rank}: DDP load differs"
        _check_fsdp_is_refused(folder)
    finally:
        dist.destroy_process_group()


def _check_fsdp_is_refused(folder):
    """FSDP (``fully_shard``) shards the pool across ranks: saving or loading it is refused, naming FSDP."""
    try:
        from torch.distributed.fsdp import fully_shard
    except ImportError:  # torch < 2.6
        return
    sharded = _model()
    fully_shard(sharded)
    for call in (lambda: hydra.save_pretrained(sharded, os.path.join(folder, "fsdp")),
                 lambda: hydra.load_pretrained(sharded, os.path.join(folder, "ddp_folder")),
                 lambda: hydra.save(sharded, os.path.join(folder, "fsdp.safetensors")),
                 lambda: hydra.load(sharded, os.path.join(folder, "ddp.safetensors")),
                 lambda: hydra.merge(sharded)):
        try:
            call()
        except ValueError as exc:
            assert "FSDP-sharded" in str(exc), exc
        else:
            raise AssertionError("an FSDP-sharded model was saved/loaded")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # subprocesses: each imports torch (and transformers) afresh
def test_ddp_two_processes_match_one_process_and_checkpoints_round_trip(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)

    x, y = _batch()
    single = _train(_model(), x, y)
    expected, ddp = _adapter(single), torch.load(tmp_path / "rank0.pt")
    assert set(expected) == set(ddp)
    moved = max((expected[k] - _adapter(_model())[k]).abs().max().item() for k in expected)
    assert moved > 1e-2                                    # training moved the adapter
    for key in expected:
        assert torch.allclose(ddp[key], expected[key], atol=1e-5, rtol=1e-5), key

    # The DDP checkpoint (file and folder) loads into a plain model.
    plain = hydra.load(_model(), tmp_path / "ddp.safetensors")
    assert all(torch.equal(_adapter(plain)[k], ddp[k]) for k in ddp)
    folder = hydra.from_pretrained(_base(), tmp_path / "ddp_folder")
    assert all(torch.equal(_adapter(folder)[k], ddp[k]) for k in ddp)
