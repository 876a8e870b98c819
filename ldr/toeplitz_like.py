r"""Toeplitz-like :math:`(Z_e, Z_f)` and Hankel-like :math:`(Z_e, Z_f^T)` matrices.

Square Toeplitz-like (:doc:`/theory/classes`):

.. math:: W = \frac{1}{e - f} \sum_{l} C_e(g_l)\, C_f(J h_l),

so ``W x`` costs 2r + 2 FFTs of length ``next_fast_len(2n - 1)``: one of ``x``, r inverse and
r forward transforms between the two factors, one inverse at the end (the generator spectra are
cached). Rectangular (m ≠ n): :math:`W = \sum_l C_e(g_l)\, T_{ef}\, C_f(J h_l)` with the fixed
Toeplitz matrix :math:`T_{ef}` solving :math:`Z_e T - T Z_f = e_0 e_{n-1}^T`.
Hankel-like matrices are Toeplitz-like ones times the reversal: :math:`W = T J` with
generators ``(G, H J)``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.fft import next_fast_len

from .krylov import Spectral, fft_length, fold
from .ldrmatrix import LDRMatrix
from .operators import Shift
from .validation import generator_sizes

__all__ = ["ToeplitzLike", "HankelLike", "toeplitz_like", "hankel_like", "default_shift_pair"]


def default_shift_pair(m, n):
    """The library's default ``(e, f)``: ``(1, -1)`` for square, ``(1, 0)`` for rectangular matrices.

    ``(Z_1, Z_-1)`` is singular for m ≠ n whenever m has more factors of 2 than n (3072×768);
    ``(Z_1, Z_0)`` is nonsingular for every size.

    Examples
    --------
    >>> default_shift_pair(4, 4), default_shift_pair(3072, 768)
    ((1.0, -1.0), (1.0, 0.0))
    """
    return (1.0, -1.0) if m == n else (1.0, 0.0)


@functools.lru_cache(maxsize=64)
def _rectangular_core(m, n, e, f):
    """First column and first row of T_ef (m×n), the solution of Z_e T - T Z_f = e_0 e_{n-1}^T.

    Telescoping with N = lcm(m, n) gives T = alpha^{-1} sum_k e^{k//m} f^{(N-1-k)//n}
    E[k mod m, k mod n] with alpha = e^{N/m} - f^{N/n}; each entry of the first column and row
    is hit by at most one k (Chinese remainders), so O(N) work suffices.
    """
    N = math.lcm(m, n)
    k = np.arange(N)
    dtype = complex if isinstance(e, complex) or isinstance(f, complex) else float
    weights = np.power(dtype(e), k // m) * np.power(dtype(f), (N - 1 - k) // n)
    alpha = dtype(e) ** (N // m) - dtype(f) ** (N // n)
    column = np.zeros(m, dtype=dtype)
    row = np.zeros(n, dtype=dtype)
    on_column = k % n == 0
    column[k[on_column] % m] = weights[on_column]
    on_row = k % m == 0
    row[k[on_row] % n] = weights[on_row]
    return column / alpha, row / alpha


class ToeplitzLike(LDRMatrix):
    r"""Toeplitz-like matrix: :math:`Z_e W - W Z_f = G H`, e ≠ f (m×n, any m, n).

    Build it with :func:`toeplitz_like` or ``LDRMatrix(Shift(m, e), Shift(n, f), G, H)``.

    Notes
    -----
    Square: :math:`W = (e-f)^{-1} \sum_l C_e(g_l) C_f(J h_l)`; ``W x`` and ``W^T x`` each take
    2r + 2 real FFTs of length ``next_fast_len(2n - 1)``, :math:`O(r n \log n)`.
    Rectangular: :math:`W = \sum_l C_e(g_l) T_{ef} C_f(J h_l)`, 4r + 2 FFTs.
    ``W^T x = J W' J x`` with the two factors applied in the opposite order.

    Examples
    --------
    >>> import numpy as np, scipy.linalg, ldr
    >>> rng = np.random.default_rng(1)
    >>> G, H = rng.standard_normal((5, 2)), rng.standard_normal((2, 5))
    >>> W = ldr.toeplitz_like(G, H)            # (Z_1, Z_-1)
    >>> bool(np.allclose(ldr.displacement(W.A, W.B, W.dense()), G @ H))
    True
    """

    def _setup(self):
        self.e, self.f = self.A.f, self.B.f
        m, n = self.shape
        self._square = m == n

    def _scalars(self):
        return (self.e, self.f)

    def _repr_items(self):
        return (("e", self.e), ("f", self.f))

    def _spectral(self, dtype, size):
        bk = self._bk
        return Spectral(bk, size, bk.dtype_kind(dtype) == "c")

    def _spectra(self, dtype):
        """Cached generator spectra: g_l at the m-length, J h_l at the n-length transform."""

        def build():
            bk = self._bk
            m, n = self.shape
            G = bk.swapaxes(self._cast(self.G, dtype), -1, -2)  # (..., r, m)
            JH = bk.flip(self._cast(self.H, dtype))  # (..., r, n)
            sm, sn = self._spectral(dtype, fft_length(m)), self._spectral(dtype, fft_length(n))
            spectra = {"G": sm.forward(G), "JH": sn.forward(JH)}
            if not self._square:
                column, row = _rectangular_core(m, n, self.e, self.f)
                st = self._spectral(dtype, next_fast_len(m + n - 1))
                # T t = (u * t)[n-1 : n-1+m] with u = [r_{n-1}, ..., r_1, c_0, ..., c_{m-1}];
                # T^T a = (u' * a)[m-1 : m-1+n] with u' = [c_{m-1}, ..., c_1, r_0, ..., r_{n-1}].
                u = np.concatenate([row[:0:-1], column])
                u_t = np.concatenate([column[:0:-1], row])
                spectra["T"] = st.forward(bk.asarray(u, dtype=dtype, like=self.G))
                spectra["T^T"] = st.forward(bk.asarray(u_t, dtype=dtype, like=self.G))
            return spectra

        return self._cached("spectra", dtype, build)

    def _circulant_stage(self, spectrum, x, size, weight, reverse=False):
        """sum-free stage: C_weight(v_l) x for every l, x of shape (..., size) or (..., r, size)."""
        bk = self._bk
        sp = self._spectral(x.dtype, fft_length(size))
        X = sp.forward(bk.flip(x) if reverse else x)
        y = fold(sp.inverse(spectrum * X), size, weight, bk)
        return bk.flip(y) if reverse else y

    def _matvec(self, x):
        bk = self._bk
        m, n = self.shape
        s = self._spectra(x.dtype)
        if self._square:
            sp = self._spectral(x.dtype, fft_length(n))
            # f-side product for every l (1 + r FFTs), then the e-side products summed in the
            # frequency domain (r + 1 FFTs): 2r + 2 in all.
            t = fold(sp.inverse(s["JH"] * bk.expand_dims(sp.forward(x), -2)), n, self.f, bk)
            acc = bk.sum(s["G"] * sp.forward(t), -2)
            return fold(sp.inverse(acc), n, self.e, bk) / (self.e - self.f)
        t = self._circulant_stage(s["JH"], bk.expand_dims(x, -2), n, self.f)
        st = self._spectral(x.dtype, next_fast_len(m + n - 1))
        middle = st.inverse(s["T"] * st.forward(t))[..., n - 1 : n - 1 + m]
        sm = self._spectral(x.dtype, fft_length(m))
        return fold(sm.inverse(bk.sum(s["G"] * sm.forward(middle), -2)), m, self.e, bk)

    def _rmatvec(self, x):
        bk = self._bk
        m, n = self.shape
        s = self._spectra(x.dtype)
        if self._square:
            sp = self._spectral(x.dtype, fft_length(n))
            # W^T = J [(e-f)^{-1} sum_l C_f(J h_l) C_e(g_l)] J: reverse, same two stages swapped, reverse.
            t = fold(sp.inverse(s["G"] * bk.expand_dims(sp.forward(bk.flip(x)), -2)), n, self.e, bk)
            acc = bk.sum(s["JH"] * sp.forward(t), -2)
            return bk.flip(fold(sp.inverse(acc), n, self.f, bk)) / (self.e - self.f)
        a = self._circulant_stage(s["G"], bk.expand_dims(x, -2), m, self.e, reverse=True)
        st = self._spectral(x.dtype, next_fast_len(m + n - 1))
        middle = st.inverse(s["T^T"] * st.forward(a))[..., m - 1 : m - 1 + n]
        sn = self._spectral(x.dtype, fft_length(n))
        acc = bk.sum(s["JH"] * sn.forward(bk.flip(middle)), -2)
        return bk.flip(fold(sn.inverse(acc), n, self.f, bk))


def _is_shift(op, transpose):
    return isinstance(op, Shift) and op.transpose == transpose


LDRMatrix._pairs.append((lambda A, B: _is_shift(A, False) and _is_shift(B, False), ToeplitzLike))


class HankelLike(LDRMatrix):
    r"""Hankel-like matrix: :math:`Z_e W - W Z_f^T = G H`, e ≠ f.

    Notes
    -----
    :math:`W J` is Toeplitz-like for :math:`(Z_e, Z_f)` with generators :math:`(G, H J)`
    (because :math:`J Z_f^T = Z_f J`), so ``W x = T (J x)`` and ``W^T x = J (T^T x)`` reuse the
    Toeplitz-like products: same cost, 2r + 2 FFTs per vector when square.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> rng = np.random.default_rng(2)
    >>> G, H = rng.standard_normal((4, 1)), rng.standard_normal((1, 4))
    >>> W = ldr.hankel_like(G, H)              # (Z_1, Z_0^T)
    >>> bool(np.allclose(ldr.displacement(W.A, W.B, W.dense()), G @ H))
    True
    """

    def _setup(self):
        self.e, self.f = self.A.f, self.B.f
        bk = self._bk
        self._toeplitz = ToeplitzLike._trusted(
            Shift(self.A.size, self.e), Shift(self.B.size, self.f), self.G, bk.flip(self.H)
        )
        # The flipped copy must be invalidated when the user's H changes in place.
        self._toeplitz._cache_sources = self._cache_sources

    def _scalars(self):
        return (self.e, self.f)

    def _repr_items(self):
        return (("e", self.e), ("f", self.f))

    def _matvec(self, x):
        return self._toeplitz._matvec(self._bk.flip(x))

    def _rmatvec(self, x):
        return self._bk.flip(self._toeplitz._rmatvec(x))


LDRMatrix._pairs.append((lambda A, B: _is_shift(A, False) and _is_shift(B, True), HankelLike))


def toeplitz_like(G, H, e=None, f=None):
    r"""Toeplitz-like matrix with :math:`Z_e W - W Z_f = G H`.

    Parameters
    ----------
    G : array, shape (..., m, r)
    H : array, shape (..., r, n)
    e, f : float or complex, optional
        Operator corners, e ≠ f. Default :func:`default_shift_pair`: ``(1, -1)`` when m = n,
        ``(1, 0)`` otherwise (never singular). A singular pair raises
        :class:`~ldr.SingularDisplacementError`.

    Returns
    -------
    ToeplitzLike

    Notes
    -----
    Square: :math:`W = (e-f)^{-1}\sum_l C_e(g_l) C_f(J h_l)`, products in 2r + 2 FFTs.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> rng = np.random.default_rng(0)
    >>> W = ldr.toeplitz_like(rng.standard_normal((8, 2)), rng.standard_normal((2, 8)))
    >>> x = rng.standard_normal(8)
    >>> bool(np.allclose(W @ x, W.dense() @ x))
    True
    """
    m, n = generator_sizes(G, H)
    de, df = default_shift_pair(m, n)
    return ToeplitzLike(Shift(m, de if e is None else e), Shift(n, df if f is None else f), G, H)


def hankel_like(G, H, e=1.0, f=0.0):
    r"""Hankel-like matrix with :math:`Z_e W - W Z_f^T = G H` (default pair :math:`(Z_1, Z_0^T)`).

    Parameters
    ----------
    G : array, shape (..., m, r)
    H : array, shape (..., r, n)
    e, f : float or complex
        Operator corners, e ≠ f; the default ``(1, 0)`` is nonsingular for every m, n.

    Returns
    -------
    HankelLike

    Notes
    -----
    Square: :math:`W = (e-f)^{-1}\sum_l C_e(g_l) C_f(h_l) J`; products cost 2r + 2 FFTs.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> rng = np.random.default_rng(0)
    >>> W = ldr.hankel_like(rng.standard_normal((6, 1)), rng.standard_normal((1, 4)))
    >>> x = rng.standard_normal(4)
    >>> bool(np.allclose(W @ x, W.dense() @ x))
    True
    """
    m, n = generator_sizes(G, H)
    return HankelLike(Shift(m, e), Shift(n, f, transpose=True), G, H)
