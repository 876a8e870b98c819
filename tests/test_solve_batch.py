"""Batched elimination: ``ldr.gko.factor_cauchy_like_batch`` and the batched paths of ldr.solve (issue 17).

A batch of W is factored in one Python-level step per block of pivots for all entries at once.
The tests make it lie if they can: every entry's factorisation must equal the one-at-a-time
factorisation (same pivots, same solutions), an entry that meets a tiny or zero pivot must be
handed to the one-entry path (dense tail, singularity report), right-hand sides must broadcast
against W's batch axes, and the parity of each row permutation (behind the determinant's sign)
must be right for long cycles.
"""

from __future__ import annotations

import numpy as np
import pytest

import ldr
import ldr.gko as gko
import ldr.solvers as solvers
from conftest import HAVE_TORCH, NO_TORCH
from tolerance import as_numpy


def cauchy_batch(backend, B, n, r, seed, circulant):
    """Nodes and generators of B Cauchy-like matrices, as the solver's DFT route or with general nodes."""
    rng = np.random.default_rng(seed)
    c = np.exp(1j * np.pi / n)
    omega = np.exp(-2j * np.pi * np.arange(n) / n)
    if circulant:
        v, u = np.broadcast_to(omega, (B, n)), c * omega
    else:  # the division path of the kernel: row nodes turned a little, differently per entry
        v, u = omega * np.exp(0.2j * np.pi / n * np.arange(B))[:, None], c * omega
    G = rng.standard_normal((B, n, r)) + 1j * rng.standard_normal((B, n, r))
    H = rng.standard_normal((B, r, n)) + 1j * rng.standard_normal((B, r, n))
    arrays = [backend.asarray(np.ascontiguousarray(a), "complex128") for a in (v, u, G, H)]
    return arrays, (c if circulant else None)


def one_at_a_time(arrays, circulant, bk):
    v, u, G, H = arrays
    return [gko.factor_cauchy_like(v[i], u, G[i], H[i], bk, circulant=circulant) for i in range(G.shape[0])]


@pytest.mark.parametrize("n", [1, 2, 33, 70])
@pytest.mark.parametrize("circulant", [True, False])
def test_batch_equals_one_at_a_time(n, circulant, backend):
    arrays, c = cauchy_batch(backend, 3, n, 2, seed=n, circulant=circulant)
    bk = ldr.backends.get_backend(arrays[0])
    batch = gko.factor_cauchy_like_batch(*arrays, bk, circulant=c)
    singles = one_at_a_time(arrays, c, bk)
    assert not batch.alone.any()
    Y = np.random.default_rng(0).standard_normal((3, n, 2)) + 0j
    Yb = backend.asarray(Y, "complex128")
    for transpose in (False, True):
        together = as_numpy(batch.solve(Yb, transpose))
        for i, lu in enumerate(singles):
            alone = as_numpy(lu.solve(Yb[i], transpose))
            assert np.linalg.norm(together[i] - alone) <= 1e-12 * np.linalg.norm(alone)
    for i, lu in enumerate(singles):
        assert np.allclose(batch.pivots()[i], as_numpy(lu.pivots), rtol=1e-12, atol=0)
        assert batch.parity()[i] == lu.parity()


def test_entry_with_a_tiny_pivot_is_factored_alone(numpy_backend):
    n = 40
    arrays, c = cauchy_batch(numpy_backend, 3, n, 2, seed=1, circulant=True)
    v, u, G, H = arrays
    # Entry 1: column 5 of C nearly vanishes (H's column scaled by 1e-9), so the first panel meets
    # a pivot far below 2**-20 of the largest. The one-entry path discards that panel and
    # factors the rest densely; the batch must hand the entry over rather than keep its panel.
    H[1, :, 5] *= 1e-9
    bk = ldr.backends.get_backend(v)
    batch = gko.factor_cauchy_like_batch(v, u, G, H, bk, circulant=c)
    assert batch.alone.tolist() == [False, True, False]
    single = gko.factor_cauchy_like(v[1], u, G[1], H[1], bk, circulant=c)
    batch.replace(1, single)
    assert np.array_equal(batch.pivots()[1], single.pivots)
    C = (G[1] @ H[1]) / (v[1][:, None] - u[None, :])
    y = np.arange(1.0, n + 1)[:, None] + 0j
    x = batch.solve(np.broadcast_to(y, (3, n, 1)).copy())[1]
    assert np.linalg.norm(C @ x - y) <= 1e-14 * np.linalg.norm(C) * np.linalg.norm(x)


