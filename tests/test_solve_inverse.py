"""ldr.inv of Hankel-like and Vandermonde-like matrices: the RowReversed class (issue 17).

The inverse of a matrix for (A, B) is one for the swapped pair (B, A): (Z_f^T, Z_e) for
Hankel-like and (Z_f, diag(v)) for Vandermonde-like matrices. ``ldr.RowReversed`` holds them as
W = J M (M Toeplitz-like, or the transpose of a Vandermonde-like matrix). The oracles are
independent: ``scipy.linalg.solve_sylvester`` on the dense operators, and NumPy's ``inv``,
``slogdet`` and ``solve`` of that oracle. The reversal, the transposed Cauchy-like form and the
determinant of J are each something a wrong sign or a missing flip would silently break; the
tests below compare every product, solve and determinant with the oracle so that they cannot.
"""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import scipy.linalg

import ldr
from cases import ArrayBackend
from conftest import HAVE_TORCH, NO_TORCH
from tolerance import as_numpy, tolerance

KINDS = ("shift", "vandermonde")


def nodes_on_circle(n, offset=0.3):
    """Unit-circle nodes, well inside the gaps of the n-th roots of 1 (so v^n != 1 by far)."""
    return np.exp(2j * np.pi * (np.arange(n) + offset) / n)


def operators(kind, m, n, corners=(0.0, 1.0), v=None):
    """The pair of the class: (Z_a^T, Z_b) or (Z_f, diag(v))."""
    if kind == "shift":
        return ldr.Shift(m, corners[0], transpose=True), ldr.Shift(n, corners[1])
    return ldr.Shift(m, corners[1]), ldr.Diagonal(nodes_on_circle(n) if v is None else v)


def sylvester_oracle(A, B, G, H):
    """The dense solution of A W - W B = G H, per batch entry (float64/complex128 NumPy)."""
    A, B = A.dense().astype(complex), B.dense().astype(complex)
    G, H = np.asarray(G), np.asarray(H)
    GH = G @ H
    flat = GH.reshape((-1,) + GH.shape[-2:])
    W = np.stack([scipy.linalg.solve_sylvester(A, -B, X) for X in flat]).reshape(GH.shape)
    return W if np.iscomplexobj(GH) or np.iscomplexobj(B) or np.iscomplexobj(A) else W.real


def dtypes_for(kind, precision):
    """(generator dtype, node dtype): Vandermonde pairs have complex unit-circle nodes."""
    if kind == "shift":
        return precision, None
    return {"float32": "complex64", "float64": "complex128"}[precision], {"float32": "complex64", "float64": "complex128"}[precision]


def build(kind, backend, precision, m, n, batch=(), r=2, seed=0):
    """A RowReversed matrix from random generators, and its oracle for the rounded inputs."""
    rng = np.random.default_rng(seed)
    dtype, node_dtype = dtypes_for(kind, precision)
    G, H = rng.standard_normal(batch + (m, r)), rng.standard_normal((r, n))
    G, H = (as_numpy(backend.asarray(X, dtype)) for X in (G, H))  # rounded to the test dtype
    if kind == "shift":
        A, B = operators(kind, m, n)
        W = ldr.LDRMatrix(A, B, backend.asarray(G, dtype), backend.asarray(H, dtype))
        return W, sylvester_oracle(A, B, G, H)
    v = as_numpy(backend.asarray(nodes_on_circle(n), node_dtype))
    A, B = operators(kind, m, n, v=v)
    W = ldr.LDRMatrix(ldr.Shift(m, 1.0), ldr.Diagonal(backend.asarray(v, node_dtype)),
                      backend.asarray(G, dtype), backend.asarray(H, dtype))
    return W, sylvester_oracle(A, B, G, H)


