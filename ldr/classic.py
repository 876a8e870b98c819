r"""Classic structured matrices with their exact low-rank generators.

Each constructor returns an LDR matrix whose ``dense()`` equals the textbook matrix
(``scipy.linalg.toeplitz``, ``hankel``, ``circulant``, the Vandermonde matrix with increasing
powers, the Cauchy matrix ``1 / (v_i - u_j)``); the generators have rank 1 or 2.
"""

from __future__ import annotations

import numpy as np

from .backends import get_backend
from .cauchy_like import CauchyLike
from .operators import Diagonal, Shift, check_nonsingular
from .toeplitz_like import HankelLike, ToeplitzLike, default_shift_pair
from .validation import as_numeric_array, check_derived_finite
from .vandermonde_like import VandermondeLike

__all__ = ["toeplitz", "hankel", "circulant", "vandermonde", "cauchy"]


def _vector(x, name, bk, like=None):
    x = as_numeric_array(x, name, bk, like=like)
    if x.ndim != 1 or x.shape[0] < 1:
        raise ValueError(f"`{name}` must be a non-empty 1-D array; got shape {tuple(x.shape)}")
    return x


def _unit(bk, size, index, like):
    e = np.zeros(size)
    e[index] = 1.0
    return bk.asarray(e, dtype=like.dtype if bk.dtype_kind(like.dtype) in "fc" else None, like=like)


def _toeplitz_generators(c, r, e, f, bk):
    """Rank-2 generators of T[i, j] = t(i - j) for (Z_e, Z_f): D = e_0 a^T + b e_{n-1}^T."""
    m, n = c.shape[-1], r.shape[-1]
    # t(k) = c[k] for k >= 0 and r[-k] for k < 0, stored at position k + n - 1.
    t = bk.concatenate([bk.flip(r[1:]), c])
    j = np.arange(n)
    a_index = np.where(j < n - 1, -1 - j, 0) + n - 1  # t(-1-j), or t(0) in the corner
    a = e * bk.take(t, m - 1 - j + n - 1) - bk.take(t, a_index) * bk.asarray(
        np.where(j < n - 1, 1.0, f), like=t, dtype=None if isinstance(f, complex) else t.dtype
    )
    i = np.arange(m)
    b = bk.take(t, i - n + n - 1) - f * bk.take(t, i + n - 1)
    b = b * bk.asarray((i > 0).astype(float), like=t, dtype=b.dtype)  # b_0 = 0: a carries entry (0, n-1)
    G = bk.concatenate([bk.expand_dims(_unit(bk, m, 0, b), -1), bk.expand_dims(b, -1)], axis=-1)
    H = bk.concatenate([bk.expand_dims(a, 0), bk.expand_dims(_unit(bk, n, n - 1, a), 0)], axis=0)
    return G, H


def toeplitz(c, r=None, e=None, f=None):
    r"""The Toeplitz matrix ``T[i, j] = c[i - j]`` (i ≥ j), ``r[j - i]`` (i < j), as a rank-2 Toeplitz-like matrix.

    Parameters
    ----------
    c : array, shape (m,)
        First column.
    r : array, shape (n,), optional
        First row; ``r[0]`` is ignored (as in :func:`scipy.linalg.toeplitz`). Default ``conj(c)``.
    e, f : float, optional
        Operator pair, default :func:`~ldr.default_shift_pair`.

    Returns
    -------
    ToeplitzLike
        With generators ``G = [e_0, b]``, ``H = [a^T; e_{n-1}^T]`` (see :doc:`/theory/classes`).
        It also keeps the entries, so ``W @ x`` and ``W.T @ x`` are one convolution each:
        2 FFTs of length ``next_fast_len(m + n - 1)`` instead of the 2r + 2 = 6 of a rank-2
        Toeplitz-like product.

    See Also
    --------
    scipy.linalg.toeplitz : The dense matrix.
    scipy.linalg.matmul_toeplitz : The product with a dense right-hand side by FFT.
    toeplitz_like : The class it belongs to.

    Examples
    --------
    >>> import numpy as np, scipy.linalg, ldr
    >>> c, r = np.array([1.0, 2.0, 3.0]), np.array([1.0, 4.0, 5.0, 6.0])
    >>> bool(np.allclose(ldr.toeplitz(c, r).dense(), scipy.linalg.toeplitz(c, r)))
    True
    """
    bk = get_backend(c, r, names=["c", "r"])
    c = _vector(c, "c", bk)
    r = bk.conj(c) if r is None else _vector(r, "r", bk, like=c)
    m, n = c.shape[0], r.shape[0]
    de, df = default_shift_pair(m, n)
    A, B = Shift(m, de if e is None else e), Shift(n, df if f is None else f)
    G, H = _toeplitz_generators(c, r, A.f, B.f, bk)
    check_derived_finite(bk, "`c` and `r` are", "G, H = e- and f-weighted differences of their entries", G=G, H=H)
    # Also keep the entries t(k), k = 1-n .. m-1: products are then one convolution (2 FFTs).
    return ToeplitzLike(A, B, G, H)._set_entries(bk.concatenate([bk.flip(r[1:]), c]))


