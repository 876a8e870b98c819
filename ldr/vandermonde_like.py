r"""Vandermonde-like matrices: :math:`\operatorname{diag}(v)\, W - W Z_f = G H`.

.. math:: W = \sum_l \operatorname{diag}\!\big(g_l \oslash (v^n - f)\big)\, V(v)\, C_f(J h_l),

with :math:`V(v)_{ij} = v_i^j`. The f-circulant factors cost r + 1 FFTs; the evaluation at the
nodes streams row tiles of the (row-normalised, accurately computed) power matrix through one
GEMM each (``ldr.node_kernels``): :math:`O(r m n)` time, :math:`O((m + n) r)` storage, no
m×n cache. ``method="fast"`` (or ``"auto"`` from n = 512) evaluates at the nodes through the
Vandermonde-to-Cauchy identity and the error-controlled fast Cauchy product of ``ldr.fast_cauchy``
instead of superfast multipoint evaluation, which is unstable (see :doc:`/theory/stability`);
the kernels are derived in :doc:`/theory/node_kernels`.
"""

from __future__ import annotations

import numpy as np

from .backends import get_backend
from .cauchy_like import check_method, crossover
from .fast_cauchy import VandermondePlan, default_tol, weighted_charges_product, weighted_product
from .krylov import Spectral, fft_length, fold
from .ldrmatrix import LDRMatrix
from .node_kernels import NodePowers, row_tiles, streamed_matvec, streamed_rmatvec, vandermonde_scales, wide_dtype
from .operators import Diagonal, Shift
from .validation import generator_sizes

_NUMPY_BK = get_backend(np.zeros(1))

__all__ = ["VandermondeLike", "vandermonde_like"]


