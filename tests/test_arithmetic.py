"""Generator compression and the arithmetic closed in the LDR classes (issue 17).

Sums, products, scalar multiples and conjugates are checked against the same operations on the
independent dense oracles of ``cases.build_case``, and their displacement ranks against the
bounds r1 + r2 (and the exact rank where it is known).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ldr
from cases import build_case, random_array, sylvester_oracle
from strategies import case_params
from tolerance import as_numpy, assert_close

GENERATOR_STRUCTURES = ("low_rank", "toeplitz_like", "toeplitz_like_rect", "hankel_like", "vandermonde_like", "cauchy_like")


def same_operators(case, r, seed):
    """A second matrix with the case's operators and fresh generators, and its dense oracle."""
    rng = np.random.default_rng(seed)
    m, n = case.shape
    G, H = random_array(rng, (m, r), case.dtype), random_array(rng, (r, n), case.dtype)
    W = ldr.LDRMatrix(case.W.A, case.W.B, case.backend.asarray(G, case.dtype), case.backend.asarray(H, case.dtype))
    if case.params.structure == "low_rank":
        return W, G @ H
    return W, sylvester_oracle(case.A, case.B, G @ H)


# -- compression -------------------------------------------------------------------------------------
@given(m=st.sampled_from((1, 2, 5, 8, 13)), n=st.sampled_from((1, 3, 7, 16)), r=st.integers(1, 6),
       copies=st.integers(1, 3), seed=st.integers(0, 2**31 - 1))
def test_compress_generators_recovers_the_rank(backend, m, n, r, copies, seed):
    rng = np.random.default_rng(seed)
    G, H = rng.standard_normal((m, r)), rng.standard_normal((r, n))
    # `copies` scaled copies of the same terms: rank r (at most min(m, n)) whatever the width.
    G_wide = np.concatenate([G * (k + 1) for k in range(copies)], axis=1)
    H_wide = np.concatenate([H] * copies, axis=0)
    G2, H2 = ldr.compress_generators(backend.asarray(G_wide), backend.asarray(H_wide))
    assert G2.shape[-1] == min(r, m, n) == H2.shape[-2]
    expected = G_wide @ H_wide
    assert_close(as_numpy(G2) @ as_numpy(H2), expected, scale=np.linalg.norm(expected), dtype="float64")


def test_compress_generators_rank_tol_and_batch():
    rng = np.random.default_rng(1)
    U = np.linalg.qr(rng.standard_normal((9, 3)))[0]
    V = np.linalg.qr(rng.standard_normal((7, 3)))[0].T
    G, H = U * np.array([1.0, 1e-3, 1e-9]), V
    assert ldr.compress_generators(G, H)[0].shape[-1] == 3
    assert ldr.compress_generators(G, H, tol=1e-6)[0].shape[-1] == 2
    G1, H1 = ldr.compress_generators(G, H, rank=1)
    assert np.allclose(G1 @ H1, U[:, :1] @ V[:1])  # the best rank-1 approximation
    # Batch: one k for the stack, the largest rank of its entries.
    Gb = np.stack([G, np.concatenate([G[:, :1], 0 * G[:, 1:]], axis=1)])
    Gc, Hc = ldr.compress_generators(Gb, H, tol=1e-6)
    assert Gc.shape == (2, 9, 2) and Hc.shape == (2, 2, 7)
    assert np.allclose(Gc @ Hc, Gb @ H, atol=1e-6)
    # The all-zero displacement keeps one (zero) term.
    Gz, Hz = ldr.compress_generators(np.zeros((4, 2)), np.ones((2, 5)))
    assert Gz.shape == (4, 1) and np.allclose(Gz @ Hz, 0)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"rank": 0}, "`rank` must be a positive integer"), ({"tol": 1.5}, r"`tol` must be a real number in \[0, 1\)"),
     ({"rank": 1.5}, "`rank`")],
)
def test_compress_generators_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ldr.compress_generators(np.ones((3, 1)), np.ones((1, 3)), **kwargs)
    with pytest.raises(ValueError, match=r"`H` must have shape"):
        ldr.compress_generators(np.ones((3, 2)), np.ones((1, 3)))


