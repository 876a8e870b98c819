"""The contract every LDR structure satisfies, on every backend, against independent dense oracles.

One suite for all structures (generator classes and classic constructors): each property is a
``check_*`` function of a :class:`cases.Case`; hypothesis draws the cases (sizes 1, 2, primes,
odd, powers of two, m ≠ n; ranks 1..8; several corners f; float64/float32/complex128; batch
shapes), and ``test_edge_cases`` runs every check on fixed edge cases (size 1, tiny m ≠ n).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st

import ldr
from cases import (
    build_case,
    shift_dense,
    sylvester_oracle,
    toeplitz_like_krylov_oracle,
    random_array,
)
from strategies import (
    CLASSIC,
    STRUCTURES,
    CaseParams,
    case_params,
    pairs_for,
    seeds,
    sizes,
    spectral_gap,
    ranks,
)
from tolerance import as_numpy, assert_close, dtype_name

def _norm(a):
    """Frobenius norm of a whole stack."""
    return float(np.linalg.norm(np.ravel(a)))


def _op_norm(M):
    """Largest spectral norm over a stack of matrices (batched nodes give batched A, B)."""
    return float(np.linalg.norm(M, 2, axis=(-2, -1)).max())


def check_product(case, out, expected, x64, what):
    """Shape and dtype of a product, then its value within tol·‖W‖·‖x‖."""
    assert tuple(out.shape) == expected.shape, f"{what}: shape {tuple(out.shape)}, expected {expected.shape}"
    assert dtype_name(out.dtype) == case.dtype, f"{what}: dtype {out.dtype}, expected {case.dtype}"
    assert_close(out, expected, scale=case.norm * _norm(x64), dtype=case.dtype, what=what)


# -- the properties ----------------------------------------------------------------------------


def check_dense(case):
    """W.dense() equals the independent oracle, in the case's dtype."""
    D = case.W.dense()
    assert dtype_name(D.dtype) == case.dtype
    assert_close(D, case.oracle, scale=case.norm, dtype=case.dtype, what="dense()")


def check_displacement(case):
    """A W − W B = G H for W = W.dense(), with A, B built densely in the test."""
    D = as_numpy(case.W.dense())
    scale = (_op_norm(case.A) + _op_norm(case.B)) * _norm(D) + _norm(case.GH)
    assert_close(case.A @ D - D @ case.B, case.GH, scale=scale, dtype=case.dtype, what="A W - W B")


def check_library_displacement(case):
    """ldr.displacement(W.A, W.B, W.dense()) = G H (batched operators too); displacement_rank <= r."""
    D = case.W.dense()
    out = ldr.displacement(case.W.A, case.W.B, D)
    assert tuple(out.shape) == case.GH.shape
    scale = (_op_norm(case.A) + _op_norm(case.B)) * case.norm + _norm(case.GH)
    assert_close(out, case.GH, scale=scale, dtype=case.dtype, what="ldr.displacement")
    if not case.batch and case.dtype in ("float64", "complex128"):
        assert ldr.displacement_rank(case.W.A, case.W.B, case.backend.asarray(case.oracle)) <= case.W.rank


def check_matmul_vector(case):
    """W @ x for x of shape (n,) gives (*batch, m); W.T @ y for y (m,) gives (*batch, n)."""
    m, n = case.shape
    x, x64 = case.operand((n,))
    check_product(case, case.W @ x, case.oracle @ x64, x64, "W @ x")
    y, y64 = case.operand((m,))
    check_product(case, case.W.T @ y, np.swapaxes(case.oracle, -1, -2) @ y64, y64, "W.T @ y")


def check_matmul_matrix(case):
    """W @ X for X (n, k) and stacked X (3, n, k), and the same for W.T, as numpy.matmul."""
    m, n = case.shape
    WT = np.swapaxes(case.oracle, -1, -2)
    for shape in [(n, 3), (3, n, 2), (n, 1)]:
        X, X64 = case.operand(shape)
        check_product(case, case.W @ X, np.matmul(case.oracle, X64), X64, f"W @ X{shape}")
    for shape in [(m, 2), (3, m, 1)]:
        Y, Y64 = case.operand(shape)
        check_product(case, case.W.T @ Y, np.matmul(WT, Y64), Y64, f"W.T @ Y{shape}")


