r"""Toeplitz-like :math:`(Z_e, Z_f)` and Hankel-like :math:`(Z_e, Z_f^T)` matrices.

Square Toeplitz-like (:doc:`/theory/classes`):

.. math:: W = \frac{1}{e - f} \sum_{l} C_e(g_l)\, C_f(J h_l),

so ``W x`` costs 2r + 2 FFTs of length ``next_fast_len(2n - 1)``: one of ``x``, r inverse and
r forward transforms between the two factors, one inverse at the end (the generator spectra are
cached). A plain circulant side (e or f = 1, the default e) of 5-smooth size transforms at
length n instead (a circular convolution needs no padding), so that side costs about half.
Rectangular (m ≠ n): :math:`W = \sum_l C_e(g_l)\, T_{ef}\, C_f(J h_l)` with the fixed
Toeplitz matrix :math:`T_{ef}` solving :math:`Z_e T - T Z_f = e_0 e_{n-1}^T`, built in
O(m + n) without overflow (:func:`_rectangular_core`); for the default pair (1, 0) it is a 0/1
fold applied without FFTs.
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
    >>> from ldr import default_shift_pair
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


def _split(z):
    """Scalar ``z = c * 2**E`` with ``|c|`` in [0.5, 1) (``c = 0``, ``E = 0`` for ``z = 0``)."""
    if z == 0:
        return z * 0, 0
    _, E = math.frexp(abs(z))
    return z * math.ldexp(1.0, -E), E  # a power of two: exact


def _renormalise(c, E):
    """Arrays ``(c, E)`` standing for ``c * 2**E``, rescaled so that ``|c|`` is in [0.5, 1) (or 0)."""
    _, shift = np.frexp(np.abs(c))
    return c * np.ldexp(1.0, -shift), E + shift


def _scaled_powers(z, k):
    """``z**k`` for an integer array ``k >= 0``, as ``(c, E)`` with ``z**k = c * 2**E``.

    Binary powering with a renormalisation after every product: nothing overflows or underflows
    whatever ``|z|**k`` is (``2.0**1100`` overflows; ``exp(k log z)`` loses ``k |log z|`` ulps),
    and the error is O(log2 k) roundings. ``0**0 = 1``.
    """
    dtype = complex if isinstance(z, complex) else float
    base, base_exp = _split(dtype(z))
    k = np.array(k, dtype=np.int64)
    c = np.ones(k.shape, dtype=dtype)
    E = np.zeros(k.shape, dtype=np.int64)
    while k.any():
        odd = (k & 1).astype(bool)
        c, E = _renormalise(np.where(odd, c * base, c), np.where(odd, E + base_exp, E))
        square, shift = _split(base * base)
        base, base_exp = square, 2 * base_exp + shift
        k = k >> 1
    return c, E


def _scaled_to_float(c, E):
    """``c * 2**E`` as ordinary floats (overflow to inf / underflow to 0 only when the value does)."""
    E = np.clip(E, -4000, 4000)  # beyond this the result is 0 or inf anyway; ldexp wants int32
    if np.iscomplexobj(c):
        return np.ldexp(c.real, E) + 1j * np.ldexp(c.imag, E)
    return np.ldexp(c, E)


@functools.lru_cache(maxsize=64)
def _rectangular_core(m, n, e, f):
    r"""First column and first row of :math:`T_{ef}` (m×n), the solution of :math:`Z_e T - T Z_f = e_0 e_{n-1}^T`.

    Derivation. Telescoping with :math:`N = \operatorname{lcm}(m, n)`, :math:`Z_e^N = e^{N/m} I`
    and :math:`Z_f^N = f^{N/n} I`:

    .. math::

        (e^{N/m} - f^{N/n})\, T = Z_e^N T - T Z_f^N
        = \sum_{k<N} Z_e^k (Z_e T - T Z_f) Z_f^{N-1-k}
        = \sum_{k<N} e^{\lfloor k/m \rfloor} f^{\lfloor (N-1-k)/n \rfloor} E_{k \bmod m,\, k \bmod n},

    because :math:`Z_e^k e_0 = e^{\lfloor k/m \rfloor} e_{k \bmod m}` and
    :math:`e_{n-1}^T Z_f^{N-1-k} = f^{\lfloor (N-1-k)/n \rfloor} e_{k \bmod n}^T`. By the Chinese
    remainder theorem entry (i, j) receives exactly one term when :math:`i \equiv j \pmod g`,
    :math:`g = \gcd(m, n)`, and none otherwise: :math:`k = i + m s` with
    :math:`s = \frac{j - i}{g} (m/g)^{-1} \bmod (n/g)`, so :math:`\lfloor k/m \rfloor = s`.
    T is Toeplitz, so its first column and first row (m + n - 1 entries) are computed directly,
    O(m + n) instead of the O(N) sum; the powers and :math:`\alpha = e^{N/m} - f^{N/n}` are kept
    as mantissa and binary exponent (:func:`_scaled_powers`), so no intermediate overflows even
    where :math:`|e|^{N/m}` is far outside the float range: an entry is inf only if it really
    is. For the default pair (1, 0) every weight is 1 or 0 (:math:`0^b = 0` unless b = 0).

    Returns read-only float64 (complex128 when e or f is complex) arrays ``(column, row)``.
    """
    g = math.gcd(m, n)
    N = m // g * n
    n_g = n // g
    inverse = pow(m // g % n_g, -1, n_g) if n_g > 1 else 0

    def entries(i, j):
        valid = (i - j) % g == 0
        s = ((j - i) // g % n_g) * inverse % n_g  # floor(k / m), exact in int64 for n < 3e9
        k = i + m * s
        ca, Ea = _scaled_powers(e, s)
        cb, Eb = _scaled_powers(f, (N - 1 - k) // n)
        return valid, ca * cb, Ea + Eb

    (cP,), (EP,) = _scaled_powers(e, np.array([N // m]))
    (cQ,), (EQ,) = _scaled_powers(f, np.array([N // n]))
    cP, EP, cQ, EQ = cP.item(), int(EP), cQ.item(), int(EQ)
    top = max(EP if cP != 0 else EQ, EQ if cQ != 0 else EP)
    alpha = cP * math.ldexp(1.0, max(EP - top, -2000)) - cQ * math.ldexp(1.0, max(EQ - top, -2000))
    if alpha == 0:  # check_nonsingular refuses such pairs first
        raise ValueError(f"e**(N/m) == f**(N/n) for m = {m}, n = {n}, e = {e}, f = {f}: singular pair")
    alpha, E_alpha = _split(alpha)
    E_alpha += top
    out = []
    for i, j in ((np.arange(m), np.zeros(m, dtype=np.int64)), (np.zeros(n, dtype=np.int64), np.arange(n))):
        valid, c, E = entries(i, j)
        values = np.where(valid, _scaled_to_float(c / alpha, E - E_alpha), 0)
        values.flags.writeable = False  # shared by every caller of the lru_cache
        out.append(values)
    return tuple(out)


class ToeplitzLike(LDRMatrix):
    r"""Toeplitz-like matrix: :math:`Z_e W - W Z_f = G H`, e ≠ f (m×n, any m, n).

    Build it with :func:`toeplitz_like` or ``LDRMatrix(Shift(m, e), Shift(n, f), G, H)``.

    Notes
    -----
    Square: :math:`W = (e-f)^{-1} \sum_l C_e(g_l) C_f(J h_l)`; ``W x`` and ``W^T x`` each take
    2r + 2 real FFTs of length ``next_fast_len(2n - 1)``, :math:`O(r n \log n)`; the r + 1
    of a side with weight 1 have length n when n is 5-smooth (a circular convolution needs no padding).
    Rectangular: :math:`W = \sum_l C_e(g_l) T_{ef} C_f(J h_l)`, 2r + 2 FFTs for the default
    pair (1, 0) (:math:`T_{10}` is a 0/1 fold, O(m + n)), 2r + 4 for other pairs; building
    :math:`T_{ef}` costs O(m + n) for every e, f.
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
        self._core_is_fold = not self._square and (self.e, self.f) == (1, 0)
        # u = [r_{n-1}, ..., r_1, c_0, ..., c_{m-1}] when the matrix is a plain Toeplitz matrix
        # (set by ldr.toeplitz): products are then one convolution, 2 FFTs instead of 2r + 2 = 6.
        self._entries = None

    def _set_entries(self, u):
        """Keep the entries ``u`` (shape (..., m + n - 1)) of a plain Toeplitz matrix; returns self.

        ``u`` must describe the same matrix as the generators (``ldr.toeplitz`` builds both from
        one column and row); the displacement, ``G`` and ``H`` are unchanged. Only NumPy
        matrices keep them: their ``G``, ``H`` and ``u`` are frozen together. A torch matrix
        follows in-place edits of ``G`` and ``H``, which a stored ``u`` would not see, so its
        products take the rank-2 path from the generators.
        """
        if self._bk.cache_allowed(self.G, self.H):
            self._entries = self._bk.freeze(u)
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
        if abs(self.e) == 1:
            return self._dense_rectangular(dtype)
        return super()._dense(dtype)

    def _dense_rectangular(self, dtype):
        r"""Rectangular reconstruction for :math:`|e| = 1` from the first column, :math:`O(r m n)`.

        The column recursion of the square case, :math:`w_{j+1} = Z_e w_j - c_j` (c = GH), holds
        for every shape; only the closing equation through :math:`w_0` differs, so :math:`w_0 = W e_0`
        is taken from one fast product instead. A power :math:`Z_e^t` shifts down by t and
        multiplies by e at each wrap, so with :math:`d = (i - j) \bmod m`,
        :math:`k = -\lfloor (i - j)/m \rfloor` and :math:`a = \lfloor (d + 1 + s)/m \rfloor`,

        .. math::

            W_{ij} = e^{k} \Big( w_0[d] - \sum_{s < j} e^{-a}\, c_s[(d + 1 + s) \bmod m] \Big):

        one product GH, one gather, one running sum and one gather of m·n entries. The weights
        :math:`e^{k}, e^{-a}` have modulus 1 here; for :math:`|e| \ne 1` they would grow like
        :math:`|e|^{\pm n/m}` and cancel, so other pairs apply W to the identity instead.
        """
        bk = self._bk
        m, n = self.shape
        e = self.e
        C = bk.matmul(self._cast(self.G, dtype), self._cast(self.H, dtype))  # (..., m, n)
        batch = tuple(C.shape[:-2])
        first = bk.zeros((n,), dtype, like=C)
        first[..., 0] = 1
        w0 = self._matvec(first)  # (..., m): the first column, by the fast product
        d = np.arange(m)[:, None]
        j = np.arange(n)[None, :]
        # M[d, s] = e^{-a} c_s[(d + 1 + s) mod m]: one gather from the flattened C.
        M = bk.take(C.reshape(batch + (m * n,)), ((d + 1 + j) % m) * n + j, axis=-1)
        base = e if isinstance(e, complex) else float(e)  # a real e (= -1) keeps real weights
        if e != 1:
            M = M * bk.asarray(np.power(base, -((d + 1 + j) // m)), dtype=dtype, like=M)
        P = bk.cumsum(bk.pad_last(M, 1, 0), axis=-1)[..., :n]  # P[d, j] = sum over s < j
        Q = w0[..., :, None] - P
        W = bk.take(Q.reshape(batch + (m * n,)), ((d - j) % m) * n + j, axis=-1)  # row index i as d
        if e != 1:
            W = W * bk.asarray(np.power(base, -((d - j) // m)), dtype=dtype, like=W)
        return W

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
            if not self._square and not self._core_is_fold:
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

    def _core_matvec(self, t, spectra):
        r""":math:`T_{ef}\, t` along the last axis (n -> m) for a rectangular matrix.

        For the default pair (1, 0), :math:`T[i, j] = 1` exactly when :math:`i \equiv j - n
        \pmod m` (the only weights of :func:`_rectangular_core` that are not 0 are those with
        :math:`k \ge N - n`, i.e. :math:`k = N - n + j`), so :math:`T t` folds t, zero-padded on
        the left to a multiple L of m, into length m: O(m + n), no FFT. Other pairs: one
        convolution with the entries of T, 2 FFTs of length ``next_fast_len(m + n - 1)``.
        """
        bk = self._bk
        m, n = self.shape
        if self._core_is_fold:
            L = -(-n // m) * m
            padded = bk.pad_last(t, L - n, 0)
            return bk.sum(padded.reshape(tuple(padded.shape[:-1]) + (L // m, m)), -2)
        st = self._spectral(t.dtype, next_fast_len(m + n - 1))
        return st.inverse(spectra["T"] * st.forward(t))[..., n - 1 : n - 1 + m]

    def _core_rmatvec(self, a, spectra):
        r""":math:`T_{ef}^T a` along the last axis (m -> n); for (1, 0) a gather of entries :math:`(j - n) \bmod m`."""
        m, n = self.shape
        if self._core_is_fold:
            return self._bk.take(a, (np.arange(n) - n) % m, axis=-1)
        st = self._spectral(a.dtype, next_fast_len(m + n - 1))
        return st.inverse(spectra["T^T"] * st.forward(a))[..., m - 1 : m - 1 + n]

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
        middle = self._core_matvec(t, s)
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
        middle = self._core_rmatvec(a, s)
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

    def _toeplitz(self):
        """The Toeplitz-like ``W J`` with generators ``(G, H J)``, for the current values of H.

        ``torch.flip`` copies, so it is flipped per product for torch (a stored flip would miss
        in-place edits of H and, built under ``no_grad``, cut H out of the graph); a frozen
        NumPy matrix keeps it with its other cached values.
        """
        return self._cached("toeplitz", None, self._build_toeplitz)

    def _build_toeplitz(self):
        T = ToeplitzLike._trusted(
            Shift(self.A.size, self.e), Shift(self.B.size, self.f), self.G, self._bk.flip(self.H)
        )
        # Its cached spectra follow the user's G and H, not the flipped copy.
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
        Left generator: the m×r factor of the displacement :math:`GH`. Leading axes are batch
        axes and broadcast with those of ``H``.
    H : array, shape (..., r, n)
        Right generator: the r×n factor (the HyDRA paper writes its transpose, n×r). r is the
        displacement rank.
    e, f : float or complex, optional
        Operator corners, e ≠ f. Default :func:`~ldr.default_shift_pair`: ``(1, -1)`` when m = n,
        ``(1, 0)`` otherwise (never singular). A singular pair raises
        :class:`~ldr.SingularDisplacementError`.

    Returns
    -------
    ToeplitzLike

    Notes
    -----
    Square: :math:`W = (e-f)^{-1}\sum_l C_e(g_l) C_f(J h_l)`, products in 2r + 2 FFTs.

    See Also
    --------
    toeplitz : A plain Toeplitz matrix from its first column and row (rank 2 in this class).
    circulant : A circulant matrix (rank 1 in this class).
    hankel_like : The Hankel-like class, :math:`(Z_e, Z_f^T)`.
    default_shift_pair : The default ``(e, f)``.

    References
    ----------
    .. [1] V. Y. Pan, *Structured Matrices and Polynomials: Unified Superfast Algorithms*.
           Birkhäuser/Springer, 2001.

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
        Left generator: the m×r factor of the displacement :math:`GH`. Leading axes are batch
        axes and broadcast with those of ``H``.
    H : array, shape (..., r, n)
        Right generator: the r×n factor (the HyDRA paper writes its transpose, n×r). r is the
        displacement rank.
    e, f : float or complex
        Operator corners, e ≠ f; the default ``(1, 0)`` is nonsingular for every m, n.

    Returns
    -------
    HankelLike

    Notes
    -----
    Square: :math:`W = (e-f)^{-1}\sum_l C_e(g_l) C_f(h_l) J`; products cost 2r + 2 FFTs.

    See Also
    --------
    hankel : A plain Hankel matrix from its first column and last row (rank 2 in this class).
    toeplitz_like : The Toeplitz-like class; ``W`` is Hankel-like exactly when ``W J`` is Toeplitz-like.

    References
    ----------
    .. [1] V. Y. Pan, *Structured Matrices and Polynomials: Unified Superfast Algorithms*.
           Birkhäuser/Springer, 2001.

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
