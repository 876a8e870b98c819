r"""Streamed products with the node kernels of Cauchy-like and Vandermonde-like matrices.

Both classes multiply by an m×n kernel matrix that depends only on the nodes: the Cauchy
matrix :math:`C(v, u)_{ij} = 1 / (v_i - u_j)`, or the row-normalised power matrix
:math:`P(v)` below. Nothing of size m×n is ever stored: the kernel is built one row tile at a
time (about ``TILE_ENTRIES`` entries), multiplied by all right-hand sides at once in one
GEMM whose row dimension folds every batch axis (a NumPy ``matmul`` over a 3-D stack would call
one GEMM per batch entry), and dropped. Time :math:`O(r m n)` per product, memory
:math:`O((m + n) r + \text{tile})`; under torch autograd each tile is recomputed in the backward
pass (``Backend.recompute``) so the graph holds no m×n intermediate.

Powers are computed to a few ulps, never by a running product (which loses :math:`n\varepsilon`):
:math:`v^{qb+s} = v^{qb}\,v^{s}` with :math:`b = \lceil\sqrt n\,\rceil` and both factors
:math:`\exp(k \log v)` evaluated in float64 (complex128), so the phase :math:`k \arg v` of a
complex node is exact to float64 round-off, then rounded once to the compute dtype and multiplied.
Rows with :math:`|v_i| > 1` use :math:`v_i^{\,j-(n-1)} = (1/v_i)^{n-1-j}` (their row scale takes
the factor :math:`v_i^{n-1}`), so no power ever exceeds 1 in modulus and nothing overflows
unless :math:`W` itself does. See :doc:`/theory/node_kernels`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["TILE_ENTRIES", "row_tiles", "streamed_matvec", "streamed_rmatvec", "cauchy_tile", "NodePowers"]

#: Kernel entries built at once (8 MiB in float64): large enough for an efficient GEMM,
#: small enough to stay in cache-friendly territory at n = 16384 (64 rows).
TILE_ENTRIES = 1 << 20


def row_tiles(m, n, entries=None):
    """Row ranges ``(i0, i1)`` covering ``range(m)`` with about ``entries`` (default
    ``TILE_ENTRIES``) kernel entries each, at least 4 rows."""
    rows = max(4, (TILE_ENTRIES if entries is None else entries) // max(n, 1))
    return [(i0, min(m, i0 + rows)) for i0 in range(0, m, rows)] or [(0, 0)]


def _flat(bk, nodes):
    """Nodes (..., k) without batch axes as (k,) when every batch axis has size 1."""
    if nodes.ndim > 1 and bk.prod(nodes.shape[:-1]) == 1:
        return nodes.reshape(nodes.shape[-1:])
    return nodes


def _times_kernel_t(bk, z, K):
    """``z @ K^T`` for z (..., r, n) and a tile K (tm, n) or (..., tm, n).

    An unbatched tile takes every leading axis of z into one GEMM (rows = batch * r).
    """
    if K.ndim == 2:
        return bk.matmul(z.reshape((-1, z.shape[-1])), bk.swapaxes(K, -1, -2)).reshape(z.shape[:-1] + (K.shape[0],))
    return bk.matmul(z, bk.swapaxes(K, -1, -2))


def _times_kernel(bk, z, K):
    """``z @ K`` for z (..., r, tm) and a tile K (tm, n) or (..., tm, n)."""
    if K.ndim == 2:
        return bk.matmul(z.reshape((-1, z.shape[-1])), K).reshape(z.shape[:-1] + (K.shape[1],))
    return bk.matmul(z, K)


def streamed_matvec(bk, z, tile, nodes, m):
    """``K z`` row tile by row tile: z (..., r, n) gives (..., r, m).

    ``tile(i0, i1)`` returns rows ``i0:i1`` of the kernel, (tm, n) or (..., tm, n); ``nodes``
    are the arrays it reads (they decide whether autograd needs the tile recomputed).
    """
    n = z.shape[-1]
    parts = [
        bk.recompute(lambda z_, *_, i0=i0, i1=i1: _times_kernel_t(bk, z_, tile(i0, i1)), z, *nodes)
        for i0, i1 in row_tiles(m, n)
    ]
    return parts[0] if len(parts) == 1 else bk.concatenate(parts, axis=-1)


def streamed_rmatvec(bk, z, tile, nodes, n):
    """``K^T z`` accumulated over row tiles: z (..., r, m) gives (..., r, n)."""
    m = z.shape[-1]
    total = None
    for i0, i1 in row_tiles(m, n):
        part = bk.recompute(
            lambda z_, *_, i0=i0, i1=i1: _times_kernel(bk, z_[..., i0:i1], tile(i0, i1)), z, *nodes
        )
        total = part if total is None else total + part
    return total


def cauchy_tile(bk, v, u, i0, i1):
    """Rows ``i0:i1`` of :math:`C(v, u) = [1 / (v_i - u_j)]`: (tm, n), or (..., tm, n) for batched nodes."""
    return 1.0 / (bk.expand_dims(v[..., i0:i1], -1) - bk.expand_dims(u, -2))


class NodePowers:
    r"""Accurate, overflow-free powers of Vandermonde nodes, O(m) state.

    The row-normalised power matrix is :math:`P_{ij} = c_i^{k_{ij}}` with :math:`c_i = v_i`,
    :math:`k_{ij} = j` where :math:`|v_i| \le 1` and :math:`c_i = 1/v_i`,
    :math:`k_{ij} = n - 1 - j` where :math:`|v_i| > 1`; so :math:`V(v) = \operatorname{diag}(\mu) P`
    with :math:`\mu_i = 1` or :math:`v_i^{n-1}`.

    Parameters
    ----------
    bk : Backend
    v : array, shape (..., m)
        The nodes, already cast to the wide dtype (float64 or complex128).

    Examples
    --------
    >>> import numpy as np
    >>> from ldr.backends import get_backend
    >>> from ldr.node_kernels import NodePowers
    >>> v = np.array([0.5, -0.9, 2.0, 0.0])
    >>> P = NodePowers(get_backend(v), v).tile(0, 4, 5, np.float64)
    >>> V = np.vander(v, 5, increasing=True)
    >>> bool(np.allclose(P[[0, 1, 3]], V[[0, 1, 3]]) and np.allclose(P[2], V[2] / 2.0**4))
    True
    """

    def __init__(self, bk, v):
        self.bk = bk
        self.complex = bk.dtype_kind(v.dtype) == "c"
        self.big = abs(v) > 1
        # Safe placeholders keep both branches of every `where` finite (NaN-free gradients).
        c = bk.where(self.big, 1.0 / bk.where(self.big, v, 1.0), v)
        self.zero = c == 0
        c = bk.where(self.zero, 1.0, c)
        if self.complex:
            self.logc, self.negative = bk.log(c), None
        else:
            self.logc, self.negative = bk.log(abs(c)), c < 0
        self.v = v

    def power(self, k):
        """:math:`c^k` for a wide real array of integer exponents k (broadcasting against c[..., None])."""
        bk = self.bk
        logc = bk.expand_dims(self.logc, -1)
        out = bk.exp(logc * k)
        if self.negative is not None:
            odd = (k % 2) == 1
            out = bk.where(bk.expand_dims(self.negative, -1) & odd, -out, out)
        return bk.where(bk.expand_dims(self.zero, -1) & (k > 0), 0.0 * out, out)

    def scalar_power(self, k):
        """:math:`c_i^k` for one integer k, shape (..., m)."""
        bk = self.bk
        return self.power(bk.asarray(np.array([float(k)]), like=self.logc, dtype=bk.real_dtype(self.logc.dtype)))[..., 0]

    def tile(self, i0, i1, n, dtype):
        """Rows ``i0:i1`` of P (tm, n) or (..., tm, n) in ``dtype``: two small exp tables and one product."""
        bk = self.bk
        block = max(1, math.isqrt(max(n - 1, 0)) + 1)
        blocks = -(-n // block)
        real = bk.real_dtype(self.logc.dtype)
        sub = _Rows(self, i0, i1)
        outer = bk.cast(sub.power(bk.asarray(np.arange(blocks, dtype=float) * block, like=self.logc, dtype=real)), dtype)
        inner = bk.cast(sub.power(bk.asarray(np.arange(block, dtype=float), like=self.logc, dtype=real)), dtype)
        rows = bk.expand_dims(outer, -1) * bk.expand_dims(inner, -2)  # (..., tm, blocks, block)
        rows = rows.reshape(rows.shape[:-2] + (blocks * block,))[..., :n]
        return bk.where(bk.expand_dims(sub.big, -1), bk.flip(rows), rows)


class _Rows(NodePowers):
    """A row range of a :class:`NodePowers` (shares its arrays)."""

    def __init__(self, parent, i0, i1):  # noqa: D107 - a view
        self.bk = parent.bk
        self.complex = parent.complex
        self.big = parent.big[..., i0:i1]
        self.zero = parent.zero[..., i0:i1]
        self.logc = parent.logc[..., i0:i1]
        self.negative = None if parent.negative is None else parent.negative[..., i0:i1]
        self.v = parent.v[..., i0:i1]


def vandermonde_scales(powers, n, f, G=None, krylov_G=None):
    r"""Row scales :math:`s_l` (..., r, m) with :math:`W = \sum_l \operatorname{diag}(s_l) P C_f(J h_l)`.

    From the Sylvester generator G (..., m, r): :math:`s = g / (v^n - f)` where :math:`|v| \le 1`
    and :math:`g / (v - f v^{1-n})` where :math:`|v| > 1`. From the Krylov form
    :math:`\tilde g = g / (v^n - f)`: :math:`\tilde g` and :math:`\tilde g\, v^{n-1}`. All in the
    wide dtype of ``powers``; no intermediate overflows unless the result does.
    """
    bk = powers.bk
    big = powers.big
    c_n1 = powers.scalar_power(n - 1)
    if krylov_G is not None:
        factor = 1.0 / bk.where(big, c_n1, 1.0)
        return bk.swapaxes(krylov_G, -1, -2) * bk.expand_dims(factor, -2)
    denominator = bk.where(big, powers.v - f * c_n1, powers.scalar_power(n) - f)
    return bk.swapaxes(G, -1, -2) / bk.expand_dims(denominator, -2)


def wide_dtype(bk, complex_data):
    """float64, or complex128 for complex data, as the backend's dtype object."""
    return bk.asarray(np.zeros(1, dtype=complex if complex_data else float)).dtype