def check_matvec(case):
    """W.matvec / W.rmatvec act on the last axis of (..., n) / (..., m), broadcasting batches."""
    m, n = case.shape
    for shape in [(n,), (3, n), (2, 1, n)]:
        x, x64 = case.operand(shape)
        expected = np.matmul(case.oracle, x64[..., None])[..., 0]
        check_product(case, case.W.matvec(x), expected, x64, f"W.matvec(x{shape})")
        # W.T.rmatvec is the adjoint of W.T, i.e. conj(W) x, through the transposed view.
        check_product(case, case.W.T.rmatvec(x), np.matmul(case.oracle.conj(), x64[..., None])[..., 0], x64,
                      f"W.T.rmatvec(x{shape})")
    for shape in [(m,), (3, m)]:
        y, y64 = case.operand(shape)
        # rmatvec is the adjoint W^H y (scipy's meaning); W.T.matvec is the plain transpose.
        adjoint = np.matmul(y64[..., None, :], case.oracle.conj())[..., 0, :]
        check_product(case, case.W.rmatvec(y), adjoint, y64, f"W.rmatvec(y{shape})")
        transpose = np.matmul(y64[..., None, :], case.oracle)[..., 0, :]
        check_product(case, case.W.T.matvec(y), transpose, y64, f"W.T.matvec(y{shape})")


def check_rmatmul(case):
    """x @ W multiplies rows: x (m,) gives (*batch, n), X (k, m) gives (*batch, k, n)."""
    m, n = case.shape
    for shape in [(m,), (2, m)]:
        x, x64 = case.operand(shape)
        check_product(case, x @ case.W, np.matmul(x64, case.oracle), x64, f"x{shape} @ W")


def check_adjoint(case):
    """⟨W x, y⟩ = ⟨x, Wᵀ y⟩ (bilinear, no conjugation: Wᵀ is the transpose) per batch entry."""
    m, n = case.shape
    x, x64 = case.operand(case.batch + (n,))
    y, y64 = case.operand(case.batch + (m,))
    Wx, WTy = as_numpy(case.W.matvec(x)), as_numpy(case.W.T.matvec(y))
    lhs, rhs = np.sum(Wx * y64, axis=-1), np.sum(x64 * WTy, axis=-1)
    assert_close(lhs, rhs, scale=case.norm * _norm(x64) * _norm(y64), dtype=case.dtype, what="adjoint")


def check_transpose_view(case):
    """W.T shares the generators: shape reversed, dense() is the transpose, W.T.T is W."""
    m, n = case.shape
    assert case.W.T.shape == (n, m) and case.W.T.batch_shape == case.batch
    assert case.W.T.T is case.W
    assert_close(case.W.T.dense(), np.swapaxes(case.oracle, -1, -2), scale=case.norm, dtype=case.dtype,
                 what="W.T.dense()")


PROPERTIES = [
    check_dense,
    check_displacement,
    check_library_displacement,
    check_matmul_vector,
    check_matmul_matrix,
    check_matvec,
    check_rmatmul,
    check_adjoint,
    check_transpose_view,
]


@pytest.mark.parametrize("check", PROPERTIES, ids=lambda c: c.__name__[6:])
@pytest.mark.parametrize("structure", STRUCTURES)
@given(data=st.data())
def test_contract(backend, structure, check, data):
    check(build_case(data.draw(case_params(structure), label="params"), backend))


def _edge_params():
    """Fixed edge cases for every structure: size 1, the smallest m ≠ n, a prime with batches."""
    out = []
    for s in STRUCTURES:
        shapes = [(1, 2), (2, 1), (3, 2)] if s == "toeplitz_like_rect" else [(1, 1), (2, 2)]
        if s not in ("toeplitz_like", "toeplitz_like_rect", "circulant"):
            shapes += [(1, 3), (5, 1)]
        for m, n in shapes:
            e, f = (1.0, 0.0) if m != n else (1.0, -1.0)
            if s == "circulant":
                e, f = 1.0, -1.0
            elif s in ("vandermonde", "vandermonde_like"):
                f = 0.0
            batch = ((2, 1), (3,)) if s not in CLASSIC else ((), ())
            out.append(pytest.param(CaseParams(s, m, n, r=2, e=e, f=f, batch_g=batch[0], batch_h=batch[1],
                                               seed=m * 10 + n), id=f"{s}-{m}x{n}"))
    return out


@pytest.mark.parametrize("check", PROPERTIES, ids=lambda c: c.__name__[6:])
@pytest.mark.parametrize("params", _edge_params())
def test_edge_cases(backend, params, check):
    check(build_case(params, backend))


