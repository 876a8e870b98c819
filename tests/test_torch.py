"""torch backend: parity with NumPy, autograd (gradcheck and a dense oracle), cache safety.

The contract suite (test_contract.py) already runs every property on torch; this file covers
what only torch has: gradients with respect to generators, nodes and inputs, and cached
spectra that must never go stale (in-place updates, repeated backward passes).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ldr
from cases import ArrayBackend, build_case, random_array, shift_dense
from conftest import HAVE_TORCH, NO_TORCH
from strategies import STRUCTURES, case_params
from tolerance import as_numpy, assert_close

pytestmark = pytest.mark.skipif(not HAVE_TORCH, reason=NO_TORCH)

if HAVE_TORCH:
    import torch

GENERATOR_STRUCTURES = ("low_rank", "toeplitz_like", "toeplitz_like_rect", "hankel_like", "vandermonde_like",
                        "cauchy_like")


# -- parity with NumPy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("structure", STRUCTURES)
@given(data=st.data())
def test_parity_with_numpy(torch_backend, structure, data):
    """Identical inputs give the same dense matrix and products on NumPy and torch (both float32/64)."""
    params = data.draw(case_params(structure), label="params")
    np_case = build_case(params, ArrayBackend("numpy"))
    t_case = build_case(params, torch_backend)
    m, n = np_case.shape
    x64 = random_array(np.random.default_rng(params.seed + 1), (3, n), params.dtype)
    y64 = random_array(np.random.default_rng(params.seed + 2), (m, 3), params.dtype)
    pairs = [
        ("dense", np_case.W.dense(), t_case.W.dense(), 1.0),
        ("matvec", np_case.W.matvec(x64.astype(params.dtype)),
         t_case.W.matvec(torch_backend.asarray(x64, params.dtype)), np.linalg.norm(x64)),
        ("W.T @ Y", np_case.W.T @ y64.astype(params.dtype), t_case.W.T @ torch_backend.asarray(y64, params.dtype),
         np.linalg.norm(y64)),
    ]
    for what, a, b, x_norm in pairs:
        assert str(b.dtype) == f"torch.{a.dtype}"
        # Two roundings of the same algorithm: twice the tolerance of one against the oracle.
        assert_close(b, as_numpy(a), scale=np_case.norm * x_norm, dtype=params.dtype, factor=2.0, what=what)


# -- autograd ------------------------------------------------------------------------------------------


def _make(structure, G, H, nodes):
    """Build W from tensors; nodes are (v,) or (v, u) or () depending on the structure."""
    if structure == "low_rank":
        return ldr.low_rank(G, H)
    if structure in ("toeplitz_like", "toeplitz_like_rect"):
        return ldr.toeplitz_like(G, H, e=1.0, f=-1.0 if G.shape[-2] == H.shape[-1] else 0.0)
    if structure == "hankel_like":
        return ldr.hankel_like(G, H, e=-1.0, f=0.5)
    if structure == "vandermonde_like":
        return ldr.LDRMatrix(ldr.Diagonal(nodes[0]), ldr.Shift(H.shape[-1], -1.0), G, H)
    return ldr.LDRMatrix(ldr.Diagonal(nodes[0]), ldr.Diagonal(nodes[1], name="u"), G, H)


def _inputs(structure, m, n, r, seed, requires_grad=True):
    """float64 tensors G, H, nodes, x, y (nodes chosen well inside their safe regions)."""
    rng = np.random.default_rng(seed)
    t = lambda a: torch.tensor(a, dtype=torch.float64, requires_grad=requires_grad)  # noqa: E731
    G, H = t(rng.standard_normal((m, r))), t(rng.standard_normal((r, n)))
    nodes = ()
    if structure == "vandermonde_like":
        nodes = (t(rng.uniform(0.5, 0.9, m)),)
    elif structure == "cauchy_like":
        nodes = (t(rng.uniform(-1, 1, m)), t(rng.uniform(1.5, 2.5, n)))
    x, y = t(rng.standard_normal((2, n))), t(rng.standard_normal((2, m)))
    return G, H, nodes, x, y


def _sizes(structure):
    return (5, 3) if structure in ("toeplitz_like_rect", "hankel_like", "vandermonde_like", "cauchy_like") else (4, 4)


@pytest.mark.parametrize("structure", GENERATOR_STRUCTURES)
def test_gradcheck_generators_nodes_and_x(structure):
    """torch.autograd.gradcheck in float64 for matvec and rmatvec w.r.t. G, H, nodes and x."""
    m, n = _sizes(structure)
    G, H, nodes, x, y = _inputs(structure, m, n, 2, seed=11)

    def matvec(G, H, x, *nodes):
        return _make(structure, G, H, nodes).matvec(x)

    def rmatvec(G, H, y, *nodes):
        return _make(structure, G, H, nodes).rmatvec(y)

    assert torch.autograd.gradcheck(matvec, (G, H, x, *nodes), eps=1e-6, atol=1e-7)
    assert torch.autograd.gradcheck(rmatvec, (G, H, y, *nodes), eps=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "make, shapes, offsets",
    [
        pytest.param(lambda c, r: ldr.toeplitz(c, r), ((5,), (4,)), (0.0, 0.0), id="toeplitz"),
        pytest.param(lambda c, r: ldr.hankel(c, r), ((4,), (5,)), (0.0, 0.0), id="hankel"),
        pytest.param(lambda c: ldr.circulant(c), ((5,),), (0.0,), id="circulant"),
        pytest.param(lambda v: ldr.vandermonde(v, 4, f=-1.0), ((3,),), (0.0,), id="vandermonde"),
        # u is shifted by 2 to stay away from v (the Cauchy matrix has a pole at v_i = u_j).
        pytest.param(lambda v, u: ldr.cauchy(v, u), ((3,), (4,)), (0.0, 2.0), id="cauchy"),
    ],
)
def test_gradcheck_classic_constructors(make, shapes, offsets):
    """Gradients reach the classic constructors' data (columns, rows, nodes) through their generators."""
    rng = np.random.default_rng(3)
    args = [torch.tensor(rng.uniform(0.5, 0.9, s) + o, dtype=torch.float64, requires_grad=True)
            for s, o in zip(shapes, offsets)]
    x = torch.tensor(rng.standard_normal(make(*args).shape[1]), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, *a: make(*a) @ x, (x, *args), eps=1e-6, atol=1e-7)
    assert torch.autograd.gradcheck(lambda x, *a: make(*a).T @ (make(*a) @ x), (x, *args), eps=1e-6, atol=1e-7)


