r"""Row-reversed LDR matrices :math:`W = J M`: the classes of the inverses of Hankel-like and Vandermonde-like matrices.

The inverse of an LDR matrix for :math:`(A, B)` is an LDR matrix for the swapped pair
:math:`(B, A)` (:func:`ldr.inv`). For Hankel-like :math:`(Z_e, Z_f^T)` and Vandermonde-like
:math:`(\operatorname{diag}(v), Z_f)` matrices the swapped pairs :math:`(Z_f^T, Z_e)` and
:math:`(Z_f, \operatorname{diag}(v))` are brought back to the other classes by the reversal
:math:`J` (ones on the anti-diagonal), because :math:`J Z_a^T J = Z_a`:

* :math:`Z_a^T W - W Z_b = G H` gives :math:`Z_a (JW) - (JW) Z_b = (JG) H`: :math:`JW` is
  Toeplitz-like with generators :math:`(JG, H)`;
* :math:`Z_f W - W \operatorname{diag}(v) = G H` gives
  :math:`\operatorname{diag}(v) V - V Z_f = (-H^T)(G^T J)` for :math:`V = (JW)^T = W^T J`:
  :math:`W = J V^T` with V Vandermonde-like.

Products reverse the rows of the inner matrix's products; derivation in :doc:`/theory/solvers`.
"""

from __future__ import annotations

from .ldrmatrix import LDRMatrix
from .operators import Diagonal, Shift
from .toeplitz_like import ToeplitzLike
from .vandermonde_like import VandermondeLike

__all__ = ["RowReversed"]


def _flip_rows(bk, X):
    """:math:`J X` for X of shape (..., m, k): the rows in reverse order."""
    return bk.swapaxes(bk.flip(bk.swapaxes(X, -1, -2)), -1, -2)


class RowReversed(LDRMatrix):
    r"""A row-reversed LDR matrix :math:`W = J M`, for the pairs :math:`(Z_a^T, Z_b)` and :math:`(Z_f, \operatorname{diag}(v))`.

    :func:`ldr.inv` returns this class for Hankel-like and Vandermonde-like matrices (their
    swapped operator pairs); ``LDRMatrix(Shift(m, a, transpose=True), Shift(n, b), G, H)`` and
    ``LDRMatrix(Shift(m, f), Diagonal(v), G, H)`` build it from generators.

    Notes
    -----
    With :math:`J` the reversal and :math:`J Z_a^T J = Z_a`:

    * :math:`Z_a^T W - W Z_b = G H` (a ≠ b): :math:`M = J W` is Toeplitz-like for
      :math:`(Z_a, Z_b)` with generators :math:`(J G, H)`;
    * :math:`Z_f W - W \operatorname{diag}(v) = G H` (:math:`v_i^m \ne f`): :math:`M = J W =
      V^T` with V Vandermonde-like for :math:`(\operatorname{diag}(v), Z_f)` with generators
      :math:`(-H^T, G^T J)`.

    ``W x = J (M x)`` and ``W^T x = M^T (J x)``: the cost of M's products (2r + 2 FFTs for the
    Toeplitz-like M when square; :math:`O(r m n)` or the fast Vandermonde path for V) plus
    two reversals. Attributes: ``e, f`` (the corners of A and B) for the shift pair, ``f`` and
    ``v`` (the corner of A and the nodes of B) for the Vandermonde pair.
    See :doc:`/theory/solvers`.

    Examples
    --------
    >>> import numpy as np, scipy.linalg, ldr
    >>> rng = np.random.default_rng(4)
    >>> G, H = rng.standard_normal((5, 2)), rng.standard_normal((2, 5))
    >>> A, B = ldr.Shift(5, 0.0, transpose=True), ldr.Shift(5, 1.0)
    >>> W = ldr.LDRMatrix(A, B, G, H)
    >>> type(W).__name__
    'RowReversed'
    >>> D = scipy.linalg.solve_sylvester(A.dense(), -B.dense(), G @ H)
    >>> bool(np.allclose(W.dense(), D))
    True
    """

    def __init__(self, A, B, G, H):
        super().__init__(A, B, G, H)
        if self._vandermonde:
            # The validated constructor refuses row scales G_V / (v^m - f) that are not finite
            # (VandermondeLike's notes): such a W is not representable from these generators.
            self._build_inner(validate=True)

    def _setup(self):
        self._vandermonde = isinstance(self.B, Diagonal)
        if self._vandermonde:
            self.f, self.v = self.A.f, self.B.v
        else:
            self.e, self.f = self.A.f, self.B.f

    def _scalars(self):
        return (self.f,) if self._vandermonde else (self.e, self.f)

    def _repr_items(self):
        return (("f", self.f),) if self._vandermonde else (("e", self.e), ("f", self.f))

    def inner(self):
        r"""The matrix :math:`M = J W` (a :class:`~ldr.ToeplitzLike`, or the transpose view of a :class:`~ldr.VandermondeLike`).

        Returns
        -------
        LDRMatrix
            Built from the current generators (torch: on every call, so in-place edits and
            autograd reach it; NumPy: once, the generators being immutable).

        Examples
        --------
        >>> import numpy as np, ldr
        >>> rng = np.random.default_rng(5)
        >>> W = ldr.LDRMatrix(ldr.Shift(4, 0.0), ldr.Diagonal(np.array([0.5, 0.6, 0.7, 0.8])),
        ...                   rng.standard_normal((4, 1)), rng.standard_normal((1, 4)))
        >>> M = W.inner()
        >>> type(M.T).__name__
        'VandermondeLike'
        >>> bool(np.allclose(W.dense(), M.dense()[::-1]))
        True
        """
        return self._cached("inner", None, self._build_inner)

    def _build_inner(self, validate=False):
        bk = self._bk
        m, n = self.shape
        if not self._vandermonde:
            inner = ToeplitzLike._trusted(Shift(m, self.A.f), Shift(n, self.B.f), _flip_rows(bk, self.G), self.H)
            inner._cache_sources = self._cache_sources  # its cached spectra follow W's own G, H
            return inner
        G_V, H_V = -bk.swapaxes(self.H, -1, -2), bk.flip(bk.swapaxes(self.G, -1, -2))
        V = (VandermondeLike if validate else VandermondeLike._trusted)(self.B, Shift(m, self.A.f), G_V, H_V)
        V._cache_sources = self._cache_sources
        return V.T

    def _matvec(self, x):
        return self._bk.flip(self.inner()._matvec(x))

    def _rmatvec(self, x):
        return self.inner()._rmatvec(self._bk.flip(x))

    def _dense(self, dtype):
        return _flip_rows(self._bk, self.inner()._dense(dtype))


LDRMatrix._pairs.append(
    (lambda A, B: isinstance(A, Shift) and A.transpose and isinstance(B, Shift) and not B.transpose, RowReversed)
)
LDRMatrix._pairs.append(
    (lambda A, B: isinstance(A, Shift) and not A.transpose and isinstance(B, Diagonal), RowReversed)
)
