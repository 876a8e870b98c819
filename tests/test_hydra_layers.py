"""hydra layers: ΔW against independent dense oracles, fast == dense, zero change at init, gradients,
dtypes, merge/unmerge, and the LoRA / plain-LDR baselines."""

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

import hydra

STRUCTURES = list(hydra.HYDRA_STRUCTURES)
# (m, n, k): square divisible, non-divisible (the 768-into-5 analogue), rectangular layers and blocks.
SHAPES = [(12, 12, 3), (13, 13, 4), (10, 7, 2), (7, 10, 3), (16, 8, 4), (9, 9, 1)]


def _layer(structure, m, n, k, rank=2, pool_size=50, fixed_ratio=0.3, dtype=torch.float64, seed=0, **kw):
    gen = torch.Generator().manual_seed(m * 100 + n * 10 + k)
    base = torch.nn.Linear(n, m)
    with torch.no_grad():
        base.weight.copy_(torch.randn(m, n, generator=gen))
        base.bias.copy_(torch.randn(m, generator=gen))
    cfg = hydra.HydraConfig(structure=structure, k=k, rank=rank, pool_size=pool_size,
                            fixed_ratio=fixed_ratio, seed=seed, target_modules=["x"], **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small layers: pools larger than the slots, padded block rows
        layer = hydra.HydraLinear(base, cfg, name="x")
    return layer.to(dtype)


def _perturb(layer, seed=1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        t = layer.pool.trainable
        t.add_(torch.randn(t.shape, generator=gen, dtype=t.dtype))


# -- independent oracles (NumPy / SciPy, float64, one block at a time) --------------------------


def _shift(n, f):
    Z = np.diag(np.ones(n - 1), -1)
    Z[0, n - 1] += f
    return Z


def _krylov(Z, v):
    cols = [v]
    for _ in range(len(v) - 1):
        cols.append(Z @ cols[-1])
    return np.stack(cols, axis=1)


def _unit_circle_nodes(bm):
    """exp(iπ(2i+1)/bm) for i < ⌈bm/2⌉: one node per conjugate pair, then −1 when bm is odd."""
    return np.exp(1j * np.pi * (2 * np.arange(bm - bm // 2) + 1) / bm)


def _unit_circle_shift(bm, bn):
    """f in (1, −1) farthest from every w_i^bn (ties: 1), by brute force."""
    powers = _unit_circle_nodes(bm) ** bn
    return max((1.0, -1.0), key=lambda f: (np.min(np.abs(powers - f)), f))


def _rotation_operator(bm):
    """The real A of a Vandermonde-like block: rotations by arg w_i on rows (i, p + i), then −1."""
    w, p = _unit_circle_nodes(bm), bm // 2
    A = np.zeros((bm, bm))
    A[:p, :p] = A[p : 2 * p, p : 2 * p] = np.diag(w.real[:p])
    A[:p, p : 2 * p], A[p : 2 * p, :p] = -np.diag(w.imag[:p]), np.diag(w.imag[:p])
    if bm % 2:
        A[-1, -1] = -1.0
    return A


def _oracle_block(structure, gens, p, q, bm, bn):
    if structure == "toeplitz":
        t = gens["t"][p, q]
        return scipy.linalg.toeplitz(t[bn - 1:], t[bn - 1::-1])
    G, H = gens["G"][p, q], gens["H"][p, q]
    if structure == "low_rank":
        return G @ H
    if structure == "cauchy_like":
        v, u = np.arange(bm), np.arange(bn) + 0.5
        return (G @ H) / (v[:, None] - u[None, :])
    if structure == "vandermonde_like":
        w, f, p = _unit_circle_nodes(bm), _unit_circle_shift(bm, bn), bm // 2
        V = np.vander(w, bn, increasing=True)
        g = np.concatenate([G[:p] + 1j * G[p : 2 * p], G[2 * p :]])  # a pair's rows: Re, Im of g~
        Y = sum(np.diag(g[:, l]) @ V @ _krylov(_shift(bn, f), H[l, ::-1]) for l in range(G.shape[1]))
        return np.concatenate([Y.real[:p], Y.imag[:p], Y.real[p:]])
    if structure == "toeplitz_like":
        e, f = (1.0, -1.0) if bm == bn else (1.0, 0.0)
        return scipy.linalg.solve_sylvester(_shift(bm, e), -_shift(bn, f), G @ H)
    if structure == "hankel_like":
        return scipy.linalg.solve_sylvester(_shift(bm, 1.0), -_shift(bn, 0.0).T, G @ H)
    raise AssertionError(structure)


def _oracle_delta(layer):
    """ΔW_eff = ΔW(θ) - ΔW(θ0) from the layer's generators, block by block with SciPy."""
    k, (bm, bn) = layer.config.k, layer.partition.block_shape
    m, n = layer.out_features, layer.in_features
    out = []
    for initial in (False, True):
        gens = {key: v.detach().double().numpy() for key, v in layer.block_generators(initial).items()}
        M = np.zeros((k * bm, k * bn))
        for p in range(k):
            for q in range(k):
                M[p * bm:(p + 1) * bm, q * bn:(q + 1) * bn] = _oracle_block(layer.config.structure, gens, p, q, bm, bn)
        out.append(M[:m, :n])
    return out[0] - out[1]


def _assert_close(actual, expected, tol, what):
    """Relative to the norm: ||actual - expected|| <= tol * ||expected||; prints the error seen."""
    err = float(np.linalg.norm(np.asarray(actual) - np.asarray(expected)))
    scale = float(np.linalg.norm(np.asarray(expected))) or 1.0
    print(f"{what}: relative error {err / scale:.2e}")
    assert err <= tol * scale, f"{what}: relative error {err / scale:.2e} > {tol}"


@pytest.mark.parametrize("m, n, k", SHAPES)
@pytest.mark.parametrize("structure", STRUCTURES)
def test_delta_weight_matches_dense_oracle_on_both_paths(structure, m, n, k):
    layer = _layer(structure, m, n, k)
    _perturb(layer)
    expected = _oracle_delta(layer)
    dense = layer.delta_weight(scaled=False).detach().numpy()
    _assert_close(dense, expected, 1e-12, f"{structure} dense path")
    # The fast path applied to the identity gives ΔW^T column by column.
    fast = layer._delta_apply(torch.eye(n, dtype=torch.float64)).detach().numpy().T
    _assert_close(fast, expected, 1e-12, f"{structure} fft path")


@pytest.mark.parametrize("bm, bn", [(4, 4), (5, 3), (3, 4), (6, 9)])
def test_vandermonde_block_is_real_and_displacement_structured(bm, bn):
    """A W - W Z_f = G' H with the real rotation operator A and G' the real rows of g~ (w^bn - f)."""
    layer = _layer("vandermonde_like", 2 * bm, 2 * bn, 2, rank=1)
    _perturb(layer)
    gens = {key: v.detach().double().numpy() for key, v in layer.block_generators().items()}
    G, H, p = gens["G"][1, 0], gens["H"][1, 0], bm // 2
    w, f = _unit_circle_nodes(bm), _unit_circle_shift(bm, bn)
    g = np.concatenate([G[:p] + 1j * G[p : 2 * p], G[2 * p :]]) * (w**bn - f)[:, None]
    generator = np.concatenate([g.real[:p], g.imag[:p], g.real[p:]]) @ H
    W = _oracle_block("vandermonde_like", gens, 1, 0, bm, bn)
    assert np.min(np.abs(w**bn - f)) > 0.4  # the pair (A, Z_f) is far from singular
    _assert_close(scipy.linalg.solve_sylvester(_rotation_operator(bm), -_shift(bn, f), generator), W, 1e-10, "Sylvester")


@pytest.mark.parametrize("block", [191, 192, 193])
@pytest.mark.parametrize("dtype, threshold", [(torch.float64, 1e-8), (torch.float32, 1e-5)])
def test_vandermonde_blocks_have_full_numerical_rank(block, dtype, threshold):
    """A random rank-1 block has full numerical rank (the old Chebyshev nodes gave 41 of 192)."""
    structure = hydra.blocks.block_structure("vandermonde_like", block, block, 1)
    rng = np.random.default_rng(block)
    G = torch.as_tensor(rng.standard_normal((1, 1, block, 1)), dtype=dtype)
    H = torch.as_tensor(rng.standard_normal((1, 1, 1, block)), dtype=dtype)
    fixed = {k: v.to(dtype) for k, v in structure.buffers().items()}
    s = torch.linalg.svdvals(structure.dense(G, H, fixed)[0, 0].double())
    rank = int((s > threshold * s[0]).sum())
    print(f"block {block} {dtype}: numerical rank {rank}, sigma_min/sigma_max = {float(s[-1] / s[0]):.1e}")
    assert rank == block


@pytest.mark.parametrize("structure", STRUCTURES)
def test_paths_agree_in_float32_with_batch_axes(structure):
    layer = _layer(structure, 24, 20, 4, dtype=torch.float32)
    _perturb(layer)
    x = torch.randn(2, 3, 20, generator=torch.Generator().manual_seed(0))
    outputs = {}
    for path in ("dense", "fft"):
        layer.config.path = path
        outputs[path] = layer(x).detach()
    assert outputs["dense"].shape == (2, 3, 24)
    _assert_close(outputs["fft"].numpy(), outputs["dense"].numpy(), 1e-5, f"{structure} fft vs dense")


@pytest.mark.parametrize("path", ["dense", "fft"])
@pytest.mark.parametrize("structure", STRUCTURES)
def test_output_unchanged_at_init_and_pool_gradients_nonzero(structure, path):
    # 16 x 16, k = 4: no padding, and the pool (60) is smaller than the slots, so every entry is used.
    layer = _layer(structure, 16, 16, 4, pool_size=60, fixed_ratio=0.25, dtype=torch.float32, path=path)
    x = torch.randn(5, 16, generator=torch.Generator().manual_seed(1))
    y = layer(x)
    assert torch.equal(y, layer.base_layer(x))  # bit-identical, not just close
    assert not layer.delta_weight().detach().any()
    (y**2).sum().backward()
    grad = layer.pool.trainable.grad
    assert grad is not None and bool((grad != 0).all()), f"{int((grad == 0).sum())} of {grad.numel()} zero"
    assert layer.base_layer.weight.grad is None  # the base stays frozen


def test_fixed_part_still_shapes_the_update():
    """The fixed random part multiplies the trainable deviations (bilinear blocks)."""
    a = _layer("toeplitz_like", 16, 16, 4, pool_size=60, fixed_ratio=0.5, seed=0)
    b = _layer("toeplitz_like", 16, 16, 4, pool_size=60, fixed_ratio=0.5, seed=0)
    with torch.no_grad():
        b.pool.fixed.mul_(-1.0)  # same trainable values and deviations, different fixed part
    _perturb(a)
    _perturb(b)
    assert not torch.allclose(a.delta_weight(), b.delta_weight())


def test_bfloat16_base_weight_keeps_a_float32_update():
    layer = _layer("toeplitz", 16, 12, 2, dtype=torch.float32)
    layer.base_layer.to(torch.bfloat16)
    x = torch.randn(4, 12, generator=torch.Generator().manual_seed(2)).to(torch.bfloat16)
    assert torch.equal(layer(x), layer.base_layer(x))
    _perturb(layer)
    for path in ("dense", "fft"):
        layer.config.path = path
        y = layer(x)
        assert y.dtype == torch.bfloat16
        expected = layer.base_layer(x).float() + x.float() @ layer.delta_weight().detach().T
        _assert_close(y.float().detach().numpy(), expected.numpy(), 1e-2, f"bfloat16 {path}")
        assert layer.pool.trainable.dtype == torch.float32


@pytest.mark.parametrize("structure", ["toeplitz", "vandermonde_like"])
def test_merge_unmerge_round_trip(structure):
    layer = _layer(structure, 12, 10, 2, dtype=torch.float32)
    _perturb(layer)
    x = torch.randn(6, 10, generator=torch.Generator().manual_seed(3))
    w0 = layer.base_layer.weight.detach().clone()
    before = layer(x).detach()
    layer.merge()
    assert layer.merged
    _assert_close(layer(x).detach().numpy(), before.numpy(), 1e-6, "merged forward")
    with pytest.raises(ValueError, match="already merged"):
        layer.merge()
    layer.unmerge()
    torch.testing.assert_close(layer.base_layer.weight, w0, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="not merged"):
        layer.unmerge()


def _adapters_for_merge():
    yield "hydra toeplitz", _layer("toeplitz", 12, 10, 2, dtype=torch.float32)
    yield "hydra vandermonde_like", _layer("vandermonde_like", 12, 10, 2, dtype=torch.float32)
    torch.manual_seed(0)
    yield "lora", hydra.LoRALinear(torch.nn.Linear(10, 12), hydra.LoRAConfig(rank=2, target_modules=["x"]), "x")
    yield "ldr", hydra.LDRLinear(torch.nn.Linear(10, 12), hydra.LDRConfig(structure="toeplitz_like", target_modules=["x"]), "x")


def _move(adapter, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in adapter.trainable_tensors().values():
            t.add_(torch.randn(t.shape, generator=gen, dtype=t.dtype))


@pytest.mark.parametrize("edit", ["in-place step", "load_state_dict", "scale"])
def test_unmerge_restores_the_base_weight_when_the_adapter_changed_while_merged(edit):
    # merge adds s ΔW(θ); an edit while merged must not make unmerge subtract s ΔW(θ') instead.
    x = torch.randn(4, 10, generator=torch.Generator().manual_seed(5))
    for label, adapter in _adapters_for_merge():
        _move(adapter, 1)
        w0 = adapter.base_layer.weight.detach().clone()
        adapter.merge()
        if edit == "in-place step":
            _move(adapter, 2)
        elif edit == "load_state_dict":
            state = {k: v.clone() for k, v in adapter.state_dict().items()}
            for k in adapter.trainable_tensors():
                state[k] = state[k] + 1.0
            adapter.load_state_dict(state)
        else:
            adapter.scale = 3 * adapter.scale
        new_values = {k: t.detach().clone() for k, t in adapter.trainable_tensors().items()}
        with pytest.warns(UserWarning, match="changed while the update was merged"):
            adapter.unmerge()
        torch.testing.assert_close(adapter.base_layer.weight, w0, rtol=1e-6, atol=1e-6, msg=label)
        for k, t in adapter.trainable_tensors().items():     # the adapter keeps its new values
            assert torch.equal(t, new_values[k]), (label, k)
        expected = adapter.base_layer(x) + x @ adapter.delta_weight().T
        torch.testing.assert_close(adapter(x), expected, rtol=1e-5, atol=1e-5, msg=label)


def test_unmerge_without_changes_is_silent_and_refuses_a_reshaped_tensor():
    layer = _layer("toeplitz", 12, 10, 2, dtype=torch.float32)
    _perturb(layer)
    w0 = layer.base_layer.weight.detach().clone()
    layer.merge()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer.unmerge()
    torch.testing.assert_close(layer.base_layer.weight, w0, rtol=1e-6, atol=1e-6)
    layer.merge()
    merged = layer.base_layer.weight.detach().clone()
    layer.pool.trainable.data = torch.zeros(3)
    with pytest.raises(ValueError, match=r"\['pool.trainable'\] changed shape .* base weight is left as it is"):
        layer.unmerge()
    assert layer.merged and torch.equal(layer.base_layer.weight, merged)


def test_scale_multiplies_the_update():
    a = _layer("low_rank", 8, 8, 2, scale=1.0)
    b = _layer("low_rank", 8, 8, 2, scale=-2.5)
    _perturb(a)
    _perturb(b)
    torch.testing.assert_close(b.delta_weight(), -2.5 * a.delta_weight())


def test_layer_rejects_bad_arguments():
    with pytest.raises(TypeError, match="`base_layer` must be a torch.nn.Linear; got Conv1d"):
        hydra.HydraLinear(torch.nn.Conv1d(2, 2, 1), hydra.HydraConfig(target_modules=["x"]))
    with pytest.raises(ValueError, match=r"`k` = 4 blocks per axis is larger than the layer's in_features n = 3"):
        hydra.HydraLinear(torch.nn.Linear(3, 8), hydra.HydraConfig(k=4, target_modules=["x"]))
    with pytest.raises(TypeError, match="`config` must be a HydraConfig; got LoRAConfig"):
        hydra.HydraLinear(torch.nn.Linear(3, 8), hydra.LoRAConfig(target_modules=["x"]))


def test_auto_path_choices():
    assert hydra.auto_path("low_rank", (192, 192)) == "dense"
    assert hydra.auto_path("lora", (1, 1)) == "fft"
    for structure in ("toeplitz", "toeplitz_like", "hankel_like", "vandermonde_like", "cauchy_like"):
        assert hydra.auto_path(structure, (192, 192)) == "dense"
    assert hydra.auto_path("vandermonde_like", (10**6, 10**6)) == "dense"
    assert hydra.auto_path("toeplitz", (4096, 4096)) == "dense"
    assert hydra.auto_path("toeplitz_like", (1024, 1024)) == "dense"
    assert hydra.auto_path("toeplitz_like", (2048, 2048)) == "fft"
    assert hydra.auto_path("hankel_like", (2048, 1024)) == "fft"


# -- baselines ----------------------------------------------------------------------------------


def _baseline(config, m=12, n=10, dtype=torch.float64):
    base = torch.nn.Linear(n, m)
    return hydra.inject(torch.nn.ModuleDict({"x": base}), config)["x"].to(dtype)


@pytest.mark.parametrize("config", [
    hydra.LoRAConfig(rank=3, alpha=6, target_modules=["x"]),
    hydra.LDRConfig(structure="circulant", target_modules=["x"]),
    hydra.LDRConfig(structure="toeplitz_like", rank=2, target_modules=["x"]),
])
def test_baselines_start_at_zero_with_gradients_and_match_oracles(config):
    layer = _baseline(config)
    x = torch.randn(4, 10, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    y = layer(x)
    assert torch.equal(y, layer.base_layer(x))
    (y**2).sum().backward()
    grads = [p.grad for p in layer.trainable_tensors().values()]
    assert any(g is not None and bool(g.any()) for g in grads)
    with torch.no_grad():
        for p in layer.trainable_tensors().values():
            p.copy_(torch.randn(p.shape, dtype=p.dtype, generator=torch.Generator().manual_seed(p.numel())))
    params = {k: v.detach().numpy() for k, v in layer.trainable_tensors().items()}
    if isinstance(config, hydra.LoRAConfig):
        expected = config.scale * params["lora_B"] @ params["lora_A"]
    elif config.structure == "circulant":
        expected = scipy.linalg.circulant(params["c"])[:12, :10]  # first-column convention, p = 12
    else:
        e, f = 1.0, 0.0  # rectangular 12 x 10: the core's never-singular default
        expected = scipy.linalg.solve_sylvester(_shift(12, e), -_shift(10, f), params["G"] @ params["H"])
    _assert_close(layer.delta_weight().detach().numpy(), expected, 1e-12, f"{config} dense")
    fast = layer._delta_apply(torch.eye(10, dtype=torch.float64)).detach().numpy().T * layer.scale
    _assert_close(fast, expected, 1e-12, f"{config} fast")


def test_baseline_parameter_counts():
    assert _baseline(hydra.LoRAConfig(rank=4, target_modules=["x"]), 768, 768).n_trainable() == 4 * (768 + 768)
    assert _baseline(hydra.LDRConfig(structure="circulant", target_modules=["x"]), 768, 3072).n_trainable() == 3072
    assert _baseline(hydra.LDRConfig(structure="toeplitz_like", rank=2, target_modules=["x"]), 5, 7).n_trainable() == 24


@pytest.mark.parametrize("path", ["dense", "fft"])
@pytest.mark.parametrize("structure", STRUCTURES)
def test_gradcheck_pool_and_input(structure, path):
    # Rectangular 7 x 5, k = 2: blocks 4 x 3 (padded), so the rectangular builders are covered too.
    layer = _layer(structure, 7, 5, 2, rank=1, pool_size=20, fixed_ratio=0.25, path=path)
    _perturb(layer)
    x = torch.randn(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(6), requires_grad=True)
    pool = layer.pool.trainable

    def f(trainable, inputs):
        layer.pool._parameters["trainable"] = trainable
        try:
            return layer(inputs)
        finally:
            layer.pool._parameters["trainable"] = pool

    assert torch.autograd.gradcheck(f, (pool.detach().clone().requires_grad_(True), x))
