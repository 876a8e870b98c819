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
from torch import nn

from .backends import get_backend
from .cauchy_like import CauchyLike
from .low_rank import LowRank
from .operators import Diagonal, Identity, Shift, Zero, check_nonsingular
from .toeplitz_like import HankelLike, ToeplitzLike, default_shift_pair
from .vandermonde_like import VandermondeLike

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
_CHUNK = 1 << 20  # elements per block in the O(N) and O(mn) gain sums (bounds their memory)


# -- fixed nodes --------------------------------------------------------------------------------
def vandermonde_nodes(m):
    r"""The fixed real nodes of a Vandermonde-like layer: Chebyshev points, none of them zero.

    ``v_i = cos(π (2i + 1) / (2M))`` for ``i < m`` with ``M = 2⌈m/2⌉``: the first-kind
    Chebyshev points of an even count (so that no node is 0, which would make
    :math:`(\operatorname{diag}(v), Z_0)` singular), the last one dropped when m is odd. All lie
    in (−1, 1), clustered towards ±1, so that powers :math:`v_i^k` neither overflow nor all vanish.

    Examples
    --------
    >>> vandermonde_nodes(4).round(4)
    array([ 0.9239,  0.3827, -0.3827, -0.9239])
    """
    M = m + (m % 2)
    return np.cos(np.pi * (2 * np.arange(m) + 1) / (2 * M))


def cauchy_nodes(m, n):
    r"""The fixed interlaced nodes of a Cauchy-like layer: ``v_i = i`` and ``u_j = j + 1/2``.

    Every gap :math:`|v_i - u_j|` is at least 1/2, and :math:`C_{ij} = 1/(i - j - 1/2)` is a
    section of the discrete Hilbert kernel, whose symbol has constant modulus, so the Cauchy
    factor is well conditioned for every size (unlike nodes squeezed into a fixed interval).

    Examples
    --------
    >>> v, u = cauchy_nodes(3, 2)
    >>> v, u
    (array([0., 1., 2.]), array([0.5, 1.5]))
    """
    return np.arange(m, dtype=float), np.arange(n, dtype=float) + 0.5


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


class _KrylovVandermondeLike(VandermondeLike):
    r"""A Vandermonde-like matrix given in Krylov form, :math:`W = \sum_l \operatorname{diag}(\tilde g_l) V(v) C_f(J h_l)`.

    The Sylvester generator is :math:`G = \tilde G \circ (v^n - f)`; it is kept as ``G`` for
    the displacement equation, but the products use :math:`\tilde G` directly. Building a plain
    :class:`~ldr.VandermondeLike` from ``G`` would divide by :math:`v^n - f` again, which
    underflows to 0/0 for the paper's f = 0 and nodes inside the unit circle (|v| = 0.4 and
    n = 128 already give 1e-51, below float32's range); here no division happens, for any f.
    """

    @classmethod
    def _from_krylov(cls, v, row_scales, H, B):
        """From nodes v (..., m), row scales (..., m, r), H (..., r, n) and B = Shift(n, f)."""
        self = object.__new__(cls)
        self._krylov_G = row_scales
        bk = get_backend(row_scales, H, v)
        # May underflow to 0 for f = 0; harmless: G is never divided by (v^n - f) here.
        G = row_scales * bk.expand_dims(v**B.size - B.f, -1)
        self._init_trusted(_diagonal(v), B, G, H, bk)
        return self

    @classmethod
    def _trusted(cls, A, B, G, H):  # pragma: no cover - only built from the Krylov form
        raise TypeError("a Krylov-form Vandermonde-like matrix is built with _from_krylov")

    def _row_scales(self, v, dtype):
        return self._bk.swapaxes(self._cast(self._krylov_G, dtype), -1, -2)

    def _cache_sources(self):
        return [self._krylov_G, self.H, self.v]

    def _insert_batch_axis(self):
        bk = self._bk
        return type(self)._from_krylov(
            bk.expand_dims(self.v, -2),
            bk.expand_dims(self._krylov_G, -3),
            bk.expand_dims(self.H, -3),
            self.B,
        )


# -- argument checks ----------------------------------------------------------------------------------
def _check_features(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be a positive integer; got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"`{name}` must be a positive integer; got {value}")
    return int(value)