def hankel(c, r=None, e=1.0, f=0.0):
    r"""The Hankel matrix ``Hk[i, j] = s[i + j]`` (first column ``c``, last row ``r``) as a Hankel-like matrix.

    Parameters
    ----------
    c : array, shape (m,)
        First column.
    r : array, shape (n,), optional
        Last row; ``r[0]`` is ignored (as in :func:`scipy.linalg.hankel`). Default zeros.
    e, f : float
        Operator pair :math:`(Z_e, Z_f^T)`, default ``(1, 0)``.

    Returns
    -------
    HankelLike
        Rank-2 generators: ``Hk J`` is Toeplitz, with the generators of :func:`toeplitz`.

    See Also
    --------
    scipy.linalg.hankel : The dense matrix.
    hankel_like : The class it belongs to.

    Examples
    --------
    >>> import numpy as np, scipy.linalg, ldr
    >>> c, r = np.array([1.0, 2.0, 3.0]), np.array([3.0, 4.0])
    >>> bool(np.allclose(ldr.hankel(c, r).dense(), scipy.linalg.hankel(c, r)))
    True
    """
    bk = get_backend(c, r, names=["c", "r"])
    c = _vector(c, "c", bk)
    r = bk.zeros(c.shape, c.dtype, like=c) if r is None else _vector(r, "r", bk, like=c)
    m, n = c.shape[0], r.shape[0]
    s = bk.concatenate([c, r[1:]])  # Hk[i, j] = s[i + j]
    # Hk J is Toeplitz with t(k) = s[k + n - 1]: column s[n-1 : n-1+m], row s[n-1], s[n-2], ..., s[0].
    column = bk.take(s, np.arange(n - 1, n - 1 + m))
    row = bk.flip(s[:n])
    A, B = Shift(m, e), Shift(n, f, transpose=True)
    G, H = _toeplitz_generators(column, row, A.f, B.f, bk)
    check_derived_finite(bk, "`c` and `r` are", "G, H = e- and f-weighted differences of their entries", G=G, H=H)
    return HankelLike(A, B, G, bk.flip(H))


def circulant(c, f=-1.0):
    r"""The circulant matrix with first column ``c`` (``scipy.linalg.circulant(c)``), rank 1 for :math:`(Z_1, Z_f)`.

    Parameters
    ----------
    c : array, shape (n,)
    f : float, default -1.0
        Right operator corner, f ≠ 1 (the pair :math:`(Z_1, Z_1)` is singular: circulants are
        its kernel; the HyDRA paper's :math:`(Z_1, I)` is singular too).

    Returns
    -------
    ToeplitzLike
        ``G = (1 - f) c``, ``H = e_{n-1}^T``.

    See Also
    --------
    scipy.linalg.circulant : The dense matrix.
    toeplitz_like : The class it belongs to.

    Examples
    --------
    >>> import numpy as np, scipy.linalg, ldr
    >>> c = np.array([1.0, 2.0, 3.0, 4.0])
    >>> bool(np.allclose(ldr.circulant(c).dense(), scipy.linalg.circulant(c)))
    True
    """
    bk = get_backend(c, names=["c"])
    c = _vector(c, "c", bk)
    n = c.shape[0]
    B = Shift(n, f)
    G = bk.expand_dims((1 - B.f) * c, -1)
    check_derived_finite(bk, "`c` is", f"G = (1 - f) c with f = {B.f}", G=G)
    return ToeplitzLike(Shift(n, 1.0), B, G, bk.expand_dims(_unit(bk, n, n - 1, G), 0))


