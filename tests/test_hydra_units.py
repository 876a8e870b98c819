"""hydra units: configuration validation, parameter pool, balanced sampler, block partitioner."""

import hashlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import hydra
from hydra.sampler import balanced_index_map, stable_seed

# -- configuration ------------------------------------------------------------------------------

BAD_HYDRA = [
    (dict(structure="circulant"), ValueError, "`structure` must be one of"),
    (dict(k=0), ValueError, "`k` must be an integer >= 1; got 0"),
    (dict(k=2.5), TypeError, "`k` must be an integer"),
    (dict(rank=0), ValueError, "`rank` must be an integer >= 1; got 0"),
    (dict(pool_size=0), ValueError, "`pool_size` must be an integer >= 1; got 0"),
    (dict(pool_size=-3), ValueError, "`pool_size` must be an integer >= 1; got -3"),
    (dict(fixed_ratio=1.0), ValueError, r"`fixed_ratio` must be in \[0, 1\); got 1.0"),
    (dict(fixed_ratio=-0.1), ValueError, r"`fixed_ratio` must be in \[0, 1\); got -0.1"),
    (dict(fixed_ratio=float("nan")), ValueError, "`fixed_ratio` must be finite"),
    (dict(init_std=0.0), ValueError, "`init_std` must be > 0"),
    (dict(path="gpu"), ValueError, "`path` must be one of"),
    (dict(shared_pool=1), TypeError, "`shared_pool` must be a bool"),
    (dict(target_modules=None), ValueError, "`target_modules` must be given"),
    (dict(target_modules=[]), ValueError, "non-empty list"),
    (dict(target_modules="query("), ValueError, "not a valid regular expression"),
    (dict(seed=-1), ValueError, "`seed` must be an integer >= 0"),
]


@pytest.mark.parametrize("kwargs, error, message", BAD_HYDRA)
def test_hydra_config_rejects_bad_values(kwargs, error, message):
    args = dict(target_modules=["query"])
    args.update(kwargs)
    with pytest.raises(error, match=message):
        hydra.HydraConfig(**args)


def test_baseline_configs_validate():
    with pytest.raises(ValueError, match="`structure` must be one of 'circulant', 'toeplitz_like'"):
        hydra.LDRConfig(structure="hankel_like", target_modules=["q"])
    with pytest.raises(ValueError, match="`rank` must be an integer >= 1; got 0"):
        hydra.LoRAConfig(rank=0, target_modules=["q"])
    assert hydra.LoRAConfig(rank=4, alpha=16, target_modules=["q"]).scale == 4.0


def test_config_round_trip_and_fixed_count():
    cfg = hydra.HydraConfig(structure="cauchy_like", k=3, pool_size=10, fixed_ratio=0.7, target_modules=("a", "b"))
    assert cfg.target_modules == ["a", "b"]
    assert hydra.config_from_dict(cfg.to_dict()) == cfg
    # floor(0.7 * 10) must be 7 although 0.7 * 10 = 7.000000000000001; 0.29 * 100 = 28.99... -> 29.
    assert (cfg.n_fixed, cfg.n_trainable) == (7, 3)
    assert hydra.HydraConfig(pool_size=100, fixed_ratio=0.29, target_modules=["a"]).n_fixed == 29
    assert hydra.HydraConfig(pool_size=1, fixed_ratio=0.9, target_modules=["a"]).n_trainable == 1
    with pytest.raises(ValueError, match="unknown HydraConfig fields"):
        hydra.config_from_dict({**cfg.to_dict(), "alpha": 1})


# -- sampler ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_slots, pool_size", [(144, 40), (6128, 768), (6144, 6144), (7, 3), (1, 1), (5, 5)])
def test_index_map_is_balanced_and_deterministic(n_slots, pool_size):
    index = balanced_index_map(n_slots, pool_size, seed=3, name="layer")
    counts = np.bincount(index, minlength=pool_size)
    assert index.shape == (n_slots,) and index.dtype == np.int64
    assert counts.min() == n_slots // pool_size and counts.max() == -(-n_slots // pool_size)
    assert np.array_equal(index, balanced_index_map(n_slots, pool_size, seed=3, name="layer"))
    if n_slots > 1:
        assert not np.array_equal(index, balanced_index_map(n_slots, pool_size, seed=4, name="layer")) or pool_size == 1


def test_index_map_depends_on_layer_name_and_warns_for_unused_entries():
    a = balanced_index_map(100, 30, seed=0, name="layer.0.query")
    b = balanced_index_map(100, 30, seed=0, name="layer.0.value")
    assert not np.array_equal(a, b)
    with pytest.warns(UserWarning, match="4 pool entries are never used"):
        index = balanced_index_map(6, 10, seed=0, name="small")
    assert len(set(index.tolist())) == 6


def test_stable_seed_is_not_pythons_salted_hash():
    # A fixed value: the seed must never change across processes, platforms or releases.
    assert stable_seed(0, "pool", "query") == stable_seed(0, "pool", "query")
    assert stable_seed(0, "1") != stable_seed(0, 1)
    assert 0 <= stable_seed("x") < 2**63


# -- pool ---------------------------------------------------------------------------------------


