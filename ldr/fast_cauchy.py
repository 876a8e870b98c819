r"""Error-controlled fast products with the Cauchy kernel :math:`C(v, u)_{ij} = 1/(v_i - u_j)`.

Two methods on binary trees of equal-count boxes over a 1-D coordinate (the real line: ``Re``;
the unit circle: ``arg``), both with Chebyshev interpolation of the kernel (see
:doc:`/theory/node_kernels`):

* **FMM** (targets and sources on the same curve): interpolation in both variables. Each source
  box carries p equivalent charges :math:`Q_S = L_S q` at its Chebyshev nodes (P2M at the leaves,
  exact M2M upwards), each target box p local values :math:`\Phi_T` at its nodes (M2L
  :math:`\Phi_T \mathrel{+}= K(x^T, y^S) Q_S` from the interaction list, L2L downwards, L2P at
  the leaves); leaves that never separate are summed exactly (the near field). A pair of boxes
  of one level interacts when their distance is at least :math:`\eta = 1` times the larger
  width (on the circle: arcs of at most ``MAX_ARC``). Cost per product with B columns:
  :math:`O(B (m + n) p)` (the tree depth only enters through the small p×p translations).
* **Treecode** (targets anywhere, sources on a curve): source-side interpolation only, the
  expansions evaluated directly at the targets: :math:`O(B (m + n) p \log(m + n))`.

Every translation of one kind and level is one batched GEMM over boxes (sliding windows,
padded or flat block lists: ``_BlockSparse``) whose column dimension is the whole batch B.
Polynomial interpolation of :math:`1/(x - y)` has the exact remainder
:math:`\omega(y) / (\omega(x) (x - y))`; for well-separated boxes it decays like
:math:`\rho^{-p}`, :math:`\rho = 3 + \sqrt 8`, and p is chosen from ``tol``. Storage: the
plan, :math:`O((m + n) p + \text{boxes}\cdot p^2)` numbers including the near-field blocks.

The plan is built once from the nodes on the host (NumPy); every product then runs in the
backend of the data (torch ops for tensors, on their device, differentiable in the charges).
Node gradients are not propagated through the fast path: callers use the exact path then.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "CauchyPlan", "VandermondePlan", "default_tol", "interpolation_order", "source_mode", "weighted_product",
    "weighted_charges_product", "weighted_sum",
]

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


class _Treecode:
    """Far field by equivalent charges evaluated directly at the targets (no local expansions).

    The fallback of :class:`CauchyPlan` for targets off the sources' curve (complex targets of
    real sources, targets inside the unit circle): a local expansion needs the targets on a
    1-D curve, the treecode only the sources.
    """

    def __init__(self, v, u, tol, mode, leaf=None):
        self.m, self.n, self.mode, self.tol = v.shape[0], u.shape[0], mode, tol
        p = self.p = interpolation_order(tol)
        leaf = 2 * p if leaf is None else leaf
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
        self.source_index, self.target_index = S.index, T.index
        self.unsort = np.argsort(T.order, kind="stable")

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

    def apply_sorted(self, bk, q_sorted):
        r"""Charges (n', B) in the order ``source_index`` -> C q (m', B) in the order ``target_index``.

        Every step is a gather, an elementwise kernel evaluation or a batched GEMM over boxes
        whose column dimension is the whole batch B.
        """
        q = q_sorted
        dtype, p, levels = q.dtype, self.p, self.levels
        S, T = self.sources, self.targets
        batch = q.shape[-1]
        kind = bk.dtype_kind(dtype)
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
        return part if total is None else total + part

    def _far_nodes(self, level, lists):
        nodes = np.concatenate([self.box_nodes[level], np.full((1, self.p), self.pad_point)], axis=0)
        return nodes[lists].reshape(lists.shape[0], -1)

    def _near_nodes(self, lists):
        leaves = self.sources.points.reshape(1 << self.levels, -1)
        leaves = np.concatenate([leaves, np.full((1, leaves.shape[1]), self.pad_point)], axis=0)
        return leaves[lists].reshape(lists.shape[0], -1)


#: A block-sparse translation is stored as sliding windows or padded (one batched GEMM over
#: target boxes, each with the same number of source blocks) while the zero blocks cost at most
#: this factor of the true ones; beyond it (irregular node sets) the blocks are kept flat and
#: summed per target box.
PAD_WASTE = 2.0


class _BlockSparse:
    r""":math:`Y_t = \sum_{(t, s)} K_{ts} X_s` over a list of box pairs: X (boxes, b, B) -> Y (nT, a, B).

    Three layouts, all exact: ``"window"`` when every pair has s - t (modulo the box count if
    ``periodic``) in a short range [lo, lo + c): Y = K_t [X_{t+lo}; ...; X_{t+lo+c-1}] over a
    strided view of X (no copy; X needs ``guards`` boxes before and after, periodic copies of
    the boxes at the other end); ``"padded"``: the source boxes gathered per target,
    padded to the largest count with zero blocks; ``"flat"``: one block product per pair, then
    segment sums.
    """

    def __init__(self, tbox, sbox, blocks, targets, sources, windows=False, periodic=False):
        order = np.argsort(tbox, kind="stable")
        tbox, sbox, blocks = tbox[order], sbox[order], blocks[order]
        pairs, a, b = blocks.shape
        self.shape, self.guards, self.mode = (targets, sources, a, b), (0, 0), None
        if pairs == 0:
            self.mode, self.blocks = "empty", np.zeros((0, a, b), dtype=blocks.dtype)
            return
        counts = np.bincount(tbox, minlength=targets)
        count = int(counts.max())
        if windows:
            offset = sbox - tbox
            if periodic:  # on the circle the last box neighbours the first: offsets modulo the boxes
                offset = (offset + sources // 2) % sources - sources // 2
            lo, width = int(offset.min()), int(offset.max() - offset.min()) + 1
            if width * targets <= PAD_WASTE * pairs:
                self.mode, self.lo, self.count = "window", lo, width
                self.guards = (max(0, -lo), max(0, lo + width - 1 + targets - sources))
                padded = np.zeros((targets, width, a, b), dtype=blocks.dtype)
                padded[tbox, offset - lo] = blocks
                self.blocks = padded.transpose(0, 2, 1, 3).reshape(targets, a, width * b)
                return
        if count * targets <= PAD_WASTE * pairs + targets:
            self.mode, self.count = "padded", count
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            slot = np.arange(pairs) - starts[tbox]
            # Empty slots read box 0 against a zero block.
            lists = np.zeros((targets, count), dtype=np.int64)
            lists[tbox, slot] = sbox
            padded = np.zeros((targets, count, a, b), dtype=blocks.dtype)
            padded[tbox, slot] = blocks
            self.lists, self.blocks = lists.ravel(), padded.transpose(0, 2, 1, 3).reshape(targets, a, count * b)
            return
        self.mode = "flat"
        present, starts = np.unique(tbox, return_index=True)
        rows = np.full(targets, present.shape[0], dtype=np.int64)  # absent: the appended zero row
        rows[present] = np.arange(present.shape[0])
        self.lists, self.blocks, self.starts, self.rows = sbox, blocks, starts, rows

    def apply(self, bk, blocks, X, guard=0):
        """``blocks``: ``self.blocks`` in the backend and dtype of X; X holds ``guard`` boxes
        before the source boxes (at least ``self.guards``). Returns None for no pairs."""
        targets, sources, a, b = self.shape
        batch = X.shape[-1]
        if self.mode == "empty":
            return None
        if self.mode == "window":
            start = (guard + self.lo) * b
            rows = X.reshape((-1, batch))[start:]
            return bk.matmul(blocks, bk.sliding_windows(rows, self.count * b, b)[:targets])
        if self.mode == "padded":
            gathered = bk.take(X, self.lists + guard, axis=0).reshape((targets, -1, batch))
            return bk.matmul(blocks, gathered)
        Z = bk.matmul(blocks, bk.take(X, self.lists + guard, axis=0))
        Y = bk.segment_sum(Z, self.starts)
        Y = bk.concatenate([Y, bk.zeros((1, a, batch), Y.dtype, like=Y)], axis=0)
        return bk.take(Y, self.rows, axis=0)


class _FmmSide:
    """Targets or sources sorted by coordinate into 2**levels equal-count leaves, with nested
    (floored) box intervals, Chebyshev nodes per box and the map to the normalised variable."""

    def __init__(self, points, coordinate, levels, p, floor, mode):
        count, leaves = points.shape[0], 1 << levels
        self.count, self.levels = count, levels
        self.order = np.argsort(coordinate, kind="stable")
        self.per_leaf = max(1, -(-count // leaves))
        # Leaf k holds the sorted points starts[k]:starts[k + 1] (sizes differ by at most one),
        # padded by repeating its last point (zero charge / discarded result): boxes stay
        # equal-sized, spread evenly, and every interval is the hull of real points.
        starts = (np.arange(leaves + 1) * count) // leaves
        slot = np.arange(self.per_leaf)
        rank = starts[:-1, None] + slot[None, :]
        self.real = (rank < starts[1:, None]).ravel()
        rank = np.minimum(np.minimum(rank, starts[1:, None] - 1), count - 1).clip(0)
        self.index = self.order[rank.ravel()]
        # Row of each sorted point in the padded layout.
        leaf_of = np.repeat(np.arange(leaves), np.diff(starts))
        position = np.empty(count, dtype=np.int64)
        position[self.order] = leaf_of * self.per_leaf + (np.arange(count) - starts[leaf_of])
        self.position = position
        self.points = points[self.index]
        coord = coordinate[self.index].reshape(leaves, -1)
        # Leaf hulls, floored (a box of coincident points has width 0: the p nodes must stay
        # distinct); parents are the hulls of their children, so a child's interval always lies
        # inside its parent's and no transfer extrapolates.
        centre, half = (coord.min(axis=1) + coord.max(axis=1)) / 2, (coord.max(axis=1) - coord.min(axis=1)) / 2
        half = np.maximum(half, floor)
        lo, hi = [centre - half], [centre + half]
        for _ in range(levels):
            lo.insert(0, lo[0].reshape(-1, 2).min(axis=1))
            hi.insert(0, hi[0].reshape(-1, 2).max(axis=1))
        self.lo, self.hi = lo, hi
        # A box is filled when it holds a real point.
        filled = np.diff(starts) > 0
        self.filled = [filled.reshape(1 << level, -1).any(axis=1) for level in range(levels + 1)]
        cheb = _chebyshev(p)
        self.nodes, self.maps = [], []
        for a, b in zip(lo, hi):
            centre, half = (a + b) / 2, (b - a) / 2
            t = centre[:, None] + half[:, None] * cheb[None, :]
            if mode == "circle":
                # Nodes on the arc; the Lagrange basis is polynomial in the complex variable z, so
                # points a round-off off the circle are interpolated as accurately as on it.
                self.nodes.append(np.exp(1j * t))
                self.maps.append((np.exp(1j * centre), half))
            else:
                self.nodes.append(t)
                self.maps.append((centre, half))

    def normalise(self, level, points):
        """Points (boxes, k) of the boxes of ``level`` in the scaled variable of their box."""
        origin, scale = self.maps[level]
        return (points - origin[:, None]) / scale[:, None]

    def leaf_basis(self):
        """ℓ_k(z_i) for the points of every leaf: (leaves, p, per_leaf)."""
        L = self.levels
        return _lagrange(self.normalise(L, self.nodes[L]), self.normalise(L, self.points.reshape(1 << L, -1)))

    def transfer(self, level):
        """ℓ^parent_k(x^child_j) for the boxes of ``level``: (parents, p, 2p), both children side by side."""
        children = self.nodes[level].reshape(1 << (level - 1), -1)
        return _lagrange(self.normalise(level - 1, self.nodes[level - 1]), self.normalise(level - 1, children))


#: Points per leaf box of the FMM (the larger side), as a multiple of p: the near field costs
#: about 3 leaf multiply-adds per point and column, the translations about 10 p^2 / leaf.
LEAF_FACTOR = 6

#: On the circle only arcs up to this angle interact through expansions: the interpolation in
#: the complex variable on a longer (more curved) arc converges more slowly than on a segment
#: (measured, n = 256: quarter circles let ‖error‖₂ reach 4 tol ‖C‖₂ at tol = 1e-12; eighths 0.12 tol ‖C‖₂).
MAX_ARC = np.pi / 4


class _FMM:
    r"""Fast multipole method with Chebyshev interpolation of :math:`1/(x - y)` in both variables.

    Targets and sources lie on one curve (real line or unit circle). Per box and level:
    equivalent charges :math:`Q_S` at the source nodes (P2M at the leaves, M2M upwards), local
    values :math:`\Phi_T` at the target nodes (M2L from the interaction list, L2L downwards,
    L2P at the leaves), and the near field of non-separated leaves summed exactly.
    """

    def __init__(self, v, u, tol, mode, leaf=None):
        self.m, self.n, self.mode, self.tol = v.shape[0], u.shape[0], mode, tol
        p = self.p = interpolation_order(tol)
        leaf = LEAF_FACTOR * p if leaf is None else leaf
        self.levels = levels = max(0, math.ceil(math.log2(max(self.m, self.n) / leaf)))
        if mode == "circle":
            self.period = 2 * np.pi
            tcoord, scoord = np.mod(np.angle(v), 2 * np.pi), np.mod(np.angle(u), 2 * np.pi)
            # Points off the circle by delta (round-off) are interpolated in z from a distance
            # delta of the arc: harmless while delta << the arc's half-width, hence the floor
            # (it amplifies the interpolation error by at most (1 + sqrt(2e-4))**p).
            off = max(np.max(np.abs(np.abs(v) - 1.0)), np.max(np.abs(np.abs(u) - 1.0)))
            floor = max(1e-10 * self.period, 1e4 * off)
        else:
            self.period = None
            tcoord, scoord = np.real(v).astype(float), np.real(u).astype(float)
            both = np.concatenate([tcoord, scoord])
            # Also at least 1e-12 of the largest coordinate: the p nodes of a floored box then
            # stay ~100 ulps apart even for clustered nodes far from 0 (1e8 + 1e-6 k).
            floor = max(1e-10 * (both.max() - both.min()), 1e-12 * np.max(np.abs(both))) + 1e-300
        T = self.targets = _FmmSide(v, tcoord, levels, p, floor, mode)
        S = self.sources = _FmmSide(u, scoord, levels, p, floor, mode)
        self.p2m, self.l2p = S.leaf_basis(), np.swapaxes(T.leaf_basis(), -1, -2)
        self.m2m = [None] + [S.transfer(level) for level in range(1, levels + 1)]
        self.l2l = [None] + [np.swapaxes(T.transfer(level), -1, -2) for level in range(1, levels + 1)]
        self._interaction_lists()
        self._constants = {}

    def _admissible(self, level, tbox, sbox):
        T, S = self.targets, self.sources
        ta, tb, sa, sb = T.lo[level][tbox], T.hi[level][tbox], S.lo[level][sbox], S.hi[level][sbox]
        shifts = (0.0,) if self.period is None else (-self.period, 0.0, self.period)
        distance = np.min([np.maximum(0.0, np.maximum(sa + s - tb, ta - sb - s)) for s in shifts], axis=0)
        width = np.maximum(tb - ta, sb - sa)
        ok = (distance >= ETA * width) & (distance > 0)
        if self.period is not None:
            ok &= width <= MAX_ARC  # short arcs: nearly straight
        return ok

    def _interaction_lists(self):
        T, S, p = self.targets, self.sources, self.p
        tbox, sbox = np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
        self.m2l = {}
        for level in range(self.levels + 1):
            keep = T.filled[level][tbox] & S.filled[level][sbox]
            tbox, sbox = tbox[keep], sbox[keep]
            far = self._admissible(level, tbox, sbox)
            if far.any():
                blocks = 1.0 / (T.nodes[level][tbox[far], :, None] - S.nodes[level][sbox[far], None, :])
                self.m2l[level] = _BlockSparse(tbox[far], sbox[far], blocks, 1 << level, 1 << level)
            tbox, sbox = tbox[~far], sbox[~far]
            if level < self.levels:
                tbox = (2 * tbox[:, None] + np.array([0, 0, 1, 1])).ravel()
                sbox = (2 * sbox[:, None] + np.array([0, 1, 0, 1])).ravel()
        L = self.levels
        tpts, spts = T.points.reshape(1 << L, -1), S.points.reshape(1 << L, -1)
        blocks = 1.0 / (tpts[tbox, :, None] - spts[sbox, None, :])
        # Padding sources (the repeated last point) get zero columns in every operator that reads
        # the charges, so their values never matter and no mask is applied per product.
        real = S.real.reshape(1 << L, -1)
        blocks = blocks * real[sbox, None, :]
        self.p2m = self.p2m * real[:, None, :]
        self.near = _BlockSparse(tbox, sbox, blocks, 1 << L, 1 << L, windows=True, periodic=self.period is not None)
        self.top = min(self.m2l, default=L + 1)
        # The sorted charges carry the near field's guard boxes: periodic copies of the boxes at
        # the other end (read on the circle; on the line only against zero blocks).
        before, after = self.near.guards
        leaves = S.index.reshape(1 << L, -1)
        self.source_index = leaves[np.arange(-before, (1 << L) + after) % (1 << L)].ravel()
        self.target_index = T.index
        self.unsort = T.position

    def _constant(self, bk, key, array, dtype, like):
        stamp = (bk.name, str(dtype), str(bk.device(like)), key)
        if stamp not in self._constants:
            if bk.dtype_kind(dtype) != "c":
                array = np.real(array)  # real charges only in the "real" mode: real operators
            self._constants[stamp] = bk.asarray(array, dtype=dtype, like=like)
        return self._constants[stamp]

    def apply_sorted(self, bk, charges):
        r"""Charges (len(source_index), B) in the order ``source_index`` -> C q, (len(target_index), B),
        rows in the order ``target_index``. Every step is one batched GEMM over boxes (or a
        gather) with the whole batch B as the column dimension."""
        if self.mode == "circle" and bk.dtype_kind(charges.dtype) != "c":
            charges = bk.cast(charges, bk.complex_dtype(charges.dtype))  # complex nodes: complex operators
        dtype, p, L = charges.dtype, self.p, self.levels
        S = self.sources
        batch = charges.shape[-1]
        const = lambda key, array: self._constant(bk, key, array, dtype, charges)  # noqa: E731
        boxes = charges.reshape((-1, S.per_leaf, batch))
        guard = self.near.guards[0]
        out = self.near.apply(bk, const("near", self.near.blocks), boxes, guard=guard)
        if self.m2l:
            # Upward pass: equivalent charges at the source nodes, as far up as an M2L needs.
            Q = {L: bk.matmul(const("p2m", self.p2m), boxes[guard:guard + (1 << L)])}
            for level in range(L, self.top, -1):
                Q[level - 1] = bk.matmul(const(("m2m", level), self.m2m[level]), Q[level].reshape((-1, 2 * p, batch)))
            # Downward pass: local values at the target nodes.
            phi = None
            for level in range(self.top, L + 1):
                if phi is not None:
                    phi = bk.matmul(const(("l2l", level), self.l2l[level]), phi).reshape((1 << level, p, batch))
                if level in self.m2l:
                    ops = self.m2l[level]
                    part = ops.apply(bk, const(("m2l", level), ops.blocks), Q[level])
                    phi = part if phi is None else phi + part
            far = bk.matmul(const("l2p", self.l2p), phi)
            out = far if out is None else out + far
        if out is None:
            out = bk.zeros((self.target_index.shape[0], batch), dtype, like=charges)
        return out.reshape((-1, batch))


def _on_curve(points, mode):
    """Whether ``points`` lie on the curve of ``mode`` closely enough for local expansions."""
    if mode == "real":
        return not np.iscomplexobj(points) or not np.any(np.imag(points))
    # 1e-6: float32 round-off of unit-circle points (6e-8) passes; the interpolation in the
    # complex variable is accurate within distance << box width of the arc.
    return bool(np.all(np.abs(np.abs(points) - 1.0) <= 1e-6))


class CauchyPlan:
    r"""A fast product :math:`y = C(v, u)\,q`, :math:`C_{ij} = 1/(v_i - u_j)`, to a tolerance.

    A fast multipole method (:class:`_FMM`) when the targets lie on the sources' curve; a
    treecode (far-field expansions evaluated at the targets) when they lie anywhere else in the
    complex plane. See :doc:`/theory/node_kernels`.

    Parameters
    ----------
    v : numpy.ndarray, shape (m,)
        Targets (any complex or real numbers).
    u : numpy.ndarray, shape (n,)
        Sources, on the real line or the unit circle (see ``source_mode``).
    tol : float
        Target accuracy relative to :math:`\|C\|\,\|q\|`.
    mode : {"real", "circle"}
    leaf : int, optional
        Points per leaf box of the larger side (default 3p for the FMM, 2p for the treecode).

    Attributes
    ----------
    kind : {"fmm", "treecode"}
    p, levels : int
        Interpolation nodes per box and tree depth.

    Examples
    --------
    >>> import numpy as np
    >>> from ldr.backends import get_backend
    >>> from ldr.fast_cauchy import CauchyPlan
    >>> v, u = np.linspace(-1, 1, 300), np.linspace(-1, 1, 280) + 1e-3
    >>> plan = CauchyPlan(v, u, 1e-10, "real")
    >>> plan.kind
    'fmm'
    >>> q = np.random.default_rng(0).standard_normal((280, 2))
    >>> C = 1.0 / (v[:, None] - u[None, :])
    >>> bool(np.linalg.norm(plan.apply(get_backend(q), q) - C @ q) <= 1e-10 * np.linalg.norm(C, 2) * np.linalg.norm(q))
    True
    """

    def __init__(self, v, u, tol, mode, leaf=None):
        self.m, self.n, self.mode, self.tol = v.shape[0], u.shape[0], mode, tol
        self.kind = "fmm" if _on_curve(v, mode) else "treecode"
        impl = self._impl = (_FMM if self.kind == "fmm" else _Treecode)(v, u, tol, mode, leaf)
        self.p, self.levels = impl.p, impl.levels
        #: The plan works on sorted, padded points: charges enter as ``q[source_index]`` and
        #: results leave as rows ``target_index`` (``unsort`` picks row i of C q among them).
        self.source_index, self.target_index, self.unsort = impl.source_index, impl.target_index, impl.unsort
        self.complex = bool(np.iscomplexobj(v) and np.any(np.imag(v)) or np.iscomplexobj(u) and np.any(np.imag(u)))

    def apply_sorted(self, bk, charges):
        """Charges (len(source_index), B), sorted -> (len(target_index), B), sorted (no copies in between)."""
        if self.complex and bk.dtype_kind(charges.dtype) != "c":
            charges = bk.cast(charges, bk.complex_dtype(charges.dtype))  # complex nodes: complex kernel
        return self._impl.apply_sorted(bk, charges)

    def apply(self, bk, q):
        r""":math:`C(v, u)\,q` for charges q (n, B) in the compute dtype: returns (m, B)."""
        out = self.apply_sorted(bk, bk.take(q, self.source_index, axis=0))
        return bk.take(out, self.unsort, axis=0)


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


def weighted_product(bk, plan, weights_out, weights_in, x):
    r""":math:`\sum_l w^{out}_l \circ C\,(w^{in}_l \circ x)` for weights (r, m), (r, n) and x (..., n).

    The charges are formed directly in the plan's sorted order as one contiguous (n', r, b)
    array (b = the flattened batch, innermost so that the broadcast product runs over long
    rows); see :func:`weighted_sum` for the way back.
    """
    lead, n = x.shape[:-1], x.shape[-1]
    xs = bk.take(bk.swapaxes(x.reshape((-1, n)), 0, 1), plan.source_index, axis=0)  # (n', b)
    ws = bk.take(bk.swapaxes(weights_in, 0, 1), plan.source_index, axis=0)  # (n', r)
    charges = bk.expand_dims(ws, -1) * bk.expand_dims(xs, -2)  # (n', r, b)
    return weighted_sum(bk, plan, charges, weights_out, lead, rank_first=True)


def weighted_charges_product(bk, plan, weights_out, z):
    r""":math:`\sum_l w^{out}_l \circ C z_l` for charges z (..., r, n) and weights (r, m)."""
    lead, rank, n = z.shape[:-2], z.shape[-2], z.shape[-1]
    charges = bk.take(bk.swapaxes(z.reshape((-1, n)), 0, 1), plan.source_index, axis=0)  # (n', b r)
    return weighted_sum(bk, plan, charges.reshape((charges.shape[0], -1, rank)), weights_out, lead, rank_first=False)


def weighted_sum(bk, plan, charges, weights_out, lead, rank_first):
    r"""Sorted charges (n', r, b) (or (n', b, r)) -> :math:`\sum_l w^{out}_l \circ (C q_l)`, (..., m).

    ``lead`` is the batch shape. The plan returns (m', r b) sorted rows; the sum over l is one
    batched (1 × r)·(r × b) product per row, then one gather puts the rows back in order.
    """
    shape = charges.shape
    y = plan.apply_sorted(bk, charges.reshape((shape[0], shape[1] * shape[2])))
    ws = bk.take(bk.swapaxes(weights_out, 0, 1), plan.target_index, axis=0)  # (m', r)
    if bk.dtype_kind(y.dtype) == "c" and bk.dtype_kind(ws.dtype) != "c":
        ws = bk.cast(ws, y.dtype)
    if rank_first:
        out = bk.matmul(bk.expand_dims(ws, -2), y.reshape((-1,) + shape[1:]))  # (m', 1, b)
        batch = shape[2]
    else:
        out = bk.matmul(y.reshape((-1,) + shape[1:]), bk.expand_dims(ws, -1))  # (m', b, 1)
        batch = shape[1]
    out = bk.take(out.reshape((-1, batch)), plan.unsort, axis=0)  # (m, b)
    return bk.swapaxes(out, 0, 1).reshape(tuple(lead) + (plan.m,))


#: The fast Vandermonde path needs every node at least this far (in |v^n - f'|) from the n-th
#: roots of f'; nearer nodes meet a Cauchy near-collision (see docs/theory/node_kernels.rst).
VANDERMONDE_SEPARATION = 0.1


class VandermondePlan:
    r"""The Vandermonde-to-Cauchy identity for :math:`V(v)\,t`, nodes in the closed unit disc.

    .. math:: V(v) = \operatorname{diag}(v^n - f')\, C(v, \omega)\,
              \operatorname{diag}(\omega / (n f'))\, V(\omega), \qquad \omega_k^n = f',

    with :math:`f'` the matrix's own corner f when :math:`|f| = 1` and its roots keep
    :math:`\min_i |v_i^n - f| \ge` ``VANDERMONDE_SEPARATION`` (then :math:`V(\omega) C_f(a) =
    \operatorname{diag}(V(\omega) a) V(\omega)` and the f-circulant factors become diagonal:
    ``diagonal`` is True), else :math:`f' \in \{1, -1, i, -i\}` chosen to maximise
    :math:`\min_i |v_i^n - f'|`; :math:`V(\omega) t = n\, \mathrm{IDFT}(t \circ \zeta^j)`,
    :math:`\zeta = f'^{1/n}`. The Cauchy tolerance is ``tol / (8 log(n + 1))``: the Lebesgue
    function :math:`\sum_k |v^n - f'| / (n |v - \omega_k|)` of interpolation at the roots grows
    like log n.

    ``reason`` is a string (and ``plan`` None) when the identity does not apply.
    """

    def __init__(self, v, n, tol, f=None):
        self.plan, self.reason, self.diagonal = None, None, False
        if np.max(np.abs(v)) > 1 + 1e-6:  # float32 round-off of unit-circle nodes is allowed
            self.reason = "a node lies outside the unit circle"
            return
        with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
            vn = np.exp(n * np.log(np.where(v == 0, 1.0, v).astype(complex))) * (v != 0)
        candidates = (1.0, -1.0, 1j, -1j)
        own = f is not None and f != 0 and abs(abs(f) - 1.0) <= 1e-15
        if own and float(np.min(np.abs(vn - f))) >= VANDERMONDE_SEPARATION:
            self.fprime, self.diagonal = complex(f), True
        else:
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
        self.v, self.cauchy_tol = np.asarray(v, dtype=complex), tol / (8 * math.log(n + 1))
        self.plan = CauchyPlan(self.v, self.omega, self.cauchy_tol, "circle")

    def transposed(self):
        r"""The plan of :math:`C(\omega, v)`, for :math:`V(v)^T`; None unless the nodes lie on the unit circle.

        Transposing the identity, :math:`V(v)^T = V(\omega)^T \operatorname{diag}(\omega / (n f'))
        C(v, \omega)^T \operatorname{diag}(v^n - f')` with :math:`C(v, \omega)^T = -C(\omega, v)`:
        the nodes become the sources, which the fast product needs on its curve. Built on first use.
        """
        if "_transposed" not in self.__dict__:
            self._transposed = CauchyPlan(self.omega, self.v, self.cauchy_tol, "circle") if _on_curve(self.v, "circle") else None
        return self._transposed