# -- sums, scalar multiples, conjugates ------------------------------------------------------------
@pytest.mark.parametrize("structure", GENERATOR_STRUCTURES)
@settings(max_examples=6)
@given(data=st.data())
def test_sum_difference_and_scalars(structure, backend, data):
    params = data.draw(case_params(structure, dtypes=st.sampled_from(["float64", "complex128"]), max_size=13))
    case = build_case(params, backend)
    r2 = data.draw(st.integers(1, 3))
    W2, D2 = same_operators(case, r2, params.seed + 1)
    D1 = case.oracle
    scale = np.linalg.norm(D1) + np.linalg.norm(D2)
    S = case.W + W2
    assert type(S) is type(case.W)
    assert S.rank <= case.W.rank + r2
    assert_close(S.dense(), D1 + D2, scale=scale, dtype=case.dtype, factor=10, what="W1 + W2")
    assert_close((case.W - W2).dense(), D1 - D2, scale=scale, dtype=case.dtype, factor=10, what="W1 - W2")
    # W + W has the rank of W: the compression drops the dependent half.
    assert (case.W + case.W).rank <= case.W.rank
    assert_close((2.5 * case.W).dense(), 2.5 * D1, scale=scale, dtype=case.dtype, what="c W")
    assert_close((case.W * (1 - 2j)).dense(), (1 - 2j) * D1, scale=3 * scale, dtype=case.dtype, what="W c")
    assert_close((case.W / 4).dense(), D1 / 4, scale=scale, dtype=case.dtype, what="W / c")
    assert_close((-case.W).dense(), -D1, scale=scale, dtype=case.dtype, what="-W")
    assert_close(case.W.conj().dense(), D1.conj(), scale=scale, dtype=case.dtype, what="conj(W)")
    assert_close(case.W.conj().T.dense(), np.swapaxes(D1.conj(), -1, -2), scale=scale, dtype=case.dtype, what="W^H")
    assert_close((case.W.T + W2.T).dense(), np.swapaxes(D1 + D2, -1, -2), scale=scale, dtype=case.dtype, factor=10,
                 what="W1^T + W2^T")


def test_sum_of_two_toeplitz_matrices_has_rank_two():
    rng = np.random.default_rng(2)
    T1 = ldr.toeplitz(rng.standard_normal(9), rng.standard_normal(9))
    T2 = ldr.toeplitz(rng.standard_normal(9), rng.standard_normal(9))
    S = T1 + T2
    assert S.rank == 2  # a Toeplitz matrix again: rank 2, not 4
    assert np.allclose(S.dense(), T1.dense() + T2.dense())


def test_real_conjugate_is_the_matrix_itself():
    W = ldr.toeplitz(np.arange(1.0, 5.0))
    assert W.conj() is W
    Wc = ldr.toeplitz_like(np.ones((4, 1)) * (1 + 1j), np.ones((1, 4)), e=1j, f=-1.0)
    assert Wc.conj().A.f == -1j
    assert np.allclose(Wc.conj().dense(), Wc.dense().conj())


# -- products ---------------------------------------------------------------------------------------
def _pairs(rng, kind):
    """Two LDR matrices whose inner operators agree, for each kind of product."""
    n, p = 7, 5
    g = lambda m, r: rng.standard_normal((m, r))  # noqa: E731
    if kind == "toeplitz":
        return (ldr.toeplitz_like(g(n, 2), rng.standard_normal((2, n)), e=1.0, f=-1.0),
                ldr.toeplitz_like(g(n, 3), rng.standard_normal((3, n)), e=-1.0, f=2.0))
    if kind == "toeplitz_rect":
        return (ldr.toeplitz_like(g(p, 2), rng.standard_normal((2, n)), e=1.0, f=0.0),
                ldr.toeplitz_like(g(n, 1), rng.standard_normal((1, p)), e=0.0, f=-1.0))
    if kind == "toeplitz_hankel":
        return (ldr.toeplitz_like(g(n, 2), rng.standard_normal((2, n)), e=1.0, f=-1.0),
                ldr.hankel_like(g(n, 2), rng.standard_normal((2, n)), e=-1.0, f=0.0))
    if kind == "cauchy":
        v, u, w = np.arange(n) + 0.5, np.arange(n) - 0.25, np.arange(p) + 0.1
        return (ldr.cauchy_like(g(n, 2), rng.standard_normal((2, n)), v, u),
                ldr.cauchy_like(g(n, 1), rng.standard_normal((1, p)), u, w))
    if kind == "cauchy_vandermonde":
        v, u = np.linspace(-0.9, 0.9, n), np.exp(2j * np.pi * np.arange(n) / n) * 0.95
        return (ldr.cauchy_like(g(n, 1), rng.standard_normal((1, n)), v, u),
                ldr.vandermonde_like(g(n, 2), rng.standard_normal((2, p)), u, f=1.0))
    if kind == "vandermonde_toeplitz":
        v = np.linspace(0.5, 0.9, n)
        return (ldr.vandermonde_like(g(n, 1), rng.standard_normal((1, p)), v, f=-1.0),
                ldr.toeplitz_like(g(p, 2), rng.standard_normal((2, p)), e=-1.0, f=1.0))
    if kind == "low_rank_left":
        return ldr.low_rank(g(n, 2), rng.standard_normal((2, n))), ldr.toeplitz(g(n, 1)[:, 0])
    if kind == "low_rank_right":
        return ldr.cauchy(np.arange(n) + 0.5, np.arange(n) + 0.0), ldr.low_rank(g(n, 3), rng.standard_normal((3, p)))
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    ["toeplitz", "toeplitz_rect", "toeplitz_hankel", "cauchy", "cauchy_vandermonde", "vandermonde_toeplitz",
     "low_rank_left", "low_rank_right"],
)
def test_product(kind):
    rng = np.random.default_rng(3)
    W1, W2 = _pairs(rng, kind)
    P = W1 @ W2
    expected = W1.dense() @ W2.dense()
    assert P.shape == expected.shape
    assert np.linalg.norm(P.dense() - expected) <= 1e-12 * np.linalg.norm(W1.dense()) * np.linalg.norm(W2.dense())
    if kind.startswith("low_rank"):
        assert isinstance(P, ldr.LowRank)
        assert P.rank <= min(W1.rank, W2.rank) if kind == "low_rank_left" else P.rank <= W2.rank
    else:
        assert P.A is W1.A and P.B is W2.B
        assert P.rank <= W1.rank + W2.rank
        displacement = P.A.dense() @ expected - expected @ P.B.dense()
        assert np.linalg.matrix_rank(displacement, tol=1e-9 * np.linalg.norm(displacement)) <= P.rank


