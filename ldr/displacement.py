r"""Displacement of a dense matrix, its rank, and compression to generators.

``compress`` takes the SVD of :math:`D = A W - W B`: keeping r terms gives generators
:math:`G = U_r \Sigma_r`, :math:`H = V_r^T`; the reconstruction is exact when
:math:`\operatorname{rank} D \le r`, and otherwise within :math:`\lVert\nabla^{-1}\rVert\,
(\sum_{k>r} \sigma_k^2)^{1/2}` (see :doc:`/theory/displacement`).
"""

from __future__ import annotations

from .backends import get_backend
from .ldrmatrix import LDRMatrix
from .operators import DisplacementOperator
from .validation import as_numeric_array, as_positive_int, as_tolerance, format_shape

__all__ = ["displacement", "displacement_rank", "compress"]


def _dense_operand(A, B, W):
    for name, op in (("A", A), ("B", B)):
        if not isinstance(op, DisplacementOperator):
            raise TypeError(f"`{name}` must be a displacement operator; got {type(op).__name__}")
    if isinstance(W, LDRMatrix):
        W = W.dense()
    bk = get_backend(W, names=["W"])
    W = as_numeric_array(W, "W", bk, min_ndim=2)
    if tuple(W.shape[-2:]) != (A.size, B.size):
        raise ValueError(
            f"`W` must have shape (..., m, n) = (..., {A.size}, {B.size}) to match A and B; "
            f"got {format_shape(W.shape)}"
        )
    return W, bk


def displacement(A, B, W):
    r"""The Sylvester displacement :math:`\nabla_{A,B}(W) = A W - W B`.

    Parameters
    ----------
    A : DisplacementOperator, size m
    B : DisplacementOperator, size n
    W : array, shape (..., m, n), or LDRMatrix

    Returns
    -------
    array, shape (..., m, n)
        Computed in :math:`O(mn)` with the operators' own products.

    Examples
    --------
    >>> import numpy as np, scipy.linalg, ldr
    >>> T = scipy.linalg.toeplitz([1.0, 2.0, 3.0], [1.0, 5.0, 6.0])
    >>> int(np.linalg.matrix_rank(ldr.displacement(ldr.Shift(3, 1.0), ldr.Shift(3, -1.0), T)))
    2
    """
    W, bk = _dense_operand(A, B, W)
    return A.left(W) - B.right(W)


def _default_tol(A, B, W, D, bk):
    # Rounding in A W and W B is ~eps * (|A W| + |W B|); the displacement of an exactly
    # structured matrix carries that much noise in its "zero" singular values.
    eps = bk.eps(bk.compute_dtype(W.dtype))
    scale = bk.svd(A.left(W))[1][..., :1] + bk.svd(B.right(W))[1][..., :1]
    return max(A.size, B.size) * eps * scale


def displacement_rank(A, B, W, tol=None):
    r"""Numerical rank of :math:`A W - W B`.

    Parameters
    ----------
    A, B : DisplacementOperator
    W : array, shape (m, n), or LDRMatrix
    tol : float, optional
        Singular values ``<= tol`` count as zero (finite, ``>= 0``; NaN is refused). Default
        ``max(m, n) * eps * (||A W||_2 + ||W B||_2)``.

    Returns
    -------
    int

    Examples
    --------
    >>> import numpy as np, scipy.linalg, ldr
    >>> C = scipy.linalg.circulant(np.arange(1.0, 6.0))
    >>> ldr.displacement_rank(ldr.Shift(5, 1.0), ldr.Shift(5, -1.0), C)
    1
    """
    tol = as_tolerance(tol)
    W, bk = _dense_operand(A, B, W)
    if W.ndim != 2:
        raise ValueError(f"`W` must be a single matrix (m, n); got {format_shape(W.shape)}")
    D = A.left(W) - B.right(W)
    s = bk.svd(D)[1]
    threshold = float(_default_tol(A, B, W, D, bk)[0]) if tol is None else float(tol)
    return int((bk.to_numpy(s) > threshold).sum())


def compress(W, A, B, rank=None, tol=None):
    r"""Generators of (an approximation of) ``W`` for the operators ``(A, B)``, by SVD of the displacement.

    Parameters
    ----------
    W : array, shape (m, n)
        Dense matrix.
    A, B : DisplacementOperator
        Nonsingular pair of sizes m and n.
    rank : int, optional
        Number of singular triplets kept (a Python or NumPy integer >= 1); default the
        numerical rank (see :func:`displacement_rank`).
    tol : float, optional
        Threshold for the numerical rank when ``rank`` is not given (finite, ``>= 0``).

    Returns
    -------
    LDRMatrix
        With ``G = U_r Σ_r`` (m×r) and ``H = V_r^*`` (r×n; the conjugate transpose, ``V_r^T``
        for real input), from the SVD ``D = U Σ V^*`` of the displacement. Exact when
        ``displacement_rank(A, B, W) <= rank``.

    Examples
    --------
    >>> import numpy as np, scipy.linalg, ldr
    >>> T = scipy.linalg.toeplitz(np.arange(1.0, 7.0))
    >>> W = ldr.compress(T, ldr.Shift(6, 1.0), ldr.Shift(6, -1.0))
    >>> W.rank, bool(np.allclose(W.dense(), T))
    (2, True)
    """
    rank = None if rank is None else as_positive_int(rank, "rank")
    tol = as_tolerance(tol)
    W, bk = _dense_operand(A, B, W)
    if W.ndim != 2:
        raise ValueError(f"`W` must be a single matrix (m, n); got {format_shape(W.shape)}")
    W = bk.cast(W, bk.compute_dtype(W.dtype))
    D = A.left(W) - B.right(W)
    U, s, Vh = bk.svd(D)
    if rank is None:
        threshold = float(_default_tol(A, B, W, D, bk)[0]) if tol is None else float(tol)
        rank = max(1, int((bk.to_numpy(s) > threshold).sum()))
    rank = min(rank, s.shape[-1])
    G = U[..., :, :rank] * s[..., None, :rank]
    H = Vh[..., :rank, :]
    return LDRMatrix(A, B, G, H)
