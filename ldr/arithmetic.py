r"""Arithmetic closed in the LDR classes: sums, products, scalar multiples, conjugates.

Every operation works on the generators only and re-compresses them with
:func:`~ldr.compress_generators`; the dense matrices are never formed. The operators
``W1 + W2``, ``W1 - W2``, ``W1 @ W2``, ``c * W``, ``W / c``, ``-W`` and ``W.conj()`` of
:class:`~ldr.LDRMatrix` call the functions here. Derivations: :doc:`/theory/solvers`.
"""

from __future__ import annotations

import numbers

import numpy as np

from .backends import get_backend
from .compression import _check_rank_options, _compress
from .ldrmatrix import LDRMatrix, _structure_for, _Transposed
from .operators import Diagonal, Identity, Shift, Zero, check_nonsingular

__all__ = ["add", "matmul"]


def _same_operator(X, Y):
    """Whether two displacement operators are the same matrix (nodes compared by value)."""
    if X is Y:
        return True
    if isinstance(X, Shift) or isinstance(Y, Shift):
        return X == Y
    if isinstance(X, Diagonal) and isinstance(Y, Diagonal):
        if tuple(X.v.shape) != tuple(Y.v.shape):
            return False
        bk = get_backend(X.v, Y.v, names=["nodes of W1", "nodes of W2"])
        return bool(np.array_equal(bk.to_numpy(X.v), bk.to_numpy(Y.v)))
    return type(X) is type(Y) and X.size == Y.size and type(X) in (Identity, Zero)


def _build(A, B, G, H):
    """The structure class of ``(A, B)`` from generators computed here (operators already checked)."""
    bk = get_backend(G, H)
    # Frozen like the generators of a validated matrix (NumPy): its caches can never go stale.
    G, H = bk.freeze(G), bk.freeze(H)
    return _structure_for(A, B)._trusted(A, B, G, H)


def _common_backend(W1, W2, what):
    bk = get_backend(W1.G, W2.G, names=[f"{what}'s left generators", f"{what}'s right generators"])
    bk.check_dtypes({"W1.G": W1.G.dtype, "W2.G": W2.G.dtype})
    if str(bk.device(W1.G)) != str(bk.device(W2.G)):
        raise ValueError(f"{what}: the two matrices live on different devices ({bk.device(W1.G)} and {bk.device(W2.G)})")
    return bk


def _stack_generators(bk, G_parts, H_parts):
    """``[G_1, G_2]`` and ``[H_1; H_2]`` with batch axes broadcast and one compute dtype."""
    parts = G_parts + H_parts
    batch = tuple(np.broadcast_shapes(*[tuple(X.shape[:-2]) for X in parts]))
    compute = bk.compute_dtype(bk.promote(*[X.dtype for X in parts]))
    parts = [bk.cast(bk.broadcast_to(X, batch + tuple(X.shape[-2:])), compute) for X in parts]
    return bk.concatenate(parts[: len(G_parts)], axis=-1), bk.concatenate(parts[len(G_parts) :], axis=-2)


def add(W1, W2, rank=None, tol=None):
    r"""The sum :math:`W_1 + W_2` of two LDR matrices with the same operators, re-compressed.

    Parameters
    ----------
    W1, W2 : LDRMatrix
        Same shape and the same operator pair (A, B); batch shapes broadcast.
    rank, tol
        Passed to :func:`~ldr.compress_generators`.

    Returns
    -------
    LDRMatrix
        Same class and operators, displacement rank at most :math:`r_1 + r_2`.

    Notes
    -----
    :math:`A(W_1 + W_2) - (W_1 + W_2)B = [G_1, G_2][H_1; H_2]`, compressed in
    :math:`O((m+n)(r_1+r_2)^2)`. ``W1 + W2`` and ``W1 - W2`` call this function.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> rng = np.random.default_rng(0)
    >>> W1 = ldr.toeplitz_like(rng.standard_normal((6, 2)), rng.standard_normal((2, 6)))
    >>> W2 = ldr.toeplitz_like(rng.standard_normal((6, 1)), rng.standard_normal((1, 6)))
    >>> S = W1 + W2
    >>> S.rank, bool(np.allclose(S.dense(), W1.dense() + W2.dense()))
    (3, True)
    """
    _check_ldr(W1, "W1")
    _check_ldr(W2, "W2")
    _check_rank_options(rank, tol)
    if isinstance(W1, _Transposed) and isinstance(W2, _Transposed):
        return add(W1.T, W2.T, rank, tol).T
    if W1.shape != W2.shape:
        raise ValueError(f"add: shapes differ, W1 is {W1.shape} and W2 is {W2.shape}")
    if not (_same_operator(W1.A, W2.A) and _same_operator(W1.B, W2.B)):
        raise ValueError(
            "add: W1 and W2 must share the operator pair (A, B); got "
            f"({W1.A!r}, {W1.B!r}) and ({W2.A!r}, {W2.B!r}) (re-express one with ldr.compress first)"
        )
    bk = _common_backend(W1, W2, "add")
    G, H = _stack_generators(bk, [W1.G, W2.G], [W1.H, W2.H])
    return _build(W1.A, W1.B, *_compress(G, H, bk, rank, tol))


