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
* Cauchy-like: :math:`L = R = I`; low-rank with r ≥ n: the Cauchy-like form of :math:`GH`.

The Cauchy-like matrix is factored by Gaussian elimination with partial pivoting on its
generators (``ldr.gko``, blocked, :math:`O(r n^2 + b n^2)` with b = 32), and each solve costs :math:`O(n^2)` plus a few
FFTs. Derivations: :doc:`/theory/solvers`.
"""

from __future__ import annotations

import cmath
import math
import warnings

import numpy as np
from scipy.linalg import LinAlgWarning

from .cauchy_like import CauchyLike
from .gko import factor_cauchy_like
from .ldrmatrix import LDRMatrix, _structure_for, _Transposed
from .low_rank import LowRank
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
                 det_factor=(1.0, 0.0)):
        self.v, self.u, self.G, self.H = v, u, G, H
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
        last_row = W.rmatvec(_unit_rows(bk, n, n - 1, G))  # (..., n)
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
    return _Route(omega, u, G, H)


_ROUTES = ((CauchyLike, _cauchy_route), (HankelLike, _hankel_route), (ToeplitzLike, _shift_route),
           (VandermondeLike, _vandermonde_route), (LowRank, _low_rank_route))


class _Factorization:
    """The factored Cauchy-like form of every batch entry of a square W (or of its transpose)."""

    def __init__(self, W):
        self.transposed = isinstance(W, _Transposed)
        base = W.T if self.transposed else W
        self.W, self.bk = W, W._bk
        self.n = W.shape[0]
        self.batch_shape = tuple(W.batch_shape)
        self.out_real = not self._is_complex(W)
        compute = W._compute_dtype()[1]
        self.complex_dtype = self.bk.complex_dtype(compute)
        for cls, build in _ROUTES:
            if isinstance(base, cls):
                self.route = build(base, self.complex_dtype)
                break
        else:
            raise TypeError(f"ldr.solve has no method for {type(base).__name__}")
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
        bk, route = self.bk, self.route
        v, u = self._entries(route.v, 1), self._entries(route.u, 1)
        G, H = self._entries(route.G, 2), self._entries(route.H, 2)
        factors = []
        for i in range(G.shape[0]):
            lu = factor_cauchy_like(v[i], u[i], G[i], H[i], bk)
            pivots = bk.to_numpy(lu.pivots)
            where = "" if not self.batch_shape else f" (batch entry {np.unravel_index(i, self.batch_shape)})"
            if not np.all(np.isfinite(pivots)):
                raise SingularMatrixError(
                    f"the elimination on `W`'s generators overflowed{where}: W is singular or too "
                    "ill-conditioned for this dtype"
                )
            zero = np.flatnonzero(pivots == 0)
            if zero.size:
                raise SingularMatrixError(
                    f"`W` is singular{where}: pivot {int(zero[0])} of the elimination (partial "
                    "pivoting on the Cauchy-like form) is exactly zero"
                )
            factors.append(lu)
        return factors

    def solve_rows(self, b, transpose=False):
        """Solve for right-hand sides stored as rows: ``b`` complex, shape (..., k, n).

        The batch axes of ``b`` broadcast with the batch shape of W; the result has the
        broadcast batch shape.
        """
        bk, route, n = self.bk, self.route, self.n
        transpose = transpose != self.transposed
        y = route.right_inverse_T(b) if transpose else route.left(b)
        k = y.shape[-2]
        if not self.batch_shape:  # one factorisation: every row of every batch entry at once
            full = tuple(y.shape[:-2])
            Y = bk.swapaxes(y.reshape((-1, n)), -1, -2)
            z = bk.swapaxes(self.factors[0].solve(Y, transpose), -1, -2).reshape(full + (k, n))
        else:
            full = tuple(np.broadcast_shapes(self.batch_shape, tuple(y.shape[:-2])))
            y = bk.broadcast_to(y, full + (k, n))
            own = self.batch_shape
            parts = []
            for index in np.ndindex(*full):
                entry = tuple(i if s > 1 else 0 for i, s in zip(index[len(full) - len(own):], own))
                lu = self.factors[int(np.ravel_multi_index(entry, own))]
                parts.append(bk.expand_dims(bk.swapaxes(lu.solve(bk.swapaxes(y[index], -1, -2), transpose), -1, -2), 0))
            z = bk.concatenate(parts, axis=0).reshape(full + (k, n))
        return route.left_T(z) if transpose else route.right_inverse(z)

    def slogdet(self):
        """Per batch entry: (sign, a complex NumPy array; log|det|, a float NumPy array)."""
        phase, logabs = self.route.det_factor
        signs, logs = [], []
        for lu in self.factors:
            d = self.bk.to_numpy(lu.pivots).astype(complex)
            signs.append(lu.parity() * phase * np.prod(d / np.abs(d)))
            logs.append(float(np.sum(np.log(np.abs(d)))) + logabs)
        return np.array(signs).reshape(self.batch_shape), np.array(logs).reshape(self.batch_shape)


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
def _norm1_estimate(apply, apply_adjoint, batch, n, iterations=3):
    r"""Hager's estimate of :math:`\lVert M\rVert_1` per batch entry, with Higham's safeguard.

    ``apply``/``apply_adjoint`` map complex NumPy arrays (B, n) to (B, n). The estimate is a
    lower bound, in practice within a factor 3 (LAPACK's ``xLACN2`` follows the same scheme):
    at most ``iterations`` rounds of one product with M and one with :math:`M^H`, stopping
    when the maximising unit vector repeats, then the alternating vector
    :math:`x_i = (-1)^i (1 + i/(n-1))` as a last probe.
    """
    x = np.full((batch, n), 1.0 / n, dtype=complex)
    estimate = np.zeros(batch)
    previous = None
    for _ in range(iterations):
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
    else:
        estimate = np.maximum(estimate, np.abs(apply(x)).sum(axis=-1))
    alternating = (-1.0) ** np.arange(n) * (1 + np.arange(n) / max(n - 1, 1))
    probe = np.abs(apply(np.broadcast_to(alternating, (batch, n)).astype(complex))).sum(axis=-1)
    return np.maximum(estimate, 2 * probe / (3 * n))


def _condition_report(W, factorization, compute):
    """Estimated 1-norms of W and of its inverse per batch entry (NumPy arrays of the batch shape)."""
    bk = W._bk
    n, batch = W.shape[0], factorization.batch_shape
    count = max(1, int(np.prod(batch)))
    like = W._arrays()[0]

    def on_rows(function):
        def apply(x):  # x: (B, n) NumPy -> backend rows (*batch, 1, n) -> (B, n) NumPy
            rows = bk.asarray(x.reshape(batch + (1, n)), dtype=compute, like=like)
            return bk.to_numpy(function(rows)).reshape(count, n).astype(complex)

        return apply

    def matvec(rows, transpose=False):
        M = W.T if transpose else W
        return bk.swapaxes(M @ bk.swapaxes(rows, -1, -2), -1, -2)

    norm_W = _norm1_estimate(
        on_rows(matvec), on_rows(lambda z: bk.conj(matvec(bk.conj(z), transpose=True))), count, n
    )
    norm_inv = _norm1_estimate(
        on_rows(factorization.solve_rows),
        on_rows(lambda z: bk.conj(factorization.solve_rows(bk.conj(z), transpose=True))),
        count,
        n,
    )
    return norm_W.reshape(batch), norm_inv.reshape(batch)


def _warn_if_inaccurate(W, factorization, compute, rows_b, rows_x, residual):
    bk = W._bk
    eps = bk.eps(compute)
    norm_W, norm_inv = _condition_report(W, factorization, compute)
    with np.errstate(divide="ignore"):
        rcond = 1.0 / (norm_W * norm_inv)
    worst = int(np.argmin(rcond.reshape(-1))) if rcond.size else 0
    where = f" (batch entry {np.unravel_index(worst, rcond.shape)})" if rcond.ndim else ""
    # Below n eps the factorisation's own rounding (about n eps relative) masks the smallest
    # singular value: the estimate then cannot tell "nearly singular" from "singular".
    threshold = W.shape[0] * eps
    if rcond.size and float(rcond.reshape(-1)[worst]) < threshold:
        warnings.warn(
            f"`W` is ill-conditioned{where}: estimated rcond = {float(rcond.reshape(-1)[worst]):.3g} "
            f"(1-norm condition number about {1 / max(float(rcond.reshape(-1)[worst]), 1e-300):.3g}) "
            f"is below n * eps = {threshold:.3g}; the solution may be inaccurate",
            LinAlgWarning,
            stacklevel=3,
        )
        return
    # Backward error of every column, ||b - W x||_1 / (||W||_1 ||x||_1 + ||b||_1).
    r, x, b = (np.abs(bk.to_numpy(a)).sum(axis=-1) for a in (residual, rows_x, rows_b))
    scale = norm_W[..., None] * x + b  # norm_W has W's batch shape, x (..., *batch, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        eta = np.where(scale > 0, r / np.where(scale > 0, scale, 1), 0.0)
    if eta.size and float(eta.max()) > math.sqrt(eps):
        warnings.warn(
            f"ldr.solve lost accuracy: backward error {float(eta.max()):.3g} > sqrt(eps) after "
            f"refinement (estimated rcond {float(rcond.reshape(-1)[worst]):.3g}); the elimination on "
            "the generators suffered growth. Increase `refine` or solve densely",
            LinAlgWarning,
            stacklevel=3,
        )


# -- public functions -------------------------------------------------------------------------------
def _solve_rows(W, factorization, rows, refine, check, compute):
    """x (rows) with ``refine`` steps of iterative refinement and the optional accuracy check."""
    bk = W._bk

    def residual(x):
        return rows - bk.swapaxes(W @ bk.swapaxes(x, -1, -2), -1, -2)

    x = factorization.solve_rows(rows)
    r = None
    for _ in range(refine):
        r = residual(x)
        x = x + factorization.solve_rows(r)
    if check:
        _warn_if_inaccurate(W, factorization, compute, rows, x, residual(x))
    return x


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
        factors (:math:`O(n^2)`).
    check : bool, default True
        Estimate the condition number (Hager's 1-norm estimator: at most 7 solves and 7 fast products) and
        the backward error of the result, and warn when they say the result may be inaccurate.

    Returns
    -------
    array, shape of ``b`` (batch axes broadcast)
        Real when W and b are real (the computation runs in complex arithmetic).

    Raises
    ------
    SingularMatrixError
        When a pivot is exactly zero (W singular), or W is low-rank with r < n.

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
    backward-error check guard against. On torch, gradients reach ``b`` and the generators
    (and nodes) through one transposed solve and one fast product in the backward pass.
    See :doc:`/theory/solvers`.

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
    out, compute = W._compute_dtype(b.dtype)
    out = bk.operand_dtypes(W._arrays()[0].dtype, b.dtype, out)
    complex_dtype = bk.complex_dtype(compute)
    rows = bk.expand_dims(b, -2) if vector else bk.swapaxes(b, -1, -2)
    rows = bk.cast(rows, complex_dtype)
    if _needs_graph(bk, b, *W._arrays()):
        from ._solve_autograd import solve_with_gradient

        x = solve_with_gradient(W, rows, refine, check, complex_dtype)
    else:
        x = _solve_rows(W, _Factorization(W), rows, refine, check, complex_dtype)
    if bk.dtype_kind(out) != "c":
        x = bk.real(x)
    x = bk.cast(x, out)
    return x[..., 0, :] if vector else bk.swapaxes(x, -1, -2)


def inv(W, *, refine=1, check=True):
    r"""The inverse as an LDR matrix for the swapped operator pair (B, A), with the same rank r.

    Parameters
    ----------
    W : LDRMatrix, shape (..., n, n)
        Toeplitz-like or Cauchy-like (or a transpose of one): the classes whose swapped pair is
        a class of the library.
    refine, check
        As in :func:`solve`.

    Returns
    -------
    LDRMatrix
        :math:`W^{-1}` with :math:`B W^{-1} - W^{-1} A = (-W^{-1} G)(H W^{-1})`; its products
        are fast again.

    Raises
    ------
    TypeError
        For Hankel-like and Vandermonde-like matrices: the swapped pairs
        :math:`(Z_f^T, Z_e)` and :math:`(Z_f, \operatorname{diag}(v))` are not classes of the
        library (use :func:`solve` for them).
    SingularMatrixError
        As in :func:`solve`.

    Notes
    -----
    From :math:`AW - WB = GH`, multiplying by :math:`W^{-1}` on both sides gives
    :math:`W^{-1}A - BW^{-1} = W^{-1}GHW^{-1}`. One factorisation serves the r solves with W
    (for :math:`W^{-1}G`) and the r with :math:`W^T` (for :math:`HW^{-1} = (W^{-T}H^T)^T`):
    :math:`O(r n^2)` in all. See :doc:`/theory/solvers`.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> W = ldr.toeplitz(np.array([4.0, 1.0, 0.5]), np.array([4.0, 2.0, 0.3]))
    >>> Winv = ldr.inv(W)
    >>> (Winv.A.f, Winv.B.f), Winv.rank
    ((-1.0, 1.0), 2)
    >>> bool(np.allclose(Winv.dense(), np.linalg.inv(W.dense())))
    True
    """
    _check_square(W, "inv")
    if isinstance(W, _Transposed):
        return inv(W.T, refine=refine, check=check).T
    if not isinstance(W, (ToeplitzLike, CauchyLike, LowRank)):
        raise TypeError(
            f"inv: the inverse of a {type(W).__name__} is structured for the swapped pair "
            f"(B, A) = ({W.B!r}, {W.A!r}), which is not a class of ldr; use ldr.solve(W, b)"
        )
    _structure_for(W.B, W.A)
    G_inv = -solve(W, W.G, refine=refine, check=check)
    H_inv = W._bk.swapaxes(solve(W.T, W._bk.swapaxes(W.H, -1, -2), refine=refine, check=False), -1, -2)
    return LDRMatrix(W.B, W.A, G_inv, H_inv)


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
    :math:`\det R / \det L` is known in closed form (:doc:`/theory/solvers`). No gradient: on
    torch, call it under ``torch.no_grad()`` when the generators require grad.

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
    if _needs_graph(bk, *W._arrays()):
        raise TypeError(
            "ldr.slogdet has no gradient, and these generators require grad: call it under "
            "torch.no_grad() (or detach them)"
        )
    try:
        factorization = _Factorization(W)
    except SingularMatrixError:
        batch = tuple(W.batch_shape)
        sign, logabs = np.zeros(batch), np.full(batch, -np.inf)
    else:
        sign, logabs = factorization.slogdet()
        if factorization.out_real:  # the phases cancel up to rounding
            sign = np.where(sign.real >= 0, 1.0, -1.0)
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
