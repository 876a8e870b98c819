"""Classic constructors equal their textbook dense matrices (scipy.linalg oracles)."""

import numpy as np
import pytest
import scipy.linalg

import ldr

SIZES = [(1, 1), (2, 2), (5, 5), (8, 8), (7, 4), (4, 7), (17, 16)]


@pytest.mark.parametrize("m, n", SIZES)
def test_toeplitz_and_hankel_match_scipy(m, n):
    rng = np.random.default_rng(m * 31 + n)
    c, r = rng.standard_normal(m), rng.standard_normal(n)
    np.testing.assert_allclose(ldr.toeplitz(c, r).dense(), scipy.linalg.toeplitz(c, r), atol=1e-12)
    np.testing.assert_allclose(ldr.hankel(c, r).dense(), scipy.linalg.hankel(c, r), atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 3, 8, 13])
def test_circulant_vandermonde_cauchy(n):
    rng = np.random.default_rng(n)
    c = rng.standard_normal(n)
    np.testing.assert_allclose(ldr.circulant(c).dense(), scipy.linalg.circulant(c), atol=1e-12)
    v = rng.uniform(0.5, 1.0, n)
    np.testing.assert_allclose(ldr.vandermonde(v, n + 1).dense(), np.vander(v, n + 1, increasing=True), atol=1e-12)
    u = np.arange(n) + 2.0
    np.testing.assert_allclose(ldr.cauchy(v, u).dense(), 1.0 / (v[:, None] - u[None, :]), atol=1e-12)


def test_integer_and_complex_inputs():
    """Integer data compute in float64; complex c with the default r = conj(c) matches scipy (Hermitian)."""
    c = np.array([1, 2, 3])
    W = ldr.toeplitz(c, np.array([1, 5]))
    assert W.dtype == np.float64
    np.testing.assert_allclose(W.dense(), scipy.linalg.toeplitz(c, [1, 5]), atol=1e-12)
    np.testing.assert_allclose(ldr.vandermonde(np.array([2, 3]), 3).dense(), [[1, 2, 4], [1, 3, 9]], atol=1e-12)
    z = np.array([1.0, 2.0 + 1.0j, -1.0j])
    np.testing.assert_allclose(ldr.toeplitz(z).dense(), scipy.linalg.toeplitz(z), atol=1e-12)
    np.testing.assert_allclose(ldr.circulant(z).dense(), scipy.linalg.circulant(z), atol=1e-12)
