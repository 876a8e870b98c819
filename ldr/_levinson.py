r"""Plain Toeplitz matrices: Levinson–Durbin and the Gohberg–Semencul inverse (private; used by ``ldr.solvers``).

Two Levinson solves (:func:`scipy.linalg.solve_toeplitz`, :math:`O(n^2)` each, one when T is
symmetric or Hermitian) give the first and last columns x, y of :math:`T^{-1}`. As T is
persymmetric (:math:`J T J = T^T`), so is :math:`T^{-1}`, and the Gohberg–Semencul formula

.. math::

    T^{-1} = \frac{1}{x_0}\bigl(L(x)\, L(Jy)^T - L(Zy)\, L(ZJx)^T\bigr)

(L(a) the lower triangular Toeplitz matrix with first column a, Z the down-shift) writes the
inverse with four triangular Toeplitz factors: every further solve with T or :math:`T^T` costs
6 FFTs of length ``next_fast_len(2n - 1)``. ``ldr.solvers`` refines every solve and checks its
backward error, and falls back to the pivoted elimination when Levinson (which does not pivot)
broke down. Derivation and caveats: :doc:`/theory/solvers`.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.fft import next_fast_len

from .krylov import Spectral

__all__ = ["toeplitz_entries", "levinson_columns", "GohbergSemencul", "toeplitz_norm1"]


def toeplitz_entries(T):
    r"""``(c, r)`` (NumPy) when the square, unbatched Toeplitz-like T is a plain Toeplitz matrix, else None.

    :func:`ldr.toeplitz` keeps the entries of NumPy matrices; otherwise they are read from the
    generators. For :math:`Z_e T - T Z_f = D` with :math:`T_{ij} = t_{i-j}`, D vanishes outside
    row 0 and column n - 1, where :math:`D_{0,n-1} = (e - f) t_0`,
    :math:`D_{0,n-1-k} = e t_k - t_{k-n}` and :math:`D_{k,n-1} = t_{k-n} - f t_k`
    (:math:`1 \le k < n`): a 2×2 system with determinant e - f per k. The test that D = GH
    vanishes elsewhere is structural and exact: every column of G is zero below row 0 or the
    matching row of H is zero before column n - 1 (as :func:`ldr.toeplitz` builds them), O(rn).
    """
    bk = T._bk
    n = T.shape[0]
    if T.batch_shape or T.shape[1] != n:
        return None
    if T._entries is not None:
        u = bk.to_numpy(T._entries)  # t(1-n), ..., t(n-1)
        return u[n - 1 :].copy(), u[n - 1 :: -1].copy()
    G, H = bk.to_numpy(T.G), bk.to_numpy(T.H)
    if not np.all(np.all(G[1:] == 0, axis=0) | np.all(H[:, :-1] == 0, axis=1)):
        return None
    e, f = T.e, T.f
    row, column = G[0] @ H, G @ H[:, -1]
    k = np.arange(1, n)
    positive = (row[n - 1 - k] + column[k]) / (e - f)  # t(k)
    negative = column[k] + f * positive  # t(k - n)
    t0 = row[n - 1 : n] / (e - f)
    return np.concatenate([t0, positive]), np.concatenate([t0, negative[::-1]])


def levinson_columns(c, r):
    r"""The first and last columns x, y of :math:`T^{-1}` by Levinson–Durbin, or None on breakdown.

    Breakdown: an exactly singular leading principal minor (:func:`scipy.linalg.solve_toeplitz`
    raises), a non-finite entry, or :math:`x_0 = 0` (the Gohberg–Semencul formula divides by
    it). Near-singular minors are not detected here: the caller checks every solve. Computed
    in double precision whatever the working precision.
    """
    kind = complex if np.iscomplexobj(c) or np.iscomplexobj(r) else float
    c, r = np.asarray(c, dtype=kind), np.asarray(r, dtype=kind)
    n = c.shape[0]
    unit = np.zeros(n, dtype=kind)
    unit[0] = 1.0
    try:
        with np.errstate(all="ignore"):
            x = scipy.linalg.solve_toeplitz((c, r), unit, check_finite=False)
            if np.array_equal(c, np.conj(r)):  # Hermitian (or real symmetric): y = J conj(x)
                y = np.conj(x[::-1])
            else:
                y = scipy.linalg.solve_toeplitz((c, r), unit[::-1].copy(), check_finite=False)
    except np.linalg.LinAlgError:  # "Singular principal minor"
        return None
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))) or x[0] == 0:
        return None
    return x, y


def toeplitz_norm1(c, r):
    r""":math:`\lVert T\rVert_1 = \lVert T\rVert_\infty`: the largest sum of n consecutive :math:`|t_k|`, O(n)."""
    n = c.shape[0]
    magnitude = np.abs(np.concatenate([r[1:][::-1], c]))
    sums = np.concatenate([[0.0], np.cumsum(magnitude)])
    return float(np.max(sums[n:] - sums[:n]))


class GohbergSemencul:
    r"""Products with :math:`T^{-1}` and :math:`T^{-T}` from the Gohberg–Semencul formula.

    With :math:`L(a)^T = J L(a) J`, :math:`T^{-1} v = x_0^{-1}\bigl(L(x)\,u_1 - L(Zy)\,u_2\bigr)`
    where :math:`u_1 = J L(Jy) Jv` and :math:`u_2 = J L(ZJx) Jv`; :math:`T^{-T}` swaps the roles
    of (x, Zy) and (Jy, ZJx). Each product: 6 FFTs of length ``next_fast_len(2n - 1)`` in three
    backend calls, along the last axis of v (any leading axes).
    """

    def __init__(self, x, y, bk, like, dtype):
        self.n = n = x.shape[0]
        self.bk, self.like, self.dtype = bk, like, dtype
        self.x0 = x[0].item()
        self.length = next_fast_len(2 * n - 1)
        shift = np.zeros(1, dtype=x.dtype)
        # Order: x, Jy, Zy, ZJx.
        self._vectors = np.stack([x, y[::-1], np.concatenate([shift, y[:-1]]), np.concatenate([shift, x[::-1][:-1]])])
        # ||T^{-1}||_1 and ||T^{-T}||_1 are both at most this (||L(a)||_1 = ||L(a)||_inf = ||a||_1).
        norms = np.abs(self._vectors).sum(axis=-1)
        self.inverse_norm_bound = float((norms[0] * norms[1] + norms[2] * norms[3]) / abs(self.x0))
        self._spectra = {}

    def _spectral(self, complex_data):
        """Per field (real or complex FFTs): the transform and the spectra of (inner, outer) per mode."""
        if complex_data not in self._spectra:
            bk = self.bk
            sp = Spectral(bk, self.length, complex_data)
            S = sp.forward(bk.asarray(self._vectors, dtype=self.dtype, like=self.like))  # x, Jy, Zy, ZJx
            scaled = S * (1.0 / self.x0)  # 1/x0 folded into the outer factors
            self._spectra[complex_data] = (
                sp,
                {False: (S[1::2], scaled[0], scaled[2]), True: (S[0::2], scaled[1], scaled[3])},
            )
        return self._spectra[complex_data]

    def apply(self, v, transpose=False):
        r""":math:`T^{-1} v` (:math:`T^{-T} v` with ``transpose``) along the last axis of ``v``."""
        bk, n = self.bk, self.n
        complex_data = bk.dtype_kind(v.dtype) == "c" or bk.dtype_kind(self.dtype) == "c"
        sp, modes = self._spectral(complex_data)
        # T^{-1}: inner (Jy, ZJx), outer (x, Zy); T^{-T}: inner (x, Zy), outer (Jy, ZJx).
        inner, first, second = modes[bool(transpose)]
        V = bk.expand_dims(sp.forward(bk.flip(v)), -2)  # (..., 1, N')
        U = sp.forward(bk.flip(sp.inverse(inner * V)[..., :n]))  # (..., 2, N'): spectra of u_1, u_2
        return sp.inverse(first * U[..., 0, :] - second * U[..., 1, :])[..., :n]
