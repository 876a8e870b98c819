"""The elimination route of ldr.solve: the gathered DFT kernel, the dense tail, the check's cost.

Each speed-up of ``ldr.gko`` / ``ldr.solvers`` is a second code path for the same numbers;
these tests hold each one to dense GEPP (``scipy.linalg.lu``) or to the path it replaced.
"""

from __future__ import annotations

import cmath
import math

import numpy as np
import pytest
import scipy.linalg

import ldr
import ldr.gko as gko
import ldr.solvers as solvers

ill_conditioned_ok = pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")


def dft_cauchy_like(rng, n, r, tiny_from=None):
    """Nodes v_i = omega^i, u_j = c omega^j (the Toeplitz route's), random complex generators."""
    omega = np.exp(-2j * np.pi * np.arange(n) / n)
    c = cmath.exp(1j * math.pi / n)
    G = rng.standard_normal((n, r)) + 1j * rng.standard_normal((n, r))
    H = rng.standard_normal((r, n)) + 1j * rng.standard_normal((r, n))
    if tiny_from is not None:
        H[:, tiny_from:] *= 1e-10
    return omega, c * omega, G, H, c


@pytest.mark.parametrize("n", [1, 2, 7, 33, 70])
@pytest.mark.parametrize("block", [3, None, 48])  # 48 > BLOCK: no dense-tail shortcut mid-matrix
def test_gathered_kernel_gives_the_factors_of_dense_gepp(backend, n, block):
    rng = np.random.default_rng(n)
    v, u, G, H, c = dft_cauchy_like(rng, n, r=3)
    C = (G @ H) / (v[:, None] - u[None, :])
    args = [backend.asarray(a) for a in (v, u, G, H)]
    bk = ldr.backends.get_backend(args[2])
    lu = gko.factor_cauchy_like(*args, bk, block=block, circulant=c)
    P, L, U = scipy.linalg.lu(C)
    assert np.array_equal(lu.perm, np.argmax(P, axis=0))
    assert np.allclose(backend.to_numpy(lu.pivots), np.diag(U), rtol=1e-12, atol=0)
    Y = rng.standard_normal((n, 2)) + 1j * rng.standard_normal((n, 2))
    for transpose, M in ((False, C), (True, C.T)):
        x = backend.to_numpy(lu.solve(backend.asarray(Y), transpose=transpose))
        assert np.linalg.norm(M @ x - Y) <= 1e-13 * np.linalg.norm(M) * np.linalg.norm(x)


@pytest.mark.parametrize("dense_tail", [0, None], ids=["one-pivot-steps", "dense-tail"])
@pytest.mark.parametrize("circulant", [False, True])
def test_near_singular_tail_matches_dense_gepp(monkeypatch, dense_tail, circulant):
    # Columns 20.. scaled by 1e-10: the panel holding pivot 20 has pivots below TINY_PIVOT times
    # the largest, so the rest is factored densely (DENSE_TAIL) or one pivot per step.
    if dense_tail is not None:
        monkeypatch.setattr(gko, "DENSE_TAIL", dense_tail)
    rng = np.random.default_rng(4)
    n = 40
    v, u, G, H, c = dft_cauchy_like(rng, n, r=3, tiny_from=20)
    C = (G @ H) / (v[:, None] - u[None, :])
    bk = ldr.backends.get_backend(G)
    lu = gko.factor_cauchy_like(v, u, G, H, bk, block=8, circulant=c if circulant else None)
    sizes = [block.lu.shape[1] for block in lu._blocks]
    assert sizes == ([8, 8, 24] if dense_tail is None else [8, 8] + [1] * 24)
    P, L, U = scipy.linalg.lu(C)
    pivots = bk.to_numpy(lu.pivots)
    assert np.array_equal(lu.perm, np.argmax(P, axis=0))
    assert np.allclose(pivots, np.diag(U), rtol=1e-8, atol=0)
    Y = rng.standard_normal((n, 2)) + 0j
    for transpose, M in ((False, C), (True, C.T)):
        x = lu.solve(Y, transpose=transpose)
        assert np.linalg.norm(M @ x - Y) <= 1e-13 * np.linalg.norm(M) * np.linalg.norm(x)


