r"""Direct solvers on the generators: :func:`solve`, :func:`inv`, :func:`slogdet`, :func:`det`.

Every square class is first brought to a Cauchy-like matrix :math:`C = L W R^{-1}` with
:math:`L, R` built from the DFT (and diagonal scalings), so that
:math:`\operatorname{diag}(v) C - C \operatorname{diag}(u) = (LG)(HR^{-1})`:

* Toeplitz-like :math:`(Z_e, Z_f)`: first re-expressed for :math:`(Z_1, Z_{-1})` (rank at most
  r + 2), then :math:`L = F`, :math:`R = F D_c` with :math:`c = e^{i\pi/n}`; nodes the n-th
  roots of 1 and of -1;
* Hankel-like: :math:`W = T J` with T Toeplitz-like;
* Vandermonde-like :math:`(\operatorname{diag}(v), Z_f)`: :math:`L = I`, :math:`R = F D_c`,
  :math:`c^n = f` (f first moved to the unit circle when :math:`|f| \ne 1`, rank at most r + 1);
* Cauchy-like: :math:`L = R = I`; low-rank with r ≥ n: the Cauchy-like form of :math:`GH`;
* :class:`~ldr.RowReversed` :math:`W = JM` (the inverses of Hankel-like and Vandermonde-like
  matrices): the form of M (of :math:`V` for :math:`M = V^T`, transposed) with
  :math:`L J` in place of L.

The Cauchy-like matrix is factored by Gaussian elimination with partial pivoting on its
generators (``ldr.gko``, blocked, :math:`O(r n^2 + b n^2)` with b = 32), and each solve costs :math:`O(n^2)` plus a few
FFTs. A plain Toeplitz (or Hankel) matrix takes the Levinson route instead: two Levinson
solves and the Gohberg–Semencul formula (``ldr._levinson``), every solve refined and checked,
with the elimination as the fallback. Derivations: :doc:`/theory/solvers`.
"""

from __future__ import annotations

import cmath
import math
import warnings

import numpy as np
from scipy.linalg import LinAlgWarning

from . import _levinson
from .cauchy_like import CauchyLike
from .gko import BATCH_MAX_N, BatchCauchyLU, factor_cauchy_like, factor_cauchy_like_batch
from .ldrmatrix import LDRMatrix, _structure_for, _Transposed
from .low_rank import LowRank
from .row_reversed import RowReversed
from .toeplitz_like import HankelLike, ToeplitzLike
from .validation import format_shape
from .vandermonde_like import VandermondeLike

__all__ = ["SingularMatrixError", "solve", "inv", "slogdet", "det"]


class SingularMatrixError(np.linalg.LinAlgError):
    """The matrix is singular: an elimination pivot is exactly zero (a ``ValueError`` too)."""


# -- the Cauchy-like forms ------------------------------------------------------------------------
class _Route:
    r"""``C = L W R^{-1}`` for one class: nodes, Cauchy generators and the transforms on rows.

    The transforms act on right-hand sides stored as rows, shape (..., k, n):
    ``left(b) = L b``, ``right_inverse(y) = R^{-1} y`` (so ``x = R^{-1} C^{-1} L b``), and for
    ``W^T x = b``: ``right_inverse_T(b) = R^{-T} b``, ``left_T(y) = L^T y``.
    ``det_factor`` is :math:`\det R / \det L` as (unit complex phase, log of the modulus).
    """

    identity = staticmethod(lambda x: x)

    def __init__(self, v, u, G, H, left=None, right_inverse=None, right_inverse_T=None, left_T=None,
                 det_factor=(1.0, 0.0), circulant=None):
        self.v, self.u, self.G, self.H = v, u, G, H
        self.circulant = circulant  # c when v_i = omega^i, u_j = c omega^j (ldr.gko gathers the kernel)
        self.left = left or self.identity
        self.right_inverse = right_inverse or self.identity
        self.right_inverse_T = right_inverse_T or self.identity
        self.left_T = left_T or self.identity
        self.det_factor = det_factor


def _unit_rows(bk, n, index, like):
    e = np.zeros(n)
    e[index] = 1.0
    return bk.asarray(e, dtype=like.dtype, like=like)


def _powers(bk, c, n, like):
    """``c^j`` for j < n, as a complex array of ``like``'s dtype."""
    return bk.asarray(np.power(complex(c), np.arange(n)), dtype=like.dtype, like=like)


def _dft_determinant_phase(n):
    r"""The phase of :math:`\det F` for the unnormalised DFT :math:`F_{jk} = e^{-2\pi i jk/n}`.

    :math:`F/\sqrt n` is unitary with eigenvalues 1, -1, -i, i of multiplicities fixed by
    n mod 4 (McClellan and Parks, 1972); :math:`|\det F| = n^{n/2}`.
    """
    m, rest = divmod(n, 4)
    ones, minus, minus_i, plus_i = {
        0: (m + 1, m, m, m - 1),
        1: (m + 1, m, m, m),
        2: (m + 1, m + 1, m, m),
        3: (m + 1, m + 1, m + 1, m),
    }[rest]
    return (-1) ** minus * (-1j) ** minus_i * (1j) ** plus_i


def _shift_route(W, complex_dtype):
    """Toeplitz-like (Z_e, Z_f), square: the Cauchy-like form for (Z_1, Z_-1)."""
    bk = W._bk
    n = W.shape[0]
    e, f = W.A.f, W.B.f
    G, H = bk.cast(W.G, complex_dtype), bk.cast(W.H, complex_dtype)
    batch = W.batch_shape
    G = bk.broadcast_to(G, batch + tuple(G.shape[-2:]))
    H = bk.broadcast_to(H, batch + tuple(H.shape[-2:]))
    g_extra, h_extra = [], []
    # Z_1 W - W Z_-1 = GH + (1 - e) e_0 (e_{n-1}^T W) + (1 + f) (W e_0) e_{n-1}^T.
    if e != 1:
        last_row = W.T.matvec(_unit_rows(bk, n, n - 1, G))  # (..., n): W^T e_{n-1}, no conjugate
        g_extra.append(bk.broadcast_to((1 - e) * _unit_rows(bk, n, 0, G), batch + (n,)))
        h_extra.append(bk.broadcast_to(bk.cast(last_row, complex_dtype), batch + (n,)))
    if f != -1:
        first_column = W.matvec(_unit_rows(bk, n, 0, G))
        g_extra.append(bk.broadcast_to((1 + f) * bk.cast(first_column, complex_dtype), batch + (n,)))
        h_extra.append(bk.broadcast_to(_unit_rows(bk, n, n - 1, G), batch + (n,)))
    Gt = bk.concatenate([bk.swapaxes(G, -1, -2)] + [bk.expand_dims(g, -2) for g in g_extra], axis=-2)
    H = bk.concatenate([H] + [bk.expand_dims(h, -2) for h in h_extra], axis=-2)
    c = cmath.exp(1j * math.pi / n)
    scale = _powers(bk, 1 / c, n, G)  # D_c^{-1}
    omega = _powers(bk, cmath.exp(-2j * math.pi / n), n, G)
    return _Route(
        v=omega,
        u=c * omega,
        G=bk.swapaxes(bk.fft(Gt, n), -1, -2),  # F G
        H=bk.ifft(H * scale, n),  # H D_c^{-1} F^{-1} (F is symmetric)
        left=lambda b: bk.fft(b, n),
        right_inverse=lambda y: scale * bk.ifft(y, n),
        right_inverse_T=lambda b: bk.ifft(scale * b, n),
        left_T=lambda y: bk.fft(y, n),
        det_factor=(cmath.exp(1j * math.pi * (n - 1) / 2), 0.0),  # det D_c = c^{n(n-1)/2}
        circulant=c,
    )