def test_product_of_transposes_and_batches():
    rng = np.random.default_rng(4)
    W1 = ldr.toeplitz_like(rng.standard_normal((3, 6, 2)), rng.standard_normal((2, 6)), e=1.0, f=-1.0)
    W2 = ldr.toeplitz_like(rng.standard_normal((6, 1)), rng.standard_normal((1, 6)), e=-1.0, f=0.5)
    P = W1 @ W2
    assert P.batch_shape == (3,)
    assert np.allclose(P.dense(), W1.dense() @ W2.dense())
    Q = W2.T @ W1.T  # (W1 W2)^T through the transposed views
    assert np.allclose(Q.dense(), np.swapaxes(W1.dense() @ W2.dense(), -1, -2))


def test_products_on_torch_keep_gradients():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    G = torch.tensor(rng.standard_normal((6, 2)), requires_grad=True)
    W1 = ldr.toeplitz_like(G, torch.tensor(rng.standard_normal((2, 6))), e=1.0, f=-1.0)
    W2 = ldr.toeplitz_like(torch.tensor(rng.standard_normal((6, 1))), torch.tensor(rng.standard_normal((1, 6))), e=-1.0, f=2.0)
    P = W1 @ W2 + 3 * W1 @ W2
    dense = 4 * W1.dense() @ W2.dense()
    assert torch.allclose(P.dense(), dense)
    P.dense().sum().backward()
    assert G.grad is not None and torch.isfinite(G.grad).all()


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda a, b, c: a @ c, ValueError, "right operator must equal"),
        (lambda a, b, c: a + c, ValueError, "share the operator pair"),
        (lambda a, b, c: a + ldr.toeplitz(np.ones(5)), ValueError, "shapes differ"),
        (lambda a, b, c: a @ b, ldr.SingularDisplacementError, "share an eigenvalue"),
        (lambda a, b, c: a / 0, ZeroDivisionError, "zero"),
        (lambda a, b, c: a * np.ones(4), TypeError, "unsupported operand|does not support ufuncs"),
        (lambda a, b, c: a + 1.0, TypeError, "unsupported operand"),
        (lambda a, b, c: ldr.add(a, np.eye(4)), TypeError, "`W2` must be an LDRMatrix"),
        (lambda a, b, c: ldr.matmul(a, b, rank=0), ValueError, "`rank`"),
    ],
)
def test_errors(call, error, message):
    a = ldr.toeplitz_like(np.ones((4, 1)), np.ones((1, 4)), e=1.0, f=-1.0)
    b = ldr.toeplitz_like(np.ones((4, 1)), np.ones((1, 4)), e=-1.0, f=1.0)  # (Z_1, Z_1) for a @ b
    c = ldr.toeplitz_like(np.ones((4, 1)), np.ones((1, 4)), e=0.0, f=1.0)
    with pytest.raises(error, match=message):
        call(a, b, c)


def test_mixed_backends_refuse():
    torch = pytest.importorskip("torch")
    a = ldr.toeplitz(np.arange(1.0, 4.0))
    b = ldr.toeplitz(torch.arange(1.0, 4.0, dtype=torch.float64))
    with pytest.raises(TypeError, match="cannot mix array libraries"):
        a + b


def test_result_generators_are_frozen():
    a = ldr.toeplitz(np.arange(1.0, 5.0))
    S = a + a
    with pytest.raises(ValueError):
        S.G[0, 0] = 1.0
