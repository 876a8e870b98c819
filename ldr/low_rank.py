r"""Low-rank matrices: the LDR class of the operator pair :math:`(I_m, 0_n)`, where :math:`W = GH`."""

from __future__ import annotations

from .ldrmatrix import LDRMatrix
from .operators import Identity, Zero
from .validation import generator_sizes

__all__ = ["LowRank", "low_rank"]


class LowRank(LDRMatrix):
    r"""``W = G H`` (m×n, rank ≤ r): the displacement :math:`I W - W 0 = G H`.

    Notes
    -----
    Products cost :math:`(m + n) r` per vector: ``W x = G (H x)``, ``W^T x = H^T (G^T x)``.
    See :class:`LDRMatrix` for the shared interface.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> G, H = np.ones((3, 1)), np.arange(4.0)[None, :]
    >>> W = ldr.low_rank(G, H)
    >>> bool(np.allclose(W @ np.ones(4), G @ H @ np.ones(4)))
    True
    """

    def _matvec(self, x):
        bk = self._bk
        G, H = self._cast(self.G, x.dtype), self._cast(self.H, x.dtype)
        return bk.einsum("...mr,...r->...m", G, bk.einsum("...rn,...n->...r", H, x))

    def _rmatvec(self, x):
        bk = self._bk
        G, H = self._cast(self.G, x.dtype), self._cast(self.H, x.dtype)
        return bk.einsum("...rn,...r->...n", H, bk.einsum("...mr,...m->...r", G, x))

    def _dense(self, dtype):
        return self._bk.matmul(self._cast(self.G, dtype), self._cast(self.H, dtype))


LDRMatrix._pairs.append((lambda A, B: isinstance(A, Identity) and isinstance(B, Zero), LowRank))


def low_rank(G, H):
    r"""The low-rank matrix :math:`W = G H` as an LDR matrix with operators :math:`(I_m, 0_n)`.

    Parameters
    ----------
    G : array, shape (..., m, r)
        Left generator: the m×r factor of the matrix :math:`W = GH` (its displacement for :math:`(I, 0)`). Leading axes are batch
        axes and broadcast with those of ``H``.
    H : array, shape (..., r, n)
        Right generator: the r×n factor (the HyDRA paper writes its transpose, n×r). r is the
        displacement rank.

    Returns
    -------
    LowRank
        Products cost :math:`O((m+n) r)` per vector.

    See Also
    --------
    compress : Generators of a dense matrix, by a truncated SVD of its displacement.
    hydra.LoRALinear : The LoRA adapter, a low-rank update of a frozen layer.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> W = ldr.low_rank(np.ones((2, 1)), np.ones((1, 3)))
    >>> W.dense()
    array([[1., 1., 1.],
           [1., 1., 1.]])
    """
    m, n = generator_sizes(G, H)
    return LowRank(Identity(m), Zero(n), G, H)