# -- dtypes and special inputs -------------------------------------------------------------------


def _single(structure, dtype="float64", m=7, n=None, seed=3, batch=((), ())):
    n = m if n is None else n
    if structure == "toeplitz_like_rect" and m == n:
        n = m - 2
    if structure == "circulant":
        n = m
    e, f = (1.0, -1.0) if m == n else (1.0, 0.0)
    if structure in ("vandermonde", "vandermonde_like"):
        f = -1.0
    return CaseParams(structure, m, n, r=2, e=e, f=f, dtype=dtype, batch_g=batch[0], batch_h=batch[1], seed=seed)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_empty_batch(backend, structure):
    """x of shape (0, n) through matvec gives (0, m); (0, m) through rmatvec gives (0, n)."""
    case = build_case(_single(structure), backend)
    m, n = case.shape
    x, _ = case.operand((0, n))
    y = case.W.matvec(x)
    assert tuple(y.shape) == (0, m) and dtype_name(y.dtype) == case.dtype
    z = case.W.rmatvec(case.operand((0, m))[0])
    assert tuple(z.shape) == (0, n)
    assert tuple((case.W @ case.operand((n, 0))[0]).shape) == (m, 0)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_integer_input_promotes_to_float64(backend, structure):
    """An integer x computes in float64 (float64 generators): the dtype rule for integers."""
    case = build_case(_single(structure), backend)
    m, n = case.shape
    x64 = np.arange(n, dtype=np.int64) - 2
    x = backend.asarray(x64)
    out = case.W @ x
    assert dtype_name(out.dtype) == "float64"
    assert_close(out, case.oracle @ x64, scale=case.norm * _norm(x64), dtype="float64", what="W @ int x")
    out = case.W.matvec(backend.asarray(np.ones((2, n), dtype=np.int32)))
    assert dtype_name(out.dtype) == "float64"


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("dtype", ["float32", "complex128"])
def test_product_dtype(backend, structure, dtype):
    """float32 generators and x give float32; complex generators give complex128 for real x."""
    case = build_case(_single(structure, dtype), backend)
    n = case.shape[1]
    x, x64 = case.operand((n,), dtype="float32" if dtype == "float32" else "float64")
    out = case.W @ x
    assert dtype_name(out.dtype) == dtype and dtype_name(case.W.dtype) == dtype
    assert_close(out, case.oracle @ x64, scale=case.norm * _norm(x64), dtype=dtype, what="W @ x")


# Half-precision generators and x compute in float32 and come back in their own dtype. Sizes are
# fixed and small: v**-n and the output must fit float16's range (max 65504).
@pytest.mark.parametrize("half", ["float16", "bfloat16"])
@pytest.mark.parametrize("structure", STRUCTURES)
def test_torch_half_precision(torch_backend, structure, half):
    case = build_case(_single(structure, half, m=8), torch_backend)
    m, n = case.shape
    x, x64 = case.operand((3, n))
    out = case.W.matvec(x)
    assert out.dtype == getattr(case.backend.torch, half)
    expected = np.matmul(case.oracle, x64[..., None])[..., 0]
    assert_close(out, expected, scale=case.norm * _norm(x64), dtype=half, what="W.matvec(half x)")
    y, y64 = case.operand((m,))
    out = case.W.T @ y
    assert out.dtype == getattr(case.backend.torch, half)
    assert_close(out, case.oracle.T @ y64, scale=case.norm * _norm(y64), dtype=half, what="W.T @ y")


# -- reconstruction, compression -------------------------------------------------------------------


def _kron_condition(A, B):
    """Condition number of the Sylvester operator X -> A X - X B (its Kronecker matrix)."""
    m, n = A.shape[-1], B.shape[-1]
    K = np.kron(np.eye(n), A) - np.kron(B.T, np.eye(m))
    s = np.linalg.svd(K, compute_uv=False)
    return s[0] / s[-1]