def _kron_oracle(A, B, G, H):
    """Dense W from vec(W) = (I ⊗ A − Bᵀ ⊗ I)⁻¹ vec(G H), differentiable in torch (column-major vec)."""
    m, n = A.shape[-1], B.shape[-1]
    K = torch.kron(torch.eye(n, dtype=A.dtype), A) - torch.kron(B.T.contiguous(), torch.eye(m, dtype=A.dtype))
    vec = torch.linalg.solve(K, (G @ H).T.reshape(-1))
    return vec.reshape(n, m).T


def _dense_operators(structure, m, n, nodes):
    if structure == "low_rank":
        return torch.eye(m, dtype=torch.float64), torch.zeros(n, n, dtype=torch.float64)
    if structure in ("toeplitz_like", "toeplitz_like_rect"):
        f = -1.0 if m == n else 0.0
        return torch.tensor(shift_dense(m, 1.0)), torch.tensor(shift_dense(n, f))
    if structure == "hankel_like":
        return torch.tensor(shift_dense(m, -1.0)), torch.tensor(shift_dense(n, 0.5, transpose=True))
    if structure == "vandermonde_like":
        return torch.diag(nodes[0]), torch.tensor(shift_dense(n, -1.0))
    return torch.diag(nodes[0]), torch.diag(nodes[1])