# -- the class: dispatch, dense, products -------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("precision", ["float32", "float64"])
@pytest.mark.parametrize("m, n, batch", [(1, 1, ()), (6, 6, ()), (7, 5, (2,)), (4, 9, ())])
def test_row_reversed_matches_sylvester_oracle(kind, precision, m, n, batch, backend):
    W, D = build(kind, backend, precision, m, n, batch)
    assert type(W) is ldr.RowReversed
    assert W.shape == (m, n) and W.batch_shape == batch
    tol = tolerance(precision)
    scale = np.linalg.norm(D)
    assert np.linalg.norm(as_numpy(W.dense()) - D) <= tol * scale
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((3,) + batch + (n,)), rng.standard_normal(batch + (m,))
    X, y1 = rng.standard_normal((n, 2)), rng.standard_normal(m)

    def operand(a):  # real operands of the generators' precision (complex W: complex result)
        return backend.asarray(a, precision)

    checks = [
        (W.matvec(operand(x)), np.einsum("...ij,...j->...i", D, x), x),
        (W.T.matvec(operand(y)), np.einsum("...ij,...i->...j", D, y), y),
        (W.rmatvec(operand(y)), np.einsum("...ij,...i->...j", D.conj(), y), y),  # the adjoint W^H y
        (W @ operand(X), D @ X, X),
        (operand(y1) @ W, np.einsum("i,...ij->...j", y1, D), y1),
    ]
    for fast, dense, operand in checks:
        assert np.linalg.norm(as_numpy(fast) - dense) <= tol * scale * np.linalg.norm(operand), (fast, dense)


def test_dispatch_and_attributes():
    W, _ = build("shift", ArrayBackend("numpy"), "float64", 4, 4)
    assert (W.e, W.f) == (0.0, 1.0)
    assert "e=0.0, f=1.0" in repr(W)
    v = nodes_on_circle(3)
    V = ldr.LDRMatrix(ldr.Shift(3, -1.0), ldr.Diagonal(v), np.ones((3, 1)), np.ones((1, 3)))
    assert type(V) is ldr.RowReversed and V.f == -1.0 and np.array_equal(V.v, v)
    assert type(V.inner().T) is ldr.VandermondeLike and type(W.inner()) is ldr.ToeplitzLike


@pytest.mark.parametrize(
    "call, error, message",
    [
        # The pair (Z_1^T, Z_1) shares the eigenvalue 1: no unique solution.
        (lambda: ldr.LDRMatrix(ldr.Shift(3, 1.0, transpose=True), ldr.Shift(3, 1.0), np.ones((3, 1)), np.ones((1, 3))),
         ldr.SingularDisplacementError, "eigenvalue"),
        # f = 0 and nodes of modulus 1e-3 at n = 200: v^n - f underflows, W is not representable.
        (lambda: ldr.LDRMatrix(ldr.Shift(200, 0.0), ldr.Diagonal(np.full(3, 1e-3) + np.arange(3) * 1e-4),
                               np.ones((200, 1)), np.ones((1, 3))), ValueError, "`v`: the row scales"),
        (lambda: ldr.LDRMatrix(ldr.Shift(3, 1.0, transpose=True), ldr.Shift(4, 0.0), np.ones((3, 1)), np.ones((1, 3))),
         ValueError, "`H`"),
    ],
)
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


# -- ldr.inv ------------------------------------------------------------------------------------
def hankel_or_vandermonde(kind, backend, precision, n, batch=(), seed=6, f=None):
    """A Hankel-like or Vandermonde-like matrix with random generators and its Sylvester oracle."""
    rng = np.random.default_rng(seed)
    dtype, node_dtype = dtypes_for(kind, precision)
    G, H = (as_numpy(backend.asarray(X, dtype)) for X in (rng.standard_normal(batch + (n, 2)), rng.standard_normal((2, n))))
    if kind == "shift":
        e, f = (1.0, 0.0) if f is None else (0.5, f)
        W = ldr.hankel_like(backend.asarray(G, dtype), backend.asarray(H, dtype), e=e, f=f)
        return W, sylvester_oracle(ldr.Shift(n, e), ldr.Shift(n, f, transpose=True), G, H)
    v = as_numpy(backend.asarray(nodes_on_circle(n), node_dtype))
    W = ldr.vandermonde_like(backend.asarray(G, dtype), backend.asarray(H, dtype), backend.asarray(v, node_dtype),
                             f=1.0 if f is None else f)
    return W, sylvester_oracle(ldr.Diagonal(v), ldr.Shift(n, W.f), G, H)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("precision", ["float32", "float64"])
