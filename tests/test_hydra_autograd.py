"""hydra.autograd: the one-GEMM step's gradients against autograd through the dense ΔW.

Every structure and gradient route, square / rectangular / non-divisible shapes, a fixed pool
part and a shared pool; gradcheck in float64; double backward refused; no saved m×n tensor;
the old and new paths train identically; the half-precision (split) mode.
"""

import warnings

import pytest
import torch
import torch.nn.functional as F

import hydra
from hydra.autograd import GRADIENT_ROUTES, gradient_route, toeplitz_block_correlation

STRUCTURES = list(hydra.HYDRA_STRUCTURES)
SHAPES = [(12, 12, 3), (10, 13, 3), (13, 7, 2), (9, 9, 1)]
#: The structured routes each structure admits (every one also takes "dense").
ROUTES = {"toeplitz": ["correlation"], "low_rank": ["factored"], "toeplitz_like": ["circulant"],
          "hankel_like": ["circulant"]}


def _layer(structure, m, n, k, dtype=torch.float64, fixed_ratio=0.3, pool=None, index_map=None, name="x"):
    gen = torch.Generator().manual_seed(m * 100 + n * 10 + k)
    base = torch.nn.Linear(n, m)
    with torch.no_grad():
        base.weight.copy_(torch.randn(m, n, generator=gen))
        base.bias.copy_(torch.randn(m, generator=gen))
    cfg = hydra.HydraConfig(structure=structure, k=k, rank=2, pool_size=40, fixed_ratio=fixed_ratio,
                            target_modules=["x"], path="dense", shared_pool=pool is not None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small layers: pools larger than the slots, padded blocks
        layer = hydra.HydraLinear(base, cfg, name=name, pool=pool, index_map=index_map)
    return layer.to(dtype)


def _perturb(pool, seed=1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        pool.trainable.add_(0.5 * torch.randn(pool.trainable.shape, generator=gen, dtype=pool.trainable.dtype))


def _reference(layers, x, upstream):
    """Gradients (x, pool) by plain autograd through F.linear with W0 + s ΔW (the oracle)."""
    x = x.clone().requires_grad_(True)
    pool = layers[0].pool.trainable
    total = 0
    for layer, up in zip(layers, upstream):
        W = layer.base_layer.weight + layer.delta_weight()
        total = total + (F.linear(x, W, layer.base_layer.bias) * up).sum()
    return torch.autograd.grad(total, (x, pool))


def _fast(layers, x, upstream, route):
    x = x.clone().requires_grad_(True)
    total = 0
    for layer, up in zip(layers, upstream):
        layer.gradient_route = route
        total = total + (layer(x) * up).sum()
    return torch.autograd.grad(total, (x, layers[0].pool.trainable))


def _generic_then_fast(layer, x, up):
    """(y, dx, dpool) by the generic autograd path, then by hydra.autograd's function."""
    results = []
    for generic in (True, False):
        if generic:
            layer._dense_step = lambda x, dtype, merged: None  # AdapterLinear's generic path
        else:
            del layer._dense_step
        xx = x.clone().requires_grad_(True)
        y = layer(xx)
        results.append((y, *torch.autograd.grad((y.float() * up.float()).sum(), (xx, layer.pool.trainable))))
    return results


def _close(a, b, tol=1e-12):
    a, b = a.detach(), b.detach()
    err = float((a - b).norm() / max(float(b.norm()), 1e-300))
    assert err <= tol, f"relative error {err:.2e} > {tol:.0e}"


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_gradient_routes_match_dense_autograd(structure, shape):
    layer = _layer(structure, *shape)
    _perturb(layer.pool)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, shape[1], generator=gen, dtype=torch.float64)
    up = torch.randn(2, 5, shape[0], generator=gen, dtype=torch.float64)
    expected = _reference([layer], x, [up])
    for route in ["dense", *ROUTES.get(structure, [])]:
        got = _fast([layer], x, [up], route)
        _close(got[0], expected[0])
        _close(got[1], expected[1])
        assert float(got[1].abs().max()) > 0


@pytest.mark.parametrize("structure", ["toeplitz", "toeplitz_like", "low_rank", "cauchy_like"])
def test_shared_pool_gradient_sums_over_layers(structure):
    pool = hydra.ParameterPool(40, n_fixed=10, seed=0, name="shared").double()
    layers = []
    for name, (m, n) in (("a", (12, 10)), ("b", (10, 12))):
        slots = _layer(structure, m, n, 2).n_slots
        index = (torch.arange(slots) * 7 + len(layers)) % 40
        layers.append(_layer(structure, m, n, 2, pool=pool, index_map=index.numpy(), name=name))
    _perturb(pool)
    gen = torch.Generator().manual_seed(4)
    xs = [torch.randn(6, 10, generator=gen, dtype=torch.float64), torch.randn(6, 12, generator=gen, dtype=torch.float64)]
    ups = [torch.randn(6, 12, generator=gen, dtype=torch.float64), torch.randn(6, 10, generator=gen, dtype=torch.float64)]
    total = 0
    for layer, xi, up in zip(layers, xs, ups):
        W = layer.base_layer.weight + layer.delta_weight()
        total = total + (F.linear(xi, W, layer.base_layer.bias) * up).sum()
    (expected,) = torch.autograd.grad(total, (pool.trainable,))
    for route in ["dense", *ROUTES.get(structure, [])]:
        total = 0
        for layer, xi, up in zip(layers, xs, ups):
            layer.gradient_route = route
            total = total + (layer(xi) * up).sum()
        (got,) = torch.autograd.grad(total, (pool.trainable,))
        _close(got, expected)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_output_unchanged_at_init_and_gradient_nonzero(structure):
    layer = _layer(structure, 10, 13, 3, dtype=torch.float32)
    x = torch.randn(4, 13, requires_grad=True)
    y = layer(x)
    assert torch.equal(y, layer.base_layer(x))
    y.square().sum().backward()
    assert float(layer.pool.trainable.grad.abs().max()) > 0


@pytest.mark.parametrize("structure", ["toeplitz", "hankel_like", "low_rank", "vandermonde_like"])
def test_gradcheck_float64(structure):
    layer = _layer(structure, 7, 6, 2)
    _perturb(layer.pool)
    layer.gradient_route = ROUTES.get(structure, ["dense"])[0]
    x = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    # The pool enters as an input of its own (functional_call); its values equal the layer's
    # parameter, which the backward pass reads to rebuild ΔW.
    t = layer.pool.trainable.detach().clone().requires_grad_(True)

    def f(x, t):
        return torch.func.functional_call(layer, {"pool.trainable": t}, (x,))

    assert torch.autograd.gradcheck(f, (x, t))


def test_double_backward_refused():
    layer = _layer("toeplitz", 6, 6, 2)
    x = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    (gx,) = torch.autograd.grad(layer(x).square().sum(), (x,), create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        gx.sum().backward()


def test_no_saved_full_size_tensor():
    m, n = 24, 20
    layer = _layer("toeplitz_like", m, n, 2, dtype=torch.float32)
    weight = layer.base_layer.weight
    saved = []

    def pack(t):
        saved.append(t)
        return t

    x = torch.randn(5, n, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = layer(x)
    big = [t for t in saved if t.numel() >= m * n and t.data_ptr() != weight.data_ptr() and t.data_ptr() != x.data_ptr()]
    assert not big, [tuple(t.shape) for t in big]
    y.sum().backward()


def test_inplace_pool_update_before_backward_raises():
    layer = _layer("toeplitz", 6, 6, 2)
    y = layer(torch.randn(3, 6, dtype=torch.float64))
    with torch.no_grad():
        layer.pool.trainable.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_unknown_route_raises():
    layer = _layer("toeplitz", 6, 6, 2)
    layer.gradient_route = "fastest"
    with pytest.raises(ValueError, match="`gradient_route` must be None or one of"):
        layer(torch.randn(2, 6, dtype=torch.float64))


def test_gradient_route_rule():
    assert gradient_route("low_rank", (64, 64), (16, 16)) == "factored"
    assert gradient_route("toeplitz", (64, 64), (16, 16)) == "dense"
    assert gradient_route("toeplitz", (768, 768), (192, 192)) == "correlation"
    assert gradient_route("toeplitz_like", (768, 768), (192, 192)) == "dense"
    assert gradient_route("hankel_like", (4096, 4096), (2048, 2048)) == "circulant"
    assert set(GRADIENT_ROUTES) == {"dense", "correlation", "factored", "circulant"}


@pytest.mark.parametrize("bm, bn, k, chunk, tile", [(5, 3, 2, 2, 4), (16, 16, 1, 4, 3), (7, 11, 3, 16, 64), (1, 1, 2, 16, 2)])
def test_toeplitz_block_correlation_against_diagonal_sums(bm, bn, k, chunk, tile):
    gen = torch.Generator().manual_seed(bm * 31 + bn)
    dy = torch.randn(11, k, bm, generator=gen, dtype=torch.float64)
    x = torch.randn(11, k, bn, generator=gen, dtype=torch.float64)
    M = torch.einsum("tpi,tqj->pqij", dy, x)
    # Diagonal d of T[i, j] = t[i - j + bn - 1]: offset j - i = bn - 1 - d.
    expected = torch.stack([M.diagonal(offset=bn - 1 - d, dim1=-2, dim2=-1).sum(-1) for d in range(bm + bn - 1)], -1)
    _close(toeplitz_block_correlation(dy, x, chunk=chunk, tile=tile), expected)


@pytest.mark.parametrize("structure", ["toeplitz", "toeplitz_like", "low_rank"])
def test_training_curves_of_old_and_new_paths_agree(structure):
    def train(new_path):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4)).double()
        cfg = hydra.HydraConfig(structure=structure, k=2, rank=1, pool_size=24, fixed_ratio=0.25,
                                target_modules=["0"], path="dense")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hydra.inject(model, cfg)
        adapter = model[0]
        if not new_path:
            adapter._dense_step = lambda x, dtype, merged: None  # the generic autograd path
        else:
            adapter.gradient_route = ROUTES.get(structure, ["dense"])[0]
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.05)
        gen = torch.Generator().manual_seed(1)
        X = torch.randn(32, 16, generator=gen, dtype=torch.float64)
        Y = torch.randn(32, 4, generator=gen, dtype=torch.float64)
        losses = []
        for _ in range(15):
            loss = F.mse_loss(model(X), Y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        return torch.tensor(losses, dtype=torch.float64)

    old, new = train(False), train(True)
    assert float(old[-1]) < float(old[0])  # it trains
    _close(new, old, tol=1e-10)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_base_layer_split_mode_matches_generic_path(dtype):
    layer = _layer("toeplitz", 12, 10, 2, dtype=torch.float32)
    layer.base_layer.to(dtype)
    _perturb(layer.pool)
    x = torch.randn(4, 10).to(dtype)
    up = torch.randn(4, 12).to(dtype)
    (y0, gx0, gp0), (y1, gx1, gp1) = _generic_then_fast(layer, x, up)
    assert y1.dtype == dtype and gx1.dtype == dtype and gp1.dtype == torch.float32
    assert torch.equal(y1, y0)
    _close(gp1.double(), gp0.double(), tol=1e-5)
    # dX: both add a float32 update to a half-precision product; summation orders differ.
    _close(gx1.double(), gx0.double(), tol=1e-2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("structure", ["toeplitz", "toeplitz_like", "low_rank"])
def test_step_on_device_matches_generic_path(device, dtype, structure):
    """The same code on CPU and CUDA: float32 merged GEMM, bfloat16 base + float32 update."""
    layer = _layer(structure, 24, 20, 2, dtype=torch.float32).to(device)
    layer.base_layer.to(dtype)
    _perturb(layer.pool)
    layer.gradient_route = ROUTES.get(structure, ["dense"])[0]
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(6, 20, generator=gen).to(device=device, dtype=dtype)
    up = torch.randn(6, 24, generator=gen).to(device=device)
    (y0, gx0, gp0), (y1, gx1, gp1) = _generic_then_fast(layer, x, up)
    assert y1.dtype == dtype and y1.device.type == torch.device(device).type
    tol = 1e-5 if dtype == torch.float32 else 1e-2  # bfloat16 products, summed in other orders
    _close(y1.double(), y0.double(), tol=tol)
    _close(gx1.double(), gx0.double(), tol=tol)
    _close(gp1.double(), gp0.double(), tol=1e-4)