def _check_real(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number (the layer has real weights); got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite; got {value}")
    return float(value)


def _vandermonde_collision(v, n, f):
    """Index of a node with v_i^n == f exactly (real nodes, real f), or None."""
    if f == 0:
        hits = np.flatnonzero(v == 0)
    else:
        # Compare n log|v| with log|f| (no underflow) and the signs.
        with np.errstate(divide="ignore"):
            same_size = np.isclose(n * np.log(np.abs(v)), math.log(abs(f)), rtol=0, atol=1e-12)
        sign = np.where((v < 0) & (n % 2 == 1), -1.0, 1.0)
        hits = np.flatnonzero(same_size & (sign == math.copysign(1.0, f)))
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
        ``e``, ``f`` (real) for ``"toeplitz_like"`` (default :func:`~ldr.toeplitz_like.default_shift_pair`:
        (1, −1) square, (1, 0) rectangular) and ``"hankel_like"`` (default (1, 0)); ``f`` for
        ``"vandermonde_like"`` (default −1; the HyDRA paper's f = 0 is allowed, see
        :meth:`reset_parameters`) and ``"circulant"`` (default −1).

    Attributes
    ----------
    G : torch.nn.Parameter, shape (out_features, rank)
        Left generator. For ``"vandermonde_like"`` these are the Krylov-form row scales
        :math:`\tilde G` of :math:`W = \sum_l \operatorname{diag}(\tilde g_l) V(v) C_f(J h_l)`
        (the Sylvester generator is :math:`\tilde G \circ (v^n - f)`, see
        :doc:`/theory/stability`). Absent for ``"circulant"``.
    H : torch.nn.Parameter, shape (rank, in_features)
        Right generator (absent for ``"circulant"``).
    c : torch.nn.Parameter, shape (in_features,)
        First column of the circulant (``"circulant"`` only).
    bias : torch.nn.Parameter or None, shape (out_features,)
    nodes, row_nodes, column_nodes : torch.Tensor
        Fixed node buffers (``"vandermonde_like"``: :func:`vandermonde_nodes`;
        ``"cauchy_like"``: :func:`cauchy_nodes`). They stay in at least float32 when the
        module is cast to half precision, where distinct nodes would collide.

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
        self._node_names = {"vandermonde_like": ("nodes",), "cauchy_like": ("row_nodes", "column_nodes")}.get(
            structure, ()
        )
        reference = self.c if structure == "circulant" else self.G
        for name in self._node_names:
            self.register_buffer(name, self._make_node(name, reference.device, self._node_dtype(reference.dtype)))
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
            "vandermonde_like": {"f": -1.0},
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
            hit = _vandermonde_collision(vandermonde_nodes(m), n, kw["f"])
            if hit is not None:
                raise ValueError(
                    f"`f` = {kw['f']} equals v_{hit}**{n} for the fixed node v_{hit} = "
                    f"{vandermonde_nodes(m)[hit]!r}, so (diag(v), Z_f) is singular; choose another f"
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
        if name == "nodes":
            values = vandermonde_nodes(m)
        else:
            values = cauchy_nodes(m, n)[0 if name == "row_nodes" else 1]
        return torch.as_tensor(values, dtype=dtype, device=device)

    def _apply(self, fn, *args, **kwargs):
        module = super()._apply(fn, *args, **kwargs)
        # Nodes stay in at least float32: 4096 interlaced Cauchy nodes, or Chebyshev points near
        # ±1, collide in float16/bfloat16 and would make the weight singular or infinite.
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
        * ``vandermonde_like``: one gain per row, :func:`vandermonde_row_gains`.

        G and H are balanced, :math:`\sigma_G^2 = \sigma_H^2 = \sqrt{\tau / (r\kappa)}`, and drawn
        uniformly, :math:`U(-\sqrt{3}\sigma, \sqrt{3}\sigma)`. For Vandermonde-like weights the
        row gains :math:`\kappa_i` span orders of magnitude (:math:`|v_i|` near 0 or 1), so row i of
        :math:`\tilde G` gets :math:`\sigma_{G,i}^2 = \tau / (r \kappa_i \sigma_H^2)` with
        :math:`\sigma_H^2 = \sqrt{\tau / (r \bar\kappa)}`: every row has mean entry variance τ.
        With :math:`|f| = 1` (the layer's default f = −1) it is also spread evenly over the columns;
        with the paper's f = 0 a row with a small node puts it on its first columns (column 0
        of a 64×64 weight then carries about 19τ), hence the default. A circulant's entries are those of c, drawn as ``U(-a, a)``.
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
                kappa = vandermonde_row_gains(self.nodes.detach().cpu().double().numpy(), n, kw["f"])
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
            :class:`~ldr.HankelLike`, :class:`~ldr.VandermondeLike` (in Krylov form; its ``G``
            is the Sylvester generator :math:`\tilde G \circ (v^n - f)`) or :class:`~ldr.CauchyLike`,
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
            return _KrylovVandermondeLike._from_krylov(self.nodes, self.G, self.H, B)
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

        Half-precision inputs are computed in float32 and the output is cast back.
        """
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