def test_singular_entry_of_a_batch_is_named():
    rng = np.random.default_rng(2)
    G, H = rng.standard_normal((3, 6, 2)), rng.standard_normal((3, 2, 6))
    G[2] = 0.0  # W = 0 for entry 2
    W = ldr.toeplitz_like(G, H)
    with pytest.raises(ldr.SingularMatrixError, match=r"singular \(batch entry \(2,\)\): pivot 0"):
        ldr.solve(W, np.ones(6))
    # slogdet: (0, -inf) for the singular entry only, the others as NumPy has them.
    sign, logdet = ldr.slogdet(W)
    expected_sign, expected_log = np.linalg.slogdet(W.dense()[:2])
    assert sign[2] == 0 and logdet[2] == -np.inf
    assert np.allclose(sign[:2], expected_sign) and np.allclose(logdet[:2], expected_log)


@pytest.mark.parametrize("entry_by_entry", [False, True])
def test_right_hand_sides_broadcast_against_w(entry_by_entry, backend, monkeypatch):
    if entry_by_entry:  # the path of batches of large matrices (n > BATCH_MAX_N), at a small n
        monkeypatch.setattr(solvers, "BATCH_MAX_N", 8)
    n = 12
    rng = np.random.default_rng(3)
    # W varies along axis 0 of its batch (3, 1); b along (2, 3, 4): the axes of size 2 and 4 join the columns.
    G = rng.standard_normal((3, 1, n, 2))
    H = rng.standard_normal((2, n))
    W = ldr.toeplitz_like(backend.asarray(G), backend.asarray(H))
    b = rng.standard_normal((2, 3, 4, n, 2))
    D = as_numpy(W.dense())
    for M, Md in ((W, D), (W.T, np.swapaxes(D, -1, -2))):
        x = as_numpy(ldr.solve(M, backend.asarray(b)))
        assert x.shape == (2, 3, 4, n, 2)
        residual = np.linalg.norm(Md @ x - b, axis=(-2, -1)) / (np.linalg.norm(Md, axis=(-2, -1)) * np.linalg.norm(x, axis=(-2, -1)))
        assert residual.max() <= 1e-14
    sign, logdet = ldr.slogdet(W)
    expected_sign, expected_log = np.linalg.slogdet(D)
    assert np.allclose(as_numpy(sign), expected_sign) and np.allclose(as_numpy(logdet), expected_log)


def test_a_batch_takes_one_step_per_block_not_per_entry(monkeypatch):
    calls = {"one": 0, "batch": 0}
    one, batch = solvers.factor_cauchy_like, solvers.factor_cauchy_like_batch

    def count(name, function):
        def counted(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)

        return counted

    monkeypatch.setattr(solvers, "factor_cauchy_like", count("one", one))
    monkeypatch.setattr(solvers, "factor_cauchy_like_batch", count("batch", batch))
    rng = np.random.default_rng(4)
    W = ldr.toeplitz_like(rng.standard_normal((5, 20, 2)), rng.standard_normal((2, 20)))
    ldr.solve(W, np.ones(20))
    assert calls == {"one": 0, "batch": 1}


