r"""Toeplitz-like :math:`(Z_e, Z_f)` and Hankel-like :math:`(Z_e, Z_f^T)` matrices.

Square Toeplitz-like (:doc:`/theory/classes`):

.. math:: W = \frac{1}{e - f} \sum_{l} C_e(g_l)\, C_f(J h_l),

so ``W x`` costs 2r + 2 FFTs of length ``next_fast_len(2n - 1)``: one of ``x``, r inverse and
r forward transforms between the two factors, one inverse at the end (the generator spectra are
cached). A plain circulant side (e or f = 1, the default e) of 5-smooth size transforms at
length n instead (a circular convolution needs no padding), so that side costs about half.
Rectangular (m ≠ n): :math:`W = \sum_l C_e(g_l)\, T_{ef}\, C_f(J h_l)` with the fixed
Toeplitz matrix :math:`T_{ef}` solving :math:`Z_e T - T Z_f = e_0 e_{n-1}^T`.
Hankel-like matrices are Toeplitz-like ones times the reversal: :math:`W = T J` with
generators ``(G, H J)``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.fft import next_fast_len

from .krylov import Spectral, fft_length, fold, fold_padded
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
    >>> from ldr.toeplitz_like import default_shift_pair
    >>> default_shift_pair(4, 4), default_shift_pair(3072, 768)
    ((1.0, -1.0), (1.0, 0.0))
    """
    return (1.0, -1.0) if m == n else (1.0, 0.0)