@pytest.mark.parametrize("structure", STRUCTURES)
@given(data=st.data())
def test_reconstruction_equals_solve_sylvester(backend, structure, data):
    """W.dense() = scipy.linalg.solve_sylvester(A, -B, G H) on small sizes."""
    params = data.draw(case_params(structure, dtypes=st.just("float64"), max_size=16), label="params")
    case = build_case(params, backend)
    expected = sylvester_oracle(case.A, case.B, case.GH)
    # Bartels-Stewart is backward stable: its forward error grows with the condition number of
    # the Sylvester operator (large for Vandermonde nodes with f = 0, where W carries v^-n).
    factor = max(1.0, _kron_condition(case.A[(0,) * (case.A.ndim - 2)], case.B[(0,) * (case.B.ndim - 2)]) / 100)
    assert_close(case.W.dense(), expected, scale=_norm(expected), dtype="float64", factor=factor,
                 what="dense() vs solve_sylvester")


@pytest.mark.parametrize("hankel", [False, True], ids=["toeplitz_like", "hankel_like"])
@given(n=sizes, r=ranks, data=st.data(), seed=seeds)
def test_square_shift_classes_equal_krylov_sum(backend, hankel, n, r, data, seed):
    """Square (Z_e, Z_f) and (Z_e, Z_fᵀ): W = (e−f)⁻¹ Σ K(Z_e, g_l) K(Z_f, J h_l) [J], Krylov built densely."""
    e, f = data.draw(st.sampled_from(pairs_for(n, n)), label="(e, f)")
    rng = np.random.default_rng(seed)
    G, H = random_array(rng, (n, r), "float64"), random_array(rng, (r, n), "float64")
    make = ldr.hankel_like if hankel else ldr.toeplitz_like
    W = make(backend.asarray(G), backend.asarray(H), e=e, f=f)
    expected = toeplitz_like_krylov_oracle(G, H, e, f, hankel=hankel)
    assert_close(W.dense(), expected, scale=_norm(expected), dtype="float64", what="dense() vs Krylov sum")


@pytest.mark.parametrize("structure", STRUCTURES)
@given(data=st.data())
def test_compress_dense_round_trip(backend, structure, data):
    """compress(W.dense(), A, B, rank=r) reproduces W when the displacement rank is <= r."""
    params = data.draw(case_params(structure, dtypes=st.sampled_from(["float64", "complex128"]),
                                   batched=False, max_size=13), label="params")
    case = build_case(params, backend)
    W2 = ldr.compress(case.W.dense(), case.W.A, case.W.B, rank=case.W.rank)
    assert W2.rank <= case.W.rank and type(W2) is type(case.W)
    # The SVD perturbs the generators by eps·‖G H‖; the reconstruction amplifies that by the
    # norm of the inverse displacement operator, i.e. by its condition number.
    factor = max(1.0, _kron_condition(case.A, case.B) / 100)
    assert_close(W2.dense(), case.oracle, scale=case.norm, dtype=params.dtype, factor=factor,
                 what="compress(dense).dense()")


@pytest.mark.xfail(
    strict=True,
    reason="(Z_0, Z_0.5^T) at 31x1: T_ef has norm ~2^31, so the generators of an O(1) Hankel "
    "matrix cancel down to ~1e-7 relative accuracy; the default pair (1, 0) has no such loss",
)
def test_classic_hankel_with_nonnormal_pair_loses_accuracy(numpy_backend):
    """The known limit behind MAX_CLASSIC_GROWTH in strategies.py, kept visible as an xfail."""
    rng = np.random.default_rng(5)
    c, r = rng.standard_normal(31), rng.standard_normal(1)
    expected = scipy.linalg.hankel(c, r)
    W = ldr.hankel(c, r, e=0.0, f=0.5)
    assert_close(W.dense(), expected, scale=_norm(expected), dtype="float64", what="hankel(e=0, f=0.5)")



