"""Displacement operators: dense forms, spectra, fast products from both sides, Z_f^n = f I, transposes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ldr
from cases import shift_dense
from strategies import F_VALUES, SIZES, seeds, shift_roots, sizes
from tolerance import as_numpy, assert_close

F_WITH_COMPLEX = F_VALUES + (1j, 0.5 - 0.5j)


def _operators(n, rng):
    """Every operator kind of size n with its dense form built in the test."""
    v = rng.standard_normal(n)
    out = [(ldr.Identity(n), np.eye(n)), (ldr.Zero(n), np.zeros((n, n))), (ldr.Diagonal(v), np.diag(v))]
    for f in F_WITH_COMPLEX:
        out.append((ldr.Shift(n, f), shift_dense(n, f)))
        out.append((ldr.Shift(n, f, transpose=True), shift_dense(n, f, transpose=True)))
    return out


@pytest.mark.parametrize("n", SIZES)
def test_dense_forms(n):
    for op, expected in _operators(n, np.random.default_rng(n)):
        np.testing.assert_array_equal(op.dense(), expected, err_msg=repr(op))
        assert op.shape == (n, n) and op.size == n


def test_shift_dense_layout():
    """Z_f: ones on the sub-diagonal, f in the top-right corner; n = 1 gives [f]."""
    np.testing.assert_array_equal(ldr.Shift(3, 2.5).dense(), [[0, 0, 2.5], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(ldr.Shift(1, -2.0).dense(), [[-2.0]])
    np.testing.assert_array_equal(ldr.Shift(3, 0.0, transpose=True).dense(), [[0, 1, 0], [0, 0, 1], [0, 0, 0]])


def _match_spectra(computed, reference):
    """Largest distance from a computed eigenvalue to the nearest reference one, and back."""
    d = np.abs(np.asarray(computed)[:, None] - np.asarray(reference)[None, :])
    return max(d.min(axis=1).max(), d.min(axis=0).max())


@pytest.mark.parametrize("f", [v for v in F_WITH_COMPLEX if v != 0])
@pytest.mark.parametrize("n", SIZES)
def test_shift_eigenvalues_match_eigvals(n, f):
    """σ(Z_f) = roots of λ^n = f; Z_f (f ≠ 0) is diagonalisable, so eigvals is accurate."""
    op = ldr.Shift(n, f)
    eig = op.eigenvalues()
    assert eig.shape == (n,)
    assert _match_spectra(eig, np.linalg.eigvals(shift_dense(n, f))) < 1e-10
    np.testing.assert_allclose(eig**n, np.full(n, f), atol=1e-12 * max(1, abs(f)))
    assert _match_spectra(op.T.eigenvalues(), eig) < 1e-12


@pytest.mark.parametrize("n", SIZES)
def test_nilpotent_and_simple_spectra(n):
    # Z_0 is a Jordan block: eigvals would return a circle of radius ~eps^(1/n), so the exact
    # spectrum {0} is checked directly.
    np.testing.assert_array_equal(ldr.Shift(n, 0.0).eigenvalues(), np.zeros(n))
    np.testing.assert_array_equal(ldr.Identity(n).eigenvalues(), np.ones(n))
    np.testing.assert_array_equal(ldr.Zero(n).eigenvalues(), np.zeros(n))
    v = np.random.default_rng(n).standard_normal(n) + 1j
    assert _match_spectra(ldr.Diagonal(v).eigenvalues(), np.linalg.eigvals(np.diag(v))) == 0


@given(n=sizes, f=st.sampled_from(F_WITH_COMPLEX), k=st.sampled_from([1, 3]), seed=seeds)
def test_left_right_products(backend, n, f, k, seed):
    """A.left(X) = A @ X and A.right(Y) = Y @ A for every operator, batched X, both backends."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2, n, k))
    Y = rng.standard_normal((2, k, n))
    for op, D in _operators(n, rng):
        if isinstance(op, ldr.Shift) and op.f != f:
            continue
        if isinstance(op, ldr.Diagonal):
            op = ldr.Diagonal(backend.asarray(op.v))
        left, right = op.left(backend.asarray(X)), op.right(backend.asarray(Y))
        scale = max(1.0, abs(f))
        assert_close(left, D @ X, scale=scale * np.linalg.norm(X), dtype="float64", what=f"{op!r}.left")
        assert_close(right, Y @ D, scale=scale * np.linalg.norm(Y), dtype="float64", what=f"{op!r}.right")


@pytest.mark.parametrize("f", F_WITH_COMPLEX)
@pytest.mark.parametrize("n", [1, 2, 5, 8, 13])
def test_shift_power_n_is_f_identity(n, f):
    """Z_f^n = f I: by dense powers and by n applications of the fast left product."""
    Z = ldr.Shift(n, f)
    np.testing.assert_allclose(np.linalg.matrix_power(Z.dense(), n), f * np.eye(n), atol=1e-14)
    X = np.eye(n, dtype=complex)
    for _ in range(n):
        X = Z.left(X)
    np.testing.assert_allclose(X, f * np.eye(n), atol=1e-14)
    Y = np.eye(n, dtype=complex)
    for _ in range(n):
        Y = Z.T.right(Y)
    np.testing.assert_allclose(Y, f * np.eye(n), atol=1e-14)


@pytest.mark.parametrize("f", F_WITH_COMPLEX)
def test_transpose(f):
    Z = ldr.Shift(6, f)
    np.testing.assert_array_equal(Z.T.dense(), Z.dense().T)
    assert Z.T.transpose and not Z.transpose and Z.T.T == Z and Z.T != Z
    for op in (ldr.Identity(4), ldr.Zero(4)):
        assert op.T is op
    D = ldr.Diagonal(np.arange(3.0))
    np.testing.assert_array_equal(D.T.dense(), D.dense())