@pytest.mark.parametrize("batch", [(), (2,)])
def test_inverse_is_row_reversed_for_the_swapped_pair(kind, precision, batch, backend):
    n = 7
    W, D = hankel_or_vandermonde(kind, backend, precision, n, batch)
    Dinv = np.linalg.inv(D)
    norm = lambda X: np.linalg.norm(X, axis=(-2, -1))  # noqa: E731 - Frobenius per batch entry
    cond = float(np.max(norm(D) * norm(Dinv)))
    assert cond < 100  # the seed gives a well-conditioned matrix: the tolerances below use it
    Winv = ldr.inv(W)
    assert type(Winv) is ldr.RowReversed and Winv.rank == W.rank and Winv.batch_shape == batch
    assert Winv.A == W.B and (Winv.B == W.A if kind == "shift" else Winv.B is W.A)
    G, H = as_numpy(Winv.G), as_numpy(Winv.H)
    # Generators accurate to cond * eps define W^{-1} to cond * eps * growth, growth the
    # amplification of the generator representation (|G'| |H'| / |W^{-1}|, 4-15 here).
    growth = float(np.max(norm(G) * norm(H) / norm(Dinv)))
    bound = tolerance(precision) * cond * growth
    # B W^{-1} - W^{-1} A = G' H' with the dense operators of W's pair, swapped.
    A, B = (as_numpy(op.dense()) for op in (W.A, W.B))
    assert np.max(norm(B @ Dinv - Dinv @ A - G @ H) / norm(G @ H)) <= bound
    inverse = as_numpy(Winv.dense())
    assert np.max(norm(inverse - Dinv) / norm(Dinv)) <= bound
    assert np.max(norm(inverse @ D - np.eye(n))) <= bound * cond
    # W^{-1} (W x) = x and W^T W^{-T} x = x through the fast products of both matrices.
    x = np.random.default_rng(3).standard_normal(batch + (n,))
    xb = backend.asarray(x, precision)
    for round_trip in (Winv.matvec(W.matvec(xb)), W.rmatvec(Winv.rmatvec(xb))):
        assert np.linalg.norm(as_numpy(round_trip) - x) <= bound * cond * np.linalg.norm(x)
    # The inverse of the inverse is in W's own class again.
    back = ldr.inv(Winv)
    assert type(back) is type(W)
    assert np.max(norm(as_numpy(back.dense()) - D) / norm(D)) <= bound * cond * growth


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 6, 7])
def test_slogdet_and_solve_of_row_reversed(kind, n, numpy_backend):
    # n(n-1)/2 odd for n = 2, 3, 6, 7: det J = -1 there, so a missing factor flips the sign.
    W, D = build(kind, numpy_backend, "float64", n, n, seed=n)
    sign, logdet = ldr.slogdet(W)
    expected_sign, expected_log = np.linalg.slogdet(D)
    assert np.isclose(complex(sign), expected_sign, atol=1e-10) and np.isclose(float(logdet), expected_log, atol=1e-10)
    b = np.random.default_rng(n).standard_normal((n, 2))
    for M, Md in ((W, D), (W.T, D.T)):
        x = ldr.solve(M, b)
        residual = np.linalg.norm(Md @ x - b) / (np.linalg.norm(Md) * np.linalg.norm(x))
        assert residual <= 1e-14, (M, residual)


@pytest.mark.parametrize("kind", KINDS)
def test_inverse_of_transposed_hankel_and_vandermonde(kind, numpy_backend):
    W, D = hankel_or_vandermonde(kind, numpy_backend, "float64", 6, f=-1j if kind == "shift" else 2.0)
    Winv = ldr.inv(W.T)
    assert np.allclose(Winv.dense(), np.linalg.inv(D.T), atol=1e-11)
    assert np.allclose(ldr.inv(W).dense(), np.linalg.inv(D), atol=1e-11)  # complex corner; |f| != 1


def test_inverse_of_plain_hankel_and_classic_vandermonde():
    c, r = np.array([4.0, 1.0, 0.5, 0.2]), np.array([0.2, 2.0, 0.3, 3.0])
    W = ldr.hankel(c, r)
    assert np.allclose(ldr.inv(W).dense(), np.linalg.inv(scipy.linalg.hankel(c, r)), atol=1e-12)
    v = np.array([0.5, 0.7, 0.9])
    V = ldr.vandermonde(v, 3)
    assert np.allclose(ldr.inv(V).dense(), np.linalg.inv(np.vander(v, 3, increasing=True)), atol=1e-9)


