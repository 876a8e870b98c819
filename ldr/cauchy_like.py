r"""Cauchy-like matrices: :math:`\operatorname{diag}(v) W - W \operatorname{diag}(u) = G H`.

Entrywise :math:`W_{ij} = (GH)_{ij} / (v_i - u_j)`, i.e. :math:`W = (GH) \circ C(v, u)`.
The exact products stream row tiles of the Cauchy matrix (``ldr.node_kernels``), one GEMM
per tile for the whole batch: :math:`O(r m n)` time, :math:`O((m + n) r)` storage. Superfast
algorithms by exact formulas (Trummer-type) are unstable (see :doc:`/theory/stability`).
"""

from __future__ import annotations

import math

import numpy as np

from .fast_cauchy import CauchyPlan, default_tol, source_mode, weighted_product
from .ldrmatrix import LDRMatrix
from .node_kernels import _flat, cauchy_tile, streamed_matvec, streamed_rmatvec
from .operators import Diagonal

__all__ = ["CauchyLike", "cauchy_like"]


class CauchyLike(LDRMatrix):
    r"""Cauchy-like matrix: :math:`\operatorname{diag}(v) W - W \operatorname{diag}(u) = G H`.

    Notes
    -----
    Requires :math:`v_i \ne u_j`; a collision raises and names the pair. With the Cauchy matrix
    :math:`C_{ij} = 1/(v_i - u_j)`: :math:`W x = \sum_l g_l \circ C (h_l \circ x)` and
    :math:`W^T y = \sum_l h_l \circ C^T (g_l \circ y)`. Stores only the generators and the
    nodes, :math:`O((m + n) r)` numbers; each product streams row tiles of :math:`C`, one GEMM
    per tile for the whole batch: :math:`O(r m n)` time, :math:`O((m + n) r)` memory plus a tile.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> rng = np.random.default_rng(4)
    >>> v, u = np.arange(4.0), np.arange(3.0) + 0.5
    >>> W = ldr.cauchy_like(rng.standard_normal((4, 2)), rng.standard_normal((2, 3)), v, u)
    >>> bool(np.allclose(W.dense(), (W.G @ W.H) / (v[:, None] - u[None, :])))
    True
    """

    #: Product method ("auto", "exact" or "fast") and the fast path's tolerance (None: by dtype).
    method = "auto"
    tol = None

    def __init__(self, A, B, G, H, method="auto", tol=None):
        super().__init__(A, B, G, H)
        self.method, self.tol = check_method(method, tol)

    def _setup(self):
        self.v, self.u = self.A.v, self.B.v
        self._plans = {}

    def _insert_batch_axis(self):
        out = super()._insert_batch_axis()
        out.method, out.tol, out._plans = self.method, self.tol, self._plans  # same nodes: share plans
        return out

    # -- the fast path -------------------------------------------------------------------------------
    def _fast_plan(self, dtype, transpose):
        """The fast plan for C (or for C^T = -C(u, v)), or a string saying why there is none."""
        bk = self._bk
        targets, sources = (self.u, self.v) if transpose else (self.v, self.u)
        if targets.ndim > 1 and bk.prod(targets.shape[:-1]) > 1 or sources.ndim > 1 and bk.prod(sources.shape[:-1]) > 1:
            return "the nodes have batch axes (one tree per node set)"
        if bk.requires_grad(self.v) or bk.requires_grad(self.u):
            return "autograd records the nodes (the fast path does not differentiate the tree)"
        tol = self.tol if self.tol is not None else default_tol(bk.dtype_name(bk.real_dtype(dtype)))
        key = (transpose, tol)
        # Plans are kept only for nodes that provably cannot change (frozen NumPy copies); torch
        # nodes are re-read (one O(m + n) copy to the host) and the plan rebuilt per product.
        if not bk.cache_allowed(self.v, self.u):
            self._plans = {}
        if key not in self._plans:
            t_np = np.asarray(bk.to_numpy(targets)).reshape(-1)
            s_np = np.asarray(bk.to_numpy(sources)).reshape(-1)
            mode = source_mode(s_np, tol)
            if mode is None:
                plan = f"the {'row' if transpose else 'column'} nodes lie neither on the real line nor on the unit circle"
            else:
                plan = CauchyPlan(t_np.astype(complex if np.iscomplexobj(t_np) else float), s_np, tol, mode)
            self._plans[key] = plan
        return self._plans[key]

    def _choose_fast(self, dtype, transpose):
        cached = self._bk.cache_allowed(self.v, self.u)
        if self.method == "exact" or (self.method == "auto" and min(self.shape) < crossover(self._bk, dtype, cached)):
            return None
        if min(self.shape) == 0:
            return None  # an empty product: nothing to sort into a tree
        if self.method == "auto" and getattr(self._bk.device(self.v), "type", "cpu") != "cpu":
            # The plan is built from a host copy of the nodes, per product for tensors (their
            # values may change without trace): on an accelerator that is a sync, so auto stays exact.
            return None
        plan = self._fast_plan(dtype, transpose)
        if isinstance(plan, str):
            if self.method == "fast":
                raise ValueError(f"method='fast' is not available for this Cauchy-like matrix: {plan}")
            return None
        return plan

    def _fast_product(self, plan, weights_out, weights_in, x, sign):
        """sum_l w_out_l o (plan C) (w_in_l o x): weights (..., r, m_out) and (..., r, n_in), x (..., n_in)."""
        bk = self._bk
        if weights_out.ndim == 2 and weights_in.ndim == 2:
            out = weighted_product(bk, plan, weights_out, weights_in, x)
        else:  # batched generators: the batch and rank folded into the columns after broadcasting
            charges = weights_in * bk.expand_dims(x, -2)  # (..., r, k)
            lead, k = charges.shape[:-1], charges.shape[-1]
            q = bk.swapaxes(charges.reshape((-1, k)), 0, 1)
            y = bk.swapaxes(plan.apply(bk, q), 0, 1).reshape(lead + (plan.m,))
            out = bk.sum(weights_out * y, -2)
        return -out if sign < 0 else out

    def _nodes(self, dtype):
        bk = self._bk
        return _flat(bk, self._cast(self.v, dtype)), _flat(bk, self._cast(self.u, dtype))

    def _matvec(self, x):
        bk = self._bk
        G, H = self._cast(self.G, x.dtype), self._cast(self.H, x.dtype)
        # An empty batch has no columns to fold into the tree's GEMMs: the exact path returns it.
        plan = self._choose_fast(x.dtype, transpose=False) if bk.prod(x.shape[:-1]) else None
        if plan is not None:
            return self._fast_product(plan, bk.swapaxes(G, -1, -2), H, x, 1)
        v, u = self._nodes(x.dtype)
        charges = H * bk.expand_dims(x, -2)  # (..., r, n)
        CHx = streamed_matvec(bk, charges, lambda i0, i1: cauchy_tile(bk, v, u, i0, i1), (v, u), self.shape[0])
        return bk.sum(bk.swapaxes(G, -1, -2) * CHx, -2)

    def _rmatvec(self, x):
        bk = self._bk
        G, H = self._cast(self.G, x.dtype), self._cast(self.H, x.dtype)
        plan = self._choose_fast(x.dtype, transpose=True) if bk.prod(x.shape[:-1]) else None
        if plan is not None:
            # C^T = -C(u, v): the tree of the row nodes v, evaluated at the column nodes u.
            return self._fast_product(plan, H, bk.swapaxes(G, -1, -2), x, -1)
        v, u = self._nodes(x.dtype)
        charges = bk.swapaxes(G, -1, -2) * bk.expand_dims(x, -2)  # (..., r, m)
        CtGx = streamed_rmatvec(bk, charges, lambda i0, i1: cauchy_tile(bk, v, u, i0, i1), (v, u), self.shape[1])
        return bk.sum(H * CtGx, -2)

    def _dense(self, dtype):
        bk = self._bk
        v, u = self._cast(self.v, dtype), self._cast(self.u, dtype)
        C = cauchy_tile(bk, v, u, 0, self.shape[0])
        return bk.matmul(self._cast(self.G, dtype), self._cast(self.H, dtype)) * C