@pytest.fixture
def solve_count(monkeypatch):
    """Solves with the elimination's factors, as a one-entry list."""
    count = [0]
    original = solvers._Factorization.solve_rows

    def counting(self, b, transpose=False):
        count[0] += 1
        return original(self, b, transpose)

    monkeypatch.setattr(solvers._Factorization, "solve_rows", counting)
    return count


@pytest.mark.parametrize("check, solves", [(False, 2), (True, 3)])
def test_the_check_costs_one_extra_solve_and_two_columns(solve_count, check, solves):
    # The solve and one refinement step; with the check, one round of Hager's estimator started
    # from b and x: one solve with W^T, and its closing product and the alternating probe go as
    # two more columns of the refinement solve.
    rng = np.random.default_rng(5)
    n = 64
    W = ldr.toeplitz_like(rng.standard_normal((n, 4)) / 8, rng.standard_normal((4, n)))
    b = rng.standard_normal(n)
    x = ldr.solve(W, b, check=check)
    assert solve_count[0] == solves
    assert np.allclose(W.dense() @ x, b, atol=1e-12)


def test_estimate_from_the_first_right_hand_side_is_close_to_the_true_one():
    W = ldr.cauchy(np.arange(9, dtype=float), -np.arange(1.0, 10.0))  # Hilbert, cond ~5e11
    factorization = solvers._Factorization(W)
    rows = np.ones((1, 9), dtype=complex)
    x = factorization.solve_rows(rows)
    residual = rows - (W @ x[0])[None, :]
    norm_W, norm_inv = solvers._condition_report(W, factorization, np.complex128, rows, x, residual)
    D = W.dense()
    exact = np.linalg.norm(D, 1) * np.linalg.norm(np.linalg.inv(D), 1)
    assert exact / 3 <= float(norm_W * norm_inv) <= exact * 1.01


@ill_conditioned_ok
def test_polishing_keeps_ill_conditioned_backward_error_near_dense_lu(solve_count):
    # Prolate Toeplitz as a Toeplitz-like matrix with random-looking generators is not
    # recognised as plain Toeplitz: it takes the elimination, then extra refinement steps.
    n = 400
    k = np.arange(1, n)
    c = np.concatenate([[0.9], np.sin(2 * np.pi * 0.45 * k) / (np.pi * k)])
    T = ldr.toeplitz(c, c.copy())
    Q = np.linalg.qr(np.random.default_rng(6).standard_normal((2, 2)))[0]
    W = ldr.toeplitz_like(np.array(T.G) @ Q, Q.T @ np.array(T.H))  # same matrix, mixed generators
    assert solvers._plain_toeplitz(W) is None
    D = scipy.linalg.toeplitz(c)
    b = np.random.default_rng(7).standard_normal(n)

    def eta(x):
        return np.abs(D @ x - b).sum() / (np.linalg.norm(D, 1) * np.abs(x).sum())

    with pytest.warns(scipy.linalg.LinAlgWarning, match="ill-conditioned"):
        polished = ldr.solve(W, b)
    assert solve_count[0] > 5  # extra refinement steps ran
    plain = ldr.solve(W, b, check=False)
    assert eta(polished) <= eta(plain) * 1.0001
    assert eta(polished) <= 10 * eta(scipy.linalg.solve(D, b))


def test_inv_factors_once(monkeypatch):
    # The r solves with W and the r with W^T share one factorisation.
    built = [0]
    original = solvers._Factorization.__init__

    def counting(self, W):
        built[0] += 1
        original(self, W)

    monkeypatch.setattr(solvers._Factorization, "__init__", counting)
    rng = np.random.default_rng(8)
    n = 20
    W = ldr.toeplitz_like(rng.standard_normal((n, 3)), rng.standard_normal((3, n)))
    Winv = ldr.inv(W)
    assert built[0] == 1
    assert np.allclose(Winv.dense(), np.linalg.inv(W.dense()), atol=1e-10)
    assert np.allclose(ldr.inv(W.T).dense(), np.linalg.inv(W.dense()).T, atol=1e-10)
