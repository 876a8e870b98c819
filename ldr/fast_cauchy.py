r"""Error-controlled fast products with the Cauchy kernel :math:`C(v, u)_{ij} = 1/(v_i - u_j)`.

A one-dimensional treecode with polynomial (Chebyshev-type) interpolation of the kernel in the
source variable, on a binary tree of equal-count boxes (see :doc:`/theory/node_kernels`):

* the sources ``u`` lie on a curve with a 1-D coordinate: the real line (coordinate ``u``) or the
  unit circle (coordinate ``arg u``); the targets ``v`` may be anywhere in the complex plane
  (coordinate ``Re v`` or ``arg v``);
* a source box S with interval :math:`[a, b]` (in the coordinate) gets p interpolation nodes
  :math:`x_k` on its curve (Chebyshev points of :math:`[a, b]`, mapped to the circle in the
  angular case) and equivalent charges :math:`Q_k = \sum_{j \in S} \ell_k(u_j) q_j`, with the
  Lagrange polynomials :math:`\ell_k` in the complex variable u; parents get theirs from their
  children exactly (:math:`\ell^{P}_k` has degree p - 1);
* a target box T and a source box S of the same level interact through :math:`Q` when
  :math:`\operatorname{dist}(T, S) \ge \eta\,\operatorname{width}(S)` (:math:`\eta = 1`), else
  their children are compared; leaves that never separate are summed directly.

Polynomial interpolation of :math:`1/(v - u)` in u has the exact remainder
:math:`\omega(u) / (\omega(v) (v - u))`, :math:`\omega(u) = \prod_k (u - x_k)`; with
:math:`\eta = 1` this decays like :math:`\rho^{-p}`, :math:`\rho = 3 + \sqrt 8`, and p is chosen
from ``tol``. Cost per product with B right-hand sides: :math:`O(B (m + n)\, p \log(m + n))`
plus the near field :math:`O(B (m + n) p)`; storage: the plan, :math:`O((m + n) + \text{boxes}\cdot p^2)`
numbers (the kernel blocks are rebuilt per product, never stored).

The plan is built once from the nodes on the host (NumPy); every product then runs in the
backend of the data (torch ops for tensors, on their device, differentiable in the charges).
Node gradients are not propagated through the fast path: callers use the exact path then.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CauchyPlan", "VandermondePlan", "default_tol", "interpolation_order", "source_mode"]

#: Separation ratio: a source box interacts through its expansion with targets at distance
#: at least ETA times its width.
ETA = 1.0
_RHO = 1 + 2 * ETA + 2 * math.sqrt(ETA * ETA + ETA)


def default_tol(real_dtype_name):
    """The default tolerance of the fast path: 1e-12 in float64, 1e-5 in float32 (relative to ‖C‖‖x‖)."""
    return 1e-5 if "32" in real_dtype_name or "16" in real_dtype_name else 1e-12


def interpolation_order(tol):
    """Interpolation nodes per box for ``tol``: the remainder decays like rho**-p (rho = 5.83), with margin."""
    return int(min(40, max(4, math.ceil(math.log(1.0 / tol) / math.log(_RHO)))))


def source_mode(u, tol):
    """``"real"``, ``"circle"`` or ``None``: the curve the nodes ``u`` (NumPy, 1-D) lie on."""
    if not np.iscomplexobj(u) or not np.any(np.imag(u)):
        return "real"
    if np.all(np.abs(np.abs(u) - 1.0) <= max(tol, 64 * np.finfo(np.float64).eps)):
        return "circle"
    return None


def _chebyshev(p):
    return np.cos(np.pi * (2 * np.arange(p) + 1) / (2 * p))


def _lagrange(nodes, z):
    """Lagrange basis of ``nodes`` (..., p) evaluated at ``z`` (..., N): (..., p, N), barycentric form."""
    diff = nodes[..., :, None] - nodes[..., None, :]
    p = nodes.shape[-1]
    diff = diff + np.eye(p)  # the diagonal of prod_{j != k} (x_k - x_j)
    weights = 1.0 / np.prod(diff, axis=-1)
    d = z[..., None, :] - nodes[..., :, None]
    exact = d == 0
    terms = weights[..., :, None] / np.where(exact, 1.0, d)
    basis = terms / np.sum(terms, axis=-2, keepdims=True)
    hit = np.any(exact, axis=-2, keepdims=True)
    return np.where(hit, exact.astype(basis.dtype), basis)


class _Side:
    """One side of the tree (targets or sources): sorted, padded coordinates and box intervals."""

    def __init__(self, points, coordinate, levels):
        count = points.shape[0]
        self.order = np.argsort(coordinate, kind="stable")
        self.per_leaf = max(1, -(-count // (1 << levels)))
        padded = self.per_leaf << levels
        # Padding repeats the last sorted point (zero charge / discarded result): boxes stay equal-sized
        # and every interval is the hull of real points.
        self.index = np.concatenate([self.order, np.full(padded - count, self.order[-1])])
        self.points = points[self.index]
        self.coordinate = coordinate[self.index]
        self.intervals = []
        for level in range(levels + 1):
            boxes = self.coordinate.reshape(1 << level, -1)
            self.intervals.append((boxes.min(axis=1), boxes.max(axis=1)))


class CauchyPlan:
    r"""The tree, interaction lists and interpolation operators for :math:`y = C(v, u)\,q`.

    Parameters
    ----------
    v : numpy.ndarray, shape (m,)
        Targets (any complex or real numbers).
    u : numpy.ndarray, shape (n,)
        Sources, on the real line or the unit circle (see ``source_mode``).
    tol : float
        Target accuracy relative to :math:`\|C\|\,\|q\|`.
    mode : {"real", "circle"}

    Examples
    --------
    >>> import numpy as np
    >>> from ldr.backends import get_backend
    >>> from ldr.fast_cauchy import CauchyPlan
    >>> v, u = np.linspace(-1, 1, 300), np.linspace(-1, 1, 280) + 1e-3
    >>> plan = CauchyPlan(v, u, 1e-10, "real")
    >>> q = np.random.default_rng(0).standard_normal((280, 2))
    >>> C = 1.0 / (v[:, None] - u[None, :])
    >>> bool(np.linalg.norm(plan.apply(get_backend(q), q) - C @ q) <= 1e-10 * np.linalg.norm(C, 2) * np.linalg.norm(q))
    True
    """

    def __init__(self, v, u, tol, mode):
        self.m, self.n, self.mode, self.tol = v.shape[0], u.shape[0], mode, tol
        p = self.p = interpolation_order(tol)
        leaf = 2 * p
        self.levels = levels = max(0, math.ceil(math.log2(max(self.m, self.n) / leaf)))
        if mode == "circle":
            self.period = 2 * np.pi
            tcoord, scoord = np.mod(np.angle(v), 2 * np.pi), np.mod(np.angle(u), 2 * np.pi)
        else:
            self.period = None
            tcoord, scoord = np.real(v).astype(float), np.real(u).astype(float)
        T, S = _Side(v, tcoord, levels), _Side(u, scoord, levels)
        self.targets, self.sources = T, S
        # Far away from every target: the node of the zero-charge padding box.
        self.pad_point = 3.0 * (np.max(np.abs(v)) + np.max(np.abs(u))) + 1.0

        # Interpolation nodes of every source box (on its curve) and the normalised variable.
        cheb = _chebyshev(p)
        self.box_nodes, self.box_map = [], []
        # Floor the half-widths (a box of coincident points has width 0) so that the p nodes stay
        # distinct in floating point; the floored interval is the one admissibility uses.
        extent = np.max(np.abs(scoord)) + np.max(np.abs(tcoord)) + 1e-300
        floor = 1e-7 * (self.period if self.period else extent)
        S.intervals = [((a + b) / 2 - np.maximum((b - a) / 2, floor), (a + b) / 2 + np.maximum((b - a) / 2, floor))
                       for a, b in S.intervals]
        for a, b in S.intervals:
            centre, half = (a + b) / 2, (b - a) / 2
            t = centre[:, None] + half[:, None] * cheb[None, :]
            if mode == "circle":
                nodes, origin, scale = np.exp(1j * t), np.exp(1j * centre), half
            else:
                nodes, origin, scale = t, centre, half
            self.box_nodes.append(nodes)
            self.box_map.append((origin, scale))

        # Leaf anterpolation: Q = L q per leaf box; parents: Q_P = M0 Q_child0 + M1 Q_child1.
        leaves = S.points.reshape(1 << levels, -1)
        origin, scale = self.box_map[levels]
        self.leaf_basis = _lagrange(self._normalise(self.box_nodes[levels], origin, scale),
                                    self._normalise(leaves, origin, scale))  # (boxes, p, per_leaf)
        self.transfer = [None]
        for level in range(1, levels + 1):
            origin, scale = self.box_map[level - 1]
            child = self.box_nodes[level].reshape(1 << (level - 1), 2, p)
            parent = self._normalise(self.box_nodes[level - 1], origin, scale)
            self.transfer.append(
                [_lagrange(parent, self._normalise(child[:, c, :], origin, scale)) for c in (0, 1)]
            )

        self._interaction_lists()
        self._constants = {}

    @staticmethod
    def _normalise(points, origin, scale):
        return (points - origin[:, None]) / scale[:, None]

    def _distance(self, level, tbox, sbox):
        (ta, tb), (sa, sb) = self.targets.intervals[level], self.sources.intervals[level]
        ta, tb, sa, sb = ta[tbox], tb[tbox], sa[sbox], sb[sbox]
        shifts = (0.0,) if self.period is None else (-self.period, 0.0, self.period)
        return np.min([np.maximum(0.0, np.maximum(sa + s - tb, ta - sb - s)) for s in shifts], axis=0)

    def _arc_distance(self, level, tbox, sbox):
        """Smallest Euclidean distance from the targets of box T to the arc of box S, per pair."""
        a, b = self.sources.intervals[level]
        a, b = a[sbox][:, None], b[sbox][:, None]
        points = self.targets.points.reshape(1 << level, -1)[tbox]  # (pairs, per box)
        inside = np.mod(np.angle(points) - a, 2 * np.pi) <= (b - a)
        ends = np.minimum(np.abs(points - np.exp(1j * a)), np.abs(points - np.exp(1j * b)))
        return np.min(np.where(inside, np.abs(np.abs(points) - 1.0), ends), axis=1)

    def _interaction_lists(self):
        """Far lists per level and the near list at the leaves, as padded (boxes, count) index arrays."""
        tbox, sbox = np.zeros(1, dtype=int), np.zeros(1, dtype=int)
        self.far = {}
        for level in range(self.levels + 1):
            sa, sb = self.sources.intervals[level]
            if self.period is None:
                distance, size = self._distance(level, tbox, sbox), sb[sbox] - sa[sbox]
            else:
                # On the circle the interpolation lives in the complex u-plane: what matters is the
                # Euclidean distance of the targets (anywhere, e.g. near 0) from the arc, against
                # its chord; an arc wider than a half circle is never separated.
                width = sb[sbox] - sa[sbox]
                distance = self._arc_distance(level, tbox, sbox)
                size = np.where(width <= np.pi, 2 * np.sin(np.minimum(width, np.pi) / 2), np.inf)
            far = (distance >= ETA * size) & (distance > 0)
            if far.any():
                self.far[level] = _padded_lists(tbox[far], sbox[far], 1 << level)
            tbox, sbox = tbox[~far], sbox[~far]
            if level < self.levels:
                tbox = (2 * tbox[:, None] + np.array([0, 0, 1, 1])).ravel()
                sbox = (2 * sbox[:, None] + np.array([0, 1, 0, 1])).ravel()
        self.near = _padded_lists(tbox, sbox, 1 << self.levels)
        self.top = min(self.far, default=self.levels)

    # -- evaluation ----------------------------------------------------------------------------------
    def _constant(self, bk, key, make, dtype, like):
        stamp = (bk.name, str(dtype), str(bk.device(like)), key)
        if stamp not in self._constants:
            self._constants[stamp] = bk.asarray(make(), dtype=dtype, like=like)
        return self._constants[stamp]

    def apply(self, bk, q):
        r""":math:`C(v, u)\,q` for charges q (n, B) in the compute dtype: returns (m, B).

        Every step is a gather, an elementwise kernel evaluation or a batched GEMM over boxes
        whose column dimension is the whole batch B.
        """
        dtype, p, levels = q.dtype, self.p, self.levels
        S, T = self.sources, self.targets
        batch = q.shape[-1]
        kind = bk.dtype_kind(dtype)
        q_sorted = bk.take(q, S.index, axis=0)
        # Padding entries repeat the last source: zero their charges.
        mask = self._constant(bk, "smask", lambda: _padding_mask(S, self.n)[:, None], dtype, q)
        q_sorted = q_sorted * mask
        leaf_charges = q_sorted.reshape((1 << levels, S.per_leaf, batch))

        as_node = (lambda a: a) if kind == "c" else np.real
        target_points = self._constant(bk, "tpoints", lambda: as_node(T.points), dtype, q)
        rows = target_points.shape[0]
        total = None

        # Upward pass (only as far up as some far list needs).
        Q = {levels: bk.matmul(self._constant(bk, ("leaf",), lambda: self.leaf_basis, dtype, q), leaf_charges)}
        for level in range(levels, self.top, -1):
            M0 = self._constant(bk, ("m0", level), lambda level=level: self.transfer[level][0], dtype, q)
            M1 = self._constant(bk, ("m1", level), lambda level=level: self.transfer[level][1], dtype, q)
            Q[level - 1] = bk.matmul(M0, Q[level][0::2]) + bk.matmul(M1, Q[level][1::2])

        for level, (lists, count) in self.far.items():
            boxes = 1 << level
            nodes = self._constant(
                bk, ("far", level), lambda level=level, lists=lists: as_node(self._far_nodes(level, lists)), dtype, q
            )  # (boxes, count * p)
            K = 1.0 / (target_points.reshape((boxes, -1, 1)) - bk.expand_dims(nodes, -2))
            Qe = bk.concatenate([Q[level], bk.zeros((1, p, batch), dtype, like=q)], axis=0)
            gathered = bk.take(Qe, lists.ravel(), axis=0).reshape((boxes, count * p, batch))
            part = bk.matmul(K, gathered).reshape((rows, batch))
            total = part if total is None else total + part

        lists, count = self.near
        boxes = 1 << levels
        near_nodes = self._constant(bk, "near", lambda: as_node(self._near_nodes(lists)), dtype, q)
        K = 1.0 / (target_points.reshape((boxes, -1, 1)) - bk.expand_dims(near_nodes, -2))
        charges = bk.concatenate([leaf_charges, bk.zeros((1, S.per_leaf, batch), dtype, like=q)], axis=0)
        gathered = bk.take(charges, lists.ravel(), axis=0).reshape((boxes, count * S.per_leaf, batch))
        part = bk.matmul(K, gathered).reshape((rows, batch))
        total = part if total is None else total + part
        return bk.take(total, np.argsort(T.order, kind="stable"), axis=0)

    def _far_nodes(self, level, lists):
        nodes = np.concatenate([self.box_nodes[level], np.full((1, self.p), self.pad_point)], axis=0)
        return nodes[lists].reshape(lists.shape[0], -1)

    def _near_nodes(self, lists):
        leaves = self.sources.points.reshape(1 << self.levels, -1)
        leaves = np.concatenate([leaves, np.full((1, leaves.shape[1]), self.pad_point)], axis=0)
        return leaves[lists].reshape(lists.shape[0], -1)


def _padding_mask(side, count):
    mask = np.ones(side.index.shape[0])
    mask[count:] = 0.0
    return mask


def _padded_lists(tbox, sbox, boxes):
    """Pairs (tbox, sbox) as an index array (boxes, count): row t lists its sources, padded with
    ``boxes`` (the appended zero box)."""
    order = np.argsort(tbox, kind="stable")
    tbox, sbox = tbox[order], sbox[order]
    counts = np.bincount(tbox, minlength=boxes)
    count = max(1, int(counts.max(initial=0)))
    lists = np.full((boxes, count), boxes, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    slot = np.arange(tbox.shape[0]) - starts[tbox]
    lists[tbox, slot] = sbox
    return lists, count


#: The fast Vandermonde path needs every node at least this far (in |v^n - f'|) from the n-th
#: roots of f'; nearer nodes meet a Cauchy near-collision (see docs/theory/node_kernels.rst).
VANDERMONDE_SEPARATION = 0.1


class VandermondePlan:
    r"""The Vandermonde-to-Cauchy identity for :math:`V(v)\,t`, nodes in the closed unit disc.

    .. math:: V(v) = \operatorname{diag}(v^n - f')\, C(v, \omega)\,
              \operatorname{diag}(\omega / (n f'))\, V(\omega), \qquad \omega_k^n = f',

    with :math:`f' \in \{1, -1, i, -i\}` chosen to maximise :math:`\min_i |v_i^n - f'|` and
    :math:`V(\omega) t = n\, \mathrm{IDFT}(t \circ \zeta^j)`, :math:`\zeta = f'^{1/n}`. The
    Cauchy tolerance is ``tol / (8 log(n + 1))``: the Lebesgue function
    :math:`\sum_k |v^n - f'| / (n |v - \omega_k|)` of interpolation at the roots grows like log n.

    ``reason`` is a string (and ``plan`` None) when the identity does not apply.
    """

    def __init__(self, v, n, tol):
        self.plan, self.reason = None, None
        if np.max(np.abs(v)) > 1 + 1e-6:  # float32 round-off of unit-circle nodes is allowed
            self.reason = "a node lies outside the unit circle"
            return
        with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
            vn = np.exp(n * np.log(np.where(v == 0, 1.0, v).astype(complex))) * (v != 0)
        candidates = (1.0, -1.0, 1j, -1j)
        separation = [float(np.min(np.abs(vn - c))) for c in candidates]
        best = int(np.argmax(separation))
        if separation[best] < VANDERMONDE_SEPARATION:
            self.reason = (f"the nodes come within {separation[best]:.1e} (in |v**n - f'|) of the n-th roots of "
                           "every f' in {1, -1, i, -i}")
            return
        self.fprime = candidates[best]
        self.zeta = np.exp(1j * np.angle(self.fprime) / n)
        self.omega = self.zeta * np.exp(2j * np.pi * np.arange(n) / n)
        self.twist = self.zeta ** np.arange(n)  # |zeta| = 1: accurate to a few ulps for n <= 2**20
        self.vn = vn
        self.plan = CauchyPlan(np.asarray(v, dtype=complex), self.omega, tol / (8 * math.log(n + 1)), "circle")
