"""The Levinson route of ldr.solve for plain Toeplitz and Hankel matrices (issue 17).

Levinson–Durbin does not pivot: a zero leading principal minor stops it, a small one makes it
return garbage without a word. These tests try to make the route lie (zero, tiny and NaN
entries, complex and float32 data, transposes, batches of right-hand sides, gradients) and
check that every answer is right and that the pivoted elimination took over whenever Levinson
could not be trusted. Which path ran is observed by counting the GKO factorisations.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import LinAlgWarning

import ldr
import ldr.solvers as solvers
from conftest import HAVE_TORCH, NO_TORCH

ill_conditioned_ok = pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")


@pytest.fixture
def gko_count(monkeypatch):
    """How many times the pivoted elimination (``_Factorization``) was built, as a one-entry list."""
    count = [0]
    original = solvers._Factorization

    class Counting(original):
        def __init__(self, W):
            count[0] += 1
            super().__init__(W)

    monkeypatch.setattr(solvers, "_Factorization", Counting)
    return count


def backward_error(D, x, b):
    """max over columns of ‖D x − b‖₁ / (‖D‖₁ ‖x‖₁), x and b of shape (n,) or (n, k)."""
    x, b = x.reshape(len(D), -1), b.reshape(len(D), -1)
    return float(np.max(np.abs(D @ x - b).sum(0) / (np.linalg.norm(D, 1) * np.abs(x).sum(0))))


def random_toeplitz(rng, n, complex_data=False):
    def draw():
        v = rng.standard_normal(n)
        return v + 1j * rng.standard_normal(n) if complex_data else v

    c, r = draw(), draw()
    r[0] = c[0]
    return c, r


# -- the route is taken and is right ------------------------------------------------------------
@pytest.mark.parametrize("complex_data", [False, True])
@pytest.mark.parametrize("shape", [(), (3,), (2, 1, 3)], ids=["vector", "k=3", "batched-b"])
def test_levinson_route_matches_dense(gko_count, complex_data, shape):
    rng = np.random.default_rng(1)
    n = 40
    c, r = random_toeplitz(rng, n, complex_data)
    W, D = ldr.toeplitz(c, r), scipy.linalg.toeplitz(c, r)
    b = rng.standard_normal((n,) if not shape else shape[:-1] + (n, shape[-1]))
    x = ldr.solve(W, b)
    assert gko_count[0] == 0
    assert x.shape == b.shape and x.dtype == (np.complex128 if complex_data else np.float64)
    assert np.allclose(x, np.linalg.solve(D, b), rtol=1e-10, atol=1e-12)
    if not shape:
        assert backward_error(D, x, b) < 1e-15


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("kind", ["toeplitz", "toeplitz-e0-f1", "hankel", "symmetric", "hermitian"])
def test_levinson_route_for_every_plain_form(gko_count, kind, transpose):
    rng = np.random.default_rng(2)
    n = 23
    c, r = random_toeplitz(rng, n, complex_data=kind == "hermitian")
    if kind == "symmetric":
        r = c.copy()
    if kind == "hermitian":
        c[0] = c[0].real
        r = np.conj(c)
    W = {
        "hankel": lambda: ldr.hankel(c, r),
        "toeplitz-e0-f1": lambda: ldr.toeplitz(c, r, e=0.0, f=1.0),
    }.get(kind, lambda: ldr.toeplitz(c, r))()
    W = W.T if transpose else W
    assert solvers._plain_toeplitz(W) is not None
    b = rng.standard_normal(n)
    x = ldr.solve(W, b)
    assert gko_count[0] == 0
    assert backward_error(W.dense(), x, b) < 1e-15


@pytest.mark.skipif(not HAVE_TORCH, reason=NO_TORCH)
@pytest.mark.parametrize("kind", ["toeplitz", "toeplitz-e0-f1", "hankel"])
def test_torch_recovers_the_entries_from_the_generators(gko_count, kind):
    import torch

    rng = np.random.default_rng(3)
    n = 17
    c, r = random_toeplitz(rng, n)
    build = {
        "toeplitz": ldr.toeplitz,
        "hankel": ldr.hankel,
        "toeplitz-e0-f1": lambda c, r: ldr.toeplitz(c, r, e=0.0, f=1.0),
    }[kind]
    W = build(torch.tensor(c), torch.tensor(r))
    if kind != "hankel":
        assert W._entries is None  # torch keeps no entries: they are read from G and H
    b = torch.tensor(rng.standard_normal((n, 2)))
    x = ldr.solve(W, b)
    assert gko_count[0] == 0
    D = build(c, r).dense()
    assert np.allclose(x.numpy(), np.linalg.solve(D, b.numpy()), rtol=1e-10, atol=1e-12)


def test_only_plain_toeplitz_generators_take_the_route():
    rng = np.random.default_rng(4)
    n = 9
    assert solvers._plain_toeplitz(ldr.toeplitz_like(rng.standard_normal((n, 2)), rng.standard_normal((2, n)))) is None
    # Generators with the plain structure, not built by ldr.toeplitz: recognised, entries exact.
    c, r = random_toeplitz(rng, n)
    reference = ldr.toeplitz(c, r)
    W = ldr.toeplitz_like(np.array(reference.G), np.array(reference.H))
    found_c, found_r, hankel = solvers._plain_toeplitz(W)
    assert not hankel and np.allclose(found_c, c, atol=1e-15) and np.allclose(found_r, r, atol=1e-15)
    # A batched W goes to the elimination (one factorisation per entry).
    batched = ldr.toeplitz_like(np.stack([reference.G] * 2), np.array(reference.H))
    assert solvers._plain_toeplitz(batched) is None


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_single_precision(gko_count, dtype):
    rng = np.random.default_rng(5)
    n = 30
    c, r = random_toeplitz(rng, n, complex_data=dtype == np.complex64)
    c[0] += 8  # well-conditioned enough for float32
    r[0] = c[0]
    W = ldr.toeplitz(c.astype(dtype), r.astype(dtype))
    b = rng.standard_normal(n).astype(dtype)
    x = ldr.solve(W, b)
    assert x.dtype == dtype and gko_count[0] == 0
    D = scipy.linalg.toeplitz(c.astype(dtype), r.astype(dtype)).astype(np.complex128)
    assert backward_error(D, x.astype(np.complex128), b) < 4 * np.finfo(dtype).eps


# -- trying to make it lie --------------------------------------------------------------------------
def test_zero_leading_entry_falls_back(gko_count):
    rng = np.random.default_rng(6)
    n = 30
    c, r = random_toeplitz(rng, n)
    c[0] = r[0] = 0.0  # Levinson stops at the first minor; the matrix is nonsingular
    D = scipy.linalg.toeplitz(c, r)
    assert np.linalg.cond(D) < 1e6
    b = rng.standard_normal(n)
    x = ldr.solve(ldr.toeplitz(c, r), b)
    assert gko_count[0] == 1
    assert backward_error(D, x, b) < 1e-15


@pytest.mark.parametrize("tiny", [1e-9, 1e-13])
def test_tiny_leading_minor_falls_back(gko_count, tiny):
    # A nearly singular 2x2 leading minor: Levinson divides by ~tiny and returns a wrong answer
    # without an error; the backward-error check must catch it.
    rng = np.random.default_rng(7)
    n = 32
    c, r = random_toeplitz(rng, n)
    c[0] = r[0] = 1.0
    c[1], r[1] = 1.0, 1.0 - tiny  # det of the leading 2x2 minor = tiny
    D = scipy.linalg.toeplitz(c, r)
    assert np.linalg.cond(D) < 1e7
    b = rng.standard_normal(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinAlgWarning)
        scipy_levinson = scipy.linalg.solve_toeplitz((c, r), b)
    assert backward_error(D, scipy_levinson, b) > 1e-12  # the trap is real
    x = ldr.solve(ldr.toeplitz(c, r), b)
    assert backward_error(D, x, b) < 1e-15
    # At 1e-9 the refinement of the Gohberg–Semencul solve still converges (O(n log n) per
    # step); at 1e-13 it cannot, and the elimination takes over.
    assert gko_count[0] == (tiny < 1e-10)


def test_transposed_solve_falls_back_too(gko_count):
    rng = np.random.default_rng(8)
    n = 20
    c, r = random_toeplitz(rng, n)
    c[0] = r[0] = 0.0
    W = ldr.toeplitz(c, r)
    b = rng.standard_normal(n)
    x = ldr.solve(W.T, b)
    assert backward_error(W.dense().T, x, b) < 1e-15


def test_nan_right_hand_side_is_refused_not_solved():
    # As scipy.linalg.solve: a NaN in b would spread over x; it is refused before any route runs.
    rng = np.random.default_rng(9)
    c, r = random_toeplitz(rng, 8)
    b = rng.standard_normal(8)
    b[3] = np.nan
    with pytest.raises(ValueError, match="`b` must be finite"):
        ldr.solve(ldr.toeplitz(c, r), b)


def test_overflowing_inverse_is_not_passed_as_exact(gko_count):
    # float32, T[i+1, i] = -1e3: the entries of T^{-1} grow like 1e3^k and overflow, so the
    # Gohberg-Semencul solve is NaN. A NaN residual once scored backward error 0 and the NaN
    # solution came back without a word; it must fail the check and fall back, with a warning.
    n = 64
    c = np.zeros(n, np.float32)
    c[0], c[1] = 1.0, -1e3
    r = np.zeros(n, np.float32)
    r[0] = 1.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ldr.solve(ldr.toeplitz(c, r), np.ones(n, np.float32))
    assert gko_count[0] == 1
    assert any(w.category is LinAlgWarning and "ill-conditioned" in str(w.message) for w in caught)


def test_backward_error_of_a_non_finite_solution_is_infinite():
    bk = ldr.backends.get_backend(np.zeros(1))
    b, x = np.array([[1.0, 0.0]]), np.array([[np.nan, 0.0]])
    residual = np.array([[np.nan, 0.0]])
    assert np.isinf(solvers._backward_errors(bk, np.asarray(1.0), b, x, residual)).all()
    zero = np.zeros((1, 2))
    assert solvers._backward_errors(bk, np.asarray(1.0), zero, zero, zero).tolist() == [0.0]


def test_singular_plain_toeplitz_raises_or_warns():
    # Rank 2: Levinson breaks down at the third minor; the elimination then reports it.
    c = np.cos(np.arange(12.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LinAlgWarning)
        try:
            ldr.solve(ldr.toeplitz(c, c.copy()), np.ones(12))
        except ldr.SingularMatrixError:
            return
    assert any("ill-conditioned" in str(w.message) for w in caught)


@pytest.mark.parametrize("n, levinson", [(115, True), (256, False)])
def test_ill_conditioned_plain_toeplitz_warns(gko_count, n, levinson):
    # Prolate, cond 7e14 at n = 115 (above 1 / (n eps)): the Levinson solve passes its
    # backward-error check, the estimator (run because the cheap bound cannot exclude
    # ill-conditioning) warns. At n = 256 (cond 6e16) the solve falls back and warns.
    k = np.arange(1, n)
    c = np.concatenate([[0.9], np.sin(2 * np.pi * 0.45 * k) / (np.pi * k)])
    with pytest.warns(LinAlgWarning, match="ill-conditioned"):
        ldr.solve(ldr.toeplitz(c, c.copy()), np.ones(n))
    assert gko_count[0] == (not levinson)


def test_condition_bound_skips_the_estimator_only_when_safe():
    rng = np.random.default_rng(10)
    n = 50
    c, r = random_toeplitz(rng, n)
    W = ldr.toeplitz(c, r)
    factorization = solvers._factorize(W, np.float64, solvers._plain_toeplitz(W))
    norm_W, norm_inv = factorization.condition_report()
    D = W.dense()
    assert float(norm_W) == pytest.approx(np.linalg.norm(D, 1), rel=1e-14)
    assert float(norm_inv) >= np.linalg.norm(np.linalg.inv(D), 1) * (1 - 1e-9)  # an upper bound


@ill_conditioned_ok
@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 24),
    seed=st.integers(0, 2**32 - 1),
    zero_lead=st.booleans(),
    scale=st.sampled_from([1e-150, 1.0, 1e150]),
    tiny=st.sampled_from([0.0, 1e-15, 1e-8]),
)
def test_property_never_a_silent_wrong_answer(n, seed, zero_lead, scale, tiny):
    rng = np.random.default_rng(seed)
    c, r = random_toeplitz(rng, n)
    if zero_lead:
        c[0] = r[0] = tiny
    c, r = c * scale, r * scale
    D = scipy.linalg.toeplitz(c, r)
    b = rng.standard_normal(n)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LinAlgWarning)
        try:
            x = ldr.solve(ldr.toeplitz(c, r), b)
        except ldr.SingularMatrixError:
            assert np.linalg.cond(D / scale) > 1e12
            return
    if not caught:  # no word said: the answer must be right
        assert backward_error(D, x, b) < 1e-14


# -- inverse and gradients ----------------------------------------------------------------------------
def test_inv_of_plain_toeplitz(gko_count):
    rng = np.random.default_rng(11)
    c, r = random_toeplitz(rng, 16)
    W = ldr.toeplitz(c, r)
    assert np.allclose(ldr.inv(W).dense(), np.linalg.inv(W.dense()), atol=1e-11)
    assert gko_count[0] == 0


@pytest.mark.skipif(not HAVE_TORCH, reason=NO_TORCH)
@pytest.mark.parametrize("zero_lead", [False, True], ids=["levinson", "fallback"])
def test_torch_gradients_on_the_levinson_route(zero_lead):
    import torch

    rng = np.random.default_rng(12)
    n = 6
    c, r = random_toeplitz(rng, n)
    if zero_lead:
        c[0] = r[0] = 0.0
    cc, rr = (torch.tensor(a, requires_grad=True) for a in (c, r))
    b = torch.tensor(rng.standard_normal((n, 2)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda c, r, b: ldr.solve(ldr.toeplitz(c, r), b, check=False), (cc, rr, b))