@pytest.mark.parametrize("n", [1, 2, 7, 1000])
def test_parity_by_pointer_doubling(n):
    rng = np.random.default_rng(n)
    perms = [rng.permutation(n) for _ in range(6)]
    perms.append(np.roll(np.arange(n), 1))  # one cycle of length n: sign (-1)^(n-1)
    lu = gko.BatchCauchyLU([], n, len(perms), None, np.zeros(len(perms), dtype=bool))
    lu.perm = np.array(perms)
    reference = []
    for p in perms:
        single = gko.CauchyLU([], n, None)
        single.perm = p
        reference.append(single.parity())
    assert lu.parity().tolist() == reference
    assert reference[-1] == (-1) ** (n - 1)


def test_solver_hands_a_near_singular_entry_to_the_one_entry_path():
    # Entry 0: the prolate matrix of order 128 (condition ~5e15): its elimination meets a tiny
    # pivot in an early panel and must end with the one-entry path's dense tail; entry 1: random.
    n = 128
    k = np.arange(1, n)
    column = np.concatenate([[0.9], np.sin(2 * np.pi * 0.45 * k) / (np.pi * k)])
    T = ldr.toeplitz(column, column)
    rng = np.random.default_rng(5)
    G = np.stack([np.asarray(T.G), rng.standard_normal((n, 2))])
    H = np.stack([np.asarray(T.H), rng.standard_normal((2, n))])
    W = ldr.toeplitz_like(G, H, e=T.A.f, f=T.B.f)
    together = solvers._Factorization(W)
    assert together.factors.alone.tolist() == [True, False]
    for i in range(2):
        alone = solvers._Factorization(ldr.toeplitz_like(G[i], H[i], e=T.A.f, f=T.B.f))
        assert np.array_equal(together.factors.pivots()[i], alone.factors.pivots)
        rows = np.ones((1, n), dtype=complex)
        assert np.allclose(together.solve_rows(rows)[i], alone.solve_rows(rows), rtol=1e-13, atol=0)


@pytest.mark.parametrize("entries", [3, 70])  # a per-entry loop up to 64 entries, vectorised above
def test_swaps_to_permutation_of_a_batch(entries):
    from ldr.backends.base import swaps_to_permutation

    rng = np.random.default_rng(entries)
    m, b = 9, 4
    swaps = np.stack([[rng.integers(i, m) for i in range(b)] for _ in range(entries)])  # getrf: swaps[i] >= i
    leading = (2, entries // 2) if entries % 2 == 0 else (entries,)  # two leading axes when it can
    together = swaps_to_permutation(swaps.reshape(leading + (b,)), m).reshape(entries, m)
    for i in range(entries):
        assert together[i].tolist() == swaps_to_permutation(swaps[i], m).tolist()


def test_batched_lu_factor(backend):
    rng = np.random.default_rng(6)
    a = rng.standard_normal((2, 3, 7, 3)) + 1j * rng.standard_normal((2, 3, 7, 3))
    bk = ldr.backends.get_backend(backend.asarray(a))
    lu, perm = bk.lu_factor(backend.asarray(a, "complex128"))
    lu = as_numpy(lu)
    assert perm.shape == (2, 3, 7)
    for index in np.ndindex(2, 3):
        L = np.tril(lu[index], -1) + np.eye(7, 3)
        U = np.triu(lu[index][:3])
        assert np.allclose(a[index][perm[index]], L @ U, rtol=0, atol=1e-13)


@pytest.mark.skipif(not HAVE_TORCH, reason=NO_TORCH)
def test_torch_gradients_through_a_batched_solve_and_slogdet():
    import torch

    rng = np.random.default_rng(8)
    G = torch.tensor(rng.standard_normal((3, 5, 2)), requires_grad=True)
    H = torch.tensor(rng.standard_normal((2, 5)), requires_grad=True)
    b = torch.tensor(rng.standard_normal((3, 5, 2)))
    assert torch.autograd.gradcheck(lambda G, H: ldr.solve(ldr.toeplitz_like(G, H), b), (G, H), fast_mode=True)
    assert torch.autograd.gradcheck(lambda G, H: ldr.slogdet(ldr.toeplitz_like(G, H))[1], (G, H), fast_mode=True)
