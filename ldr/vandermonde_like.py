r"""Vandermonde-like matrices: :math:`\operatorname{diag}(v)\, W - W Z_f = G H`.

.. math:: W = \sum_l \operatorname{diag}\!\big(g_l \oslash (v^n - f)\big)\, V(v)\, C_f(J h_l),

with :math:`V(v)_{ij} = v_i^j`. The f-circulant factors cost r + 1 FFTs; the evaluation at the
nodes is one GEMM with the materialised :math:`V` (:math:`O(r m n)`), which is stable, unlike
superfast multipoint evaluation (see :doc:`/theory/stability`).
"""

from __future__ import annotations

from .krylov import Spectral, fft_length, fold
from .ldrmatrix import LDRMatrix
from .operators import Diagonal, Shift
from .validation import generator_sizes

__all__ = ["VandermondeLike", "vandermonde_like"]


class VandermondeLike(LDRMatrix):
    r"""Vandermonde-like matrix: :math:`\operatorname{diag}(v) W - W Z_f = G H` (m×n).

    Notes
    -----
    Requires :math:`v_i^n \ne f` for all i (with f = 0: no zero node). ``W x``: r f-circulant
    products (r + 1 FFTs), one GEMM with :math:`V(v)` and a row scaling; ``W^T x`` uses the
    power sums :math:`V^T z` and transposed f-circulant products. Keep :math:`|v_i| \le 1`:
    larger nodes overflow like :math:`|v|^{n-1}`.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> rng = np.random.default_rng(3)
    >>> v = np.exp(2j * np.pi * rng.random(5)).real * 0.9 + 0.05
    >>> W = ldr.vandermonde_like(rng.standard_normal((5, 2)), rng.standard_normal((2, 4)), v)
    >>> bool(np.allclose(ldr.displacement(W.A, W.B, W.dense()), W.G @ W.H))
    True
    """

    def __init__(self, A, B, G, H):
        super().__init__(A, B, G, H)
        n = self.shape[1]
        scale = self._bk.to_numpy(self.v).astype(complex) ** n - self.f
        if (scale == 0).any():
            raise ValueError(
                f"`v` has nodes with v**n - f == 0 in floating point (n = {n}, f = {self.f}): "
                "v**n underflows; use nodes nearer the unit circle or f != 0"
            )

    def _setup(self):
        self.f = self.B.f
        self.v = self.A.v

    def _scalars(self):
        return (self.f,)

    def _repr_items(self):
        return (("f", self.f),)

    def _factors(self, dtype):
        """Cached V(v) (..., m, n), the row scales d = G / (v^n - f) (..., r, m), spectra of J h_l."""

        def build():
            bk = self._bk
            n = self.shape[1]
            v = self._cast(self.v, dtype)
            sp = Spectral(bk, fft_length(n), bk.dtype_kind(dtype) == "c")
            return bk.vander(v, n), self._row_scales(v, dtype), sp.forward(bk.flip(self._cast(self.H, dtype)))

        return self._cached("factors", dtype, build)

    def _row_scales(self, v, dtype):
        """d_l = g_l / (v^n - f), shape (..., r, m): the diagonal factors of the Krylov form.

        A hook: ``ldr.nn`` overrides it to use learned scales directly, never dividing by
        v^n - f (which underflows for |v| < 1, f = 0; see :doc:`/theory/stability`).
        """
        bk = self._bk
        scale = v ** self.shape[1] - self.f
        return bk.swapaxes(self._cast(self.G, dtype), -1, -2) / bk.expand_dims(scale, -2)

    def _matvec(self, x):
        bk = self._bk
        n = self.shape[1]
        V, d, JH = self._factors(x.dtype)
        sp = Spectral(bk, fft_length(n), bk.dtype_kind(x.dtype) == "c")
        t = fold(sp.inverse(JH * bk.expand_dims(sp.forward(x), -2)), n, self.f, bk)  # (..., r, n)
        return bk.sum(d * bk.matmul(t, bk.swapaxes(V, -1, -2)), -2)

    def _rmatvec(self, x):
        bk = self._bk
        n = self.shape[1]
        V, d, JH = self._factors(x.dtype)
        sp = Spectral(bk, fft_length(n), bk.dtype_kind(x.dtype) == "c")
        power_sums = bk.matmul(d * bk.expand_dims(x, -2), V)  # (..., r, n) = V^T (d_l o x)
        # C_f(J h)^T a = J C_f(J h) J a, summed over l in the frequency domain.
        acc = bk.sum(JH * sp.forward(bk.flip(power_sums)), -2)
        return bk.flip(fold(sp.inverse(acc), n, self.f, bk))


LDRMatrix._pairs.append(
    (lambda A, B: isinstance(A, Diagonal) and isinstance(B, Shift) and not B.transpose, VandermondeLike)
)


def vandermonde_like(G, H, v, f=0.0):
    r"""Vandermonde-like matrix with :math:`\operatorname{diag}(v) W - W Z_f = G H`.

    Parameters
    ----------
    G : array, shape (..., m, r)
    H : array, shape (..., r, n)
    v : array, shape (..., m)
        The nodes; :math:`v_i^n \ne f` is required (f = 0: no zero node).
    f : float or complex, default 0.0
        Corner of :math:`Z_f` (the HyDRA paper uses :math:`Z_0`).

    Returns
    -------
    VandermondeLike

    Notes
    -----
    :math:`W = \sum_l \operatorname{diag}(g_l \oslash (v^n - f)) V(v) C_f(J h_l)`;
    products cost :math:`O(r n \log n + r m n)`.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> rng = np.random.default_rng(0)
    >>> v = rng.uniform(0.5, 1.0, 3)
    >>> W = ldr.vandermonde_like(rng.standard_normal((3, 1)), rng.standard_normal((1, 4)), v)
    >>> x = rng.standard_normal(4)
    >>> bool(np.allclose(W @ x, W.dense() @ x))
    True
    """
    m, n = generator_sizes(G, H)
    return VandermondeLike(Diagonal(v), Shift(n, f), G, H)