def matmul(W1, W2, rank=None, tol=None):
    r"""The product :math:`W_1 W_2` of LDR matrices for operators (A, B) and (B, C), re-compressed.

    Parameters
    ----------
    W1 : LDRMatrix, shape (m, n), operators (A, B)
    W2 : LDRMatrix, shape (n, p), operators (B, C)
        The inner operators must be equal (a low-rank factor on either side is exempt).
    rank, tol
        Passed to :func:`~ldr.compress_generators`.

    Returns
    -------
    LDRMatrix
        For the pair (A, C), displacement rank at most :math:`r_1 + r_2`; a low-rank factor
        makes the product low-rank, of rank at most that factor's.

    Raises
    ------
    SingularDisplacementError
        When (A, C) share an eigenvalue (e.g. :math:`(Z_1, Z_{-1})` times :math:`(Z_{-1}, Z_1)`): the product is
        then not determined by a displacement for that pair.

    Notes
    -----
    :math:`A W_1 W_2 - W_1 W_2 C = (AW_1 - W_1B)W_2 + W_1(BW_2 - W_2C) = G_1 (H_1 W_2) + (W_1 G_2) H_2`,
    so :math:`G = [G_1, W_1 G_2]`, :math:`H = [H_1 W_2; H_2]`: :math:`r_1 + r_2` fast products
    and one compression. ``W1 @ W2`` calls this function.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> rng = np.random.default_rng(1)
    >>> W1 = ldr.toeplitz_like(rng.standard_normal((5, 2)), rng.standard_normal((2, 5)), e=1.0, f=-1.0)
    >>> W2 = ldr.toeplitz_like(rng.standard_normal((5, 2)), rng.standard_normal((2, 5)), e=-1.0, f=2.0)
    >>> P = W1 @ W2
    >>> (P.A.f, P.B.f), P.rank, bool(np.allclose(P.dense(), W1.dense() @ W2.dense()))
    ((1.0, 2.0), 4, True)
    """
    _check_ldr(W1, "W1")
    _check_ldr(W2, "W2")
    _check_rank_options(rank, tol)
    if isinstance(W1, _Transposed) and isinstance(W2, _Transposed):
        return matmul(W2.T, W1.T, rank, tol).T
    if W1.shape[1] != W2.shape[0]:
        raise ValueError(f"matmul: inner sizes differ, W1 is {W1.shape} and W2 is {W2.shape}")
    bk = _common_backend(W1, W2, "matmul")
    m, p = W1.shape[0], W2.shape[1]
    if _is_low_rank(W1):  # W1 W2 = G1 (H1 W2)
        return _build(Identity(m), Zero(p), *_compress(W1.G, W1.H @ W2, bk, rank, tol))
    if _is_low_rank(W2):  # W1 W2 = (W1 G2) H2
        return _build(Identity(m), Zero(p), *_compress(W1 @ W2.G, W2.H, bk, rank, tol))
    if not _same_operator(W1.B, W2.A):
        raise ValueError(
            "matmul: W1's right operator must equal W2's left operator; got "
            f"B = {W1.B!r} and A = {W2.A!r}"
        )
    A, C = W1.A, W2.B
    check_nonsingular(A, C)
    _structure_for(A, C)  # an unsupported pair raises TypeError before any work
    G, H = _stack_generators(bk, [W1.G, W1 @ W2.G], [W1.H @ W2, W2.H])
    return _build(A, C, *_compress(G, H, bk, rank, tol))


def _is_low_rank(W):
    return isinstance(W.A, Identity) and isinstance(W.B, Zero)


def _check_ldr(W, name):
    if not isinstance(W, LDRMatrix):
        raise TypeError(f"`{name}` must be an LDRMatrix; got {type(W).__name__}")


def _is_scalar(c, bk):
    if isinstance(c, numbers.Number) and not isinstance(c, bool):
        return True
    return bk.is_array(c) and c.ndim == 0 and bk.dtype_kind(c.dtype) in "iufc"


def scale(W, c):
    r"""``c * W`` for a scalar ``c``: generators ``(c G, H)``, same operators and rank.

    Used by ``c * W``, ``W * c``, ``W / c`` and ``-W``; returns ``NotImplemented`` for a
    non-scalar ``c`` so that Python raises its usual TypeError.
    """
    if not _is_scalar(c, W._bk):
        return NotImplemented
    if isinstance(W, _Transposed):
        return scale(W.T, c).T
    if not isinstance(c, numbers.Number):
        c = W._bk.cast(c, W._bk.promote(c.dtype, W.G.dtype))
    return _build(W.A, W.B, W.G * c, W.H)


def divide(W, c):
    """``W / c`` for a nonzero scalar ``c`` (``NotImplemented`` for anything else)."""
    if not _is_scalar(c, W._bk):
        return NotImplemented
    if bool(c == 0):
        raise ZeroDivisionError("W / c: the scalar `c` is zero")
    return scale(W, 1 / c)


def conj(W):
    r"""The entrywise conjugate :math:`\bar W`: :math:`\bar A \bar W - \bar W \bar B = \bar G \bar H`.

    Real matrices (real generators, nodes and corners) are returned as they are.
    """
    if isinstance(W, _Transposed):
        return conj(W.T).T
    bk = W._bk
    complex_arrays = any(bk.dtype_kind(a.dtype) == "c" for a in W._arrays())
    if not complex_arrays and not any(isinstance(s, complex) for s in W._scalars()):
        return W
    return _build(_conj_operator(W.A), _conj_operator(W.B), bk.conj(W.G), bk.conj(W.H))


def _conj_operator(X):
    if isinstance(X, Shift):
        f = X.f.conjugate() if isinstance(X.f, complex) else X.f
        return Shift(X.size, f, X.transpose)
    if isinstance(X, Diagonal):
        out = object.__new__(Diagonal)
        bk = get_backend(X.v)
        out.v, out.size, out.name = bk.freeze(bk.conj(X.v)), X.size, X.name
        return out
    return X
