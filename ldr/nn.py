r"""Torch modules whose weight is an LDR matrix: :class:`LDRLinear`.

``LDRLinear`` is a drop-in replacement for :class:`torch.nn.Linear` whose weight
:math:`W` (out × in) is stored by the generators of its displacement
:math:`A W - W B = G H` and applied with the fast products of :mod:`ldr`, never materialised
in the forward pass. Arguments are validated once, at construction; the forward pass builds
the :class:`~ldr.LDRMatrix` with the trusted constructors.

This module and :mod:`ldr.backends.torch` are the only ones that import torch; ``ldr.nn`` is
loaded lazily on first access.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
from scipy.fft import next_fast_len
from torch import nn
from torch.autograd.function import once_differentiable

from .backends import get_backend
from .cauchy_like import CauchyLike
from .low_rank import LowRank
from .ldrmatrix import LDRMatrix
from .operators import Diagonal, DisplacementOperator, Identity, Shift, Zero, check_nonsingular
from .toeplitz_like import HankelLike, ToeplitzLike, _transform_length, default_shift_pair
from .validation import format_shape
from .validation import as_positive_int

__all__ = ["LDRLinear", "STRUCTURES"]

#: The weight structures of :class:`LDRLinear`, with the keyword arguments each accepts.
STRUCTURES = {
    "low_rank": (),
    "toeplitz_like": ("e", "f"),
    "hankel_like": ("e", "f"),
    "vandermonde_like": ("f",),
    "cauchy_like": (),
    "circulant": ("f",),
}

_HALF = (torch.float16, torch.bfloat16)
_TABLES = ("vandermonde_real", "vandermonde_imag", "wrap_real", "wrap_imag")  # vandermonde_tables' keys
_CHUNK = 1 << 20  # elements per block in the O(N) and O(mn) gain sums (bounds their memory)


# -- fixed nodes --------------------------------------------------------------------------------
def vandermonde_nodes(m):
    r"""The fixed nodes of a real m-row Vandermonde-like weight: the m-th roots of −1, one per conjugate pair.

    Returns the :math:`h = \lceil m/2 \rceil` complex nodes :math:`w_i = e^{i\pi(2i+1)/m}`, i < h:
    the :math:`p = \lfloor m/2 \rfloor` roots of :math:`w^m = -1` in the upper half plane, each
    standing for itself and its conjugate (two real rows of the weight: the real and the
    imaginary part of one complex row), then :math:`w_p = -1` (exactly) when m is odd.

    Notes
    -----
    On the unit circle every power has modulus 1, and :math:`V(w)` is a section of a scaled DFT
    matrix, so :math:`\kappa(V) \le \sqrt 2` at every size; real nodes give an exponentially
    ill-conditioned V (:doc:`/theory/stability`). The real operator with these eigenvalues is
    :math:`A = \begin{bmatrix} C & -S \\ S & C \end{bmatrix} \oplus (-1)`,
    :math:`C, S = \operatorname{diag}(\cos, \sin)(\arg w_i)`; see :func:`paired_vandermonde_dense`.

    Examples
    --------
    >>> from ldr.nn import vandermonde_nodes
    >>> vandermonde_nodes(4).round(4)
    array([ 0.7071+0.7071j, -0.7071+0.7071j])
    >>> vandermonde_nodes(3).round(4)
    array([ 0.5+0.866j, -1. +0.j   ])
    """
    return _paired_nodes(m)


def cauchy_nodes(m, n):
    r"""The fixed interlaced nodes of a Cauchy-like layer: ``v_i = i`` and ``u_j = j + 1/2``.

    Every gap :math:`|v_i - u_j|` is at least 1/2, and :math:`C_{ij} = 1/(i - j - 1/2)` is a
    section of the discrete Hilbert kernel, whose symbol has constant modulus, so the Cauchy
    factor is well conditioned for every size (unlike nodes squeezed into a fixed interval).

    Examples
    --------
    >>> from ldr.nn import cauchy_nodes
    >>> v, u = cauchy_nodes(3, 2)
    >>> v, u
    (array([0., 1., 2.]), array([0.5, 1.5]))
    """
    return np.arange(m, dtype=float), np.arange(n, dtype=float) + 0.5


# -- real Vandermonde-like weights on the unit circle (shared with hydra.blocks) --------------------
def _root_of_minus_one(a, m):
    """``exp(iπ a / m)`` for integers a, reduced mod 2m first; exact on the axes (1, i, −1, −i)."""
    a = np.mod(np.asarray(a, dtype=np.int64), 2 * m)
    out = np.exp(1j * np.pi * a / m)
    on_axis = (2 * a) % m == 0
    out[on_axis] = np.array([1, 1j, -1, -1j])[((2 * a[on_axis]) // m) % 4]
    return out


def _paired_nodes(m):
    """The ⌈m/2⌉ nodes exp(iπ(2i+1)/m), i < ⌈m/2⌉: one per conjugate pair, then −1 (m odd)."""
    return _root_of_minus_one(2 * np.arange(m - m // 2) + 1, m)


def vandermonde_shift(m, n):
    r"""The column operator :math:`Z_f` of a real m×n Vandermonde-like weight: f in {1, −1}.

    The pair :math:`(A, Z_f)` (A with eigenvalues the m-th roots of −1, :func:`vandermonde_nodes`)
    is nonsingular when no :math:`w_i^n` equals f; this picks the f in {1, −1} that maximises
    :math:`\min_i |w_i^n - f|` (ties: f = 1). With :math:`w_i^n = e^{i\pi(2i+1)n/m}` an exact hit
    needs m/gcd(m, n) odd, and then every hit has the sign of :math:`(-1)^{n/\gcd(m, n)}`, so one of
    the two values is always safe. Square weights get f = 1 (:math:`w^n = -1`, distance 2).

    Examples
    --------
    >>> from ldr.nn import vandermonde_shift
    >>> vandermonde_shift(8, 8), vandermonde_shift(3, 2), vandermonde_shift(3, 1)
    (1.0, -1.0, 1.0)
    """
    powers = _root_of_minus_one(n * (2 * np.arange(m - m // 2) + 1), m)
    return 1.0 if np.min(np.abs(powers - 1.0)) >= np.min(np.abs(powers + 1.0)) else -1.0


def vandermonde_tables(m, n, f):
    r"""The fixed tables of a real m×n Vandermonde-like weight, as float64 CPU tensors.

    Real tensors (a module casts its buffers to its dtype, which would drop an imaginary part):
    ``vandermonde_real``, ``vandermonde_imag`` of shape (h, n), :math:`h = \lceil m/2 \rceil`,
    hold :math:`w_i^j` for the nodes of :func:`vandermonde_nodes`; ``wrap_real``, ``wrap_imag``
    of shape (h,) hold :math:`q_i = f w_i^{-n}`. Powers are reduced modulo :math:`2m` before the
    exponential, so every entry is accurate to a rounding error whatever n.

    Examples
    --------
    >>> from ldr.nn import vandermonde_tables
    >>> t = vandermonde_tables(2, 3, 1.0)
    >>> t["vandermonde_real"].numpy().round(4), t["vandermonde_imag"].numpy().round(4)
    (array([[ 1.,  0., -1.]]), array([[0., 1., 0.]]))
    """
    h = m - m // 2
    odd = 2 * np.arange(h) + 1
    V = _root_of_minus_one(odd[:, None] * np.arange(n)[None, :], m)
    q = f * _root_of_minus_one(-n * odd, m)
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return {"vandermonde_real": as_t(V.real), "vandermonde_imag": as_t(V.imag),
            "wrap_real": as_t(q.real), "wrap_imag": as_t(q.imag)}


def _complex_rows(G, m):
    """Real rows (..., m, R) laid out [Re of pairs, Im of pairs, real node] -> complex (..., h, R)."""
    p = m // 2
    real = torch.cat([G[..., :p, :], G[..., 2 * p :, :]], -2)
    imag = torch.cat([G[..., p : 2 * p, :], torch.zeros_like(G[..., 2 * p :, :])], -2)
    return torch.complex(real, imag)


def _real_rows(Y, m, axis):
    """Complex (.., h, ..) along ``axis`` -> real (.., m, ..): [Re of pairs, Im of pairs, real node]."""
    p = m // 2
    return torch.cat([Y.real.narrow(axis, 0, p), Y.imag.narrow(axis, 0, p), Y.real.narrow(axis, p, Y.shape[axis] - p)], axis)


def _paired_work_dtype(dtype):
    # torch.complex needs float32/float64 halves; half precision computes in float32.
    return torch.float64 if dtype == torch.float64 else torch.float32


def paired_vandermonde_dense(G, H, tables):
    r"""Dense real Vandermonde-like matrices in the real-parametrised Krylov form (differentiable).

    Parameters
    ----------
    G : tensor, shape (..., m, R)
        Row scales, rows laid out as [Re of the p = ⌊m/2⌋ pairs, Im of the pairs, the real node].
    H : tensor, shape (..., R, n)
    tables : dict
        From the layer's fixed tables (``vandermonde_real``/``imag`` (h, n), ``wrap_real``/``imag`` (h,)).

    Returns
    -------
    tensor, shape (..., m, n)

    Notes
    -----
    With :math:`\tilde g_l = a_l + i b_l` (complex row scales, one per node) the complex rows are
    :math:`Y = \sum_l \operatorname{diag}(\tilde g_l) V(w) C_f(J h_l)`, and the real matrix stacks
    :math:`\operatorname{Re} Y` and :math:`\operatorname{Im} Y` of the pairs. With the partial sums
    :math:`p_K(w) = \sum_{t \le K} h_{n-1-t} w^t` and :math:`q = f w^{-n}`,
    :math:`(V C_f(u))_{ij} = w_i^j \big((1 - q_i)\, p_{n-1-j}(w_i) + q_i\, p_{n-1}(w_i)\big)`:
    one cumulative sum, :math:`O(R\, m n)`; every factor has modulus at most 1 (:doc:`/theory/stability`).
    """
    out_dtype, work = G.dtype, _paired_work_dtype(G.dtype)
    table = lambda name: tables[name].to(device=G.device, dtype=work)  # noqa: E731 (a no-op for a layer's buffers)
    V = torch.complex(table("vandermonde_real"), table("vandermonde_imag"))  # (h, n)
    q = torch.complex(table("wrap_real"), table("wrap_imag")).unsqueeze(-1)  # (h, 1)
    return _PairedVandermondeDense.apply(G.to(work), H.to(work), V, q).to(out_dtype)


def _wrapped_partial_sums(E, q):
    """``(1 - q) * flip(cumsum(E)) + q * sum(E)`` along the last axis (both passes of the build)."""
    S = E.cumsum(-1)
    return (1 - q) * S.flip(-1) + q * S[..., -1:]


class _PairedVandermondeDense(torch.autograd.Function):
    r"""The build of :func:`paired_vandermonde_dense` with its adjoint written out.

    The sum over the R rank terms comes first: :math:`P = \tilde G\, (H J)` (complex (h, n), R
    inner), :math:`Y = V \circ \mathcal S(V \circ P)` with
    :math:`\mathcal S(E) = (1 - q) \circ \operatorname{flip}(\operatorname{cumsum} E) + q \sum E`.
    :math:`\mathcal S` is its own adjoint up to conjugating q, so the backward pass is
    :math:`dP = \bar V \circ \mathcal S_{\bar q}(\bar V \circ dY)`,
    :math:`d\tilde G = dP\, (HJ)^T`, :math:`d(HJ) = \operatorname{Re}(\tilde G^H dP)`: a few
    passes over (h, n) each way instead of autograd through R complex (h, n) intermediates.
    """

    @staticmethod
    def forward(ctx, G, H, V, q):
        m = G.shape[-2]
        Gc, Hf = _complex_rows(G, m), H.flip(-1)
        P = torch.complex(Gc.real @ Hf, Gc.imag @ Hf)
        ctx.save_for_backward(G, H, V, q)
        ctx.m, ctx.shapes = m, (G.shape, H.shape)
        return _real_rows(V * _wrapped_partial_sums(V * P, q), m, -2)

    @staticmethod
    def backward(ctx, dout):
        # Plain torch operations: a double backward differentiates through them.
        G, H, V, q = ctx.saved_tensors
        m, p = ctx.m, ctx.m // 2
        Gc, Hf = _complex_rows(G, m), H.flip(-1)  # from the saved inputs, so a double backward sees them
        imag = torch.cat([dout[..., p : 2 * p, :], torch.zeros_like(dout[..., 2 * p :, :])], -2)
        dY = torch.complex(torch.cat([dout[..., :p, :], dout[..., 2 * p :, :]], -2), imag)
        Vc = V.conj()
        dP = Vc * _wrapped_partial_sums(Vc * dY, q.conj())
        dG = dH = None
        if ctx.needs_input_grad[0]:
            dGc = torch.complex(dP.real @ Hf.transpose(-1, -2), dP.imag @ Hf.transpose(-1, -2))
            dG = _real_rows(dGc, m, -2).sum_to_size(ctx.shapes[0])
        if ctx.needs_input_grad[1]:
            dH = (Gc.real.transpose(-1, -2) @ dP.real + Gc.imag.transpose(-1, -2) @ dP.imag).flip(-1)
            dH = dH.sum_to_size(ctx.shapes[1])
        return dG, dH, None, None


def paired_vandermonde_matvec(G, H, tables, x, f):
    r"""Products of real-parametrised Krylov-form Vandermonde-like matrices with vectors.

    ``G`` ``(*B, m, R)``, ``H`` ``(*B, R, n)`` and ``x`` ``(..., *B, n)`` broadcast together;
    returns ``(..., *B, m)`` (no sum over any batch axis). R products :math:`C_f(J h_l) x` by FFT (a linear
    convolution folded with f), two real GEMMs with :math:`\operatorname{Re} V` and
    :math:`\operatorname{Im} V`, and the complex row scales: :math:`O(R\, m n)` per vector.
    """
    out_dtype, work = x.dtype, _paired_work_dtype(torch.promote_types(G.dtype, x.dtype))
    m, n = G.shape[-2], H.shape[-1]
    L = next_fast_len(2 * n, real=True)
    spectrum = torch.fft.rfft(H.to(work).flip(-1), n=L)  # (*B, R, F)
    c = torch.fft.irfft(spectrum * torch.fft.rfft(x.to(work), n=L).unsqueeze(-2), n=L)  # (..., *B, R, L)
    t = c[..., :n] + f * c[..., n : 2 * n] if f != 0 else c[..., :n]  # C_f(J h_l) x
    z = torch.complex(t @ tables["vandermonde_real"].to(work).T, t @ tables["vandermonde_imag"].to(work).T)
    y = (_complex_rows(G.to(work), m).transpose(-1, -2) * z).sum(-2)  # (..., *B, h)
    return _real_rows(y, m, -1).to(out_dtype)


# -- initialisation gains ---------------------------------------------------------------------------
def shift_pair_gain(m, n, e, f):
    r"""Mean entry variance of a (Z_e, Z_f) LDR matrix with one rank term of unit-variance generators.

    For ``W = W(g h^T)`` with independent zero-mean unit-variance entries of ``g`` (m) and
    ``h`` (n), returns :math:`\kappa = \frac{1}{mn} \mathbb{E}\,\|W\|_F^2`.

    Notes
    -----
    Telescoping gives :math:`W = \alpha^{-1} \sum_{k<N} Z_e^k\, g h^T Z_f^{N-1-k}`,
    :math:`N = \operatorname{lcm}(m, n)`, :math:`\alpha = e^{N/m} - f^{N/n}`. Each power of a
    shift is a weighted permutation (or part of one), and distinct k put their rank-one terms
    on distinct entries (Chinese remainders), so no cross terms survive in expectation:

    .. math:: \kappa = \frac{1}{|\alpha|^2 m n} \sum_{k<N} \|Z_e^k\|_F^2 \, \|Z_f^{N-1-k}\|_F^2,
              \qquad \|Z_e^{qm+s}\|_F^2 = |e|^{2q}\,(m - s + s|e|^2).

    Square with :math:`|e| = |f| = 1`: :math:`\kappa = n / |e - f|^2` (n/4 for (1, −1));
    rectangular (1, 0): :math:`\kappa = (n + 1)/2`. Hankel-like matrices are these times the
    reversal, with the same κ. Cost O(lcm(m, n)).

    Examples
    --------
    >>> from ldr.nn import shift_pair_gain
    >>> shift_pair_gain(8, 8, 1.0, -1.0), shift_pair_gain(6, 4, 1.0, 0.0)
    (2.0, 2.5)
    """
    N = math.lcm(m, n)
    ae, af = abs(e) ** 2, abs(f) ** 2
    total = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, N, _CHUNK):
            k = np.arange(start, min(N, start + _CHUNK))
            qe, se = np.divmod(k, m)
            qf, sf = np.divmod(N - 1 - k, n)
            # 0.0 ** 0 == 1: with f = 0 only the terms without wrap-around survive.
            norm_e = np.power(ae, qe) * ((m - se) + se * ae)
            norm_f = np.power(af, qf) * ((n - sf) + sf * af)
            total += float(np.sum(norm_e * norm_f))
        kappa = total / (abs(e ** (N // m) - f ** (N // n)) ** 2 * m * n)
    if not (math.isfinite(kappa) and kappa > 0):
        raise ValueError(
            f"cannot scale the initialisation for e = {e}, f = {f} at size {m}×{n}: the entries "
            "of W overflow (use |e|, |f| <= 1)"
        )
    return kappa


def vandermonde_row_gains(v, n, f):
    r"""Per-row mean entry variance of a Krylov-form Vandermonde-like matrix, one rank term.

    For :math:`W = \operatorname{diag}(g) V(v) C_f(J h)` with unit-variance ``g``, ``h``,
    returns :math:`\kappa_i = \frac{1}{n}\mathbb{E}\sum_j W_{ij}^2` for each row i.

    Notes
    -----
    :math:`W_{ij} = g_i \sum_k v_i^k C_f(Jh)_{kj}` and column j of :math:`C_f(Jh)` holds each
    entry of h once, weighted 1 on and below the diagonal and f above it, so

    .. math:: \kappa_i = \frac{1}{n} \sum_{k<n} |v_i|^{2k} \big((k + 1) + |f|^2 (n - 1 - k)\big).

    Cost O(mn).

    Examples
    --------
    >>> import numpy as np
    >>> from ldr.nn import vandermonde_row_gains
    >>> vandermonde_row_gains(np.array([0.0, 1.0]), 3, 0.0)
    array([0.33333333, 2.        ])
    """
    v = np.abs(np.asarray(v, dtype=float))
    k = np.arange(n)
    weight = (k + 1) + abs(f) ** 2 * (n - 1 - k)
    rows = max(1, _CHUNK // n)
    out = np.empty(v.shape[0])
    for start in range(0, v.shape[0], rows):
        block = v[start : start + rows, None]
        out[start : start + rows] = np.power(block, 2 * k) @ weight / n
    return out


def cauchy_gain(v, u):
    r"""Mean entry variance of a Cauchy-like matrix with one unit-variance rank term.

    :math:`W_{ij} = g_i h_j / (v_i - u_j)`, so :math:`\kappa = \frac{1}{mn}\sum_{ij} (v_i - u_j)^{-2}`.

    Examples
    --------
    >>> import numpy as np
    >>> from ldr.nn import cauchy_gain
    >>> float(cauchy_gain(np.array([0.0]), np.array([0.5, -0.5])))
    4.0
    """
    v, u = np.asarray(v, dtype=float), np.asarray(u, dtype=float)
    rows = max(1, _CHUNK // u.shape[0])
    total = 0.0
    for start in range(0, v.shape[0], rows):
        total += float(np.sum((v[start : start + rows, None] - u[None, :]) ** -2.0))
    return total / (v.shape[0] * u.shape[0])


# -- the Krylov form of Vandermonde-like matrices ----------------------------------------------------
def _diagonal(v):
    """``Diagonal(v)`` without its finiteness check (a device sync): v is a validated buffer."""
    op = object.__new__(Diagonal)
    op.v, op.size = v, int(v.shape[-1])
    return op


class _PairRotation(DisplacementOperator):
    """The real m×m operator whose eigenvalues are the m-th roots of −1 (:func:`vandermonde_nodes`).

    Rows (i, p + i), i < p = ⌊m/2⌋, are rotated by :math:`\arg w_i`; row 2p (m odd) is negated.
    """

    def __init__(self, m, sign=1.0):
        self.size, self._sign = int(m), float(sign)
        w = _paired_nodes(self.size)[: self.size // 2]
        self._cos, self._sin = w.real, self._sign * w.imag

    def __repr__(self):
        return f"PairRotation({self.size})" + (".T" if self._sign < 0 else "")

    @property
    def T(self):
        return _PairRotation(self.size, -self._sign)

    def dense(self, dtype=None, like=None):
        m, p = self.size, self.size // 2
        A = np.zeros((m, m))
        A[:p, :p] = A[p : 2 * p, p : 2 * p] = np.diag(self._cos)
        A[:p, p : 2 * p], A[p : 2 * p, :p] = -np.diag(self._sin), np.diag(self._sin)
        if m % 2:
            A[-1, -1] = -1.0
        return get_backend(like).asarray(A, dtype=dtype, like=like)

    def eigenvalues(self):
        w = _paired_nodes(self.size)
        p = self.size // 2
        return np.concatenate([w[:p], np.conj(w[:p]), w[p:]])

    def _rotate(self, X, axis, sign):
        bk = get_backend(X)
        p = self.size // 2
        shape = [1] * X.ndim
        shape[axis] = p
        c = bk.asarray(self._cos.reshape(shape), dtype=X.dtype, like=X)
        s = sign * bk.asarray(self._sin.reshape(shape), dtype=X.dtype, like=X)
        take = lambda start, stop: X[(slice(None),) * (X.ndim + axis) + (slice(start, stop),)]  # noqa: E731
        re, im, rest = take(0, p), take(p, 2 * p), take(2 * p, None)
        return bk.concatenate([c * re - s * im, s * re + c * im, -rest], axis=axis)

    def left(self, X):
        return self._rotate(X, -2, 1.0)

    def right(self, X):
        # X A acts on the columns with A^T: the rotation by the opposite angle.
        return self._rotate(X, -1, -1.0)


class _RealVandermondeLike(LDRMatrix):
    r"""A real Vandermonde-like matrix in real-parametrised Krylov form (:func:`paired_vandermonde_dense`).

    :math:`A W - W Z_f = G H` with A the pair rotation (eigenvalues: the m-th roots of −1) and
    the Sylvester generator G = real rows of :math:`\tilde g \odot (w^n - f)`, formed for the
    displacement equation only; the products use the row scales :math:`\tilde G` directly.
    """

    @classmethod
    def _from_krylov(cls, row_scales, H, tables, B):
        """From row scales (..., m, r), H (..., r, n), the fixed tables and B = Shift(n, f); trusted."""
        self = object.__new__(cls)
        m = row_scales.shape[-2]
        self._krylov_G, self._tables = row_scales, tables
        work = _paired_work_dtype(row_scales.dtype)
        gap = torch.as_tensor(_root_of_minus_one(B.size * (2 * np.arange(m - m // 2) + 1), m) - B.f,
                              device=row_scales.device)
        gap = torch.complex(gap.real.to(work), gap.imag.to(work))
        G = _real_rows(_complex_rows(row_scales.to(work), m) * gap.unsqueeze(-1), m, -2).to(row_scales.dtype)
        self._init_trusted(_PairRotation(m), B, G, H, get_backend(row_scales, H))
        return self

    @classmethod
    def _trusted(cls, A, B, G, H):  # pragma: no cover - only built from the Krylov form
        raise TypeError("a real Vandermonde-like matrix is built with _from_krylov")

    def _setup(self):
        self.f = self.B.f

    def _scalars(self):
        return (self.f,)

    def _repr_items(self):
        return (("f", self.f),)

    def _cache_sources(self):
        return [self._krylov_G, self.H]

    def _matvec(self, x):
        return paired_vandermonde_matvec(self._cast(self._krylov_G, x.dtype), self._cast(self.H, x.dtype),
                                         self._tables, x, self.f)

    def _rmatvec(self, x):
        # W^T x through the dense matrix: O(r m n) to build, the order of the forward product.
        return torch.matmul(x.unsqueeze(-2), self._dense(x.dtype)).squeeze(-2)

    def _dense(self, dtype):
        return paired_vandermonde_dense(self._cast(self._krylov_G, dtype), self._cast(self.H, dtype), self._tables)

    def _insert_batch_axis(self):
        bk = self._bk
        return type(self)._from_krylov(bk.expand_dims(self._krylov_G, -3), bk.expand_dims(self.H, -3), self._tables, self.B)


# -- the square Toeplitz-like product with a spectra-reusing backward ------------------------------
def _unfold(w, length, weight):
    """Adjoint of the fold ``y_i = c_i + weight c_{i+n}``: w (..., n) -> c (..., length), zero-padded.

    ``length == n`` is a circular convolution (weight 1): no fold, so no unfold either.
    """
    n = w.shape[-1]
    if length == n:
        return w
    c = torch.nn.functional.pad(w, (0, length - n))
    if weight != 0 and n > 1:
        c[..., n : 2 * n - 1] = weight * w[..., : n - 1]
    return c


def _fold(c, n, weight):
    """``y_i = c_i + weight c_{i+n}`` for a linear convolution ``c`` of length >= 2n - 1 (else c as is).

    In place: ``c`` is a fresh inverse-FFT output owned by the caller (no autograd records it).
    """
    if c.shape[-1] == n:
        return c
    if weight != 0 and n > 1:
        c[..., : n - 1].add_(c[..., n : 2 * n - 1], alpha=weight)
    return c[..., :n]


class _SquareToeplitzLike(torch.autograd.Function):
    r"""``y = W x`` for a square :math:`(Z_e, Z_f)` Toeplitz-like W, with a backward that reuses the forward's spectra.

    :math:`W = (e - f)^{-1} \sum_l C_e(g_l) C_f(J h_l)`, and every f-circulant product is a
    (folded) convolution whose adjoint is a correlation by the same transforms:
    :math:`C_e(v)^T w = \mathcal{F}^{-1}(\overline{\hat v}\, \widehat{U_e w})_{:n}`, with
    :math:`U_e` the adjoint of the fold. With :math:`t_l = C_f(Jh_l) x`,
    :math:`\tilde g = g / (e - f)` and :math:`C_e(g) t = C_e(t) g`:

    .. math::

        dt_l = C_e(\tilde g_l)^T dy, \quad d\tilde g_l = \textstyle\sum_b C_e(t_l)^T dy, \quad
        dx = \textstyle\sum_l C_f(Jh_l)^T dt_l, \quad d(Jh_l) = \textstyle\sum_b C_f(x)^T dt_l.

    The spectra of :math:`\tilde g_l`, :math:`Jh_l`, x and :math:`t_l` are kept from the
    forward pass, and the batch sums of the generator gradients are taken in the frequency
    domain: the backward runs 2b(r + 1) + 2r transforms for b rows, none recomputed.
    """

    @staticmethod
    def forward(ctx, x, G, H, e, f):
        n = x.shape[-1]
        le, lf = _transform_length(n, e), _transform_length(n, f)
        ghat = torch.fft.rfft(G.t(), n=le) / (e - f)  # (r, Fe)
        jhhat = torch.fft.rfft(H.flip(-1), n=lf)  # (r, Ff)
        xhat = torch.fft.rfft(x, n=lf)  # (b, Ff)
        t = _fold(torch.fft.irfft(jhhat * xhat.unsqueeze(-2), n=lf), n, f)  # (b, r, n)
        that = torch.fft.rfft(t, n=le)  # (b, r, Fe)
        y = _fold(torch.fft.irfft((ghat * that).sum(-2), n=le), n, e)
        ctx.save_for_backward(ghat, jhhat, xhat, that)
        ctx.sizes = (n, le, lf, e, f)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        ghat, jhhat, xhat, that = ctx.saved_tensors
        n, le, lf, e, f = ctx.sizes
        need_x, need_g, need_h = ctx.needs_input_grad[:3]
        dx = dG = dH = None
        dyhat = torch.fft.rfft(_unfold(dy, le, e), n=le)  # (b, Fe)
        if need_g:
            dg = torch.fft.irfft((that.conj() * dyhat.unsqueeze(-2)).sum(0), n=le)[..., :n]  # (r, n)
            dG = (dg / (e - f)).t()
        if need_x or need_h:
            dt = torch.fft.irfft(ghat.conj() * dyhat.unsqueeze(-2), n=le)[..., :n]  # (b, r, n)
            dthat = torch.fft.rfft(_unfold(dt, lf, f), n=lf)  # (b, r, Ff)
            if need_x:
                dx = torch.fft.irfft((jhhat.conj() * dthat).sum(-2), n=lf)[..., :n]
            if need_h:
                dH = torch.fft.irfft((xhat.conj().unsqueeze(-2) * dthat).sum(0), n=lf)[..., :n].flip(-1)
        return dx, dG, dH, None, None


def square_toeplitz_like_matvec(G, H, x, e, f):
    r"""``W x`` along the last axis for a square Toeplitz-like W, :math:`Z_e W - W Z_f = G H`, real e ≠ f.

    Parameters
    ----------
    G : tensor, shape (n, r)
    H : tensor, shape (r, n)
    x : tensor, shape (..., n)
        Float32 or float64, the dtype of G and H.
    e, f : float

    Returns
    -------
    tensor, shape (..., n)

    Notes
    -----
    The product of ``ldr.ToeplitzLike.matvec`` (2r + 2 real FFTs per row, the e = 1 side at
    length n when n is 5-smooth) as one autograd function whose backward reuses the forward's
    spectra: the gradient of a circulant product is a correlation by the same FFTs
    (:doc:`/theory/hydra_gradients`). Double backward raises ``RuntimeError``.

    Examples
    --------
    >>> import torch, ldr
    >>> from ldr.nn import square_toeplitz_like_matvec
    >>> G, H = torch.randn(8, 2, dtype=torch.float64), torch.randn(2, 8, dtype=torch.float64)
    >>> x = torch.randn(3, 8, dtype=torch.float64)
    >>> W = ldr.toeplitz_like(G, H)                       # (Z_1, Z_-1)
    >>> bool(torch.allclose(square_toeplitz_like_matvec(G, H, x, 1.0, -1.0), x @ W.dense().T))
    True
    """
    shape = x.shape
    y = _SquareToeplitzLike.apply(x.reshape(-1, shape[-1]), G, H, float(e), float(f))
    return y.reshape(shape)


# -- argument checks ----------------------------------------------------------------------------------
_check_features = as_positive_int  # the shared validator (ldr.validation)


def _check_real(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number (the layer has real weights); got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite; got {value}")
    return float(value)


def _vandermonde_collision(m, n, f):
    """Index of a node with w_i^n == f (the pair (A, Z_f) is then singular), or None."""
    powers = _root_of_minus_one(n * (2 * np.arange(m - m // 2) + 1), m)
    hits = np.flatnonzero(np.abs(powers - f) < 1e-12)
    return int(hits[0]) if hits.size else None


class LDRLinear(nn.Module):
    r"""A linear layer :math:`y = W x + b` whose weight is an LDR matrix of displacement rank r.

    Parameters
    ----------
    in_features : int
        Size n of each input sample.
    out_features : int
        Size m of each output sample.
    structure : str, default "toeplitz_like"
        One of ``"low_rank"`` (:math:`W = GH`), ``"toeplitz_like"`` (:math:`(Z_e, Z_f)`),
        ``"hankel_like"`` (:math:`(Z_e, Z_f^T)`), ``"vandermonde_like"``
        (:math:`(\operatorname{diag}(v), Z_f)`, fixed nodes), ``"cauchy_like"``
        (:math:`(\operatorname{diag}(v), \operatorname{diag}(u))`, fixed nodes) or
        ``"circulant"`` (square only, :math:`W = C_1(c)`).
    rank : int, optional
        Displacement rank r >= 1; default 4 (circulant: 1, its only value).
    bias : bool, default True
        Learn an additive bias.
    device, dtype : optional
        Where and in which floating dtype to create the parameters (as :class:`torch.nn.Linear`).
    **structure_kwargs
        ``e``, ``f`` (real) for ``"toeplitz_like"`` (default :func:`~ldr.default_shift_pair`:
        (1, −1) square, (1, 0) rectangular) and ``"hankel_like"`` (default (1, 0)); ``f`` for
        ``"vandermonde_like"`` (default :func:`vandermonde_shift`, +1 or −1, 1 when square; any
        real f with no :math:`w_i^n = f` is allowed, e.g. the HyDRA paper's f = 0, see
        :doc:`/theory/stability`) and ``"circulant"`` (default −1).

    Attributes
    ----------
    G : torch.nn.Parameter, shape (out_features, rank)
        Left generator. For ``"vandermonde_like"`` these are the real and imaginary parts of the
        Krylov-form row scales :math:`\tilde G` of the complex rows
        :math:`\sum_l \operatorname{diag}(\tilde g_l) V(w) C_f(J h_l)`, whose real and imaginary
        parts are the rows of W (:func:`paired_vandermonde_dense`, :doc:`/theory/stability`).
        Absent for ``"circulant"``.
    H : torch.nn.Parameter, shape (rank, in_features)
        Right generator (absent for ``"circulant"``).
    c : torch.nn.Parameter, shape (in_features,)
        First column of the circulant (``"circulant"`` only).
    bias : torch.nn.Parameter or None, shape (out_features,)
    row_nodes, column_nodes : torch.Tensor
        Fixed node buffers of ``"cauchy_like"`` (:func:`cauchy_nodes`), saved in the state dict.
    vandermonde_real, vandermonde_imag, wrap_real, wrap_imag : torch.Tensor
        Fixed tables of ``"vandermonde_like"`` (:func:`vandermonde_tables`; non-persistent: rebuilt
        from the sizes and f). Both kinds stay in at least float32 when the module is cast to half
        precision.

    Raises
    ------
    ValueError
        For an unknown structure (the message lists the valid ones), ``rank < 1``,
        non-positive sizes, a circulant with ``in_features != out_features``, or a singular
        operator pair (:class:`~ldr.SingularDisplacementError`).
    TypeError
        For non-integer sizes, unknown or non-real structure arguments, a non-float dtype.

    Notes
    -----
    Forward: ``W.matvec(x)`` on ``x`` of shape (..., in_features), e.g. 2r + 2 FFTs of length
    ``fft_length(n)`` per sample for a square Toeplitz-like weight, :math:`O(r n \log n)`
    instead of :math:`O(mn)`. Float16/bfloat16 inputs are computed in float32 and the output
    is cast back to the input's dtype (the dtype rule of :class:`~ldr.LDRMatrix`).
    Initialisation: see :meth:`reset_parameters`.

    ``torch.compile(layer)`` gives the eager results and gradients (tested), with graph
    breaks where the core calls ``scipy.fft.next_fast_len`` (FFT lengths) and, for rectangular
    Toeplitz-like weights, NumPy code with data-dependent shapes; inductor leaves the FFTs to
    aten. On a CPU (torch 2.13, one thread, n = 1024, r = 4, batch 64) it compiled in ~40 s
    and ran 1.6x (forward) and 1.3x (forward + backward) *slower* than eager, so there is no
    reason to compile this layer on a CPU.

    Examples
    --------
    >>> import torch, ldr
    >>> _ = torch.manual_seed(0)
    >>> layer = ldr.nn.LDRLinear(16, 16, structure="toeplitz_like", rank=2)
    >>> layer
    LDRLinear(in_features=16, out_features=16, structure='toeplitz_like', rank=2, bias=True, e=1.0, f=-1.0)
    >>> x = torch.randn(5, 16)
    >>> y = layer(x)
    >>> y.shape
    torch.Size([5, 16])
    >>> bool(torch.allclose(y, x @ layer.dense_weight().T + layer.bias, atol=1e-5))
    True
    """

    def __init__(
        self,
        in_features,
        out_features,
        structure="toeplitz_like",
        rank=None,
        bias=True,
        device=None,
        dtype=None,
        **structure_kwargs,
    ):
        super().__init__()
        n = self.in_features = _check_features(in_features, "in_features")
        m = self.out_features = _check_features(out_features, "out_features")
        if not isinstance(structure, str) or structure not in STRUCTURES:
            raise ValueError(
                f"`structure` must be one of {', '.join(map(repr, STRUCTURES))}; got {structure!r}"
            )
        self.structure = structure
        self.rank = self._check_rank(rank)
        self.structure_kwargs = self._check_structure_kwargs(structure_kwargs)
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"`dtype` must be a real floating torch dtype (the layer has real weights); got {dtype}")
        factory = {"device": device, "dtype": dtype}
        if structure == "circulant":
            if m != n:
                raise ValueError(
                    f"a circulant weight is square: `in_features` and `out_features` must be equal; "
                    f"got in_features={n}, out_features={m} (use 'toeplitz_like' for rectangular weights)"
                )
            self.c = nn.Parameter(torch.empty(n, **factory))
            unit = torch.zeros(1, n, **factory)
            unit[0, n - 1] = 1.0
            # H = e_{n-1}^T of ldr.circulant; rebuilt on load, so not part of the state_dict.
            self.register_buffer("_unit_row", unit, persistent=False)
        else:
            self.G = nn.Parameter(torch.empty(m, self.rank, **factory))
            self.H = nn.Parameter(torch.empty(self.rank, n, **factory))
        self._node_names = {"vandermonde_like": _TABLES, "cauchy_like": ("row_nodes", "column_nodes")}.get(
            structure, ()
        )
        reference = self.c if structure == "circulant" else self.G
        for name in self._node_names:
            # The Vandermonde tables follow from the sizes and f: rebuilt, not saved.
            self.register_buffer(name, self._make_node(name, reference.device, self._node_dtype(reference.dtype)),
                                 persistent=name not in _TABLES)
        if bias:
            self.bias = nn.Parameter(torch.empty(m, **factory))
        else:
            self.register_parameter("bias", None)
        self._check_operators()
        self._operators = self._shift_operators()
        self.reset_parameters()

    # -- construction helpers ---------------------------------------------------------------------
    def _check_rank(self, rank):
        if rank is None:
            return 1 if self.structure == "circulant" else 4
        if isinstance(rank, bool) or not isinstance(rank, numbers.Integral):
            raise TypeError(f"`rank` must be a positive integer; got {type(rank).__name__} {rank!r}")
        if rank < 1:
            raise ValueError(f"`rank` (the displacement rank r) must be at least 1; got {rank}")
        if self.structure == "circulant" and rank != 1:
            raise ValueError(f"a circulant has displacement rank 1: `rank` must be 1 or None; got {rank}")
        return int(rank)

    def _check_structure_kwargs(self, kwargs):
        allowed = STRUCTURES[self.structure]
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            valid = ", ".join(allowed) if allowed else "none"
            raise TypeError(
                f"unknown argument(s) {', '.join(map(repr, unknown))} for structure "
                f"{self.structure!r}; it accepts: {valid}"
            )
        m, n = self.out_features, self.in_features
        defaults = {
            "toeplitz_like": dict(zip(("e", "f"), default_shift_pair(m, n))),
            "hankel_like": {"e": 1.0, "f": 0.0},
            # |f| = 1 spreads each row's variance evenly over the columns (reset_parameters).
            "vandermonde_like": {"f": vandermonde_shift(m, n)},
            "circulant": {"f": -1.0},
        }.get(self.structure, {})
        return {k: _check_real(kwargs.get(k, v), k) for k, v in defaults.items()}

    def _check_operators(self):
        """Validate once that the operator pair has a unique solution (the forward trusts it)."""
        m, n, kw = self.out_features, self.in_features, self.structure_kwargs
        if self.structure in ("toeplitz_like", "hankel_like"):
            check_nonsingular(Shift(m, kw["e"]), Shift(n, kw["f"]))
        elif self.structure == "circulant":
            check_nonsingular(Shift(n, 1.0), Shift(n, kw["f"]))
        elif self.structure == "vandermonde_like":
            hit = _vandermonde_collision(m, n, kw["f"])
            if hit is not None:
                raise ValueError(
                    f"`f` = {kw['f']} equals w_{hit}**{n} for the fixed node w_{hit} = "
                    f"{complex(vandermonde_nodes(m)[hit])}, so (A, Z_f) is singular; choose another f "
                    f"(the default, {vandermonde_shift(m, n)}, is always safe)"
                )

    def _shift_operators(self):
        """The fixed shift operators, built once: their constructors' checks would break a
        ``torch.compile`` graph if run in every forward."""
        m, n, kw = self.out_features, self.in_features, self.structure_kwargs
        s = self.structure
        if s in ("toeplitz_like", "hankel_like"):
            return Shift(m, kw["e"]), Shift(n, kw["f"], transpose=s == "hankel_like")
        if s == "circulant":
            return Shift(n, 1.0), Shift(n, kw["f"])
        if s == "vandermonde_like":
            return None, Shift(n, kw["f"])
        if s == "low_rank":
            return Identity(m), Zero(n)
        return None, None

    @staticmethod
    def _node_dtype(dtype):
        return torch.float64 if dtype == torch.float64 else torch.float32

    def _make_node(self, name, device, dtype):
        m, n = self.out_features, self.in_features
        if name in _TABLES:
            values = vandermonde_tables(m, n, self.structure_kwargs["f"])[name]
        else:
            values = cauchy_nodes(m, n)[0 if name == "row_nodes" else 1]
        return torch.as_tensor(values, dtype=dtype, device=device)

    def _apply(self, fn, *args, **kwargs):
        module = super()._apply(fn, *args, **kwargs)
        # Nodes stay in at least float32: 4096 interlaced Cauchy nodes collide in float16/bfloat16
        # (a singular or infinite weight), and the powers w^j of the Vandermonde tables would
        # lose all but two or three digits.
        for name in self._node_names:
            buffer = getattr(self, name)
            if buffer.dtype in _HALF:
                setattr(self, name, self._make_node(name, buffer.device, torch.float32))
        return module

    # -- initialisation -----------------------------------------------------------------------------
    def reset_parameters(self):
        r"""Draw the generators so that the weight's entries have :class:`torch.nn.Linear`'s variance.

        ``nn.Linear`` draws :math:`W_{ij} \sim U(-a, a)`, :math:`a = 1/\sqrt{n}` (n = in_features),
        so :math:`\operatorname{Var} W_{ij} = \tau = 1/(3n)`; the bias is drawn the same way here.

        Notes
        -----
        :math:`W` is bilinear in (G, H) and each rank term contributes independently, so with
        independent zero-mean entries of variances :math:`\sigma_G^2, \sigma_H^2` the mean
        entry variance is :math:`r \kappa \sigma_G^2 \sigma_H^2`, where κ depends only on the
        structure and the sizes (derived in the gain functions of this module):

        * ``low_rank``: κ = 1;
        * ``toeplitz_like``, ``hankel_like``: κ = :math:`n/|e - f|^2` when square with :math:`|e| = |f| = 1`
          (n/4 for the default (1, −1)), (n + 1)/2 for (1, 0); any (e, f): :func:`shift_pair_gain`;
        * ``cauchy_like``: the mean of 1/(v_i − u_j)² (:func:`cauchy_gain`);
        * ``vandermonde_like``: :func:`vandermonde_row_gains` at :math:`|w_i| = 1`, the same for every
          row: κ = n for :math:`|f| = 1` (a pair's two rows, the real and imaginary parts of
          :math:`\tilde g_i z` with :math:`\tilde g_i = a + ib`, each have variance
          :math:`\sigma_G^2\, \mathbb E|z|^2`, as a real row does).

        G and H are balanced, :math:`\sigma_G^2 = \sigma_H^2 = \sqrt{\tau / (r\kappa)}`, and drawn
        uniformly, :math:`U(-\sqrt{3}\sigma, \sqrt{3}\sigma)`. Vandermonde-like weights use the
        per-row form :math:`\sigma_{G,i}^2 = \tau / (r \kappa_i \sigma_H^2)`,
        :math:`\sigma_H^2 = \sqrt{\tau / (r \bar\kappa)}` (equal rows here, as the nodes lie on
        the unit circle); with :math:`|f| = 1` (the default :func:`vandermonde_shift`) the variance is
        also spread evenly over the columns, while f = 0 puts more of it on the first columns.
        A circulant's entries are those of c, drawn as ``U(-a, a)``.
        The generators' own scale is :math:`(\tau/(r\kappa))^{1/4}`, e.g. 0.13 for a
        768×768 Toeplitz-like weight with r = 4. Uses the global torch RNG, like
        ``nn.Linear``.
        """
        m, n, r = self.out_features, self.in_features, self.rank
        tau = 1.0 / (3.0 * n)
        bound = 1.0 / math.sqrt(n)
        kw = self.structure_kwargs
        with torch.no_grad():
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)
            if self.structure == "circulant":
                self.c.uniform_(-bound, bound)
                return
            if self.structure == "vandermonde_like":
                kappa = vandermonde_row_gains(np.ones(m), n, kw["f"])  # |w_i| = 1: one gain for every row
                var_h = math.sqrt(tau / (r * float(np.mean(kappa))))
                var_g = torch.as_tensor(tau / (r * kappa * var_h), dtype=self.G.dtype, device=self.G.device)
                self.G.uniform_(-1.0, 1.0).mul_(torch.sqrt(3.0 * var_g)[:, None])
                self.H.uniform_(-math.sqrt(3.0 * var_h), math.sqrt(3.0 * var_h))
                return
            kappa = self._gain()
            limit = math.sqrt(3.0) * (tau / (r * kappa)) ** 0.25
            self.G.uniform_(-limit, limit)
            self.H.uniform_(-limit, limit)

    def _gain(self):
        """κ of :meth:`reset_parameters` for the structures with a single gain."""
        m, n, kw = self.out_features, self.in_features, self.structure_kwargs
        if self.structure == "low_rank":
            return 1.0
        if self.structure == "cauchy_like":
            return cauchy_gain(*(getattr(self, k).detach().cpu().double().numpy() for k in self._node_names))
        return shift_pair_gain(m, n, kw["e"], kw["f"])

    # -- the weight -------------------------------------------------------------------------------
    def ldr_matrix(self):
        r"""The weight as an :class:`~ldr.LDRMatrix` sharing this layer's parameters (differentiable).

        Returns
        -------
        LDRMatrix
            :class:`~ldr.LowRank`, :class:`~ldr.ToeplitzLike` (also for ``"circulant"``:
            ``G = (1 - f) c``, ``H = e_{n-1}^T`` as :func:`ldr.circulant`),
            :class:`~ldr.HankelLike`, a real Vandermonde-like matrix for the pair (A, Z_f) of
            :doc:`/theory/stability` (A: the rotations with eigenvalues :func:`vandermonde_nodes`;
            its ``G`` is the Sylvester generator, products use the Krylov form) or :class:`~ldr.CauchyLike`,
            of shape (out_features, in_features).

        Examples
        --------
        >>> import torch, ldr
        >>> layer = ldr.nn.LDRLinear(6, 4, structure="hankel_like", rank=1)
        >>> W = layer.ldr_matrix()
        >>> type(W).__name__, W.shape
        ('HankelLike', (4, 6))
        >>> D = W.dense()
        >>> bool(torch.allclose(ldr.displacement(W.A, W.B, D), W.G @ W.H, atol=1e-5))
        True
        """
        s, (A, B) = self.structure, self._operators
        if s == "low_rank":
            return LowRank._trusted(A, B, self.G, self.H)
        if s == "toeplitz_like":
            return ToeplitzLike._trusted(A, B, self.G, self.H)
        if s == "hankel_like":
            return HankelLike._trusted(A, B, self.G, self.H)
        if s == "circulant":
            G = (1.0 - B.f) * self.c.unsqueeze(-1)
            return ToeplitzLike._trusted(A, B, G, self._unit_row.to(G.dtype))
        if s == "vandermonde_like":
            tables = {name: getattr(self, name) for name in _TABLES}
            return _RealVandermondeLike._from_krylov(self.G, self.H, tables, B)
        return CauchyLike._trusted(_diagonal(self.row_nodes), _diagonal(self.column_nodes), self.G, self.H)

    def dense_weight(self):
        r"""The dense weight :math:`W` (out_features × in_features), differentiable.

        For inspection, merging or comparison with ``nn.Linear``; the forward pass never
        builds it.

        Returns
        -------
        torch.Tensor, shape (out_features, in_features)

        Examples
        --------
        >>> import torch, ldr
        >>> layer = ldr.nn.LDRLinear(5, 5, structure="circulant", bias=False)
        >>> W = layer.dense_weight()
        >>> c = layer.c.detach()
        >>> expected = torch.stack([torch.roll(c, j) for j in range(5)], dim=1)
        >>> bool(torch.allclose(W, expected, atol=1e-6))
        True
        """
        return self.ldr_matrix().dense()

    def forward(self, x):
        """``y = W x + b`` along the last axis of ``x`` (shape (..., in_features)).

        Half-precision inputs are computed in float32 and the output is cast back. A square
        ``"toeplitz_like"`` weight runs :func:`square_toeplitz_like_matvec` (its backward
        reuses the forward's FFT spectra).
        """
        if self.structure == "toeplitz_like" and self.in_features == self.out_features and isinstance(x, torch.Tensor):
            n = self.in_features
            if x.ndim == 0 or x.shape[-1] != n:
                raise ValueError(
                    f"`x` must have shape (..., n) with {n} entries on axis -1 for a matrix of shape "
                    f"({n}, {n}); got {format_shape(x.shape)}"
                )
            dtype = torch.promote_types(torch.float32, torch.promote_types(x.dtype, self.G.dtype))
            kw = self.structure_kwargs
            y = square_toeplitz_like_matvec(self.G.to(dtype), self.H.to(dtype), x.to(dtype), kw["e"], kw["f"])
        else:
            y = self.ldr_matrix().matvec(x)
        if self.bias is not None:
            y = y + self.bias
        if x.dtype in _HALF and y.dtype != x.dtype:
            y = y.to(x.dtype)
        return y

    def extra_repr(self):
        items = [
            f"in_features={self.in_features}",
            f"out_features={self.out_features}",
            f"structure={self.structure!r}",
            f"rank={self.rank}",
            f"bias={self.bias is not None}",
        ]
        items += [f"{k}={v!r}" for k, v in self.structure_kwargs.items()]
        return ", ".join(items)
