r"""Cauchy-like matrices: :math:`\operatorname{diag}(v) W - W \operatorname{diag}(u) = G H`.

Entrywise :math:`W_{ij} = (GH)_{ij} / (v_i - u_j)`, i.e. :math:`W = (GH) \circ C(v, u)`.
Products use the materialised Cauchy matrix, :math:`O(r m n)`; superfast (Trummer-type)
algorithms are unstable (see :doc:`/theory/stability`).
"""

from __future__ import annotations

from .ldrmatrix import LDRMatrix
from .operators import Diagonal

__all__ = ["CauchyLike", "cauchy_like"]


class CauchyLike(LDRMatrix):
    r"""Cauchy-like matrix: :math:`\operatorname{diag}(v) W - W \operatorname{diag}(u) = G H`.

    Notes
    -----
    Requires :math:`v_i \ne u_j`; a collision raises and names the pair. With the Cauchy matrix
    :math:`C_{ij} = 1/(v_i - u_j)`: :math:`W x = \sum_l g_l \circ C (h_l \circ x)` and
    :math:`W^T y = \sum_l h_l \circ C^T (g_l \circ y)`, :math:`O(r m n)`.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> rng = np.random.default_rng(4)
    >>> v, u = np.arange(4.0), np.arange(3.0) + 0.5
    >>> W = ldr.cauchy_like(rng.standard_normal((4, 2)), rng.standard_normal((2, 3)), v, u)
    >>> bool(np.allclose(W.dense(), (W.G @ W.H) / (v[:, None] - u[None, :])))
    True
    """

    def _setup(self):
        self.v, self.u = self.A.v, self.B.v

    def _cauchy(self, dtype):
        def build():
            bk = self._bk
            v, u = self._cast(self.v, dtype), self._cast(self.u, dtype)
            return 1.0 / (bk.expand_dims(v, -1) - bk.expand_dims(u, -2))

        return self._cached("cauchy", dtype, build)

    def _matvec(self, x):
        bk = self._bk
        C = self._cauchy(x.dtype)
        G, H = self._cast(self.G, x.dtype), self._cast(self.H, x.dtype)
        CHx = bk.matmul(H * bk.expand_dims(x, -2), bk.swapaxes(C, -1, -2))  # (..., r, m)
        return bk.sum(bk.swapaxes(G, -1, -2) * CHx, -2)

    def _rmatvec(self, x):
        bk = self._bk
        C = self._cauchy(x.dtype)
        G, H = self._cast(self.G, x.dtype), self._cast(self.H, x.dtype)
        CtGx = bk.matmul(bk.swapaxes(G, -1, -2) * bk.expand_dims(x, -2), C)  # (..., r, n)
        return bk.sum(H * CtGx, -2)

    def _dense(self, dtype):
        bk = self._bk
        return bk.matmul(self._cast(self.G, dtype), self._cast(self.H, dtype)) * self._cauchy(dtype)


LDRMatrix._pairs.append((lambda A, B: isinstance(A, Diagonal) and isinstance(B, Diagonal), CauchyLike))


def cauchy_like(G, H, v, u):
    r"""Cauchy-like matrix with :math:`\operatorname{diag}(v) W - W \operatorname{diag}(u) = G H`.

    Parameters
    ----------
    G : array, shape (..., m, r)
    H : array, shape (..., r, n)
    v : array, shape (..., m)
        Row nodes.
    u : array, shape (..., n)
        Column nodes; every :math:`v_i \ne u_j`.

    Returns
    -------
    CauchyLike

    Notes
    -----
    :math:`W = (GH) \circ C(v, u)`, :math:`C_{ij} = 1/(v_i - u_j)`; products :math:`O(r m n)`.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> W = ldr.cauchy_like(np.ones((2, 1)), np.ones((1, 2)), np.array([0.0, 1.0]), np.array([0.5, 2.0]))
    >>> W.dense()
    array([[-2. , -0.5],
           [ 2. , -1. ]])
    """
    return CauchyLike(Diagonal(v), Diagonal(u, name="u"), G, H)