def test_diagonal_batched(backend):
    """Batched nodes (2, n): dense is a stack of diagonals, left/right scale rows/columns."""
    v = np.arange(6.0).reshape(2, 3) + 1
    op = ldr.Diagonal(backend.asarray(v))
    assert op.size == 3
    dense = as_numpy(op.dense())
    np.testing.assert_array_equal(dense, np.stack([np.diag(row) for row in v]))
    X = np.ones((2, 3, 4))
    np.testing.assert_array_equal(as_numpy(op.left(backend.asarray(X))), dense @ X)
    np.testing.assert_array_equal(as_numpy(op.right(backend.asarray(X.swapaxes(-1, -2)))), X.swapaxes(-1, -2) @ dense)
    np.testing.assert_array_equal(op.eigenvalues(), v.astype(complex))


def test_dense_like_and_dtype(backend):
    """dense(dtype, like) returns the backend's array type in the requested dtype."""
    like = backend.asarray(np.ones(2))
    for op in (ldr.Shift(3, -1.0), ldr.Identity(3), ldr.Zero(3)):
        D = op.dense(dtype=backend.dtype("float32"), like=like)
        assert type(D) is type(like) and str(D.dtype).endswith("float32")
        np.testing.assert_array_equal(as_numpy(D), op.dense())


@pytest.mark.parametrize(
    "A, B",
    [
        (ldr.Shift(4, 1.0), ldr.Shift(4, -1.0)),
        (ldr.Shift(12, 1.0), ldr.Shift(8, -1.0)),
        (ldr.Shift(154, -1.0), ldr.Shift(153, 1.0)),
        (ldr.Shift(5, 1.0), ldr.Shift(7, 0.0, transpose=True)),
        (ldr.Identity(3), ldr.Zero(4)),
        (ldr.Diagonal(np.array([0.5, 2.0])), ldr.Shift(3, 0.0)),
        (ldr.Diagonal(np.array([1.0, 2.0])), ldr.Diagonal(np.array([1.5, 3.0]))),
    ],
    ids=["Z1-Zm1", "Z1-Zm1-12x8", "Zm1-Z1-154x153", "Z1-Z0T", "I-0", "diag-Z0", "diag-diag"],
)
def test_check_nonsingular_accepts(A, B):
    ldr.check_nonsingular(A, B)
    # Cross-check with the independent spectrum computation used by the strategies.
    lam = A.eigenvalues()
    mu = shift_roots(B.size, B.f) if isinstance(B, ldr.Shift) else B.eigenvalues()
    assert np.abs(lam[:, None] - mu[None, :]).min() > 1e-6


# Large spectra: collisions are found with a k-d tree in O((m + n) log n) instead of forming all
# m·n distances (8 GiB and 15 s at m = n = 16384). Both paths must agree on every pair set.
@given(m=st.integers(1, 40), n=st.integers(1, 40), seed=seeds, complex_nodes=st.booleans(),
       planted=st.sampled_from(["none", "exact", "rounding", "zero", "just-apart"]))
def test_collision_search_by_tree_agrees_with_all_pairs(m, n, seed, complex_nodes, planted):
    from ldr.operators import _collision, _margins, _tree_collision

    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.integers(-3, 4)
    lam, mu = scale * rng.standard_normal(m), scale * rng.standard_normal(n)
    if complex_nodes:
        lam, mu = lam + 1j * scale * rng.standard_normal(m), mu + 1j * scale * rng.standard_normal(n)
    i, j = rng.integers(m), rng.integers(n)
    if planted == "exact":
        mu[j] = lam[i]
    elif planted == "rounding":
        mu[j] = lam[i] * (1 + 8 * np.finfo(float).eps)
    elif planted == "zero":
        lam[i], mu[j] = 0.0, 0.0
    elif planted == "just-apart":
        mu[j] = lam[i] * (1 + 1e-9)
    dense, tree = _collision(lam, mu), _tree_collision(lam, mu)
    assert (dense is None) == (tree is None)
    if planted in ("exact", "rounding", "zero"):
        assert dense is not None
    if dense is not None:
        assert _margins(lam[dense[0]], mu[dense[1]]) == pytest.approx(tree[0], abs=1e-300)


def test_large_spectra_collisions_are_found_without_all_pairs():
    n = 4096  # 16.7 M pairs: above the all-pairs threshold
    v = np.arange(n) / n
    ldr.check_nonsingular(ldr.Diagonal(v), ldr.Diagonal(v + 0.5 / n))  # interlaced: no collision
    u = v + 0.5 / n
    u[3001] = v[17] * (1 + 4 * np.finfo(float).eps)
    with pytest.raises(ldr.SingularDisplacementError, match=r"A: v\[17\]; B: v\[3001\]"):
        ldr.check_nonsingular(ldr.Diagonal(v), ldr.Diagonal(u))
    roots = np.exp(1j * np.pi * (2 * np.arange(n) + 1) / n)  # the n-th roots of -1
    ldr.check_nonsingular(ldr.Diagonal(roots), ldr.Shift(n, 1.0))
    with pytest.raises(ldr.SingularDisplacementError, match="a root of lambda"):
        ldr.check_nonsingular(ldr.Diagonal(roots), ldr.Shift(n, -1.0))
    # Batched nodes: the collision sits in batch entry 1.
    batch = np.stack([u, v + 0.5 / n])
    batch[0, 3001] = 0.75 + 0.5 / n
    batch[1, 5] = v[4000]
    with pytest.raises(ldr.SingularDisplacementError, match=r"batch entry \(1,\)"):
        ldr.check_nonsingular(ldr.Diagonal(v), ldr.Diagonal(batch))