# -- rectangular Toeplitz-like -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "m, n, e, f",
    [
        (154, 153, -1.0, 1.0),  # (Z_1, Z_-1) is singular here: v2(154) > v2(153)
        (153, 154, 1.0, -1.0),
        (12, 8, 1.0, 0.0),  # the rectangular default pair
        (12, 8, 2.5, -1.0),
        (12, 8, 1.0, -1.0),  # nonsingular: v2(12) = 2 < v2(8) = 3
        (12, 8, 0.0, 2.5),
    ],
)
def test_rectangular_toeplitz_like(backend, m, n, e, f):
    rng = np.random.default_rng(m * n)
    G, H = random_array(rng, (m, 3), "float64"), random_array(rng, (3, n), "float64")
    W = ldr.toeplitz_like(backend.asarray(G), backend.asarray(H), e=e, f=f)
    if (e, f) == (1.0, 0.0):
        assert (W.e, W.f) == (1.0, 0.0) and ldr.toeplitz_like(backend.asarray(G), backend.asarray(H)).f == 0.0
    A, B = shift_dense(m, e), shift_dense(n, f)
    expected = scipy.linalg.solve_sylvester(A, -B, G @ H)
    scale = _norm(expected)
    D = as_numpy(W.dense())
    assert_close(A @ D - D @ B, G @ H, scale=4 * scale, dtype="float64", what="A W - W B")
    # The spectra of (Z_-1, Z_1) at 154×153 are only 1.3e-4 apart: solve_sylvester's forward
    # error is ~ eps / gap (the library's residual above is 10x smaller than the oracle's).
    factor = max(1.0, 1e-2 / spectral_gap(m, n, e, f))
    assert_close(D, expected, scale=scale, dtype="float64", factor=factor, what="dense()")
    x, y = rng.standard_normal((n, 2)), rng.standard_normal(m)
    assert_close(W @ backend.asarray(x), expected @ x, scale=scale * _norm(x), dtype="float64", factor=factor,
                 what="W @ X")
    assert_close(W.T @ backend.asarray(y), expected.T @ y, scale=scale * _norm(y), dtype="float64", factor=factor,
                 what="W.T @ y")


# -- scipy LinearOperator (NumPy only) ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
@pytest.mark.parametrize("structure", STRUCTURES)
def test_aslinearoperator(numpy_backend, structure, dtype):
    """matvec, rmatvec (the adjoint, conjugated for complex), matmat, rmatmat and dtype."""
    case = build_case(_single(structure, dtype), numpy_backend)
    op = case.W.aslinearoperator()
    m, n = case.shape
    assert op.shape == (m, n) and op.dtype == np.dtype(dtype)
    D, DH = case.oracle, case.oracle.conj().T
    x, y = case.operand((n,))[1], case.operand((m,))[1]
    X, Y = case.operand((n, 3))[1], case.operand((m, 2))[1]
    for what, got, want, arg in [
        ("matvec", op.matvec(x), D @ x, x),
        ("op @ x", op @ x, D @ x, x),
        ("rmatvec", op.rmatvec(y), DH @ y, y),
        ("matmat", op.matmat(X), D @ X, X),
        ("rmatmat", op.rmatmat(Y), DH @ Y, Y),
        ("adjoint", op.H.matvec(y), DH @ y, y),
    ]:
        assert_close(got, want, scale=case.norm * _norm(arg), dtype=dtype, what=f"LinearOperator.{what}")
    # scipy hands column vectors (n, 1) to matvec as well.
    assert op.matvec(x[:, None]).shape == (m, 1)
    # scipy's own aslinearoperator duck-types W.matvec / W.rmatvec: rmatvec must be the adjoint
    # there too (it was the plain transpose, a silent error for complex W in lsqr, lsmr, ...).
    import scipy.sparse.linalg

    duck = scipy.sparse.linalg.aslinearoperator(case.W)
    assert_close(duck.rmatvec(y), DH @ y, scale=case.norm * _norm(y), dtype=dtype, what="aslinearoperator(W).rmatvec")
    assert_close(duck.matvec(x), D @ x, scale=case.norm * _norm(x), dtype=dtype, what="aslinearoperator(W).matvec")


@pytest.mark.parametrize("n, e, f", [(257, 1.0, -1.0), (300, 2.0, -0.5), (256, -1.0, 0.0), (97, 0.5j, 1.0)])
def test_square_toeplitz_like_dense_matches_the_identity_products(backend, n, e, f):
    """dense() of a square Toeplitz-like (and Hankel-like) matrix, built from the column recursion,
    equals W applied to the identity by the FFT products, at sizes past hypothesis' small ones."""
    rng = np.random.default_rng(n)
    dtype = "complex128" if isinstance(e, complex) else "float64"
    G = backend.asarray(random_array(rng, (2, n, 3), dtype))
    H = backend.asarray(random_array(rng, (2, 3, n), dtype))
    eye = backend.asarray(np.tile(np.eye(n), (2, 1, 1)), dtype)
    for W in (ldr.toeplitz_like(G, H, e=e, f=f), ldr.hankel_like(G, H, e=e, f=f)):
        products = as_numpy(W @ eye)
        assert_close(W.dense(), products, scale=_norm(products), dtype=dtype, factor=np.sqrt(n),
                     what=f"{type(W).__name__} dense() vs W @ I")