LDRMatrix._pairs.append((lambda A, B: isinstance(A, Diagonal) and isinstance(B, Diagonal), CauchyLike))

#: min(m, n) from which method="auto" takes the fast path, by real compute dtype: where the FMM
#: beat the exact streamed product at batch 64, r = 4, one thread (fast/exact 0.87-0.89 at n = 512,
#: 0.35-0.43 at 1024, Cauchy and Vandermonde, float32 and float64; docs/theory/node_kernels.rst).
CROSSOVER = {"float64": 512, "float32": 512}

#: The same when the plan cannot be kept (torch tensors: rebuilt from a host copy per product,
#: 6 ms at n = 512, 14 ms at 2048 against 35 ms for the exact product there).
CROSSOVER_UNCACHED = 2048


def crossover(bk, dtype, cached=True):
    """min(m, n) from which ``method="auto"`` takes the fast path (``cached``: the plan is kept)."""
    if not cached:
        return CROSSOVER_UNCACHED
    return CROSSOVER.get(bk.dtype_name(bk.real_dtype(dtype)).replace("torch.", ""), 4096)


_METHODS = ("auto", "exact", "fast")


def check_method(method, tol):
    if method not in _METHODS:
        raise ValueError(f"`method` must be one of {_METHODS}; got {method!r}")
    if tol is not None:
        if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating, np.integer)):
            raise TypeError(f"`tol` must be a float in (0, 1) or None; got {type(tol).__name__}")
        if not (math.isfinite(tol) and 0 < tol < 1):
            raise ValueError(f"`tol` must be a float in (0, 1) or None; got {tol}")
        tol = float(tol)
    return method, tol


