"""ldr.solve, ldr.inv, ldr.slogdet / ldr.det against dense oracles (issue 17).

The oracles are the independent dense matrices of ``cases.build_case`` and NumPy's
``linalg.solve`` / ``slogdet`` / ``inv``. Random structured matrices can be ill-conditioned
(real Cauchy and Vandermonde nodes), so solutions are judged by their backward error
``‖W x − b‖ / (‖W‖ ‖x‖)``, which a stable solver keeps at rounding level whatever the
condition number; forward errors are compared with the condition number in view.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.linalg import LinAlgWarning

import ldr
from cases import ArrayBackend, build_case
from conftest import HAVE_TORCH, NO_TORCH
from strategies import square_case_params
from tolerance import as_numpy, tolerance

SQUARE_STRUCTURES = (
    "toeplitz_like",
    "hankel_like",
    "vandermonde_like",
    "cauchy_like",
    "low_rank",
    "toeplitz",
    "hankel",
    "circulant",
    "vandermonde",
    "cauchy",
)
ill_conditioned_ok = pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")


def backward_error(W64, x, b):
    """max over columns of ‖W x − b‖ / (‖W‖_F ‖x‖), in float64 (x, b of shape (..., n, k))."""
    residual = np.linalg.norm(W64 @ x - b, axis=-2)
    scale = np.linalg.norm(W64, axis=(-2, -1))[..., None] * np.linalg.norm(x, axis=-2)
    return float(np.max(residual / np.where(scale > 0, scale, 1.0)))


# -- solve over every class, backend, dtype ----------------------------------------------------
@pytest.mark.parametrize("structure", SQUARE_STRUCTURES)
@ill_conditioned_ok
@settings(max_examples=6)  # 10 classes x 2 backends: 120 solves with condition estimates
@given(data=st.data())
def test_solve_backward_error(structure, backend, data):
    params = data.draw(square_case_params(structure, max_size=17))
    case = build_case(params, backend)
    n = params.n
    k = 2
    b, b64 = case.operand(case.batch + (n, k))
    if structure == "low_rank" and params.r < n:
        with pytest.raises(ldr.SingularMatrixError, match="low-rank"):
            ldr.solve(case.W, b)
        return
    x = ldr.solve(case.W, b)
    assert tuple(x.shape) == case.batch + (n, k)
    assert backend.dtype_name(x) == case.dtype
    eta = backward_error(case.oracle, as_numpy(x), b64)
    # Refinement keeps float64 at rounding level; the tolerance table's 1e-12 is the target.
    assert eta <= tolerance(case.dtype), f"backward error {eta:.3e} ({params})"


@ill_conditioned_ok
@given(params=square_case_params("toeplitz_like", dtypes=st.just("float64"), batched=False, max_size=17))
def test_solve_vector_and_transpose_match_dense(params, numpy_backend):
    case = build_case(params, numpy_backend)
    D = case.oracle
    cond = np.linalg.cond(D)
    assume(cond < 1e8)
    b = case.rng.standard_normal(params.n)
    for W, M in ((case.W, D), (case.W.T, D.T)):
        x = ldr.solve(W, b)
        expected = np.linalg.solve(M, b)
        assert x.shape == (params.n,)
        assert np.linalg.norm(x - expected) <= 1e-13 * cond * np.linalg.norm(expected) + 1e-300


def test_solve_needs_pivoting():
    # T[0, 0] = 0: elimination without row interchanges fails at the first step.
    c = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    r = np.array([0.0, 5.0, -1.0, 2.0, 1.0])
    W = ldr.toeplitz(c, r)
    b = np.arange(1.0, 6.0)
    x = ldr.solve(W, b)
    T = scipy.linalg.toeplitz(c, r)
    assert np.allclose(T @ x, b, rtol=0, atol=1e-13)
    assert np.allclose(x, np.linalg.solve(T, b), atol=1e-12)
    with pytest.raises(np.linalg.LinAlgError):  # Levinson has no pivoting
        scipy.linalg.solve_toeplitz((c, r), b)


def test_solve_broadcasts_batches():
    rng = np.random.default_rng(5)
    n = 6
    W = ldr.toeplitz_like(rng.standard_normal((3, n, 2)), rng.standard_normal((2, n)))
    b = rng.standard_normal((2, 1, n, 4))
    x = ldr.solve(W, b)
    D = W.dense()
    assert x.shape == (2, 3, n, 4)
    assert np.allclose(x, np.linalg.solve(D[None], b), atol=1e-12)
    # An unbatched W with a batched b: one factorisation, every right-hand side at once.
    W0 = ldr.toeplitz_like(rng.standard_normal((n, 2)), rng.standard_normal((2, n)))
    assert np.allclose(ldr.solve(W0, b), np.linalg.solve(W0.dense(), b), atol=1e-12)


def test_solve_complex_right_hand_side_of_real_matrix():
    rng = np.random.default_rng(6)
    W = ldr.toeplitz(rng.standard_normal(5), rng.standard_normal(5))
    b = rng.standard_normal(5) + 1j * rng.standard_normal(5)
    x = ldr.solve(W, b)
    assert x.dtype == np.complex128
    assert np.allclose(W.dense() @ x, b, atol=1e-13)


# -- ill-conditioned and singular matrices ---------------------------------------------------------
def hilbert(n):
    """The Hilbert matrix 1 / (i + j + 1) as the Cauchy matrix with v_i = i, u_j = -j - 1."""
    return ldr.cauchy(np.arange(n, dtype=float), -np.arange(1.0, n + 1))


def prolate(n, w=0.45):
    """The prolate Toeplitz matrix sin(2 pi w k) / (pi k): numerically singular from n ~ 100 (cond ~1e17 at 256)."""
    k = np.arange(1, n)
    c = np.concatenate([[2 * w], np.sin(2 * np.pi * w * k) / (np.pi * k)])
    return ldr.toeplitz(c, c.copy())


@pytest.mark.parametrize("W", [hilbert(14), prolate(256)], ids=["hilbert-14", "prolate-256"])
def test_ill_conditioned_warns_with_estimate(W):
    n = W.shape[0]
    with pytest.warns(LinAlgWarning, match=r"ill-conditioned: estimated rcond = .*condition number"):
        ldr.solve(W, np.ones(n))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ldr.solve(W, np.ones(n), check=False)  # the check (and its cost) can be switched off


def test_well_conditioned_does_not_warn():
    rng = np.random.default_rng(7)
    W = ldr.toeplitz(np.r_[10.0, rng.standard_normal(31)], np.r_[10.0, rng.standard_normal(31)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ldr.solve(W, rng.standard_normal(32))


def test_condition_estimate_is_close_to_the_true_one():
    from ldr.solvers import _condition_report, _Factorization

    W = hilbert(9)
    norm_W, norm_inv = _condition_report(W, _Factorization(W), np.complex128)
    D = W.dense()
    exact = np.linalg.norm(D, 1) * np.linalg.norm(np.linalg.inv(D), 1)
    # Hager's estimator is a lower bound, in practice within a factor 3.
    assert exact / 3 <= float(norm_W * norm_inv) <= exact * 1.01  # 1 %: rounding in the exact inverse


@pytest.mark.parametrize(
    "W, message",
    [
        (ldr.toeplitz(np.ones(4)), "singular: pivot"),
        (ldr.low_rank(np.ones((4, 2)), np.ones((2, 4))), "low-rank"),
    ],
)
def test_singular_raises(W, message):
    with pytest.raises(ldr.SingularMatrixError, match=message):
        ldr.solve(W, np.ones(4))
    assert issubclass(ldr.SingularMatrixError, ValueError)
    sign, logdet = ldr.slogdet(W)
    assert float(sign) == 0.0 and float(logdet) == -np.inf


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: ldr.solve(ldr.toeplitz_like(np.ones((4, 1)), np.ones((1, 3))), np.ones(4)), ValueError, "square"),
        (lambda: ldr.solve(ldr.toeplitz(np.arange(1.0, 5.0)), np.ones(3)), ValueError, r"\(n,\) or \(\.\.\., n, k\) with n = 4"),
        (lambda: ldr.solve(ldr.toeplitz(np.arange(1.0, 5.0)), np.ones((3, 4))), ValueError, "n = 4"),
        (lambda: ldr.solve(np.eye(3), np.ones(3)), TypeError, "LDRMatrix"),
        (lambda: ldr.solve(ldr.toeplitz(np.arange(1.0, 5.0)), np.ones(4), refine=-1), ValueError, "refine"),
        # A NaN or inf in b used to come back as an all-NaN x with only a loss-of-accuracy warning.
        (lambda: ldr.solve(ldr.toeplitz(np.arange(1.0, 5.0)), np.array([1.0, np.nan, 0.0, 0.0])), ValueError,
         r"`b` must be finite; got NaN or infinite entries"),
        (lambda: ldr.solve(ldr.toeplitz_like(np.ones((4, 1)), np.arange(4.0)[None]), np.full((4, 2), np.inf)), ValueError,
         r"`b` must be finite"),
        (lambda: ldr.inv(ldr.low_rank(np.ones((3, 3)), np.eye(3))), TypeError, r"swapped pair \(B, A\) = \(Zero"),
    ],
)
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


# -- inverse generators ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "structure", ["toeplitz_like", "cauchy_like", "toeplitz", "hankel_like", "vandermonde_like", "hankel", "vandermonde"]
)
@ill_conditioned_ok
@settings(max_examples=6)
@given(data=st.data())
def test_inverse_generators_satisfy_swapped_displacement(structure, backend, data):
    params = data.draw(square_case_params(structure, dtypes=st.sampled_from(["float64", "complex128"]), max_size=13))
    case = build_case(params, backend)
    D = case.oracle
    assume(np.max(np.linalg.cond(D)) < 1e8)
    Winv = ldr.inv(case.W)
    assert Winv.rank == case.W.rank
    G, H = as_numpy(Winv.G), as_numpy(Winv.H)
    Dinv = np.linalg.inv(D)
    # B W^{-1} - W^{-1} A = G' H' with the dense operators of the original pair, swapped.
    displacement = case.B @ Dinv - Dinv @ case.A
    scale = np.linalg.norm(Dinv) ** 2 * np.linalg.norm(case.GH)
    assert np.linalg.norm(displacement - G @ H) <= 1e-11 * scale
    assert np.linalg.norm(as_numpy(Winv.dense()) - Dinv) <= 1e-11 * np.linalg.cond(D).max() * np.linalg.norm(Dinv)


def test_inverse_of_transpose_is_transposed_inverse():
    rng = np.random.default_rng(8)
    W = ldr.toeplitz_like(rng.standard_normal((7, 2)), rng.standard_normal((2, 7)), e=0.0, f=1.0)
    Winv = ldr.inv(W.T)
    assert np.allclose(Winv.dense(), np.linalg.inv(W.dense().T), atol=1e-11)


# -- determinants ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n", range(1, 13))
def test_dft_determinant_phase(n):
    from ldr.solvers import _dft_determinant_phase

    F = np.fft.fft(np.eye(n))
    sign, logdet = np.linalg.slogdet(F)
    assert np.isclose(_dft_determinant_phase(n), sign, atol=1e-9)
    assert np.isclose(logdet, 0.5 * n * np.log(n), atol=1e-9)


@pytest.mark.parametrize("structure", SQUARE_STRUCTURES)
@settings(max_examples=6)
@given(data=st.data())
def test_slogdet_matches_numpy(structure, data):
    params = data.draw(square_case_params(structure, dtypes=st.sampled_from(["float64", "complex128"]), max_size=17))
    case = build_case(params, ArrayBackend("numpy"))
    D = case.oracle
    cond = np.linalg.cond(D)
    assume(np.all(cond < 1e8))
    sign, logdet = ldr.slogdet(case.W)
    sign0, logdet0 = np.linalg.slogdet(D)
    assert sign.shape == sign0.shape and logdet.shape == logdet0.shape
    # A perturbation δW changes log|det W| by about tr(W^-1 δW) <= n cond eps.
    assert np.allclose(logdet, logdet0, rtol=0, atol=1e-12 * params.n * np.max(cond))
    assert np.allclose(sign, sign0, atol=1e-10 * params.n * np.max(cond))
    if not np.iscomplexobj(D):
        assert not np.iscomplexobj(sign)
        assert np.allclose(ldr.det(case.W), np.linalg.det(D), rtol=1e-10 * params.n * np.max(cond))


# -- torch: gradients by implicit differentiation ----------------------------------------------------
torch_builds = pytest.mark.parametrize(
    "build",
    [
        lambda G, H, v, u: ldr.toeplitz_like(G, H, e=0.0, f=1.0),
        lambda G, H, v, u: ldr.hankel_like(G, H),
        lambda G, H, v, u: ldr.cauchy_like(G, H, v, u),
        lambda G, H, v, u: ldr.vandermonde_like(G, H, 0.5 + v / 10, f=-1.0).T,
    ],
    ids=["toeplitz_like", "hankel_like", "cauchy_like", "vandermonde_like.T"],
)


def torch_leaves(seed, n):
    """Float64 leaves G (n, 2), H (2, n), nodes v, u and a right-hand side b (n, 2)."""
    import torch

    rng = np.random.default_rng(seed)

    def leaf(a):
        return torch.tensor(a, dtype=torch.float64, requires_grad=True)

    G, H, b = leaf(rng.standard_normal((n, 2))), leaf(rng.standard_normal((2, n))), leaf(rng.standard_normal((n, 2)))
    return G, H, leaf(np.arange(n) + 0.2 * rng.random(n)), leaf(np.arange(n) + 0.5), b


@pytest.mark.skipif(not HAVE_TORCH, reason=NO_TORCH)
@torch_builds
def test_torch_gradcheck(build):
    import torch

    G, H, v, u, b = torch_leaves(9, 4)
    # check=False: the condition estimate (extra solves) would only slow gradcheck's many calls.
    assert torch.autograd.gradcheck(lambda G, H, v, u, b: ldr.solve(build(G, H, v, u), b, check=False), (G, H, v, u, b))


@pytest.mark.skipif(not HAVE_TORCH, reason=NO_TORCH)
@torch_builds
def test_torch_slogdet_gradcheck(build):
    import torch

    G, H, v, u, _ = torch_leaves(10, 5)
    assert torch.autograd.gradcheck(lambda G, H, v, u: ldr.slogdet(build(G, H, v, u))[1], (G, H, v, u))
    sign, logabs = ldr.slogdet(build(G, H, v, u))
    assert not sign.requires_grad and logabs.requires_grad


@pytest.mark.skipif(not HAVE_TORCH, reason=NO_TORCH)
def test_torch_slogdet_gradient_matches_torch_linalg():
    # Complex, batched W (one factorisation per entry); the oracle differentiates the dense matrix.
    import torch

    rng = np.random.default_rng(11)
    n = 6
    G = torch.tensor(rng.standard_normal((2, n, 2)) + 1j * rng.standard_normal((2, n, 2)), requires_grad=True)
    H = torch.tensor(rng.standard_normal((2, n)) + 1j * rng.standard_normal((2, n)), requires_grad=True)
    ldr.slogdet(ldr.toeplitz_like(G, H))[1].sum().backward()
    G2, H2 = G.detach().clone().requires_grad_(True), H.detach().clone().requires_grad_(True)
    torch.linalg.slogdet(ldr.toeplitz_like(G2, H2).dense())[1].sum().backward()
    assert torch.allclose(G.grad, G2.grad, atol=1e-10) and torch.allclose(H.grad, H2.grad, atol=1e-10)


# -- the blocked elimination (ldr.gko) -----------------------------------------------------------
def _random_cauchy_like(rng, n, r):
    v = np.exp(2j * np.pi * np.arange(n) / n)
    u = v * np.exp(1j * np.pi / max(n, 1))
    G = rng.standard_normal((n, r)) + 1j * rng.standard_normal((n, r))
    H = rng.standard_normal((r, n)) + 1j * rng.standard_normal((r, n))
    return v, u, G, H, (G @ H) / (v[:, None] - u[None, :])


@pytest.mark.parametrize("n", [1, 2, 7, 10, 33])
@pytest.mark.parametrize("block", [1, 3, 4, 32, None])  # 1: one pivot per step (classical GKO)
def test_blocked_elimination_matches_dense_gepp(backend, n, block):
    """Every block size gives the factors of dense GEPP (scipy.linalg.lu) on the Cauchy-like matrix."""
    from ldr.gko import factor_cauchy_like

    rng = np.random.default_rng(n)
    v, u, G, H, C = _random_cauchy_like(rng, n, r=3)
    args = [backend.asarray(a) for a in (v, u, G, H)]
    bk = ldr.backends.get_backend(args[2])
    lu = factor_cauchy_like(*args, bk, block=block)
    P, L, U = scipy.linalg.lu(C)  # C = P L U: row i of P^T C is row perm[i] of C
    assert np.array_equal(lu.perm, np.argmax(P, axis=0))
    assert np.allclose(backend.to_numpy(lu.pivots), np.diag(U), rtol=1e-12, atol=0)
    assert lu.parity() == round(np.linalg.det(P).real)
    Y = rng.standard_normal((n, 2)) + 1j * rng.standard_normal((n, 2))
    for transpose, M in ((False, C), (True, C.T)):
        x = backend.to_numpy(lu.solve(backend.asarray(Y), transpose=transpose))
        assert np.linalg.norm(M @ x - Y) <= 1e-13 * np.linalg.norm(M) * np.linalg.norm(x)


@pytest.mark.parametrize("block", [1, 2, 3, 5, None])
def test_blocked_elimination_stops_at_the_first_zero_pivot(block):
    # Columns 3.. of C are exactly zero, so the Schur complement's column 3 is exactly zero
    # whatever the block boundaries: the pivots from 3 on are reported as 0.
    from ldr.gko import factor_cauchy_like

    rng = np.random.default_rng(3)
    v, u, G, H, _ = _random_cauchy_like(rng, 10, r=4)
    H[:, 3:] = 0
    bk = ldr.backends.get_backend(G)
    pivots = bk.to_numpy(factor_cauchy_like(v, u, G, H, bk, block=block).pivots)
    assert pivots.shape == (10,)
    assert np.all(pivots[:3] != 0) and np.all(pivots[3:] == 0)
    with pytest.raises(ldr.SingularMatrixError, match="pivot 3 "):
        ldr.solve(ldr.cauchy_like(G, H, v, u), np.ones(10))


def test_blocked_elimination_falls_back_to_single_pivots_near_singularity():
    # Columns 5.. scaled by 1e-10: pivots 5.. fall below TINY_PIVOT times the largest, so the
    # rest runs one pivot per step; the factors are still those of dense GEPP.
    from ldr.gko import TINY_PIVOT, factor_cauchy_like

    rng = np.random.default_rng(4)
    v, u, G, H, _ = _random_cauchy_like(rng, 12, r=3)
    H[:, 5:] *= 1e-10
    C = (G @ H) / (v[:, None] - u[None, :])
    bk = ldr.backends.get_backend(G)
    lu = factor_cauchy_like(v, u, G, H, bk, block=8)
    P, L, U = scipy.linalg.lu(C)
    pivots = bk.to_numpy(lu.pivots)
    assert np.abs(pivots[5:]).max() < TINY_PIVOT * np.abs(pivots[:5]).max()  # the fallback ran
    assert np.array_equal(lu.perm, np.argmax(P, axis=0))
    assert np.allclose(pivots, np.diag(U), rtol=1e-8, atol=0)
    Y = rng.standard_normal((12, 1)) + 0j
    x = lu.solve(Y)
    assert np.linalg.norm(C @ x - Y) <= 1e-13 * np.linalg.norm(C) * np.linalg.norm(x)