@pytest.mark.parametrize("structure", GENERATOR_STRUCTURES)
def test_gradients_match_dense_oracle(structure):
    """∂⟨W x, y⟩ w.r.t. G, H, nodes, x equals the gradient through a dense Kronecker solve."""
    m, n = _sizes(structure)
    G, H, nodes, x, y = _inputs(structure, m, n, 3, seed=5)
    leaves = (G, H, x, *nodes)
    fast = torch.autograd.grad((_make(structure, G, H, nodes).matvec(x) * y).sum(), leaves)
    A, B = _dense_operators(structure, m, n, nodes)
    W = _kron_oracle(A, B, G, H)
    dense = torch.autograd.grad(((x @ W.T) * y).sum(), leaves)
    for name, a, b in zip(["G", "H", "x", "v", "u"], fast, dense):
        scale = float(b.norm()) + 1e-300
        assert_close(a, as_numpy(b), scale=scale, dtype="float64", factor=10.0, what=f"d/d{name}")


# -- cache safety ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("structure", GENERATOR_STRUCTURES)
def test_two_backward_passes_through_one_matrix(torch_backend, structure):
    """One W with requires_grad generators serves two forward/backward passes; gradients add up."""
    m, n = _sizes(structure)
    G, H, nodes, x, _ = _inputs(structure, m, n, 2, seed=7)
    G, H = G.detach().to(torch_backend.device).requires_grad_(), H.detach().to(torch_backend.device).requires_grad_()
    nodes = tuple(v.detach().to(torch_backend.device).requires_grad_() for v in nodes)
    x = x.detach().to(torch_backend.device)
    W = _make(structure, G, H, nodes)
    (W @ x.T).square().sum().backward()
    first = [t.grad.clone() for t in (G, H, *nodes)]
    (W @ x.T).square().sum().backward()  # would raise if a cached spectrum held the freed graph
    for t, g in zip((G, H, *nodes), first):
        torch.testing.assert_close(t.grad, 2 * g, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("structure", GENERATOR_STRUCTURES)
def test_inplace_update_is_seen_by_next_product(torch_backend, structure):
    """An optimizer-style in-place update (under no_grad) of G, H or nodes changes the next product."""
    m, n = _sizes(structure)
    G, H, nodes, x, _ = _inputs(structure, m, n, 2, seed=9, requires_grad=False)
    G, H, x = G.to(torch_backend.device), H.to(torch_backend.device), x.to(torch_backend.device)
    nodes = tuple(v.to(torch_backend.device) for v in nodes)
    W = _make(structure, G, H, nodes)
    for name, tensor in [("G", G), ("H", H)] + [(f"nodes[{i}]", v) for i, v in enumerate(nodes)]:
        with torch.no_grad():
            before = W.matvec(x)  # fills the cache
            tensor.mul_(1.1)
            after = W.matvec(x)
        fresh = _make(structure, G.clone(), H.clone(), tuple(v.clone() for v in nodes)).matvec(x)
        assert not torch.allclose(after, before), f"{structure}: update of {name} not seen"
        torch.testing.assert_close(after, fresh, rtol=1e-12, atol=1e-12)


def test_inplace_update_with_grad_enabled_uses_new_values():
    """A training step: backward, in-place SGD update, next forward sees the new H (Hankel-like)."""
    G, H, _, x, _ = _inputs("hankel_like", 5, 3, 2, seed=1)
    W = ldr.hankel_like(G, H, e=-1.0, f=0.5)
    for _ in range(2):
        loss = (W.matvec(x) ** 2).sum()
        loss.backward()
        with torch.no_grad():
            G -= 0.1 * G.grad
            H -= 0.1 * H.grad
        G.grad = H.grad = None
    expected = ldr.hankel_like(G.detach().clone(), H.detach().clone(), e=-1.0, f=0.5).matvec(x.detach())
    torch.testing.assert_close(W.matvec(x.detach()).detach(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("structure", GENERATOR_STRUCTURES)
def test_numpy_generators_are_private_read_only_copies(structure):
    """NumPy: W.G / W.H are read-only copies, so changing the caller's arrays cannot stale the cache."""
    m, n = _sizes(structure)
    G, H, nodes, x, _ = (a.detach().numpy() if hasattr(a, "detach") else tuple(v.detach().numpy() for v in a)
                         for a in _inputs(structure, m, n, 2, seed=4, requires_grad=False))
    W = _make(structure, G, H, nodes)
    before = W.matvec(x)
    assert not W.G.flags.writeable and not W.H.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        W.G[0, 0] = 1.0
    G *= 2.0
    H += 1.0
    np.testing.assert_array_equal(W.matvec(x), before)
