"""Rectangular Toeplitz-like matrices for every (e, f): O(m + n) core, no overflow (issue 12 §4).

The core :math:`T_{ef}` solves :math:`Z_e T - T Z_f = e_0 e_{n-1}^T`; it used to be built by a
sum over lcm(m, n) terms (5.8 s and 512 MiB at 4097×4096) with powers that overflow for
|e| or |f| ≠ 1 (1101×1100, e = 2: OverflowError). Oracles: ``scipy.linalg.solve_sylvester``
in complex128 (its real-Schur path is wrong for a real A with a complex B, so both are cast),
and at large sizes the m + n - 1 scalar equations the Toeplitz entries of T must satisfy.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import ldr
from conftest import HAVE_TORCH, NO_TORCH
from ldr.toeplitz_like import _rectangular_core

# m = n ± 1, primes, 1×k and k×1, large aspect ratios, a common factor (12×8).
SHAPES = [(2, 1), (1, 2), (1, 7), (7, 1), (6, 5), (5, 6), (13, 11), (11, 13), (17, 3), (3, 17), (64, 4), (4, 64),
          (31, 32), (32, 31), (12, 8)]
# The default (1, 0), |e| or |f| ≠ 1, a zero on either side, negative and complex corners.
PAIRS = [(1.0, 0.0), (2.0, 0.0), (0.5, 3.0), (-2.0, 0.7), (0.0, 1.0), (3.0, -2.0), (1j, 0.3), (2.0, 0.5 + 0.5j), (1.0, -1.0)]


def _nonsingular(m, n, e, f):
    try:
        ldr.check_nonsingular(ldr.Shift(m, e), ldr.Shift(n, f))
    except ldr.SingularDisplacementError:
        return False
    return True


def _sylvester(m, n, e, f, C):
    A = ldr.Shift(m, e).dense().astype(complex)
    B = ldr.Shift(n, f).dense().astype(complex)
    return scipy.linalg.solve_sylvester(A, -B, C.astype(complex))


CASES = [pytest.param(m, n, e, f, id=f"{m}x{n}-e{e}-f{f}") for m, n in SHAPES for e, f in PAIRS if _nonsingular(m, n, e, f)]


@pytest.mark.parametrize("m, n, e, f", CASES)
def test_core_matches_sylvester(m, n, e, f):
    C = np.zeros((m, n))
    C[0, n - 1] = 1.0
    T = _sylvester(m, n, e, f, C)
    column, row = _rectangular_core(m, n, e, f)
    scale = np.abs(T).max()
    assert np.abs(column - T[:, 0]).max() <= 1e-12 * scale
    assert np.abs(row - T[0, :]).max() <= 1e-12 * scale
    assert not column.flags.writeable and not row.flags.writeable  # shared through the lru_cache


@pytest.mark.parametrize("m, n, e, f", CASES)
def test_products_match_sylvester(m, n, e, f):
    rng = np.random.default_rng(m * 100 + n)
    G, H = rng.standard_normal((m, 2)), rng.standard_normal((2, n))
    D = _sylvester(m, n, e, f, G @ H)
    if not isinstance(e, complex) and not isinstance(f, complex):
        assert np.abs(D.imag).max() <= 1e-12 * np.abs(D).max()
        D = D.real
    W = ldr.toeplitz_like(G, H, e=e, f=f)
    x, y = rng.standard_normal(n), rng.standard_normal(m)
    X = rng.standard_normal((n, 3))
    norm = np.linalg.norm(D)
    for got, expected, scale in (
        (W @ x, D @ x, np.linalg.norm(x)),
        (W.T @ y, D.T @ y, np.linalg.norm(y)),
        (W @ X, D @ X, np.linalg.norm(X)),
        (W.dense(), D, 1.0),
    ):
        error = np.linalg.norm(got - expected) / (norm * scale)
        assert error <= 1e-12, f"relative error {error:.2e}"


def _equation_residual(m, n, e, f):
    """Largest residual of the m + n - 1 scalar equations of Z_e T - T Z_f = e_0 e_{n-1}^T on Toeplitz entries.

    With t(k) = T[i, j] for k = i - j: row 0 gives e t(m-1-j) = t(-1-j) (j < n-1); column n-1
    gives t(i-n) = f t(i) (i >= 1); the corner gives e t(m-n) - f t(0) = 1.
    """
    column, row = _rectangular_core(m, n, e, f)

    def t(k):
        k = np.asarray(k)
        return np.where(k >= 0, column[np.clip(k, 0, m - 1)], row[np.clip(-k, 0, n - 1)])

    j, i = np.arange(n - 1), np.arange(1, m)
    residuals = [e * t(m - 1 - j) - t(-1 - j), t(i - n) - f * t(i), np.array([e * t(m - n) - f * t(0) - 1])]
    scale = max(np.abs(column).max(), np.abs(row).max(), 1.0)
    return max(np.abs(r).max(initial=0.0) for r in residuals) / scale


@pytest.mark.parametrize(
    "m, n, e, f",
    [(1101, 1100, 2.0, 0.0), (1100, 1101, 0.0, 2.0), (1101, 1100, 2.0, 1.9), (4097, 4096, 1.0, 0.0),
     (4097, 4096, 0.5, -3.0), (1031, 1021, 1.5 + 0.5j, 0.25)],
)
def test_large_cores_are_finite_and_solve_the_equation(m, n, e, f):
    """No OverflowError, no inf, and every scalar equation holds (|e|**(N/m) is far outside float range here)."""
    column, row = _rectangular_core(m, n, e, f)
    assert np.isfinite(column).all() and np.isfinite(row).all()
    assert _equation_residual(m, n, e, f) <= 1e-12


def test_issue_case_1101x1100_e2():
    rng = np.random.default_rng(0)
    G, H = rng.standard_normal((1101, 1)), rng.standard_normal((1, 1100))
    W = ldr.toeplitz_like(G, H, e=2.0, f=0.0)
    x = rng.standard_normal(1100)
    y = W @ x
    assert np.isfinite(y).all()
    # The adjoint identity <W x, z> = <x, W^T z> ties the product to the transpose at this size.
    z = rng.standard_normal(1101)
    assert abs(y @ z - x @ (W.T @ z)) <= 1e-10 * np.linalg.norm(y) * np.linalg.norm(z)


def test_default_pair_core_is_a_fold():
    """(1, 0): T[i, j] = 1 exactly when i ≡ j - n (mod m), else 0 (applied without FFTs)."""
    for m, n in [(5, 3), (3, 5), (7, 3), (4, 9), (2, 1), (1, 2)]:
        column, row = _rectangular_core(m, n, 1.0, 0.0)
        i, j = np.arange(m)[:, None], np.arange(n)[None, :]
        T = ((i - (j - n)) % m == 0).astype(float)
        np.testing.assert_array_equal(column, T[:, 0])
        np.testing.assert_array_equal(row, T[0, :])


@pytest.mark.skipif(not HAVE_TORCH, reason=NO_TORCH)
@pytest.mark.parametrize("m, n, e, f", [(5, 3, 1.0, 0.0), (3, 5, 1.0, 0.0), (13, 11, 2.0, 0.0), (4, 9, 0.5, 3.0)])
def test_torch_rectangular_products_and_gradients(m, n, e, f):
    import torch

    rng = np.random.default_rng(m + n)
    G, H = rng.standard_normal((m, 2)), rng.standard_normal((2, n))
    D = _sylvester(m, n, e, f, G @ H).real
    Gt, Ht = torch.tensor(G, requires_grad=True), torch.tensor(H, requires_grad=True)
    W = ldr.toeplitz_like(Gt, Ht, e=e, f=f)
    x, y = rng.standard_normal((4, n)), rng.standard_normal((4, m))
    np.testing.assert_allclose(W.matvec(torch.tensor(x)).detach().numpy(), x @ D.T, atol=1e-12 * np.abs(D).max() * n)
    np.testing.assert_allclose(W.rmatvec(torch.tensor(y)).detach().numpy(), y @ D, atol=1e-12 * np.abs(D).max() * m)
    assert torch.autograd.gradcheck(
        lambda a, b: ldr.toeplitz_like(a, b, e=e, f=f).matvec(torch.tensor(x)), (Gt, Ht), eps=1e-6, atol=1e-6
    )


# dense() unrolls the column recursion from w0 = W e0 when |e| = 1 (O(rmn)); other pairs apply W
# to the identity. Batches, Hankel-like, float32, torch and gradients of the O(rmn) route:
@pytest.mark.parametrize("m, n, e, f", [(7, 3, 1.0, 0.0), (3, 7, -1.0, 0.0), (12, 8, 1.0, 2.0), (5, 9, 1j, 0.3),
                                        (1, 6, 1.0, 0.0), (6, 1, -1.0, 0.5)])
def test_rectangular_dense_route_with_batches_hankel_and_float32(m, n, e, f):
    rng = np.random.default_rng(m * n)
    G, H = rng.standard_normal((3, 1, m, 2)), rng.standard_normal((1, 2, 2, n))
    W = ldr.toeplitz_like(G, H, e=e, f=f)
    dense = W.dense()
    assert dense.shape == (3, 2, m, n)
    for index in np.ndindex(3, 2):
        D = _sylvester(m, n, e, f, G[index[0], 0] @ H[0, index[1]])
        assert np.abs(dense[index] - D).max() <= 1e-12 * np.abs(D).max()
    J = np.eye(n)[::-1]
    np.testing.assert_allclose(ldr.hankel_like(G, H @ J, e=e, f=f).dense(), dense @ J, rtol=0, atol=1e-12 * np.abs(dense).max())
    W32 = ldr.toeplitz_like(G.astype(np.float32), H.astype(np.float32), e=e, f=f).dense()
    assert W32.dtype == (np.complex64 if isinstance(e, complex) else np.float32)
    assert np.abs(W32 - dense).max() <= 1e-5 * np.abs(dense).max()


@pytest.mark.skipif(not HAVE_TORCH, reason=NO_TORCH)
@pytest.mark.parametrize("m, n, e", [(7, 3, 1.0), (3, 7, -1.0)])
def test_rectangular_dense_route_in_torch_with_gradients(m, n, e):
    import torch

    rng = np.random.default_rng(m * n)
    G, H = rng.standard_normal((2, m, 2)), rng.standard_normal((2, 2, n))
    expected = ldr.toeplitz_like(G, H, e=e, f=0.0).dense()
    Gt, Ht = torch.tensor(G, requires_grad=True), torch.tensor(H, requires_grad=True)
    np.testing.assert_allclose(ldr.toeplitz_like(Gt, Ht, e=e, f=0.0).dense().detach().numpy(), expected,
                               rtol=0, atol=1e-12 * np.abs(expected).max())
    assert torch.autograd.gradcheck(lambda a, b: ldr.toeplitz_like(a, b, e=e, f=0.0).dense(), (Gt, Ht))