def cauchy_like(G, H, v, u, method="auto", tol=None):
    r"""Cauchy-like matrix with :math:`\operatorname{diag}(v) W - W \operatorname{diag}(u) = G H`.

    Parameters
    ----------
    G : array, shape (..., m, r)
        Left generator: the m×r factor of the displacement :math:`GH`. Leading axes are batch
        axes and broadcast with those of ``H``.
    H : array, shape (..., r, n)
        Right generator: the r×n factor (the HyDRA paper writes its transpose, n×r). r is the
        displacement rank.
    v : array, shape (..., m)
        Row nodes.
    u : array, shape (..., n)
        Column nodes; every :math:`v_i \ne u_j`.
    method : {"auto", "exact", "fast"}, default "auto"
        How products multiply by :math:`C(v, u)`. ``"exact"``: streamed tiles,
        :math:`O(r m n)`. ``"fast"``: the one-dimensional fast multipole method of
        ``ldr.fast_cauchy``, :math:`O(r (m + n) p)` with :math:`p \approx \log(1/\mathrm{tol}) / 1.76`
        interpolation nodes per box, when both node sets lie on the real line or both on the unit
        circle (a treecode, :math:`O(r (m + n) p \log(m + n))`, when only the source nodes do:
        ``u`` for ``W x``, ``v`` for ``W^T x``); it needs unbatched nodes on such a curve and
        nodes that autograd does not record (else ValueError).
        ``"auto"``: fast where available, on the CPU, and ``min(m, n)`` reaches the measured
        crossover (``ldr.cauchy_like.CROSSOVER``, 512; 2048 for torch tensors, whose plan is
        rebuilt per product), exact otherwise. The fast path builds
        its plan from a host copy of the nodes (kept for NumPy, rebuilt per product for torch).
    tol : float, optional
        Accuracy of the fast path relative to :math:`\|C\|_2 \|x\|` per rank term; default
        1e-12 for float64/complex128 and 1e-5 for float32/complex64.

    Returns
    -------
    CauchyLike

    Notes
    -----
    :math:`W = (GH) \circ C(v, u)`, :math:`C_{ij} = 1/(v_i - u_j)`. Storage :math:`O((m + n) r)`
    (plus, once the fast path is used, its plan: :math:`O(m + n + \text{boxes}\, p^2)`).
    Derivation and error bound: :doc:`/theory/node_kernels`.

    See Also
    --------
    cauchy : The classic Cauchy matrix (rank 1 in this class).

    References
    ----------
    .. [1] T. Kailath and A. H. Sayed, "Displacement structure: theory and applications",
           *SIAM Review* 37(3):297–386, 1995.

    Examples
    --------
    >>> import numpy as np, ldr
    >>> W = ldr.cauchy_like(np.ones((2, 1)), np.ones((1, 2)), np.array([0.0, 1.0]), np.array([0.5, 2.0]))
    >>> W.dense()
    array([[-2. , -0.5],
           [ 2. , -1. ]])
    """
    return CauchyLike(Diagonal(v), Diagonal(u, name="u"), G, H, method=method, tol=tol)