def test_pool_parts_regeneration_and_state_dict():
    pool = hydra.ParameterPool(20, n_fixed=6, seed=1, name="q", init_std=0.5)
    assert pool.trainable.shape == (14,) and pool.fixed.shape == (6,)
    assert list(pool.state_dict()) == ["trainable"]  # the fixed part is never saved
    again = hydra.ParameterPool(20, n_fixed=6, seed=1, name="q", init_std=0.5)
    assert torch.equal(pool(), again())
    other = hydra.ParameterPool(20, n_fixed=6, seed=1, name="v", init_std=0.5)
    assert not torch.equal(pool.fixed, other.fixed)
    assert 0.2 < float(pool().detach().std()) < 1.0
    with torch.no_grad():
        pool.trainable.add_(1.0)
        pool.fixed.zero_()
    pool.regenerate()
    assert torch.equal(pool.fixed, again.fixed)
    assert torch.equal(pool.deviation()[:14], torch.ones(14)) and torch.equal(pool.deviation()[14:], torch.zeros(6))
    pool.reset_parameters()
    assert torch.equal(pool(), again()) and not pool.deviation().any()


@pytest.mark.parametrize("kwargs, message", [
    (dict(size=0), r"`size` \(pool_size\) must be an integer >= 1; got 0"),
    (dict(size=4, n_fixed=4), r"`n_fixed` \(the fixed entries, fixed_ratio \* pool_size\) must be an integer in \[0, pool_size\) = \[0, 4\); got 4"),
    (dict(size=4, init_std=-1.0), "`init_std` must be a finite number > 0"),
])
def test_pool_rejects_bad_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        hydra.ParameterPool(**kwargs)


def test_numpy_integer_sizes_accepted_like_python_ints():
    # Issue 12 §5: NumPy integer scalars work wherever Python ints do, with the same result.
    pool = hydra.ParameterPool(np.int64(20), n_fixed=np.int32(6), seed=1, name="q")
    same = hydra.ParameterPool(20, n_fixed=6, seed=1, name="q")
    assert (pool.size, pool.n_fixed) == (20, 6) and type(pool.size) is int
    assert torch.equal(pool(), same())
    part = hydra.BlockPartitioner(np.int64(13), np.int32(10), np.int64(3))
    assert part.k == 3 and type(part.m) is int


def _fingerprint(pool, index):
    data = pool.fixed.numpy().tobytes() + pool.initial.numpy().tobytes() + index.tobytes()
    return hashlib.sha256(data).hexdigest()


def test_fixed_part_and_index_map_identical_in_another_process():
    code = textwrap.dedent(
        """
        import hashlib, hydra
        pool = hydra.ParameterPool(50, n_fixed=20, seed=7, name="enc.0.query", init_std=0.02)
        index = hydra.balanced_index_map(383, 50, 7, "enc.0.query")
        data = pool.fixed.numpy().tobytes() + pool.initial.numpy().tobytes() + index.tobytes()
        print(hashlib.sha256(data).hexdigest())
        """
    )
    # A new interpreter with another hash salt: Python's hash() would differ, ours must not.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}, timeout=120)
    pool = hydra.ParameterPool(50, n_fixed=20, seed=7, name="enc.0.query", init_std=0.02)
    assert out.stdout.strip() == _fingerprint(pool, balanced_index_map(383, 50, 7, "enc.0.query"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fixed_part_identical_on_cuda():
    pool = hydra.ParameterPool(64, n_fixed=32, seed=0, name="q")
    moved = hydra.ParameterPool(64, n_fixed=32, seed=0, name="q").cuda()
    assert torch.equal(moved.fixed.cpu(), pool.fixed)
    moved.regenerate()
    assert torch.equal(moved.fixed.cpu(), pool.fixed)


# -- partitioner --------------------------------------------------------------------------------


@pytest.mark.parametrize("m, n, k, block", [
    (13, 13, 4, (4, 4)), (768, 768, 5, (154, 154)), (768, 768, 4, (192, 192)),
    (3072, 768, 4, (768, 192)), (7, 10, 3, (3, 4)), (5, 3, 1, (5, 3)), (3, 3, 3, (1, 1)),
])
def test_partition_shapes_and_round_trip(m, n, k, block):
    part = hydra.BlockPartitioner(m, n, k)
    assert part.block_shape == block
    assert part.padded_shape == (k * block[0], k * block[1])
    gen = torch.Generator().manual_seed(m * n + k)
    W = torch.randn(m, n, generator=gen, dtype=torch.float64)
    blocks = part.blocks(W)
    assert blocks.shape == (k, k) + block
    assert torch.equal(part.assemble(blocks), W)
    x = torch.randn(2, 3, n, generator=gen, dtype=torch.float64)
    y = part.merge_output(torch.einsum("pqij,...qj->...pi", blocks, part.split_input(x)))
    torch.testing.assert_close(y, x @ W.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("m, n, k, message", [
    (4, 8, 5, r"`k` = 5 blocks per axis is larger than the layer's out_features m = 4"),
    (8, 3, 4, r"`k` = 4 blocks per axis is larger than the layer's in_features n = 3"),
    (8, 8, 0, r"`k` must be an integer >= 1; got 0"),
])
def test_partition_rejects_k_too_large(m, n, k, message):
    with pytest.raises(ValueError, match=message):
        hydra.BlockPartitioner(m, n, k)


def test_partition_warns_when_a_block_row_is_all_padding():
    with pytest.warns(UserWarning, match="block row 3 lies entirely in the padding"):
        hydra.BlockPartitioner(5, 8, 4)