def _transform_length(size, weight):
    """FFT length of the products with :math:`C_{weight}(v)`, v of length ``size``.

    A plain circulant (weight 1) is a circular convolution: one transform of length ``size``
    itself when that is 5-smooth, about half the work of the zero-padded linear convolution
    (length ``fft_length(size)`` ≈ 2 size) that every other weight needs before folding. For
    the default square pair (Z_1, Z_-1) this makes the e side's r + 1 transforms half as long:
    30-40 % less time per product (torch, float32, n = 1024, r = 4, batch 64).

    Examples
    --------
    >>> from ldr.toeplitz_like import _transform_length
    >>> _transform_length(1024, 1.0), _transform_length(1024, -1.0), _transform_length(1021, 1.0)
    (1024, 2048, 2048)
    """
    if weight == 1 and next_fast_len(size, real=True) == size:
        return size
    return fft_length(size)


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
    2r + 2 real FFTs of length ``next_fast_len(2n - 1)``, :math:`O(r n \log n)`; the r + 1
    of a side with weight 1 have length n when n is 5-smooth (see ``_transform_length`` in this module).
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
        # u = [r_{n-1}, ..., r_1, c_0, ..., c_{m-1}] when the matrix is a plain Toeplitz matrix
        # (set by ldr.toeplitz): products are then one convolution, 2 FFTs instead of 2r + 2 = 6.
        self._entries = None

    def _set_entries(self, u):
        """Keep the entries ``u`` (shape (..., m + n - 1)) of a plain Toeplitz matrix; returns self.

        ``u`` must describe the same matrix as the generators (``ldr.toeplitz`` builds both from
        one column and row); the displacement, ``G`` and ``H`` are unchanged.
        """
        if self._bk.name == "numpy":
            u = np.array(u)  # private read-only copy, as for G and H
            u.flags.writeable = False
        self._entries = u
        return self

    def _insert_batch_axis(self):
        W = super()._insert_batch_axis()
        if self._entries is not None:
            W._entries = self._bk.expand_dims(self._entries, -2)
        return W

    def _entry_spectra(self, dtype):
        """Cached spectra of u and of J u at length next_fast_len(m + n - 1)."""

        def build():
            m, n = self.shape
            sp = self._spectral(dtype, next_fast_len(m + n - 1, real=True))
            u = self._cast(self._entries, dtype)
            return sp.forward(u), sp.forward(self._bk.flip(u))

        return self._cached("entries", dtype, build)

    def _convolve(self, x, transpose):
        r"""Plain Toeplitz products: :math:`T x = (u * x)[n-1 : n-1+m]`, :math:`T^T y = (Ju * y)[m-1 : m-1+n]`."""
        m, n = self.shape
        sp = self._spectral(x.dtype, next_fast_len(m + n - 1, real=True))
        spectrum = self._entry_spectra(x.dtype)[1 if transpose else 0]
        start, size = (m - 1, n) if transpose else (n - 1, m)
        return sp.inverse(spectrum * sp.forward(x))[..., start : start + size]

    def _dense(self, dtype):
        if self._entries is not None:
            m, n = self.shape  # T[i, j] = u[n - 1 + i - j]: a gather, O(m n)
            index = (n - 1) + np.arange(m)[:, None] - np.arange(n)[None, :]
            return self._bk.take(self._cast(self._entries, dtype), index, axis=-1)
        if self._square:
            return self._dense_square(dtype)
        return super()._dense(dtype)

    def _dense_square(self, dtype):
        r"""Square reconstruction from the column recursion, :math:`O(r n^2)`, no FFT.

        Column j of :math:`Z_e W - W Z_f = GH` reads :math:`w_{j+1} = Z_e w_j - c_j` (c = GH), and
        the last column closes the cycle: :math:`Z_e w_{n-1} - f w_0 = c_{n-1}`. Hence
        :math:`w_j = Z_e^j w_0 - \sum_{s<j} Z_e^{j-1-s} c_s` and, as :math:`Z_e^n = eI`,
        :math:`w_0 = (e - f)^{-1} \sum_{s<n} Z_e^{n-1-s} c_s`. A power :math:`Z_e^t` (t < n)
        shifts down by t and multiplies the entries that wrap around by e. Entry (i, j) of W
        therefore only involves :math:`M[d, s] = c_s[(d + 1 + s) \bmod n]` on its cyclic diagonal
        :math:`d = (i - j) \bmod n`, through the prefix sums :math:`P[d, k] = \sum_{s<k} M[d, s]`;
        the terms wrap exactly when :math:`d + j \ge n`, and then the wrapped part of the sum is
        :math:`P[d, n - 1 - d]`. With :math:`p_d = P[d, n - 1 - d]`,

        .. math::

            W_{(d + j) \bmod n,\, j} = -P[d, j] + \begin{cases} w_0[d] & d + j < n \\
            e\, w_0[d] - (e - 1)\, p_d & d + j \ge n \end{cases}, \qquad
            w_0[d] = \frac{P[d, n] + (e - 1)\, p_d}{e - f}.

        Cost: the product GH (:math:`2 r n^2` flops), a running sum and two gathers of
        :math:`n^2` entries, against the :math:`O(r n^2 \log n)` of applying W to the identity.
        """
        bk = self._bk
        n = self.shape[0]
        e, f = self.e, self.f
        C = bk.matmul(self._cast(self.G, dtype), self._cast(self.H, dtype))  # (..., n, n): c_s = C[:, s]
        batch = tuple(C.shape[:-2])
        d = np.arange(n)[:, None]
        j = np.arange(n)[None, :]
        # M[d, s] = C[(d + 1 + s) mod n, s]: one gather from the flattened C.
        M = bk.take(C.reshape(batch + (n * n,)), ((d + j + 1) % n) * n + j, axis=-1)
        P = bk.cumsum(bk.pad_last(M, 1, 0), axis=-1)  # (..., n, n + 1): P[d, k] = sum over s < k
        # p_d = P[d, n - 1 - d], at d (n + 1) + n - 1 - d = d n + n - 1 of the flattened P.
        wrapped = bk.take(P.reshape(batch + (n * (n + 1),)), np.arange(n) * n + (n - 1), axis=-1)
        w0 = (P[..., n] + (e - 1) * wrapped) / (e - f)
        after_wrap = e * w0 - (e - 1) * wrapped
        mask = bk.asarray((d + j >= n).astype(np.float64), dtype=dtype, like=M)
        Q = (w0[..., :, None] + (after_wrap - w0)[..., :, None] * mask) - P[..., :n]  # Q[d, j]
        # W[i, j] = Q[(i - j) mod n, j]: the second gather (the row index i takes the place of d).
        i = d
        return bk.take(Q.reshape(batch + (n * n,)), ((i - j) % n) * n + j, axis=-1)

    def _scalars(self):
        return (self.e, self.f)

    def _repr_items(self):
        return (("e", self.e), ("f", self.f))

    def _spectral(self, dtype, size):
        bk = self._bk
        return Spectral(bk, size, bk.dtype_kind(dtype) == "c")

    def _spectra(self, dtype):
        """Cached generator spectra: g_l (divided by e - f when square) at the m side's length, J h_l at the n side's."""

        def build():
            bk = self._bk
            m, n = self.shape
            G = bk.swapaxes(self._cast(self.G, dtype), -1, -2)  # (..., r, m)
            JH = bk.flip(self._cast(self.H, dtype))  # (..., r, n)
            sm, sn = self._side(dtype, m, self.e), self._side(dtype, n, self.f)
            spectra = {"G": sm.forward(G), "JH": sn.forward(JH)}
            if self._square:  # the factor 1/(e - f) once here, not on every product's output
                spectra["G"] = spectra["G"] / (self.e - self.f)
            if not self._square:
                column, row = _rectangular_core(m, n, self.e, self.f)
                st = self._spectral(dtype, next_fast_len(m + n - 1))
                # T t = (u * t)[n-1 : n-1+m] with u = [r_{n-1}, ..., r_1, c_0, ..., c_{m-1}];
                # T^T a = (u' * a)[m-1 : m-1+n] with u' = [c_{m-1}, ..., c_1, r_0, ..., r_{n-1}].
                # [1:][::-1], not [:0:-1]: torch.compile traces NumPy code, and its tracer (torch
                # 2.13) returns the whole reversed array for [:0:-1].
                u = np.concatenate([row[1:][::-1], column])
                u_t = np.concatenate([column[1:][::-1], row])
                spectra["T"] = st.forward(bk.asarray(u, dtype=dtype, like=self.G))
                spectra["T^T"] = st.forward(bk.asarray(u_t, dtype=dtype, like=self.G))
            return spectra

        return self._cached("spectra", dtype, build)

    def _side(self, dtype, size, weight):
        """The transform pair of the C_weight products of one side (see :func:`_transform_length`)."""
        return self._spectral(dtype, _transform_length(size, weight))

    def _wrap(self, c, size, weight, next_length=None):
        """The C_weight product from an inverse transform ``c``: as it is when ``c`` is a circular
        convolution of length ``size``, else folded (zero-padded in place when the next forward
        transform has ``c``'s length)."""
        if c.shape[-1] == size:
            return c
        if next_length == c.shape[-1]:
            return fold_padded(c, size, weight, self._bk)
        return fold(c, size, weight, self._bk)

    def _circulant_stage(self, spectrum, x, size, weight, reverse=False):
        """sum-free stage: C_weight(v_l) x for every l, x of shape (..., size) or (..., r, size)."""
        bk = self._bk
        sp = self._side(x.dtype, size, weight)
        X = sp.forward(bk.flip(x) if reverse else x)
        y = self._wrap(sp.inverse(spectrum * X), size, weight)
        return bk.flip(y) if reverse else y

    def _matvec(self, x):
        if self._entries is not None:
            return self._convolve(x, transpose=False)
        bk = self._bk
        m, n = self.shape
        s = self._spectra(x.dtype)
        if self._square:
            sf, se = self._side(x.dtype, n, self.f), self._side(x.dtype, n, self.e)
            # f-side product for every l (1 + r FFTs), then the e-side products summed in the
            # frequency domain (r + 1 FFTs): 2r + 2 in all.
            t = self._wrap(sf.inverse(s["JH"] * bk.expand_dims(sf.forward(x), -2)), n, self.f, se.length)
            acc = bk.sum(s["G"] * se.forward(t), -2)
            return self._wrap(se.inverse(acc), n, self.e)
        t = self._circulant_stage(s["JH"], bk.expand_dims(x, -2), n, self.f)
        st = self._spectral(x.dtype, next_fast_len(m + n - 1))
        middle = st.inverse(s["T"] * st.forward(t))[..., n - 1 : n - 1 + m]
        sm = self._side(x.dtype, m, self.e)
        return self._wrap(sm.inverse(bk.sum(s["G"] * sm.forward(middle), -2)), m, self.e)

    def _rmatvec(self, x):
        if self._entries is not None:
            return self._convolve(x, transpose=True)
        bk = self._bk
        m, n = self.shape
        s = self._spectra(x.dtype)
        if self._square:
            se, sf = self._side(x.dtype, n, self.e), self._side(x.dtype, n, self.f)
            # W^T = J [(e-f)^{-1} sum_l C_f(J h_l) C_e(g_l)] J: reverse, same two stages swapped, reverse.
            t = self._wrap(se.inverse(s["G"] * bk.expand_dims(se.forward(bk.flip(x)), -2)), n, self.e, sf.length)
            acc = bk.sum(s["JH"] * sf.forward(t), -2)
            return bk.flip(self._wrap(sf.inverse(acc), n, self.f))
        a = self._circulant_stage(s["G"], bk.expand_dims(x, -2), m, self.e, reverse=True)
        st = self._spectral(x.dtype, next_fast_len(m + n - 1))
        middle = st.inverse(s["T^T"] * st.forward(a))[..., m - 1 : m - 1 + n]
        sn = self._side(x.dtype, n, self.f)
        acc = bk.sum(s["JH"] * sn.forward(bk.flip(middle)), -2)
        return bk.flip(self._wrap(sn.inverse(acc), n, self.f))


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
        self._flipped = None  # (version of H, the Toeplitz-like W J built from it)

    def _toeplitz(self):
        """The Toeplitz-like ``W J`` with generators ``(G, H J)``, for the current values of H.

        ``torch.flip`` copies, so a flip stored once would miss in-place updates of H (an
        optimizer step) and, built under ``no_grad``, would cut H out of the graph: while a graph
        is recorded it is flipped per product; otherwise it is rebuilt when H's version changes.
        """
        bk = self._bk
        if bk.cache_allowed(*self._arrays()):
            version = bk.version(self.H)
            if self._flipped is None or self._flipped[0] != version:
                self._flipped = (version, self._build_toeplitz())
            return self._flipped[1]
        return self._build_toeplitz()

    def _build_toeplitz(self):
        T = ToeplitzLike._trusted(
            Shift(self.A.size, self.e), Shift(self.B.size, self.f), self.G, self._bk.flip(self.H)
        )
        # Its cached spectra follow the versions of the user's G and H, not of the flipped copy.
        T._cache_sources = self._cache_sources
        return T

    def _scalars(self):
        return (self.e, self.f)

    def _repr_items(self):
        return (("e", self.e), ("f", self.f))

    def _dense(self, dtype):
        # W = (W J) J: the Toeplitz-like reconstruction (O(r n^2) when square), columns reversed.
        return self._bk.flip(self._toeplitz()._dense(dtype))

    def _matvec(self, x):
        return self._toeplitz()._matvec(self._bk.flip(x))

    def _rmatvec(self, x):
        return self._bk.flip(self._toeplitz()._rmatvec(x))


LDRMatrix._pairs.append((lambda A, B: _is_shift(A, False) and _is_shift(B, True), HankelLike))


def toeplitz_like(G, H, e=None, f=None):
    r"""Toeplitz-like matrix with :math:`Z_e W - W Z_f = G H`.

    Parameters
    ----------
    G : array, shape (..., m, r)
    H : array, shape (..., r, n)
    e, f : float or complex, optional
        Operator corners, e ≠ f. Default :func:`~ldr.toeplitz_like.default_shift_pair`: ``(1, -1)`` when m = n,
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