class VandermondeLike(LDRMatrix):
    r"""Vandermonde-like matrix: :math:`\operatorname{diag}(v) W - W Z_f = G H` (m×n).

    Notes
    -----
    Requires :math:`v_i^n \ne f` for all i (with f = 0: no zero node). Stores only the
    generators and the nodes, :math:`O((m + n) r)` numbers; nothing of size m×n is cached.
    ``W x``: r f-circulant products (r + 1 FFTs of length about 2n), then the power matrix
    applied in streamed row tiles, one GEMM per tile for the whole batch: :math:`O(r m n)` time,
    :math:`O((m + n) r)` memory plus a tile. ``W^T x`` uses the power sums :math:`V^T z` (same
    tiles) and transposed f-circulant products. ``dense()`` builds the columns by a recursion,
    :math:`O(r m n)`, for nodes in the closed unit disc (rows by one FFT each,
    :math:`O(r m n \log n)`, otherwise). With ``method="fast"`` (see
    :func:`ldr.vandermonde_like`) ``W x`` costs :math:`O(r (m + n) p)` for unit-circle nodes
    (:math:`O(r (m + n) p \log(m + n))` inside the circle) to a tolerance ``tol``; ``W^T x``
    too, for nodes on the unit circle.

    Powers are accurate to a few ulps for every n (no running product) and rows with
    :math:`|v_i| > 1` are normalised by :math:`v_i^{n-1}`, so a product overflows only where
    W has entries beyond the dtype's range. The row scales :math:`g_l/(v^n - f)` are formed in
    float64; when they are not finite (:math:`v_i^n - f` underflows to 0, e.g. f = 0 and a node
    of modulus 0.01 at n = 200) the constructor raises: such a W with a Sylvester generator of
    ordinary size has entries near :math:`|v_i|^{-n}`. :func:`ldr.vandermonde` avoids the issue
    by storing the Krylov form (row scales 1).

    Examples
    --------
    >>> import numpy as np, ldr
    >>> rng = np.random.default_rng(3)
    >>> v = np.exp(2j * np.pi * rng.random(5)).real * 0.9 + 0.05
    >>> W = ldr.vandermonde_like(rng.standard_normal((5, 2)), rng.standard_normal((2, 4)), v)
    >>> bool(np.allclose(ldr.displacement(W.A, W.B, W.dense()), W.G @ W.H))
    True
    """

    #: Krylov row scales :math:`\tilde G = G \oslash (v^n - f)` (..., m, r) when built by
    #: :meth:`_from_krylov`; ``None`` when the scales are derived from ``G``.
    _krylov_G = None

    #: Product method ("auto", "exact" or "fast") and the fast path's tolerance (None: by dtype).
    method = "auto"
    tol = None

    def __init__(self, A, B, G, H, method="auto", tol=None):
        super().__init__(A, B, G, H)
        self.method, self.tol = check_method(method, tol)
        bk = self._bk
        n = self.shape[1]
        v = np.asarray(bk.to_numpy(self.v))
        powers = NodePowers(_NUMPY_BK, v.astype(complex if (np.iscomplexobj(v) or isinstance(self.f, complex)) else float))
        compute = np.dtype(bk.dtype_name(self._compute_dtype()[1]).replace("torch.", ""))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            scales = vandermonde_scales(powers, n, self.f, G=np.asarray(bk.to_numpy(self.G))).astype(compute)
        if not np.isfinite(scales).all():
            raise ValueError(
                f"`v`: the row scales G / (v**n - f) of this Vandermonde-like matrix are not finite in "
                f"{compute} (n = {n}, f = {self.f}): v**n - f underflows, so W has entries beyond the "
                "dtype's range; use nodes nearer the unit circle, f != 0, or the Krylov form "
                "(ldr.vandermonde builds the classic matrix this way)"
            )

    @classmethod
    def _from_krylov(cls, v, row_scales, H, B):
        r"""From nodes v (..., m), Krylov row scales :math:`\tilde G` (..., m, r), H (..., r, n), B = Shift(n, f).

        :math:`W = \sum_l \operatorname{diag}(\tilde g_l) V(v) C_f(J h_l)`; the Sylvester generator
        ``G`` = :math:`\tilde G \circ (v^n - f)` is formed (with accurate powers) for the
        displacement equation only. Nothing is divided by :math:`v^n - f`. Trusted input.
        """
        self = object.__new__(cls)
        bk = get_backend(row_scales, H, v)
        # Frozen like the generators of a validated matrix (no-op on torch), so that the NumPy
        # cache of the product factors may be used: see "Mutation" in LDRMatrix's notes.
        row_scales, H = bk.freeze(row_scales), bk.freeze(H)
        self._krylov_G = row_scales
        wide = wide_dtype(bk, bk.dtype_kind(row_scales.dtype) == "c" or bk.dtype_kind(v.dtype) == "c" or isinstance(B.f, complex))
        shifted = _accurate_power(bk, bk.cast(v, wide), B.size) - B.f
        target = row_scales.dtype
        if bk.dtype_kind(shifted.dtype) == "c" and bk.dtype_kind(target) != "c":
            target = bk.complex_dtype(bk.compute_dtype(target))
        G = bk.cast(row_scales, target) * bk.expand_dims(bk.cast(shifted, target), -1)
        self._init_trusted(Diagonal(v), B, G, H, bk)
        return self

    def _setup(self):
        self.f = self.B.f
        self.v = self.A.v

    def _scalars(self):
        return (self.f,)

    def _repr_items(self):
        return (("f", self.f),)

    def _cache_sources(self):
        if self._krylov_G is not None:
            return [self._krylov_G, self.H, self.v]
        return self._arrays()

    def _insert_batch_axis(self):
        bk = self._bk
        if self._krylov_G is None:
            out = super()._insert_batch_axis()
        else:
            out = type(self)._from_krylov(
                bk.expand_dims(self.v, -2), bk.expand_dims(self._krylov_G, -3), bk.expand_dims(self.H, -3), self.B
            )
        out.method, out.tol = self.method, self.tol
        return out

    # -- the fast path (Vandermonde -> Cauchy, then the FMM) -----------------------------------------
    def _fast_plan(self, dtype):
        bk = self._bk
        if self.v.ndim > 1 and bk.prod(self.v.shape[:-1]) > 1:
            return "the nodes have batch axes (one tree per node set)"
        if bk.requires_grad(self.v):
            return "autograd records the nodes (the fast path does not differentiate the tree)"
        tol = self.tol if self.tol is not None else default_tol(bk.dtype_name(bk.real_dtype(dtype)))
        if not bk.cache_allowed(self.v):
            self._vplans = {}
        plans = self.__dict__.setdefault("_vplans", {})
        if tol not in plans:
            vplan = VandermondePlan(np.asarray(bk.to_numpy(self.v)).reshape(-1), self.shape[1], tol, f=self.f)
            plans[tol] = vplan.reason if vplan.plan is None else vplan
        return plans[tol]

    def _choose_fast(self, dtype, strict=True):
        """The fast plan, or None for the exact path; ``strict``: method="fast" without one raises."""
        cached = self._bk.cache_allowed(self.v)
        if self.method == "exact" or (self.method == "auto" and min(self.shape) < crossover(self._bk, dtype, cached)):
            return None
        if min(self.shape) == 0:
            return None  # an empty product: nothing to sort into a tree
        if self.method == "auto" and getattr(self._bk.device(self.v), "type", "cpu") != "cpu":
            return None  # the plan needs a host copy of tensor nodes per product: a sync on a GPU
        plan = self._fast_plan(dtype)
        if isinstance(plan, str):
            if self.method == "fast" and strict:
                raise ValueError(f"method='fast' is not available for this Vandermonde-like matrix: {plan}")
            return None
        return plan

    def _fast_matvec(self, vplan, x, t=None):
        r"""``W x`` by the identity of ``VandermondePlan``, in complex arithmetic.

        Diagonal route (f' = f): :math:`z_l = (n\omega / f) \circ \mathrm{IDFT}(\zeta^j J h_l)
        \circ \mathrm{IDFT}(\zeta^j x)`, one DFT of x for every l. Otherwise ``t`` holds
        :math:`t_l = C_f(J h_l) x` and :math:`z_l = (\omega / f') \circ \mathrm{IDFT}(\zeta^j t_l)`.
        """
        bk = self._bk
        n = self.shape[1]
        cdtype = bk.complex_dtype(x.dtype)
        twist = bk.asarray(vplan.twist, dtype=cdtype, like=x)
        rows = self._plan_rows(vplan, cdtype, x)
        if vplan.diagonal:
            columns = self._diagonal_columns(vplan, cdtype, x)  # (..., r, n)
            xhat = bk.ifft(bk.cast(x, cdtype) * twist, n)
            if rows.ndim == 2 and columns.ndim == 2:
                out = weighted_product(bk, vplan.plan, rows, columns, xhat)
            else:
                z = columns * bk.expand_dims(xhat, -2)
                out = _broadcast_product(bk, vplan.plan, rows, z)
        else:
            weights = bk.asarray(vplan.omega / vplan.fprime, dtype=cdtype, like=x)
            z = bk.ifft(bk.cast(t, cdtype) * twist, n) * weights  # (omega / (n f')) o V(omega) t
            if rows.ndim == 2:
                out = weighted_charges_product(bk, vplan.plan, rows, z)
            else:
                out = _broadcast_product(bk, vplan.plan, rows, z)
        return out if bk.dtype_kind(x.dtype) == "c" else bk.real(out)

    def _plan_rows(self, vplan, cdtype, like):
        """Row weights (..., r, m) of the identity: the row scales times (v^n - f'), formed in the
        wide dtype (|v| <= 1: no overflow), then cast to ``cdtype``."""
        bk = self._bk
        wide = wide_dtype(bk, True)
        shift = bk.asarray(vplan.vn - vplan.fprime, dtype=wide, like=like)
        if self._krylov_G is not None:
            rows = bk.swapaxes(bk.cast(self._krylov_G, wide), -1, -2) * shift
        elif vplan.diagonal:
            rows = bk.swapaxes(bk.cast(self.G, wide), -1, -2)  # (v^n - f') / (v^n - f) = 1
        else:
            rows = bk.swapaxes(bk.cast(self.G, wide), -1, -2) * (shift / bk.asarray(vplan.vn - self.f, dtype=wide, like=like))
        return bk.cast(rows, cdtype)

    def _diagonal_columns(self, vplan, cdtype, like):
        r""":math:`(\omega / f) \circ V(\omega) J h_l` (..., r, n), cached with the generators (diagonal route)."""
        bk = self._bk
        n = self.shape[1]

        def spectra():
            weights = bk.asarray(vplan.omega * n / vplan.fprime, dtype=cdtype, like=like)
            return bk.ifft(bk.flip(self._cast(self.H, cdtype)) * bk.asarray(vplan.twist, dtype=cdtype, like=like), n) * weights

        return self._cached(("vandermonde_fast", vplan.fprime), cdtype, spectra)

    def _fast_transpose(self, vplan, tplan, x):
        r"""``W^T x`` by the transposed identity (``VandermondePlan.transposed``), in complex arithmetic.

        With :math:`q_l = s_l \circ (v^n - f') \circ x` (the rows of the forward identity) and
        :math:`c_l = C(\omega, v)\, q_l`, :math:`V(v)^T (s_l \circ x) = -V(\omega)^T ((\omega / (n f')) \circ c_l)`
        and :math:`V(\omega)^T d = n\, \zeta^j \circ \mathrm{IDFT}(d)`. Diagonal route (f' = f):
        :math:`C_f(a)^T V(\omega)^T = V(\omega)^T \operatorname{diag}(V(\omega) a)`, so
        :math:`W^T x = -\zeta^j \circ \mathrm{IDFT}(\sum_l (\omega / f) \circ V(\omega) J h_l \circ c_l)`:
        one inverse DFT in all. Otherwise returns the power sums :math:`V(v)^T (s_l \circ x)`
        (..., r, n) for the transposed f-circulant products of ``_rmatvec``.
        """
        bk = self._bk
        m, n = self.shape
        cdtype = bk.complex_dtype(x.dtype)
        twist = bk.asarray(vplan.twist, dtype=cdtype, like=x)
        charges = self._plan_rows(vplan, cdtype, x) * bk.expand_dims(bk.cast(x, cdtype), -2)  # (..., r, m)
        lead = charges.shape[:-1]
        c = bk.swapaxes(tplan.apply(bk, bk.swapaxes(charges.reshape((-1, m)), 0, 1)), 0, 1).reshape(lead + (n,))
        if vplan.diagonal:
            return -bk.ifft(bk.sum(self._diagonal_columns(vplan, cdtype, x) * c, -2), n) * twist
        weights = bk.asarray(-vplan.omega / vplan.fprime, dtype=cdtype, like=x)
        return bk.ifft(c * weights, n) * twist

    def _factors(self, dtype):
        """(powers of the nodes (O(m), wide dtype), row scales s (..., r, m) in ``dtype``, spectra of J h_l)."""

        def build():
            bk = self._bk
            n = self.shape[1]
            complex_data = bk.dtype_kind(dtype) == "c"
            wide = wide_dtype(bk, complex_data)
            powers = NodePowers(bk, _flat_nodes(bk, bk.cast(self.v, wide)))
            if self._krylov_G is not None:
                scales = vandermonde_scales(powers, n, self.f, krylov_G=bk.cast(self._krylov_G, wide))
            else:
                scales = vandermonde_scales(powers, n, self.f, G=bk.cast(self.G, wide))
            sp = Spectral(bk, fft_length(n), complex_data)
            return powers, bk.cast(scales, dtype), sp.forward(bk.flip(self._cast(self.H, dtype)))

        return self._cached("factors", dtype, build)

    def _power_tiles(self, powers, dtype):
        n = self.shape[1]
        return lambda i0, i1: powers.tile(i0, i1, n, dtype)

    def _matvec(self, x):
        bk = self._bk
        m, n = self.shape
        vplan = self._choose_fast(x.dtype) if bk.prod(x.shape[:-1]) else None  # empty batch: exact
        if vplan is not None and vplan.diagonal:
            return self._fast_matvec(vplan, x)
        powers, scales, JH = self._factors(x.dtype)
        sp = Spectral(bk, fft_length(n), bk.dtype_kind(x.dtype) == "c")
        t = fold(sp.inverse(JH * bk.expand_dims(sp.forward(x), -2)), n, self.f, bk)  # (..., r, n)
        if vplan is not None:
            return self._fast_matvec(vplan, x, t)
        Pt = streamed_matvec(bk, t, self._power_tiles(powers, x.dtype), (powers.logc,), m)  # (..., r, m)
        return bk.sum(scales * Pt, -2)

    def _rmatvec(self, x):
        bk = self._bk
        n = self.shape[1]
        # The transpose takes the fast path where it exists (nodes on the unit circle), else the
        # exact one, whatever ``method`` says (W^T x was exact only before; see vandermonde_like).
        vplan = self._choose_fast(x.dtype, strict=False) if bk.prod(x.shape[:-1]) else None
        tplan = vplan.transposed() if vplan is not None else None
        if tplan is not None:
            fast = self._fast_transpose(vplan, tplan, x)
            if bk.dtype_kind(x.dtype) != "c":
                fast = bk.real(fast)  # a real W: the imaginary parts are round-off
            if vplan.diagonal:
                return fast  # W^T x itself: no power sums, no f-circulant factors to build
        powers, scales, JH = self._factors(x.dtype)
        if tplan is not None:
            power_sums = fast
        else:
            power_sums = streamed_rmatvec(bk, scales * bk.expand_dims(x, -2), self._power_tiles(powers, x.dtype), (powers.logc,), n)
        sp = Spectral(bk, fft_length(n), bk.dtype_kind(x.dtype) == "c")
        # C_f(J h)^T a = J C_f(J h) J a, summed over l in the frequency domain.
        acc = bk.sum(JH * sp.forward(bk.flip(power_sums)), -2)
        return bk.flip(fold(sp.inverse(acc), n, self.f, bk))

    def _dense(self, dtype):
        r"""Columns by the recursion :math:`w_{j+1} = v \circ w_j - (v^n - f) \circ (S^T H)_{:, j}`
        (nodes in the closed unit disc, :math:`O(r m n)`), else row tiles by FFT."""
        bk = self._bk
        m, n = self.shape
        powers, scales, JH = self._factors(dtype)
        # Rows with |v| a round-off above 1 (float32 unit-circle nodes) are fine for the recursion:
        # its growth is at most |v|^n <= exp(n 1e-6).
        if np.max(np.abs(np.asarray(bk.to_numpy(powers.v))), initial=0.0) <= 1 + 1e-6:
            return self._dense_by_columns(powers, dtype)
        return self._dense_by_rows(powers, scales, JH, dtype)

    def _dense_by_columns(self, powers, dtype):
        r"""Column j of :math:`V(v) C_f(a)` is :math:`c_j = V(v) Z_f^j a`, and
        :math:`V(v) Z_f = \operatorname{diag}(v) V(v) - (v^n - f) e_{n-1}^T`, so
        :math:`c_{j+1} = v \circ c_j - (v^n - f)\, a_{n-1-j}`; with :math:`a_l = J h_l`,
        :math:`a_{l, n-1-j} = h_{l j}`, and the rank sum taken first,
        :math:`w_j = \sum_l s_l \circ c^l_j` obeys the recursion in the summary line. One
        streamed product gives :math:`w_0 = \sum_l s_l \circ P J h_l`, one GEMM the
        corrections, then n steps of O(m): :math:`O(r m n)` in all. In the wide dtype
        (float64/complex128); with :math:`|v_i| \le 1` a rounding error is never amplified by
        later steps (at most n of them accumulate)."""
        bk = self._bk
        n = self.shape[1]
        wide = powers.v.dtype
        # The streamed start w_0 uses the row-normalised powers and scales (consistent with each
        # other); the corrections need the true scales s = g / (v^n - f).
        shift = _accurate_power(bk, powers.v, n) - self.f
        if self._krylov_G is not None:
            S = bk.swapaxes(bk.cast(self._krylov_G, wide), -1, -2)
            normalised = vandermonde_scales(powers, n, self.f, krylov_G=bk.cast(self._krylov_G, wide))
        else:
            S = bk.swapaxes(bk.cast(self.G, wide), -1, -2) / bk.expand_dims(shift, -2)  # (..., r, m)
            normalised = vandermonde_scales(powers, n, self.f, G=bk.cast(self.G, wide))
        H = bk.cast(self.H, wide)
        tiles = self._power_tiles(powers, wide)
        w = bk.sum(normalised * streamed_matvec(bk, bk.flip(H), tiles, (powers.logc,), self.shape[0]), -2)
        # Transposed (..., n, m): every step reads and writes contiguous rows.
        corrections = bk.expand_dims(shift, -2) * bk.matmul(bk.swapaxes(H, -1, -2), S)
        v = powers.v
        columns = [w]
        for j in range(n - 1):
            w = v * w - corrections[..., j, :]
            columns.append(w)
        return bk.swapaxes(bk.cast(bk.concatenate([bk.expand_dims(c, -2) for c in columns], axis=-2), dtype), -1, -2)

    def _dense_by_rows(self, powers, scales, JH, dtype):
        r"""Row tiles of :math:`\sum_l \operatorname{diag}(s_l) P C_f(J h_l)`; row i of
        :math:`P C_f(u)` is :math:`J C_f(u) J p_i` (f-circulants are persymmetric): one FFT per row,
        :math:`O(r m n \log n)` (nodes outside the unit disc, whose rows are normalised)."""
        bk = self._bk
        m, n = self.shape
        sp = Spectral(bk, fft_length(n), bk.dtype_kind(dtype) == "c")
        spectra = bk.expand_dims(JH, -2)  # (..., r, 1, F)
        rows = []
        for i0, i1 in row_tiles(m, 2 * sp.length * max(self.rank, 1)):
            P = powers.tile(i0, i1, n, dtype)  # (..., tm, n)
            R = bk.flip(fold(sp.inverse(spectra * bk.expand_dims(sp.forward(bk.flip(P)), -3)), n, self.f, bk))
            rows.append(bk.sum(bk.expand_dims(scales[..., i0:i1], -1) * R, -3))
        return rows[0] if len(rows) == 1 else bk.concatenate(rows, axis=-2)


