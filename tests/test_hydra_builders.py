"""The O(R·bm·bn) dense block builders and their hand-written adjoints.

``hydra.blocks.shift_toeplitz_like_dense`` (Toeplitz-like and, with a column reversal,
Hankel-like blocks) and ``ldr.nn.paired_vandermonde_dense`` run custom autograd functions whose
backward passes are written out. The HyDRA step's gradient tests compare against autograd
through these same builders, so here they meet independent oracles: the Sylvester equation
solved densely by SciPy, the Vandermonde Krylov form multiplied out from its definition, finite
differences (gradcheck) and second differences (gradgradcheck).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from hydra.blocks import HankelLikeBlocks, shift_toeplitz_like_dense  # noqa: E402
from ldr.nn import paired_vandermonde_dense, vandermonde_nodes, vandermonde_tables  # noqa: E402

BLOCK_SIZES = st.sampled_from([1, 2, 3, 4, 5, 7, 8, 12])
# (G batch, H batch): equal, broadcast against each other, and unbatched.
BATCHES = st.sampled_from([((), ()), ((2,), (2,)), ((2, 1), (1, 3)), ((3,), ())])


def shift(n, f):
    """Z_f as a dense NumPy matrix."""
    Z = np.eye(n, k=-1)
    Z[0, n - 1] = f
    return Z


def generators(seed, bm, bn, R, batches, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    G = torch.randn(*batches[0], bm, R, generator=gen, dtype=torch.float64).to(dtype)
    H = torch.randn(*batches[1], R, bn, generator=gen, dtype=torch.float64).to(dtype)
    return G, H


def sylvester_oracle(A, B, G, H):
    """W with A W - W B = G H, block by block, from scipy.linalg.solve_sylvester."""
    GH = np.broadcast_arrays(*np.broadcast_arrays(G.numpy() @ H.numpy()))[0]
    out = np.empty_like(GH)
    for index in np.ndindex(GH.shape[:-2]):
        out[index] = scipy.linalg.solve_sylvester(A, -B, GH[index])
    return out


def toeplitz_like_case(bm, bn, G, H):
    f = -1.0 if bm == bn else 0.0
    return shift_toeplitz_like_dense(G, H, f), (shift(bm, 1.0), shift(bn, f))


def hankel_like_case(bm, bn, G, H):
    return HankelLikeBlocks(bm, bn, G.shape[-1]).dense(G, H, None), (shift(bm, 1.0), shift(bn, 0.0).T)


@pytest.mark.parametrize("case", [toeplitz_like_case, hankel_like_case], ids=["toeplitz_like", "hankel_like"])
@settings(max_examples=15)
@given(bm=BLOCK_SIZES, bn=BLOCK_SIZES, R=st.integers(1, 3), batches=BATCHES, seed=st.integers(0, 2**16))
def test_shift_builders_solve_the_displacement_equation(case, bm, bn, R, batches, seed):
    G, H = generators(seed, bm, bn, R, batches)
    W, (A, B) = case(bm, bn, G, H)
    oracle = sylvester_oracle(A, B, G, H)
    assert W.shape == oracle.shape
    np.testing.assert_allclose(W.numpy(), oracle, rtol=0, atol=1e-12 * max(1.0, np.abs(oracle).max()))


def vandermonde_oracle(G, H, m, n, f):
    """Real rows of sum_l diag(g~_l) V(w) C_f(J h_l), multiplied out from the definition."""
    w = vandermonde_nodes(m)
    p, h = m // 2, len(w)
    V = w[:, None] ** np.arange(n)[None, :]
    Z = shift(n, f)
    G, H = np.broadcast_arrays(G.numpy()[..., None], H.numpy()[..., None, :, :])  # noqa: PLW2901
    G, H = G[..., 0], H[..., 0, :, :]
    gt = np.concatenate([G[..., :p, :], G[..., 2 * p :, :]], -2) + 1j * np.concatenate(
        [G[..., p : 2 * p, :], np.zeros_like(G[..., 2 * p :, :])], -2)
    out = np.empty(G.shape[:-2] + (m, n))
    for index in np.ndindex(G.shape[:-2]):
        Y = np.zeros((h, n), dtype=complex)
        for l in range(G.shape[-1]):  # noqa: E741
            Jh = H[index][l, ::-1]
            C = sum(Jh[k] * np.linalg.matrix_power(Z, k) for k in range(n))
            Y += gt[index][:, l, None] * (V @ C)
        out[index] = np.concatenate([Y.real[:p], Y.imag[:p], Y.real[p:]])
    return out


@settings(max_examples=15)
@given(m=BLOCK_SIZES, n=BLOCK_SIZES, R=st.integers(1, 3), batches=BATCHES, seed=st.integers(0, 2**16),
       f=st.sampled_from([1.0, -1.0]))
def test_paired_vandermonde_matches_its_definition(m, n, R, batches, seed, f):
    G, H = generators(seed, m, n, R, batches)
    W = paired_vandermonde_dense(G, H, vandermonde_tables(m, n, f))
    oracle = vandermonde_oracle(G, H, m, n, f)
    assert W.shape == oracle.shape
    np.testing.assert_allclose(W.numpy(), oracle, rtol=0, atol=1e-12 * max(1.0, np.abs(oracle).max()))


BUILDERS = {
    "toeplitz_like": lambda bm, bn: (lambda G, H: shift_toeplitz_like_dense(G, H, -1.0 if bm == bn else 0.0)),
    "hankel_like": lambda bm, bn: (lambda G, H: HankelLikeBlocks(bm, bn, G.shape[-1]).dense(G, H, None)),
    "vandermonde_like": lambda bm, bn: (lambda G, H: paired_vandermonde_dense(G, H, vandermonde_tables(bm, bn, 1.0))),
}


@pytest.mark.parametrize("structure", sorted(BUILDERS))
@pytest.mark.parametrize("bm, bn, batches", [(5, 5, ((), ())), (6, 4, ((2,), (2,))), (3, 7, ((2, 1), (1, 2))),
                                              (1, 1, ((), ()))])
def test_builder_adjoints_by_finite_differences(structure, bm, bn, batches):
    """gradcheck (first derivatives) and gradgradcheck (the backward is itself differentiable)."""
    G, H = generators(7, bm, bn, 2, batches)
    G.requires_grad_(True)
    H.requires_grad_(True)
    build = BUILDERS[structure](bm, bn)
    assert torch.autograd.gradcheck(build, (G, H))
    assert torch.autograd.gradgradcheck(build, (G, H))


@pytest.mark.parametrize("structure", sorted(BUILDERS))
def test_builders_float32_agree_with_float64(structure):
    G, H = generators(3, 48, 48, 2, ((4, 4), (4, 4)))
    build = BUILDERS[structure](48, 48)
    W64 = build(G, H)
    G32, H32 = G.float().requires_grad_(True), H.float().requires_grad_(True)
    W32 = build(G32, H32)
    assert W32.dtype == torch.float32
    assert (W32.double() - W64).norm() <= 1e-5 * W64.norm()
    dW = torch.randn(W64.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    G.requires_grad_(True)
    H.requires_grad_(True)
    grads64 = torch.autograd.grad(build(G, H), (G, H), dW)
    grads32 = torch.autograd.grad(W32, (G32, H32), dW.float())
    for g64, g32 in zip(grads64, grads32):
        assert (g32.double() - g64).norm() <= 1e-5 * g64.norm()


@pytest.mark.parametrize("structure", sorted(BUILDERS))
def test_builders_on_every_device_agree_with_the_cpu(structure, device):
    """The cached roll indices and tables follow the generators' device (CUDA runs when present)."""
    G, H = generators(5, 12, 8, 2, ((2,), (2,)))
    build = BUILDERS[structure](12, 8)
    reference = build(G, H)
    Gd, Hd = G.to(device).requires_grad_(True), H.to(device).requires_grad_(True)
    W = build(Gd, Hd)
    assert W.device.type == torch.device(device).type
    torch.testing.assert_close(W.cpu(), reference, rtol=1e-12, atol=1e-12)
    W.square().sum().backward()
    G.requires_grad_(True)
    H.requires_grad_(True)
    build(G, H).square().sum().backward()
    torch.testing.assert_close(Gd.grad.cpu(), G.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(Hd.grad.cpu(), H.grad, rtol=1e-12, atol=1e-12)