def _hankel_route(W, complex_dtype):
    """Hankel-like: W = T J with T Toeplitz-like (Z_e, Z_f) with generators (G, H J)."""
    bk = W._bk
    n = W.shape[0]
    route = _shift_route(W._toeplitz(), complex_dtype)
    phase, logabs = route.det_factor
    right_inverse, right_inverse_T = route.right_inverse, route.right_inverse_T
    route.right_inverse = lambda y: bk.flip(right_inverse(y))  # x = J T^{-1} b
    route.right_inverse_T = lambda b: right_inverse_T(bk.flip(b))  # x = T^{-T} J b
    route.det_factor = (phase * (-1) ** (n * (n - 1) // 2), logabs)  # det J
    return route


def _unit_circle_corner(v, n):
    """A corner f' with |f'| = 1 that keeps the spectrum of Z_f' farthest from the nodes v."""
    powers = np.asarray(v, dtype=complex).reshape(-1) ** n
    candidates = np.exp(2j * np.pi * np.arange(64) / 64) * np.exp(1j * np.pi / 128)
    distance = np.abs(powers[None, :] - candidates[:, None]).min(axis=1, initial=np.inf)
    return complex(candidates[int(np.argmax(distance))])


def _vandermonde_route(W, complex_dtype):
    """Vandermonde-like (diag(v), Z_f): R = F D_c with |c| = 1, c^n = f (after moving f)."""
    bk = W._bk
    n = W.shape[0]
    f = W.f
    batch = W.batch_shape
    G = bk.broadcast_to(bk.cast(W.G, complex_dtype), batch + tuple(W.G.shape[-2:]))
    H = bk.broadcast_to(bk.cast(W.H, complex_dtype), batch + tuple(W.H.shape[-2:]))
    if abs(abs(f) - 1) > 1e-12:
        # diag(v) W - W Z_f' = GH - (f' - f) (W e_0) e_{n-1}^T: D_c is unitary only for |f'| = 1.
        target = _unit_circle_corner(bk.to_numpy(W.v), n)
        first_column = bk.cast(W.matvec(_unit_rows(bk, n, 0, G)), complex_dtype)
        G = bk.concatenate([G, bk.expand_dims(bk.broadcast_to(-(target - f) * first_column, batch + (n,)), -1)], -1)
        H = bk.concatenate([H, bk.broadcast_to(bk.expand_dims(_unit_rows(bk, n, n - 1, G), -2), batch + (1, n))], -2)
        f = target
    c = cmath.exp(1j * cmath.phase(f) / n)
    scale = _powers(bk, 1 / c, n, G)
    omega = _powers(bk, cmath.exp(-2j * math.pi / n), n, G)
    phase_F = _dft_determinant_phase(n)
    return _Route(
        v=bk.cast(W.v, complex_dtype),
        u=c * omega,
        G=G,
        H=bk.ifft(H * scale, n),
        right_inverse=lambda y: scale * bk.ifft(y, n),
        right_inverse_T=lambda b: bk.ifft(scale * b, n),
        # det R = det F det D_c, |det F| = n^{n/2}
        det_factor=(phase_F * cmath.exp(1j * cmath.phase(f) * (n - 1) / 2), 0.5 * n * math.log(n)),
    )


def _cauchy_route(W, complex_dtype):
    bk = W._bk
    return _Route(bk.cast(W.v, complex_dtype), bk.cast(W.u, complex_dtype),
                  bk.cast(W.G, complex_dtype), bk.cast(W.H, complex_dtype))


def _low_rank_route(W, complex_dtype):
    bk = W._bk
    n, r = W.shape[0], W.rank
    if r < n:
        raise SingularMatrixError(
            f"`W` is low-rank (rank <= r = {r} < n = {n}), hence singular; a LowRank matrix can "
            "only be solved when r >= n"
        )
    # diag(v) GH - GH diag(u) = [diag(v) G, G] [H; -H diag(u)] for any distinct nodes.
    omega = _powers(bk, cmath.exp(-2j * math.pi / n), n, bk.cast(W.G, complex_dtype))
    u = cmath.exp(1j * math.pi / n) * omega
    G, H = bk.cast(W.G, complex_dtype), bk.cast(W.H, complex_dtype)
    G = bk.concatenate([bk.expand_dims(omega, -1) * G, G], axis=-1)
    H = bk.concatenate([H, -H * u], axis=-2)
    return _Route(omega, u, G, H, circulant=cmath.exp(1j * math.pi / n))


def _transposed_route(bk, route):
    r"""The Cauchy-like form of :math:`W^T` from that of W.

    :math:`C = L W R^{-1}` gives :math:`C^T = R^{-T} W^T L^T` with
    :math:`\operatorname{diag}(u) C^T - C^T \operatorname{diag}(v) = (-H^T)(G^T)`: the nodes
    swap, :math:`L' = R^{-T}`, :math:`R' = L^{-T}`, and :math:`\det R' / \det L' = \det R / \det L`.
    """
    return _Route(
        v=route.u,
        u=route.v,
        G=-bk.swapaxes(route.H, -1, -2),
        H=bk.swapaxes(route.G, -1, -2),
        left=route.right_inverse_T,
        right_inverse=route.left_T,
        right_inverse_T=route.left,
        left_T=route.right_inverse,
        det_factor=route.det_factor,
    )


def _row_reversed_route(W, complex_dtype):
    """:class:`~ldr.RowReversed` W = J M: the form of M (for M = V^T, the form of V transposed) with L J in place of L."""
    bk = W._bk
    n = W.shape[0]
    inner = W.inner()
    if isinstance(inner, _Transposed):  # M = V^T, V Vandermonde-like
        route = _transposed_route(bk, _route_for(inner.T, complex_dtype))
    else:
        route = _route_for(inner, complex_dtype)
    left, left_T = route.left, route.left_T
    route.left = lambda b: left(bk.flip(b))  # C = L M R^{-1} = (L J) W R^{-1}
    route.left_T = lambda y: bk.flip(left_T(y))
    phase, logabs = route.det_factor
    route.det_factor = (phase * (-1) ** (n * (n - 1) // 2), logabs)  # det(L J) = det L det J, det J = +-1
    return route


_ROUTES = ((CauchyLike, _cauchy_route), (HankelLike, _hankel_route), (ToeplitzLike, _shift_route),
           (VandermondeLike, _vandermonde_route), (LowRank, _low_rank_route), (RowReversed, _row_reversed_route))


def _route_for(base, complex_dtype):
    """The Cauchy-like form of an untransposed square W."""
    for cls, build in _ROUTES:
        if isinstance(base, cls):
            return build(base, complex_dtype)
    raise TypeError(f"ldr.solve has no method for {type(base).__name__}")


class _Factorization:
    """The factored Cauchy-like form of every batch entry of a square W (or of its transpose)."""

    def __init__(self, W, check=True):
        self.transposed = isinstance(W, _Transposed)
        self.check = check  # raise SingularMatrixError for a zero or non-finite pivot (slogdet: no)
        base = W.T if self.transposed else W
        self.W, self.bk = W, W._bk
        self.n = W.shape[0]
        self.batch_shape = tuple(W.batch_shape)
        self.out_real = not self._is_complex(W)
        compute = W._compute_dtype()[1]
        self.complex_dtype = self.bk.complex_dtype(compute)
        self.route = _route_for(base, self.complex_dtype)
        self.factors = self._factor()

    @staticmethod
    def _is_complex(W):
        bk = W._bk
        return any(bk.dtype_kind(a.dtype) == "c" for a in W._arrays()) or any(
            isinstance(s, complex) for s in W._scalars()
        )

    def _entries(self, X, trailing):
        """X broadcast to the batch shape, flattened to (B, *trailing shape)."""
        bk = self.bk
        full = self.batch_shape + tuple(X.shape[-trailing:])
        return bk.broadcast_to(X, full).reshape((-1,) + tuple(X.shape[-trailing:]))

    def _factor(self):
        """One :class:`~ldr.gko.CauchyLU` (unbatched W) or a :class:`~ldr.gko.BatchCauchyLU` (a batch)."""
        bk, route = self.bk, self.route
        v, u = self._entries(route.v, 1), self._entries(route.u, 1)
        G, H = self._entries(route.G, 2), self._entries(route.H, 2)
        if G.shape[0] == 1:
            lu = factor_cauchy_like(v[0], u[0], G[0], H[0], bk, circulant=route.circulant)
            self._check_pivots(bk.to_numpy(lu.pivots)[None])
            return lu
        if self.n > BATCH_MAX_N:  # the work per entry hides the per-entry overhead: one at a time
            lu = BatchCauchyLU.of_entries(
                [factor_cauchy_like(v[i], u[i], G[i], H[i], bk, circulant=route.circulant) for i in range(G.shape[0])],
                self.n, bk,
            )
            self._check_pivots(lu.pivots())
            return lu
        # Every entry at once (one Python-level step per block of pivots, not per entry); an
        # entry the batched steps set aside (tiny, zero or non-finite pivot) is factored alone.
        lu = factor_cauchy_like_batch(v, u, G, H, bk, circulant=route.circulant)
        for i in np.flatnonzero(lu.alone):
            lu.replace(i, factor_cauchy_like(v[i], u[i], G[i], H[i], bk, circulant=route.circulant))
        self._check_pivots(lu.pivots())
        return lu

    def _check_pivots(self, pivots):
        """Raise :class:`SingularMatrixError` for the first entry (of pivots (B, n)) with a zero or non-finite pivot."""
        if not self.check:
            return
        for i, entry in enumerate(pivots):
            where = "" if not self.batch_shape else f" (batch entry {tuple(int(j) for j in np.unravel_index(i, self.batch_shape))})"
            if not np.all(np.isfinite(entry)):
                raise SingularMatrixError(
                    f"the elimination on `W`'s generators overflowed{where}: W is singular or too "
                    "ill-conditioned for this dtype"
                )
            zero = np.flatnonzero(entry == 0)
            if zero.size:
                raise SingularMatrixError(
                    f"`W` is singular{where}: pivot {int(zero[0])} of the elimination (partial "
                    "pivoting on the Cauchy-like form) is exactly zero"
                )

    def solve_rows(self, b, transpose=False):
        """Solve for right-hand sides stored as rows: ``b`` complex, shape (..., k, n).

        The batch axes of ``b`` broadcast with the batch shape of W; the result has the
        broadcast batch shape. Axes along which W does not vary (all of them when W is
        unbatched) join the columns of one solve per factorisation.
        """
        bk, route, n = self.bk, self.route, self.n
        transpose = transpose != self.transposed
        b = bk.cast(b, self.complex_dtype)  # the Levinson route's fallback passes real rows
        y = route.right_inverse_T(b) if transpose else route.left(b)
        k = y.shape[-2]
        full = tuple(np.broadcast_shapes(self.batch_shape, tuple(y.shape[:-2])))
        y = bk.broadcast_to(y, full + (k, n))
        own = (1,) * (len(full) - len(self.batch_shape)) + self.batch_shape
        entry_axes = [i for i, size in enumerate(own) if size > 1]  # W's entries
        column_axes = [i for i, size in enumerate(own) if size == 1]  # folded into the columns
        letters = "abcdefghijklmnopqrstuvw"[: len(full)]
        order = "".join(letters[i] for i in entry_axes + column_axes)
        sizes = [full[i] for i in entry_axes + column_axes]
        count, columns = int(np.prod(sizes[: len(entry_axes)], dtype=int)), int(np.prod(sizes[len(entry_axes) :], dtype=int))
        # (..., k, n) in W's entry order, then (count, n, columns * k): one solve per factorisation.
        Y = bk.einsum(f"{letters}yz->{order}yz", y).reshape((count, columns * k, n))
        Y = bk.swapaxes(Y, -1, -2)
        if count == 1:
            Z = bk.expand_dims(self.factors.solve(Y[0], transpose), 0)
        else:
            Z = self.factors.solve(Y, transpose)
        Z = bk.swapaxes(Z, -1, -2).reshape(tuple(sizes) + (k, n))
        z = bk.einsum(f"{order}yz->{letters}yz", Z)
        return route.left_T(z) if transpose else route.right_inverse(z)

    def slogdet(self):
        """Per batch entry: (sign, a complex NumPy array; log|det|, a float NumPy array)."""
        phase, logabs = self.route.det_factor
        lu = self.factors
        if isinstance(lu, BatchCauchyLU):
            d, parity = lu.pivots().astype(complex), lu.parity()
        else:
            d, parity = self.bk.to_numpy(lu.pivots).astype(complex)[None], np.array([lu.parity()])
        # An entry with a zero or non-finite pivot is singular (or beyond the dtype): (0, -inf),
        # whatever the other entries of the batch are.
        singular = ~np.all(np.isfinite(d) & (d != 0), axis=-1)
        d = np.where(singular[:, None], 1.0, d)
        signs = np.where(singular, 0.0, parity * phase * np.prod(d / np.abs(d), axis=-1))
        logs = np.where(singular, -np.inf, np.sum(np.log(np.abs(d)), axis=-1) + logabs)
        return signs.reshape(self.batch_shape), logs.reshape(self.batch_shape)


#: The Levinson route (plain Toeplitz and Hankel matrices): refinement stops once the backward
#: error of every column is at most ``LEVINSON_TARGET * eps``, after at most ``LEVINSON_STEPS``
#: steps (or when a step does not halve it); the best iterate is accepted when its backward error
#: is at most ``LEVINSON_TOLERANCE * eps``, otherwise the solve falls back to the pivoted elimination.
LEVINSON_TARGET, LEVINSON_TOLERANCE, LEVINSON_STEPS = 0.5, 4.0, 3


def _plain_toeplitz(W):
    """``(c, r, hankel)`` when W (or the W of ``W.T``) is a plain Toeplitz (Hankel) matrix, else None."""
    base = W.T if isinstance(W, _Transposed) else W
    if isinstance(base, HankelLike):
        if base.batch_shape or base.shape[0] != base.shape[1]:
            return None
        entries = _levinson.toeplitz_entries(base._toeplitz())
        return None if entries is None else (*entries, True)
    if isinstance(base, ToeplitzLike):
        entries = _levinson.toeplitz_entries(base)
        return None if entries is None else (*entries, False)
    return None


def _factorize(W, compute, plain=None):
    """The Levinson factorisation when ``plain`` (from :func:`_plain_toeplitz`) and Levinson succeeds, else GKO."""
    if plain is not None:
        c, r, hankel = plain
        columns = _levinson.levinson_columns(c, r)
        if columns is not None:
            return _LevinsonFactorization(W, c, r, hankel, columns, compute)
    return _Factorization(W)


class _LevinsonFactorization:
    r"""A plain Toeplitz (or Hankel, :math:`W = TJ`) matrix: :math:`T^{-1}` by Gohberg–Semencul.

    Two Levinson solves (:mod:`ldr._levinson`) set it up in :math:`O(n^2)`; every solve then
    costs :math:`O(n \log n)`, refinement included. Levinson does not pivot, so every solve is
    refined and its backward error checked (the residual is one fast product with W); a solve
    that stays above ``LEVINSON_TOLERANCE * eps`` switches this object, for good, to the pivoted
    elimination (:class:`_Factorization`) and is redone there.
    """

    def __init__(self, W, c, r, hankel, columns, compute):
        self.W, self.bk = W, W._bk
        self.transposed = isinstance(W, _Transposed)
        self.base = W.T if self.transposed else W
        self.n = W.shape[0]
        self.batch_shape = ()
        self.hankel = hankel
        self.compute = compute
        x, y = columns
        self.inverse = _levinson.GohbergSemencul(x, y, self.bk, W._arrays()[0], compute)
        self.norm_W = _levinson.toeplitz_norm1(c, r)  # = ||W^T||_1, also for W = T J
        self.eps = self.bk.eps(compute)
        self.fallback = None

    @property
    def refines_itself(self):
        """Whether :meth:`solve_rows` returns refined, checked solutions (False after a fallback)."""
        return self.fallback is None

    def _apply(self, b, transpose):
        """W^{-1} b (W^{-T} b) for the untransposed W, rows layout, no refinement."""
        bk = self.bk
        if not self.hankel:
            return self.inverse.apply(b, transpose)
        # W = T J: W^{-1} = J T^{-1}, W^{-T} = T^{-T} J.
        return self.inverse.apply(bk.flip(b), True) if transpose else bk.flip(self.inverse.apply(b, False))

    def _residual_errors(self, b, z, M):
        """Residual-based backward error per right-hand side (NumPy), and the residual."""
        bk = self.bk
        residual = b - bk.swapaxes(M @ bk.swapaxes(z, -1, -2), -1, -2)
        return _backward_errors(bk, np.asarray(self.norm_W), b, z, residual), residual

    def _solve_checked(self, b, transpose):
        """Refined solution, or None when its backward error stays above the tolerance."""
        M = self.base.T if transpose else self.base
        z = self._apply(b, transpose)
        best, best_eta = z, np.inf
        for step in range(LEVINSON_STEPS + 1):
            eta, residual = self._residual_errors(b, z, M)
            worst = float(eta.max(initial=0.0)) if np.all(np.isfinite(eta)) else np.inf
            improved = worst <= 0.5 * best_eta
            if worst < best_eta:
                best, best_eta = z, worst
            if best_eta <= LEVINSON_TARGET * self.eps or step == LEVINSON_STEPS or (step and not improved):
                break
            z = z + self._apply(residual, transpose)
        return best if best_eta <= LEVINSON_TOLERANCE * self.eps else None

    def solve_rows(self, b, transpose=False):
        """As :meth:`_Factorization.solve_rows` (W unbatched); refined and checked while on Levinson."""
        if self.fallback is None:
            z = self._solve_checked(b, transpose != self.transposed)
            if z is not None:
                return z
            self.fallback = _Factorization(self.W)
        return self.fallback.solve_rows(b, transpose)

    def condition_report(self):
        """(||W||_1, estimated ||W^{-1}||_1) as NumPy scalars: exact, and a bound or Hager's estimate."""
        bound = self.inverse.inverse_norm_bound
        if self.norm_W * bound * self.n * self.eps < 1:  # no warning possible: skip the estimator
            return np.asarray(self.norm_W), np.asarray(bound)
        bk, n, like = self.bk, self.n, self.W._arrays()[0]

        def on_rows(transpose, conjugate):
            def apply(x):
                rows = bk.asarray(x.conj() if conjugate else x, dtype=bk.complex_dtype(self.compute), like=like)
                z = bk.to_numpy(self._apply(rows, transpose != self.transposed))
                return z.conj() if conjugate else z

            return apply

        estimate = _norm1_estimate(on_rows(False, False), on_rows(True, True), 1, n)
        return np.asarray(self.norm_W), np.asarray(float(estimate[0]))


# -- validation shared by the public functions ------------------------------------------------------
def _check_square(W, name):
    if not isinstance(W, LDRMatrix):
        raise TypeError(f"`W` must be an LDRMatrix; got {type(W).__name__}")
    m, n = W.shape
    if m != n:
        raise ValueError(f"{name} needs a square `W`; got shape {W.shape}")


def _check_refine(refine):
    if isinstance(refine, bool) or not isinstance(refine, int) or refine < 0:
        raise ValueError(f"`refine` must be a non-negative integer; got {refine!r}")


def _needs_graph(bk, *arrays):
    if bk.name != "torch":
        return False
    from ._solve_autograd import records_graph

    return records_graph(*arrays)


# -- the norm estimates behind the warnings ---------------------------------------------------------
def _norm1_estimate(apply, apply_adjoint, batch, n, iterations=3, first=None, closing=None):
    r"""Hager's estimate of :math:`\lVert M\rVert_1` per batch entry, with Higham's safeguard.

    ``apply``/``apply_adjoint`` map complex NumPy arrays (B, n) to (B, n). The estimate is a
    lower bound, in practice within a factor 3 (LAPACK's ``xLACN2`` follows the same scheme):
    at most ``iterations`` rounds of one product with M and one with :math:`M^H`, stopping
    when the maximising unit vector repeats, then one product with the last unit vector (when
    the rounds ran out) and the alternating vector :math:`x_i = (-1)^i (1 + i/(n-1))` as a last
    probe. ``first = (x, y)`` with :math:`y = Mx`, :math:`\lVert x\rVert_1 = 1` per entry,
    replaces the starting vector :math:`x_i = 1/n` and saves its product. ``closing(last,
    alternating)`` returns :math:`(M\,\mathrm{last}, M\,\mathrm{alternating})` (``last`` None when
    the rounds stopped early) in place of two calls of ``apply``: the two are independent, and
    one multi-column solve costs less than two.
    """
    x = np.full((batch, n), 1.0 / n, dtype=complex)
    estimate = np.zeros(batch)
    previous = last = None
    for round_ in range(iterations):
        if round_ == 0 and first is not None:
            x, y = first
        else:
            y = apply(x)
        estimate = np.maximum(estimate, np.abs(y).sum(axis=-1))
        magnitude = np.abs(y)
        sign = np.where(magnitude > 0, y / np.where(magnitude > 0, magnitude, 1), 1)
        index = np.abs(apply_adjoint(sign)).argmax(axis=-1)
        if previous is not None and np.array_equal(index, previous):
            break
        previous = index
        x = np.zeros((batch, n), dtype=complex)
        x[np.arange(batch), index] = 1.0
    else:  # the rounds ran out: close with the product at the last unit vector
        last = x
    alternating = (-1.0) ** np.arange(n) * (1 + np.arange(n) / max(n - 1, 1))
    alternating = np.broadcast_to(alternating, (batch, n)).astype(complex)
    if closing is None:
        y_last, y_alternating = (None if last is None else apply(last)), apply(alternating)
    else:
        y_last, y_alternating = closing(last, alternating)
    if y_last is not None:
        estimate = np.maximum(estimate, np.abs(y_last).sum(axis=-1))
    probe = np.abs(y_alternating).sum(axis=-1)
    return np.maximum(estimate, 2 * probe / (3 * n))


#: Rounds of Hager's estimator after the elimination; each costs two solves (one with
#: :math:`W^T`) or two fast products, and the first reuses a right-hand side and its solution
#: (:math:`x = W^{-1} b` and :math:`W x = b - r`). One round, its closing product and the
#: alternating probe: one solve with :math:`W^T` plus two columns of the refinement solve
#: (:func:`_refine_and_estimate`), and 3 fast products. Measured on Toeplitz-like matrices at
#: n = 1024 (``benchmarks/bench_solve.py``): the three rounds of LAPACK's default made the check
#: cost as much as the factorisation.
ESTIMATOR_ROUNDS = 1


def _first_probes(factorization, rows_b, rows_x, residual):
    """Hager's first (x, M x) for M = W^{-1} and for M = W, from the first right-hand side, or None."""
    if rows_b is None or tuple(rows_b.shape[:-2]) != factorization.batch_shape:
        return None, None
    count = max(1, int(np.prod(factorization.batch_shape)))
    bk, n = factorization.bk, factorization.n

    def first(a):
        return bk.to_numpy(a[..., 0, :]).reshape(count, n).astype(complex)

    b, x, r = first(rows_b), first(rows_x), first(residual)
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(x)) and np.all(np.isfinite(r))):
        return None, None
    size_b, size_x = np.abs(b).sum(axis=-1, keepdims=True), np.abs(x).sum(axis=-1, keepdims=True)
    inverse = (b / size_b, x / size_b) if np.all(size_b > 0) else None
    forward = (x / size_x, (b - r) / size_x) if np.all(size_x > 0) else None
    return inverse, forward


def _on_rows(W, factorization, compute, function):
    """``function`` on backend rows, as a map of complex NumPy arrays (B, n) -> (B, n) for the estimators."""
    bk, n, batch = W._bk, factorization.n, factorization.batch_shape
    count, like = max(1, int(np.prod(batch))), W._arrays()[0]
    compute = bk.complex_dtype(compute)  # the estimators' probes are complex

    def apply(x):  # (B, n) -> backend rows (*batch, 1, n) -> (B, n)
        rows = bk.asarray(x.reshape(batch + (1, n)), dtype=compute, like=like)
        return bk.to_numpy(function(rows)).reshape(count, n).astype(complex)

    return apply


def _inverse_adjoint(factorization):
    """Rows -> W^{-H} rows with the factors (one solve with W^T)."""
    bk = factorization.bk
    return lambda z: bk.conj(factorization.solve_rows(bk.conj(z), transpose=True))


def _condition_report(W, factorization, compute, rows_b=None, rows_x=None, residual=None, norm_inv=None):
    """Estimated 1-norms of W and of its inverse per batch entry (NumPy arrays of the batch shape).

    ``rows_b``, ``rows_x``, ``residual``: right-hand sides, their solutions and residuals, whose
    first column gives both estimators their first probe when their batch shape is W's.
    ``norm_inv``: an estimate already made (by :func:`_solve_rows`), kept.
    """
    if getattr(factorization, "refines_itself", False):  # the Levinson route, O(n) or O(n log n)
        return factorization.condition_report()
    bk = W._bk
    n, batch = W.shape[0], factorization.batch_shape
    count = max(1, int(np.prod(batch)))

    def matvec(rows, transpose=False):
        M = W.T if transpose else W
        return bk.swapaxes(M @ bk.swapaxes(rows, -1, -2), -1, -2)

    first_inverse, first_forward = _first_probes(factorization, rows_b, rows_x, residual)
    norm_W = _norm1_estimate(
        _on_rows(W, factorization, compute, matvec),
        _on_rows(W, factorization, compute, lambda z: bk.conj(matvec(bk.conj(z), transpose=True))),
        count,
        n,
        iterations=ESTIMATOR_ROUNDS,
        first=first_forward,
    )
    if norm_inv is None:
        norm_inv = _inverse_norm_estimate(W, factorization, compute, first_inverse)
    return norm_W.reshape(batch), np.asarray(norm_inv).reshape(batch)


def _inverse_norm_estimate(W, factorization, compute, first, closing=None):
    """Hager's estimate of ||W^{-1}||_1 per batch entry (flat), with the factors' solves."""
    return _norm1_estimate(
        _on_rows(W, factorization, compute, factorization.solve_rows),
        _on_rows(W, factorization, compute, _inverse_adjoint(factorization)),
        max(1, int(np.prod(factorization.batch_shape))),
        factorization.n,
        iterations=ESTIMATOR_ROUNDS,
        first=first,
        closing=closing,
    )


#: On the elimination route, refinement continues past ``refine`` while the backward error
#: exceeds ``POLISH_ABOVE * eps``, at most ``POLISH_STEPS`` more steps, each kept only when it
#: lowers the backward error and the next tried only when it lowered it to below
#: ``POLISH_GAIN`` times (only with ``check=True``, which estimates the norm it needs).
#: Well-conditioned matrices end below eps after the first step and never pay for it; on the
#: prolate matrix at n = 2048 (condition 2e19, refinement converges slowly) the backward error
#: went from 2.1e-15 after one step to 1.2e-15 after three more (dense LU: 1.7e-16).
POLISH_ABOVE, POLISH_GAIN, POLISH_STEPS = 1.0, 0.95, 6


def _backward_errors(bk, norm_W, rows_b, rows_x, residual):
    """Per column, ||b - W x||_1 / (||W||_1 ||x||_1 + ||b||_1) as a NumPy array.

    0 for an exact zero solution of b = 0; inf when the residual is nonzero with a zero scale or
    when anything is not finite (an overflowed solution must never pass a check as exact).
    """
    r, x, b = (np.abs(bk.to_numpy(a)).sum(axis=-1) for a in (residual, rows_x, rows_b))
    scale = norm_W[..., None] * x + b  # norm_W has W's batch shape, x (..., *batch, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        eta = np.where(scale > 0, r / np.where(scale > 0, scale, 1), np.where(r > 0, np.inf, 0.0))
    return np.where(np.isfinite(r) & np.isfinite(scale), eta, np.inf)


def _check_and_polish(W, factorization, compute, rows_b, rows_x, residual_of, norm_inv=None):
    """The accuracy check of :func:`solve`: condition estimate, extra refinement, warnings; returns x."""
    bk = W._bk
    eps = bk.eps(compute)
    if getattr(factorization, "refines_itself", False):
        # The Levinson route: every column's backward error is already at most a few eps.
        residual = eta = None
        norm_W, norm_inv = factorization.condition_report()
    else:
        residual = residual_of(rows_x)
        norm_W, norm_inv = _condition_report(W, factorization, compute, rows_b, rows_x, residual, norm_inv)
        eta = _backward_errors(bk, norm_W, rows_b, rows_x, residual)
        for _ in range(POLISH_STEPS):
            worst = float(eta.max(initial=0.0))
            if not worst > POLISH_ABOVE * eps:  # (NaN: nothing to polish)
                break
            x = rows_x + factorization.solve_rows(residual)
            r = residual_of(x)
            new = _backward_errors(bk, norm_W, rows_b, x, r)
            if not float(new.max(initial=0.0)) < worst:
                break
            rows_x, residual, eta = x, r, new
            if float(new.max(initial=0.0)) > POLISH_GAIN * worst:
                break  # converging too slowly to pay for another solve
    with np.errstate(divide="ignore"):
        rcond = 1.0 / (norm_W * norm_inv)
    worst = int(np.argmin(rcond.reshape(-1))) if rcond.size else 0
    where = f" (batch entry {tuple(int(j) for j in np.unravel_index(worst, rcond.shape))})" if rcond.ndim else ""
    # Below n eps the factorisation's own rounding (about n eps relative) masks the smallest
    # singular value: the estimate then cannot tell "nearly singular" from "singular".
    threshold = W.shape[0] * eps
    if rcond.size and float(rcond.reshape(-1)[worst]) < threshold:
        warnings.warn(
            f"`W` is ill-conditioned{where}: estimated rcond = {float(rcond.reshape(-1)[worst]):.3g} "
            f"(1-norm condition number about {1 / max(float(rcond.reshape(-1)[worst]), 1e-300):.3g}) "
            f"is below n * eps = {threshold:.3g}; the solution may be inaccurate",
            LinAlgWarning,
            stacklevel=4,
        )
        return rows_x
    if eta is not None and eta.size and float(eta.max()) > math.sqrt(eps):
        warnings.warn(
            f"ldr.solve lost accuracy: backward error {float(eta.max()):.3g} > sqrt(eps) after "
            f"refinement (estimated rcond {float(rcond.reshape(-1)[worst]):.3g}); the elimination on "
            "the generators suffered growth. Increase `refine` or solve densely",
            LinAlgWarning,
            stacklevel=4,
        )
    return rows_x


# -- public functions -------------------------------------------------------------------------------
def _solve_rows(W, factorization, rows, refine, check, compute):
    """x (rows) with ``refine`` steps of iterative refinement and the optional accuracy check."""
    bk = W._bk

    def residual(x):
        return rows - bk.swapaxes(W @ bk.swapaxes(x, -1, -2), -1, -2)

    x = factorization.solve_rows(rows)
    # The Levinson route refines (and checks) its own solves, in O(n log n) per step.
    steps = 0 if getattr(factorization, "refines_itself", False) else refine
    norm_inv = None
    if check and steps and tuple(rows.shape[:-2]) == factorization.batch_shape:
        # The first refinement solve shares one multi-column solve with the two closing
        # products of the inverse's estimator (measured at n = 1024: 3 columns cost 1.9 one-column
        # solves, not 3).
        x, norm_inv = _refine_and_estimate(W, factorization, compute, rows, x, residual(x))
        steps -= 1
    for _ in range(steps):
        x = x + factorization.solve_rows(residual(x))
    if check:
        x = _check_and_polish(W, factorization, compute, rows, x, residual, norm_inv)
    return x


def _refine_and_estimate(W, factorization, compute, rows, x, residual):
    """One refinement step and Hager's estimate of ||W^{-1}||_1, whose closing solves go with it."""
    bk, n, batch = W._bk, factorization.n, factorization.batch_shape
    count, k = max(1, int(np.prod(batch))), rows.shape[-2]
    like = W._arrays()[0]
    correction = []

    def closing(last, alternating):
        probes = [a for a in (last, alternating) if a is not None]
        extra = bk.asarray(np.stack(probes, axis=-2).reshape(batch + (len(probes), n)), dtype=residual.dtype, like=like)
        out = factorization.solve_rows(bk.concatenate([residual, extra], axis=-2))
        correction.append(out[..., :k, :])
        solved = bk.to_numpy(out[..., k:, :]).reshape(count, len(probes), n).astype(complex)
        return (solved[:, 0] if last is not None else None), solved[:, -1]

    first_inverse, _ = _first_probes(factorization, rows, x, residual)
    estimate = _inverse_norm_estimate(W, factorization, compute, first_inverse, closing)
    return x + correction[0], estimate.reshape(batch)


def solve(W, b, *, refine=1, check=True):
    r"""Solve :math:`W x = b` for a square LDR matrix by elimination on its generators.

    Parameters
    ----------
    W : LDRMatrix, shape (..., n, n)
        Any square class (or a transpose ``W.T``); batch axes broadcast with those of ``b``.
    b : array, shape (n,) or (..., n, k)
        As in :func:`numpy.linalg.solve`: a 1-D ``b`` is one vector, otherwise the last two
        axes are the matrix of right-hand sides.
    refine : int, default 1
        Steps of iterative refinement, each one fast product with W and one solve with the
        factors (:math:`O(n^2)`). On the Levinson route (plain Toeplitz and Hankel matrices)
        refinement is :math:`O(n \log n)` per step and adaptive instead: up to 3 steps, until
        the backward error is below :math:`\epsilon/2`.
    check : bool, default True
        Estimate the condition number (one round of Hager's 1-norm estimator: one extra solve
        with :math:`W^T`, two extra columns in the refinement solve and 3 fast products; on the
        Levinson route an O(n) bound, the estimator only when the bound
        cannot exclude a warning) and the backward error of the result, and warn when they say
        the result may be inaccurate. The Levinson route's own backward-error check (and its
        fallback) runs whatever ``check`` says.

    Returns
    -------
    array, shape of ``b`` (batch axes broadcast)
        Real when W and b are real (the computation runs in complex arithmetic).

    Raises
    ------
    SingularMatrixError
        When a pivot is exactly zero (W singular), or W is low-rank with r < n.
    ValueError
        When ``b`` has the wrong shape or NaN or infinite entries.

    Warns
    -----
    scipy.linalg.LinAlgWarning
        When the estimated reciprocal condition number is below ``n * eps`` of the dtype
        (:func:`scipy.linalg.solve` warns below ``eps``; the estimate from these factors
        cannot resolve condition numbers beyond about ``1 / (n * eps)``), or when the backward error
        :math:`\lVert b - Wx\rVert_1 / (\lVert W\rVert_1 \lVert x\rVert_1 + \lVert b\rVert_1)` of
        the refined solution exceeds :math:`\sqrt{\epsilon}`.

    Notes
    -----
    W is brought to a Cauchy-like matrix :math:`C = LWR^{-1}` by DFTs (see :doc:`/theory/solvers`),
    C is factored as :math:`PC = LU` by Gaussian elimination with partial pivoting on its
    generators (:math:`O(r n^2)`, module ``ldr.gko``), and
    :math:`x = R^{-1} U^{-1} L^{-1} P L b`. Partial pivoting bounds the multipliers by 1 as in
    dense LU; the generators themselves can still grow, which the refinement step and the
    backward-error check guard against.

    A plain Toeplitz matrix (:func:`ldr.toeplitz`, or generators of that structure; also
    :func:`ldr.hankel`, unbatched) takes the Levinson route: the first and last columns of
    :math:`T^{-1}` by two Levinson solves (:func:`scipy.linalg.solve_toeplitz`, one when T is
    symmetric or Hermitian, :math:`O(n^2)`), then every solve by the Gohberg–Semencul formula
    in :math:`O(n \log n)`, refined until its backward error is at most a few eps. Levinson
    does not pivot; when it breaks down or the refined backward error stays above
    :math:`4\epsilon`, the solve falls back to the elimination above: the route never returns
    a solution with a larger backward error.

    A batch of W (generators with leading axes) is factored by one elimination whose every
    step covers all entries (matrices up to order ``ldr.gko.BATCH_MAX_N`` = 512; larger ones
    entry by entry); each entry pivots on its own rows, and one near a tiny or zero pivot is
    finished alone. Batch axes of ``b`` along which W does not vary become extra columns.

    On torch, gradients reach ``b`` and the generators (and nodes) through one transposed
    solve and one fast product in the backward pass. See :doc:`/theory/solvers`.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> W = ldr.toeplitz(np.array([4.0, 1.0, 0.5, 0.2]), np.array([4.0, 2.0, 0.3, 0.1]))
    >>> b = np.array([1.0, 2.0, 3.0, 4.0])
    >>> x = ldr.solve(W, b)
    >>> bool(np.allclose(W.dense() @ x, b))
    True
    """
    _check_square(W, "solve")
    _check_refine(refine)
    bk = W._bk
    b = W._as_input(b, "b")
    n = W.shape[0]
    vector = b.ndim == 1
    if b.ndim == 0 or b.shape[-1 if vector else -2] != n:
        raise ValueError(f"`b` must have shape (n,) or (..., n, k) with n = {n}; got {format_shape(b.shape)}")
    if not bk.all_finite(b):
        # As scipy.linalg.solve: a NaN would reach every entry of x through the elimination.
        raise ValueError("`b` must be finite; got NaN or infinite entries")
    out, compute = W._compute_dtype(b.dtype)
    out = bk.operand_dtypes(W._arrays()[0].dtype, b.dtype, out)
    plain = _plain_toeplitz(W)
    # The Levinson route computes in W's and b's own field; the elimination in complex arithmetic.
    work = compute if plain is not None else bk.complex_dtype(compute)
    rows = bk.expand_dims(b, -2) if vector else bk.swapaxes(b, -1, -2)
    rows = bk.cast(rows, work)
    if _needs_graph(bk, b, *W._arrays()):
        from ._solve_autograd import solve_with_gradient

        x = solve_with_gradient(W, rows, refine, check, work, plain)
    else:
        x = _solve_rows(W, _factorize(W, work, plain), rows, refine, check, work)
    if bk.dtype_kind(out) != "c":
        x = bk.real(x)
    x = bk.cast(x, out)
    return x[..., 0, :] if vector else bk.swapaxes(x, -1, -2)


def inv(W, *, refine=1, check=True):
    r"""The inverse as an LDR matrix for the swapped operator pair (B, A), with the same rank r.

    Parameters
    ----------
    W : LDRMatrix, shape (..., n, n)
        Toeplitz-like, Hankel-like, Vandermonde-like, Cauchy-like or :class:`~ldr.RowReversed`
        (or a transpose of one): the classes whose swapped pair is a class of the library.
    refine, check
        As in :func:`solve`.

    Returns
    -------
    LDRMatrix
        :math:`W^{-1}` with :math:`B W^{-1} - W^{-1} A = (-W^{-1} G)(H W^{-1})`; its products
        cost what the products of W's class cost. The class follows the swapped pair:
        Toeplitz-like and Cauchy-like matrices give the same class (:math:`(Z_f, Z_e)`,
        :math:`(\operatorname{diag}(u), \operatorname{diag}(v))`); Hankel-like and
        Vandermonde-like matrices give a :class:`~ldr.RowReversed` for :math:`(Z_f^T, Z_e)` or
        :math:`(Z_f, \operatorname{diag}(v))`, :math:`W^{-1} = J M` with M Toeplitz-like or the
        transpose of a Vandermonde-like matrix; its inverse is Hankel-like (Vandermonde-like) again.

    Raises
    ------
    TypeError
        When the swapped pair has no class (low-rank matrices: :math:`(0, I)`); use
        :func:`solve`.
    SingularMatrixError
        As in :func:`solve`.

    Notes
    -----
    From :math:`AW - WB = GH`, multiplying by :math:`W^{-1}` on both sides gives
    :math:`W^{-1}A - BW^{-1} = W^{-1}GHW^{-1}`. One factorisation serves the r solves with W
    (for :math:`W^{-1}G`) and the r with :math:`W^T` (for :math:`HW^{-1} = (W^{-T}H^T)^T`):
    :math:`O(r n^2)` in all; for a plain Toeplitz matrix two Levinson solves, then
    :math:`O(n \log n)` per solve. See :doc:`/theory/solvers`.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> W = ldr.toeplitz(np.array([4.0, 1.0, 0.5]), np.array([4.0, 2.0, 0.3]))
    >>> Winv = ldr.inv(W)
    >>> (Winv.A.f, Winv.B.f), Winv.rank
    ((-1.0, 1.0), 2)
    >>> bool(np.allclose(Winv.dense(), np.linalg.inv(W.dense())))
    True

    A Hankel-like matrix :math:`(Z_1, Z_0^T)` has an inverse for :math:`(Z_0^T, Z_1)`:

    >>> rng = np.random.default_rng(0)
    >>> H = ldr.hankel_like(rng.standard_normal((5, 2)), rng.standard_normal((2, 5)))
    >>> Hinv = ldr.inv(H)
    >>> type(Hinv).__name__, Hinv.A, Hinv.B
    ('RowReversed', Shift(5, f=0.0, transpose=True), Shift(5, f=1.0))
    >>> bool(np.allclose(Hinv.dense(), np.linalg.inv(H.dense())))
    True
    """
    _check_square(W, "inv")
    if isinstance(W, _Transposed):
        return inv(W.T, refine=refine, check=check).T
    try:
        _structure_for(W.B, W.A)
    except TypeError:
        raise TypeError(
            f"inv: the inverse of a {type(W).__name__} is structured for the swapped pair "
            f"(B, A) = ({W.B!r}, {W.A!r}), which is not a class of ldr; use ldr.solve(W, b)"
        ) from None
    _check_refine(refine)
    bk = W._bk
    if _needs_graph(bk, *W._arrays()):  # through solve's autograd (one factorisation per call)
        G_inv = -solve(W, W.G, refine=refine, check=check)
        H_inv = bk.swapaxes(solve(W.T, bk.swapaxes(W.H, -1, -2), refine=refine, check=False), -1, -2)
        return LDRMatrix(W.B, W.A, G_inv, H_inv)
    # One factorisation for both sets of solves: rows of G^T with W, rows of H with W^T.
    out, compute = W._compute_dtype()
    plain = _plain_toeplitz(W)
    work = compute if plain is not None else bk.complex_dtype(compute)
    factorization = _factorize(W, work, plain)
    G_rows = _solve_rows(W, factorization, bk.cast(bk.swapaxes(W.G, -1, -2), work), refine, check, work)
    H_inv = _solve_rows(W.T, _TransposedFactorization(factorization), bk.cast(W.H, work), refine, False, work)
    if bk.dtype_kind(out) != "c":
        G_rows, H_inv = bk.real(G_rows), bk.real(H_inv)
    G_inv = -bk.swapaxes(bk.cast(G_rows, out), -1, -2)
    return LDRMatrix(W.B, W.A, G_inv, bk.cast(H_inv, out))


class _TransposedFactorization:
    """A factorisation of W serving solves with W^T (for :func:`inv`, without the check)."""

    def __init__(self, factorization):
        self._factorization = factorization

    def __getattr__(self, name):
        return getattr(self._factorization, name)

    def solve_rows(self, b, transpose=False):
        return self._factorization.solve_rows(b, not transpose)


def slogdet(W):
    r"""Sign and natural log of :math:`|\det W|` from the elimination's pivots.

    Parameters
    ----------
    W : LDRMatrix, shape (..., n, n)

    Returns
    -------
    sign : array, shape (...)
        ±1 for real W, a unit complex number for complex W; 0 when W is singular.
    logabsdet : array, shape (...)
        Real; ``-inf`` when W is singular.

    Notes
    -----
    :math:`\det W = \det C \cdot \det R / \det L` with :math:`\det C = \pm \prod_k d_k` (the
    pivots, the sign from the row permutation). For the DFT-based transforms
    :math:`\det R / \det L` is known in closed form (:doc:`/theory/solvers`). On torch the
    gradient reaches the generators (and nodes) through ``logabsdet``, by
    :math:`d \log|\det W| = \operatorname{Re} \operatorname{tr}(W^{-1} dW)`: the backward pass
    solves for :math:`W^{-T}` with the stored factors (n right-hand sides, :math:`O(n^3)` in
    matrix products) and takes one vector-Jacobian product of ``W.dense()``. ``sign`` carries
    no gradient, and neither does a singular W (``logabsdet = -inf``).

    Examples
    --------
    >>> import numpy as np, ldr
    >>> W = ldr.toeplitz(np.array([4.0, 1.0, 0.5]), np.array([4.0, 2.0, 0.3]))
    >>> sign, logdet = ldr.slogdet(W)
    >>> bool(np.allclose(sign * np.exp(logdet), np.linalg.det(W.dense())))
    True
    """
    _check_square(W, "slogdet")
    bk = W._bk
    try:
        factorization = _Factorization(W, check=False)
    except SingularMatrixError:  # a low-rank W with r < n
        factorization = None
        batch = tuple(W.batch_shape)
        sign, logabs = np.zeros(batch), np.full(batch, -np.inf)
    else:
        sign, logabs = factorization.slogdet()  # (0, -inf) for each singular entry
        if factorization.out_real:  # the phases cancel up to rounding
            sign = np.where(sign == 0, 0.0, np.where(sign.real >= 0, 1.0, -1.0))
        if np.any(np.isinf(logabs)):
            factorization = None  # no gradient through a singular entry
    if factorization is not None and _needs_graph(bk, *W._arrays()):
        from ._solve_autograd import logabsdet_with_gradient

        sign, logabs = _slogdet_arrays(W, sign, logabs)
        return sign, logabsdet_with_gradient(W, factorization, logabs)
    return _slogdet_arrays(W, sign, logabs)


def _slogdet_arrays(W, sign, logabs):
    """(sign, logabsdet) NumPy values as backend arrays of W's real (or complex) dtype."""
    bk = W._bk
    real = bk.real_dtype(W._compute_dtype()[1])
    like = W._arrays()[0]
    sign_dtype = real if np.isrealobj(sign) else bk.complex_dtype(real)
    return bk.asarray(sign, dtype=sign_dtype, like=like), bk.asarray(logabs, dtype=real, like=like)


def det(W):
    r"""The determinant, ``sign * exp(logabsdet)`` of :func:`slogdet` (may overflow; prefer slogdet).

    Parameters
    ----------
    W : LDRMatrix, shape (..., n, n)

    Returns
    -------
    array, shape (...)

    Examples
    --------
    >>> import numpy as np, ldr
    >>> W = ldr.circulant(np.array([3.0, 1.0, 0.0]))
    >>> bool(np.isclose(ldr.det(W), np.linalg.det(W.dense())))
    True
    """
    sign, logabs = slogdet(W)
    bk = W._bk
    magnitude = bk.asarray(np.exp(bk.to_numpy(logabs)), dtype=logabs.dtype, like=logabs)
    return sign * magnitude