def vandermonde(v, n=None, f=0.0):
    r"""The Vandermonde matrix ``V[i, j] = v[i] ** j`` (m×n), rank 1 for :math:`(\operatorname{diag}(v), Z_f)`.

    Parameters
    ----------
    v : array, shape (m,)
        Nodes; :math:`v_i^n \ne f` (f = 0: no zero node).
    n : int, optional
        Number of columns, default m.
    f : float, default 0.0

    Returns
    -------
    VandermondeLike
        ``G = v^n - f``, ``H = e_{n-1}^T``, stored in Krylov form (row scales 1), so no entry
        is divided by :math:`v^n - f`: nodes well inside the unit circle work for every n.

    See Also
    --------
    numpy.vander : The dense matrix (with ``increasing=True``).
    vandermonde_like : The class it belongs to.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> v = np.array([0.5, -1.0, 2.0])
    >>> bool(np.allclose(ldr.vandermonde(v, 4).dense(), np.vander(v, 4, increasing=True)))
    True
    """
    bk = get_backend(v, names=["v"])
    v = _vector(v, "v", bk)
    if bk.dtype_kind(v.dtype) in "iu":
        v = bk.cast(v, bk.compute_dtype(v.dtype))  # integer nodes: v**n must not overflow int64
    n = v.shape[0] if n is None else n
    B = Shift(n, f)
    A = Diagonal(v)
    check_nonsingular(A, B)
    # The Krylov form with row scales 1: W = V(v) C_f(e_0) exactly, nothing divided by v**n - f
    # (which underflows for |v| < 1, f = 0: 0.5**200 is 0 in float32). G = v**n - f is formed with
    # accurate powers for the displacement equation only.
    ones = bk.asarray(np.ones((v.shape[0], 1)), dtype=v.dtype, like=v)
    return VandermondeLike._from_krylov(v, ones, bk.expand_dims(_unit(bk, B.size, B.size - 1, ones), 0), B)


def cauchy(v, u):
    r"""The Cauchy matrix ``C[i, j] = 1 / (v[i] - u[j])``, rank 1 for :math:`(\operatorname{diag}(v), \operatorname{diag}(u))`.

    Parameters
    ----------
    v : array, shape (m,)
    u : array, shape (n,)
        No ``v[i]`` may equal a ``u[j]``.

    Returns
    -------
    CauchyLike
        ``G = 1`` (m×1), ``H = 1`` (1×n).

    See Also
    --------
    cauchy_like : The class it belongs to.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> ldr.cauchy(np.array([1.0, 2.0]), np.array([0.0, 3.0])).dense()
    array([[ 1. , -0.5],
           [ 0.5, -1. ]])
    """
    bk = get_backend(v, u, names=["v", "u"])
    v = _vector(v, "v", bk)
    u = _vector(u, "u", bk, like=v)
    dtype = bk.promote(v.dtype, u.dtype)
    if bk.dtype_kind(dtype) in "iu":
        dtype = bk.compute_dtype(dtype)  # integer nodes: float64 generators (half stays half)
    ones = bk.asarray(np.ones(1), dtype=dtype, like=v)
    G = bk.broadcast_to(ones, (v.shape[0], 1))
    H = bk.broadcast_to(ones, (1, u.shape[0]))
    return CauchyLike(Diagonal(v), Diagonal(u, name="u"), G, H)