def _broadcast_product(bk, plan, rows, z):
    """sum_l rows_l o (C z_l) for batched row weights (..., r, m) and charges (..., r, n)."""
    lead, n = z.shape[:-1], z.shape[-1]
    y = bk.swapaxes(plan.apply(bk, bk.swapaxes(z.reshape((-1, n)), 0, 1)), 0, 1).reshape(lead + (plan.m,))
    return bk.sum(rows * y, -2)


def _flat_nodes(bk, v):
    """Nodes without (size-1) batch axes as a vector: their tiles then fold into one GEMM."""
    return v.reshape(v.shape[-1:]) if v.ndim > 1 and bk.prod(v.shape[:-1]) == 1 else v


def _accurate_power(bk, v, n):
    """:math:`v^n` to a few ulps (exp of n log v in the dtype of v, exact 0), no running product."""
    powers = NodePowers(bk, v)
    c_n = powers.scalar_power(n)
    # Rows with |v| > 1 hold c = 1/v.
    return bk.where(powers.big, 1.0 / bk.where(powers.big, c_n, 1.0), c_n)


LDRMatrix._pairs.append(
    (lambda A, B: isinstance(A, Diagonal) and isinstance(B, Shift) and not B.transpose, VandermondeLike)
)


def vandermonde_like(G, H, v, f=0.0, method="auto", tol=None):
    r"""Vandermonde-like matrix with :math:`\operatorname{diag}(v) W - W Z_f = G H`.

    Parameters
    ----------
    G : array, shape (..., m, r)
        Left generator: the m×r factor of the displacement :math:`GH`. Leading axes are batch
        axes and broadcast with those of ``H``.
    H : array, shape (..., r, n)
        Right generator: the r×n factor (the HyDRA paper writes its transpose, n×r). r is the
        displacement rank.
    v : array, shape (..., m)
        The nodes; :math:`v_i^n \ne f` is required (f = 0: no zero node).
    f : float or complex, default 0.0
        Corner of :math:`Z_f` (the HyDRA paper uses :math:`Z_0`).
    method : {"auto", "exact", "fast"}, default "auto"
        How ``W x`` multiplies by :math:`V(v)`. ``"exact"``: streamed power tiles,
        :math:`O(r m n)`. ``"fast"``: the Vandermonde-to-Cauchy identity and the fast Cauchy
        product (:doc:`/theory/node_kernels`): :math:`O(r (m + n) p)` by the FMM for nodes on the
        unit circle, :math:`O(r (m + n) p \log(m + n))` by the treecode inside it; one DFT of x
        when f itself has modulus 1 and its n-th roots stay 0.1 (in :math:`|v_i^n - f|`) from the
        nodes, else r + 1 FFTs. It needs unbatched nodes in the closed unit disc, at least 0.1
        from the n-th roots of f or of some :math:`f' \in \{1, -1, i, -i\}`, and nodes that
        autograd does not record (else ValueError). ``"auto"``: fast where available, on the CPU, from ``min(m, n) >= 512`` (2048 for torch
        tensors, whose plan is rebuilt per product).
        ``W^T x`` (and the adjoint ``rmatvec``) takes the fast path where one exists, that is for
        nodes on the unit circle (the transposed identity), and the exact one otherwise, whatever
        ``method`` says; ``dense()`` is always exact.
    tol : float, optional
        Fast-path accuracy relative to :math:`\|V(v)\|\,\|t\|` per rank term; default 1e-12
        (float64/complex128) or 1e-5 (float32/complex64).

    Returns
    -------
    VandermondeLike

    Notes
    -----
    :math:`W = \sum_l \operatorname{diag}(g_l \oslash (v^n - f)) V(v) C_f(J h_l)`. Storage
    :math:`O((m + n) r)` (no m×n cache); products cost :math:`O(r n \log n + r m n)` time and
    :math:`O((m + n) r)` memory plus one streamed tile; ``dense()`` costs :math:`O(r m n)`
    (:math:`O(r m n \log n)` when a node lies outside the unit disc). Powers are accurate to a few ulps in every dtype and nodes with
    :math:`|v_i| > 1` are normalised so nothing overflows unless W does; the row scales
    :math:`g_l / (v^n - f)` must be finite in the compute dtype (else ValueError: with f = 0 and
    tiny nodes W is not representable from such a G). See :doc:`/theory/node_kernels`.

    See Also
    --------
    vandermonde : The classic Vandermonde matrix (rank 1 in this class).
    ldr.nn.LDRLinear : A trainable layer of this class (``structure="vandermonde_like"``).

    References
    ----------
    .. [1] V. Y. Pan, *Structured Matrices and Polynomials: Unified Superfast Algorithms*.
           Birkhäuser/Springer, 2001.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> rng = np.random.default_rng(0)
    >>> v = rng.uniform(0.5, 1.0, 3)
    >>> W = ldr.vandermonde_like(rng.standard_normal((3, 1)), rng.standard_normal((1, 4)), v)
    >>> x = rng.standard_normal(4)
    >>> bool(np.allclose(W @ x, W.dense() @ x))
    True
    """
    m, n = generator_sizes(G, H)
    return VandermondeLike(Diagonal(v), Shift(n, f), G, H, method=method, tol=tol)
