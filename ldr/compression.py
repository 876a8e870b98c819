r"""Generator compression: the shortest generators of a given displacement :math:`GH`.

Sums and products of LDR matrices produce generators with more columns than the displacement
needs (:doc:`/theory/solvers`). :func:`compress_generators` recovers the numerical rank of
:math:`GH` in :math:`O((m + n) r^2)` without ever forming the m×n product: orthogonal
factorisations of the two thin factors reduce it to an r×r core whose SVD gives the truncation.
"""

from __future__ import annotations

import numbers

import numpy as np

from .backends import get_backend
from .validation import check_generators, generator_sizes

__all__ = ["compress_generators"]


def _check_rank_options(rank, tol):
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, numbers.Integral) or rank < 1):
        raise ValueError(f"`rank` must be a positive integer or None; got {rank!r}")
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not 0 <= tol < 1):
        raise ValueError(f"`tol` must be a real number in [0, 1) or None; got {tol!r}")


def compress_generators(G, H, rank=None, tol=None):
    r"""Shortest generators of :math:`GH`: ``(G', H')`` with :math:`G'H' \approx GH` and fewer columns.

    Parameters
    ----------
    G : array, shape (..., m, r)
    H : array, shape (..., r, n)
        Leading axes are batch axes and broadcast.
    rank : int, optional
        Keep at most this many terms.
    tol : float, optional
        Relative threshold: singular values of :math:`GH` at most ``tol`` times the largest one
        (per batch entry) are dropped. Default ``max(m, n) * eps`` of the dtype, which keeps
        the exact rank of a sum whose terms are linearly dependent only up to rounding.

    Returns
    -------
    G_out : array, shape (..., m, k)
    H_out : array, shape (..., k, n)
        With :math:`G_{out} = U \Sigma` (orthogonal columns, the singular values folded in) and
        :math:`H_{out} = V^T` (orthonormal rows). ``k`` is the largest rank kept over the batch
        (at least 1: an all-zero displacement keeps one zero term).

    Notes
    -----
    With thin SVDs :math:`G = U_1 S_1 V_1^T` and :math:`H^T = U_2 S_2 V_2^T` (each a
    rank-revealing orthogonal factorisation of a thin matrix, the role a QR plays in the
    textbook version), :math:`GH = U_1 K U_2^T` with the core :math:`K = S_1 V_1^T V_2 S_2`
    of size at most r×r. Its SVD :math:`K = P \Sigma Q^T` gives
    :math:`GH = (U_1 P)\,\Sigma\,(U_2 Q)^T`, the SVD of :math:`GH` itself, so truncating
    :math:`\Sigma` is optimal in the 2-norm and the Frobenius norm (Eckart–Young). Cost
    :math:`O((m + n) r^2 + r^3)`. The transposes are plain transposes, also for complex
    generators. See :doc:`/theory/solvers`.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> rng = np.random.default_rng(0)
    >>> G, H = rng.standard_normal((7, 2)), rng.standard_normal((2, 5))
    >>> G2, H2 = ldr.compress_generators(np.hstack([G, 3 * G]), np.vstack([H, H]))
    >>> G2.shape, H2.shape
    ((7, 2), (2, 5))
    >>> bool(np.allclose(G2 @ H2, 4 * G @ H))
    True
    """
    m, n = generator_sizes(G, H)
    bk = get_backend(G, H, names=["G", "H"])
    G, H = check_generators(G, H, m, n, bk)
    bk.check_dtypes({"G": G.dtype, "H": H.dtype})
    _check_rank_options(rank, tol)
    return _compress(G, H, bk, rank, tol)


def _compress(G, H, bk, rank=None, tol=None):
    """:func:`compress_generators` on validated generators (the arithmetic's entry point)."""
    compute = bk.compute_dtype(bk.promote(G.dtype, H.dtype))
    G, H = bk.cast(G, compute), bk.cast(H, compute)
    batch = tuple(np.broadcast_shapes(tuple(G.shape[:-2]), tuple(H.shape[:-2])))
    G = bk.broadcast_to(G, batch + tuple(G.shape[-2:]))
    H = bk.broadcast_to(H, batch + tuple(H.shape[-2:]))
    m, n = G.shape[-2], H.shape[-1]
    U1, s1, V1h = bk.svd(G)
    U2, s2, V2h = bk.svd(bk.swapaxes(H, -1, -2))
    # K = S1 V1^T V2 S2 (plain transposes: GH = U1 K U2^T holds for complex data too).
    core = bk.matmul(bk.expand_dims(s1, -1) * V1h, bk.swapaxes(V2h, -1, -2) * bk.expand_dims(s2, -2))
    P, s, Qh = bk.svd(core)
    if tol is None:
        tol = max(m, n) * bk.eps(compute)
    sigma = bk.to_numpy(s).reshape(-1, s.shape[-1])  # descending per batch entry
    keep = max(1, int((sigma > tol * sigma[:, :1]).sum(axis=-1).max(initial=0)))
    if rank is not None:
        keep = min(keep, int(rank))
    G_out = bk.matmul(U1, P[..., :, :keep]) * bk.expand_dims(s[..., :keep], -2)
    H_out = bk.matmul(Qh[..., :keep, :], bk.swapaxes(U2, -1, -2))
    return G_out, H_out