# -- mutation semantics, copies -----------------------------------------------------------------
def test_numpy_matrix_is_frozen_and_copies_agree():
    W, D = build("vandermonde", ArrayBackend("numpy"), "float64", 5, 5)
    assert W.inner() is W.inner()  # immutable generators: M is built once
    x = np.random.default_rng(4).standard_normal(5)
    for copy_ in (copy.deepcopy(W), pickle.loads(pickle.dumps(W))):
        assert np.allclose(copy_ @ x, D @ x, atol=1e-12)
    with pytest.raises(ValueError):
        W.G[0, 0] = 1.0


@pytest.mark.skipif(not HAVE_TORCH, reason=NO_TORCH)
@pytest.mark.parametrize("kind", KINDS)
def test_torch_products_follow_in_place_edits(kind):
    import torch

    W, _ = build(kind, ArrayBackend("torch"), "float64", 5, 5)
    assert W.inner() is not W.inner()  # rebuilt per product from the current tensors
    x = np.random.default_rng(5).standard_normal(5)
    W.G.data.mul_(2.0)  # in place, as an optimizer step would
    G, H = as_numpy(W.G), as_numpy(W.H)
    A, B = operators(kind, 5, 5, v=None if kind == "shift" else as_numpy(W.v))
    D2 = sylvester_oracle(A, B, G, H)
    out = as_numpy(W.matvec(torch.as_tensor(x, dtype=W.G.dtype)))
    assert np.allclose(out, D2 @ x, atol=1e-12)


# -- gradients ------------------------------------------------------------------------------------
@pytest.mark.skipif(not HAVE_TORCH, reason=NO_TORCH)
@pytest.mark.parametrize("kind", KINDS)
def test_torch_gradients_through_inv_and_solve(kind):
    import torch

    rng = np.random.default_rng(6)
    n = 4  # small: gradcheck differentiates every generator entry by finite differences
    dtype = torch.float64 if kind == "shift" else torch.complex128
    G = torch.tensor(rng.standard_normal((n, 1)), dtype=dtype, requires_grad=True)
    H = torch.tensor(rng.standard_normal((1, n)), dtype=dtype, requires_grad=True)
    x = torch.tensor(rng.standard_normal(n), dtype=dtype)

    def make(G, H):
        if kind == "shift":
            return ldr.hankel_like(G, H, e=0.5, f=-1.0)
        return ldr.vandermonde_like(G, H, torch.tensor(nodes_on_circle(n)), f=1.0)

    # Through ldr.inv (a RowReversed whose generators come from solves) and ldr.solve with it.
    assert torch.autograd.gradcheck(lambda G, H: ldr.inv(make(G, H)).matvec(x), (G, H), fast_mode=True)
    Winv_leaf = ldr.inv(make(G.detach(), H.detach()))
    Gi = Winv_leaf.G.detach().requires_grad_(True)
    Hi = Winv_leaf.H.detach().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda Gi, Hi: ldr.solve(ldr.LDRMatrix(Winv_leaf.A, Winv_leaf.B, Gi, Hi), x), (Gi, Hi), fast_mode=True
    )


def test_arithmetic_compression_and_adapters_stay_in_the_class():
    # The inverse of a complex Hankel-like matrix, then everything an LDR matrix offers on it.
    rng = np.random.default_rng(7)
    n = 6
    W = ldr.hankel_like(rng.standard_normal((n, 2)) + 1j * rng.standard_normal((n, 2)), rng.standard_normal((2, n)),
                        e=1.0, f=0.5j)
    Winv = ldr.inv(W)
    D = np.linalg.inv(sylvester_oracle(W.A, W.B, np.asarray(W.G), np.asarray(W.H)))
    tol = 1e-12 * np.linalg.norm(D)
    for result, expected in ((Winv.conj(), D.conj()), (Winv + 2.0 * Winv, 3 * D), (-Winv, -D)):
        assert type(result) is ldr.RowReversed
        assert np.linalg.norm(result.dense() - expected) <= 10 * tol
    assert (Winv + 2.0 * Winv).rank == 2  # re-compressed: [G, 2G] [H; H] has rank 2
    assert ldr.displacement_rank(Winv.A, Winv.B, D) == 2
    C = ldr.compress(D, Winv.A, Winv.B)
    assert type(C) is ldr.RowReversed and np.linalg.norm(C.dense() - D) <= tol
    x = rng.standard_normal(n)
    op = Winv.aslinearoperator()
    assert np.allclose(op @ x, D @ x, atol=tol) and np.allclose(op.rmatvec(x), D.conj().T @ x, atol=tol)
